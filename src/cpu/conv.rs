//! Batched 2-D convolution (cross-correlation, square kernels, zero padding, stride 1) on the CPU: the
//! `forward`, `weight_grad` and `input_grad` entry points of `conv.wgsl`, for B weight vectors at once.
//!
//! Feature maps are [vector][image][channel][row][col]. Every kernel works on blocks of images: it
//! unfolds a block into an im2col matrix `cols` [K x (images * positions)], K = in_c * ksize², row
//! (ci, ky, kx), column (image, oy, ox), and does the arithmetic with one strided matrix product per
//! block (and per group of vectors). Blocks are independent tasks for rayon; each worker allocates its
//! scratch once and reuses it for all the blocks it runs.

use rayon::prelude::*;

use crate::cpu::gemm::{sgemm, Mat};
use crate::ops::Conv;

/// Target size (floats) of the im2col matrix of one block: small enough to stay in the L2 cache while
/// the product streams over it, large enough that each product is big compared with its fixed costs.
const COLS_TARGET: usize = 48 * 1024;
/// Target size (floats) of a block's product buffer when several vectors share one im2col matrix.
const PRODUCT_TARGET: usize = 96 * 1024;
/// Pieces the weight gradient's sum over image blocks is split into, whatever the thread count: enough
/// to keep the cores of a large node busy, few enough that their partial sums stay small.
const GRAD_PIECES: usize = 32;

/// The sizes every kernel derives from a [`Conv`], and the blocking of images and vectors.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Rows of the im2col matrix: in_c * ksize².
    k: usize,
    /// Output positions per channel: out_hw².
    pos: usize,
    /// Input elements per image: in_c * in_hw².
    in_map: usize,
    /// Output elements per image: out_c * out_hw².
    out_map: usize,
    /// Images per block.
    block: usize,
    /// Vectors per product when all vectors share the im2col matrix (1 otherwise).
    group: usize,
}

impl Shape {
    fn new(c: &Conv, shared: bool) -> Shape {
        let k = c.in_c * c.ksize * c.ksize;
        let pos = c.out_hw() * c.out_hw();
        // a multiple of 8 columns per block spares `gemm` a repacking of the im2col matrix
        let unit = 8 / gcd(pos.max(1), 8);
        let block = (COLS_TARGET / (k * pos).max(1) / unit * unit).max(unit).min(c.images.max(1));
        let group =
            if shared { (PRODUCT_TARGET / (c.out_c * pos * block).max(1)).clamp(1, c.batches.max(1)) } else { 1 };
        Shape { k, pos, in_map: c.in_c * c.in_hw * c.in_hw, out_map: c.out_c * pos, block, group }
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

/// Runs `f` on every task with per-worker scratch from `init`, on at most `threads` workers.
fn run_tasks<T, S, I, F>(tasks: Vec<T>, threads: usize, init: I, f: F)
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, T) + Sync + Send,
{
    if threads <= 1 || tasks.len() <= 1 {
        let mut scratch = init();
        tasks.into_iter().for_each(|t| f(&mut scratch, t));
    } else {
        let min_len = min_len(tasks.len(), threads);
        tasks.into_par_iter().with_min_len(min_len).for_each_init(init, f);
    }
}

/// Smallest piece rayon may split `len` tasks into so that at most `threads` workers take part (the
/// current pool may be larger than the caller's budget); 1 when the pool already fits the budget.
fn min_len(len: usize, threads: usize) -> usize {
    if rayon::current_num_threads() <= threads {
        1
    } else {
        len.div_ceil(threads)
    }
}

/// Threads for each matrix product: all of them when there is a single task, else one per task.
fn inner_threads(tasks: usize, threads: usize) -> usize {
    if tasks == 1 {
        threads.max(1)
    } else {
        1
    }
}

/// Splits per-vector maps of `map` floats each, stored back to back from the start of `buf`, into
/// disjoint per-block pieces of `block_len` floats: `result[block][vector]`.
fn split_blocks(buf: &mut [f32], map: usize, batches: usize, block_len: usize) -> Vec<Vec<&mut [f32]>> {
    let mut per_block: Vec<Vec<&mut [f32]>> = Vec::new();
    if map == 0 {
        return per_block;
    }
    for vector in buf[..batches * map].chunks_mut(map) {
        for (i, piece) in vector.chunks_mut(block_len).enumerate() {
            if per_block.len() <= i {
                per_block.push(Vec::with_capacity(batches));
            }
            per_block[i].push(piece);
        }
    }
    per_block
}

/// The range of output columns `o` (along one axis) whose input coordinate `o + kk - pad` lies inside
/// [0, in_hw), clipped to [0, out_hw).
fn valid_range(c: &Conv, kk: usize, out_hw: usize) -> (usize, usize) {
    let lo = c.pad.saturating_sub(kk).min(out_hw);
    let hi = (c.in_hw + c.pad).saturating_sub(kk).clamp(lo, out_hw);
    (lo, hi)
}

/// Fills `cols` [K x count * pos] (row (ci, ky, kx), column (image, oy, ox)) from `count` images that
/// start at `input[0]`, each in_c x in_hw x in_hw, with zeros where the window leaves the map.
///
/// Elements are written strictly front to back in whole 8-float vectors, each write starting where
/// the finished part ends, so a write may spill garbage past its segment (the next write covers it):
/// the rows of a map are only 10 to 30 floats long and exact-length copies would cost more than the
/// product. `cols` past the matrix is scratch that may receive such garbage.
fn im2col(c: &Conv, sh: &Shape, input: &[f32], count: usize, cols: &mut [f32]) {
    let (hw, ow, ks) = (c.in_hw, c.out_hw(), c.ksize);
    let n = sh.cols(count);
    for r in 0..sh.k {
        let (ci, ky, kx) = (r / (ks * ks), r / ks % ks, r % ks);
        let (lo, hi) = valid_range(c, kx, ow);
        for img in 0..count {
            let plane = (img * c.in_c + ci) * hw * hw;
            let base = r * n + img * sh.pos;
            for oy in 0..ow {
                let d = base + oy * ow;
                let y = (oy + ky).wrapping_sub(c.pad);
                if y >= hw || lo == hi {
                    zero_ahead(&mut cols[d..], ow);
                    continue;
                }
                // input column of output column ox is ox + kx - pad, inside the map for ox in lo..hi
                zero_ahead(&mut cols[d..], lo);
                copy_ahead(&mut cols[d + lo..], &input[plane + y * hw + lo + kx - c.pad..], hi - lo);
                zero_ahead(&mut cols[d + hi..], ow - hi);
            }
        }
    }
}

/// Copies `src[..len]` to `dst[..len]` in whole 8-float vectors when both slices have room, writing
/// up to 7 floats of garbage past `len` (see [`im2col`]); exactly otherwise.
#[inline(always)]
fn copy_ahead(dst: &mut [f32], src: &[f32], len: usize) {
    let whole = len.next_multiple_of(8);
    if dst.len() >= whole && src.len() >= whole {
        for (d, s) in dst[..whole].chunks_exact_mut(8).zip(src[..whole].chunks_exact(8)) {
            let d: &mut [f32; 8] = d.try_into().expect("8 floats");
            *d = s.try_into().expect("8 floats");
        }
    } else {
        copy_short(&mut dst[..len], &src[..len]);
    }
}

/// Zeroes `dst[..len]` in whole 8-float vectors when there is room, possibly zeroing up to 7 floats
/// more (see [`im2col`]).
#[inline(always)]
fn zero_ahead(dst: &mut [f32], len: usize) {
    let whole = len.next_multiple_of(8);
    if dst.len() >= whole {
        for d in dst[..whole].chunks_exact_mut(8) {
            let d: &mut [f32; 8] = d.try_into().expect("8 floats");
            *d = [0.0; 8];
        }
    } else {
        dst[..len].iter_mut().for_each(|d| *d = 0.0);
    }
}

/// dst = src for the short rows of a feature map: inline 8-wide moves instead of a `memcpy` call, whose
/// fixed cost dominates rows of 10 to 30 floats.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let (mut d, mut s) = (dst.chunks_exact_mut(8), src.chunks_exact(8));
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; 8] = d.try_into().expect("8 floats");
        *d = s.try_into().expect("8 floats");
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// dst += src for short rows (see [`copy_short`]).
#[inline(always)]
fn add_short(dst: &mut [f32], src: &[f32]) {
    let (mut d, mut s) = (dst.chunks_exact_mut(8), src.chunks_exact(8));
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; 8] = d.try_into().expect("8 floats");
        let s: &[f32; 8] = s.try_into().expect("8 floats");
        for (d, s) in d.iter_mut().zip(s) {
            *d += s;
        }
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d += s;
    }
}

/// Sum of a row, in 8 independent lanes so that it vectorises (a plain f32 sum is one serial chain).
fn row_sum(row: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The adjoint of [`im2col`]: adds every element of `cols` into the input element it was read from
/// (`grad_in` holds `count` images from index 0 and must be zeroed or hold a sum to add to).
fn col2im(c: &Conv, sh: &Shape, cols: &[f32], count: usize, grad_in: &mut [f32]) {
    let (hw, ow, ks) = (c.in_hw, c.out_hw(), c.ksize);
    let n = sh.cols(count);
    for (r, row) in cols[..sh.k * n].chunks_exact(n).enumerate() {
        let (ci, ky, kx) = (r / (ks * ks), r / ks % ks, r % ks);
        let (lo, hi) = valid_range(c, kx, ow);
        if lo == hi {
            continue;
        }
        for (img, src_img) in row.chunks_exact(sh.pos).enumerate() {
            let plane = &mut grad_in[(img * c.in_c + ci) * hw * hw..][..hw * hw];
            for (oy, src) in src_img.chunks_exact(ow).enumerate() {
                let y = (oy + ky).wrapping_sub(c.pad);
                if y >= hw {
                    continue;
                }
                let dst = &mut plane[y * hw + lo + kx - c.pad..][..hi - lo];
                add_short(dst, &src[lo..hi]);
            }
        }
    }
}

/// Copies d loss / d out of vectors `b0..b0 + vectors`, images `first..first + count`, into `buf` as
/// one row-major matrix [(vector, co) x (image, position)] so a single product can contract over all
/// images; adds each row's sum to `bias_sums[(vector, co)]` when given.
fn gather_grad_out(
    c: &Conv,
    sh: &Shape,
    grad_out: &[f32],
    (b0, vectors): (usize, usize),
    (first, count): (usize, usize),
    buf: &mut [f32],
    mut bias_sums: Option<&mut [f32]>,
) {
    let n = sh.cols(count);
    for (row, dst) in buf[..vectors * c.out_c * n].chunks_exact_mut(n).enumerate() {
        let (b, co) = (b0 + row / c.out_c, row % c.out_c);
        let base = b * c.out_bs() + first * sh.out_map + co * sh.pos;
        for (img, d) in dst.chunks_exact_mut(sh.pos).enumerate() {
            copy_short(d, &grad_out[base + img * sh.out_map..][..sh.pos]);
        }
        if let Some(sums) = bias_sums.as_deref_mut() {
            sums[b * c.out_c + co] += row_sum(dst);
        }
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
    assert!(c.w_off + c.out_c * c.in_c * c.ksize * c.ksize <= c.n_prm, "conv: weights past the parameter vector");
    assert!(c.b_off + c.out_c <= c.n_prm, "conv: bias past the parameter vector");
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
}

impl Ctx<'_> {
    /// First element of image `first` of vector `b`'s input.
    fn input_at(&self, b: usize, first: usize) -> &[f32] {
        let b = if self.shared { 0 } else { b };
        &self.input[self.c.in_off + b * self.in_bs + first * self.sh.in_map..]
    }
}

/// One block of images for vectors `b0..b0 + outs.len()`, with their output pieces.
struct Block<'a> {
    first: usize,
    b0: usize,
    outs: Vec<&'a mut [f32]>,
}

/// out = conv(input) + bias for every vector.
///
/// * `input`: with `images` the image buffer (f32 pixels), vector b's image n at `c.in_off + b *
///   c.in_bs(true) + n * in_c * in_hw²` (all vectors read the same images when `c.img_bs == 0`);
///   otherwise an f32 map per vector at `c.in_off + b * c.in_bs(false)`. Layout [image][ci][y][x].
/// * `weights`: B parameter vectors of `c.n_prm`; vector b's weights [out_c][in_c][ksize][ksize] at
///   `b * n_prm + w_off`, bias [out_c] at `b * n_prm + b_off`.
/// * `out`: written at `b * c.out_bs() + ((n * out_c + co) * out_hw + oy) * out_hw + ox`, all of
///   `out[..batches * out_bs]`.
pub fn forward(c: &Conv, images: bool, input: &[f32], weights: &[f32], out: &mut [f32], threads: usize) {
    if c.batches == 0 || c.images == 0 {
        return;
    }
    let shared = images && c.img_bs == 0;
    let sh = Shape::new(c, shared);
    let ctx = Ctx { c, sh, shared, input, in_bs: c.in_bs(images), threads };
    check_input(c, &sh, input, ctx.in_bs);
    check_params(c, weights, "weights");
    let (packed, bias) = pack_weights(c, &sh, weights);
    let tasks = forward_tasks(&ctx, out);
    let inner = inner_threads(tasks.len(), threads);
    let init = || (vec![0.0f32; sh.k * sh.cols(sh.block)], vec![0.0f32; sh.group * sh.out_map * sh.block]);
    run_tasks(tasks, threads, init, |(cols, prod), task| {
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
        bias.extend_from_slice(&weights[b * c.n_prm + c.b_off..][..c.out_c]);
    }
    (packed, bias)
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
fn forward_block(ctx: &Ctx, (packed, bias): (&[f32], &[f32]), mut task: Block, (cols, prod): Scratch, inner: usize) {
    let (c, sh) = (ctx.c, &ctx.sh);
    let count = task.outs[0].len() / sh.out_map;
    let n = sh.cols(count);
    if ctx.shared {
        im2col(c, sh, ctx.input_at(0, task.first), count, cols);
    }
    let mut b0 = task.b0;
    for group in task.outs.chunks_mut(sh.group) {
        if !ctx.shared {
            im2col(c, sh, ctx.input_at(b0, task.first), count, cols);
        }
        let m = group.len() * c.out_c;
        let w = (packed, Mat::new(b0 * c.out_c * sh.k, sh.k, 1));
        sgemm((m, n, sh.k), w, (cols, Mat::new(0, n, 1)), (prod, Mat::new(0, n, 1)), false, inner);
        scatter_output(c, sh, prod, &bias[b0 * c.out_c..], group, count);
        b0 += group.len();
    }
}

/// Per-worker scratch: the im2col matrix and a product or gather buffer.
type Scratch<'s> = (&'s mut Vec<f32>, &'s mut Vec<f32>);

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

/// grads (+)= d loss / d (weights, bias) given `grad_out` = d loss / d out (laid out as `forward`'s
/// output); `input` and `images` as in [`forward`].
///
/// Writes only vector b's weight tensor `grads[b * n_prm + w_off..][..out_c * in_c * ksize²]` and bias
/// `grads[b * n_prm + b_off..][..out_c]`: overwritten, or added to when `accumulate`.
pub fn weight_grad(
    c: &Conv,
    images: bool,
    input: &[f32],
    grad_out: &[f32],
    grads: &mut [f32],
    accumulate: bool,
    threads: usize,
) {
    if c.batches == 0 {
        return;
    }
    let shared = images && c.img_bs == 0;
    let sh = Shape::new(c, shared);
    let ctx = Ctx { c, sh, shared, input, in_bs: c.in_bs(images), threads };
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
        let bias = &mut grads[b * c.n_prm + c.b_off..][..c.out_c];
        bias.iter_mut().zip(&db[b * c.out_c..]).for_each(|(g, &d)| store(g, d, accumulate));
    }
}

/// dst = src, or dst += src when `accumulate`.
fn store(dst: &mut f32, src: f32, accumulate: bool) {
    *dst = if accumulate { *dst + src } else { src };
}

/// Per-worker state of the weight gradient: scratch and partial sums dW [(vector, co) x K] (column-major,
/// so that `gemm` reads cols^T without repacking it) and dbias [(vector, co)] over the blocks the worker
/// ran.
struct GradSums {
    cols: Vec<f32>,
    buf: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

/// The weight and bias gradients of all vectors, dW [(vector, co) x K] (column-major) and dbias
/// [(vector, co)]: per-worker partial sums over blocks of images, added up at the end.
fn weight_grad_sums(ctx: &Ctx, grad_out: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (c, sh) = (ctx.c, ctx.sh);
    // (first image, count, first vector, vectors): all vectors per block when they share the im2col matrix
    let tasks: Vec<(usize, usize, usize, usize)> = if ctx.shared {
        sh.blocks(c.images).map(|(f, n)| (f, n, 0, c.batches)).collect()
    } else {
        (0..c.batches).flat_map(|b| sh.blocks(c.images).map(move |(f, n)| (f, n, b, 1))).collect()
    };
    let inner = inner_threads(tasks.len(), ctx.threads);
    let init = || GradSums {
        cols: vec![0.0; sh.k * sh.cols(sh.block)],
        buf: vec![0.0; sh.group * sh.out_map * sh.block],
        dw: vec![0.0; c.batches * c.out_c * sh.k],
        db: vec![0.0; c.batches * c.out_c],
    };
    let run = |mut acc: GradSums, t| {
        weight_grad_block(ctx, grad_out, t, &mut acc, inner);
        acc
    };
    // fixed contiguous pieces, each summed in order, then the pieces in order: the same inputs give the
    // same bits on every run (rayon's own fold splits as work is stolen) and on every thread count (a
    // cluster's nodes differ in cores, and a sharded run must equal an unsharded one), so the pieces
    // depend on the task count only
    let piece = tasks.len().div_ceil(GRAD_PIECES).max(1);
    let parts: Vec<GradSums> = if ctx.threads <= 1 || tasks.len() <= 1 {
        tasks.chunks(piece).map(|p| p.iter().copied().fold(init(), run)).collect()
    } else {
        let pieces = tasks.len().div_ceil(piece);
        tasks
            .par_chunks(piece)
            .with_min_len(min_len(pieces, ctx.threads))
            .map(|p| p.iter().copied().fold(init(), run))
            .collect()
    };
    let sums = parts.into_iter().reduce(add_sums).unwrap_or_else(init);
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
    if ctx.shared {
        im2col(c, sh, ctx.input_at(0, first), count, &mut acc.cols);
    }
    for gb in (b0..b0 + vectors).step_by(sh.group) {
        let gn = sh.group.min(b0 + vectors - gb);
        if !ctx.shared {
            im2col(c, sh, ctx.input_at(gb, first), count, &mut acc.cols);
        }
        gather_grad_out(c, sh, grad_out, (gb, gn), (first, count), &mut acc.buf, Some(&mut acc.db));
        let (m, k) = (gn * c.out_c, sh.k);
        let dw = (&mut acc.dw[..], Mat::new(gb * c.out_c, 1, c.batches * c.out_c));
        sgemm((m, k, n), (&acc.buf, Mat::new(0, n, 1)), (&acc.cols, Mat::new(0, 1, n)), dw, true, inner);
    }
}

/// grad_in = d loss / d input given `grad_out` = d loss / d out (laid out as `forward`'s output), for
/// an f32 input map per vector.
///
/// Writes (overwrites) exactly the input maps: vector b's [image][ci][y][x] at `c.in_off + b *
/// c.in_bs(false)`, `images * in_c * in_hw²` elements each.
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
    let init = || (vec![0.0f32; sh.k * sh.cols(sh.block)], vec![0.0f32; sh.out_map * sh.block]);
    run_tasks(tasks, threads, init, |(dcols, buf), (first, b, piece)| {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Input element (b, n, ci, y, x) as the shader reads it: zero outside the map.
    fn in_at(c: &Conv, input: &[f32], in_bs: usize, (b, n, ci): (usize, usize, usize), y: isize, x: isize) -> f64 {
        let hw = c.in_hw as isize;
        if y < 0 || x < 0 || y >= hw || x >= hw {
            return 0.0;
        }
        input[c.in_off + b * in_bs + ((n * c.in_c + ci) * c.in_hw + y as usize) * c.in_hw + x as usize] as f64
    }

    /// The shader's `forward`, in f64.
    fn naive_forward(c: &Conv, images: bool, input: &[f32], w: &[f32]) -> Vec<f64> {
        let (ow, ks, p) = (c.out_hw(), c.ksize, c.pad as isize);
        let mut out = vec![0.0; c.batches * c.out_bs()];
        for b in 0..c.batches {
            for n in 0..c.images {
                for co in 0..c.out_c {
                    for oy in 0..ow {
                        for ox in 0..ow {
                            let mut acc = w[b * c.n_prm + c.b_off + co] as f64;
                            for ci in 0..c.in_c {
                                for ky in 0..ks {
                                    for kx in 0..ks {
                                        let (y, x) = ((oy + ky) as isize - p, (ox + kx) as isize - p);
                                        let v = in_at(c, input, c.in_bs(images), (b, n, ci), y, x);
                                        let wi = b * c.n_prm + c.w_off + ((co * c.in_c + ci) * ks + ky) * ks + kx;
                                        acc += v * w[wi] as f64;
                                    }
                                }
                            }
                            out[b * c.out_bs() + ((n * c.out_c + co) * ow + oy) * ow + ox] = acc;
                        }
                    }
                }
            }
        }
        out
    }

    /// The shader's `weight_grad`, in f64, into a copy of `grads`.
    fn naive_weight_grad(c: &Conv, images: bool, input: &[f32], g: &[f32], grads: &[f32], acc: bool) -> Vec<f64> {
        let (ow, ks, p) = (c.out_hw(), c.ksize, c.pad as isize);
        let mut out: Vec<f64> = grads.iter().map(|&v| v as f64).collect();
        for b in 0..c.batches {
            for co in 0..c.out_c {
                let (mut db, mut dw) = (0.0, vec![0.0; c.in_c * ks * ks]);
                for n in 0..c.images {
                    for oy in 0..ow {
                        for ox in 0..ow {
                            let gv = g[b * c.out_bs() + ((n * c.out_c + co) * ow + oy) * ow + ox] as f64;
                            db += gv;
                            for (e, d) in dw.iter_mut().enumerate() {
                                let (ci, ky, kx) = (e / (ks * ks), e / ks % ks, e % ks);
                                let (y, x) = ((oy + ky) as isize - p, (ox + kx) as isize - p);
                                *d += gv * in_at(c, input, c.in_bs(images), (b, n, ci), y, x);
                            }
                        }
                    }
                }
                let bi = b * c.n_prm + c.b_off + co;
                out[bi] = if acc { out[bi] + db } else { db };
                for (e, d) in dw.into_iter().enumerate() {
                    let wi = b * c.n_prm + c.w_off + co * c.in_c * ks * ks + e;
                    out[wi] = if acc { out[wi] + d } else { d };
                }
            }
        }
        out
    }

    /// The shader's `input_grad`, in f64, into a copy of `grad_in`.
    fn naive_input_grad(c: &Conv, w: &[f32], g: &[f32], grad_in: &[f32]) -> Vec<f64> {
        let (ow, ks, p) = (c.out_hw() as isize, c.ksize, c.pad as isize);
        let mut out: Vec<f64> = grad_in.iter().map(|&v| v as f64).collect();
        for b in 0..c.batches {
            for n in 0..c.images {
                for ci in 0..c.in_c {
                    for iy in 0..c.in_hw as isize {
                        for ix in 0..c.in_hw as isize {
                            let mut acc = 0.0;
                            for co in 0..c.out_c {
                                for ky in 0..ks {
                                    for kx in 0..ks {
                                        let (oy, ox) = (iy - ky as isize + p, ix - kx as isize + p);
                                        if oy < 0 || ox < 0 || oy >= ow || ox >= ow {
                                            continue;
                                        }
                                        let gi = b * c.out_bs() + (n * c.out_c + co) * (ow * ow) as usize;
                                        let gv = g[gi + (oy * ow + ox) as usize] as f64;
                                        let wi = b * c.n_prm + c.w_off + ((co * c.in_c + ci) * ks + ky) * ks + kx;
                                        acc += gv * w[wi] as f64;
                                    }
                                }
                            }
                            let i = ((n * c.in_c + ci) * c.in_hw + iy as usize) * c.in_hw + ix as usize;
                            out[c.in_off + b * c.in_bs(false) + i] = acc;
                        }
                    }
                }
            }
        }
        out
    }

    /// Asserts |fast - slow| <= 1e-5 * max |slow| element-wise.
    fn assert_close(fast: &[f32], slow: &[f64], what: &str) {
        assert_eq!(fast.len(), slow.len(), "{what}: lengths");
        let scale = slow.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        for (i, (&f, &s)) in fast.iter().zip(slow).enumerate() {
            assert!((f as f64 - s).abs() <= 1e-5 * scale, "{what}[{i}]: {f} vs {s} (scale {scale})");
        }
    }

    /// A convolution whose weights and bias sit inside a larger parameter vector.
    fn conv(in_c: usize, in_hw: usize, out_c: usize, ksize: usize, pad: usize, images: usize) -> Conv {
        let w_off = 13;
        let b_off = w_off + out_c * in_c * ksize * ksize + 5;
        let n_prm = b_off + out_c + 11;
        Conv { images, batches: 3, in_c, in_hw, out_c, ksize, pad, in_off: 0, w_off, b_off, n_prm, img_bs: 0 }
    }

    /// Runs all three kernels against the naive loops for one shape and input kind, on 1 and 2 threads.
    fn check(c: &Conv, images: bool) {
        let in_len = c.in_off + (c.batches - 1) * c.in_bs(images) + c.images * c.in_c * c.in_hw * c.in_hw + 3;
        let mut input = values(in_len, 1);
        if images {
            input.iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0); // pixels in [0, 1]
        }
        let weights = values(c.batches * c.n_prm, 2);
        let grad_out = values(c.batches * c.out_bs(), 3);
        let what = format!("{c:?} images {images}");
        for threads in [1, 2] {
            let mut out = values(c.batches * c.out_bs(), 4);
            forward(c, images, &input, &weights, &mut out, threads);
            assert_close(&out, &naive_forward(c, images, &input, &weights), &format!("forward {what}"));
            for acc in [false, true] {
                let mut grads = values(c.batches * c.n_prm, 5);
                let slow = naive_weight_grad(c, images, &input, &grad_out, &grads, acc);
                weight_grad(c, images, &input, &grad_out, &mut grads, acc, threads);
                assert_close(&grads, &slow, &format!("weight_grad acc {acc} {what}"));
            }
            if !images {
                let mut grad_in = values(in_len, 6);
                let slow = naive_input_grad(c, &weights, &grad_out, &grad_in);
                input_grad(c, &weights, &grad_out, &mut grad_in, threads);
                assert_close(&grad_in, &slow, &format!("input_grad {what}"));
            }
        }
    }

    /// Every input kind: shared images, per-vector images at an offset, per-vector f32 maps at an offset.
    fn check_all_inputs(c: Conv) {
        check(&c, true);
        check(&Conv { img_bs: c.images + 2, in_off: 2 * c.in_c * c.in_hw * c.in_hw, ..c }, true);
        check(&Conv { in_off: 7, ..c }, false);
    }

    #[test]
    fn lenet_conv1_matches_the_shader() {
        check_all_inputs(conv(1, 28, 6, 5, 2, 3));
    }

    #[test]
    fn lenet_conv2_matches_the_shader() {
        check_all_inputs(conv(6, 14, 16, 5, 0, 3));
    }

    #[test]
    fn odd_sizes_match_the_shader() {
        check_all_inputs(conv(3, 7, 5, 3, 1, 2));
        // more padding than the kernel needs: some windows see only padding
        check_all_inputs(conv(2, 3, 4, 3, 3, 2));
        // many images, so several blocks and tasks, and a partial last block
        check_all_inputs(conv(2, 7, 3, 3, 1, 75));
        // 1x1 kernels on many images: blocks of 62 images, the shared products split into groups of
        // 1 vector (3 channels) or of 2 and 1 vectors (1 channel)
        check_all_inputs(conv(1, 28, 3, 1, 0, 64));
        check_all_inputs(conv(1, 28, 1, 1, 0, 64));
    }

    /// Cluster nodes differ in core count, and a sharded `reproduce` must equal an unsharded one: the
    /// weight gradient may not depend on how many threads summed it.
    #[test]
    fn weight_grad_bits_do_not_depend_on_the_thread_count() {
        // enough images for many blocks, so that the sum over blocks is split into pieces
        let c = conv(2, 7, 3, 3, 1, 900);
        for images in [true, false] {
            let in_len = c.batches * c.in_bs(images) + c.images * c.in_c * c.in_hw * c.in_hw;
            let input = values(in_len, 1);
            let grad_out = values(c.batches * c.out_bs(), 3);
            let run = |threads| {
                let mut grads = vec![0.0; c.batches * c.n_prm];
                weight_grad(&c, images, &input, &grad_out, &mut grads, false, threads);
                grads.iter().map(|g| g.to_bits()).collect::<Vec<_>>()
            };
            let one = run(1);
            for threads in [2, 3, 7] {
                assert!(one == run(threads), "images {images}: 1 and {threads} threads differ");
            }
        }
    }

    #[test]
    fn weight_grad_leaves_other_parameters_untouched() {
        let c = conv(6, 14, 16, 5, 0, 2);
        let input = values(c.images * c.in_c * c.in_hw * c.in_hw, 1);
        let grad_out = values(c.batches * c.out_bs(), 3);
        let before = values(c.batches * c.n_prm + 9, 5);
        let mut grads = before.clone();
        weight_grad(&c, true, &input, &grad_out, &mut grads, false, 2);
        let k = c.in_c * c.ksize * c.ksize;
        for (i, (a, b)) in grads.iter().zip(&before).enumerate() {
            let (vector, j) = (i / c.n_prm, i % c.n_prm);
            let conv_param = vector < c.batches
                && ((c.w_off..c.w_off + c.out_c * k).contains(&j) || (c.b_off..c.b_off + c.out_c).contains(&j));
            if !conv_param {
                assert_eq!(a.to_bits(), b.to_bits(), "parameter {i} changed");
            }
        }
    }

    #[test]
    fn input_grad_writes_only_the_maps() {
        let c = Conv { in_off: 5, ..conv(3, 7, 5, 3, 1, 2) };
        let weights = values(c.batches * c.n_prm, 2);
        let grad_out = values(c.batches * c.out_bs(), 3);
        let end = c.in_off + c.batches * c.in_bs(false);
        let mut grad_in = vec![f32::NAN; end + 4];
        input_grad(&c, &weights, &grad_out, &mut grad_in, 2);
        assert!(grad_in[..c.in_off].iter().chain(&grad_in[end..]).all(|v| v.is_nan()));
        assert!(grad_in[c.in_off..end].iter().all(|v| v.is_finite()));
    }
}
