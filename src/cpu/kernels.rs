//! The element-wise and small kernels of the CPU backend, over plain slices: activations, loss heads,
//! pooling, the LSTM cell, pixel gathering, mini-batch selection and Adam. Each follows its WGSL
//! counterpart in `shaders/` operation for operation (same formulas, same f32 numerics), so that both
//! backends agree to rounding.

use rayon::prelude::*;

use crate::ops::{partial_slots, Act, AdamStep, Head, LossChunk, LstmStep, Selection};

/// Elements per parallel task of the element-wise kernels.
const GRAIN: usize = 1 << 14;

/// PyTorch softplus (beta 1, threshold 20).
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn act(a: Act, x: f32) -> f32 {
    match a {
        Act::Softplus => softplus(x),
        Act::Relu => x.max(0.0),
        Act::Sigmoid => sigmoid(x),
        Act::Tanh => x.tanh(),
    }
}

fn act_grad(a: Act, x: f32) -> f32 {
    match a {
        Act::Softplus => {
            if x > 20.0 {
                1.0
            } else {
                sigmoid(x)
            }
        }
        Act::Relu => f32::from(x > 0.0),
        Act::Sigmoid => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
        Act::Tanh => {
            let t = x.tanh();
            1.0 - t * t
        }
    }
}

/// out = act(z) over the first `len` elements.
pub fn activation_forward(a: Act, z: &[f32], out: &mut [f32], len: usize) {
    out[..len].par_chunks_mut(GRAIN).zip(z[..len].par_chunks(GRAIN)).for_each(|(o, z)| {
        o.iter_mut().zip(z).for_each(|(o, &z)| *o = act(a, z));
    });
}

/// grad *= act'(z) over the first `len` elements.
pub fn activation_backward(a: Act, z: &[f32], grad: &mut [f32], len: usize) {
    grad[..len].par_chunks_mut(GRAIN).zip(z[..len].par_chunks(GRAIN)).for_each(|(g, z)| {
        g.iter_mut().zip(z).for_each(|(g, &z)| *g *= act_grad(a, z));
    });
}

/// Cross-entropy of one image's logits against label y without cancellation (see loss.wgsl): the loss,
/// whether the first largest logit is y, and the gradient (scaled by `scale`) written to `grad`.
fn cross_entropy(z: &[f32], y: usize, grad: &mut [f32], scale: f32) -> (f32, bool) {
    let mut r = y;
    let mut first_max = 0;
    for k in 0..z.len() {
        if z[k] > z[r] {
            r = k;
        }
        if z[k] > z[first_max] {
            first_max = k;
        }
    }
    let zr = z[r];
    let s: f32 = (0..z.len()).filter(|&k| k != r).map(|k| (z[k] - zr).exp()).sum();
    let inv = 1.0 / (1.0 + s);
    for k in 0..z.len() {
        let g = if k == r {
            if k == y {
                -s * inv
            } else {
                inv
            }
        } else {
            let e = (z[k] - zr).exp() * inv;
            if k == y {
                e - 1.0
            } else {
                e
            }
        };
        grad[k] = g * scale;
    }
    (s.ln_1p() + (zr - z[y]), first_max == y)
}

/// MSE of sigmoid(z) against the image x (mean over pixels); gradient scaled by `scale`.
fn mse_sigmoid(z: &[f32], x: &[f32], grad: &mut [f32], scale: f32) -> f32 {
    let w = z.len() as f32;
    let mut loss = 0.0f32;
    for k in 0..z.len() {
        let y = sigmoid(z[k]);
        let d = y - x[k];
        loss += d * d;
        grad[k] = 2.0 * scale / w * d * y * (1.0 - y);
    }
    loss / w
}

/// Targets of a loss head: labels (as u32 bits) or the f32 images.
pub enum Targets<'a> {
    Labels(&'a [f32]),
    Pixels(&'a [f32]),
}

/// A loss head over one chunk: per-image losses summed per 256 images into `partials` ([vector][slot]
/// [loss, correct]) and d loss / d outputs into `grad`.
pub fn loss_head(head: Head, c: &LossChunk, outputs: &[f32], targets: Targets, grad: &mut [f32], partials: &mut [f32]) {
    let scale = 1.0 / c.total_images as f32;
    let slots = partial_slots(c.images);
    let per_vector: Vec<Vec<(f64, f64)>> = grad
        .par_chunks_mut(c.out_batch_stride.max(1))
        .take(c.batches)
        .enumerate()
        .map(|(b, g)| {
            let mut sums = vec![(0.0f64, 0.0f64); slots];
            for n in 0..c.images {
                let (z, d) =
                    (&outputs[b * c.out_batch_stride + n * c.width..][..c.width], &mut g[n * c.width..][..c.width]);
                let image = b * c.img_bs + c.first_image + n;
                let (loss, correct) = match (&targets, head) {
                    (Targets::Labels(l), Head::CrossEntropy) => {
                        let (loss, ok) = cross_entropy(z, l[image].to_bits() as usize, d, scale);
                        (loss, f64::from(u8::from(ok)))
                    }
                    (Targets::Pixels(p), _) => (mse_sigmoid(z, &p[image * c.width..][..c.width], d, scale), 0.0),
                    (Targets::Labels(_), Head::MseSigmoid) => unreachable!("the MSE head reads pixels"),
                };
                sums[n / 256].0 += loss as f64;
                sums[n / 256].1 += correct;
            }
            sums
        })
        .collect();
    for (b, sums) in per_vector.iter().enumerate() {
        for (s, (loss, correct)) in sums.iter().enumerate() {
            let slot = (b * c.parts + c.part_off + s) * 2;
            partials[slot] = *loss as f32;
            partials[slot + 1] = *correct as f32;
        }
    }
}

/// 2x2 average pooling (stride 2) of `planes` maps of side `in_hw`, or its gradient when `backward`.
pub fn avg_pool(backward: bool, planes: usize, in_hw: usize, src: &[f32], dst: &mut [f32]) {
    let oh = in_hw / 2;
    if backward {
        dst[..planes * in_hw * in_hw].par_chunks_mut(in_hw * in_hw).enumerate().for_each(|(p, d)| {
            for y in 0..in_hw {
                for x in 0..in_hw {
                    d[y * in_hw + x] = 0.25 * src[(p * oh + y / 2) * oh + x / 2];
                }
            }
        });
    } else {
        dst[..planes * oh * oh].par_chunks_mut(oh * oh).enumerate().for_each(|(p, d)| {
            let s = &src[p * in_hw * in_hw..];
            for y in 0..oh {
                for x in 0..oh {
                    let i = 2 * y * in_hw + 2 * x;
                    d[y * oh + x] = 0.25 * (s[i] + s[i + 1] + s[i + in_hw] + s[i + in_hw + 1]);
                }
            }
        });
    }
}

/// xperm[b][n][j] = pixel perm[j] of image b * img_bs + first_image + n (one vector's worth when the
/// images are shared).
pub fn gather_pixels(s: &LstmStep, pixels: &[f32], perm: &[f32], xperm: &mut [f32]) {
    let px = s.shape.pixels();
    let vectors = if s.img_bs == 0 { 1 } else { s.batches };
    xperm[..vectors * s.images * px].par_chunks_mut(px).enumerate().for_each(|(t, row)| {
        let (b, n) = (t / s.images, t % s.images);
        let image = &pixels[(b * s.img_bs + s.first_image + n) * px..][..px];
        row.iter_mut().zip(perm).for_each(|(x, p)| *x = image[p.to_bits() as usize]);
    });
}

/// One LSTM step forward for every (vector, image): biases into the step's gates (kept for the
/// backward pass), then c and h (see lstm.wgsl).
pub fn lstm_cell_forward(
    s: &LstmStep,
    weights: &[f32],
    gates: &mut [f32],
    cells: &mut [f32],
    hidden: &mut [f32],
    last: &mut [f32],
) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let rows = s.batches * s.images;
    let gates = &mut gates[..rows * st * g];
    let cells = &mut cells[..rows * (st + 1) * h];
    let hidden = &mut hidden[..rows * st * h];
    let last = &mut last[..rows * h];
    gates
        .par_chunks_mut(st * g)
        .zip(cells.par_chunks_mut((st + 1) * h))
        .zip(hidden.par_chunks_mut(st * h).zip(last.par_chunks_mut(h)))
        .enumerate()
        .for_each(|(bn, ((gt, cl), (hd, ls)))| {
            let w = &weights[(bn / s.images) * s.n_prm..];
            let z = &mut gt[s.step * g..][..g];
            for (k, zk) in z.iter_mut().enumerate() {
                *zk += w[s.bias_ih + k] + w[s.bias_hh + k];
            }
            for j in 0..h {
                let c_prev = cl[s.step * h + j];
                let c = sigmoid(z[h + j]) * c_prev + sigmoid(z[j]) * z[2 * h + j].tanh();
                cl[(s.step + 1) * h + j] = c;
                let hv = sigmoid(z[3 * h + j]) * c.tanh();
                if s.step + 1 < st {
                    hd[(s.step + 1) * h + j] = hv;
                } else {
                    ls[j] = hv;
                }
            }
        });
}

/// One LSTM step backward: from d h_s (`dh`) and the carried d c_s (`dc`), the step's gates become
/// d loss / d gates and `dc` carries d c_{s-1}.
pub fn lstm_cell_backward(s: &LstmStep, gates: &mut [f32], cells: &[f32], dh: &[f32], dc: &mut [f32]) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let rows = s.batches * s.images;
    gates[..rows * st * g].par_chunks_mut(st * g).zip(dc[..rows * h].par_chunks_mut(h)).enumerate().for_each(
        |(bn, (gt, dcv))| {
            let z = &mut gt[s.step * g..][..g];
            let cl = &cells[bn * (st + 1) * h..];
            for j in 0..h {
                let i = sigmoid(z[j]);
                let f = sigmoid(z[h + j]);
                let gg = z[2 * h + j].tanh();
                let o = sigmoid(z[3 * h + j]);
                let c_prev = cl[s.step * h + j];
                let tc = cl[(s.step + 1) * h + j].tanh();
                let dh_s = dh[bn * h + j];
                let mut dc_s = dh_s * o * (1.0 - tc * tc);
                if s.step + 1 < st {
                    dc_s += dcv[j];
                }
                z[j] = dc_s * gg * i * (1.0 - i);
                z[h + j] = dc_s * c_prev * f * (1.0 - f);
                z[2 * h + j] = dc_s * i * (1.0 - gg * gg);
                z[3 * h + j] = dh_s * tc * o * (1.0 - o);
                dcv[j] = dc_s * f;
            }
        },
    );
}

/// Copies each run's mini-batch (f32 pixels and labels) out of the dataset.
pub fn select_images(s: &Selection, src: (&[f32], &[f32]), idx: &[f32], dst: (&mut [f32], &mut [f32])) {
    let px = s.pixels;
    dst.0[..s.runs * s.per_run * px]
        .par_chunks_mut(px)
        .zip(dst.1[..s.runs * s.per_run].par_iter_mut())
        .enumerate()
        .for_each(|(slot, (pixels, label))| {
            let (b, n) = (slot / s.per_run, slot % s.per_run);
            let image = idx[b * s.stride + s.offset + n].to_bits() as usize;
            pixels.copy_from_slice(&src.0[image * px..][..px]);
            *label = src.1[image];
        });
}

/// One Adam step on `grad.len()` parameters (see adam.wgsl).
pub fn adam(s: &AdamStep, grad: &[f32], param: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let (step_size, bc2_sqrt) = s.corrections();
    let (step_size, bc2_sqrt, b1, b2, eps) =
        (step_size as f32, bc2_sqrt as f32, s.beta1 as f32, s.beta2 as f32, s.eps as f32);
    let n = grad.len();
    param[..n]
        .par_chunks_mut(GRAIN)
        .zip(m[..n].par_chunks_mut(GRAIN))
        .zip(v[..n].par_chunks_mut(GRAIN).zip(grad.par_chunks(GRAIN)))
        .for_each(|((p, m), (v, g))| {
            for i in 0..g.len() {
                let mi = b1 * m[i] + (1.0 - b1) * g[i];
                let vi = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                m[i] = mi;
                v[i] = vi;
                p[i] -= step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
            }
        });
}
