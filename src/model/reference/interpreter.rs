//! The f64 interpreter of a [`Description`]: every layer's forward pass on one image, the loss head,
//! and the reverse-mode backward pass, written by hand over the layer list (issue 23: the reference
//! is derived from the description, never written per network).
//!
//! Semantics, as PyTorch's equivalent `torch.nn.Sequential` (docs/networks.md §7): the image's bytes
//! b become b / 255; `rows` input lays the (optionally permuted, x'[j] = x[P[j]] with
//! P = `torch.randperm(C·H·W)` seeded `permute_seed`) image out as H steps of C·W values, step s
//! holding row s of every channel; the heads are the numerically stable softmax cross-entropy with
//! the first maximal logit as the prediction, or the logistic sigmoid of the output and the mean
//! squared error against the (unpermuted, flattened) input image; the loss and its gradient are the
//! means over the images.

use std::ops::Range;

use anyhow::{bail, Context, Result};

use super::layers::{self, Dims, LstmParams, LstmTrace, Pool, Window};
use super::{act, act_grad, cross_entropy, pixels, Reference};
use crate::data::Dataset;
use crate::model::description::{Derived, Description, Head, Input, LayerKind, Shape};
use crate::model::permutation::randperm;

/// A description bound to a flat parameter vector (f64, the tensors of `derive().params` in order,
/// each row-major): ready to run images forward and gradients backward.
#[derive(Clone, Debug)]
pub struct Interpreter<'a> {
    desc: &'a Description,
    derived: Derived,
    w: &'a [f64],
    /// Each layer's range of the flat vector (empty for a layer without parameters).
    spans: Vec<Range<usize>>,
    /// The `rows` input's permutation P (x'[j] = x[P[j]]), if it has one.
    perm: Option<Vec<usize>>,
}

/// One image's values between the layers, kept for the backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// `values[0]` is what the first layer receives (for `rows` input: the permuted image laid out as
    /// a sequence); `values[l + 1]` is layer l's output, shaped as `Derived::outputs[l]`.
    pub values: Vec<Vec<f64>>,
    /// The states of each LSTM layer (`None` for other layers).
    lstm: Vec<Option<LstmTrace>>,
}

impl Trace {
    /// The last layer's output: the logits, or the autoencoder's output before its sigmoid.
    pub fn output(&self) -> &[f64] {
        &self.values[self.values.len() - 1]
    }
}

/// The image geometry of a derived shape (convolutions and pools receive only images: `derive`
/// checks it).
fn dims(s: Shape) -> Dims {
    match s {
        Shape::Image { c, h, w } => Dims { c, h, w },
        Shape::Sequence { steps, features } => Dims { c: 1, h: steps, w: features },
        Shape::Features(n) => Dims { c: 1, h: 1, w: n },
    }
}

/// `s` cut at `at`, the second part only when `keep` (a layer's weight and optional bias).
fn split_opt(s: &[f64], at: usize, keep: bool) -> (&[f64], Option<&[f64]>) {
    let (a, b) = s.split_at(at);
    (a, keep.then_some(b))
}

/// [`split_opt`] on a gradient.
fn split_opt_mut(s: &mut [f64], at: usize, keep: bool) -> (&mut [f64], Option<&mut [f64]>) {
    let (a, b) = s.split_at_mut(at);
    (a, keep.then_some(b))
}

impl<'a> Interpreter<'a> {
    /// Binds `desc` to the flat vector `w`.
    ///
    /// Errors: the description does not derive (a layer that does not fit its input, a head that does
    /// not fit); `w` is not of the description's parameter count.
    pub fn new(desc: &'a Description, w: &'a [f64]) -> Result<Interpreter<'a>> {
        let derived = desc.derive().context("the network description")?;
        if w.len() != derived.n_params() {
            let names: Vec<String> = derived.params.iter().map(|p| format!("{} {:?}", p.name, p.shape)).collect();
            bail!("the network has {} parameters ({}), the vector {}", derived.n_params(), names.join(", "), w.len());
        }
        let mut spans = vec![0..0; desc.layers.len()];
        let mut offset = 0;
        for p in &derived.params {
            // a layer's tensors are consecutive: its span starts at its first
            let start = if spans[p.layer].end == 0 { offset } else { spans[p.layer].start };
            spans[p.layer] = start..offset + p.len();
            offset += p.len();
        }
        let perm = match desc.input {
            Input::Rows { c, h, w, permute_seed: Some(seed) } => Some(randperm(c * h * w, seed)),
            _ => None,
        };
        Ok(Interpreter { desc, derived, w, spans, perm })
    }

    /// What `derive` gives for the description.
    pub fn derived(&self) -> &Derived {
        &self.derived
    }

    /// The shape layer `l` receives.
    fn in_shape(&self, l: usize) -> Shape {
        if l == 0 {
            self.derived.input
        } else {
            self.derived.outputs[l - 1]
        }
    }

    /// What the first layer receives for an image of C·H·W values (channel, row, column order):
    /// the image itself, or for `rows` input the permuted image as a sequence of rows.
    fn input(&self, image: &[f64]) -> Vec<f64> {
        let Input::Rows { c, h, w, .. } = self.desc.input else {
            return image.to_vec();
        };
        let x: Vec<f64> = match &self.perm {
            Some(p) => p.iter().map(|&j| image[j]).collect(),
            None => image.to_vec(),
        };
        let mut seq = Vec::with_capacity(x.len());
        for s in 0..h {
            for ci in 0..c {
                seq.extend_from_slice(&x[(ci * h + s) * w..][..w]);
            }
        }
        seq
    }

    /// Runs one image (C·H·W values in (channel, row, column) order, as [`pixels`] gives them)
    /// through every layer.
    ///
    /// Errors: the image does not have the input's number of values.
    pub fn forward(&self, image: &[f64]) -> Result<Trace> {
        if image.len() != self.desc.input_len() {
            bail!("the network reads {} values per image, this one has {}", self.desc.input_len(), image.len());
        }
        let mut values = vec![self.input(image)];
        let mut lstm = Vec::with_capacity(self.desc.layers.len());
        for (l, layer) in self.desc.layers.iter().enumerate() {
            let (x, w, shape) = (&values[l], &self.w[self.spans[l].clone()], self.in_shape(l));
            let mut state = None;
            let y = match layer.kind {
                LayerKind::Dense { out, bias } => {
                    let (wt, b) = split_opt(w, out * x.len(), bias);
                    layers::dense(wt, b, x, out)
                }
                LayerKind::Conv2d { out, kernel, stride, padding, bias } => {
                    let d = dims(shape);
                    let (wt, b) = split_opt(w, out * d.c * kernel * kernel, bias);
                    layers::conv2d(x, d, wt, b, out, Window { kernel, stride, padding }).0
                }
                LayerKind::AvgPool { kernel, stride } => {
                    layers::pool(Pool::Avg, x, dims(shape), Window { kernel, stride, padding: 0 }).0
                }
                LayerKind::MaxPool { kernel, stride } => {
                    layers::pool(Pool::Max, x, dims(shape), Window { kernel, stride, padding: 0 }).0
                }
                LayerKind::Flatten => x.clone(),
                LayerKind::Lstm { hidden, bias } => {
                    let t = layers::lstm(lstm_params(w, hidden, dims(shape).w, bias), x, dims(shape).h);
                    let h = t.output().to_vec();
                    state = Some(t);
                    h
                }
                LayerKind::Act(a) => x.iter().map(|&v| act(a.act(), v)).collect(),
            };
            values.push(y);
            lstm.push(state);
        }
        Ok(Trace { values, lstm })
    }

    /// The backward pass of `trace` given d loss / d output (the last layer's): adds d loss / d w to
    /// `grad` (the flat vector's length).
    ///
    /// Errors: `grad` or `d_out` is not of the right length, or `trace` is not of this network.
    pub fn backward(&self, trace: &Trace, d_out: &[f64], grad: &mut [f64]) -> Result<()> {
        if grad.len() != self.w.len()
            || d_out.len() != trace.output().len()
            || trace.lstm.len() != self.desc.layers.len()
        {
            bail!(
                "backward: a gradient of {} values (want {}), d loss / d output of {} (want {}), a trace of {} layers (want {})",
                grad.len(),
                self.w.len(),
                d_out.len(),
                trace.output().len(),
                trace.lstm.len(),
                self.desc.layers.len()
            );
        }
        let mut d = d_out.to_vec();
        for (l, layer) in self.desc.layers.iter().enumerate().rev() {
            let (x, w, shape) = (&trace.values[l], &self.w[self.spans[l].clone()], self.in_shape(l));
            let g = &mut grad[self.spans[l].clone()];
            let want_dx = l > 0;
            d = match layer.kind {
                LayerKind::Dense { out, bias } => {
                    let (gw, gb) = split_opt_mut(g, out * x.len(), bias);
                    layers::dense_back(w, x, &d, gw, gb, want_dx)
                }
                LayerKind::Conv2d { out, kernel, stride, padding, bias } => {
                    let (dm, win) = (dims(shape), Window { kernel, stride, padding });
                    let (gw, gb) = split_opt_mut(g, out * dm.c * kernel * kernel, bias);
                    layers::conv2d_back(x, dm, w, win, &d, win.out_dims(dm, out), gw, gb, want_dx)
                }
                LayerKind::AvgPool { kernel, stride } => {
                    layers::pool_back(Pool::Avg, x, dims(shape), Window { kernel, stride, padding: 0 }, &d)
                }
                LayerKind::MaxPool { kernel, stride } => {
                    layers::pool_back(Pool::Max, x, dims(shape), Window { kernel, stride, padding: 0 }, &d)
                }
                LayerKind::Flatten => d,
                LayerKind::Lstm { hidden, bias } => {
                    let Some(t) = &trace.lstm[l] else {
                        bail!("backward: layer {l} (lstm) has no states in the trace")
                    };
                    let p = lstm_params(w, hidden, dims(shape).w, bias);
                    let (g_ih, rest) = g.split_at_mut(p.w_ih.len());
                    let (g_hh, g_b) = rest.split_at_mut(p.w_hh.len());
                    layers::lstm_back(p, t, &d, g_ih, g_hh, bias.then(|| g_b.split_at_mut(4 * hidden)));
                    Vec::new()
                }
                LayerKind::Act(a) => d.iter().zip(x).map(|(g, &z)| g * act_grad(a.act(), z)).collect(),
            };
        }
        Ok(())
    }
}

/// An LSTM layer's tensors within its span of the flat vector.
fn lstm_params(w: &[f64], hidden: usize, features: usize, bias: bool) -> LstmParams<'_> {
    let g = 4 * hidden;
    let (w_ih, rest) = w.split_at(g * features);
    let (w_hh, b) = rest.split_at(g * hidden);
    LstmParams { w_ih, w_hh, bias: bias.then(|| b.split_at(g)), hidden }
}

/// Checks that `data` fits `desc`: its images have the input's shape (for `features = N`, N values),
/// every label is below the cross-entropy head's class count, and there is at least one image.
///
/// Errors: each mismatch, naming the dataset's file, both shapes or the label.
pub fn check_data(desc: &Description, data: &Dataset) -> Result<()> {
    let source = data.source.display();
    let s = data.shape;
    match desc.input {
        Input::Image { c, h, w } | Input::Rows { c, h, w, .. } if s.dims() != [c, h, w] => {
            bail!("the network reads images {c}x{h}x{w} (CxHxW); {source} has images {s}")
        }
        Input::Features(n) if s.pixels() != n => {
            bail!("the network reads {n} features per image; {source} has images {s} ({} values)", s.pixels())
        }
        _ => {}
    }
    if data.is_empty() {
        bail!("{source} holds no images: the mean loss over none is undefined");
    }
    if let Head::CrossEntropy { classes } = desc.head {
        if let Some(i) = data.labels.iter().position(|&l| l as usize >= classes) {
            let labels = data.labels_file().display();
            bail!("image {i} of {labels} has label {}, not below the network's {classes} classes", data.labels[i]);
        }
    }
    Ok(())
}

/// The mean loss, the accuracy (cross-entropy head: the share of images whose first maximal logit is
/// the label) and the gradient of the mean loss of the network `desc` with parameters `w` (f64, in
/// `derive().params` order) on every image of `data`.
///
/// Errors: the description does not derive, `w` is not of its length, or `data` does not fit it
/// ([`check_data`]).
pub fn evaluate_description(desc: &Description, w: &[f64], data: &Dataset) -> Result<Reference> {
    check_data(desc, data)?;
    let net = Interpreter::new(desc, w)?;
    let mut grad = vec![0.0; w.len()];
    let (mut loss, mut correct) = (0.0, 0usize);
    let n = data.len() as f64;
    for i in 0..data.len() {
        let x = pixels(data, i);
        let trace = net.forward(&x)?;
        let out = trace.output();
        let d: Vec<f64> = match desc.head {
            Head::CrossEntropy { .. } => {
                let label = data.labels[i] as usize;
                let (l, d) = cross_entropy(out, label);
                loss += l;
                correct += (argmax(out) == label) as usize;
                d.iter().map(|g| g / n).collect()
            }
            Head::SigmoidMse => {
                let m = out.len() as f64;
                let y: Vec<f64> = out.iter().map(|&z| layers::sigmoid(z)).collect();
                loss += y.iter().zip(&x).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / m;
                y.iter().zip(&x).map(|(&a, b)| 2.0 * (a - b) * a * (1.0 - a) / (m * n)).collect()
            }
        };
        net.backward(&trace, &d, &mut grad)?;
    }
    let accuracy = matches!(desc.head, Head::CrossEntropy { .. }).then(|| correct as f64 / n);
    Ok(Reference { loss: loss / n, accuracy, grad })
}

/// The first index of the largest value.
fn argmax(z: &[f64]) -> usize {
    (0..z.len()).fold(0, |best, k| if z[k] > z[best] { k } else { best })
}

/// The gradient of the mean loss by central differences (L(w + h e_i) − L(w − h e_i)) / 2h at the
/// coordinates `coords`: the check of the analytic gradient.
///
/// Errors: as [`evaluate_description`]; a coordinate out of range.
pub fn numeric_grad_description(
    desc: &Description,
    w: &[f64],
    data: &Dataset,
    coords: &[usize],
    h: f64,
) -> Result<Vec<f64>> {
    coords
        .iter()
        .map(|&i| {
            if i >= w.len() {
                bail!("coordinate {i} is out of range: the vector has {} values", w.len());
            }
            let loss = |delta: f64| -> Result<f64> {
                let mut v = w.to_vec();
                v[i] += delta;
                Ok(evaluate_description(desc, &v, data)?.loss)
            };
            Ok((loss(h)? - loss(-h)?) / (2.0 * h))
        })
        .collect()
}
