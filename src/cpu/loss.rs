//! The loss heads on the CPU (`shaders/loss.wgsl`): softmax cross-entropy without cancellation and
//! the autoencoder's sigmoid + mean squared error, partial sums per 256 images.

use anyhow::Result;
use rayon::prelude::*;

use super::math::{exp, sigmoid};
use super::simd::{dispatch, Simd};
use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{Head, LossChunk, LossHeads};

impl LossHeads for Cpu {
    fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &CpuBuffer,
        targets: &CpuBuffer,
        grad: &CpuBuffer,
        partials: &CpuBuffer,
    ) -> Result<CpuCommand> {
        let (outputs, targets, grad, partials) = (outputs.clone(), targets.clone(), grad.clone(), partials.clone());
        Ok(CpuCommand::checked("loss head", &[&grad, &partials], &[&outputs, &targets])?.run(move |cpu, l| {
            let t = match head {
                Head::CrossEntropy => Targets::Labels(targets.view(l)),
                Head::MseSigmoid => Targets::Pixels(targets.view(l)),
            };
            loss_head(cpu.kernels, head, &chunk, outputs.view(l), t, grad.view_mut(l), partials.view_mut(l))
        }))
    }
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
