//! The LSTM on the CPU (`shaders/lstm.wgsl` for the formulas): the permuted-pixel gather, and the
//! recurrence of a chunk in *tiles* — groups of up to 64 image rows of one vector, each run through
//! all steps by one thread while its data stays in cache.
//!
//! A tile first projects its inputs of every step in one product (x W_ih^T), then per step adds
//! h_s W_hh^T (a small product) and runs the cell; backward, per step the cell and the product back
//! to d h, then its weight gradients as one product over all its (step, image) rows into a slot of its
//! own. The slots of a vector are then added in tile
//! order. The tiles depend only on the chunk's image count, so the results have the same bits at any
//! thread count and any number of vectors B. A GPU runs the same operations as a product and a cell
//! launch per step over all rows (`ops::LstmSequence::forward_launches`); with tens of thousands of
//! rows per step, the CPU would walk tensors far larger than its caches at every step.
//!
//! Layout: a tile owns the rows of its images in the gates, cells and hidden tensors (the plan's
//! [vector][image] blocks), and lays them out *step-major* inside: gates [step][row][4H], cells
//! [step + 1][row][H], hidden [step][row][H], so that one step of a tile is one contiguous block that
//! the processor streams (row-major, a row's step was several KiB from the next row's). Only this
//! backend's forward and backward passes read those tensors; `last`, `dh` and `dc` keep the plan's
//! [vector][image][H].

use anyhow::Result;
use rayon::prelude::*;
use std::cell::RefCell;

use super::math::{sigmoid, tanh};
use super::matmul::{sgemm, Mat};
use super::simd::{dispatch, Simd};
use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{LstmCells, LstmOperands, LstmSequence, LstmStep};

/// How a profile names an LSTM pass over a sequence, and the FLOPs of its gate products per image,
/// step and vector: forward 2 x 4H x (F + H) (x W_ih^T and h W_hh^T); `backward` 2 x 4H x (F + 2H)
/// (the weight gradients of W_ih and W_hh, and d h through W_hh). Element-wise gate work is not counted.
fn profile_name(s: &LstmSequence, backward: bool) -> (String, f64) {
    let (h, f, steps) = (s.shape.hidden, s.shape.features, s.shape.steps);
    let pass = if backward { "LSTM backward" } else { "LSTM forward" };
    let op = format!("{pass} of {} images, {steps} steps {f} -> {h} x {}", s.images, s.batches);
    let per_step = 2 * 4 * h * (f + if backward { 2 * h } else { h });
    (op, (per_step * steps * s.images * s.batches) as f64)
}

impl LstmCells for Cpu {
    fn gather_pixels(&self, s: LstmStep, pixels: &CpuBuffer, perm: &CpuBuffer, out: &CpuBuffer) -> Result<CpuCommand> {
        let (pixels, perm, out) = (pixels.clone(), perm.clone(), out.clone());
        Ok(CpuCommand::checked("pixel gather", &[&out], &[&pixels, &perm])?
            .run(move |_, l| gather_pixels(&s, pixels.view(l), perm.view(l), out.view_mut(l))))
    }

    fn record_lstm_forward(&self, s: LstmSequence, t: LstmOperands<&CpuBuffer>) -> Result<CpuCommand> {
        let t = t.map(|b| b.clone());
        let (op, flops) = profile_name(&s, false);
        let outputs = [&t.gates, &t.cells, &t.hidden, &t.last];
        let checked = CpuCommand::checked(&op, &outputs, &[&t.inputs, &t.weights])?.flops(flops);
        Ok(checked.run(move |cpu, l| {
            let states = States {
                gates: t.gates.view_mut(l),
                cells: t.cells.view_mut(l),
                hidden: t.hidden.view_mut(l),
                last: t.last.view_mut(l),
            };
            lstm_forward(cpu.kernels, &s, t.inputs.view(l), t.weights.view(l), states)
        }))
    }

    fn record_lstm_backward(
        &self,
        s: LstmSequence,
        t: LstmOperands<&CpuBuffer>,
        accumulate: bool,
    ) -> Result<CpuCommand> {
        let t = t.map(|b| b.clone());
        let (op, flops) = profile_name(&s, true);
        let (outputs, inputs) = ([&t.grads, &t.gates, &t.dh, &t.dc], [&t.inputs, &t.weights, &t.cells, &t.hidden]);
        let checked = CpuCommand::checked(&op, &outputs, &inputs)?.flops(flops);
        Ok(checked.run(move |cpu, l| {
            let mut slots = cpu.scratch.lock().unwrap_or_else(|e| e.into_inner());
            let grads = Grads { slots: &mut slots, out: t.grads.view_mut(l), accumulate };
            let back = Backward {
                inputs: t.inputs.view(l),
                weights: t.weights.view(l),
                cells: t.cells.view(l),
                hidden: t.hidden.view(l),
            };
            lstm_backward(cpu.kernels, &s, back, (t.gates.view_mut(l), t.dh.view_mut(l), t.dc.view_mut(l)), grads)
        }))
    }
}

/// xperm[b][n][j] = pixel perm[j] of image b * img_bs + first_image + n (one vector's worth when the
/// images are shared).
pub fn gather_pixels(s: &LstmStep, pixels: &[f32], perm: &[f32], xperm: &mut [f32]) {
    let px = s.shape.pixels();
    let vectors = if s.img_bs == 0 { 1 } else { s.batches };
    // at least 64 images per piece: one run's mini-batch of 64 is not worth a second thread
    xperm[..vectors * s.images * px].par_chunks_mut(px).enumerate().with_min_len(64).for_each(|(t, row)| {
        let (b, n) = (t / s.images, t % s.images);
        let image = &pixels[(b * s.img_bs + s.first_image + n) * px..][..px];
        row.iter_mut().zip(perm).for_each(|(x, p)| *x = image[p.to_bits() as usize]);
    });
}

/// Image rows per tile for a chunk of `images` images: half the chunk (so that even one vector's
/// mini-batch runs on two threads), in multiples of 8, between 16 and 64 (the tile's products reach
/// most of `gemm`'s single-thread rate from about 64 rows, and one step of 64 rows of 4H = 192 gates
/// is 48 KiB). Only the image count decides it, never B or the thread count, so that the tiles, and
/// with them the order of the weight-gradient sums, are the same for every evaluation of a vector.
fn tile_rows(images: usize) -> usize {
    images.div_ceil(2).next_multiple_of(8).clamp(16, 64)
}

/// One tile: `rows` images from image `first` of the chunk, of vector `vector`.
#[derive(Clone, Copy, Debug)]
struct Tile {
    vector: usize,
    first: usize,
    rows: usize,
}

/// The tiles of a chunk, vector by vector, each vector's images in order: together they cover the
/// rows (vector, image) 0.. B·c in order.
fn tiles(s: &LstmSequence) -> Vec<Tile> {
    let r = tile_rows(s.images);
    (0..s.batches)
        .flat_map(|vector| {
            (0..s.images).step_by(r).map(move |first| Tile { vector, first, rows: r.min(s.images - first) })
        })
        .collect()
}

/// Cuts `buf` into the tiles' row ranges of `per_row` elements each (the tiles cover the rows in
/// order, so each range follows the last).
fn split_rows<'a>(buf: &'a mut [f32], per_row: usize, tiles: &[Tile]) -> Vec<&'a mut [f32]> {
    let mut rest = buf;
    tiles
        .iter()
        .map(|t| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(t.rows * per_row);
            rest = tail;
            head
        })
        .collect()
}

/// The state tensors the forward pass writes (each tile's rows step-major, as the module says).
struct States<'a> {
    gates: &'a mut [f32],
    cells: &'a mut [f32],
    hidden: &'a mut [f32],
    last: &'a mut [f32],
}

/// The tensors the backward pass reads.
struct Backward<'a> {
    inputs: &'a [f32],
    weights: &'a [f32],
    cells: &'a [f32],
    hidden: &'a [f32],
}

/// Where the backward pass puts the weight gradients: per-tile slots (reused host memory), then the
/// gradient buffer (overwritten, or added to when `accumulate`).
struct Grads<'a> {
    slots: &'a mut Vec<f32>,
    out: &'a mut [f32],
    accumulate: bool,
}

/// A tile's first element in the inputs: its images' rows, in the vector's copy when each vector has
/// its own images.
fn input_offset(s: &LstmSequence, t: &Tile) -> usize {
    let copy = if s.img_bs > 0 { t.vector * s.images } else { 0 };
    (copy + t.first) * s.shape.pixels()
}

/// The forward recurrence of every tile, in parallel.
fn lstm_forward(simd: Simd, s: &LstmSequence, inputs: &[f32], weights: &[f32], st: States) {
    let (h, steps, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let tiles = tiles(s);
    let gates = split_rows(st.gates, steps * g, &tiles);
    let cells = split_rows(st.cells, (steps + 1) * h, &tiles);
    let hidden = split_rows(st.hidden, steps * h, &tiles);
    let last = split_rows(st.last, h, &tiles);
    let work: Vec<_> = tiles.into_iter().zip(gates).zip(cells).zip(hidden).zip(last).collect();
    work.into_par_iter().for_each(|((((t, gt), cl), hd), ls)| {
        let states = States { gates: gt, cells: cl, hidden: hd, last: ls };
        forward_tile(simd, s, &t, inputs, weights, states)
    });
}

/// One tile through all steps: z = x_s W_ih^T for every step at once, then per step z += h_s W_hh^T
/// (for s > 0) and the cell (which adds the biases). `st` holds the tile's own rows. (One product per
/// step with k = F + H over copied [x_s | h_s] rows was no faster, and its gradients were 2.5 times
/// as far from the f64 reference.)
fn forward_tile(simd: Simd, s: &LstmSequence, t: &Tile, inputs: &[f32], weights: &[f32], st: States) {
    let (h, steps, g, feat) = (s.shape.hidden, s.shape.steps, s.shape.gates(), s.shape.features);
    let r = t.rows;
    let w = &weights[t.vector * s.n_prm..];
    let (bias_ih, bias_hh) = (&w[s.b_ih..][..g], &w[s.b_hh..][..g]);
    let x = input_offset(s, t);
    // W^T as a (k x 4H) matrix: element (j, gate) of W_ih^T is W_ih[gate][j]
    let (w_ih_t, w_hh_t) = (Mat::new(s.w_ih, 1, feat), Mat::new(s.w_hh, 1, h));
    // h_0 = c_0 = 0: where a tile's first step lies depends on the chunk's image count, so these
    // tensors may hold another chunk's states there
    st.hidden[..r * h].fill(0.0);
    st.cells[..r * h].fill(0.0);
    // the input part of every step as one product: the tile's inputs copied step-major, so that its
    // rows (step, image) are the gates' rows (a product of 32 rows ran at two thirds of gemm's rate)
    ROWS.with_borrow_mut(|xs| {
        let xs = scratch(xs, steps * r * feat);
        let x = &inputs[x..][..r * s.shape.pixels()];
        for (step, block) in xs.chunks_exact_mut(r * feat).enumerate() {
            for (row, xr) in block.chunks_exact_mut(feat).zip(x.chunks_exact(s.shape.pixels())) {
                row.copy_from_slice(&xr[step * feat..][..feat]);
            }
        }
        let z = Mat::new(0, g, 1);
        sgemm((steps * r, g, feat), (&*xs, Mat::new(0, feat, 1)), (w, w_ih_t), (&mut *st.gates, z), false, 1);
    });
    for step in 0..steps {
        let z = &mut st.gates[step * r * g..][..r * g];
        if step > 0 {
            let hs = Mat::new(step * r * h, h, 1);
            sgemm((r, g, h), (&*st.hidden, hs), (w, w_hh_t), (&mut *z, Mat::new(0, g, 1)), true, 1);
        }
        let (before, after) = st.cells.split_at_mut((step + 1) * r * h);
        let (c_prev, c_next) = (&before[step * r * h..], &mut after[..r * h]);
        let out = if step + 1 < steps { &mut st.hidden[(step + 1) * r * h..][..r * h] } else { &mut *st.last };
        cell_forward(simd, h, (bias_ih, bias_hh), z, c_prev, c_next, out);
    }
}

thread_local! {
    /// A worker's copy of the rows of the tile it runs: its inputs step-major (forward), its
    /// [x | h | 1] rows (backward). Kept between calls, so that no call allocates.
    static ROWS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The first `len` elements of `buf`, grown if shorter.
fn scratch(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Backpropagation through time of every tile in parallel, each tile's weight gradients into its
/// slot, then the slots of each vector added in tile order into the gradients.
fn lstm_backward(
    simd: Simd,
    s: &LstmSequence,
    b: Backward,
    (gates, dh, dc): (&mut [f32], &mut [f32], &mut [f32]),
    out: Grads,
) {
    let (h, steps, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let tiles = tiles(s);
    let slot = slot_len(s);
    if out.slots.len() < tiles.len() * slot {
        out.slots.resize(tiles.len() * slot, 0.0);
    }
    let slots = out.slots[..tiles.len() * slot].chunks_mut(slot);
    let gates = split_rows(gates, steps * g, &tiles);
    let dh = split_rows(dh, h, &tiles);
    let dc = split_rows(dc, h, &tiles);
    let work: Vec<_> = tiles.iter().zip(gates).zip(dh).zip(dc).zip(slots).collect();
    work.into_par_iter().for_each(|((((t, gt), dht), dct), sl)| backward_tile(simd, s, t, &b, (gt, dht, dct), sl));
    let per_vector = s.images.div_ceil(tile_rows(s.images));
    let slots = &out.slots[..tiles.len() * slot];
    out.out
        .par_chunks_mut(s.n_prm)
        .take(s.batches)
        .zip(slots.par_chunks(per_vector * slot))
        .for_each(|(grad, vector_slots)| add_slots(s, vector_slots, grad, out.accumulate));
}

/// Elements of one tile's slot: the (4H x (F + H + 1)) matrix [dW_ih | dW_hh | db].
fn slot_len(s: &LstmSequence) -> usize {
    s.shape.gates() * (s.shape.features + s.shape.hidden + 1)
}

/// One tile back through all steps, then its weight gradients: slot = dz^T [x | h | 1] over the tile's
/// (step, image) rows, one product. `gates`, `dh` and `dc` hold the tile's own rows.
fn backward_tile(
    simd: Simd,
    s: &LstmSequence,
    t: &Tile,
    b: &Backward,
    (gates, dh, dc): (&mut [f32], &mut [f32], &mut [f32]),
    slot: &mut [f32],
) {
    let (h, steps, g, feat) = (s.shape.hidden, s.shape.steps, s.shape.gates(), s.shape.features);
    let r = t.rows;
    let w = &b.weights[t.vector * s.n_prm..];
    let row0 = t.vector * s.images + t.first;
    let cells = &b.cells[row0 * (steps + 1) * h..][..r * (steps + 1) * h];
    let hidden = &b.hidden[row0 * steps * h..][..r * steps * h];
    for step in (0..steps).rev() {
        let z = &mut gates[step * r * g..][..r * g];
        let (c_prev, c_next) = (&cells[step * r * h..][..r * h], &cells[(step + 1) * r * h..][..r * h]);
        cell_backward(simd, h, step + 1 < steps, z, (c_prev, c_next), dh, dc);
        if step > 0 {
            // d h_s = dz_s W_hh, W_hh row-major (4H x H)
            sgemm(
                (r, h, g),
                (&*z, Mat::new(0, g, 1)),
                (w, Mat::new(s.w_hh, h, 1)),
                (&mut *dh, Mat::new(0, h, 1)),
                false,
                1,
            );
        }
    }
    let width = feat + h + 1;
    let n = r * steps;
    let x = &b.inputs[input_offset(s, t)..][..r * s.shape.pixels()];
    ROWS.with_borrow_mut(|rows| {
        let rows = scratch(rows, n * width);
        // row (step, image) of [x | h | 1], in the gates' order
        for (step, block) in rows.chunks_exact_mut(r * width).enumerate() {
            let hs = &hidden[step * r * h..][..r * h];
            for ((row, xr), hr) in
                block.chunks_exact_mut(width).zip(x.chunks_exact(s.shape.pixels())).zip(hs.chunks_exact(h))
            {
                row[..feat].copy_from_slice(&xr[step * feat..][..feat]);
                row[feat..feat + h].copy_from_slice(hr);
                row[feat + h] = 1.0;
            }
        }
        // dz^T: element (gate, row) of the tile's gates [row][gate]
        let dz_t = Mat::new(0, 1, g);
        sgemm((g, width, n), (&*gates, dz_t), (&*rows, Mat::new(0, width, 1)), (slot, Mat::new(0, width, 1)), false, 1);
    });
}

/// Adds one vector's tile slots in order and writes (or adds) the sum into its gradient: column j < F
/// of the slot is dW_ih[.][j], the next H columns dW_hh, the last the bias gradient (b_ih and b_hh get
/// the same).
fn add_slots(s: &LstmSequence, slots: &[f32], grad: &mut [f32], accumulate: bool) {
    let (h, feat) = (s.shape.hidden, s.shape.features);
    let (width, slot) = (feat + h + 1, slot_len(s));
    let total = |e: usize| slots[slot..].iter().skip(e).step_by(slot).fold(slots[e], |a, b| a + b);
    let mut put = |at: usize, v: f32| grad[at] = if accumulate { grad[at] + v } else { v };
    for k in 0..s.shape.gates() {
        let row = k * width;
        for j in 0..feat {
            put(s.w_ih + k * feat + j, total(row + j));
        }
        for j in 0..h {
            put(s.w_hh + k * h + j, total(row + feat + j));
        }
        let bias = total(row + feat + h);
        put(s.b_ih + k, bias);
        put(s.b_hh + k, bias);
    }
}

dispatch!(
    fn cell_forward(
        h: usize,
        bias: (&[f32], &[f32]),
        z: &mut [f32],
        c_prev: &[f32],
        c_next: &mut [f32],
        out: &mut [f32],
    ) => cell_forward_rows
);

/// The forward cell of one step for a tile's rows (`z`: [row][4H] pre-activations without biases;
/// `c_prev`, `c_next`, `out`: [row][H]): the biases (b_ih, b_hh) into the gates, then c and h; the
/// gates keep their activations i, f, g, o for the backward pass.
#[inline(always)]
fn cell_forward_rows(
    h: usize,
    (bias_ih, bias_hh): (&[f32], &[f32]),
    z: &mut [f32],
    c_prev: &[f32],
    c_next: &mut [f32],
    out: &mut [f32],
) {
    let g = 4 * h;
    let rows =
        z.chunks_exact_mut(g).zip(c_prev.chunks_exact(h)).zip(c_next.chunks_exact_mut(h)).zip(out.chunks_exact_mut(h));
    for (((z, c_prev), c_next), out) in rows {
        for ((zk, bi), bh) in z.iter_mut().zip(&bias_ih[..g]).zip(&bias_hh[..g]) {
            *zk += bi + bh;
        }
        // every slice exactly h long, so that the loop has no bounds checks and vectorises
        let (zi, rest) = z.split_at_mut(h);
        let (zf, rest) = rest.split_at_mut(h);
        let (zg, zo) = rest.split_at_mut(h);
        let (zo, zg) = (&mut zo[..h], &mut zg[..h]);
        let (c_prev, c_next, out) = (&c_prev[..h], &mut c_next[..h], &mut out[..h]);
        // the CPU backend keeps the gate activations i, f, g, o in place (not the pre-activations the
        // GPU keeps): only the cell kernels read them, and the backward pass then needs no exp. One
        // simple loop per gate vectorises where a fused loop did not (and a chained iterator's `fold`
        // was not inlined into the per-level builds: it ran at the baseline width, 7 % of the time;
        // a chained `iter_mut` over two gates ran at half the speed, and blocks of every gate at once
        // were 10 % slower).
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

/// Units per block of the cell kernels: one AVX-512 register of f32 (two AVX2 ones).
const LANES: usize = 16;

/// Units `j0 .. j0 + n` (`n` ≤ [`LANES`]) of `v` as a block (zeros past `n`). A whole block is a
/// fixed-size copy: a copy of a run-time length would be a call to memmove.
#[inline(always)]
fn load(v: &[f32], j0: usize, n: usize) -> [f32; LANES] {
    match v[j0..].first_chunk::<LANES>() {
        Some(whole) => *whole,
        None => {
            let mut a = [0f32; LANES];
            a[..n].copy_from_slice(&v[j0..j0 + n]);
            a
        }
    }
}

/// Writes the first `n` values of `block` to units `j0 .. j0 + n` of `v`.
#[inline(always)]
fn store(v: &mut [f32], j0: usize, n: usize, block: &[f32; LANES]) {
    match v[j0..].first_chunk_mut::<LANES>() {
        Some(whole) => *whole = *block,
        None => v[j0..j0 + n].copy_from_slice(&block[..n]),
    }
}

dispatch!(
    fn cell_backward(
        h: usize,
        carry: bool,
        z: &mut [f32],
        cells: (&[f32], &[f32]),
        dh: &[f32],
        dc: &mut [f32],
    ) => cell_backward_rows
);

/// The backward cell of one step for a tile's rows (`z`: [row][4H], the activations the forward cell
/// left; `cells` = (c_prev, c_next), `dh`, `dc`: [row][H]): from d h_s (`dh`) and the carried d c_s
/// (`dc`, when `carry`, i.e. before the last step), the gates become d loss / d gate pre-activations
/// and `dc` carries d c_{s-1}.
#[inline(always)]
fn cell_backward_rows(
    h: usize,
    carry: bool,
    z: &mut [f32],
    (c_prev, c_next): (&[f32], &[f32]),
    dh: &[f32],
    dc: &mut [f32],
) {
    let g = 4 * h;
    // rows and blocks by index: iterator adapters (`zip`, `step_by`) are generic functions that an
    // unoptimised build calls out of line, without this per-level build's target features
    // (scripts/check-simd-inlining)
    let rows = (z.len() / g).min(dc.len() / h).min(c_prev.len() / h).min(c_next.len() / h).min(dh.len() / h);
    for r in 0..rows {
        let (z, dcv) = (&mut z[r * g..(r + 1) * g], &mut dc[r * h..(r + 1) * h]);
        let (c_prev, c_next, dhr) = (&c_prev[r * h..(r + 1) * h], &c_next[r * h..(r + 1) * h], &dh[r * h..(r + 1) * h]);
        // blocks of LANES units in fixed-size arrays: with nine streams of one row, a plain loop over
        // the units stayed scalar (the compiler could not prove the slices apart)
        let mut j0 = 0;
        while j0 < h {
            let n = LANES.min(h - j0);
            let (ig, f, gg, o) = (
                load(&z[..h], j0, n),
                load(&z[h..2 * h], j0, n),
                load(&z[2 * h..3 * h], j0, n),
                load(&z[3 * h..], j0, n),
            );
            let (cp, cn, dh_s) = (load(c_prev, j0, n), load(c_next, j0, n), load(dhr, j0, n));
            let dc_next = if carry { load(dcv, j0, n) } else { [0f32; LANES] };
            let mut out = [[0f32; LANES]; 5];
            for l in 0..LANES {
                let tc = tanh(cn[l]);
                let mut dc_s = dh_s[l] * o[l] * (1.0 - tc * tc);
                if carry {
                    dc_s += dc_next[l];
                }
                out[0][l] = dc_s * gg[l] * ig[l] * (1.0 - ig[l]);
                out[1][l] = dc_s * cp[l] * f[l] * (1.0 - f[l]);
                out[2][l] = dc_s * ig[l] * (1.0 - gg[l] * gg[l]);
                out[3][l] = dh_s[l] * tc * o[l] * (1.0 - o[l]);
                out[4][l] = dc_s * f[l];
            }
            for (q, block) in out[..4].iter().enumerate() {
                store(&mut z[q * h..(q + 1) * h], j0, n, block);
            }
            store(dcv, j0, n, &out[4]);
            j0 += LANES;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::profile_name;
    use crate::ops::{LstmSequence, LstmShape};

    /// The paper's LSTM (28 steps of 28 pixels, 48 units) on 896 images for 3 vectors, counted by hand:
    /// forward 2 x 192 x 76 and backward 2 x 192 x 124 FLOPs per image, step and vector.
    #[test]
    fn a_profile_names_the_lstm_passes_with_their_shape_and_gate_product_flops() {
        let shape = LstmShape { hidden: 48, steps: 28, features: 28 };
        let s = LstmSequence {
            shape,
            images: 896,
            batches: 3,
            n_prm: 0,
            w_ih: 0,
            w_hh: 0,
            b_ih: 0,
            b_hh: 0,
            first_image: 0,
            img_bs: 0,
        };
        let (forward, f) = profile_name(&s, false);
        let (backward, b) = profile_name(&s, true);
        assert_eq!(forward, "LSTM forward of 896 images, 28 steps 28 -> 48 x 3");
        assert_eq!(backward, "LSTM backward of 896 images, 28 steps 28 -> 48 x 3");
        let per = (28 * 896 * 3) as f64;
        assert_eq!((f, b), (2.0 * 192.0 * 76.0 * per, 2.0 * 192.0 * 124.0 * per));
    }
}
