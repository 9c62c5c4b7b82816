//! The loss heads on the CPU (`shaders/loss.wgsl`): softmax cross-entropy without cancellation and
//! the autoencoder's sigmoid + mean squared error, partial sums per 256 images.

use anyhow::Result;
use rayon::prelude::*;

use super::math::exp;
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

/// Images the cross-entropy head takes at once, one SIMD lane each ([`cross_entropy_lanes`]).
const LANES: usize = 16;

/// The most logits per image the lane path takes; wider heads go image by image.
const LANE_WIDTH: usize = 16;

/// [`cross_entropy_plain`] (with `grad`) or [`cross_entropy_loss_plain`] (without) of [`LANES`]
/// images at once, lane l computing image l: `z` holds their rows of `width` logits (at most
/// [`LANE_WIDTH`]), `y` their labels (each below `width`), `grad` their gradient rows. Each lane does
/// the arithmetic of the one-image functions in the same order (the same maximum and first maximum,
/// the sum of the other terms from -0.0 in class order, as `Iterator::sum` adds), so the results are
/// the same bits; but the exponentials of sixteen images vectorise together, where one image's ten
/// logits did not (the head was 12 % of an FCP L-BFGS iteration on 2,000 images).
#[inline(always)]
fn cross_entropy_lanes_plain(
    z: &[f32],
    width: usize,
    y: &[u32; LANES],
    grad: Option<&mut [f32]>,
    scale: f32,
) -> ([f32; LANES], [bool; LANES]) {
    let mut t = [[0f32; LANES]; LANE_WIDTH];
    for (l, row) in z.chunks_exact(width).take(LANES).enumerate() {
        for (k, &v) in row.iter().enumerate() {
            t[k][l] = v;
        }
    }
    let (mut r, mut first) = (*y, [0u32; LANES]);
    let (mut zr, mut zf) = ([0f32; LANES], t[0]);
    for l in 0..LANES {
        zr[l] = t[y[l] as usize][l];
    }
    for (k, tk) in t.iter().enumerate().take(width) {
        for l in 0..LANES {
            if tk[l] > zr[l] {
                (r[l], zr[l]) = (k as u32, tk[l]);
            }
            if tk[l] > zf[l] {
                (first[l], zf[l]) = (k as u32, tk[l]);
            }
        }
    }
    let mut e = [[0f32; LANES]; LANE_WIDTH];
    let mut s = [-0.0f32; LANES];
    for k in 0..width {
        for l in 0..LANES {
            e[k][l] = exp(t[k][l] - zr[l]);
            s[l] = if k as u32 != r[l] { s[l] + e[k][l] } else { s[l] };
        }
    }
    let mut inv = [0f32; LANES];
    for l in 0..LANES {
        inv[l] = 1.0 / (1.0 + s[l]);
    }
    if let Some(grad) = grad {
        for k in 0..width {
            let mut g = [0f32; LANES];
            for l in 0..LANES {
                let (at_r, at_y) = (k as u32 == r[l], k as u32 == y[l]);
                let other = e[k][l] * inv[l];
                let g1 = match (at_r, at_y) {
                    (true, true) => -s[l] * inv[l],
                    (true, false) => inv[l],
                    (false, true) => other - 1.0,
                    (false, false) => other,
                };
                g[l] = g1 * scale;
            }
            for l in 0..LANES {
                grad[l * width + k] = g[l];
            }
        }
    }
    let mut loss = [0f32; LANES];
    for l in 0..LANES {
        loss[l] = s[l].ln_1p() + (zr[l] - t[y[l] as usize][l]);
    }
    // a loop, not `std::array::from_fn`: a generic helper may be compiled out of line, without this
    // per-level build's target features (scripts/check-simd-inlining)
    let mut correct = [false; LANES];
    for l in 0..LANES {
        correct[l] = first[l] == y[l];
    }
    (loss, correct)
}

dispatch!(
    /// [`cross_entropy_lanes_plain`] at the SIMD level `simd` (the same bits at every level).
    fn cross_entropy_lanes(z: &[f32], width: usize, y: &[u32; LANES], grad: Option<&mut [f32]>, scale: f32)
        -> ([f32; LANES], [bool; LANES]) => cross_entropy_lanes_plain
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

/// Eight partial sums, so that the loop vectorises: lane l adds the values i = l, l + 8, … of the whole
/// groups of eight, in order, the tail (the last `w % 8` values) goes into lane 0, and the lanes are
/// added 0 to 7. Not [`super::simd::sum8`]: it writes the gradient in the same pass (when `GRAD`;
/// `grad` is then as long as `z`), and it adds the tail into lane 0 before adding the lanes, another
/// order (so other bits) whenever the width is not a multiple of 8.
///
/// The values are computed in pieces of 32 (two AVX-512 vectors; four at AVX2), then one of 16 if
/// 16 or more are left, and added into the lanes as groups of eight, in the same order as one value at
/// a time. Why: each value is one long dependent chain (an exponential, a division), which two or
/// four vectors side by side overlap better than one: the loss alone over 2,000 images of 784 pixels,
/// one thread, 0.42 → 0.36 ns per value at AVX-512 and 0.63 → 0.46 at AVX2 (pieces of 64: 0.36 and
/// 0.44; docs/benchmarks.md). Earlier, groups of eight ran the sigmoid at half width on AVX-512
/// (0.85 → 0.67 ns per value with sixteen).
#[inline(always)]
fn mse_sigmoid_plain<const GRAD: bool>(z: &[f32], x: &[f32], grad: &mut [f32], scale: f32) -> f32 {
    let w = z.len();
    let k2 = 2.0 * scale / w as f32;
    let mut acc = [0f32; 8];
    let (pieces, sixteens, eights) = (w / 32 * 32, w / 16 * 16, w / 8 * 8);
    for at in (0..pieces).step_by(32) {
        mse_sigmoid_piece::<GRAD, 32>(&z[at..], &x[at..], (grad, at), k2, &mut acc);
    }
    if sixteens > pieces {
        mse_sigmoid_piece::<GRAD, 16>(&z[pieces..], &x[pieces..], (grad, pieces), k2, &mut acc);
    }
    // at most one more group of eight, then the tail
    for i in sixteens..w {
        let (sq, g) = mse_sigmoid_term(z[i], x[i], k2);
        acc[if i < eights { i % 8 } else { 0 }] += sq;
        if GRAD {
            grad[i] = g;
        }
    }
    acc.iter().sum::<f32>() / w as f32
}

/// d² and d loss / d z = k2 d σ'(z) of one value of [`mse_sigmoid_plain`] (`k2` = 2 scale / width),
/// with σ' = σ - σ² in one fused step.
#[inline(always)]
fn mse_sigmoid_term(z: f32, x: f32, k2: f32) -> (f32, f32) {
    let y = head_sigmoid(z);
    let d = y - x;
    (d * d, (k2 * d) * y.mul_add(-y, y))
}

/// The head's logistic sigmoid, 1 / (1 + e^-z) directly, about 3 ulp: [`exp`] clamps its argument,
/// so e^-z stays finite and the result is never NaN (below z = -88 it is 1 / (1 + e^88), a
/// subnormal the kernels' threads flush to 0).
///
/// Not [`super::math::sigmoid`], which takes e^-|z| and selects by the sign: four instructions more
/// per value, a tenth of this head's time (0.49 → 0.44 ns per value with the gradient at AVX-512, 0.72
/// → 0.62 at AVX2, together with the fused σ'; docs/benchmarks.md). The autoencoder's Hessian-vector
/// products are as accurate with either (`tests/hessian.rs`), while in the LSTM's gates this form
/// doubled the finite-difference error of the authors' vector at the default step, so the shared
/// sigmoid keeps its form.
#[inline(always)]
fn head_sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// The first `N` (a multiple of 8) values of `z` and `x`: their squares added into `acc` as groups of
/// eight in order, their gradients (when `GRAD`) written to `grad.0` from `grad.1` on.
#[inline(always)]
fn mse_sigmoid_piece<const GRAD: bool, const N: usize>(
    z: &[f32],
    x: &[f32],
    (grad, at): (&mut [f32], usize),
    k2: f32,
    acc: &mut [f32; 8],
) {
    let (z, x): (&[f32; N], &[f32; N]) = (z[..N].try_into().unwrap(), x[..N].try_into().unwrap());
    let (mut sq, mut g) = ([0f32; N], [0f32; N]);
    for lane in 0..N {
        (sq[lane], g[lane]) = mse_sigmoid_term(z[lane], x[lane], k2);
    }
    for group in sq.chunks_exact(8) {
        for lane in 0..8 {
            acc[lane] += group[lane];
        }
    }
    if GRAD {
        grad[at..][..N].copy_from_slice(&g);
    }
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
    let row = |n: usize| b * c.out_batch_stride + n * c.width;
    let mut i = 0;
    while let Some(y) = lane_labels(head, c, targets, (b, slot * 256 + i), images - i) {
        let z = &outputs[row(slot * 256 + i)..][..LANES * c.width];
        let d = grad.as_deref_mut().map(|g| &mut g[i * c.width..][..LANES * c.width]);
        let (losses, ok) = cross_entropy_lanes(simd, z, c.width, &y, d, scale);
        for (l, ok) in losses.iter().zip(ok) {
            loss += *l as f64;
            correct += f64::from(u8::from(ok));
        }
        i += LANES;
    }
    for i in i..images {
        let n = slot * 256 + i;
        let z = &outputs[row(n)..][..c.width];
        let image = b * c.img_bs + c.first_image + n;
        let d = grad.as_deref_mut().map(|g| &mut g[i * c.width..][..c.width]);
        let (l, ok) = image_loss(simd, head, z, (targets, image), d, scale);
        loss += l as f64;
        correct += f64::from(u8::from(ok));
    }
    (loss, correct)
}

/// The labels of the [`LANES`] images from chunk image `n` of vector `b` where the cross-entropy head
/// takes them together ([`cross_entropy_lanes`]): that many images left (`left`), at most
/// [`LANE_WIDTH`] logits, every label a valid class. `None`: image by image.
fn lane_labels(
    head: Head,
    c: &LossChunk,
    targets: &Targets,
    (b, n): (usize, usize),
    left: usize,
) -> Option<[u32; LANES]> {
    let Targets::Labels(labels) = targets else { return None };
    if head != Head::CrossEntropy || left < LANES || c.width > LANE_WIDTH {
        return None;
    }
    let first = b * c.img_bs + c.first_image + n;
    let y: [u32; LANES] = std::array::from_fn(|l| labels[first + l].to_bits());
    y.iter().all(|&y| (y as usize) < c.width).then_some(y)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sixteen images' logits (`width` each) with ties at the maximum (among themselves and with the
    /// label), a saturated softmax, values in the subnormal range and a row of equal logits.
    fn logits(width: usize) -> Vec<f32> {
        let mut z: Vec<f32> = (0..LANES * width).map(|i| ((i as f32) * 0.731).sin() * 3.0).collect();
        z[width..2 * width].fill(1.5); // every logit ties
        z[2 * width + 3] = z[2 * width..3 * width].iter().fold(f32::MIN, |m, &v| m.max(v)); // a tie at the top
        z[3 * width + 1] = 90.0; // e^(z_k - z_r) underflows for the others
        z[4 * width..5 * width].iter_mut().for_each(|v| *v *= 1e-39);
        z
    }

    /// The head's own sigmoid is within a few ulp of f64 over the range the outputs take, its σ' =
    /// σ - σ² as close as σ's rounding allows, and both saturate without NaN far outside it.
    #[test]
    fn the_head_sigmoid_and_its_derivative_match_f64() {
        let rel = |a: f32, b: f64| ((a as f64 - b) / b).abs();
        for i in -4000..=4000 {
            let z = i as f32 * 0.01;
            let s = 1.0 / (1.0 + (-(z as f64)).exp());
            let y = head_sigmoid(z);
            assert!(rel(y, s) < 5e-7, "sigmoid({z}) = {y} vs {s}");
            // near σ = 1 the derivative inherits σ's absolute rounding (as y (1 - y) does): bounded
            // absolutely there, relatively where σ < 1/2
            let (dy, ds) = (y.mul_add(-y, y), s * (1.0 - s));
            assert!(if z > 0.0 { (dy as f64 - ds).abs() < 1.5e-7 } else { rel(dy, ds) < 2e-6 }, "sigmoid'({z})");
        }
        assert_eq!(head_sigmoid(100.0), 1.0);
        assert_eq!(head_sigmoid(-1e30).to_bits(), head_sigmoid(-88.0).to_bits());
        assert!(head_sigmoid(f32::NAN).is_nan());
    }

    /// The MSE head adds its squared differences in the order its documentation gives (whole groups of
    /// eight by lane, the tail into lane 0, the lanes in order), at every SIMD level, for widths that
    /// are and are not multiples of 8, 16 and 32 (the pieces it computes side by side).
    #[test]
    fn the_reconstruction_head_adds_in_its_documented_order() {
        for w in [784, 1, 7, 8, 15, 16, 23, 24, 31, 32, 40, 47, 48, 56, 63, 64, 65, 88, 100] {
            let z: Vec<f32> = (0..w).map(|i| ((i as f32) * 0.37).sin() * 6.0).collect();
            let x: Vec<f32> = (0..w).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
            let (mut acc, mut want_grad) = ([0f32; 8], vec![0f32; w]);
            let k2 = 2.0 * 0.3 / w as f32;
            for i in 0..w {
                let y = head_sigmoid(z[i]);
                let d = y - x[i];
                acc[if i < w / 8 * 8 { i % 8 } else { 0 }] += d * d;
                want_grad[i] = (k2 * d) * y.mul_add(-y, y);
            }
            let want = acc.iter().sum::<f32>() / w as f32;
            for simd in Simd::ALL.into_iter().filter(|s| s.effective() == *s) {
                let mut grad = vec![f32::NAN; w];
                let loss = mse_sigmoid(simd, &z, &x, &mut grad, 0.3);
                assert_eq!(loss.to_bits(), want.to_bits(), "{simd:?}, width {w}");
                assert_eq!(mse_sigmoid_loss(simd, &z, &x).to_bits(), want.to_bits(), "{simd:?}, width {w}");
                let bits = |g: &[f32]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&grad), bits(&want_grad), "{simd:?}, width {w}: gradient");
            }
        }
    }

    /// The lane path has the bits of the one-image functions, with and without the gradient, at every
    /// SIMD level the processor has, for ten classes (the networks') and the widest the lanes take.
    #[test]
    fn sixteen_images_in_lanes_have_the_bits_of_one_image_at_a_time() {
        for width in [10, 3, LANE_WIDTH] {
            let z = logits(width);
            let y: [u32; LANES] = std::array::from_fn(|l| ((l * 7 + 3) % width) as u32);
            for simd in Simd::ALL.into_iter().filter(|s| s.effective() == *s) {
                let mut lanes_grad = vec![f32::NAN; LANES * width];
                let (losses, ok) = cross_entropy_lanes(simd, &z, width, &y, Some(&mut lanes_grad), 0.37);
                let (losses_only, ok_only) = cross_entropy_lanes(simd, &z, width, &y, None, 0.37);
                for l in 0..LANES {
                    let row = &z[l * width..][..width];
                    let mut grad = vec![0f32; width];
                    let (loss, correct) = cross_entropy(simd, row, y[l] as usize, &mut grad, 0.37);
                    let what = format!("{simd:?}, width {width}, image {l}");
                    assert_eq!((losses[l].to_bits(), ok[l]), (loss.to_bits(), correct), "{what}");
                    let only = cross_entropy_loss(simd, row, y[l] as usize);
                    assert_eq!((losses_only[l].to_bits(), ok_only[l]), (only.0.to_bits(), only.1), "{what}");
                    let bits = |g: &[f32]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&lanes_grad[l * width..][..width]), bits(&grad), "{what}: gradient");
                }
            }
        }
    }
}
