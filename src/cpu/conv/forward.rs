//! The forward pass: per block of images, the im2col matrix times the packed weights of a group of
//! vectors, scattered into the channel-major output with the bias.

use super::im2col::im2col;
use super::schedule::{inner_threads, run_tasks, split_blocks, Scratch};
use super::{check_input, check_params, Ctx, Shape};
use crate::cpu::matmul::{sgemm, Mat};
use crate::cpu::Simd;
use crate::ops::Conv;

/// out = conv(input) + bias for every vector.
///
/// * `input`: with `images` the image buffer (f32 pixels), vector b's image n at `c.in_off + b *
///   c.in_bs(true) + n * in_c * in_h * in_w` (all vectors read the same images when `c.img_bs == 0`);
///   otherwise an f32 map per vector at `c.in_off + b * c.in_bs(false)`. Layout `[image][ci][y][x]`.
/// * `weights`: B parameter vectors of `c.n_prm`; vector b's weights `[out_c][in_c][ksize][ksize]` at
///   `b * n_prm + w_off`, bias `[out_c]` at `b * n_prm + b_off` (zeros when there is none).
/// * `out`: written at `b * c.out_bs() + ((n * out_c + co) * out_h + oy) * out_w + ox`, all of
///   `out[..batches * out_bs]`.
///
/// `threads`: the most worker threads; `simd`: the level the im2col copies run at.
pub fn forward(
    c: &Conv,
    images: bool,
    input: &[f32],
    weights: &[f32],
    out: &mut [f32],
    (threads, simd): (usize, Simd),
) {
    if c.batches == 0 || c.images == 0 {
        return;
    }
    let shared = images && c.img_bs == 0;
    let sh = Shape::new(c, shared);
    let ctx = Ctx { c, sh, shared, input, in_bs: c.in_bs(images), threads, simd };
    check_input(c, &sh, input, ctx.in_bs);
    check_params(c, weights, "weights");
    let (packed, bias) = pack_weights(c, &sh, weights);
    let tasks = forward_tasks(&ctx, out);
    let inner = inner_threads(tasks.len(), threads);
    let init = || Scratch::take(sh.k * sh.cols(sh.block), sh.group * sh.out_map * sh.block);
    run_tasks(tasks, threads, init, |Scratch([cols, prod]), task| {
        forward_block(&ctx, (&packed, &bias), task, (cols, prod), inner)
    });
}

/// The weights of all vectors as one row-major matrix [(vector, co) x K] (so that a group of vectors
/// is one product over a shared im2col matrix) and their biases [(vector, co)].
fn pack_weights(c: &Conv, sh: &Shape, weights: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let per = c.out_c * sh.k;
    let mut packed = Vec::with_capacity(c.batches * per);
    let mut bias = Vec::with_capacity(c.batches * c.out_c);
    for b in 0..c.batches {
        packed.extend_from_slice(&weights[b * c.n_prm + c.w_off..][..per]);
        match c.b_off {
            Some(b_off) => bias.extend_from_slice(&weights[b * c.n_prm + b_off..][..c.out_c]),
            None => bias.resize(bias.len() + c.out_c, 0.0),
        }
    }
    (packed, bias)
}

/// One block of images for vectors `b0..b0 + outs.len()`, with their output pieces.
struct Block<'a> {
    first: usize,
    b0: usize,
    outs: Vec<&'a mut [f32]>,
}

/// The forward tasks: one per block of images, with all vectors when they share the input (so the
/// im2col matrix is built once), else one per (block, vector).
fn forward_tasks<'a>(ctx: &Ctx, out: &'a mut [f32]) -> Vec<Block<'a>> {
    let (c, sh) = (ctx.c, &ctx.sh);
    let per_block = split_blocks(out, c.out_bs(), c.batches, sh.block * sh.out_map);
    let mut tasks = Vec::new();
    for (i, outs) in per_block.into_iter().enumerate() {
        let first = i * sh.block;
        if ctx.shared {
            tasks.push(Block { first, b0: 0, outs });
        } else {
            tasks.extend(outs.into_iter().enumerate().map(|(b, o)| Block { first, b0: b, outs: vec![o] }));
        }
    }
    tasks
}

/// Forward pass of one block: im2col, then per group of vectors prod = W_group * cols and a copy of
/// each image's [out_c x positions] piece (plus bias) into the channel-major output.
fn forward_block(ctx: &Ctx, (packed, bias): (&[f32], &[f32]), mut task: Block, (cols, prod): Mats, inner: usize) {
    let (c, sh) = (ctx.c, &ctx.sh);
    let count = task.outs[0].len() / sh.out_map;
    let n = sh.cols(count);
    if ctx.shared {
        im2col(ctx.simd, c, sh, ctx.input_at(0, task.first), count, cols);
    }
    let mut b0 = task.b0;
    for group in task.outs.chunks_mut(sh.group) {
        if !ctx.shared {
            im2col(ctx.simd, c, sh, ctx.input_at(b0, task.first), count, cols);
        }
        let m = group.len() * c.out_c;
        let w = (packed, Mat::new(b0 * c.out_c * sh.k, sh.k, 1));
        sgemm((m, n, sh.k), w, (cols, Mat::new(0, n, 1)), (prod, Mat::new(0, n, 1)), false, inner);
        scatter_output(c, sh, prod, &bias[b0 * c.out_c..], group, count);
        b0 += group.len();
    }
}

/// Per-worker scratch: the im2col matrix and the product buffer.
type Mats<'s> = (&'s mut [f32], &'s mut [f32]);

/// Copies `prod` [(vector, co) x (image, position)] into the vectors' output pieces
/// [image][co][position], adding the bias.
fn scatter_output(c: &Conv, sh: &Shape, prod: &[f32], bias: &[f32], outs: &mut [&mut [f32]], count: usize) {
    let n = sh.cols(count);
    for (v, out) in outs.iter_mut().enumerate() {
        for co in 0..c.out_c {
            let row = &prod[(v * c.out_c + co) * n..][..n];
            let b = bias[v * c.out_c + co];
            for (img, src) in row.chunks_exact(sh.pos).enumerate() {
                let dst = &mut out[img * sh.out_map + co * sh.pos..][..sh.pos];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = s + b);
            }
        }
    }
}
