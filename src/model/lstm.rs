//! The LSTM (SPEC §1.3) as GPU dispatches: the permuted pixels of a chunk are gathered once; the input
//! projection of all 28 steps and B vectors is one product; each step adds h W_hh^T (a product batched
//! over the vectors) and runs the cell kernel; the classifier and the loss head are a one-layer dense
//! stack. Backward runs through time, then the weight gradients are three products over all steps.

use anyhow::Result;

use super::evaluator::{Chunk, ChunkPlan, PlanInputs};
use super::mlp::{Dense, Input, Mlp};
use super::{lstm_permutation, Arch};
use crate::gpu::{Head, Layout, LstmStep, Product, Source};

const STEPS: usize = 28;
const FEAT: usize = 28;
const H: usize = 48;
const G: usize = 4 * H;

/// Scratch values per image and vector (the gates of all steps), for chunk sizing.
pub(super) const WIDTH: usize = STEPS * G;

fn product(m: usize, n: usize, k: usize, batches: usize, accumulate: bool) -> Product {
    Product { m, n, k, batches, accumulate }
}

pub(super) fn plan(p: &PlanInputs, chunks: &[Chunk]) -> Result<Vec<ChunkPlan>> {
    let (gpu, b, cap, n_prm) = (p.gpu, p.batch, p.chunk_cap, p.n_prm);
    let o = Arch::Lstm.offsets();
    let (w_ih, w_hh, b_ih, b_hh, fc) = (o[0], o[1], o[2], o[3], o[4]);
    let perm: Vec<u32> = lstm_permutation().iter().map(|&v| v as u32).collect();
    let perm = gpu.upload(&perm, "lstm permutation")?;
    // one permuted copy of the images, or one per vector when each vector has its own images
    let x_bs = if p.img_bs > 0 { cap * 784 } else { 0 };
    let xperm = gpu.zeros(cap * 784 * if p.img_bs > 0 { b } else { 1 }, "lstm inputs")?;
    let gates = gpu.zeros(b * cap * STEPS * G, "lstm gates")?;
    let cells = gpu.zeros(b * cap * (STEPS + 1) * H, "lstm cells")?;
    let hidden = gpu.zeros(b * cap * STEPS * H, "lstm hidden")?; // slot 0 = h_0 = 0, never written
    let last = gpu.zeros(b * cap * H, "lstm last hidden")?;
    let dh = gpu.zeros(b * cap * H, "lstm dh")?;
    let dc = gpu.zeros(b * cap * H, "lstm dc")?;
    let ones = gpu.upload(&vec![1f32; cap * STEPS], "ones")?;
    let classifier =
        Mlp::new(p, vec![Dense { inp: H, out: 10, w_off: fc, b_off: None, act: None }], Head::CrossEntropy)?;
    let features = Input::Features { values: &last, grad: &dh };
    let w = Source::F32(p.weights);

    chunks
        .iter()
        .enumerate()
        .map(|(ci, ch)| {
            let c = ch.len;
            let step = |s| LstmStep {
                images: c,
                batches: b,
                step: s,
                n_prm,
                bias_ih: b_ih,
                bias_hh: b_hh,
                first_image: ch.first,
                img_bs: p.img_bs,
            };
            let gate_stride = c * STEPS * G;
            // gates of step s as a (c x 192) matrix per vector
            let gates_at = |s: usize| Layout { off: s * G, batch: gate_stride, row: STEPS * G, col: 1, group: None };
            let mut forward = vec![
                gpu.gather_pixels(step(0), &p.images.pixels, &perm, &xperm)?,
                if p.img_bs == 0 {
                    // shared inputs: one product for all vectors, columns (vector, gate)
                    gpu.matmul(
                        product(c * STEPS, G * b, FEAT, 1, false),
                        (Source::F32(&xperm), Layout::row_major(0, FEAT, 0)),
                        (w, Layout { off: w_ih, batch: 0, row: 1, col: FEAT, group: Some((G, n_prm)) }),
                        (&gates, Layout { off: 0, batch: 0, row: G, col: 1, group: Some((G, gate_stride)) }),
                    )?
                } else {
                    gpu.matmul(
                        product(c * STEPS, G, FEAT, b, false),
                        (Source::F32(&xperm), Layout::row_major(0, FEAT, x_bs)),
                        (w, Layout { off: w_ih, batch: n_prm, row: 1, col: FEAT, group: None }),
                        (&gates, Layout::row_major(0, G, gate_stride)),
                    )?
                },
            ];
            for s in 0..STEPS {
                if s > 0 {
                    forward.push(gpu.matmul(
                        product(c, G, H, b, true),
                        (
                            Source::F32(&hidden),
                            Layout { off: s * H, batch: c * STEPS * H, row: STEPS * H, col: 1, group: None },
                        ),
                        (w, Layout { off: w_hh, batch: n_prm, row: 1, col: H, group: None }),
                        (&gates, gates_at(s)),
                    )?);
                }
                forward.push(gpu.lstm_cell_forward(step(s), p.weights, &gates, &cells, &hidden, &last)?);
            }
            forward.extend(classifier.forward(p, ch, features)?);

            let acc = ci > 0;
            let mut backward = classifier.backward(p, ch, features, acc)?;
            for s in (0..STEPS).rev() {
                backward.push(gpu.lstm_cell_backward(step(s), &gates, &cells, &dh, &dc)?);
                if s > 0 {
                    backward.push(gpu.matmul(
                        product(c, H, G, b, false),
                        (Source::F32(&gates), gates_at(s)),
                        (w, Layout::row_major(w_hh, H, n_prm)),
                        (&dh, Layout::row_major(0, H, c * H)),
                    )?);
                }
            }
            // weight gradients over all (image, step) rows at once
            let dz_t = (Source::F32(&gates), Layout::transposed(0, G, gate_stride));
            let rows = c * STEPS;
            backward.push(gpu.matmul(
                product(G, FEAT, rows, b, acc),
                dz_t,
                (Source::F32(&xperm), Layout::row_major(0, FEAT, x_bs)),
                (p.grads, Layout::row_major(w_ih, FEAT, n_prm)),
            )?);
            backward.push(gpu.matmul(
                product(G, H, rows, b, acc),
                dz_t,
                (Source::F32(&hidden), Layout::row_major(0, H, c * STEPS * H)),
                (p.grads, Layout::row_major(w_hh, H, n_prm)),
            )?);
            for bias in [b_ih, b_hh] {
                backward.push(gpu.matmul(
                    product(G, 1, rows, b, acc),
                    dz_t,
                    (Source::F32(&ones), Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                    (p.grads, Layout { off: bias, batch: n_prm, row: 1, col: 0, group: None }),
                )?);
            }
            Ok(ChunkPlan { forward, backward })
        })
        .collect()
}
