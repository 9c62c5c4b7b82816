//! An LSTM (PyTorch `nn.LSTM`, docs/networks.md) over the rows of the images as plan operations, for
//! the generic builder (`model/generic.rs`): the (permuted) image values of a chunk are gathered once;
//! the recurrence over all steps is one operation forward and one backward (`ops::LstmSequence`: the
//! input projection, per step h W_hh^T and the cell; back through time, then the weight gradients),
//! which each backend runs its own way (a GPU launches a product and a cell per step, the CPU runs
//! groups of image rows through all steps); the classifier and the loss head are a dense stack.

use super::builder::{Builder, Chunk};
use super::mlp::{Dense, Input, Mlp};
use crate::ops::plan::{GatherPixels, Init, LstmBackward, LstmForward, Op, TensorId, GRADS, WEIGHTS};
use crate::ops::{Head, LstmOperands, LstmSequence, LstmShape};

/// The paper's LSTM: 48 hidden units over 28 rows of 28 permuted pixels (docs/networks.md §2.3).
pub const SHAPE: LstmShape = LstmShape { hidden: 48, steps: 28, features: 28 };

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
    /// The permuted pixels (one copy when the images are shared, else one per vector).
    xperm: usize,
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

    /// The recurrence over chunk `ch`.
    fn sequence(&self, ch: &Chunk) -> LstmSequence {
        LstmSequence {
            shape: self.shape,
            images: ch.len,
            batches: self.batch,
            n_prm: self.n_prm,
            w_ih: self.w_ih,
            w_hh: self.w_hh,
            b_ih: self.b_ih,
            b_hh: self.b_hh,
            first_image: ch.first,
            img_bs: self.img_bs,
        }
    }

    /// The tensors of the sequence operations.
    fn tensors(&self) -> LstmOperands<TensorId> {
        LstmOperands {
            inputs: self.xperm,
            weights: WEIGHTS,
            grads: GRADS,
            gates: self.gates,
            cells: self.cells,
            hidden: self.hidden,
            last: self.last,
            dh: self.dh,
            dc: self.dc,
            ones: self.ones,
        }
    }

    fn features(&self) -> Input {
        Input::Features { values: self.last, grad: Some(self.dh) }
    }

    /// Gather, the recurrence, then the classifier and loss head.
    pub(super) fn forward(&self, p: &Builder, ch: &Chunk) -> Vec<Op> {
        let seq = self.sequence(ch);
        let mut ops = vec![
            Op::GatherPixels(GatherPixels { step: seq.step(0), perm: self.perm, out: self.xperm }),
            Op::LstmForward(LstmForward { seq, tensors: self.tensors() }),
        ];
        ops.extend(self.classifier.forward(p, ch, self.features()));
        ops
    }

    /// The classifier, then back through time and the weight gradients (added to the gradient when
    /// `acc`, i.e. after the first chunk).
    pub(super) fn backward(&self, p: &Builder, ch: &Chunk, acc: bool) -> Vec<Op> {
        let mut ops = self.classifier.backward(p, ch, self.features(), acc);
        ops.push(Op::LstmBackward(LstmBackward { seq: self.sequence(ch), tensors: self.tensors(), accumulate: acc }));
        ops
    }
}
