//! The LSTM on the CPU (`shaders/lstm.wgsl` for the formulas): the permuted-pixel gather, and the
//! recurrence of a chunk in *tiles* — groups of up to 64 image rows of one vector, each run through
//! all steps by one thread while its data stays in cache.
//!
//! Per step a tile does two small products (its inputs times W_ih^T, its hidden state times W_hh^T)
//! and the cell; backward, the cell and the product back to d h, then its weight gradients as one
//! product over all its (image, step) rows into a slot of its own. The slots of a vector are then
//! added in tile order. The tiles depend only on the chunk's image count, so the results have the same
//! bits at any thread count and any number of vectors B. A GPU runs the same operations as a product
//! and a cell launch per step over all rows (`ops::LstmSequence::forward_launches`); with tens of
//! thousands of rows per step, the CPU would walk tensors far larger than its caches at every step.

use anyhow::Result;
use rayon::prelude::*;
use std::cell::RefCell;

use super::math::{sigmoid, tanh};
use super::matmul::{sgemm, Mat};
use super::simd::{dispatch, Simd};
use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{LstmCells, LstmOperands, LstmSequence, LstmStep};

impl LstmCells for Cpu {
    fn gather_pixels(&self, s: LstmStep, pixels: &CpuBuffer, perm: &CpuBuffer, out: &CpuBuffer) -> Result<CpuCommand> {
        let (pixels, perm, out) = (pixels.clone(), perm.clone(), out.clone());
        Ok(CpuCommand::checked("pixel gather", &[&out], &[&pixels, &perm])?
            .run(move |_, l| gather_pixels(&s, pixels.view(l), perm.view(l), out.view_mut(l))))
    }

    fn record_lstm_forward(&self, s: LstmSequence, t: LstmOperands<&CpuBuffer>) -> Result<CpuCommand> {
        let t = t.try_map(|b| Ok(b.clone()))?;
        let checked =
            CpuCommand::checked("LSTM forward", &[&t.gates, &t.cells, &t.hidden, &t.last], &[&t.inputs, &t.weights])?;
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
        let t = t.try_map(|b| Ok(b.clone()))?;
        let checked = CpuCommand::checked(
            "LSTM backward",
            &[&t.grads, &t.gates, &t.dh, &t.dc],
            &[&t.inputs, &t.weights, &t.cells, &t.hidden],
        )?;
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
    xperm[..vectors * s.images * px].par_chunks_mut(px).enumerate().for_each(|(t, row)| {
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
pub fn tile_rows(images: usize) -> usize {
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

/// The state tensors the forward pass writes (layouts in `ops::lstm`).
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

/// One tile through all steps: z = x_s W_ih^T + h_s W_hh^T, then the cell (which adds the biases).
fn forward_tile(simd: Simd, s: &LstmSequence, t: &Tile, inputs: &[f32], weights: &[f32], st: States) {
    let (h, steps, g, feat) = (s.shape.hidden, s.shape.steps, s.shape.gates(), s.shape.features);
    let w = &weights[t.vector * s.n_prm..][..s.n_prm];
    let x = input_offset(s, t);
    let rows = t.rows;
    // W^T as a (k x 4H) matrix: element (j, k) of W_ih^T is W_ih[k][j]
    let (w_ih_t, w_hh_t) = (Mat::new(s.w_ih, 1, feat), Mat::new(s.w_hh, 1, h));
    let row0 = t.vector * s.images + t.first;
    for step in 0..steps {
        if step + 1 < steps {
            prefetch_rows(st.gates, steps * g, (step + 1) * g, g);
        }
        let z = Mat::new(step * g, steps * g, 1);
        let xs = Mat::new(x + step * feat, s.shape.pixels(), 1);
        sgemm((rows, g, feat), (inputs, xs), (w, w_ih_t), (&mut *st.gates, z), false, 1);
        if step > 0 {
            let hs = Mat::new(step * h, steps * h, 1);
            sgemm((rows, g, h), (&*st.hidden, hs), (w, w_hh_t), (&mut *st.gates, z), true, 1);
        }
        let cell = s.step(step);
        cell_forward(simd, &cell, weights, row0, st.gates, st.cells, st.hidden, st.last);
    }
}

/// Hints the processor to fetch `len` elements at `off` of every row (`per_row` elements) of `rows` into
/// its caches: a tile's rows of one step are several KiB apart, which the hardware's prefetchers do
/// not follow. No effect on results; nothing on other architectures.
#[inline(always)]
fn prefetch_rows(rows: &[f32], per_row: usize, off: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for row in rows.chunks_exact(per_row) {
        for line in row[off..off + len].chunks(16) {
            // SAFETY: a prefetch never faults, and the address lies inside the slice.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, per_row, off, len);
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

thread_local! {
    /// A worker's [x_s | h_s | 1] rows of its current tile (kept between calls, so no call allocates).
    static ROWS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One tile back through all steps, then its weight gradients: slot = dz^T [x | h | 1] over the tile's
/// (image, step) rows, one product.
fn backward_tile(
    simd: Simd,
    s: &LstmSequence,
    t: &Tile,
    b: &Backward,
    (gates, dh, dc): (&mut [f32], &mut [f32], &mut [f32]),
    slot: &mut [f32],
) {
    let (h, steps, g, feat) = (s.shape.hidden, s.shape.steps, s.shape.gates(), s.shape.features);
    let w = &b.weights[t.vector * s.n_prm..][..s.n_prm];
    let row0 = t.vector * s.images + t.first;
    let cells = &b.cells[row0 * (steps + 1) * h..][..t.rows * (steps + 1) * h];
    let hidden = &b.hidden[row0 * steps * h..][..t.rows * steps * h];
    for step in (0..steps).rev() {
        if step > 0 {
            // the gates and cells the next step reads come from memory, a row every few KiB: fetch
            // them while this step computes
            prefetch_rows(gates, steps * g, (step - 1) * g, g);
            prefetch_rows(cells, (steps + 1) * h, (step - 1) * h, h);
        }
        cell_backward(simd, &s.step(step), gates, cells, dh, dc);
        if step > 0 {
            // d h_s = dz_s W_hh, W_hh row-major (4H x H)
            let dz = Mat::new(step * g, steps * g, 1);
            sgemm((t.rows, h, g), (&*gates, dz), (w, Mat::new(s.w_hh, h, 1)), (&mut *dh, Mat::new(0, h, 1)), false, 1);
        }
    }
    let width = feat + h + 1;
    let n = t.rows * steps;
    ROWS.with_borrow_mut(|rows| {
        if rows.len() < n * width {
            rows.resize(n * width, 0.0);
        }
        let x = &b.inputs[input_offset(s, t)..][..n * feat];
        for ((row, xr), hr) in rows.chunks_exact_mut(width).zip(x.chunks_exact(feat)).zip(hidden.chunks_exact(h)) {
            row[..feat].copy_from_slice(xr);
            row[feat..feat + h].copy_from_slice(hr);
            row[feat + h] = 1.0;
        }
        // dz^T: element (k, r) of the tile's gates [r][k]
        let dz_t = Mat::new(0, 1, g);
        sgemm(
            (g, width, n),
            (&*gates, dz_t),
            (&rows[..n * width], Mat::new(0, width, 1)),
            (slot, Mat::new(0, width, 1)),
            false,
            1,
        );
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

/// The forward cell of step `s.step` for consecutive rows from row `first` (vector, image) of the
/// chunk, with the rows' slices of each buffer: biases into the step's gates, then c and h; the gates
/// keep their activations i, f, g, o for the backward pass.
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

dispatch!(fn cell_backward(s: &LstmStep, gt: &mut [f32], cl: &[f32], dh: &[f32], dc: &mut [f32]) => cell_backward_rows);

/// The backward cell of step `s.step` for consecutive rows (`gt` and `dc` hold exactly those rows;
/// `cl` and `dh` start at the first of them): from d h_s (`dh`) and the carried d c_s (`dc`), the
/// step's gates (the activations the forward cell left) become d loss / d gate pre-activations and
/// `dc` carries d c_{s-1}.
#[inline(always)]
fn cell_backward_rows(s: &LstmStep, gt: &mut [f32], cl: &[f32], dh: &[f32], dc: &mut [f32]) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let carry = s.step + 1 < st;
    for (i, (gr, dcv)) in gt.chunks_exact_mut(st * g).zip(dc.chunks_exact_mut(h)).enumerate() {
        let z = &mut gr[s.step * g..][..g];
        let crow = &cl[i * (st + 1) * h..][..(st + 1) * h];
        let (c_prev, c_next) = (&crow[s.step * h..][..h], &crow[(s.step + 1) * h..][..h]);
        let dhr = &dh[i * h..][..h];
        // blocks of LANES units in fixed-size arrays: with nine streams of one row, a plain loop over
        // the units stayed scalar (the compiler could not prove the slices apart)
        for j0 in (0..h).step_by(LANES) {
            let n = LANES.min(h - j0);
            // whole blocks as fixed-size copies (a copy of a run-time length is a call to memmove)
            let load = |v: &[f32]| -> [f32; LANES] {
                match v[j0..].first_chunk::<LANES>() {
                    Some(whole) => *whole,
                    None => {
                        let mut a = [0f32; LANES];
                        a[..n].copy_from_slice(&v[j0..j0 + n]);
                        a
                    }
                }
            };
            let store = |v: &mut [f32], block: &[f32; LANES]| match v[j0..].first_chunk_mut::<LANES>() {
                Some(whole) => *whole = *block,
                None => v[j0..j0 + n].copy_from_slice(&block[..n]),
            };
            let (ig, f, gg, o) = (load(&z[..h]), load(&z[h..2 * h]), load(&z[2 * h..3 * h]), load(&z[3 * h..]));
            let (cp, cn, dh_s) = (load(c_prev), load(c_next), load(dhr));
            let dc_next = if carry { load(dcv) } else { [0f32; LANES] };
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
                store(&mut z[q * h..(q + 1) * h], block);
            }
            store(dcv, &out[4]);
        }
    }
}

/// Units per block of the backward cell: one AVX-512 register of f32.
const LANES: usize = 16;
