//! The element-wise and small kernels of the CPU backend, over plain slices: activations, loss heads,
//! pooling, the LSTM cell, pixel gathering, mini-batch selection and Adam. Each follows its WGSL
//! counterpart in `shaders/` operation for operation (same formulas, same f32 numerics), so that both
//! backends agree to rounding.

use rayon::prelude::*;

use super::math::{exp, sigmoid, softplus, tanh};
use super::simd::{dispatch, Simd};
use crate::ops::{Act, AdamStep, Head, LossChunk, LstmStep, Selection};

/// Elements per parallel task of the element-wise kernels.
const GRAIN: usize = 1 << 14;

#[inline(always)]
fn act(a: Act, x: f32) -> f32 {
    match a {
        Act::Softplus => softplus(x),
        Act::Relu => x.max(0.0),
        Act::Sigmoid => sigmoid(x),
        Act::Tanh => tanh(x),
    }
}

#[inline(always)]
fn act_grad(a: Act, x: f32) -> f32 {
    match a {
        // PyTorch's threshold: the derivative is 1 above 20
        Act::Softplus => {
            if x > 20.0 {
                1.0
            } else {
                sigmoid(x)
            }
        }
        Act::Relu => f32::from(u8::from(x > 0.0)),
        Act::Sigmoid => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
        Act::Tanh => {
            let t = tanh(x);
            1.0 - t * t
        }
    }
}

/// `out[i] = f(z[i], out[i])`; inlined into [`activation_map`]'s per-level builds, where the functions
/// of [`super::math`] then run 8 or 16 lanes at a time.
#[inline(always)]
fn map_plain(z: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Copy) {
    out.iter_mut().zip(z).for_each(|(o, &z)| *o = f(z, *o));
}

/// One activation's forward (`backward` false: out = act(z)) or backward (grad *= act'(z)) map, with
/// the activation fixed so that the loop has no branch on it.
#[inline(always)]
fn activation_map_plain(a: Act, backward: bool, z: &[f32], out: &mut [f32]) {
    macro_rules! go {
        ($act:expr) => {
            if backward {
                map_plain(z, out, |z, g| g * act_grad($act, z))
            } else {
                map_plain(z, out, |z, _| act($act, z))
            }
        };
    }
    match a {
        Act::Softplus => go!(Act::Softplus),
        Act::Relu => go!(Act::Relu),
        Act::Sigmoid => go!(Act::Sigmoid),
        Act::Tanh => go!(Act::Tanh),
    }
}

dispatch!(fn activation_map(a: Act, backward: bool, z: &[f32], out: &mut [f32]) => activation_map_plain);

/// out = act(z) over the first `len` elements.
pub fn activation_forward(simd: Simd, a: Act, z: &[f32], out: &mut [f32], len: usize) {
    out[..len]
        .par_chunks_mut(GRAIN)
        .zip(z[..len].par_chunks(GRAIN))
        .for_each(|(o, z)| activation_map(simd, a, false, z, o));
}

/// grad *= act'(z) over the first `len` elements.
pub fn activation_backward(simd: Simd, a: Act, z: &[f32], grad: &mut [f32], len: usize) {
    grad[..len]
        .par_chunks_mut(GRAIN)
        .zip(z[..len].par_chunks(GRAIN))
        .for_each(|(g, z)| activation_map(simd, a, true, z, g));
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
    let s: f32 = (0..z.len()).filter(|&k| k != r).map(|k| exp(z[k] - zr)).sum();
    let inv = 1.0 / (1.0 + s);
    for k in 0..z.len() {
        let g = if k == r {
            if k == y {
                -s * inv
            } else {
                inv
            }
        } else {
            let e = exp(z[k] - zr) * inv;
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

dispatch!(
    /// MSE of sigmoid(z) against the image x (mean over pixels); gradient scaled by `scale`.
    fn mse_sigmoid(z: &[f32], x: &[f32], grad: &mut [f32], scale: f32) -> f32 => mse_sigmoid_plain
);

/// Eight partial sums over fixed-size chunks, so that the loop vectorises. Not [`super::simd::sum8`]:
/// it writes the gradient in the same pass, and it adds the tail into lane 0 before adding the lanes,
/// another order (so other bits) whenever the width is not a multiple of 8.
#[inline(always)]
fn mse_sigmoid_plain(z: &[f32], x: &[f32], grad: &mut [f32], scale: f32) -> f32 {
    let w = z.len();
    let k2 = 2.0 * scale / w as f32;
    let mut acc = [0f32; 8];
    let (zc, xc, gc) = (z.chunks_exact(8), x.chunks_exact(8), grad.chunks_exact_mut(8));
    let (zr, xr) = (zc.remainder(), xc.remainder());
    for ((z8, x8), g8) in zc.zip(xc).zip(gc) {
        let (z8, x8): (&[f32; 8], &[f32; 8]) = (z8.try_into().unwrap(), x8.try_into().unwrap());
        let g8: &mut [f32; 8] = g8.try_into().unwrap();
        for lane in 0..8 {
            let y = sigmoid(z8[lane]);
            let d = y - x8[lane];
            acc[lane] += d * d;
            g8[lane] = k2 * d * y * (1.0 - y);
        }
    }
    let tail = w - zr.len();
    for (k, (&z, &x)) in zr.iter().zip(xr).enumerate() {
        let y = sigmoid(z);
        let d = y - x;
        acc[0] += d * d;
        grad[tail + k] = k2 * d * y * (1.0 - y);
    }
    acc.iter().sum::<f32>() / w as f32
}

/// Targets of a loss head: labels (as u32 bits) or the f32 images.
pub enum Targets<'a> {
    Labels(&'a [f32]),
    Pixels(&'a [f32]),
}

/// A loss head over one chunk: per-image losses summed per 256 images into `partials` ([vector][slot]
/// [loss, correct]) and d loss / d outputs into `grad`.
pub fn loss_head(
    simd: Simd,
    head: Head,
    c: &LossChunk,
    outputs: &[f32],
    targets: Targets,
    grad: &mut [f32],
    partials: &mut [f32],
) {
    let scale = 1.0 / c.total_images as f32;
    let slot_len = 256 * c.width;
    // one task per (vector, 256 images): the partial-sum slots, in parallel over images as well
    let per_vector: Vec<Vec<(f64, f64)>> = grad
        .par_chunks_mut(c.out_batch_stride.max(1))
        .take(c.batches)
        .enumerate()
        .map(|(b, g)| {
            g[..c.images * c.width]
                .par_chunks_mut(slot_len)
                .enumerate()
                .map(|(slot, gs)| slot_sums(simd, head, c, b, slot, outputs, &targets, gs, scale))
                .collect()
        })
        .collect();
    for (b, sums) in per_vector.iter().enumerate() {
        for (s, (loss, correct)) in sums.iter().enumerate() {
            let at = (b * c.parts + c.part_off + s) * 2;
            partials[at] = *loss as f32;
            partials[at + 1] = *correct as f32;
        }
    }
}

/// Loss and correct count of the (up to) 256 images of partial slot `slot` of vector `b`, writing
/// their output gradients into `grad` (those images' rows).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn slot_sums(
    simd: Simd,
    head: Head,
    c: &LossChunk,
    b: usize,
    slot: usize,
    outputs: &[f32],
    targets: &Targets,
    grad: &mut [f32],
    scale: f32,
) -> (f64, f64) {
    let (mut loss, mut correct) = (0.0f64, 0.0f64);
    for (i, d) in grad.chunks_exact_mut(c.width).enumerate() {
        let n = slot * 256 + i;
        let z = &outputs[b * c.out_batch_stride + n * c.width..][..c.width];
        let image = b * c.img_bs + c.first_image + n;
        match (targets, head) {
            (Targets::Labels(l), Head::CrossEntropy) => {
                let (l, ok) = cross_entropy(z, l[image].to_bits() as usize, d, scale);
                loss += l as f64;
                correct += f64::from(u8::from(ok));
            }
            (Targets::Pixels(p), _) => loss += mse_sigmoid(simd, z, &p[image * c.width..][..c.width], d, scale) as f64,
            (Targets::Labels(_), Head::MseSigmoid) => unreachable!("the MSE head reads pixels"),
        }
    }
    (loss, correct)
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

/// Rows ((vector, image) pairs) per parallel task of the LSTM cell kernels.
const CELL_ROWS: usize = 64;

/// One LSTM step forward for every (vector, image): biases into the step's gates, then c and h (see
/// lstm.wgsl); the gates keep their activations i, f, g, o for the backward pass.
pub fn lstm_cell_forward(
    simd: Simd,
    s: &LstmStep,
    weights: &[f32],
    gates: &mut [f32],
    cells: &mut [f32],
    hidden: &mut [f32],
    last: &mut [f32],
) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let rows = s.batches * s.images;
    let r = CELL_ROWS;
    gates[..rows * st * g]
        .par_chunks_mut(r * st * g)
        .zip(cells[..rows * (st + 1) * h].par_chunks_mut(r * (st + 1) * h))
        .zip(hidden[..rows * st * h].par_chunks_mut(r * st * h).zip(last[..rows * h].par_chunks_mut(r * h)))
        .enumerate()
        .for_each(|(t, ((gt, cl), (hd, ls)))| cell_forward(simd, s, weights, t * r, gt, cl, hd, ls));
}

dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn cell_forward(
        s: &LstmStep,
        w: &[f32],
        first: usize,
        gt: &mut [f32],
        cl: &mut [f32],
        hd: &mut [f32],
        ls: &mut [f32],
    ) => cell_forward_rows
);

/// The forward cell of consecutive rows from row `first`, with the rows' slices of each buffer.
#[inline(always)]
fn cell_forward_rows(
    s: &LstmStep,
    weights: &[f32],
    first: usize,
    gt: &mut [f32],
    cl: &mut [f32],
    hd: &mut [f32],
    ls: &mut [f32],
) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let last_step = s.step + 1 == st;
    for (i, (((gr, cr), hr), lr)) in gt
        .chunks_exact_mut(st * g)
        .zip(cl.chunks_exact_mut((st + 1) * h))
        .zip(hd.chunks_exact_mut(st * h))
        .zip(ls.chunks_exact_mut(h))
        .enumerate()
    {
        let w = &weights[((first + i) / s.images) * s.n_prm..];
        let z = &mut gr[s.step * g..][..g];
        for ((zk, bi), bh) in z.iter_mut().zip(&w[s.bias_ih..][..g]).zip(&w[s.bias_hh..][..g]) {
            *zk += bi + bh;
        }
        // every slice exactly h long, so that the loop has no bounds checks and vectorises
        let (zi, rest) = z.split_at_mut(h);
        let (zf, rest) = rest.split_at_mut(h);
        let (zg, zo) = rest.split_at_mut(h);
        let (zo, zg) = (&mut zo[..h], &mut zg[..h]);
        let (c_prev, c_next) = cr[s.step * h..][..2 * h].split_at_mut(h);
        let c_next = &mut c_next[..h];
        let out = if last_step { &mut lr[..h] } else { &mut hr[(s.step + 1) * h..][..h] };
        // the CPU backend keeps the gate activations i, f, g, o in place (not the pre-activations the
        // GPU keeps): only the cell kernels read them, and the backward pass then needs no exp. One
        // simple loop per gate vectorises where a fused loop did not (and a chained iterator's `fold`
        // was not inlined into the per-level builds: it ran at the baseline width, 7 % of the time).
        for gate in [&mut *zi, &mut *zf, &mut *zo] {
            for v in gate.iter_mut() {
                *v = sigmoid(*v);
            }
        }
        for v in zg.iter_mut() {
            *v = tanh(*v);
        }
        for j in 0..h {
            let c = zf[j] * c_prev[j] + zi[j] * zg[j];
            c_next[j] = c;
        }
        for j in 0..h {
            out[j] = zo[j] * tanh(c_next[j]);
        }
    }
}

/// One LSTM step backward: from d h_s (`dh`) and the carried d c_s (`dc`), the step's gates (the
/// activations [`lstm_cell_forward`] left) become d loss / d gate pre-activations and `dc` carries
/// d c_{s-1}.
pub fn lstm_cell_backward(simd: Simd, s: &LstmStep, gates: &mut [f32], cells: &[f32], dh: &[f32], dc: &mut [f32]) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let rows = s.batches * s.images;
    let r = CELL_ROWS;
    gates[..rows * st * g].par_chunks_mut(r * st * g).zip(dc[..rows * h].par_chunks_mut(r * h)).enumerate().for_each(
        |(t, (gt, dcv))| {
            let (cl, dhv) = (&cells[t * r * (st + 1) * h..], &dh[t * r * h..]);
            cell_backward(simd, s, gt, cl, dhv, dcv)
        },
    );
}

dispatch!(fn cell_backward(s: &LstmStep, gt: &mut [f32], cl: &[f32], dh: &[f32], dc: &mut [f32]) => cell_backward_rows);

/// The backward cell of consecutive rows (`gt` and `dc` hold exactly those rows; `cl` and `dh` start
/// at the first of them).
#[inline(always)]
fn cell_backward_rows(s: &LstmStep, gt: &mut [f32], cl: &[f32], dh: &[f32], dc: &mut [f32]) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let carry = s.step + 1 < st;
    for (i, (gr, dcv)) in gt.chunks_exact_mut(st * g).zip(dc.chunks_exact_mut(h)).enumerate() {
        let z = &mut gr[s.step * g..][..g];
        // every slice exactly h long, so that the loop has no bounds checks and vectorises
        let (zi, rest) = z.split_at_mut(h);
        let (zf, rest) = rest.split_at_mut(h);
        let (zg, zo) = rest.split_at_mut(h);
        let (zg, zo, dcv) = (&mut zg[..h], &mut zo[..h], &mut dcv[..h]);
        let crow = &cl[i * (st + 1) * h..][..(st + 1) * h];
        let (c_prev, c_next) = (&crow[s.step * h..][..h], &crow[(s.step + 1) * h..][..h]);
        let dhr = &dh[i * h..][..h];
        for j in 0..h {
            // the gate activations the forward cell left in place
            let (ig, f, gg, o) = (zi[j], zf[j], zg[j], zo[j]);
            let tc = tanh(c_next[j]);
            let dh_s = dhr[j];
            let mut dc_s = dh_s * o * (1.0 - tc * tc);
            if carry {
                dc_s += dcv[j];
            }
            zi[j] = dc_s * gg * ig * (1.0 - ig);
            zf[j] = dc_s * c_prev[j] * f * (1.0 - f);
            zg[j] = dc_s * ig * (1.0 - gg * gg);
            zo[j] = dh_s * tc * o * (1.0 - o);
            dcv[j] = dc_s * f;
        }
    }
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
pub fn adam(simd: Simd, s: &AdamStep, grad: &[f32], param: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let (step_size, bc2_sqrt) = s.corrections();
    let (step_size, bc2_sqrt, b1, b2, eps) =
        (step_size as f32, bc2_sqrt as f32, s.beta1 as f32, s.beta2 as f32, s.eps as f32);
    let n = grad.len();
    param[..n]
        .par_chunks_mut(GRAIN)
        .zip(m[..n].par_chunks_mut(GRAIN))
        .zip(v[..n].par_chunks_mut(GRAIN).zip(grad.par_chunks(GRAIN)))
        .for_each(|((p, m), (v, g))| adam_chunk(simd, [step_size, bc2_sqrt, b1, b2, eps], g, p, m, v));
}

dispatch!(fn adam_chunk(c: [f32; 5], g: &[f32], p: &mut [f32], m: &mut [f32], v: &mut [f32]) => adam_chunk_plain);

/// Adam on one chunk; `c` = [step size, sqrt(1 - beta2^t), beta1, beta2, eps].
#[inline(always)]
fn adam_chunk_plain(c: [f32; 5], g: &[f32], p: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let [step_size, bc2_sqrt, b1, b2, eps] = c;
    let n = g.len();
    let (p, m, v) = (&mut p[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let mi = b1 * m[i] + (1.0 - b1) * g[i];
        let vi = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
    }
}
