//! Trial points of a line search through the first layer's bases (`model::Line`, docs/algorithms.md):
//! their losses against plain evaluations at the f32 vectors w − c d, L-BFGS with and without them,
//! and the networks and budgets that take the plain path. On the device the suite chooses
//! (`LOSSCAPE_BACKEND`: the CPU backend in the default pass, wgpu in the vulkan pass).

mod common;

use common::{gpu, mnist};
use losscape::backend::{ChunkBudget, Coef, Device};
use losscape::data::{DeviceImages, Split};
use losscape::model::{Arch, Evaluator, Line, Network, Want};
use losscape::ops::Act;
use losscape::optim::{Lbfgs, LbfgsSettings, NetworkObjective};

const IMAGES: usize = 200;
const RUNS: usize = 3;

/// Deterministic weights of `runs` vectors of `n` values, of size about `scale` (phase `seed`).
fn wave(runs: usize, n: usize, scale: f32, seed: f32) -> Vec<f32> {
    (0..runs * n).map(|i| scale * ((i as f32 * 0.37 + seed).sin() + 0.5 * (i as f32 * 0.011).cos())).collect()
}

fn evaluator(device: &Device, arch: Arch, chunk: Option<usize>) -> Evaluator {
    let images = DeviceImages::upload(device, &mnist(Split::Train, IMAGES)).unwrap();
    Evaluator::with_chunk(Network { arch, act: Act::Softplus }, &images, 0..IMAGES, RUNS, chunk).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

/// For each coefficient set (one c per run), the losses through the line and those of a plain
/// loss evaluation at the host's f32 vectors w − c d agree to f32 accuracy.
fn trials_match_plain_evaluations(arch: Arch, chunk: Option<usize>) {
    let device = gpu();
    let eval = evaluator(&device, arch, chunk);
    let n = eval.n_params();
    let (w, d) = (wave(RUNS, n, 0.05, 0.3), wave(RUNS, n, 0.03, 1.9));
    let (db, coef) = (device.upload(&d, "d").unwrap(), device.zeros(RUNS, "c").unwrap());
    let line = eval.line(&db, Coef::at(&coef, 0, 1).times(-1.0)).unwrap();
    let line = line.unwrap_or_else(|| panic!("{arch:?}: the first layer is dense on the images"));
    eval.set_weights(&w).unwrap();
    device.submit(&eval.line_commands(&line, Want::LossAndGrad).into_iter().chain(line.basis()).collect::<Vec<_>>());
    for cs in [[0.0f32, 0.0, 0.0], [0.5, -0.75, 2.0], [-1.5, 1.0, 0.125]] {
        device.write(&coef, 0, &cs).unwrap();
        let trial: Vec<f32> = (0..RUNS * n).map(|i| w[i] - cs[i / n] * d[i]).collect();
        eval.set_weights(&trial).unwrap();
        let parts = eval.partials();
        let through = device.submit_read(&eval.line_commands(&line, Want::Loss), &[(parts, 0, parts.len())]).unwrap();
        let through = eval.evals(&through[0]);
        let plain = eval.evaluate(Want::Loss).unwrap();
        for r in 0..RUNS {
            let (a, b) = (through[r].loss, plain[r].loss);
            assert!(b.is_finite() && rel(a, b) < 1e-5, "{arch:?} chunk {chunk:?} c {cs:?} run {r}: {a} vs {b}");
            assert_eq!(through[r].accuracy.is_some(), plain[r].accuracy.is_some());
        }
    }
}

#[test]
fn fcp_trials_through_the_line_match_plain_evaluations_in_one_and_several_chunks() {
    trials_match_plain_evaluations(Arch::Fcp, None);
    trials_match_plain_evaluations(Arch::Fcp, Some(64));
}

#[test]
fn autoencoder_trials_through_the_line_match_plain_evaluations() {
    trials_match_plain_evaluations(Arch::Autoencoder, None);
    trials_match_plain_evaluations(Arch::Autoencoder, Some(64));
}

#[test]
fn a_compact_mlp_with_biases_goes_through_the_line() {
    let arch = Arch::parse("mlp:784-64-10:tanh").unwrap();
    trials_match_plain_evaluations(arch, None);
    trials_match_plain_evaluations(arch, Some(64));
}

#[test]
fn a_convolution_first_or_too_little_memory_takes_the_plain_path() {
    let device = gpu();
    let eval = evaluator(&device, Arch::Lenet, Some(64));
    let (d, coef) = (device.zeros(eval.weights.len(), "d").unwrap(), device.zeros(RUNS, "c").unwrap());
    assert!(eval.line(&d, Coef::at(&coef, 0, 1)).unwrap().is_none(), "LeNet starts with a convolution");
    // FCP: 2 x 3 runs x 200 images x 50 units x 4 bytes = 240,000 bytes of bases
    let plan = evaluator(&device, Arch::Fcp, Some(64)).plan().clone();
    let budget = |total_bytes: u64| ChunkBudget { tensor_bytes: 1 << 20, total_bytes, cache_bytes: 0 };
    assert!(Line::prefixes(&plan, RUNS, budget(4 * 240_000)).is_some());
    assert!(Line::prefixes(&plan, RUNS, budget(4 * 240_000 - 4)).is_none(), "more than a quarter of the budget");
    let narrow = ChunkBudget { tensor_bytes: 4 * 3 * 64 * 50 - 4, total_bytes: 1 << 30, cache_bytes: 0 };
    assert!(Line::prefixes(&plan, RUNS, narrow).is_none(), "one chunk's basis over the tensor budget");
}

/// Four L-BFGS iterations of FCP through the line and without it: the same losses up to rounding, and
/// an iteration's products (one loss-and-gradient evaluation, the basis P_d, six trials) at most half
/// the plain path's.
#[test]
fn lbfgs_through_the_line_follows_the_plain_path_with_fewer_products() {
    let device = gpu();
    let eval = evaluator(&device, Arch::Fcp, Some(128));
    let n = eval.n_params();
    let start: Vec<f32> = (0..RUNS as u64).flat_map(|s| losscape::model::init_vector(Arch::Fcp, 11 + s)).collect();
    let run = |line: bool| {
        let mut opt = Lbfgs::new(&device, LbfgsSettings::default(), RUNS, n, &start).unwrap();
        opt.set_line(line);
        (0..4).map(|_| opt.step(&mut NetworkObjective { eval: &eval }).unwrap()).collect::<Vec<_>>()
    };
    let (through, plain) = (run(true), run(false));
    let losses =
        |reports: &[Vec<losscape::optim::StepReport>]| reports.iter().flatten().map(|s| s.loss).collect::<Vec<_>>();
    assert_ne!(losses(&through), losses(&plain), "rounding differs somewhere when the line path is taken");
    for (k, (a, b)) in through.iter().zip(&plain).enumerate() {
        for r in 0..RUNS {
            let what = format!("iteration {k} run {r}: {:?} vs {:?}", a[r], b[r]);
            assert!(rel(a[r].loss, b[r].loss) < 1e-4 && rel(a[r].loss_before, b[r].loss_before) < 1e-4, "{what}");
            assert!(a[r].loss < a[r].loss_before, "{what}");
        }
    }
    let (d, coef) = (device.zeros(eval.weights.len(), "d").unwrap(), device.zeros(RUNS, "c").unwrap());
    let line = eval.line(&d, Coef::at(&coef, 0, 1)).unwrap().unwrap();
    let (basis, trial) = line.flops();
    let (grad, loss) = (eval.plan().flops(true), eval.plan().flops(false));
    let evaluations = through[0][0].evaluations as f64;
    assert!(evaluations >= 6.0, "the default budget counts 6 evaluations");
    let (with, without) = (grad + basis + evaluations * trial, grad + evaluations * loss);
    assert!(with <= 0.5 * without, "products per iteration: {with:e} through the line, {without:e} without");
}

/// The linear prefix is read off the plan: one product for FCP (no bias), the product and its bias for
/// a compact MLP, in every chunk, covering vectors x images x units values; none for LeNet (a
/// convolution first) or the LSTM.
#[test]
fn the_linear_prefix_is_found_from_the_plan() {
    use losscape::ops::plan::Plan;
    use losscape::ops::LinearPrefix;
    let prefixes = |arch: Arch| {
        let plan = Plan::new(Network { arch, act: Act::Softplus }, 0..300, 300, RUNS, 128, 0).unwrap();
        plan.chunks.iter().map(|c| LinearPrefix::of(c, &plan.tensors, RUNS)).collect::<Vec<_>>()
    };
    let fcp = prefixes(Arch::Fcp);
    assert_eq!(fcp.len(), 3);
    for (p, images) in fcp.iter().zip([128, 128, 44]) {
        let p = p.expect("FCP's first layer is dense on the images");
        assert_eq!((p.ops, p.len), (1, RUNS * images * 50));
    }
    let mlp = prefixes(Arch::parse("mlp:784-64-10:tanh").unwrap());
    assert!(mlp.iter().all(|p| p.is_some_and(|p| p.ops == 2)), "{mlp:?}");
    assert!(prefixes(Arch::Lenet).iter().all(Option::is_none));
    assert!(prefixes(Arch::Lstm).iter().all(Option::is_none));
}
