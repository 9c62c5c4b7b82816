//! The loss heads (`shaders/loss.wgsl`, `cpu/loss.rs`): softmax cross-entropy and the autoencoder's
//! sigmoid + mean squared error, their per-chunk arguments, and the [`LossHeads`] trait.

use anyhow::Result;

use super::backend::Memory;
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
    /// Records a loss head: per-image losses into `partials`, d loss / d outputs into `grad`. Targets
    /// are the labels (cross-entropy) or the image buffer (reconstruction).
    fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &Self::Buffer,
        targets: &Self::Buffer,
        grad: &Self::Buffer,
        partials: &Self::Buffer,
    ) -> Result<Self::Command>;
}
