//! Random networks drawn from the description vocabulary (`tests/common/architectures.rs`: dense,
//! convolution and pooling stacks, LSTMs over image rows, every activation, both heads, with and without
//! biases, odd image sizes), planned from their descriptions and run on the suite's device (the CPU
//! backend by default, the WGSL kernels in the wgpu pass) against the f64 reference interpreter: loss
//! within 1e-5 relative, every gradient entry within 1e-4 of the gradient's largest magnitude, for two
//! weight vectors per network in one batched evaluation. At least 20 networks are checked; a network
//! the plan builder does not take yet is refused with an error naming its layer, never a panic.

#[path = "common/architectures.rs"]
mod architectures;
#[path = "common/mod.rs"]
mod common;

use architectures::{random_dataset, random_description, random_weights};
use losscape::data::DeviceImages;
use losscape::model::reference::evaluate_description;
use losscape::model::{Evaluator, Plan, Want};

/// Seeds tried; the builder's refusals (see docs/networks.md §7) leave at least 20 of them.
const SEEDS: u64 = 40;
const BATCH: usize = 2;
const IMAGES: usize = 5;

#[test]
fn random_networks_match_the_f64_reference_on_this_device() {
    let device = common::gpu();
    let (mut checked, mut refused) = (0, Vec::new());
    for seed in 0..SEEDS {
        let desc = random_description(seed);
        if let Err(e) = Plan::for_description(&desc, 0..IMAGES, IMAGES, BATCH, IMAGES, 0) {
            let e = format!("{e:#}");
            assert!(e.contains("layer"), "seed {seed}: a refusal names the layer: {e}");
            refused.push(format!("seed {seed}: {e}"));
            continue;
        }
        let data = random_dataset(&desc, IMAGES, seed);
        let images = DeviceImages::upload(&device, &data).unwrap();
        // chunks of 3 images: the second chunk accumulates into the gradient
        let eval = Evaluator::for_description(&desc, &images, 0..IMAGES, BATCH, Some(3)).unwrap();
        let vectors: Vec<Vec<f64>> = (0..BATCH as u64).map(|b| random_weights(&desc, 100 * seed + b, 1.5)).collect();
        let n = vectors[0].len();
        let flat: Vec<f32> = vectors.iter().flatten().map(|&v| v as f32).collect();
        eval.set_weights(&flat).unwrap();
        let evals = eval.evaluate(Want::LossAndGrad).unwrap();
        let grads = eval.gradients().unwrap();
        for (b, w) in vectors.iter().enumerate() {
            // the reference in f64 on the f32 weights the device holds
            let w32: Vec<f64> = w.iter().map(|&v| v as f32 as f64).collect();
            let want = evaluate_description(&desc, &w32, &data).unwrap();
            let got = evals[b].loss;
            assert!(
                (got - want.loss).abs() <= 1e-5 * want.loss.abs().max(1e-6),
                "seed {seed} ({}), vector {b}: loss {got}, f64 {}",
                desc.to_toml(),
                want.loss
            );
            let scale = want.grad.iter().fold(0f64, |m, v| m.max(v.abs()));
            for (k, (&g, &r)) in grads[b * n..][..n].iter().zip(&want.grad).enumerate() {
                assert!(
                    (g as f64 - r).abs() <= 1e-4 * scale,
                    "seed {seed} ({}), vector {b}, parameter {k}: gradient {g}, f64 {r} (largest {scale})",
                    desc.to_toml()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} of {SEEDS} random networks planned; refused:\n{}", refused.join("\n"));
}
