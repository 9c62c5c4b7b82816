//! The LSTM cell on the CPU (`shaders/lstm.wgsl`): the permuted-pixel gather and one step forward
//! and backward for every (vector, image) row, in parallel groups of rows.

use anyhow::Result;
use rayon::prelude::*;

use super::math::{sigmoid, tanh};
use super::simd::{dispatch, Simd};
use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{LstmCells, LstmStep};

impl LstmCells for Cpu {
    fn gather_pixels(&self, s: LstmStep, pixels: &CpuBuffer, perm: &CpuBuffer, out: &CpuBuffer) -> Result<CpuCommand> {
        let (pixels, perm, out) = (pixels.clone(), perm.clone(), out.clone());
        Ok(CpuCommand::checked("pixel gather", &[&out], &[&pixels, &perm])?
            .run(move |_, l| gather_pixels(&s, pixels.view(l), perm.view(l), out.view_mut(l))))
    }

    fn lstm_cell_forward(
        &self,
        s: LstmStep,
        weights: &CpuBuffer,
        gates: &CpuBuffer,
        cells: &CpuBuffer,
        hidden: &CpuBuffer,
        last: &CpuBuffer,
    ) -> Result<CpuCommand> {
        let (weights, gates, cells, hidden, last) =
            (weights.clone(), gates.clone(), cells.clone(), hidden.clone(), last.clone());
        Ok(CpuCommand::checked("LSTM cell", &[&gates, &cells, &hidden, &last], &[&weights])?.run(move |cpu, l| {
            lstm_cell_forward(
                cpu.kernels,
                &s,
                weights.view(l),
                gates.view_mut(l),
                cells.view_mut(l),
                hidden.view_mut(l),
                last.view_mut(l),
            )
        }))
    }

    fn lstm_cell_backward(
        &self,
        s: LstmStep,
        gates: &CpuBuffer,
        cells: &CpuBuffer,
        dh: &CpuBuffer,
        dc: &CpuBuffer,
    ) -> Result<CpuCommand> {
        let (gates, cells, dh, dc) = (gates.clone(), cells.clone(), dh.clone(), dc.clone());
        Ok(CpuCommand::checked("LSTM cell backward", &[&gates, &dc], &[&cells, &dh])?.run(move |cpu, l| {
            lstm_cell_backward(cpu.kernels, &s, gates.view_mut(l), cells.view(l), dh.view(l), dc.view_mut(l))
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

/// Rows ((vector, image) pairs) per parallel task of the LSTM cell kernels.
const CELL_ROWS: usize = 64;

/// One LSTM step forward for every (vector, image): biases into the step's gates, then c and h (see
/// lstm.wgsl); the gates keep their activations i, f, g, o for the backward pass.
pub fn lstm_cell_forward(
    simd: Simd,
    s: &LstmStep,
    weights: &[f32],
    gates: &mut [f32],
    cells: &mut [f32],
    hidden: &mut [f32],
    last: &mut [f32],
) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let rows = s.batches * s.images;
    let r = CELL_ROWS;
    gates[..rows * st * g]
        .par_chunks_mut(r * st * g)
        .zip(cells[..rows * (st + 1) * h].par_chunks_mut(r * (st + 1) * h))
        .zip(hidden[..rows * st * h].par_chunks_mut(r * st * h).zip(last[..rows * h].par_chunks_mut(r * h)))
        .enumerate()
        .for_each(|(t, ((gt, cl), (hd, ls)))| cell_forward(simd, s, weights, t * r, gt, cl, hd, ls));
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

/// The forward cell of consecutive rows from row `first`, with the rows' slices of each buffer.
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

/// One LSTM step backward: from d h_s (`dh`) and the carried d c_s (`dc`), the step's gates (the
/// activations [`lstm_cell_forward`] left) become d loss / d gate pre-activations and `dc` carries
/// d c_{s-1}.
pub fn lstm_cell_backward(simd: Simd, s: &LstmStep, gates: &mut [f32], cells: &[f32], dh: &[f32], dc: &mut [f32]) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let rows = s.batches * s.images;
    let r = CELL_ROWS;
    gates[..rows * st * g].par_chunks_mut(r * st * g).zip(dc[..rows * h].par_chunks_mut(r * h)).enumerate().for_each(
        |(t, (gt, dcv))| {
            let (cl, dhv) = (&cells[t * r * (st + 1) * h..], &dh[t * r * h..]);
            cell_backward(simd, s, gt, cl, dhv, dcv)
        },
    );
}

dispatch!(fn cell_backward(s: &LstmStep, gt: &mut [f32], cl: &[f32], dh: &[f32], dc: &mut [f32]) => cell_backward_rows);

/// The backward cell of consecutive rows (`gt` and `dc` hold exactly those rows; `cl` and `dh` start
/// at the first of them).
#[inline(always)]
fn cell_backward_rows(s: &LstmStep, gt: &mut [f32], cl: &[f32], dh: &[f32], dc: &mut [f32]) {
    let (h, st, g) = (s.shape.hidden, s.shape.steps, s.shape.gates());
    let carry = s.step + 1 < st;
    for (i, (gr, dcv)) in gt.chunks_exact_mut(st * g).zip(dc.chunks_exact_mut(h)).enumerate() {
        let z = &mut gr[s.step * g..][..g];
        // every slice exactly h long, so that the loop has no bounds checks and vectorises
        let (zi, rest) = z.split_at_mut(h);
        let (zf, rest) = rest.split_at_mut(h);
        let (zg, zo) = rest.split_at_mut(h);
        let (zg, zo, dcv) = (&mut zg[..h], &mut zo[..h], &mut dcv[..h]);
        let crow = &cl[i * (st + 1) * h..][..(st + 1) * h];
        let (c_prev, c_next) = (&crow[s.step * h..][..h], &crow[(s.step + 1) * h..][..h]);
        let dhr = &dh[i * h..][..h];
        for j in 0..h {
            // the gate activations the forward cell left in place
            let (ig, f, gg, o) = (zi[j], zf[j], zg[j], zo[j]);
            let tc = tanh(c_next[j]);
            let dh_s = dhr[j];
            let mut dc_s = dh_s * o * (1.0 - tc * tc);
            if carry {
                dc_s += dcv[j];
            }
            zi[j] = dc_s * gg * ig * (1.0 - ig);
            zf[j] = dc_s * c_prev[j] * f * (1.0 - f);
            zg[j] = dc_s * ig * (1.0 - gg * gg);
            zo[j] = dh_s * tc * o * (1.0 - o);
            dcv[j] = dc_s * f;
        }
    }
}
