//! The convergence rule of a path (docs/algorithms.md §5) on synthetic traces of the cumulative loss:
//! a path that has converged, one still falling, and noisy plateaus.

use losscape::path::convergence::{traced, ConvergenceRule, Trace};

const RULE: ConvergenceRule = ConvergenceRule::DEFAULT;

/// Deterministic noise in [-1, 1): a 64-bit LCG (Knuth's MMIX constants), the top 53 bits.
fn noise(n: usize) -> Vec<f64> {
    let mut state: u64 = 1;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn an_exponential_approach_converges_where_its_window_gain_falls_below_the_tolerance() {
    // S_k = 1 + 10 exp(-k/5): over a window of 10 the best falls by 10 exp(-k/5) (e^2 - 1), below
    // 1e-3 S_k from k = 5 ln(63.89 / 1e-3) = 55.3 on, so k = 56 is the first
    let s: Vec<f64> = (0..200).map(|k| 1.0 + 10.0 * (-(k as f64) / 5.0).exp()).collect();
    assert_eq!(RULE.first_converged(&s), Some(56));
    assert!(!RULE.converged(&s[..56]) && RULE.converged(&s[..57]));
    assert!(RULE.converged(&s), "and it stays converged");
    // the stop does not depend on the budget, only on the trace so far
    assert_eq!(RULE.first_converged(&s[..80]), Some(56));
    assert_eq!(RULE.first_converged(&s[..56]), None, "a budget of 56 evaluations ends unconverged");
}

#[test]
fn a_path_still_falling_never_converges_however_slowly_it_falls() {
    // S_k = (k + 1)^(-1/2): the absolute gain per iteration shrinks, but over the last 10 % of the
    // iterations the best still falls by about 5 % — the window grows with k, so this is never a plateau
    let s: Vec<f64> = (0..10_000).map(|k| ((k + 1) as f64).powf(-0.5)).collect();
    assert_eq!(RULE.first_converged(&s), None);
    // a fixed budget that ends while falling: not converged, with the best at the last iteration
    let falling: Vec<f64> = (0..100).map(|k| 1.0 - 0.004 * k as f64).collect();
    assert!(!RULE.converged(&falling));
    // with noise of 1e-4 on top, still not
    let n = noise(10_000);
    let noisy: Vec<f64> = s.iter().zip(&n).map(|(s, e)| s + 1e-4 * e).collect();
    assert_eq!(RULE.first_converged(&noisy), None);
}

#[test]
fn a_path_between_minima_of_near_zero_loss_converges_by_the_absolute_tolerance() {
    // mean loss 1e-2 / (k + 1), as between L-BFGS minima at 1e-11: it loses about 9 % per window for
    // ever, so only the absolute part (1e-5 per point) ends it — at k = 110, where the window's gain
    // 1e-2 (1/100 - 1/111) = 9.9e-6 first falls below 1e-3 x 9e-5 + 1e-5
    let s: Vec<f64> = (0..3000).map(|k| 1e-2 / (k + 1) as f64).collect();
    assert_eq!(RULE.first_converged(&s), Some(110));
    let relative_only = ConvergenceRule { atol: 0.0, ..RULE };
    assert_eq!(relative_only.first_converged(&s), None);
}

#[test]
fn a_height_pinned_at_the_endpoint_loss_for_a_whole_window_has_converged() {
    // pinned since iteration 100: w(110) = 11 and w(111) = w(112) = 12, so 112 - 12 = 100 is the first
    assert!(!RULE.pinned(Some(100), 110) && !RULE.pinned(Some(100), 111));
    assert!(RULE.pinned(Some(100), 112) && RULE.pinned(Some(100), 500));
    assert!(!RULE.pinned(None, 500), "never pinned");
    assert!(!RULE.pinned(Some(0), 9) && RULE.pinned(Some(0), 10), "a full window first");
}

#[test]
fn noisy_plateaus_converge_and_a_flat_line_needs_a_full_window() {
    let n = noise(3000);
    // a decay onto a plateau with noise of 1e-4: the best creeps down by the noise only
    let s: Vec<f64> = (0..300).map(|k| 1.0 + 0.1 * (-(k as f64) / 3.0).exp() + 1e-4 * n[k]).collect();
    assert_eq!(RULE.first_converged(&s), Some(24));
    // noise of 1 %: the best is an early low that later noise rarely beats, so it converges too
    let s: Vec<f64> = (0..3000).map(|k| 1.0 + 1e-2 * n[k]).collect();
    let k = RULE.first_converged(&s).expect("a noisy plateau converges");
    assert_eq!(k, 17);
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let w = RULE.window(k);
    assert!(best(&s[..=k - w]) - best(&s[..=k]) <= 1e-3 * best(&s[..=k]));
    // a path that rises after its best (Adam overshooting) has converged once the window has passed
    let mut up: Vec<f64> = (0..20).map(|k| 2.0 - 0.1 * k as f64).collect();
    up.extend((0..10).map(|k| 0.2 + 0.1 * k as f64));
    assert!(!RULE.converged(&up[..25]) && RULE.converged(&up));
    // nothing converges before a full window of optimised iterations (the straight line, iteration
    // 0, is not one): a constant trace at k = 11, not earlier
    let flat = vec![2.0; 30];
    assert_eq!(RULE.first_converged(&flat), Some(11));
    assert!(!RULE.converged(&[]));
}

#[test]
fn a_first_step_that_overshoots_the_straight_line_is_not_a_plateau() {
    // the regime map's case (FCP, lr 5e-3): S_0 = 22, Adam's first step to 236, then a fall back by
    // 20 % per iteration, still above the straight line at iteration 10; the best path is the straight
    // line all that time, yet the path is falling, and only settles near 5 after about 30 iterations
    let s: Vec<f64> = (0..200).map(|k| if k == 0 { 22.0 } else { 5.0 + 231.0 * 0.8f64.powi(k - 1) }).collect();
    assert!(s[10] > s[0], "still above the straight line at iteration 10: {}", s[10]);
    let k = RULE.first_converged(&s).expect("it settles");
    // converged where its own fall over the window drops below about 1e-3 x 5: 231 x 0.8^(k-1) x
    // (1.25^10 - 1) = 1920 x 0.8^(k-1) < 5e-3 needs k - 1 ≥ ln(2.6e-6) / ln(0.8) = 57.6
    assert_eq!(k, 59);
    // with the straight line as the window's start, the old rule stopped it at 10
    let with_start = |k: usize| {
        let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        best(&s[..=k - 10]) - best(&s[..=k]) <= 1e-3 * best(&s[..=k]) + 1e-5
    };
    assert!(with_start(10), "the false plateau this rule avoids");
}

#[test]
fn the_trace_keeps_the_grid_and_the_last_iteration() {
    let mut t = Trace::default();
    let last = 37;
    for k in 0..=last {
        t.record(k, &[0.1, 1.0 / (k + 1) as f64, 0.1], k == last);
    }
    let grid: Vec<usize> = (0..=last).filter(|&k| traced(k)).collect();
    assert_eq!(t.iteration, [grid, vec![last]].concat(), "the grid, then the last iteration");
    assert_eq!(t.height[0], 1.0);
    assert!((t.cumulative[1] - 0.7).abs() < 1e-15);
    t.record(last, &[9.0], true);
    assert_eq!(*t.iteration.last().unwrap(), last, "an iteration is kept once");
    assert_eq!(t.height_at(21, 0.01), Some(t.height[20]), "between grid points: the last one before");
    assert_eq!(t.height_at(1000, 0.01), Some(0.01), "past the last: the final height");
}

#[test]
fn a_record_written_before_convergence_was_recorded_reads_as_unknown() {
    use losscape::path::sweep::PairRecord;
    use losscape::report::claims::Unconverged;
    // a line as `paths` wrote it before issue 25
    let old = r#"{"index":3,"set":1,"set_file":"s.safetensors","pair":[0,2],"seeds":null,"curve":"fourier","aligned":false,"distance":1.5,"unaligned_distance":null,"unaligned_straight_height":null,"straight_losses":[0.1,2.0,0.1],"losses":[0.1,0.5,0.1],"best_iteration":19,"height":0.5,"barrier":0.4,"straight_height":2.0,"length":3.0,"weighted_mean_loss":0.2}"#;
    let r: PairRecord = serde_json::from_str(old).unwrap();
    assert_eq!((r.index, r.outcome.best_iteration, r.outcome.height), (3, 19, 0.5));
    assert_eq!((r.outcome.iterations, r.outcome.converged, r.outcome.trace.clone()), (None, None, None));
    // the claims table counts it as not converged, apart from the known ones
    let u = Unconverged::count([r.outcome.converged, Some(true), Some(false)]);
    assert_eq!((u.not_converged, u.unknown, u.total()), (1, 1, 2));
    // and a new record round-trips with its trace
    let mut new = r.clone();
    new.outcome.iterations = Some(20);
    new.outcome.converged = Some(false);
    new.outcome.trace = Some(Trace { iteration: vec![0, 19], cumulative: vec![2.2, 0.7], height: vec![2.0, 0.5] });
    let line = serde_json::to_string(&new).unwrap();
    assert!(line.ends_with(r#""iterations":20,"converged":false,"trace":{"iteration":[0,19],"cumulative":[2.2,0.7],"height":[2.0,0.5]}}"#), "{line}");
    assert_eq!(serde_json::from_str::<PairRecord>(&line).unwrap(), new);
}

#[test]
fn until_converged_takes_max_iterations_and_refuses_a_fixed_budget_beside_it() {
    let paths = |extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_losscape"));
        c.args(["paths", "--model", "fcp", "--set", "nowhere.safetensors", "--out", "nowhere"]);
        c.args(extra).output().unwrap()
    };
    for (args, needle) in [
        (&["--until-converged", "--iterations", "5"][..], "--iterations"),
        (&["--max-iterations", "50"][..], "--until-converged"),
        (&["--until-converged", "--max-iterations", "0"][..], "--max-iterations"),
    ] {
        let o = paths(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let help = String::from_utf8_lossy(&paths(&["--help"]).stdout).to_string();
    assert!(help.contains("--until-converged") && help.contains("--max-iterations <K>"), "{help}");
}
