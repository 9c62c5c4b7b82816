//! The LSTM (docs/networks.md) as a plan: the permuted pixels of a chunk are gathered once; the input
//! projection of all 28 steps and B vectors is one product; each step adds h W_hh^T (a product batched
//! over the vectors) and runs the cell kernel; the classifier and the loss head are a one-layer dense
//! stack. Backward runs through time, then the weight gradients are three products over all steps.

use super::mlp::{Dense, Input, Mlp};
use super::plan::{Builder, Chunk, ChunkOps, Init, Op, Operand, GRADS, WEIGHTS};
use super::{lstm_permutation, Arch};
use crate::ops::{Head, Layout, LstmShape, LstmStep, Product};

/// 48 hidden units over 28 rows of 28 permuted pixels.
pub const SHAPE: LstmShape = LstmShape { hidden: 48, steps: 28, features: 28 };
const STEPS: usize = SHAPE.steps;
const FEAT: usize = SHAPE.features;
const H: usize = SHAPE.hidden;
const G: usize = 4 * H;

fn product(m: usize, n: usize, k: usize, batches: usize, accumulate: bool) -> Product {
    Product { m, n, k, batches, accumulate }
}

pub(super) fn plan(p: &mut Builder, chunks: &[Chunk]) -> Vec<ChunkOps> {
    let (b, cap, n_prm) = (p.batch, p.chunk_cap, p.n_prm);
    let o = Arch::Lstm.offsets();
    let (w_ih, w_hh, b_ih, b_hh, fc) = (o[0], o[1], o[2], o[3], o[4]);
    let perm: Vec<u32> = lstm_permutation().iter().map(|&v| v as u32).collect();
    let perm = p.with("lstm permutation", perm.len(), Init::U32(perm));
    // one permuted copy of the images, or one per vector when each vector has its own images
    let px = SHAPE.pixels();
    let x_bs = if p.img_bs > 0 { cap * px } else { 0 };
    let xperm = p.tensor("lstm inputs", cap * px * if p.img_bs > 0 { b } else { 1 });
    let gates = p.tensor("lstm gates", b * cap * STEPS * G);
    let cells = p.tensor("lstm cells", b * cap * (STEPS + 1) * H);
    let hidden = p.tensor("lstm hidden", b * cap * STEPS * H); // slot 0 = h_0 = 0, never written
    let last = p.tensor("lstm last hidden", b * cap * H);
    let dh = p.tensor("lstm dh", b * cap * H);
    let dc = p.tensor("lstm dc", b * cap * H);
    let ones = p.with("ones", cap * STEPS, Init::Ones);
    let classifier =
        Mlp::new(p, vec![Dense { inp: H, out: 10, w_off: fc, b_off: None, act: None }], Head::CrossEntropy);
    let features = Input::Features { values: last, grad: dh };
    let w = Operand::Tensor(WEIGHTS);
    let t = Operand::Tensor;
    let p = &*p;

    chunks
        .iter()
        .enumerate()
        .map(|(ci, ch)| {
            let c = ch.len;
            let step = |s| LstmStep {
                shape: SHAPE,
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
            // gates of step s as a (c x 4H) matrix per vector
            let gates_at = |s: usize| Layout { off: s * G, batch: gate_stride, row: STEPS * G, col: 1, group: None };
            let mut forward = vec![
                Op::GatherPixels { step: step(0), perm, out: xperm },
                if p.img_bs == 0 {
                    // shared inputs: one product for all vectors, columns (vector, gate)
                    Op::MatMul {
                        shape: product(c * STEPS, G * b, FEAT, 1, false),
                        a: (t(xperm), Layout::row_major(0, FEAT, 0)),
                        b: (w, Layout { off: w_ih, batch: 0, row: 1, col: FEAT, group: Some((G, n_prm)) }),
                        c: (gates, Layout { off: 0, batch: 0, row: G, col: 1, group: Some((G, gate_stride)) }),
                    }
                } else {
                    Op::MatMul {
                        shape: product(c * STEPS, G, FEAT, b, false),
                        a: (t(xperm), Layout::row_major(0, FEAT, x_bs)),
                        b: (w, Layout { off: w_ih, batch: n_prm, row: 1, col: FEAT, group: None }),
                        c: (gates, Layout::row_major(0, G, gate_stride)),
                    }
                },
            ];
            for s in 0..STEPS {
                if s > 0 {
                    forward.push(Op::MatMul {
                        shape: product(c, G, H, b, true),
                        a: (
                            t(hidden),
                            Layout { off: s * H, batch: c * STEPS * H, row: STEPS * H, col: 1, group: None },
                        ),
                        b: (w, Layout { off: w_hh, batch: n_prm, row: 1, col: H, group: None }),
                        c: (gates, gates_at(s)),
                    });
                }
                forward.push(Op::LstmCellForward { step: step(s), gates, cells, hidden, last });
            }
            forward.extend(classifier.forward(p, ch, features));

            let acc = ci > 0;
            let mut backward = classifier.backward(p, ch, features, acc);
            for s in (0..STEPS).rev() {
                backward.push(Op::LstmCellBackward { step: step(s), gates, cells, dh, dc });
                if s > 0 {
                    backward.push(Op::MatMul {
                        shape: product(c, H, G, b, false),
                        a: (t(gates), gates_at(s)),
                        b: (w, Layout::row_major(w_hh, H, n_prm)),
                        c: (dh, Layout::row_major(0, H, c * H)),
                    });
                }
            }
            // weight gradients over all (image, step) rows at once
            let dz_t = (t(gates), Layout::transposed(0, G, gate_stride));
            let rows = c * STEPS;
            backward.push(Op::MatMul {
                shape: product(G, FEAT, rows, b, acc),
                a: dz_t,
                b: (t(xperm), Layout::row_major(0, FEAT, x_bs)),
                c: (GRADS, Layout::row_major(w_ih, FEAT, n_prm)),
            });
            backward.push(Op::MatMul {
                shape: product(G, H, rows, b, acc),
                a: dz_t,
                b: (t(hidden), Layout::row_major(0, H, c * STEPS * H)),
                c: (GRADS, Layout::row_major(w_hh, H, n_prm)),
            });
            for bias in [b_ih, b_hh] {
                backward.push(Op::MatMul {
                    shape: product(G, 1, rows, b, acc),
                    a: dz_t,
                    b: (t(ones), Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                    c: (GRADS, Layout { off: bias, batch: n_prm, row: 1, col: 0, group: None }),
                });
            }
            ChunkOps { first: ch.first, images: c, forward, backward }
        })
        .collect()
}
