//! Plain CPU forward and backward passes in f64: the test oracle for the kernels. Written for clarity,
//! not speed. Weights are f64 so that finite differences can test the gradients.
//!
//! One interpreter of a network description ([`evaluate_description`], [`Interpreter`];
//! `interpreter.rs`) over per-layer passes ([`layers`]) serves every network: the paper's four are
//! their built-in descriptions ([`network_description`], [`evaluate`]).

mod interpreter;
pub mod layers;

pub use interpreter::{check_data, evaluate_description, numeric_grad_description, Interpreter, Trace};

use layers::{Dims, Window};

use super::description::{Description, LayerKind, Shape};
use super::{Arch, Network};
use crate::data::Dataset;
use crate::ops::Act;

/// The description the reference evaluates for `arch` with the activation `act`
/// ([`Network::description`]: `act` applies to the FCP and LeNet only).
pub fn network_description(arch: Arch, act: Act) -> Description {
    Network { arch, act }.description()
}

/// Mean loss, accuracy (classifiers) and gradient of the mean loss, all in f64.
#[derive(Clone, Debug)]
pub struct Reference {
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub grad: Vec<f64>,
}

/// The activation `a` at x, with PyTorch's definitions: `nn.Softplus` (beta 1, threshold 20: x itself
/// above 20), `nn.ReLU`, `nn.Sigmoid`, `nn.Tanh`.
pub fn act(a: Act, x: f64) -> f64 {
    match a {
        Act::Softplus if x > 20.0 => x,
        Act::Softplus => x.exp().ln_1p(),
        Act::Relu => x.max(0.0),
        Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Act::Tanh => x.tanh(),
    }
}

/// The derivative of [`act`] at x (ReLU's is 0 at 0, as PyTorch's; softplus's is 1 above 20).
pub fn act_grad(a: Act, x: f64) -> f64 {
    match a {
        Act::Softplus if x > 20.0 => 1.0,
        Act::Softplus => 1.0 / (1.0 + (-x).exp()),
        Act::Relu => (x > 0.0) as u8 as f64,
        Act::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }
        Act::Tanh => 1.0 - x.tanh().powi(2),
    }
}

/// Cross-entropy of one image and its gradient with respect to the logits, without cancellation.
pub fn cross_entropy(z: &[f64], label: usize) -> (f64, Vec<f64>) {
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let r = if z[label] >= max { label } else { z.iter().position(|&v| v == max).unwrap() };
    let s: f64 = (0..z.len()).filter(|&k| k != r).map(|k| (z[k] - z[r]).exp()).sum();
    let loss = s.ln_1p() + (z[r] - z[label]);
    let grad = (0..z.len())
        .map(|k| {
            let p = if k == r { 1.0 / (1.0 + s) } else { (z[k] - z[r]).exp() / (1.0 + s) };
            if k == label {
                if k == r {
                    -s / (1.0 + s)
                } else {
                    p - 1.0
                }
            } else {
                p
            }
        })
        .collect();
    (loss, grad)
}

/// Image `i` of `data` as f64 pixel values: byte b is b / 255 (docs/io.md), C·H·W values in
/// (channel, row, column) order.
pub fn pixels(data: &Dataset, i: usize) -> Vec<f64> {
    data.image(i).iter().map(|&b| b as f64 / 255.0).collect()
}

/// The FCP with activation `act_fn` on every image of `data` ([`evaluate`] of [`Arch::Fcp`]).
///
/// # Panics
/// As [`evaluate`].
pub fn fcp(weights: &[f64], act_fn: Act, data: &Dataset) -> Reference {
    evaluate(Arch::Fcp, weights, act_fn, data)
}

/// A square feature map: `c` channels of `hw` × `hw`, channel-major (the paper's networks' maps; the
/// interpreter's are rectangular, [`layers::Dims`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub c: usize,
    pub hw: usize,
    pub v: Vec<f64>,
}

impl Map {
    fn dims(&self) -> Dims {
        Dims { c: self.c, h: self.hw, w: self.hw }
    }

    fn from(v: Vec<f64>, d: Dims) -> Map {
        Map { c: d.c, hw: d.h, v }
    }
}

/// `nn.Conv2d` with stride 1: cross-correlation with a (out_c, in_c, k, k) kernel, zero padding
/// `pad`, plus the bias (out_c values).
pub fn conv2d(x: &Map, w: &[f64], b: &[f64], k: usize, pad: usize) -> Map {
    let (v, d) = layers::conv2d(&x.v, x.dims(), w, Some(b), b.len(), Window { kernel: k, stride: 1, padding: pad });
    Map::from(v, d)
}

/// `nn.AvgPool2d(2)`: 2×2 average pooling, stride 2.
pub fn avg_pool(x: &Map) -> Map {
    let (v, d) = layers::pool(layers::Pool::Avg, &x.v, x.dims(), Window { kernel: 2, stride: 2, padding: 0 });
    Map::from(v, d)
}

/// LeNet's logits for one image (784 values), with its maps after conv1, the first pool, conv2 and
/// the second pool (6×28², 6×14², 16×10², 16×5²).
///
/// # Panics
/// `w` is not a LeNet vector or `image` not of 784 values.
pub fn lenet_forward(w: &[f64], act_fn: Act, image: &[f64]) -> (Vec<f64>, Vec<Map>) {
    let desc = network_description(Arch::Lenet, act_fn);
    let net = Interpreter::new(&desc, w).unwrap_or_else(|e| panic!("LeNet: {e:#}"));
    let trace = net.forward(image).unwrap_or_else(|e| panic!("LeNet: {e:#}"));
    let maps = desc
        .layers
        .iter()
        .zip(&net.derived().outputs)
        .enumerate()
        .filter(|(_, (layer, _))| matches!(layer.kind, LayerKind::Conv2d { .. } | LayerKind::AvgPool { .. }))
        .map(|(l, (_, &shape))| match shape {
            Shape::Image { c, h, .. } => Map { c, hw: h, v: trace.values[l + 1].clone() },
            s => unreachable!("a convolution or pool gives an image, not {s}"),
        })
        .collect();
    (trace.output().to_vec(), maps)
}

/// Loss, accuracy and gradient of one of the paper's networks (the activation applies to the FCP and
/// LeNet): [`evaluate_description`] of [`network_description`].
///
/// # Panics
/// `w` is not of `arch`'s length, or `data` does not fit it (the message says which): the callers are
/// tests, which pass the paper's networks and MNIST; [`evaluate_description`] returns the error.
pub fn evaluate(arch: Arch, w: &[f64], act_fn: Act, data: &Dataset) -> Reference {
    evaluate_description(&network_description(arch, act_fn), w, data)
        .unwrap_or_else(|e| panic!("the {} reference: {e:#}", arch.title()))
}

/// Gradient of the mean loss by central differences (h = 1e-6) at chosen coordinates: the check of the
/// analytic reference gradients.
///
/// # Panics
/// As [`evaluate`], and for a coordinate out of range.
pub fn numeric_grad(arch: Arch, w: &[f64], act_fn: Act, data: &Dataset, coords: &[usize]) -> Vec<f64> {
    numeric_grad_description(&network_description(arch, act_fn), w, data, coords, 1e-6)
        .unwrap_or_else(|e| panic!("the {} reference: {e:#}", arch.title()))
}
