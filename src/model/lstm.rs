//! An LSTM (PyTorch `nn.LSTM`, docs/networks.md) over the rows of the images as plan operations, for
//! the generic builder (`model/generic.rs`): the (permuted) image values of a chunk are gathered once;
//! the input projection of all steps and B vectors is one product; each step adds h W_hh^T (a product batched
//! over the vectors) and runs the cell kernel; the classifier and the loss head are a one-layer dense
//! stack. Backward runs through time, then the weight gradients are three products over all steps.

use super::builder::{Builder, Chunk};
use super::mlp::{Dense, Input, Mlp};
use crate::ops::plan::{GatherPixels, Init, LstmCellBackward, LstmCellForward, MatMul, Op, Operand, GRADS, WEIGHTS};
use crate::ops::{Head, Layout, LstmShape, LstmStep, Product};

/// The paper's LSTM: 48 hidden units over 28 rows of 28 permuted pixels (docs/networks.md §2.3).
pub const SHAPE: LstmShape = LstmShape { hidden: 48, steps: 28, features: 28 };

fn product(m: usize, n: usize, k: usize, batches: usize, accumulate: bool) -> Product {
    Product { m, n, k, batches, accumulate }
}

/// The tensors and weight offsets that every chunk's operations use.
pub(super) struct Lstm {
    shape: LstmShape,
    batch: usize,
    n_prm: usize,
    img_bs: usize,
    /// Offsets of W_ih, W_hh, b_ih, b_hh in a weight vector.
    w_ih: usize,
    w_hh: usize,
    b_ih: usize,
    b_hh: usize,
    perm: usize,
    /// The permuted pixels, and their stride per vector (0 when the images are shared).
    xperm: usize,
    x_bs: usize,
    gates: usize,
    cells: usize,
    hidden: usize,
    last: usize,
    dh: usize,
    dc: usize,
    ones: usize,
    classifier: Mlp,
}

impl Lstm {
    /// The LSTM of `shape` whose W_ih, W_hh, b_ih, b_hh start at `offsets` in a parameter vector, over
    /// the image values gathered through `perm` (step s, feature f reads value perm[s · features +
    /// f] of an image), then the dense stack `classifier` (at least one layer) and the loss head.
    pub(super) fn new(
        p: &mut Builder,
        shape: LstmShape,
        offsets: [usize; 4],
        perm: Vec<u32>,
        classifier: Vec<Dense>,
        head: Head,
    ) -> Lstm {
        let (b, cap) = (p.batch, p.chunk_cap);
        let (steps, g, h) = (shape.steps, shape.gates(), shape.hidden);
        let px = shape.pixels();
        Lstm {
            shape,
            batch: b,
            n_prm: p.n_prm,
            img_bs: p.img_bs,
            w_ih: offsets[0],
            w_hh: offsets[1],
            b_ih: offsets[2],
            b_hh: offsets[3],
            perm: p.with("lstm permutation", perm.len(), Init::U32(perm)),
            // one permuted copy of the images, or one per vector when each vector has its own images
            xperm: p.tensor("lstm inputs", cap * px * if p.img_bs > 0 { b } else { 1 }),
            x_bs: if p.img_bs > 0 { cap * px } else { 0 },
            gates: p.tensor("lstm gates", b * cap * steps * g),
            cells: p.tensor("lstm cells", b * cap * (steps + 1) * h),
            hidden: p.tensor("lstm hidden", b * cap * steps * h), // slot 0 = h_0 = 0, never written
            last: p.tensor("lstm last hidden", b * cap * h),
            dh: p.tensor("lstm dh", b * cap * h),
            dc: p.tensor("lstm dc", b * cap * h),
            ones: p.with("ones", cap * steps, Init::Ones),
            classifier: Mlp::new(p, classifier, head),
        }
    }

    fn step(&self, ch: &Chunk, s: usize) -> LstmStep {
        LstmStep {
            shape: self.shape,
            images: ch.len,
            batches: self.batch,
            step: s,
            n_prm: self.n_prm,
            bias_ih: self.b_ih,
            bias_hh: self.b_hh,
            first_image: ch.first,
            img_bs: self.img_bs,
        }
    }

    fn features(&self) -> Input {
        Input::Features { values: self.last, grad: Some(self.dh) }
    }

    /// Per vector, the stride between the gate blocks of a chunk of `c` images.
    fn gate_stride(&self, c: usize) -> usize {
        c * self.shape.steps * self.shape.gates()
    }

    /// The gates of step `s` as a (c x 4H) matrix per vector.
    fn gates_at(&self, c: usize, s: usize) -> Layout {
        let g = self.shape.gates();
        Layout { off: s * g, batch: self.gate_stride(c), row: self.shape.steps * g, col: 1, group: None }
    }

    /// The input projection of all steps: one product for all vectors when the images are shared
    /// (columns (vector, gate)), else one per vector.
    fn input_projection(&self, c: usize) -> Op {
        let (b, n_prm, stride) = (self.batch, self.n_prm, self.gate_stride(c));
        let (steps, feat, g) = (self.shape.steps, self.shape.features, self.shape.gates());
        if self.img_bs == 0 {
            Op::MatMul(MatMul {
                shape: product(c * steps, g * b, feat, 1, false),
                a: (Operand::Tensor(self.xperm), Layout::row_major(0, feat, 0)),
                b: (
                    Operand::Tensor(WEIGHTS),
                    Layout { off: self.w_ih, batch: 0, row: 1, col: feat, group: Some((g, n_prm)) },
                ),
                c: (self.gates, Layout { off: 0, batch: 0, row: g, col: 1, group: Some((g, stride)) }),
            })
        } else {
            Op::MatMul(MatMul {
                shape: product(c * steps, g, feat, b, false),
                a: (Operand::Tensor(self.xperm), Layout::row_major(0, feat, self.x_bs)),
                b: (Operand::Tensor(WEIGHTS), Layout { off: self.w_ih, batch: n_prm, row: 1, col: feat, group: None }),
                c: (self.gates, Layout::row_major(0, g, stride)),
            })
        }
    }

    /// Gather, input projection, the steps of h W_hh^T and the cell, then the classifier and loss head.
    pub(super) fn forward(&self, p: &Builder, ch: &Chunk) -> Vec<Op> {
        let c = ch.len;
        let (steps, g, h) = (self.shape.steps, self.shape.gates(), self.shape.hidden);
        let mut ops = vec![
            Op::GatherPixels(GatherPixels { step: self.step(ch, 0), perm: self.perm, out: self.xperm }),
            self.input_projection(c),
        ];
        for s in 0..steps {
            if s > 0 {
                ops.push(Op::MatMul(MatMul {
                    shape: product(c, g, h, self.batch, true),
                    a: (
                        Operand::Tensor(self.hidden),
                        Layout { off: s * h, batch: c * steps * h, row: steps * h, col: 1, group: None },
                    ),
                    b: (
                        Operand::Tensor(WEIGHTS),
                        Layout { off: self.w_hh, batch: self.n_prm, row: 1, col: h, group: None },
                    ),
                    c: (self.gates, self.gates_at(c, s)),
                }));
            }
            let (gates, cells, hidden, last) = (self.gates, self.cells, self.hidden, self.last);
            ops.push(Op::LstmCellForward(LstmCellForward { step: self.step(ch, s), gates, cells, hidden, last }));
        }
        ops.extend(self.classifier.forward(p, ch, self.features()));
        ops
    }

    /// The classifier, back through time, then the weight gradients over all (image, step) rows at
    /// once (added to the gradient when `acc`, i.e. after the first chunk).
    pub(super) fn backward(&self, p: &Builder, ch: &Chunk, acc: bool) -> Vec<Op> {
        let (c, b, n_prm) = (ch.len, self.batch, self.n_prm);
        let (steps, feat, g, h) = (self.shape.steps, self.shape.features, self.shape.gates(), self.shape.hidden);
        let t = Operand::Tensor;
        let mut ops = self.classifier.backward(p, ch, self.features(), acc);
        for s in (0..steps).rev() {
            ops.push(Op::LstmCellBackward(LstmCellBackward {
                step: self.step(ch, s),
                gates: self.gates,
                cells: self.cells,
                dh: self.dh,
                dc: self.dc,
            }));
            if s > 0 {
                ops.push(Op::MatMul(MatMul {
                    shape: product(c, h, g, b, false),
                    a: (t(self.gates), self.gates_at(c, s)),
                    b: (Operand::Tensor(WEIGHTS), Layout::row_major(self.w_hh, h, n_prm)),
                    c: (self.dh, Layout::row_major(0, h, c * h)),
                }));
            }
        }
        let dz_t = (t(self.gates), Layout::transposed(0, g, self.gate_stride(c)));
        let rows = c * steps;
        ops.push(Op::MatMul(MatMul {
            shape: product(g, feat, rows, b, acc),
            a: dz_t,
            b: (t(self.xperm), Layout::row_major(0, feat, self.x_bs)),
            c: (GRADS, Layout::row_major(self.w_ih, feat, n_prm)),
        }));
        ops.push(Op::MatMul(MatMul {
            shape: product(g, h, rows, b, acc),
            a: dz_t,
            b: (t(self.hidden), Layout::row_major(0, h, c * steps * h)),
            c: (GRADS, Layout::row_major(self.w_hh, h, n_prm)),
        }));
        for bias in [self.b_ih, self.b_hh] {
            ops.push(Op::MatMul(MatMul {
                shape: product(g, 1, rows, b, acc),
                a: dz_t,
                b: (t(self.ones), Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                c: (GRADS, Layout { off: bias, batch: n_prm, row: 1, col: 0, group: None }),
            }));
        }
        ops
    }
}
