//! Many paths at once: a sweep that optimises P pairs together (one evaluation of P x M points per
//! Adam iteration) writes the records a one-pair-at-a-time sweep writes, and resumes with any P.

mod common;

#[path = "common/files.rs"]
mod files;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use losscape::backend::ChunkBudget;
use losscape::data::{DeviceImages, Split};
use losscape::io::shard::{SetInfo, Shard};
use losscape::io::{read_weights, WeightStack};
use losscape::model::{batch_fits, init_vector, Arch, Network};
use losscape::ops::Act;
use losscape::path::convergence::traced;
use losscape::path::sweep::{
    coefficients_path, default_pairs_per_batch, read_records, run_sweep_batched, Job, PairRecord, SweepConfig,
    SweepInputs, SweepOptions, SweepProgress, MAX_DEFAULT_PAIRS_PER_BATCH,
};
use losscape::path::{Curve, PathSettings};

struct Quiet;

impl SweepProgress for Quiet {
    fn start(&mut self, _: usize, _: usize) {}
    fn iteration(&mut self, _: &Job, _: usize, _: f64) {}
    fn finished(&mut self, _: &PairRecord) {}
}

const PAIRS: usize = 5;

/// Four FCP vectors, spread apart so that the straight lines between them rise.
fn stack() -> WeightStack {
    WeightStack::new(Arch::Fcp, (0..4).flat_map(|s| init_vector(Arch::Fcp, s).into_iter().map(|x| 3.0 * x)).collect())
}

fn config(images: usize) -> SweepConfig {
    SweepConfig {
        model: Arch::Fcp,
        activation: Act::Softplus,
        sets: vec![SetInfo { file: "set".into(), sha256: "-".into(), vectors: 4 }],
        landscape: Split::Train,
        images,
        pairs: PAIRS,
        seed: 2,
        settings: PathSettings { fourier: 2, points: 5, lambda: 1e-4, lr: 1e-2, iterations: 3 },
        save_paths: true,
        shard: Shard { index: 0, count: 1 },
        data_sha256: None,
    }
}

/// The records of a sweep run with `per` pairs at a time in `dir`.
fn sweep(dir: &Path, images: &DeviceImages, options: SweepOptions, per: usize) -> Vec<PairRecord> {
    sweep_with(dir, config(images.count), stack(), images, options, per)
}

/// As [`sweep`], with the configuration `cfg` and the set `stack`.
fn sweep_with(
    dir: &Path,
    cfg: SweepConfig,
    stack: WeightStack,
    images: &DeviceImages,
    options: SweepOptions,
    per: usize,
) -> Vec<PairRecord> {
    let inputs = SweepInputs { dir, cfg: &cfg, stacks: std::slice::from_ref(&stack), images };
    assert_eq!(run_sweep_batched(inputs, options, Some(per), &mut Quiet).unwrap(), cfg.pairs);
    read_records(dir).unwrap()
}

/// Largest |x - y| relative to the largest |y|.
fn rel(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    let scale = y.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
}

/// Every record of `got` equals `want`'s: bit for bit on the CPU backend, within 1e-5 relative on a GPU.
fn assert_same(got: &[PairRecord], want: &[PairRecord], exact: bool, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.index, g.pair, g.aligned, g.curve), (w.index, w.pair, w.aligned, w.curve), "{what}");
        if exact {
            assert_eq!(g, w, "{what}: pair {}", g.index);
            continue;
        }
        let (go, wo) = (&g.outcome, &w.outcome);
        for (name, x, y) in [
            ("losses", &go.losses, &wo.losses),
            ("straight losses", &go.straight_losses, &wo.straight_losses),
            (
                "height etc.",
                &vec![go.height, go.barrier, go.length, go.weighted_mean_loss],
                &vec![wo.height, wo.barrier, wo.length, wo.weighted_mean_loss],
            ),
        ] {
            assert!(rel(x, y) <= 1e-5, "{what}: pair {} {name}: {x:?} vs {y:?}", g.index);
        }
        assert_eq!(go.best_iteration, wo.best_iteration, "{what}: pair {}", g.index);
    }
}

/// The saved coefficients of the first `pairs` pairs of the sweeps in `a` and `b` are equal.
fn same_coefficients(a: &Path, b: &Path, pairs: usize, exact: bool) {
    for index in 0..pairs {
        let [x, y] = [a, b].map(|d| {
            let s = read_weights(&coefficients_path(d, index), Arch::Fcp).unwrap();
            s.flat.iter().map(|&v| v as f64).collect::<Vec<f64>>()
        });
        assert!(if exact { x == y } else { rel(&x, &y) <= 1e-5 }, "pair {index}: coefficients differ");
    }
}

#[test]
fn pairs_optimised_together_equal_pairs_optimised_one_at_a_time() {
    let gpu = common::gpu();
    let exact = gpu.is_cpu();
    let images = DeviceImages::upload(&gpu, &common::mnist(Split::Train, 48)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fourier = SweepOptions::default();
    let one = sweep(&dir.path().join("p1"), &images, fourier, 1);
    assert!(one.iter().all(|r| r.outcome.best_iteration > 0), "the paths move: {one:?}");
    // 3: a full batch and a last batch of 2; 8: more than the pairs
    for per in [3, 8] {
        let out = dir.path().join(format!("p{per}"));
        assert_same(&sweep(&out, &images, fourier, per), &one, exact, &format!("P = {per}"));
        same_coefficients(&out, &dir.path().join("p1"), PAIRS, exact);
    }
    // another curve family, aligned pair by pair before the batch is optimised
    let bezier = SweepOptions { curve: Curve::Bezier, align: true, until_converged: false };
    let one = sweep(&dir.path().join("b1"), &images, bezier, 1);
    assert!(one.iter().all(|r| r.unaligned_straight_height.is_some()));
    assert_same(&sweep(&dir.path().join("b2"), &images, bezier, 2), &one, exact, "aligned Bezier, P = 2");
}

#[test]
fn until_converged_batches_stop_each_pair_as_one_pair_runs_do() {
    let gpu = common::gpu();
    let exact = gpu.is_cpu();
    let images = DeviceImages::upload(&gpu, &common::mnist(Split::Train, 48)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // four minima (15 L-BFGS iterations on the same 48 images): the straight lines between them rise to
    // 2.4-7 while the endpoints sit at 1e-3 to 4e-2, so each path has a barrier to lose. The test loss
    // only picks the test snapshots, which are not used: 16 test images instead of the default 10,000
    // (evaluated after every iteration: a minute of CPU time on lavapipe) leave the training
    // snapshots' weights bit for bit as they were.
    let trained = dir.path().join("trained");
    ok(losscape(&[
        "train",
        "--model",
        "fcp",
        "--optimizer",
        "lbfgs",
        "--runs",
        "4",
        "--iterations",
        "15",
        "--train-size",
        "48",
        "--test-size",
        "16",
        "--quiet",
        "--out",
        trained.to_str().unwrap(),
    ]));
    let minima = read_weights(&trained.join("fcp-lbfgs-train.safetensors"), Arch::Fcp).unwrap();
    let mut cfg = config(images.count);
    cfg.settings.iterations = MAX_ITERATIONS;
    cfg.settings.lr = UNTIL_LR;
    // three pairs (seed 0: (0,3), (1,2), (1,3), which stop after about 20, 27 and 20 iterations): P = 2
    // is a batch whose first pair stops while the other goes on, then a last batch of one; P = 3 is one
    // batch of all. Five pairs (seed 2, stops 20-36) took twice the evaluations and added no case.
    cfg.pairs = UNTIL_PAIRS;
    cfg.seed = 0;
    let until = SweepOptions { until_converged: true, ..SweepOptions::default() };
    let one = sweep_with(&dir.path().join("u1"), cfg.clone(), minima.clone(), &images, until, 1);
    let stops: Vec<usize> = one.iter().map(|r| r.outcome.iterations.unwrap()).collect();
    eprintln!("iterations per pair until converged: {stops:?}");
    assert_ne!(stops[0], stops[1], "in the first batch of P = 2 one pair stops while the other goes on");
    // every pair stopped at convergence, before the budget, and not all at once: in a batch the early
    // ones are frozen while the others go on
    assert!(one.iter().all(|r| r.outcome.converged == Some(true)), "{stops:?}");
    assert!(stops.iter().all(|&n| n < MAX_ITERATIONS), "{stops:?}");
    assert!(stops.iter().min() < stops.iter().max(), "the pairs stop at different iterations: {stops:?}");
    for r in &one {
        let o = &r.outcome;
        assert!(o.straight_height > 1.0 && o.height < 0.1, "the path lost its barrier: {o:?}");
        let t = o.trace.as_ref().unwrap();
        let n = o.iterations.unwrap();
        assert_eq!(*t.iteration.last().unwrap(), n - 1, "the trace ends at the stop");
        assert!(o.best_iteration < n);
        assert!(t.iteration.iter().all(|&k| traced(k) || k == n - 1), "{:?}", t.iteration);
    }
    for per in [2, UNTIL_PAIRS] {
        let out = dir.path().join(format!("u{per}"));
        assert_same(
            &sweep_with(&out, cfg.clone(), minima.clone(), &images, until, per),
            &one,
            exact,
            &format!("until converged, P = {per}"),
        );
        same_coefficients(&out, &dir.path().join("u1"), UNTIL_PAIRS, exact);
        let got = read_records(&out).unwrap();
        assert_eq!(got.iter().map(|r| r.outcome.iterations.unwrap()).collect::<Vec<_>>(), stops, "P = {per}");
        assert_eq!(
            got.iter().map(|r| r.outcome.trace.clone()).collect::<Vec<_>>(),
            one.iter().map(|r| r.outcome.trace.clone()).collect::<Vec<_>>()
        );
    }
    // the same pairs with a fixed budget of the longest stop: the pairs that stopped earlier ran on
    let longest = *stops.iter().max().unwrap();
    cfg.settings.iterations = longest;
    let fixed = sweep_with(&dir.path().join("fixed"), cfg, minima.clone(), &images, SweepOptions::default(), 1);
    for (f, u) in fixed.iter().zip(&one) {
        let (ft, ut) = (f.outcome.trace.as_ref().unwrap(), u.outcome.trace.as_ref().unwrap());
        assert_eq!(f.outcome.iterations, Some(longest));
        assert!(f.outcome.converged.is_some(), "a fixed budget records convergence too");
        // up to the stop, the two runs computed the same paths
        for (i, k) in ut.iteration.iter().enumerate() {
            if let Some(j) = ft.iteration.iter().position(|x| x == k) {
                let close = if exact {
                    ft.cumulative[j] == ut.cumulative[i]
                } else {
                    rel(&[ft.cumulative[j]], &[ut.cumulative[i]]) < 1e-5
                };
                assert!(close, "pair {} iteration {k}", f.index);
            }
        }
        assert!(f.outcome.best_iteration >= u.outcome.best_iteration);
    }
}

/// The budget, Adam step and pairs of [`until_converged_batches_stop_each_pair_as_one_pair_runs_do`]:
/// every pair converges well before the budget, at different iterations.
const MAX_ITERATIONS: usize = 400;
const UNTIL_LR: f64 = 1e-2;
const UNTIL_PAIRS: usize = 3;

#[test]
fn the_default_batch_is_one_pair_on_the_cpu_and_the_largest_that_fits_on_a_gpu() {
    let net = Network { arch: Arch::Fcp, act: Act::Softplus };
    assert_eq!(default_pairs_per_batch(net, &common::cpu(), 51), 1);
    let gpu = common::gpu();
    let p = default_pairs_per_batch(net, &gpu, 51);
    if !gpu.is_cpu() {
        let budget = gpu.chunk_budget();
        assert!((1..=MAX_DEFAULT_PAIRS_PER_BATCH).contains(&p), "{p}");
        assert!(p == 1 || batch_fits(net, budget, p * 51), "{p} pairs do not fit {budget:?}");
        assert!(p == MAX_DEFAULT_PAIRS_PER_BATCH || !batch_fits(net, budget, (p + 1) * 51), "{p} is not the largest");
    }
    // the rule itself: the weights, the widest tensor and the total each bound the batch
    let n = Arch::Fcp.n_params() as u64 * 4;
    let roomy = ChunkBudget { tensor_bytes: 1 << 40, total_bytes: 1 << 40, cache_bytes: 0 };
    assert!(batch_fits(net, roomy, 51 * 16));
    assert!(!batch_fits(net, ChunkBudget { tensor_bytes: 51 * n - 4, ..roomy }, 51), "weights past a binding");
    assert!(batch_fits(net, ChunkBudget { tensor_bytes: 51 * n, ..roomy }, 51));
    assert!(!batch_fits(net, ChunkBudget { total_bytes: 2 * 51 * n, ..roomy }, 51), "scratch counts too");
}

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// The fixed budget of the tiny sweeps below (was 12: at six iterations a batch of two pairs still
/// takes ~80 ms on the CPU backend, so the kill lands two batches before the end, and lavapipe takes
/// half the time).
const SIX: &[&str] = &["--iterations", "6"];

/// `losscape paths` on a tiny sweep of six pairs into `out`, `per` pairs at a time, with `budget`'s
/// options.
fn paths_command(set: &Path, out: &Path, per: &str, budget: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_losscape"));
    c.args(["paths", "--model", "fcp", "--quiet", "--pairs", "6", "--seed", "3", "--train-size", "100"]);
    c.args(["--points", "5", "--fourier", "2", "--lr", "0.01", "--pairs-per-batch", per]);
    c.args(budget);
    c.arg("--set").arg(set).arg("--out").arg(out);
    c
}

fn lines(file: &Path) -> usize {
    std::fs::read_to_string(file).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn a_sweep_killed_mid_batch_resumes_with_another_batch_size_to_the_uninterrupted_results() {
    killed_and_resumed(SIX);
}

#[test]
fn an_until_converged_sweep_killed_mid_batch_resumes_to_the_same_bytes() {
    killed_and_resumed(&["--until-converged", "--max-iterations", "300"]);
}

/// A sweep with `budget` killed at P = 2 and resumed at P = 4 equals a P = 1 run (bytes on the CPU).
fn killed_and_resumed(budget: &[&str]) {
    let exact = common::gpu().is_cpu(); // the child runs on the backend the suite runs on
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.safetensors");
    ok(losscape(&["init", "--model", "fcp", "--count", "4", "--out", set.to_str().unwrap()]));
    let (reference, run) = (dir.path().join("ref"), dir.path().join("run"));
    ok(paths_command(&set, &reference, "1", budget).output().unwrap());

    let mut child = paths_command(&set, &run, "2", budget).spawn().unwrap();
    let start = Instant::now();
    while lines(&run.join("paths.jsonl")) < 1 {
        assert!(start.elapsed() < Duration::from_secs(300), "no pair finished in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = lines(&run.join("paths.jsonl"));
    assert!((1..6).contains(&before), "the kill came too late to test anything ({before} records)");
    ok(paths_command(&set, &run, "4", budget).output().unwrap());

    let want = read_records(&reference).unwrap();
    let got = read_records(&run).unwrap();
    if budget.contains(&"--until-converged") {
        let stops: Vec<_> = want.iter().map(|r| (r.outcome.converged, r.outcome.iterations)).collect();
        assert!(stops.iter().all(|&(c, n)| c == Some(true) && n < Some(300)), "each pair stopped converged: {stops:?}");
        let config = std::fs::read_to_string(reference.join("config.json")).unwrap();
        assert!(config.contains("\"until_converged\": true"), "{config}");
    }
    assert_eq!(got.iter().map(|r| r.index).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>(), "each pair once");
    assert_same(&got, &want, exact, "killed at P = 2, resumed at P = 4, vs P = 1");
    let config = |d: &Path| std::fs::read(d.join("config.json")).unwrap();
    assert_eq!(config(&run), config(&reference), "the batch size is not part of the configuration");
    if exact {
        assert_eq!(files::assert_same_bytes(&reference, &run), 4); // with the two lock files
    }
    // a batch of no pairs is a usage error naming the option
    let o = paths_command(&set, &dir.path().join("zero"), "0", budget).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--pairs-per-batch"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_batch_whose_loss_diverges_names_its_pairs_and_writes_nothing() {
    let images = DeviceImages::upload(&common::gpu(), &common::mnist(Split::Train, 16)).unwrap();
    let (mut cfg, stack) = (config(images.count), stack());
    cfg.settings.lr = 1e30;
    let dir = tempfile::tempdir().unwrap();
    let inputs = SweepInputs { dir: dir.path(), cfg: &cfg, stacks: std::slice::from_ref(&stack), images: &images };
    let e = run_sweep_batched(inputs, SweepOptions::default(), Some(2), &mut Quiet).unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("of the batch") && text.contains("try a smaller --lr"), "{text}");
    assert!(text.contains("pair 0 (") && text.contains("; pair 1 ("), "both pairs of the batch are named: {text}");
    assert!(read_records(dir.path()).unwrap().is_empty());
}

/// `--until-converged --max-iterations K` (and `--save-paths`) as `paths_command` arguments.
fn until(k: usize) -> Vec<String> {
    ["--until-converged", "--save-paths", "--max-iterations"]
        .iter()
        .map(|s| s.to_string())
        .chain([k.to_string()])
        .collect()
}

#[test]
fn a_sweep_resumed_with_a_larger_budget_finds_only_its_unconverged_pairs_again() {
    let exact = common::gpu().is_cpu();
    let dir = tempfile::tempdir().unwrap();
    // minima, so that the paths have barriers to lose and stop at different iterations (the paths
    // between initial vectors are flat and all stop at the first chance, iteration 10)
    let trained = dir.path().join("trained");
    let args = ["train", "--model", "fcp", "--optimizer", "lbfgs", "--runs", "4", "--iterations", "15"];
    ok(losscape(
        &[&args[..], &["--train-size", "48", "--test-size", "16", "--quiet", "--out"]]
            .concat()
            .into_iter()
            .chain([trained.to_str().unwrap()])
            .collect::<Vec<_>>(),
    ));
    let set = trained.join("fcp-lbfgs-train.safetensors");
    let (reference, run) = (dir.path().join("ref"), dir.path().join("run"));
    let paths = |out: &Path, k: usize| {
        let budget = until(k);
        paths_command(&set, out, "1", &budget.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap()
    };
    ok(paths(&reference, 300));
    let want = read_records(&reference).unwrap();
    let mut stops: Vec<usize> = want.iter().map(|r| r.outcome.iterations.unwrap()).collect();
    assert!(want.iter().all(|r| r.outcome.converged == Some(true)), "{stops:?}");
    // a budget below the last stop: the pairs that stop within it converge (those at its last
    // iteration too), the others are cut off
    stops.sort_unstable();
    let k = stops[stops.len() - 1] - 1;
    ok(paths(&run, k));
    let cut = read_records(&run).unwrap();
    let unconverged: Vec<usize> = cut.iter().filter(|r| r.outcome.converged == Some(false)).map(|r| r.index).collect();
    assert!(!unconverged.is_empty() && unconverged.len() < cut.len(), "K = {k}, stops {stops:?}");
    for (c, w) in cut.iter().zip(&want) {
        if c.outcome.converged == Some(true) {
            assert_same(std::slice::from_ref(c), std::slice::from_ref(w), exact, "converged within the smaller budget");
        } else {
            assert_eq!(c.outcome.iterations, Some(k), "pair {} stopped at the budget", c.index);
        }
    }
    // a smaller budget would change converged records too, and so would a larger fixed budget (every
    // pair runs all of it): refused, and nothing touched
    let fixed = dir.path().join("fixed");
    ok(paths_command(&set, &fixed, "1", SIX).output().unwrap());
    let contents = |d: &Path| files::files(d).iter().map(|f| std::fs::read(d.join(f)).unwrap()).collect::<Vec<_>>();
    let before = [contents(&run), contents(&fixed)];
    for o in [paths(&run, k - 1), paths_command(&set, &fixed, "1", &["--iterations", "12"]).output().unwrap()] {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("differs in: settings.iterations"), "{err}");
    }
    assert!(before == [contents(&run), contents(&fixed)], "a refused resume changed a directory");
    // the larger budget: only the cut-off pairs are found again, to a fresh run's bytes
    let o = ok(paths(&run, 300));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.starts_with(&format!("{} pair(s) computed", unconverged.len())), "{said}");
    assert_same(&read_records(&run).unwrap(), &want, exact, "resumed with the larger budget");
    same_coefficients(&run, &reference, want.len(), exact);
    if exact {
        // config.json, paths.jsonl (in pair order), the two lock files and a coefficients file per pair
        assert_eq!(files::assert_same_bytes(&reference, &run), 4 + want.len());
    }
}

/// The CPU backend's chunks aim at its cache, so a larger batch used to take a smaller chunk and split
/// the image sums elsewhere: `--pairs-per-batch 3` wrote other bits than 1. The aim is now sized for
/// one pair, whatever P.
#[test]
fn any_pairs_per_batch_keeps_the_cpu_chunk_and_writes_the_same_bytes() {
    use losscape::model::{chunk_capacity, chunk_capacity_aimed};
    let net = Network { arch: Arch::Fcp, act: Act::Softplus };
    let budget = common::cpu().chunk_budget();
    let (m, images) = (21, 1000);
    let one = chunk_capacity(net, budget, m, images);
    assert!(chunk_capacity(net, budget, 3 * m, images) < one, "the old rule split these images differently");
    for p in 1..=16 {
        assert_eq!(chunk_capacity_aimed(net, budget, (m, p * m), images), one, "P = {p}");
    }
    // a device without a cache aim sizes by memory alone, as before
    let gpu_like = ChunkBudget { cache_bytes: 0, ..budget };
    assert_eq!(chunk_capacity_aimed(net, gpu_like, (m, 3 * m), images), chunk_capacity(net, gpu_like, 3 * m, images));
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.safetensors");
    ok(losscape(&["init", "--model", "fcp", "--count", "3", "--out", set.to_str().unwrap()]));
    let run = |per: &str| {
        let out = dir.path().join(format!("p{per}"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_losscape"));
        c.args(["paths", "--model", "fcp", "--quiet", "--pairs", "3", "--train-size", "1000", "--points", "21"]);
        c.args(["--fourier", "2", "--iterations", "2", "--backend", "cpu", "--pairs-per-batch", per]);
        ok(c.arg("--set").arg(&set).arg("--out").arg(&out).output().unwrap());
        std::fs::read(out.join("paths.jsonl")).unwrap()
    };
    assert_eq!(run("1"), run("3"), "P = 3 wrote other bytes than P = 1");
}
