//! A plan walked without a device (issue 26): for every operation, the workgroup grid its GPU dispatch
//! takes ([`crate::backend::grids::op_groups`]) and the furthest element it touches in each tensor
//! ([`PlanOp::ends`], from the kernels' own indexing). [`check`] holds them to an adapter's per-dimension
//! limit and to the tensors' lengths, so that data-centre sizes (B up to 816, chunks of thousands of
//! images) are tested where no such GPU is.

use anyhow::{bail, Result};

use crate::backend::grids::op_groups;
use crate::ops::plan::{Op, Plan, TensorId};
use crate::ops::PlanOp;

/// One kernel launch of an operation, as a GPU would make it.
#[derive(Clone, Debug, PartialEq)]
pub struct Walked {
    /// [`PlanOp::kind`].
    pub kind: &'static str,
    /// Workgroups along x, y, z.
    pub groups: [u64; 3],
    /// Per tensor touched: one past the furthest element (pixels for the image tensor).
    pub ends: Vec<(TensorId, u64)>,
}

/// The grids and furthest elements of one operation's launches ([`PlanOp::launch_ends`]), on an adapter
/// with `max` workgroups per dimension: one, or for an LSTM sequence operation one per launch.
pub fn walk_op(op: &Op, max: u32) -> Vec<Walked> {
    let groups = op_groups(op, max);
    let launches = op.launch_ends();
    debug_assert_eq!(groups.len(), launches.len(), "{}: grids and launches disagree", op.kind());
    launches.into_iter().zip(groups).map(|((kind, ends), groups)| Walked { kind, groups, ends }).collect()
}

/// Checks every operation of `plan` (forward and backward, every chunk): each grid dimension at most
/// `max`, every element touched inside its tensor, and every tensor addressable with the kernels'
/// 32-bit indices. Returns the number of kernel launches checked ([`Plan::dispatches`]).
///
/// # Errors
/// The first operation that breaks a rule, with its chunk, kind, grid or tensor.
pub fn check(plan: &Plan, max: u32) -> Result<usize> {
    let mut checked = 0;
    for (i, chunk) in plan.chunks.iter().enumerate() {
        for w in chunk.forward.iter().chain(&chunk.backward).flat_map(|op| walk_op(op, max)) {
            if w.groups.iter().any(|&g| g > max as u64 || g == 0) {
                bail!("chunk {i}: {} takes a grid of {:?} workgroups (limit {max} per dimension)", w.kind, w.groups);
            }
            for (t, end) in &w.ends {
                let tensor = &plan.tensors[*t];
                if *end > tensor.len as u64 {
                    bail!(
                        "chunk {i}: {} reaches element {end} of tensor '{}', which holds {}",
                        w.kind,
                        tensor.name,
                        tensor.len
                    );
                }
                if *end > u32::MAX as u64 {
                    bail!("chunk {i}: {} indexes tensor '{}' past 32 bits ({end})", w.kind, tensor.name);
                }
            }
            checked += 1;
        }
    }
    Ok(checked)
}
