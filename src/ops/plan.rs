//! A network's loss (and gradient) for B weight vectors as data: named tensors and, per chunk of
//! images, a forward and a backward list of operations of the kernel vocabulary ([`crate::ops`]). A plan
//! knows shapes, offsets into the flat parameter vector and where the images come from; it can be
//! printed, counted and tested without a device. Backends execute it (the model's evaluator lowers it to
//! a device's commands); the networks build theirs in `model`.

use std::fmt;

use crate::ops::{Act, Conv, Head, Layout, LossChunk, LstmOperands, LstmSequence, LstmStep, Pool, Product};

/// Index of a tensor in [`Plan::tensors`].
pub type TensorId = usize;

/// The B x N_prm weight vectors (written by the caller before each evaluation).
pub const WEIGHTS: TensorId = 0;
/// The B x N_prm gradients of the mean loss.
pub const GRADS: TensorId = 1;
/// Per-vector partial sums [vector][slot][loss, correct], added by the host.
pub const PARTIALS: TensorId = 2;
/// The image buffer of the dataset (bound as [`Operand::Images`]).
pub const PIXELS: TensorId = 3;
/// The labels (u32).
pub const LABELS: TensorId = 4;
/// Tensors the evaluator supplies; a plan's own scratch tensors follow.
pub const EXTERNAL: usize = 5;

/// How a scratch tensor starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// 32-bit unsigned values (an index table).
    U32(Vec<u32>),
}

/// A named tensor of 32-bit elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub len: usize,
    pub init: Init,
}

/// A matrix-product or convolution operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Tensor(TensorId),
    /// The image buffer, pixels read as values in [0, 1].
    Images,
}

/// One operation. Weight and gradient tensors of the convolution and LSTM cell are [`WEIGHTS`] and
/// [`GRADS`]; the loss heads read [`LABELS`] (cross-entropy) or the images (reconstruction) and write
/// [`PARTIALS`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// C (+)= A * B, batched and possibly column-grouped (see [`Layout`]).
    MatMul {
        shape: Product,
        a: (Operand, Layout),
        b: (Operand, Layout),
        c: (TensorId, Layout),
    },
    /// out = act(z) over `len` elements.
    ActForward {
        act: Act,
        z: TensorId,
        out: TensorId,
        len: usize,
    },
    /// grad *= act'(z) over `len` elements.
    ActBackward {
        act: Act,
        z: TensorId,
        grad: TensorId,
        len: usize,
    },
    /// Per-image losses into the partials, d loss / d outputs into `grad`.
    Loss {
        head: Head,
        chunk: LossChunk,
        outputs: TensorId,
        grad: TensorId,
    },
    ConvForward {
        conv: Conv,
        input: Operand,
        out: TensorId,
    },
    ConvWeightGrad {
        conv: Conv,
        input: Operand,
        grad_out: TensorId,
        accumulate: bool,
    },
    ConvInputGrad {
        conv: Conv,
        grad_out: TensorId,
        grad_in: TensorId,
    },
    /// `dst` = `src` pooled (average or max; [`crate::ops::pool`]).
    PoolForward {
        pool: Pool,
        src: TensorId,
        dst: TensorId,
    },
    /// `grad_in` = d loss / d input from `grad_out`; `input` is the forward's `src` (max pooling
    /// reads it to find each window's maximum).
    PoolBackward {
        pool: Pool,
        input: TensorId,
        grad_out: TensorId,
        grad_in: TensorId,
    },
    /// The LSTM's permuted pixel rows of a chunk: `out` = images gathered through `perm`.
    GatherPixels {
        step: LstmStep,
        perm: TensorId,
        out: TensorId,
    },
    /// The LSTM recurrence of a chunk, forward ([`crate::ops::LstmCells::lstm_forward`]; on a GPU a
    /// product and a cell launch per step, [`LstmSequence::forward_launches`]).
    LstmForward {
        seq: LstmSequence,
        tensors: LstmOperands<TensorId>,
    },
    /// Backpropagation through time and the LSTM's weight gradients (added to [`GRADS`] when
    /// `accumulate`; [`LstmSequence::backward_launches`]).
    LstmBackward {
        seq: LstmSequence,
        tensors: LstmOperands<TensorId>,
        accumulate: bool,
    },
}

impl Op {
    /// The operation's kind, for counts and printing.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::MatMul { .. } => "matmul",
            Op::ActForward { .. } => "activation",
            Op::ActBackward { .. } => "activation-backward",
            Op::Loss { .. } => "loss",
            Op::ConvForward { .. } => "conv",
            Op::ConvWeightGrad { .. } => "conv-weight-grad",
            Op::ConvInputGrad { .. } => "conv-input-grad",
            Op::PoolForward { pool, .. } => pool.name(false),
            Op::PoolBackward { pool, .. } => pool.name(true),
            Op::GatherPixels { .. } => "gather",
            Op::LstmForward { .. } => "lstm-forward",
            Op::LstmBackward { .. } => "lstm-backward",
        }
    }

    /// How many kernels a GPU launches for the operation: one, or for an LSTM sequence operation its
    /// per-step launches.
    pub fn launches(&self) -> usize {
        match self {
            Op::LstmForward { seq, .. } => seq.forward_launches().len(),
            Op::LstmBackward { seq, accumulate, .. } => seq.backward_launches(*accumulate).len(),
            _ => 1,
        }
    }

    /// Floating-point operations of the matrix products and convolutions (2 per multiply-add); the
    /// element-wise work is not counted.
    pub fn flops(&self) -> f64 {
        match self {
            Op::MatMul { shape, .. } => shape.flops(),
            Op::ConvForward { conv, .. } | Op::ConvWeightGrad { conv, .. } | Op::ConvInputGrad { conv, .. } => {
                conv.flops()
            }
            Op::LstmForward { seq, .. } => seq.flops(false),
            Op::LstmBackward { seq, .. } => seq.flops(true),
            _ => 0.0,
        }
    }
}

/// The operations of one chunk of images.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkOps {
    /// First image (dataset index) and number of images.
    pub first: usize,
    pub images: usize,
    /// Forward pass ending with the loss head.
    pub forward: Vec<Op>,
    /// Backward pass: gradients into [`GRADS`] (the first chunk overwrites, later ones add).
    pub backward: Vec<Op>,
}

/// A whole evaluation: tensors and chunks.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// External tensors (lengths as this plan uses them) then scratch tensors.
    pub tensors: Vec<Tensor>,
    pub chunks: Vec<ChunkOps>,
}

impl Plan {
    /// The operations of one evaluation in order (forward and, with `grad`, backward per chunk).
    pub fn ops(&self, grad: bool) -> impl Iterator<Item = &Op> {
        self.chunks.iter().flat_map(move |c| c.forward.iter().chain(if grad { &c.backward[..] } else { &[] }))
    }

    /// Operations of one evaluation.
    pub fn count(&self, grad: bool) -> usize {
        self.ops(grad).count()
    }

    /// Kernel launches of one evaluation on a GPU (an LSTM sequence operation launches a product and a
    /// cell per step).
    pub fn dispatches(&self, grad: bool) -> usize {
        self.ops(grad).map(Op::launches).sum()
    }

    /// Operations of one evaluation by kind, in first-seen order.
    pub fn counts(&self, grad: bool) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for op in self.ops(grad) {
            match out.iter_mut().find(|(k, _)| *k == op.kind()) {
                Some((_, n)) => *n += 1,
                None => out.push((op.kind(), 1)),
            }
        }
        out
    }

    /// Matrix-product and convolution FLOPs of one evaluation.
    pub fn flops(&self, grad: bool) -> f64 {
        self.ops(grad).map(Op::flops).sum()
    }

    /// Bytes of the plan's scratch tensors.
    pub fn scratch_bytes(&self) -> u64 {
        self.tensors[EXTERNAL..].iter().map(|t| t.len as u64 * 4).sum()
    }
}

impl fmt::Display for Plan {
    /// The tensors, then the first chunk's operations, then a count of the others.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tensors:")?;
        for (i, t) in self.tensors.iter().enumerate() {
            writeln!(f, "  t{i} {} [{}]", t.name, t.len)?;
        }
        if let Some(c) = self.chunks.first() {
            writeln!(f, "chunk 0: images {}..{}", c.first, c.first + c.images)?;
            for (pass, ops) in [("forward", &c.forward), ("backward", &c.backward)] {
                writeln!(f, "  {pass}:")?;
                for op in ops {
                    writeln!(f, "    {op:?}")?;
                }
            }
        }
        if self.chunks.len() > 1 {
            writeln!(f, "... and {} more chunks of the same operations", self.chunks.len() - 1)?;
        }
        Ok(())
    }
}
