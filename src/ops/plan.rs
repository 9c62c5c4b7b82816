//! A network's loss (and gradient) for B weight vectors as data: named tensors and, per chunk of
//! images, a forward and a backward list of operations of the kernel vocabulary ([`crate::ops`]). A plan
//! knows shapes, offsets into the flat parameter vector and where the images come from; it can be
//! printed, counted and tested without a device. Backends execute it (the model's evaluator lowers it to
//! a device's commands); the networks build theirs in `model`.

use std::fmt;

use anyhow::Result;

pub use super::activation::{ActBackward, ActForward};
use super::backend::Backend;
pub use super::conv::{ConvForward, ConvInputGrad, ConvWeightGrad};
pub use super::loss::{Loss, LossWithoutGradient};
pub use super::lstm::{GatherPixels, LstmBackward, LstmForward};
pub use super::op::{Operand, PlanOp, TensorId, EXTERNAL, GRADS, LABELS, PARTIALS, PIXELS, WEIGHTS};
pub use super::pool::{PoolBackward, PoolForward};
pub use super::products::MatMul;

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

/// Declares [`Op`], one variant per plan operation (each a struct of its op family's module,
/// implementing [`PlanOp`]), and forwards [`PlanOp`] and `Debug` to the variant, so that a plan prints
/// as the operations themselves (`MatMul { shape: .. }`).
macro_rules! plan_ops {
    ($($variant:ident),* $(,)?) => {
        /// One operation of a plan. Weight and gradient tensors of the convolution and LSTM cell are
        /// [`WEIGHTS`] and [`GRADS`]; the loss heads read [`LABELS`] (cross-entropy) or the images
        /// (reconstruction) and write [`PARTIALS`].
        #[derive(Clone, PartialEq)]
        pub enum Op {
            $($variant($variant),)*
        }

        $(impl From<$variant> for Op {
            fn from(op: $variant) -> Op {
                Op::$variant(op)
            }
        })*

        impl fmt::Debug for Op {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Op::$variant(op) => fmt::Debug::fmt(op, f),)*
                }
            }
        }

        impl PlanOp for Op {
            fn kind(&self) -> &'static str {
                match self {
                    $(Op::$variant(op) => op.kind(),)*
                }
            }
            fn flops(&self) -> f64 {
                match self {
                    $(Op::$variant(op) => op.flops(),)*
                }
            }
            fn ends(&self) -> Vec<(TensorId, u64)> {
                match self {
                    $(Op::$variant(op) => op.ends(),)*
                }
            }
            fn launch_ends(&self) -> Vec<(&'static str, Vec<(TensorId, u64)>)> {
                match self {
                    $(Op::$variant(op) => op.launch_ends(),)*
                }
            }
            fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
                match self {
                    $(Op::$variant(op) => op.record(backend, t),)*
                }
            }
        }
    };
}

plan_ops!(
    MatMul,
    ActForward,
    ActBackward,
    Loss,
    ConvForward,
    ConvWeightGrad,
    ConvInputGrad,
    PoolForward,
    PoolBackward,
    GatherPixels,
    LstmForward,
    LstmBackward,
);

impl Op {
    /// The tensors the operation reads or writes (those of [`PlanOp::ends`]; the images as
    /// [`PIXELS`]).
    pub fn tensors(&self) -> Vec<TensorId> {
        self.ends().into_iter().map(|(t, _)| t).collect()
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
    /// cell per step, [`PlanOp::launch_ends`]).
    pub fn dispatches(&self, grad: bool) -> usize {
        self.ops(grad).map(|op| op.launch_ends().len()).sum()
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
