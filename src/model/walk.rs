//! A plan walked without a device (issue 26): for every operation, the workgroup grid its GPU dispatch
//! takes ([`crate::backend::grids::op_groups`]) and the furthest element it touches in each tensor, from
//! the kernels' own indexing (`shaders/*.wgsl`). [`check`] holds them to an adapter's per-dimension
//! limit and to the tensors' lengths, so that data-centre sizes (B up to 816, chunks of thousands of
//! images) are tested where no such GPU is.

use anyhow::{bail, Result};

use crate::backend::grids::{self, op_groups};
use crate::ops::plan::{Op, Operand, Plan, TensorId, GRADS, LABELS, PARTIALS, PIXELS, WEIGHTS};
use crate::ops::{layout_end, partial_slots};

/// One operation as a GPU would launch it.
#[derive(Clone, Debug, PartialEq)]
pub struct Walked {
    /// [`Op::kind`].
    pub kind: &'static str,
    /// Workgroups along x, y, z.
    pub groups: [u64; 3],
    /// Per tensor touched: one past the furthest element (pixels for the image tensor).
    pub ends: Vec<(TensorId, u64)>,
}

fn operand(o: Operand) -> TensorId {
    match o {
        Operand::Tensor(t) => t,
        Operand::Images => PIXELS,
    }
}

/// The grid and furthest elements of one operation, on an adapter with `max` workgroups per dimension.
pub fn walk_op(op: &Op, max: u32) -> Walked {
    let u = |v: usize| v as u64;
    let ends: Vec<(TensorId, u64)> = match op {
        Op::MatMul { shape: p, a, b, c } => vec![
            (operand(a.0), u(layout_end(&a.1, p.batches, p.m, p.k))),
            (operand(b.0), u(layout_end(&b.1, p.batches, p.k, p.n))),
            (c.0, u(layout_end(&c.1, p.batches, p.m, p.n))),
        ],
        Op::ActForward { z, out, len, .. } => vec![(*z, u(*len)), (*out, u(*len))],
        Op::ActBackward { z, grad, len, .. } => vec![(*z, u(*len)), (*grad, u(*len))],
        Op::Loss { chunk: c, outputs, grad, head } => {
            let rows = u(c.batches.saturating_sub(1) * c.out_batch_stride + c.images * c.width);
            let targets = u(c.batches.saturating_sub(1) * c.img_bs + c.first_image + c.images);
            let target = match head {
                crate::ops::Head::CrossEntropy => (LABELS, targets),
                crate::ops::Head::MseSigmoid => (PIXELS, targets * c.width as u64),
            };
            let slots = u((c.batches.saturating_sub(1) * c.parts + c.part_off + partial_slots(c.images)) * 2);
            vec![(*outputs, rows), (*grad, rows), target, (PARTIALS, slots)]
        }
        Op::ConvForward { conv: c, input, out } | Op::ConvWeightGrad { conv: c, input, grad_out: out, .. } => {
            let images = matches!(input, Operand::Images);
            let input_end = u(c.in_off + c.batches.saturating_sub(1) * c.in_bs(images) + c.images * c.in_map());
            let params = u(c.batches.saturating_sub(1) * c.n_prm
                + (c.w_off + c.weight_len()).max(c.b_off.map_or(0, |b| b + c.out_c)));
            let vectors = if matches!(op, Op::ConvForward { .. }) { WEIGHTS } else { GRADS };
            vec![(operand(*input), input_end), (vectors, params), (*out, u(grids::conv_forward_len(c)))]
        }
        Op::ConvInputGrad { conv: c, grad_out, grad_in } => vec![
            (WEIGHTS, u(c.batches.saturating_sub(1) * c.n_prm + c.w_off + c.weight_len())),
            (*grad_out, u(grids::conv_forward_len(c))),
            (*grad_in, u(c.in_off + grids::conv_input_grad_len(c))),
        ],
        Op::PoolForward { pool, src, dst } => vec![(*src, u(pool.in_len())), (*dst, u(pool.out_len()))],
        Op::PoolBackward { pool, input, grad_out, grad_in } => {
            vec![(*input, u(pool.in_len())), (*grad_out, u(pool.out_len())), (*grad_in, u(pool.in_len()))]
        }
        Op::GatherPixels { step, perm, out } => {
            let s = grids::gather_step(*step);
            let images = u((s.batches.saturating_sub(1) * s.img_bs + s.first_image + s.images) * s.shape.pixels());
            vec![(PIXELS, images), (*perm, u(s.shape.pixels())), (*out, u(grids::gather_len(*step)))]
        }
        Op::LstmCellForward { step: s, gates, cells, hidden, last } => {
            let bn = u(s.batches * s.images);
            let (h, steps) = (u(s.shape.hidden), u(s.shape.steps));
            let mut ends = vec![
                (WEIGHTS, u(s.batches.saturating_sub(1) * s.n_prm + s.bias_ih.max(s.bias_hh) + s.shape.gates())),
                (*gates, (bn.saturating_sub(1) * steps + u(s.step) + 1) * 4 * h),
                (*cells, (bn.saturating_sub(1) * (steps + 1) + u(s.step) + 2) * h),
            ];
            if s.step + 1 < s.shape.steps {
                ends.push((*hidden, (bn.saturating_sub(1) * steps + u(s.step) + 2) * h));
            } else {
                ends.push((*last, bn * h));
            }
            ends
        }
        Op::LstmCellBackward { step: s, gates, cells, dh, dc } => {
            let bn = u(s.batches * s.images);
            let (h, steps) = (u(s.shape.hidden), u(s.shape.steps));
            vec![
                (*gates, (bn.saturating_sub(1) * steps + u(s.step) + 1) * 4 * h),
                (*cells, (bn.saturating_sub(1) * (steps + 1) + u(s.step) + 2) * h),
                (*dh, bn * h),
                (*dc, bn * h),
            ]
        }
    };
    Walked { kind: op.kind(), groups: op_groups(op, max), ends }
}

/// Checks every operation of `plan` (forward and backward, every chunk): each grid dimension at most
/// `max`, every element touched inside its tensor, and every tensor addressable with the kernels'
/// 32-bit indices. Returns the number of operations checked.
///
/// # Errors
/// The first operation that breaks a rule, with its chunk, kind, grid or tensor.
pub fn check(plan: &Plan, max: u32) -> Result<usize> {
    let mut checked = 0;
    for (i, chunk) in plan.chunks.iter().enumerate() {
        for op in chunk.forward.iter().chain(&chunk.backward) {
            let w = walk_op(op, max);
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
