//! How many path pairs a sweep optimises together on a device: as many as fit its memory and keep each
//! evaluation within the network's dispatch goal.

use crate::backend::ChunkBudget;
use crate::model::{batch_fits, dispatch_goal, plan_evaluation, Arch, Network};
use crate::ops::Act;

/// The most pairs [`pairs_per_batch`] puts in one batch.
pub const MAX_PAIRS_PER_BATCH: usize = 16;

/// How many path pairs a sweep optimises together on a GPU with `budget` (P; one evaluation of
/// P x `points` vectors on `images` images per iteration): the largest P <= [`MAX_PAIRS_PER_BATCH`]
/// whose evaluator fits the budget (`model::batch_fits`) and whose evaluation keeps within the
/// network's [`dispatch_goal`] — more pairs shrink the image chunks, and past the goal batching would
/// undo them; 1 when even one pair misses the goal (small budgets). The CPU backend takes 1 (its
/// products use every core at one pair).
pub fn pairs_per_batch(arch: Arch, budget: ChunkBudget, points: usize, images: usize) -> usize {
    let net = Network { arch, act: Act::Softplus };
    let goal = dispatch_goal(arch);
    (1..=MAX_PAIRS_PER_BATCH)
        .rev()
        .find(|&p| {
            batch_fits(net, budget, p * points)
                && plan_evaluation(arch, p * points, images.max(1), budget, true)
                    .is_ok_and(|e| e.dispatches_per_evaluation <= goal)
        })
        .unwrap_or(1)
}

/// [`pairs_per_batch`] on `device` (1 on the CPU backend).
pub fn device_pairs_per_batch(net: Network, device: &crate::backend::Device, points: usize, images: usize) -> usize {
    if device.is_cpu() {
        return 1;
    }
    pairs_per_batch(net.arch, device.chunk_budget(), points, images)
}
