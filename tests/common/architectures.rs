#![allow(dead_code)]
//! A seeded generator of random networks drawn from the description vocabulary
//! (docs/networks.md §7): MLPs (on `features` or a flattened `image`), convolution stacks
//! (conv2d with strides and paddings, average and max pools, then flatten and dense layers) and
//! LSTMs over `rows` (with and without the pixel permutation), every activation, both heads, with and
//! without biases, small odd image sizes such as 3×13×11 so that the tests are fast. Every description
//! it gives derives (the generator follows the shapes as `derive` does). With a matching random
//! dataset and weight vector, for the reference's and the kernels' tests.
//!
//! Included with `#[path = "common/architectures.rs"] mod architectures;`.

use std::path::Path;

use losscape::data::{Dataset, ImageShape};
use losscape::model::description::{Activation, Description, Head, Input, Layer, LayerKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Image shapes the generator draws from besides random ones: odd, rectangular, 1 to 3 channels.
const SHAPES: [(usize, usize, usize); 6] = [(3, 13, 11), (1, 7, 5), (2, 9, 6), (3, 5, 8), (1, 4, 4), (2, 11, 3)];

/// The three families, chosen by `seed % 3` so that consecutive seeds cover them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Mlp,
    Conv,
    Lstm,
}

impl Family {
    pub fn of(seed: u64) -> Family {
        [Family::Mlp, Family::Conv, Family::Lstm][(seed % 3) as usize]
    }
}

fn activation(rng: &mut ChaCha8Rng) -> LayerKind {
    LayerKind::Act(Activation::ALL[rng.random_range(0..4)])
}

fn image(rng: &mut ChaCha8Rng) -> (usize, usize, usize) {
    if rng.random_bool(0.5) {
        SHAPES[rng.random_range(0..SHAPES.len())]
    } else {
        (rng.random_range(1..=3), rng.random_range(3..=10), rng.random_range(3..=10))
    }
}

/// The output side of a window (as `derive`), if it fits.
fn side(n: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    (n + 2 * padding >= kernel).then(|| (n + 2 * padding - kernel) / stride + 1)
}

/// 0 to 2 hidden dense layers, each followed by an activation, then the output layer of `out`
/// (sometimes followed by an activation too: the head takes whatever the last layer gives).
fn dense_stack(rng: &mut ChaCha8Rng, layers: &mut Vec<LayerKind>, out: usize) {
    for _ in 0..rng.random_range(0..=2) {
        layers.push(LayerKind::Dense { out: rng.random_range(2..=6), bias: rng.random_bool(0.5) });
        layers.push(activation(rng));
    }
    layers.push(LayerKind::Dense { out, bias: rng.random_bool(0.5) });
    if rng.random_bool(0.2) {
        layers.push(activation(rng));
    }
}

/// Convolution blocks on an image of h×w pixels: conv2d (kernel 1–3, stride 1–2, padding 0–1), an activation
/// mostly, a pool (average or max, kernel 2–3, stride 1–kernel, overlapping when stride < kernel)
/// half the time; sometimes a pool first.
fn conv_stack(rng: &mut ChaCha8Rng, layers: &mut Vec<LayerKind>, (mut h, mut w): (usize, usize)) {
    let pool = |rng: &mut ChaCha8Rng, layers: &mut Vec<LayerKind>, h: &mut usize, w: &mut usize| {
        let kernel = rng.random_range(2..=3);
        let stride = rng.random_range(1..=kernel);
        if let (Some(oh), Some(ow)) = (side(*h, kernel, stride, 0), side(*w, kernel, stride, 0)) {
            let max = rng.random_bool(0.5);
            layers.push(if max {
                LayerKind::MaxPool { kernel, stride }
            } else {
                LayerKind::AvgPool { kernel, stride }
            });
            (*h, *w) = (oh, ow);
        }
    };
    if rng.random_bool(0.15) {
        pool(rng, layers, &mut h, &mut w);
    }
    for _ in 0..rng.random_range(1..=2) {
        let (stride, padding) = (rng.random_range(1..=2), rng.random_range(0..=1));
        let kernel = rng.random_range(1..=3).min(h + 2 * padding).min(w + 2 * padding);
        let out = rng.random_range(1..=3);
        layers.push(LayerKind::Conv2d { out, kernel, stride, padding, bias: rng.random_bool(0.5) });
        (h, w) = (side(h, kernel, stride, padding).unwrap(), side(w, kernel, stride, padding).unwrap());
        if rng.random_bool(0.75) {
            layers.push(activation(rng));
        }
        if rng.random_bool(0.5) {
            pool(rng, layers, &mut h, &mut w);
        }
    }
    layers.push(LayerKind::Flatten);
    if rng.random_bool(0.15) {
        layers.push(activation(rng));
    }
}

/// The random network of `seed` (its family is [`Family::of`]`(seed)`).
pub fn random_description(seed: u64) -> Description {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_a4c4);
    let (c, h, w) = image(&mut rng);
    let head =
        if rng.random_bool(0.25) { Head::SigmoidMse } else { Head::CrossEntropy { classes: rng.random_range(2..=5) } };
    let mut layers = Vec::new();
    let input = match Family::of(seed) {
        Family::Mlp if rng.random_bool(0.5) => Input::Features(c * h * w),
        Family::Mlp => {
            layers.push(LayerKind::Flatten);
            Input::Image { c, h, w }
        }
        Family::Conv => {
            conv_stack(&mut rng, &mut layers, (h, w));
            Input::Image { c, h, w }
        }
        Family::Lstm => {
            layers.push(LayerKind::Lstm { hidden: rng.random_range(2..=5), bias: rng.random_bool(0.5) });
            if rng.random_bool(0.3) {
                layers.push(activation(&mut rng));
            }
            Input::Rows { c, h, w, permute_seed: rng.random_bool(0.5).then(|| rng.random_range(0..10_000)) }
        }
    };
    let out = match head {
        Head::CrossEntropy { classes } => classes,
        Head::SigmoidMse => c * h * w,
    };
    dense_stack(&mut rng, &mut layers, out);
    Description {
        format: 1,
        name: Some(format!("random-{seed}")),
        input,
        layers: layers.into_iter().map(Layer::new).collect(),
        head,
    }
}

/// The image shape a description reads: its `image` or `rows` shape, or 1×1×N for `features = N`.
pub fn input_shape(desc: &Description) -> ImageShape {
    match desc.input {
        Input::Image { c, h, w } | Input::Rows { c, h, w, .. } => ImageShape::new(c, h, w),
        Input::Features(n) => ImageShape::new(1, 1, n),
    }
}

/// `n` images of random bytes in the shape `desc` reads, with random labels below its class count
/// (all 0 for the autoencoder head); `classes` is the head's.
pub fn random_dataset(desc: &Description, n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xda7a);
    let shape = input_shape(desc);
    let classes = match desc.head {
        Head::CrossEntropy { classes } => classes,
        Head::SigmoidMse => 1,
    };
    let pixels = (0..n * shape.pixels()).map(|_| rng.random::<u8>()).collect();
    let labels = (0..n).map(|_| rng.random_range(0..classes) as u8).collect();
    let mut data = Dataset::new(pixels, labels, shape, Path::new("")).expect("n images of the shape");
    data.classes = classes;
    data
}

/// A random flat vector for `desc`: each tensor drawn from U(±scale / sqrt(fan_in)) (PyTorch's default
/// init, widened by `scale`).
pub fn random_weights(desc: &Description, seed: u64, scale: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3e17);
    let derived = desc.derive().expect("a generated description derives");
    derived
        .params
        .iter()
        .flat_map(|p| {
            let b = scale * p.init_bound() as f64;
            (0..p.len()).map(|_| rng.random_range(-b..b)).collect::<Vec<_>>()
        })
        .collect()
}
