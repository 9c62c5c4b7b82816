//! The weight and bias gradient: per block of images, d loss / d out gathered into one matrix times
//! the im2col matrix transposed, summed over blocks in pieces that do not depend on the thread count.

use super::im2col::{gather_grad_out, im2col};
use super::schedule::{inner_threads, sum_tasks, Scratch};
use super::{check_input, check_params, Ctx, Shape};
use crate::cpu::matmul::{sgemm, Mat};
use crate::cpu::Simd;
use crate::ops::Conv;

/// grads (+)= d loss / d (weights, bias) given `grad_out` = d loss / d out (laid out as `forward`'s
/// output); `input`, `images`, `threads` and `simd` as in [`forward`](super::forward()).
///
/// Writes only vector b's weight tensor `grads[b * n_prm + w_off..][..out_c * in_c * ksize²]` and bias
/// `grads[b * n_prm + b_off..][..out_c]` (if any): overwritten, or added to when `accumulate`.
pub fn weight_grad(
    c: &Conv,
    images: bool,
    input: &[f32],
    grad_out: &[f32],
    grads: &mut [f32],
    accumulate: bool,
    (threads, simd): (usize, Simd),
) {
    if c.batches == 0 {
        return;
    }
    let shared = images && c.img_bs == 0;
    let sh = Shape::new(c, shared);
    let ctx = Ctx { c, sh, shared, input, in_bs: c.in_bs(images), threads, simd };
    if c.images > 0 {
        check_input(c, &sh, input, ctx.in_bs);
        assert!(grad_out.len() >= c.batches * c.out_bs(), "conv: grad_out too short");
    }
    check_params(c, grads, "grads");
    let (dw, db) = weight_grad_sums(&ctx, grad_out);
    let rows = c.batches * c.out_c;
    for b in 0..c.batches {
        let w = &mut grads[b * c.n_prm + c.w_off..][..c.out_c * sh.k];
        for (i, g) in w.iter_mut().enumerate() {
            // dw is column-major: element ((b, co), r) at r * rows + b * out_c + co
            let (co, r) = (i / sh.k, i % sh.k);
            store(g, dw[r * rows + b * c.out_c + co], accumulate);
        }
        if let Some(b_off) = c.b_off {
            let bias = &mut grads[b * c.n_prm + b_off..][..c.out_c];
            bias.iter_mut().zip(&db[b * c.out_c..]).for_each(|(g, &d)| store(g, d, accumulate));
        }
    }
}

/// dst = src, or dst += src when `accumulate`.
fn store(dst: &mut f32, src: f32, accumulate: bool) {
    *dst = if accumulate { *dst + src } else { src };
}

/// Per-piece state of the weight gradient: partial sums dW [(vector, co) x K] (column-major, so that
/// `gemm` reads cols^T without repacking it) and dbias [(vector, co)] over the blocks of one piece of
/// tasks.
struct GradSums {
    dw: Vec<f32>,
    db: Vec<f32>,
}

/// The weight and bias gradients of all vectors, dW [(vector, co) x K] (column-major) and dbias
/// [(vector, co)]: partial sums over pieces of image blocks, added up at the end.
fn weight_grad_sums(ctx: &Ctx, grad_out: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (c, sh) = (ctx.c, ctx.sh);
    // (first image, count, first vector, vectors): all vectors per block when they share the im2col matrix
    let tasks: Vec<(usize, usize, usize, usize)> = if ctx.shared {
        sh.blocks(c.images).map(|(f, n)| (f, n, 0, c.batches)).collect()
    } else {
        (0..c.batches).flat_map(|b| sh.blocks(c.images).map(move |(f, n)| (f, n, b, 1))).collect()
    };
    let inner = inner_threads(tasks.len(), ctx.threads);
    let init = || GradSums { dw: vec![0.0; c.batches * c.out_c * sh.k], db: vec![0.0; c.batches * c.out_c] };
    let run = |mut acc: GradSums, t| {
        weight_grad_block(ctx, grad_out, t, &mut acc, inner);
        acc
    };
    // in fixed pieces, so that the bits do not depend on the thread count (see `sum_tasks`)
    let sums = sum_tasks(&tasks, ctx.threads, init, run, add_sums);
    (sums.dw, sums.db)
}

/// Adds the partial sums of `b` into `a`.
fn add_sums(mut a: GradSums, b: GradSums) -> GradSums {
    a.dw.iter_mut().zip(&b.dw).for_each(|(x, y)| *x += y);
    a.db.iter_mut().zip(&b.db).for_each(|(x, y)| *x += y);
    a
}

/// Weight gradient of one block of images for vectors `b0..b0 + vectors`: per group of vectors,
/// dW_group += dOut_group [(vector, co) x (image, pos)] * cols^T, dbias += row sums of dOut.
fn weight_grad_block(
    ctx: &Ctx,
    grad_out: &[f32],
    task: (usize, usize, usize, usize),
    acc: &mut GradSums,
    inner: usize,
) {
    let (c, sh) = (ctx.c, &ctx.sh);
    let (first, count, b0, vectors) = task;
    let n = sh.cols(count);
    let Scratch([cols, buf]) = &mut Scratch::take(sh.k * sh.cols(sh.block), sh.group * sh.out_map * sh.block);
    if ctx.shared {
        im2col(ctx.simd, c, sh, ctx.input_at(0, first), count, cols);
    }
    for gb in (b0..b0 + vectors).step_by(sh.group) {
        let gn = sh.group.min(b0 + vectors - gb);
        if !ctx.shared {
            im2col(ctx.simd, c, sh, ctx.input_at(gb, first), count, cols);
        }
        gather_grad_out(c, sh, grad_out, (gb, gn), (first, count), buf, Some(&mut acc.db));
        let (m, k) = (gn * c.out_c, sh.k);
        let dw = (&mut acc.dw[..], Mat::new(gb * c.out_c, 1, c.batches * c.out_c));
        sgemm((m, k, n), (buf, Mat::new(0, n, 1)), (cols, Mat::new(0, 1, n)), dw, true, inner);
    }
}
