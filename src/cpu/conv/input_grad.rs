//! The input gradient: per block of images and vector, the transposed weights times d loss / d out,
//! folded back onto the input maps by `col2im`.

use super::im2col::{col2im, gather_grad_out};
use super::schedule::{inner_threads, run_tasks, split_blocks, Scratch};
use super::{check_params, Shape};
use crate::cpu::matmul::{sgemm, Mat};
use crate::ops::Conv;

/// grad_in = d loss / d input given `grad_out` = d loss / d out (laid out as `forward`'s output), for
/// an f32 input map per vector.
///
/// Writes (overwrites) exactly the input maps: vector b's `[image][ci][y][x]` at `c.in_off + b *
/// c.in_bs(false)`, `images * in_c * in_h * in_w` elements each.
pub fn input_grad(c: &Conv, weights: &[f32], grad_out: &[f32], grad_in: &mut [f32], threads: usize) {
    if c.batches == 0 || c.images == 0 {
        return;
    }
    let sh = Shape::new(c, false);
    check_params(c, weights, "weights");
    assert!(grad_out.len() >= c.batches * c.out_bs(), "conv: grad_out too short");
    let map = c.in_bs(false);
    assert!(grad_in.len() >= c.in_off + c.batches * map, "conv: grad_in too short");
    let per_block = split_blocks(&mut grad_in[c.in_off..], map, c.batches, sh.block * sh.in_map);
    let mut tasks = Vec::new();
    for (i, pieces) in per_block.into_iter().enumerate() {
        tasks.extend(pieces.into_iter().enumerate().map(|(b, g)| (i * sh.block, b, g)));
    }
    let inner = inner_threads(tasks.len(), threads);
    let wt = transposed_weights(c, &sh, weights);
    let init = || Scratch::take(sh.k * sh.cols(sh.block), sh.out_map * sh.block);
    run_tasks(tasks, threads, init, |Scratch([dcols, buf]), (first, b, piece)| {
        let count = piece.len() / sh.in_map;
        let n = sh.cols(count);
        gather_grad_out(c, &sh, grad_out, (b, 1), (first, count), buf, None);
        let wt = (&wt[..], Mat::new(b * sh.k * c.out_c, c.out_c, 1));
        sgemm((sh.k, n, c.out_c), wt, (buf, Mat::new(0, n, 1)), (dcols, Mat::new(0, n, 1)), false, inner);
        piece.fill(0.0);
        col2im(c, &sh, dcols, count, piece);
    });
}

/// W_b^T [K x out_c] row-major for every vector, one after another: `gemm` reads this layout without
/// repacking it.
fn transposed_weights(c: &Conv, sh: &Shape, weights: &[f32]) -> Vec<f32> {
    let mut wt = vec![0.0; c.batches * sh.k * c.out_c];
    for (b, wt) in wt.chunks_exact_mut(sh.k * c.out_c).enumerate() {
        let w = &weights[b * c.n_prm + c.w_off..][..c.out_c * sh.k];
        for (i, &v) in w.iter().enumerate() {
            wt[(i % sh.k) * c.out_c + i / sh.k] = v;
        }
    }
    wt
}
