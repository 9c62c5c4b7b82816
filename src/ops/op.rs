//! What one operation of a plan is, written once beside its op family: the [`PlanOp`] trait (its name,
//! its FLOPs, the furthest element it touches in each tensor, and how any [`Backend`] records it), the
//! numbered tensors an operation names ([`TensorId`], [`Operand`]) and the tensors every plan has.
//!
//! Each op family's module (`ops/products.rs`, `activation.rs`, `loss.rs`, `conv.rs`, `pool.rs`,
//! `lstm.rs`) defines its plan operations as structs implementing [`PlanOp`]; [`super::plan::Op`] lists
//! them. The evaluator records a plan on a device, and the device-free walk checks it against an
//! adapter's limits, both through this trait, so an operation's semantics are stated in one place.

use anyhow::Result;

use super::backend::Backend;
use super::handles::Source;

/// Index of a tensor in [`super::plan::Plan::tensors`].
pub type TensorId = usize;

/// The B x N_prm weight vectors (written by the caller before each evaluation).
pub const WEIGHTS: TensorId = 0;
/// The B x N_prm gradients of the mean loss.
pub const GRADS: TensorId = 1;
/// Per-vector partial sums `[vector][slot][loss, correct]`, added by the host.
pub const PARTIALS: TensorId = 2;
/// The image buffer of the dataset (bound as [`Operand::Images`]).
pub const PIXELS: TensorId = 3;
/// The labels (u32).
pub const LABELS: TensorId = 4;
/// Tensors the evaluator supplies; a plan's own scratch tensors follow.
pub const EXTERNAL: usize = 5;

/// A matrix-product or convolution operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Tensor(TensorId),
    /// The image buffer, pixels read as values in [0, 1].
    Images,
}

impl Operand {
    /// The tensor the operand reads ([`PIXELS`] for the images).
    pub fn tensor(self) -> TensorId {
        match self {
            Operand::Tensor(t) => t,
            Operand::Images => PIXELS,
        }
    }

    /// The operand as a backend reads it, from the plan's tensors in [`TensorId`] order.
    pub fn source<'a, B>(self, t: &[&'a B]) -> Source<'a, B> {
        match self {
            Operand::Tensor(i) => Source::F32(t[i]),
            Operand::Images => Source::Images(t[PIXELS]),
        }
    }
}

/// One operation of a plan: everything the engine knows about it outside the kernels.
pub trait PlanOp {
    /// The operation's kind, for counts and printing.
    fn kind(&self) -> &'static str;

    /// Floating-point operations of the matrix products and convolutions (2 per multiply-add); the
    /// element-wise work is not counted.
    fn flops(&self) -> f64 {
        0.0
    }

    /// Per tensor touched: one past the furthest element, from the kernels' own indexing (pixels for
    /// the image tensor), so that a plan is checked against its tensors' lengths without a device.
    fn ends(&self) -> Vec<(TensorId, u64)>;

    /// The kernel launches a GPU makes of the operation, each as its kernel's kind and its
    /// [`PlanOp::ends`]: the operation itself, unless it is a sequence of launches (the LSTM's
    /// recurrence, `ops/lstm_sequence.rs`).
    fn launch_ends(&self) -> Vec<(&'static str, Vec<(TensorId, u64)>)> {
        vec![(self.kind(), self.ends())]
    }

    /// Records the operation on `backend`; `t` holds the plan's tensors in [`TensorId`] order.
    ///
    /// # Errors
    /// The backend's checks of the call (an operand past its buffer, aliasing), device errors.
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command>;
}

/// An element count as the `u64` of [`PlanOp::ends`].
pub(crate) fn end(n: usize) -> u64 {
    n as u64
}
