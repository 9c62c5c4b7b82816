//! What one batched evaluation asks of a device, computed from the network's plan without running
//! anything: image chunk, dispatches, submissions and read-backs, peak memory, FLOPs; the device bytes
//! of an evaluator (what the commands' memory estimates add up); and the dispatch goal per network.

use anyhow::Result;
use serde::Serialize;

use super::description::LayerKind;
use super::{chunk_capacity, Arch, Network, Plan};
use crate::backend::ChunkBudget;
use crate::ops::plan::{Init, EXTERNAL, LABELS, PIXELS, WEIGHTS};
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
        peak_bytes: allocated_bytes(&plan, false) + image_bytes,
        flops_per_evaluation: plan.flops(gradient),
    })
}

/// Bytes an evaluator of `plan` allocates (`Evaluator::lower`): weights, gradients, loss partials
/// and the scratch tensors; the images are the caller's and shared. With `touched_only`, the tensors
/// an evaluation without gradients never writes are left out (the gradients, the backward pass's
/// scratch): the CPU backend's zero-filled buffers take memory only where written.
fn allocated_bytes(plan: &Plan, touched_only: bool) -> u64 {
    let mut used = vec![!touched_only; plan.tensors.len()];
    for t in plan.ops(false).flat_map(|op| op.tensors()) {
        used[t] = true;
    }
    used[WEIGHTS] = true;
    used[PIXELS] = false;
    used[LABELS] = false;
    let written = |(i, t): &(usize, &crate::ops::plan::Tensor)| used[*i] || (*i >= EXTERNAL && t.init != Init::Zeros);
    plan.tensors.iter().enumerate().filter(written).map(|(_, t)| t.len as u64 * 4).sum()
}

/// Device bytes of an evaluator of `batch` vectors of `net` on `images` images, with the image chunk it
/// takes within `budget` with its cache aim sized for `aim` vectors ([`super::chunk_capacity_aimed`];
/// `aim` = `batch` for [`super::Evaluator::new`]'s): weights and gradients (`batch` x N_prm values
/// each), loss partials and scratch tensors. The images are not counted: evaluators share them. With
/// `touched_only` (an evaluator that never computes gradients, on the CPU backend), only the tensors
/// its loss evaluations write.
///
/// # Errors
/// The network does not plan (see [`Plan::new`]).
pub fn evaluator_bytes(
    net: Network,
    (aim, batch): (usize, usize),
    images: usize,
    budget: ChunkBudget,
    touched_only: bool,
) -> Result<u64> {
    let chunk = super::chunk_capacity_aimed(net, budget, (aim, batch), images);
    Ok(allocated_bytes(&Plan::new(net, 0..images, images, batch, chunk, 0)?, touched_only))
}

/// Device bytes of an evaluator of `batch` vectors each on its own `per_vector` images, in one chunk
/// ([`super::Evaluator::per_vector`]: a mini-batch of independent runs), gradients included.
///
/// # Errors
/// As [`evaluator_bytes`].
pub fn per_vector_evaluator_bytes(net: Network, per_vector: usize, batch: usize) -> Result<u64> {
    let loaded = per_vector * batch;
    Ok(allocated_bytes(&Plan::new(net, 0..per_vector, loaded, batch, per_vector, per_vector)?, false))
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
