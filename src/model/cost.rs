//! What one batched evaluation asks of a device, computed from the network's plan without running
//! anything: image chunk, dispatches, submissions and read-backs, peak memory, FLOPs; and the dispatch
//! goal per network.

use anyhow::Result;
use serde::Serialize;

use super::description::LayerKind;
use super::{chunk_capacity, Arch, Network, Plan};
use crate::backend::ChunkBudget;
use crate::ops::Act;

/// What one batched evaluation asks of the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluationPlan {
    pub model: Arch,
    pub batch: usize,
    pub images: usize,
    pub gradient: bool,
    pub chunk_images: usize,
    pub chunks: usize,
    pub dispatches_per_evaluation: usize,
    /// One compute pass per evaluation (`Evaluator::run`).
    pub submissions_per_evaluation: usize,
    /// One read-back of the per-vector loss partials (`Evaluator::results`).
    pub readbacks_per_evaluation: usize,
    /// Weights, gradients, loss partials, scratch tensors and the images (packed bytes on a GPU).
    pub peak_bytes: u64,
    pub flops_per_evaluation: f64,
}

/// The evaluation of `batch` vectors of `arch` on `images` images within `budget`.
pub fn plan_evaluation(
    arch: Arch,
    batch: usize,
    images: usize,
    budget: ChunkBudget,
    gradient: bool,
) -> Result<EvaluationPlan> {
    let net = Network { arch, act: Act::Softplus };
    let chunk = chunk_capacity(net, budget, batch, images);
    let plan = Plan::new(net, 0..images, images, batch, chunk, 0)?;
    let external: u64 = plan.tensors[..3].iter().map(|t| t.len as u64 * 4).sum();
    let image_bytes = (images * arch.description().input_len()).div_ceil(4) as u64 * 4 + images as u64 * 4;
    let dispatches = plan.dispatches(gradient);
    Ok(EvaluationPlan {
        model: arch,
        batch,
        images,
        gradient,
        chunk_images: chunk,
        chunks: plan.chunks.len(),
        dispatches_per_evaluation: dispatches,
        submissions_per_evaluation: 1,
        readbacks_per_evaluation: 1,
        peak_bytes: external + plan.scratch_bytes() + image_bytes,
        flops_per_evaluation: plan.flops(gradient),
    })
}

/// The dispatches per evaluation (loss and gradient) the engine aims to stay within: above a few
/// thousand a pass's launch overhead rivals its arithmetic on a data-centre GPU. LeNet and the LSTM
/// meet them at B = 51 on 60,000 images on the `h100` profile (924 and 3,840); the batched path
/// evaluations keep them through `path::batching::pairs_per_batch`.
pub fn dispatch_goal(arch: Arch) -> usize {
    // a recurrent layer takes a product and a cell launch per step and image row
    let recurrent = arch.description().layers.iter().any(|l| matches!(l.kind, LayerKind::Lstm { .. }));
    if recurrent {
        6_000
    } else {
        2_000
    }
}
