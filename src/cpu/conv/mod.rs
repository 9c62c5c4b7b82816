//! Batched 2-D convolution (cross-correlation, square kernels, zero padding, any stride, optional
//! bias) on the CPU: the
//! `forward`, `weight_grad` and `input_grad` entry points of `conv.wgsl`, for B weight vectors at once.
//!
//! Feature maps are `[vector][image][channel][row][col]`. Every kernel works on blocks of images: it
//! unfolds a block into an im2col matrix `cols` [K x (images * positions)], K = in_c * ksize², row
//! (ci, ky, kx), column (image, oy, ox), and does the arithmetic with one strided matrix product per
//! block (and per group of vectors). Blocks are independent tasks for rayon; each worker thread keeps
//! its scratch matrices between calls (`schedule::Scratch`).
//!
//! The pieces: `forward`, `weight_grad` and `input_grad` (a file each) check their operands, cut the
//! work into tasks and say what one task computes; `im2col` moves between feature maps and matrices,
//! using the short-row copies of `lanes` (which may write past a row on purpose); `schedule` runs the
//! tasks on the caller's thread budget, splits the outputs into pieces no two tasks share, and adds
//! the weight gradient's partial sums in pieces fixed by the task count (the same bits on any number of
//! threads). The row sums use the CPU backend's one 8-lane sum, `cpu::simd::sum8`. This
//! file holds what they all read: the sizes and blocking derived from a [`Conv`] (`Shape`), the
//! operands of one call (`Ctx`) and the checks of the slices' lengths.

mod forward;
mod im2col;
mod input_grad;
mod lanes;
mod schedule;
#[cfg(test)]
mod tests;
mod weight_grad;

pub use forward::forward;
pub use input_grad::input_grad;
pub use weight_grad::weight_grad;

use anyhow::Result;

use super::{Cpu, CpuBuffer, CpuCommand, Simd};
use crate::ops::{Conv, Convolutions, Source};

impl Convolutions for Cpu {
    fn conv_forward(
        &self,
        c: Conv,
        input: Source<CpuBuffer>,
        weights: &CpuBuffer,
        out: &CpuBuffer,
    ) -> Result<CpuCommand> {
        c.check()?;
        let (images, input, weights, out) = (input.is_images(), input.buffer().clone(), weights.clone(), out.clone());
        Ok(CpuCommand::checked("convolution", &[&out], &[&input, &weights])?.run(move |cpu, l| {
            forward(&c, images, input.view(l), weights.view(l), out.view_mut(l), (cpu.threads, cpu.kernels))
        }))
    }

    fn conv_weight_grad(
        &self,
        c: Conv,
        input: Source<CpuBuffer>,
        grad_out: &CpuBuffer,
        grads: &CpuBuffer,
        accumulate: bool,
    ) -> Result<CpuCommand> {
        c.check()?;
        let (images, input, grad_out, grads) =
            (input.is_images(), input.buffer().clone(), grad_out.clone(), grads.clone());
        Ok(CpuCommand::checked("convolution weight gradient", &[&grads], &[&input, &grad_out])?.run(move |cpu, l| {
            weight_grad(
                &c,
                images,
                input.view(l),
                grad_out.view(l),
                grads.view_mut(l),
                accumulate,
                (cpu.threads, cpu.kernels),
            )
        }))
    }

    fn conv_input_grad(
        &self,
        c: Conv,
        weights: &CpuBuffer,
        grad_out: &CpuBuffer,
        grad_in: &CpuBuffer,
    ) -> Result<CpuCommand> {
        c.check()?;
        let (weights, grad_out, grad_in) = (weights.clone(), grad_out.clone(), grad_in.clone());
        Ok(CpuCommand::checked("convolution input gradient", &[&grad_in], &[&weights, &grad_out])?
            .run(move |cpu, l| input_grad(&c, weights.view(l), grad_out.view(l), grad_in.view_mut(l), cpu.threads)))
    }
}

/// Target size (floats) of the im2col matrix of one block: small enough to stay in the L2 cache while
/// the product streams over it, large enough that each product is big compared with its fixed costs.
///
/// 64 Ki floats (256 KiB): LeNet's second convolution then takes blocks of 4 images (16 per 64-image
/// SGD step) instead of 2, and its three kernels' products are less dominated by `gemm`'s fixed costs.
/// On a 2-core Intel Xeon (2 MiB L2 per core) LeNet's path iteration, B = 51 evaluation, SGD epoch and
/// L-BFGS iteration took 7–9 % less than with 48 Ki. 128 Ki was no faster in the SGD step (the first
/// convolution's weight gradient slower), 96 Ki slower (11 blocks of 6 images share badly between two
/// threads), 256 Ki slower for both convolutions (docs/benchmarks.md). The block, and with it the
/// order of the weight gradient's sums, depends only on the shapes, never on the thread count.
const COLS_TARGET: usize = 64 * 1024;
/// Target size (floats) of a block's product buffer when several vectors share one im2col matrix.
const PRODUCT_TARGET: usize = 96 * 1024;

/// The sizes every kernel derives from a [`Conv`], and the blocking of images and vectors.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Rows of the im2col matrix: in_c * ksize².
    k: usize,
    /// Output positions per channel: out_h · out_w.
    pos: usize,
    /// Input elements per image: in_c · in_h · in_w.
    in_map: usize,
    /// Output elements per image: out_c · out_h · out_w.
    out_map: usize,
    /// Images per block.
    block: usize,
    /// Vectors per product when all vectors share the im2col matrix (1 otherwise).
    group: usize,
}

impl Shape {
    fn new(c: &Conv, shared: bool) -> Shape {
        let k = c.in_c * c.ksize * c.ksize;
        let pos = c.out_h() * c.out_w();
        // a multiple of 8 columns per block spares `gemm` a repacking of the im2col matrix
        let unit = 8 / gcd(pos.max(1), 8);
        let block = (COLS_TARGET / (k * pos).max(1) / unit * unit).max(unit).min(c.images.max(1));
        let group =
            if shared { (PRODUCT_TARGET / (c.out_c * pos * block).max(1)).clamp(1, c.batches.max(1)) } else { 1 };
        Shape { k, pos, in_map: c.in_map(), out_map: c.out_c * pos, block, group }
    }

    /// Columns of the im2col matrix of a block of `count` images.
    fn cols(&self, count: usize) -> usize {
        count * self.pos
    }

    /// Blocks of images: (first image, count).
    fn blocks(&self, images: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..images).step_by(self.block).map(move |first| (first, self.block.min(images - first)))
    }
}

/// Greatest common divisor.
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Checks that the input (read with vector stride `in_bs`) fits in its slice.
fn check_input(c: &Conv, sh: &Shape, input: &[f32], in_bs: usize) {
    let end = c.in_off + (c.batches - 1) * in_bs + c.images * sh.in_map;
    assert!(input.len() >= end, "conv: input has {} elements, needs {end}", input.len());
}

/// Checks that every vector's parameter block fits in `params`.
fn check_params(c: &Conv, params: &[f32], what: &str) {
    let end = c.batches * c.n_prm;
    assert!(params.len() >= end, "conv: {what} has {} elements, needs {end}", params.len());
    assert!(c.w_off + c.weight_len() <= c.n_prm, "conv: weights past the parameter vector");
    assert!(c.b_off.map_or(0, |b| b + c.out_c) <= c.n_prm, "conv: bias past the parameter vector");
}

/// The read-only operands of one call, shared by its tasks.
struct Ctx<'a> {
    c: &'a Conv,
    sh: Shape,
    /// Input vectors share one input (the image buffer with `img_bs == 0`).
    shared: bool,
    input: &'a [f32],
    in_bs: usize,
    threads: usize,
    /// The SIMD level of the im2col copies.
    simd: Simd,
}

impl Ctx<'_> {
    /// First element of image `first` of vector `b`'s input.
    fn input_at(&self, b: usize, first: usize) -> &[f32] {
        let b = if self.shared { 0 } else { b };
        &self.input[self.c.in_off + b * self.in_bs + first * self.sh.in_map..]
    }
}
