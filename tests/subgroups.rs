//! The subgroup variant of the workgroup sums (loss heads; dot and sum) against the portable tree and
//! the f64 references, on whatever adapter is present (lavapipe on CI, where `auto` keeps the tree and
//! the subgroup variant is forced on here).
mod common;

use common::{max_rel_diff, mnist, to_f64, wgpu_subgroups};
use losscape::backend::{Device, Rows, Subgroups};
use losscape::data::{Dataset, DeviceImages, Split};
use losscape::model::reference::evaluate;
use losscape::model::{init_vector, Arch, Eval, Evaluator, Network, Want};
use losscape::ops::Act;

/// The device with subgroups forced on; the adapter must offer them, or the test would prove nothing.
fn with_subgroups() -> Device {
    let device = wgpu_subgroups(Subgroups::On);
    let summary = device.summary();
    assert!(
        summary.features.iter().any(|f| f == "SUBGROUP"),
        "adapter '{}' has no SUBGROUP feature; these tests need one (lavapipe has it)",
        summary.name
    );
    assert!(device.uses_subgroups(), "forced on, with the feature present");
    device
}

fn without_subgroups() -> Device {
    let device = wgpu_subgroups(Subgroups::Off);
    assert!(!device.uses_subgroups());
    device
}

fn data(rows: usize, len: usize, seed: u32) -> Vec<f32> {
    (0..rows * len)
        .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

#[test]
fn the_choice_parses_and_resolves_per_device() {
    assert_eq!(Subgroups::parse("on").unwrap(), Subgroups::On);
    assert_eq!(Subgroups::parse(" OFF ").unwrap(), Subgroups::Off);
    assert_eq!(Subgroups::parse("auto").unwrap(), Subgroups::Auto);
    assert!(Subgroups::parse("sometimes").is_err());
    let sub = wgpu::Features::SUBGROUP;
    let none = wgpu::Features::empty();
    // auto: a real GPU with subgroups only; never a software rasteriser such as lavapipe
    assert!(Subgroups::Auto.resolve(sub, false));
    assert!(!Subgroups::Auto.resolve(sub, true));
    assert!(!Subgroups::Auto.resolve(none, false));
    // on: wherever the feature is; off: never
    assert!(Subgroups::On.resolve(sub, true));
    assert!(!Subgroups::On.resolve(none, false));
    assert!(!Subgroups::Off.resolve(sub, false));
}

#[test]
fn auto_follows_the_adapter_type() {
    let device = wgpu_subgroups(Subgroups::Auto);
    let summary = device.summary();
    let has = summary.features.iter().any(|f| f == "SUBGROUP");
    assert_eq!(device.uses_subgroups(), has && summary.device_type != "Cpu", "{summary:?}");
    // `losscape info` predicts each choice from the adapter's description as the device decides it
    for choice in [Subgroups::Auto, Subgroups::On, Subgroups::Off] {
        assert_eq!(Subgroups::parse(choice.name()).unwrap(), choice);
        let device = wgpu_subgroups(choice);
        assert_eq!(choice.resolve_for(&device.summary()), device.uses_subgroups(), "{choice:?}");
    }
}

/// Per-row dot products, sums and squared norms on a device.
fn reductions(device: &Device, x: &[f32], y: &[f32], rows: usize, len: usize) -> [Vec<f64>; 3] {
    let (gx, gy) = (device.upload(x, "x").unwrap(), device.upload(y, "y").unwrap());
    let dots = device.dot(Rows::new(&gx, rows, len), Rows::new(&gy, rows, len)).unwrap();
    let sums = device.sum(Rows::new(&gx, rows, len)).unwrap();
    let norms = device.dot(Rows::new(&gx, rows, len), Rows::new(&gx, rows, len)).unwrap();
    [dots, sums, norms]
}

#[test]
fn dot_and_sum_match_f64_with_and_without_subgroups() {
    // not a multiple of the workgroup size; several workgroups per row
    let (rows, len) = (3, 20_011);
    let (x, y) = (data(rows, len, 1), data(rows, len, 2));
    let on = reductions(&with_subgroups(), &x, &y, rows, len);
    let off = reductions(&without_subgroups(), &x, &y, rows, len);
    for r in 0..rows {
        let (xr, yr) = (&x[r * len..(r + 1) * len], &y[r * len..(r + 1) * len]);
        let dot: f64 = xr.iter().zip(yr).map(|(&a, &b)| a as f64 * b as f64).sum();
        let sum: f64 = xr.iter().map(|&a| a as f64).sum();
        let norm: f64 = xr.iter().map(|&a| (a as f64).powi(2)).sum();
        let dot_scale: f64 = xr.iter().zip(yr).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
        let sum_scale: f64 = xr.iter().map(|&a| a.abs() as f64).sum();
        for (name, got) in [("on", &on), ("off", &off)] {
            assert!((got[0][r] - dot).abs() < 1e-5 * dot_scale, "{name} row {r}: dot {} vs {dot}", got[0][r]);
            assert!((got[1][r] - sum).abs() < 1e-5 * sum_scale, "{name} row {r}: sum {} vs {sum}", got[1][r]);
            assert!((got[2][r] - norm).abs() < 1e-5 * norm, "{name} row {r}: norm {} vs {norm}", got[2][r]);
        }
        // and with each other, to the same f32 tolerance
        assert!((on[0][r] - off[0][r]).abs() < 1e-5 * dot_scale, "row {r}: dots {} vs {}", on[0][r], off[0][r]);
        assert!((on[1][r] - off[1][r]).abs() < 1e-5 * sum_scale, "row {r}: sums {} vs {}", on[1][r], off[1][r]);
        assert!((on[2][r] - off[2][r]).abs() < 1e-5 * norm, "row {r}: norms {} vs {}", on[2][r], off[2][r]);
    }
}

fn run(device: &Device, arch: Arch, data: &Dataset, flat: &[f32], chunk: Option<usize>) -> (Vec<Eval>, Vec<f32>) {
    let images = DeviceImages::upload(device, data).unwrap();
    let b = flat.len() / arch.n_params();
    let eval = Evaluator::with_chunk(Network { arch, act: Act::Softplus }, &images, 0..data.len(), b, chunk).unwrap();
    eval.set_weights(flat).unwrap();
    eval.run(Want::LossAndGrad);
    (eval.results().unwrap(), eval.gradients().unwrap())
}

/// Both variants against the f64 reference, and against each other: losses to f32 tolerance, the
/// same accuracies, and the same gradients bit for bit (only the loss sums differ between variants).
fn compare(arch: Arch, data: &Dataset, seeds: std::ops::Range<u64>, scale: f32, chunk: Option<usize>) {
    let n = arch.n_params();
    let flat: Vec<f32> = seeds.flat_map(|s| init_vector(arch, s)).map(|x| x * scale).collect();
    let (on, on_grads) = run(&with_subgroups(), arch, data, &flat, chunk);
    let (off, off_grads) = run(&without_subgroups(), arch, data, &flat, chunk);
    assert_eq!(on.len(), flat.len() / n);
    assert_eq!(on_grads, off_grads, "{arch:?}: the gradients do not depend on the loss sums");
    for (b, (a, c)) in on.iter().zip(&off).enumerate() {
        let reference = evaluate(arch, &to_f64(&flat[b * n..(b + 1) * n]), Act::Softplus, data);
        for (name, r) in [("on", a), ("off", c)] {
            let rel = (r.loss - reference.loss).abs() / reference.loss;
            assert!(rel <= 1e-5, "{arch:?} {name} vector {b}: loss {} vs {} (rel {rel:e})", r.loss, reference.loss);
            assert_eq!(r.accuracy, reference.accuracy, "{arch:?} {name} vector {b}: accuracy");
        }
        let rel = (a.loss - c.loss).abs() / c.loss;
        assert!(rel <= 1e-5, "{arch:?} vector {b}: subgroups {} vs tree {} (rel {rel:e})", a.loss, c.loss);
        let g = max_rel_diff(&on_grads[b * n..(b + 1) * n], &reference.grad);
        assert!(g <= 1e-4, "{arch:?} vector {b}: gradient error {g:e} of its largest magnitude");
    }
}

#[test]
fn cross_entropy_head_matches_the_reference_with_and_without_subgroups() {
    // 300 images: one full workgroup of the loss head and one partial; then chunks of 100
    let data = mnist(Split::Test, 300);
    compare(Arch::Fcp, &data, 0..2, 4.0, None);
    compare(Arch::Fcp, &data, 2..3, 4.0, Some(100));
}

#[test]
fn reconstruction_head_matches_the_reference_with_and_without_subgroups() {
    let data = mnist(Split::Test, 40);
    compare(Arch::Autoencoder, &data, 0..2, 3.0, None);
}
