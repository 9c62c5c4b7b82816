//! Networks that are not the paper's, planned from their descriptions (`Plan::for_description`) and
//! run through the evaluator on the suite's device (the CPU backend by default, the WGSL kernels in
//! the wgpu pass): an MLP in the compact form, a CNN with a stride-2 convolution, max and overlapping
//! average pooling on 3×13×11 images, an LSTM over the rows of 3-channel images (with and without a
//! pixel permutation), and a convolutional autoencoder. Each is checked against the f64 reference
//! interpreter (`model::reference`, itself checked against finite differences): loss within 1e-5
//! relative, every gradient entry within 1e-4 of the gradient's largest magnitude.

#[path = "common/mod.rs"]
mod common;

use losscape::data::{Dataset, DeviceImages, ImageShape};
use losscape::model::description::Input;
use losscape::model::reference::evaluate_description;
use losscape::model::{rows_table, Description, Evaluator, Want};
use losscape::ops::plan::Plan;

const CNN: &str = r#"
format = 1
[input]
image = [3, 13, 11]
[[layers]]
kind = "conv2d"
out = 4
kernel = 3
stride = 2
padding = 1
[[layers]]
kind = "relu"
[[layers]]
kind = "max_pool"
kernel = 2
stride = 1
[[layers]]
kind = "conv2d"
out = 5
kernel = 3
bias = false
[[layers]]
kind = "tanh"
[[layers]]
kind = "avg_pool"
kernel = 3
stride = 1
[[layers]]
kind = "flatten"
[[layers]]
kind = "sigmoid"
[[layers]]
kind = "dense"
out = 7
[[layers]]
kind = "softplus"
[[layers]]
kind = "dense"
out = 10
[head]
kind = "cross_entropy"
classes = 10
"#;

const LSTM: &str = r#"
format = 1
[input]
rows = [3, 5, 4]
[[layers]]
kind = "lstm"
hidden = 6
[[layers]]
kind = "dense"
out = 4
[head]
kind = "cross_entropy"
classes = 4
"#;

const AUTOENCODER: &str = r#"
format = 1
[input]
image = [1, 5, 7]
[[layers]]
kind = "conv2d"
out = 2
kernel = 3
padding = 1
[[layers]]
kind = "relu"
[[layers]]
kind = "avg_pool"
kernel = 2
stride = 1
[[layers]]
kind = "flatten"
[[layers]]
kind = "dense"
out = 35
bias = false
[head]
kind = "sigmoid_mse"
"#;

/// Plans `desc` for 3 vectors on 9 images (chunks of 4), runs loss and gradient on the suite's
/// device, and checks them against the f64 reference and its finite differences.
fn check(name: &str, desc: &Description, classes: u8) {
    let derived = desc.derive().unwrap();
    let n_prm = derived.n_params();
    let (c, h, w) = match desc.input {
        Input::Image { c, h, w } | Input::Rows { c, h, w, .. } => (c, h, w),
        Input::Features(n) => (1, 1, n),
    };
    let count = 9;
    let pixels: Vec<u8> = (0..count * c * h * w).map(|i| ((i * 7919 + 13) % 256) as u8).collect();
    let labels: Vec<u8> = (0..count).map(|i| (i * 5 % classes as usize) as u8).collect();
    let data =
        Dataset::new(pixels.clone(), labels.clone(), ImageShape::new(c, h, w), std::path::Path::new("test")).unwrap();
    let device = common::gpu();
    let up = DeviceImages::upload(&device, &data).unwrap();
    let batch = 3;
    let eval = Evaluator::for_description(desc, &up, 0..count, batch, Some(4)).unwrap();
    assert_eq!(eval.plan(), &Plan::for_description(desc, 0..count, count, batch, 4, 0).unwrap());
    let weights: Vec<f32> =
        (0..batch * n_prm).map(|i| (((i * 2654435761usize) % 1000) as f32 / 1000.0 - 0.5) * 0.8).collect();
    eval.set_weights(&weights).unwrap();
    let evals = eval.evaluate(Want::LossAndGrad).unwrap();
    let grads = eval.gradients().unwrap();
    for b in 0..batch {
        let wv: Vec<f64> = weights[b * n_prm..][..n_prm].iter().map(|&v| v as f64).collect();
        let want = evaluate_description(desc, &wv, &data).unwrap();
        let got = evals[b].loss;
        assert!(
            (got - want.loss).abs() <= 1e-5 * want.loss.abs().max(1e-3),
            "{name}: vector {b} loss {got}, f64 {}",
            want.loss
        );
        let g = &grads[b * n_prm..][..n_prm];
        let scale = want.grad.iter().fold(0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{name}: zero gradient");
        for (k, (&got, &want)) in g.iter().zip(&want.grad).enumerate() {
            assert!(
                (got as f64 - want).abs() <= 1e-4 * scale,
                "{name}: vector {b} parameter {k}: gradient {got}, f64 {want}"
            );
        }
    }
}

#[test]
fn a_compact_mlp_plans_and_runs() {
    let desc = Description::parse("mlp:429-64-32-10:tanh").unwrap();
    check("mlp:429-64-32-10:tanh", &desc, 10);
}

#[test]
fn a_cnn_with_strides_max_and_overlapping_pools_plans_and_runs() {
    check("cnn", &Description::parse(CNN).unwrap(), 10);
}

#[test]
fn an_lstm_over_rows_of_three_channels_plans_and_runs() {
    let desc = Description::parse(LSTM).unwrap();
    check("lstm", &desc, 4);
    let Input::Rows { c, h, w, .. } = desc.input else { unreachable!() };
    let permuted = Description { input: Input::Rows { c, h, w, permute_seed: Some(7) }, ..desc };
    check("lstm permuted", &permuted, 4);
}

#[test]
fn a_convolutional_autoencoder_plans_and_runs() {
    check("autoencoder", &Description::parse(AUTOENCODER).unwrap(), 10);
}

#[test]
fn rows_follow_channels_then_columns() {
    // step s holds row s of every channel: (channel, column) order
    let t = rows_table(2, 3, 2, None);
    assert_eq!(t, vec![0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11]);
    // one channel without a permutation: the identity
    assert_eq!(rows_table(1, 4, 5, None), (0..20).collect::<Vec<u32>>());
}
