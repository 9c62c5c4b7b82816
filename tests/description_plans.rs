//! Networks that are not the paper's, planned from their descriptions (`Plan::for_description`) and
//! run through the evaluator on the suite's device (the CPU backend by default, the WGSL kernels in
//! the wgpu pass): an MLP in the compact form, a CNN with a stride-2 convolution, max and overlapping
//! average pooling on 3×13×11 images, an LSTM over the rows of 3-channel images (with and without a
//! pixel permutation), and a convolutional autoencoder. Each is checked against a plain f64 forward
//! pass written here (loss within 1e-5 relative), and its gradient against central finite differences
//! of that f64 loss (within 1e-3 of the gradient's largest magnitude: f32 sums over a few hundred
//! terms).

#[path = "common/mod.rs"]
mod common;

use losscape::data::{Dataset, DeviceImages, ImageShape};
use losscape::model::description::{Activation, Head, Input, LayerKind, Shape};
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

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn act(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => x.max(0.0),
        Activation::Softplus => {
            if x > 20.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
    }
}

/// The mean loss of `images` (values in [0, 1]) with labels, for flat parameters `w`, in f64.
fn reference_loss(desc: &Description, w: &[f64], images: &[Vec<f64>], labels: &[u8]) -> f64 {
    let derived = desc.derive().unwrap();
    let mut offsets = Vec::new();
    let mut off = 0;
    for p in &derived.params {
        offsets.push((p.layer, off));
        off += p.len();
    }
    let tensors = |layer: usize| -> Vec<usize> { offsets.iter().filter(|o| o.0 == layer).map(|o| o.1).collect() };
    let mut total = 0.0;
    for (img, &label) in images.iter().zip(labels) {
        let mut x = img.clone();
        let mut shape = derived.input;
        if let Input::Rows { c, h, w: width, permute_seed } = desc.input {
            let table = rows_table(c, h, width, permute_seed);
            x = table.iter().map(|&i| img[i as usize]).collect();
        }
        for (i, layer) in desc.layers.iter().enumerate() {
            let t = tensors(i);
            let out = derived.outputs[i];
            x = match (layer.kind, shape, out) {
                (LayerKind::Act(a), _, _) => x.iter().map(|&v| act(a, v)).collect(),
                (LayerKind::Flatten, _, _) => x,
                (LayerKind::Dense { out: n, bias }, Shape::Features(inp), _) => (0..n)
                    .map(|o| {
                        let b = if bias { w[t[1] + o] } else { 0.0 };
                        b + (0..inp).map(|k| w[t[0] + o * inp + k] * x[k]).sum::<f64>()
                    })
                    .collect(),
                (
                    LayerKind::Conv2d { kernel: k, stride: s, padding: p, bias, .. },
                    Shape::Image { c, h, w: iw },
                    Shape::Image { c: oc, h: oh, w: ow },
                ) => (0..oc * oh * ow)
                    .map(|e| {
                        let (co, oy, ox) = (e / (oh * ow), e / ow % oh, e % ow);
                        let mut acc = if bias { w[t[1] + co] } else { 0.0 };
                        for ci in 0..c {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (y, xx) =
                                        ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                                    if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < iw {
                                        let v = x[(ci * h + y as usize) * iw + xx as usize];
                                        acc += v * w[t[0] + ((co * c + ci) * k + ky) * k + kx];
                                    }
                                }
                            }
                        }
                        acc
                    })
                    .collect(),
                (
                    LayerKind::AvgPool { kernel: k, stride: s } | LayerKind::MaxPool { kernel: k, stride: s },
                    Shape::Image { h, w: iw, .. },
                    Shape::Image { c, h: oh, w: ow },
                ) => (0..c * oh * ow)
                    .map(|e| {
                        let (ci, oy, ox) = (e / (oh * ow), e / ow % oh, e % ow);
                        let window = (0..k * k).map(|q| x[(ci * h + oy * s + q / k) * iw + ox * s + q % k]);
                        if matches!(layer.kind, LayerKind::MaxPool { .. }) {
                            window.fold(f64::NEG_INFINITY, f64::max)
                        } else {
                            window.sum::<f64>() / (k * k) as f64
                        }
                    })
                    .collect(),
                (LayerKind::Lstm { hidden: n, .. }, Shape::Sequence { steps, features }, _) => {
                    let (mut h, mut c) = (vec![0.0; n], vec![0.0; n]);
                    for step in 0..steps {
                        let xs = &x[step * features..][..features];
                        let gate = |r: usize| {
                            w[t[2] + r]
                                + w[t[3] + r]
                                + (0..features).map(|k| w[t[0] + r * features + k] * xs[k]).sum::<f64>()
                                + (0..n).map(|k| w[t[1] + r * n + k] * h[k]).sum::<f64>()
                        };
                        let g: Vec<f64> = (0..4 * n).map(gate).collect();
                        for j in 0..n {
                            let (ig, fg, gg, og) =
                                (sigmoid(g[j]), sigmoid(g[n + j]), g[2 * n + j].tanh(), sigmoid(g[3 * n + j]));
                            c[j] = fg * c[j] + ig * gg;
                            h[j] = og * c[j].tanh();
                        }
                    }
                    h
                }
                other => panic!("no reference for {other:?}"),
            };
            shape = out;
        }
        total += match desc.head {
            Head::CrossEntropy { .. } => {
                let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - x[label as usize]
            }
            Head::SigmoidMse => x.iter().zip(img).map(|(z, p)| (sigmoid(*z) - p).powi(2)).sum::<f64>() / x.len() as f64,
        };
    }
    total / images.len() as f64
}

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
    let images: Vec<Vec<f64>> =
        pixels.chunks(c * h * w).map(|im| im.iter().map(|&b| b as f64 / 255.0).collect()).collect();
    for b in 0..batch {
        let wv: Vec<f64> = weights[b * n_prm..][..n_prm].iter().map(|&v| v as f64).collect();
        let want = reference_loss(desc, &wv, &images, &labels);
        let got = evals[b].loss;
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1e-3), "{name}: vector {b} loss {got}, f64 {want}");
        let g = &grads[b * n_prm..][..n_prm];
        let scale = g.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
        assert!(scale > 0.0, "{name}: zero gradient");
        for k in (0..n_prm).step_by(1 + n_prm / 150) {
            let e = 1e-6;
            let (mut up_w, mut down_w) = (wv.clone(), wv.clone());
            up_w[k] += e;
            down_w[k] -= e;
            let fd = (reference_loss(desc, &up_w, &images, &labels) - reference_loss(desc, &down_w, &images, &labels))
                / (2.0 * e);
            assert!(
                (g[k] as f64 - fd).abs() <= 1e-3 * scale,
                "{name}: vector {b} parameter {k}: gradient {}, finite differences {fd}",
                g[k]
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
