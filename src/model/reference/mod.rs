//! Plain CPU forward and backward passes in f64: the test oracle for the GPU kernels. Written for
//! clarity, not speed. Weights are f64 so that finite differences can test the gradients.

// Index loops mirror the formulas (out[co][oy][ox] = ...), which is the point of this module.
#![allow(clippy::needless_range_loop)]

mod interpreter;
pub mod layers;

pub use interpreter::{check_data, evaluate_description, numeric_grad_description, Interpreter, Trace};

use super::description::{Description, LayerKind};
use super::input::INPUT_PIXELS;
use super::Arch;
use crate::data::Dataset;
use crate::ops::Act;

/// The description the reference evaluates for one of the paper's networks with the activation
/// `act`: the built-in description of `arch`, every activation layer replaced by `act` for the FCP
/// and LeNet (`--activation` applies only to those two; the LSTM and the autoencoder keep theirs).
/// The one place that maps an [`Arch`] to a description for the reference and the symmetry.
pub fn network_description(arch: Arch, act: Act) -> Description {
    let mut d = Description::builtin(arch.id()).expect("every Arch has a built-in description (tests/description.rs)");
    if matches!(arch, Arch::Fcp | Arch::Lenet) {
        let a = crate::model::description::Activation::ALL
            .into_iter()
            .find(|&a| interpreter::op(a) == act)
            .expect("every Act is an Activation");
        for layer in &mut d.layers {
            if let LayerKind::Act(_) = layer.kind {
                layer.kind = LayerKind::Act(a);
            }
        }
    }
    d
}

/// Mean loss, accuracy (classifiers) and gradient of the mean loss, all in f64.
#[derive(Clone, Debug)]
pub struct Reference {
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub grad: Vec<f64>,
}

pub fn act(a: Act, x: f64) -> f64 {
    match a {
        Act::Softplus if x > 20.0 => x,
        Act::Softplus => x.exp().ln_1p(),
        Act::Relu => x.max(0.0),
        Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Act::Tanh => x.tanh(),
    }
}

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

/// y = W x for W (rows x cols) row-major.
fn matvec(w: &[f64], x: &[f64], rows: usize) -> Vec<f64> {
    let cols = x.len();
    (0..rows).map(|r| w[r * cols..(r + 1) * cols].iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

/// g_W += d x^T, g_x = W^T d.
fn matvec_back(w: &[f64], x: &[f64], d: &[f64], gw: &mut [f64]) -> Vec<f64> {
    let cols = x.len();
    let mut gx = vec![0.0; cols];
    for (r, &dr) in d.iter().enumerate() {
        for c in 0..cols {
            gw[r * cols + c] += dr * x[c];
            gx[c] += dr * w[r * cols + c];
        }
    }
    gx
}

pub fn pixels(data: &Dataset, i: usize) -> Vec<f64> {
    data.image(i).iter().map(|&b| b as f64 / 255.0).collect()
}

/// The FCP (784-50-50-10, no biases) on every image of `data`.
pub fn fcp(weights: &[f64], act_fn: Act, data: &Dataset) -> Reference {
    assert_eq!(weights.len(), Arch::Fcp.n_params());
    let (w1, rest) = weights.split_at(50 * INPUT_PIXELS);
    let (w2, w3) = rest.split_at(50 * 50);
    let mut grad = vec![0.0; weights.len()];
    let (mut loss, mut correct) = (0.0, 0usize);
    let n = data.len() as f64;
    for i in 0..data.len() {
        let x = pixels(data, i);
        let z1 = matvec(w1, &x, 50);
        let a1: Vec<f64> = z1.iter().map(|&v| act(act_fn, v)).collect();
        let z2 = matvec(w2, &a1, 50);
        let a2: Vec<f64> = z2.iter().map(|&v| act(act_fn, v)).collect();
        let z3 = matvec(w3, &a2, 10);
        let label = data.labels[i] as usize;
        let (l, d3) = cross_entropy(&z3, label);
        loss += l;
        let argmax = (0..10).fold(0, |best, k| if z3[k] > z3[best] { k } else { best });
        correct += (argmax == label) as usize;
        let d3: Vec<f64> = d3.iter().map(|g| g / n).collect();
        let (g1, g23) = grad.split_at_mut(50 * INPUT_PIXELS);
        let (g2, g3) = g23.split_at_mut(2500);
        let da2 = matvec_back(w3, &a2, &d3, g3);
        let d2: Vec<f64> = da2.iter().zip(&z2).map(|(g, &z)| g * act_grad(act_fn, z)).collect();
        let da1 = matvec_back(w2, &a1, &d2, g2);
        let d1: Vec<f64> = da1.iter().zip(&z1).map(|(g, &z)| g * act_grad(act_fn, z)).collect();
        matvec_back(w1, &x, &d1, g1);
    }
    Reference { loss: loss / n, accuracy: Some(correct as f64 / n), grad }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// y = W x + b.
fn affine(w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    matvec(w, x, b.len()).iter().zip(b).map(|(y, c)| y + c).collect()
}

fn argmax(z: &[f64]) -> usize {
    (0..z.len()).fold(0, |best, k| if z[k] > z[best] { k } else { best })
}

/// Splits a flat vector into its tensors, in state_dict order.
fn tensors(arch: Arch, w: &[f64]) -> Vec<&[f64]> {
    assert_eq!(w.len(), arch.n_params(), "{} vector length", arch.title());
    let mut rest = w;
    arch.params()
        .iter()
        .map(|t| {
            let (head, tail) = rest.split_at(t.len());
            rest = tail;
            head
        })
        .collect()
}

/// A feature map: `c` channels of `hw` x `hw`, channel-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub c: usize,
    pub hw: usize,
    pub v: Vec<f64>,
}

impl Map {
    fn at(&self, c: usize, y: isize, x: isize) -> f64 {
        let hw = self.hw as isize;
        if y < 0 || x < 0 || y >= hw || x >= hw {
            0.0
        } else {
            self.v[(c * self.hw + y as usize) * self.hw + x as usize]
        }
    }
}

/// Cross-correlation with a (out_c, in_c, k, k) kernel, zero padding `pad`, plus bias.
pub fn conv2d(x: &Map, w: &[f64], b: &[f64], k: usize, pad: usize) -> Map {
    let out_c = b.len();
    let hw = x.hw + 2 * pad - k + 1;
    let mut v = vec![0.0; out_c * hw * hw];
    for co in 0..out_c {
        for oy in 0..hw {
            for ox in 0..hw {
                let mut acc = b[co];
                for ci in 0..x.c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let wv = w[((co * x.c + ci) * k + ky) * k + kx];
                            acc += wv * x.at(ci, (oy + ky) as isize - pad as isize, (ox + kx) as isize - pad as isize);
                        }
                    }
                }
                v[(co * hw + oy) * hw + ox] = acc;
            }
        }
    }
    Map { c: out_c, hw, v }
}

/// 2x2 average pooling, stride 2.
pub fn avg_pool(x: &Map) -> Map {
    let hw = x.hw / 2;
    let mut v = vec![0.0; x.c * hw * hw];
    for c in 0..x.c {
        for y in 0..hw {
            for xx in 0..hw {
                let (y2, x2) = (2 * y as isize, 2 * xx as isize);
                v[(c * hw + y) * hw + xx] =
                    0.25 * (x.at(c, y2, x2) + x.at(c, y2, x2 + 1) + x.at(c, y2 + 1, x2) + x.at(c, y2 + 1, x2 + 1));
            }
        }
    }
    Map { c: x.c, hw, v }
}

fn act_map(a: Act, m: &Map) -> Map {
    Map { v: m.v.iter().map(|&x| act(a, x)).collect(), ..m.clone() }
}

/// LeNet logits for one image, with the intermediate maps (for shape checks).
pub fn lenet_forward(w: &[f64], act_fn: Act, image: &[f64]) -> (Vec<f64>, Vec<Map>) {
    let t = tensors(Arch::Lenet, w);
    let x = Map { c: 1, hw: 28, v: image.to_vec() };
    let c1 = conv2d(&x, t[0], t[1], 5, 2);
    let p1 = avg_pool(&act_map(act_fn, &c1));
    let c2 = conv2d(&p1, t[2], t[3], 5, 0);
    let p2 = avg_pool(&act_map(act_fn, &c2));
    let h1: Vec<f64> = affine(t[4], t[5], &p2.v).iter().map(|&z| act(act_fn, z)).collect();
    let h2: Vec<f64> = affine(t[6], t[7], &h1).iter().map(|&z| act(act_fn, z)).collect();
    let logits = affine(t[8], t[9], &h2);
    (logits, vec![c1, p1, c2, p2])
}

/// d loss / d (w, b, x) of `conv2d` given d loss / d out.
fn conv2d_back(x: &Map, w: &[f64], k: usize, pad: usize, d_out: &Map, gw: &mut [f64], gb: &mut [f64]) -> Map {
    let mut dx = Map { v: vec![0.0; x.v.len()], ..x.clone() };
    let hw = d_out.hw;
    for co in 0..d_out.c {
        for oy in 0..hw {
            for ox in 0..hw {
                let g = d_out.v[(co * hw + oy) * hw + ox];
                gb[co] += g;
                for ci in 0..x.c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let (iy, ix) = ((oy + ky) as isize - pad as isize, (ox + kx) as isize - pad as isize);
                            if iy < 0 || ix < 0 || iy >= x.hw as isize || ix >= x.hw as isize {
                                continue;
                            }
                            let wi = ((co * x.c + ci) * k + ky) * k + kx;
                            let xi = (ci * x.hw + iy as usize) * x.hw + ix as usize;
                            gw[wi] += g * x.v[xi];
                            dx.v[xi] += g * w[wi];
                        }
                    }
                }
            }
        }
    }
    dx
}

/// d loss / d input of `avg_pool`.
fn avg_pool_back(d_out: &Map) -> Map {
    let hw = d_out.hw * 2;
    let v = (0..d_out.c * hw * hw)
        .map(|i| {
            let (c, y, x) = (i / (hw * hw), (i / hw) % hw, i % hw);
            0.25 * d_out.v[(c * d_out.hw + y / 2) * d_out.hw + x / 2]
        })
        .collect();
    Map { c: d_out.c, hw, v }
}

/// Element-wise d *= act'(z).
fn through_act(a: Act, d: &[f64], z: &[f64]) -> Vec<f64> {
    d.iter().zip(z).map(|(g, &z)| g * act_grad(a, z)).collect()
}

/// Per-tensor gradient slices of a flat gradient, mutable.
fn tensors_mut(arch: Arch, g: &mut [f64]) -> Vec<&mut [f64]> {
    let mut rest = g;
    arch.params()
        .iter()
        .map(|t| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(t.len());
            rest = tail;
            head
        })
        .collect()
}

/// LeNet, forward and backward, on every image.
pub fn lenet(w: &[f64], act_fn: Act, data: &Dataset) -> Reference {
    let t = tensors(Arch::Lenet, w);
    let mut grad = vec![0.0; w.len()];
    let (mut loss, mut correct) = (0.0, 0);
    let n = data.len() as f64;
    for i in 0..data.len() {
        let x = Map { c: 1, hw: 28, v: pixels(data, i) };
        let c1 = conv2d(&x, t[0], t[1], 5, 2);
        let a1 = act_map(act_fn, &c1);
        let p1 = avg_pool(&a1);
        let c2 = conv2d(&p1, t[2], t[3], 5, 0);
        let a2 = act_map(act_fn, &c2);
        let p2 = avg_pool(&a2);
        let z3 = affine(t[4], t[5], &p2.v);
        let h3: Vec<f64> = z3.iter().map(|&z| act(act_fn, z)).collect();
        let z4 = affine(t[6], t[7], &h3);
        let h4: Vec<f64> = z4.iter().map(|&z| act(act_fn, z)).collect();
        let z5 = affine(t[8], t[9], &h4);
        let label = data.labels[i] as usize;
        let (l, d5) = cross_entropy(&z5, label);
        loss += l;
        correct += (argmax(&z5) == label) as usize;
        let d5: Vec<f64> = d5.iter().map(|g| g / n).collect();
        let mut g = tensors_mut(Arch::Lenet, &mut grad);
        g[9].iter_mut().zip(&d5).for_each(|(a, b)| *a += b);
        let d4 = through_act(act_fn, &matvec_back(t[8], &h4, &d5, g[8]), &z4);
        g[7].iter_mut().zip(&d4).for_each(|(a, b)| *a += b);
        let d3 = through_act(act_fn, &matvec_back(t[6], &h3, &d4, g[6]), &z3);
        g[5].iter_mut().zip(&d3).for_each(|(a, b)| *a += b);
        let dp2 = Map { c: 16, hw: 5, v: matvec_back(t[4], &p2.v, &d3, g[4]) };
        let dc2 = Map { v: through_act(act_fn, &avg_pool_back(&dp2).v, &c2.v), ..c2.clone() };
        let (g2, rest) = g.split_at_mut(3);
        let dp1 = conv2d_back(&p1, t[2], 5, 0, &dc2, g2[2], rest[0]);
        let dc1 = Map { v: through_act(act_fn, &avg_pool_back(&dp1).v, &c1.v), ..c1.clone() };
        let (g0, g1) = g2.split_at_mut(1);
        conv2d_back(&x, t[0], 5, 2, &dc1, g0[0], g1[0]);
    }
    Reference { loss: loss / n, accuracy: Some(correct as f64 / n), grad }
}

/// The LSTM, forward and backward through time, on every image.
pub fn lstm(w: &[f64], data: &Dataset) -> Reference {
    let t = tensors(Arch::Lstm, w);
    let (w_ih, w_hh, b_ih, b_hh, fc) = (t[0], t[1], t[2], t[3], t[4]);
    let perm = super::permutation::lstm_permutation();
    let mut grad = vec![0.0; w.len()];
    let (mut loss, mut correct) = (0.0, 0);
    let n = data.len() as f64;
    for i in 0..data.len() {
        let img = pixels(data, i);
        let xs: Vec<Vec<f64>> = (0..28).map(|s| (0..28).map(|f| img[perm[28 * s + f]]).collect()).collect();
        // forward, keeping h_0..h_28, c_0..c_28 and the gate pre-activations
        let (mut hs, mut cs, mut zs) = (vec![vec![0.0; 48]], vec![vec![0.0; 48]], Vec::new());
        for x in &xs {
            let (zx, zh) = (matvec(w_ih, x, 192), matvec(w_hh, hs.last().unwrap(), 192));
            let z: Vec<f64> = (0..192).map(|k| zx[k] + zh[k] + b_ih[k] + b_hh[k]).collect();
            let c_prev = cs.last().unwrap();
            let c: Vec<f64> =
                (0..48).map(|j| sigmoid(z[48 + j]) * c_prev[j] + sigmoid(z[j]) * z[96 + j].tanh()).collect();
            hs.push((0..48).map(|j| sigmoid(z[144 + j]) * c[j].tanh()).collect());
            cs.push(c);
            zs.push(z);
        }
        let logits = matvec(fc, &hs[28], 10);
        let label = data.labels[i] as usize;
        let (l, dz) = cross_entropy(&logits, label);
        loss += l;
        correct += (argmax(&logits) == label) as usize;
        let dz: Vec<f64> = dz.iter().map(|g| g / n).collect();
        let mut g = tensors_mut(Arch::Lstm, &mut grad);
        let mut dh = matvec_back(fc, &hs[28], &dz, g[4]);
        let mut dc = vec![0.0; 48];
        for s in (0..28).rev() {
            let z = &zs[s];
            let mut dzs = vec![0.0; 192];
            for j in 0..48 {
                let (ig, fg, gg, og) = (sigmoid(z[j]), sigmoid(z[48 + j]), z[96 + j].tanh(), sigmoid(z[144 + j]));
                let tc = cs[s + 1][j].tanh();
                let dcs = dc[j] + dh[j] * og * (1.0 - tc * tc);
                dzs[j] = dcs * gg * ig * (1.0 - ig);
                dzs[48 + j] = dcs * cs[s][j] * fg * (1.0 - fg);
                dzs[96 + j] = dcs * ig * (1.0 - gg * gg);
                dzs[144 + j] = dh[j] * tc * og * (1.0 - og);
                dc[j] = dcs * fg;
            }
            for k in 0..192 {
                g[2][k] += dzs[k];
                g[3][k] += dzs[k];
            }
            matvec_back(w_ih, &xs[s], &dzs, g[0]);
            dh = matvec_back(w_hh, &hs[s], &dzs, g[1]);
        }
    }
    Reference { loss: loss / n, accuracy: Some(correct as f64 / n), grad }
}

/// The autoencoder (784-32-32-32-784, softplus, sigmoid output, MSE over pixels and images).
pub fn autoencoder(w: &[f64], data: &Dataset) -> Reference {
    let t = tensors(Arch::Autoencoder, w);
    let mut grad = vec![0.0; w.len()];
    let mut loss = 0.0;
    let n = data.len() as f64;
    let sp = Act::Softplus;
    for i in 0..data.len() {
        let x = pixels(data, i);
        let z1 = matvec(t[0], &x, 32);
        let a1: Vec<f64> = z1.iter().map(|&z| act(sp, z)).collect();
        let z2 = matvec(t[1], &a1, 32);
        let a2: Vec<f64> = z2.iter().map(|&z| act(sp, z)).collect();
        let z3 = matvec(t[2], &a2, 32);
        let a3: Vec<f64> = z3.iter().map(|&z| act(sp, z)).collect();
        let y: Vec<f64> = matvec(t[3], &a3, 784).into_iter().map(sigmoid).collect();
        loss += y.iter().zip(&x).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / 784.0;
        let d4: Vec<f64> = y.iter().zip(&x).map(|(&a, b)| 2.0 * (a - b) * a * (1.0 - a) / (784.0 * n)).collect();
        let mut g = tensors_mut(Arch::Autoencoder, &mut grad);
        let d3 = through_act(sp, &matvec_back(t[3], &a3, &d4, g[3]), &z3);
        let d2 = through_act(sp, &matvec_back(t[2], &a2, &d3, g[2]), &z2);
        let d1 = through_act(sp, &matvec_back(t[1], &a1, &d2, g[1]), &z1);
        matvec_back(t[0], &x, &d1, g[0]);
    }
    Reference { loss: loss / n, accuracy: None, grad }
}

/// Loss, accuracy and gradient of any network (the activation applies to the FCP and LeNet).
pub fn evaluate(arch: Arch, w: &[f64], act_fn: Act, data: &Dataset) -> Reference {
    match arch {
        Arch::Fcp => fcp(w, act_fn, data),
        Arch::Lenet => lenet(w, act_fn, data),
        Arch::Lstm => lstm(w, data),
        Arch::Autoencoder => autoencoder(w, data),
    }
}

/// Gradient of the mean loss by central differences (h = 1e-6) at chosen coordinates: the check of the
/// analytic reference gradients.
pub fn numeric_grad(arch: Arch, w: &[f64], act_fn: Act, data: &Dataset, coords: &[usize]) -> Vec<f64> {
    let h = 1e-6;
    coords
        .iter()
        .map(|&i| {
            let mut wp = w.to_vec();
            wp[i] += h;
            let mut wm = w.to_vec();
            wm[i] -= h;
            (evaluate(arch, &wp, act_fn, data).loss - evaluate(arch, &wm, act_fn, data).loss) / (2.0 * h)
        })
        .collect()
}
