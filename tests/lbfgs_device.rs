//! L-BFGS with its scalars on the device: the same trajectory as the host-scalar implementation it
//! replaced (numbers that implementation produced, `tests/fixtures/lbfgs_host_scalars.json`, recorded
//! with the code of commit d42989c on the CPU backend and on lavapipe: per iteration and run the loss
//! before, the loss, the step, the reset flag and the evaluations; |w|² at the end), and on a GPU an
//! iteration with E line-search evaluations is at most E + 3 submissions and E + 2 read-backs, creating
//! nothing after the first iteration.

mod common;

use losscape::backend::{Counts, Device, Subgroups};
use losscape::data::{DeviceImages, Split};
use losscape::model::{init_vector, Arch, Evaluator, Network};
use losscape::ops::Act;
use losscape::optim::{Lbfgs, LbfgsSettings, NetworkObjective, StepReport};

const RUNS: usize = 2;

/// The wgpu device is shared by this file's tests and counts everything done on it: one at a time.
static GPU: std::sync::Mutex<()> = std::sync::Mutex::new(());
const IMAGES: usize = 200;

/// Ten iterations of two runs on the first 200 training images; the reports and the final iterates.
fn run(device: &Device, arch: Arch, history: usize) -> (Vec<Vec<StepReport>>, Vec<f32>) {
    let images = DeviceImages::upload(device, &common::mnist(Split::Train, IMAGES)).unwrap();
    let n = arch.n_params();
    let start: Vec<f32> = (0..RUNS as u64).flat_map(|s| init_vector(arch, 7 + s)).collect();
    let eval = Evaluator::new(Network { arch, act: Act::Softplus }, &images, 0..IMAGES, RUNS).unwrap();
    let mut opt = Lbfgs::new(device, LbfgsSettings { history, ..Default::default() }, RUNS, n, &start).unwrap();
    let reports = (0..10).map(|_| opt.step(&mut NetworkObjective { eval: &eval }).unwrap()).collect();
    (reports, device.read(&opt.w, 0, RUNS * n).unwrap())
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

fn follows_the_host_scalar_trajectory(device: &Device, backend: &str) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lbfgs_host_scalars.json"),
    )
    .unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in fixture[backend].as_array().unwrap() {
        let arch = Arch::ALL.into_iter().find(|a| a.id() == case["arch"]).unwrap();
        let history = case["history"].as_u64().unwrap() as usize;
        let (reports, w) = run(device, arch, history);
        let what = format!("{backend} {arch:?} history {history}");
        // The FCP case multiplies a perturbation by ~50 per iteration from the fourth on: the former
        // implementation itself ends 3e-4 apart on the two backends. On the CPU the device scalars are
        // f64, as the host's were; on a GPU they are double-f32 (~1e-14 apart from f64), which flips
        // one f32 rounding of a coefficient in the fourth iteration (5.6e-8 in the step), grown to
        // 1.4e-5 in the sixth. There it is held to 1e-5 for five iterations and to 1e-3 after.
        let tol = |k: usize| if backend == "wgpu" && arch == Arch::Fcp && k >= 5 { 1e-3 } else { 1e-5 };
        for (k, (got, want)) in reports.iter().zip(case["iterations"].as_array().unwrap()).enumerate() {
            for (r, (g, e)) in got.iter().zip(want.as_array().unwrap()).enumerate() {
                let e: Vec<&serde_json::Value> = e.as_array().unwrap().iter().collect();
                for (name, a, b) in
                    [("loss before", g.loss_before, &e[0]), ("loss", g.loss, &e[1]), ("step", g.step, &e[2])]
                {
                    let b = b.as_f64().unwrap();
                    assert!(rel(a, b) <= tol(k), "{what}, iteration {k}, run {r}: {name} {a} vs {b}");
                }
                assert_eq!(g.reset, e[3].as_bool().unwrap(), "{what}, iteration {k}, run {r}: reset");
                assert_eq!(g.evaluations as u64, e[4].as_u64().unwrap(), "{what}, iteration {k}, run {r}");
            }
        }
        let n = arch.n_params();
        for (r, stats) in case["w"].as_array().unwrap().iter().enumerate() {
            let row = &w[r * n..(r + 1) * n];
            let sumsq: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum();
            let want = stats["sumsq"].as_f64().unwrap();
            assert!(rel(sumsq, want) <= tol(10), "{what}, run {r}: |w|² {sumsq} vs {want}");
        }
    }
}

#[test]
fn device_scalars_follow_the_host_scalar_trajectory_on_the_cpu_backend() {
    follows_the_host_scalar_trajectory(&common::cpu(), "cpu");
}

#[test]
fn device_scalars_follow_the_host_scalar_trajectory_on_a_gpu() {
    let _one = GPU.lock().unwrap_or_else(|e| e.into_inner());
    // The fixture was recorded with the workgroup-memory tree sums. The subgroup variant (auto on a
    // real GPU) adds in another order: its dot products differ in the last bits (tests/subgroups.rs
    // holds it to the f64 reference), which the FCP case amplifies past 1e-5 in the fourth iteration
    // on lavapipe (step 4.57104 vs 4.57096). So the tree, pinned, whatever LOSSCAPE_SUBGROUPS says.
    follows_the_host_scalar_trajectory(&common::wgpu_subgroups(Subgroups::Off), "wgpu");
}

fn counts(d: &Device) -> Counts {
    d.counts().expect("a wgpu device counts its work")
}

#[test]
fn an_iteration_is_at_most_e_plus_3_submissions_and_e_plus_2_readbacks() {
    let _one = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let device = common::wgpu();
    let arch = Arch::Fcp;
    let images = DeviceImages::upload(&device, &common::mnist(Split::Train, 128)).unwrap();
    let eval = Evaluator::new(Network { arch, act: Act::Softplus }, &images, 0..128, RUNS).unwrap();
    let start: Vec<f32> = (0..RUNS as u64).flat_map(|s| init_vector(arch, s)).collect();
    // history 3: the ring of pairs wraps during the loop
    let settings = LbfgsSettings { history: 3, ..Default::default() };
    let mut opt = Lbfgs::new(&device, settings, RUNS, arch.n_params(), &start).unwrap();
    opt.step(&mut NetworkObjective { eval: &eval }).unwrap();
    let warm = counts(&device);
    for k in 1..11 {
        let before = counts(&device);
        let reports = opt.step(&mut NetworkObjective { eval: &eval }).unwrap();
        let d = counts(&device) - before;
        // trial points of both runs are evaluated together: E is the longest search
        let e = reports.iter().map(|r| r.evaluations as u64).max().unwrap();
        assert!(e >= 1, "iteration {k}: {reports:?}");
        assert!(d.submissions <= e + 3, "iteration {k}, E = {e}: {d:?}");
        assert!(d.readbacks <= e + 2, "iteration {k}, E = {e}: {d:?}");
        eprintln!("iteration {k}: E = {e}, {d:?}");
    }
    let d = counts(&device) - warm;
    assert_eq!((d.buffers_created, d.bind_groups_created), (0, 0), "created after the first iteration: {d:?}");
}
