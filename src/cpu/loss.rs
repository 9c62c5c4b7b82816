//! The loss heads on the CPU (`shaders/loss.wgsl`): softmax cross-entropy without cancellation and
//! the autoencoder's sigmoid + mean squared error, partial sums per 256 images.

use anyhow::Result;
use rayon::prelude::*;

use super::math::{exp, sigmoid};
use super::simd::{dispatch, Simd};
use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{partial_slots, Head, LossChunk, LossHeads};

impl LossHeads for Cpu {
    /// Without the gradient (`grad.1` false) the head skips its store: for the autoencoder as many
    /// values as its outputs, most of the memory traffic of a loss-only evaluation's head.
    fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &CpuBuffer,
        targets: &CpuBuffer,
        (grad, gradient): (&CpuBuffer, bool),
        partials: &CpuBuffer,
    ) -> Result<CpuCommand> {
        let (outputs, targets, grad, partials) = (outputs.clone(), targets.clone(), grad.clone(), partials.clone());
        Ok(CpuCommand::checked("loss head", &[&grad, &partials], &[&outputs, &targets])?.run(move |cpu, l| {
            let t = match head {
                Head::CrossEntropy => Targets::Labels(targets.view(l)),
                Head::MseSigmoid => Targets::Pixels(targets.view(l)),
            };
            let grad = gradient.then(|| grad.view_mut(l));
            loss_head(cpu.kernels, head, &chunk, outputs.view(l), t, grad, partials.view_mut(l))
        }))
    }
}

/// The index r of the largest logit (y where y ties for it, so that the largest exponent is 0) and the
/// first index of the largest logit (the prediction; the image counts as correct when it is y).
fn cross_entropy_max(z: &[f32], y: usize) -> (usize, usize) {
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
    (r, first_max)
}

/// Cross-entropy of one image's logits against label y without cancellation (see loss.wgsl): the loss,
/// whether the first largest logit is y, and the gradient (scaled by `scale`) written to `grad`.
/// Each e^(z_k - z_r) is computed once, into `grad`, and then scaled there.
#[inline(always)]
fn cross_entropy_plain(z: &[f32], y: usize, grad: &mut [f32], scale: f32) -> (f32, bool) {
    let (r, first_max) = cross_entropy_max(z, y);
    let zr = z[r];
    for (g, &zk) in grad.iter_mut().zip(z) {
        *g = exp(zk - zr);
    }
    let s: f32 = (0..z.len()).filter(|&k| k != r).map(|k| grad[k]).sum();
    let inv = 1.0 / (1.0 + s);
    for (k, g) in grad.iter_mut().enumerate() {
        let g1 = if k == r {
            if k == y {
                -s * inv
            } else {
                inv
            }
        } else {
            let e = *g * inv;
            if k == y {
                e - 1.0
            } else {
                e
            }
        };
        *g = g1 * scale;
    }
    (s.ln_1p() + (zr - z[y]), first_max == y)
}

/// [`cross_entropy`]'s loss and correctness without the gradient: the same terms added in the same
/// order, so the same bits.
#[inline(always)]
fn cross_entropy_loss_plain(z: &[f32], y: usize) -> (f32, bool) {
    let (r, first_max) = cross_entropy_max(z, y);
    let zr = z[r];
    let s: f32 = (0..z.len()).filter(|&k| k != r).map(|k| exp(z[k] - zr)).sum();
    (s.ln_1p() + (zr - z[y]), first_max == y)
}

dispatch!(
    /// [`cross_entropy_plain`] at the SIMD level `simd` (the same bits at every level).
    fn cross_entropy(z: &[f32], y: usize, grad: &mut [f32], scale: f32) -> (f32, bool) => cross_entropy_plain
);

dispatch!(
    /// [`cross_entropy_loss_plain`] at the SIMD level `simd` (the same bits at every level).
    fn cross_entropy_loss(z: &[f32], y: usize) -> (f32, bool) => cross_entropy_loss_plain
);

dispatch!(
    /// MSE of sigmoid(z) against the image x (mean over pixels); gradient scaled by `scale`.
    fn mse_sigmoid(z: &[f32], x: &[f32], grad: &mut [f32], scale: f32) -> f32 => mse_sigmoid_grad
);

dispatch!(
    /// [`mse_sigmoid`]'s loss alone (the same bits).
    fn mse_sigmoid_loss(z: &[f32], x: &[f32]) -> f32 => mse_sigmoid_only
);

#[inline(always)]
fn mse_sigmoid_grad(z: &[f32], x: &[f32], grad: &mut [f32], scale: f32) -> f32 {
    mse_sigmoid_plain::<true>(z, x, grad, scale)
}

#[inline(always)]
fn mse_sigmoid_only(z: &[f32], x: &[f32]) -> f32 {
    mse_sigmoid_plain::<false>(z, x, &mut [], 0.0)
}

/// Eight partial sums over fixed-size chunks, so that the loop vectorises. Not [`super::simd::sum8`]:
/// it writes the gradient in the same pass (when `GRAD`; `grad` is then as long as `z`), and it adds
/// the tail into lane 0 before adding the lanes, another order (so other bits) whenever the width is
/// not a multiple of 8.
#[inline(always)]
fn mse_sigmoid_plain<const GRAD: bool>(z: &[f32], x: &[f32], grad: &mut [f32], scale: f32) -> f32 {
    let w = z.len();
    let k2 = 2.0 * scale / w as f32;
    let mut acc = [0f32; 8];
    let (zc, xc) = (z.chunks_exact(8), x.chunks_exact(8));
    let (zr, xr) = (zc.remainder(), xc.remainder());
    for (i, (z8, x8)) in zc.zip(xc).enumerate() {
        let (z8, x8): (&[f32; 8], &[f32; 8]) = (z8.try_into().unwrap(), x8.try_into().unwrap());
        let mut g8 = [0f32; 8];
        for lane in 0..8 {
            let y = sigmoid(z8[lane]);
            let d = y - x8[lane];
            acc[lane] += d * d;
            g8[lane] = k2 * d * y * (1.0 - y);
        }
        if GRAD {
            grad[i * 8..][..8].copy_from_slice(&g8);
        }
    }
    let tail = w - zr.len();
    for (k, (&z, &x)) in zr.iter().zip(xr).enumerate() {
        let y = sigmoid(z);
        let d = y - x;
        acc[0] += d * d;
        if GRAD {
            grad[tail + k] = k2 * d * y * (1.0 - y);
        }
    }
    acc.iter().sum::<f32>() / w as f32
}

/// Targets of a loss head: labels (as u32 bits) or the f32 images.
pub enum Targets<'a> {
    Labels(&'a [f32]),
    Pixels(&'a [f32]),
}

/// A loss head over one chunk: per-image losses summed per 256 images into `partials` ([vector][slot]
/// [loss, correct]) and, when `grad` is given, d loss / d outputs into it.
pub fn loss_head(
    simd: Simd,
    head: Head,
    c: &LossChunk,
    outputs: &[f32],
    targets: Targets,
    grad: Option<&mut [f32]>,
    partials: &mut [f32],
) {
    let scale = 1.0 / c.total_images as f32;
    let slot =
        |b: usize, s: usize, g: Option<&mut [f32]>| slot_sums(simd, head, c, (b, s), outputs, &targets, g, scale);
    // one task per (vector, 256 images): the partial-sum slots, in parallel over images as well
    let slots = partial_slots(c.images);
    let per_vector: Vec<Vec<(f64, f64)>> = match grad {
        Some(grad) => grad
            .par_chunks_mut(c.out_batch_stride.max(1))
            .take(c.batches)
            .enumerate()
            .map(|(b, g)| {
                let rows = g[..c.images * c.width].par_chunks_mut(256 * c.width);
                rows.enumerate().map(|(s, gs)| slot(b, s, Some(gs))).collect()
            })
            .collect(),
        None => (0..c.batches)
            .into_par_iter()
            .map(|b| (0..slots).into_par_iter().map(|s| slot(b, s, None)).collect())
            .collect(),
    };
    for (b, sums) in per_vector.iter().enumerate() {
        for (s, (loss, correct)) in sums.iter().enumerate() {
            let at = (b * c.parts + c.part_off + s) * 2;
            partials[at] = *loss as f32;
            partials[at + 1] = *correct as f32;
        }
    }
}

/// Loss and correct count of the (up to) 256 images of partial slot `slot` of vector `b`, writing
/// their output gradients into `grad` (those images' rows) when given.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn slot_sums(
    simd: Simd,
    head: Head,
    c: &LossChunk,
    (b, slot): (usize, usize),
    outputs: &[f32],
    targets: &Targets,
    mut grad: Option<&mut [f32]>,
    scale: f32,
) -> (f64, f64) {
    let (mut loss, mut correct) = (0.0f64, 0.0f64);
    let images = (c.images - slot * 256).min(256);
    for i in 0..images {
        let n = slot * 256 + i;
        let z = &outputs[b * c.out_batch_stride + n * c.width..][..c.width];
        let image = b * c.img_bs + c.first_image + n;
        let d = grad.as_deref_mut().map(|g| &mut g[i * c.width..][..c.width]);
        let (l, ok) = image_loss(simd, head, z, (targets, image), d, scale);
        loss += l as f64;
        correct += f64::from(u8::from(ok));
    }
    (loss, correct)
}

/// One image's loss on its outputs `z` against target `image` of `targets` (a label, or the image's
/// pixels), whether it counts as correct (a classifier's first largest logit is the label), and,
/// when `d` is given, d loss / d z scaled by `scale` written into it.
#[inline(always)]
pub(super) fn image_loss(
    simd: Simd,
    head: Head,
    z: &[f32],
    (targets, image): (&Targets, usize),
    d: Option<&mut [f32]>,
    scale: f32,
) -> (f32, bool) {
    match (targets, head) {
        (Targets::Labels(l), Head::CrossEntropy) => {
            let y = l[image].to_bits() as usize;
            match d {
                Some(d) => cross_entropy(simd, z, y, d, scale),
                None => cross_entropy_loss(simd, z, y),
            }
        }
        (Targets::Pixels(p), _) => {
            let x = &p[image * z.len()..][..z.len()];
            let loss = match d {
                Some(d) => mse_sigmoid(simd, z, x, d, scale),
                None => mse_sigmoid_loss(simd, z, x),
            };
            (loss, false)
        }
        (Targets::Labels(_), Head::MseSigmoid) => unreachable!("the MSE head reads pixels"),
    }
}
