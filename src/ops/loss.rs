//! The loss heads (`shaders/loss.wgsl`, `cpu/loss.rs`): softmax cross-entropy and the autoencoder's
//! sigmoid + mean squared error, their per-chunk arguments, and the [`LossHeads`] trait.

use anyhow::Result;

use super::backend::{Backend, Memory};
use super::op::{end, PlanOp, TensorId, LABELS, PARTIALS, PIXELS};
/// The loss on a network's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Cross-entropy of logits against labels (targets = the label buffer).
    CrossEntropy,
    /// Mean squared error of sigmoid(output) against the input image (targets = the image buffer).
    MseSigmoid,
}

/// Arguments of a loss head for one chunk of images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossChunk {
    pub images: usize,
    pub width: usize,
    pub first_image: usize,
    pub batches: usize,
    /// Stride between weight vectors in the output and gradient buffers.
    pub out_batch_stride: usize,
    /// First partial slot of this chunk; each chunk uses `partial_slots(images)` slots.
    pub part_off: usize,
    pub parts: usize,
    pub total_images: usize,
    /// Images per weight vector when each vector has its own images (0: all share them).
    pub img_bs: usize,
}

/// Partial sums (loss, correct) a loss head writes per weight vector for a chunk of `images`: one per
/// 256 images, summed by the host in f64.
pub fn partial_slots(images: usize) -> usize {
    images.div_ceil(256)
}

/// The loss heads of a backend.
pub trait LossHeads: Memory {
    /// Records a loss head: per-image losses into `partials`, d loss / d outputs into `grad.0` when
    /// `grad.1` (a loss-only evaluation passes false; the losses are the same bits either way, and a
    /// backend may write the gradient regardless: a GPU's kernel does, in the same dispatch). Targets
    /// are the labels (cross-entropy) or the image buffer (reconstruction).
    fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &Self::Buffer,
        targets: &Self::Buffer,
        grad: (&Self::Buffer, bool),
        partials: &Self::Buffer,
    ) -> Result<Self::Command>;
}

/// Plan operation: per-image losses of a chunk into [`PARTIALS`], d loss / d outputs into `grad`; the
/// targets are [`LABELS`] (cross-entropy) or the images [`PIXELS`] (reconstruction).
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    pub head: Head,
    pub chunk: LossChunk,
    pub outputs: TensorId,
    pub grad: TensorId,
}

impl Loss {
    /// The tensor the head reads its targets from: [`LABELS`] (cross-entropy) or the images [`PIXELS`]
    /// (reconstruction).
    pub fn targets(&self) -> TensorId {
        match self.head {
            Head::CrossEntropy => LABELS,
            Head::MseSigmoid => PIXELS,
        }
    }

    /// Records the head, writing the gradient when `gradient`.
    fn record_head<B: Backend>(&self, backend: &B, t: &[&B::Buffer], gradient: bool) -> Result<B::Command> {
        let (outputs, targets, grad) = (t[self.outputs], t[self.targets()], (t[self.grad], gradient));
        backend.loss_head(self.head, self.chunk, outputs, targets, grad, t[PARTIALS])
    }
}

impl PlanOp for Loss {
    fn kind(&self) -> &'static str {
        "loss"
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        let c = &self.chunk;
        let before = c.batches.saturating_sub(1);
        let rows = end(before * c.out_batch_stride + c.images * c.width);
        let targets = end(before * c.img_bs + c.first_image + c.images);
        let per_target = if self.head == Head::MseSigmoid { c.width as u64 } else { 1 };
        let slots = end((before * c.parts + c.part_off + partial_slots(c.images)) * 2);
        vec![(self.outputs, rows), (self.grad, rows), (self.targets(), targets * per_target), (PARTIALS, slots)]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        self.record_head(backend, t, true)
    }
}

/// A plan's [`Loss`] as a loss-only evaluation records it (without the gradient, [`LossHeads::loss_head`]):
/// the same operation, whose gradient nothing reads. Not an operation of plans: the evaluator records
/// it beside the chunk's head.
#[derive(Clone, Debug, PartialEq)]
pub struct LossWithoutGradient(pub Loss);

impl PlanOp for LossWithoutGradient {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        self.0.ends()
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        self.0.record_head(backend, t, false)
    }
}
