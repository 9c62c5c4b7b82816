//! A plan walked without a device (issue 26): for every operation, the workgroup grid its GPU dispatch
//! takes ([`crate::backend::grids::op_groups`]) and the furthest element it touches in each tensor, from
//! the kernels' own indexing (`shaders/*.wgsl`). [`check`] holds them to an adapter's per-dimension
//! limit and to the tensors' lengths, so that data-centre sizes (B up to 816, chunks of thousands of
//! images) are tested where no such GPU is.

use anyhow::{bail, Result};

use crate::backend::grids::{self, launch_groups, op_groups};
use crate::ops::plan::{Op, Operand, Plan, TensorId, GRADS, LABELS, PARTIALS, PIXELS, WEIGHTS};
use crate::ops::{layout_end, partial_slots, Layout, LstmLaunch, LstmOperands, Product};

/// One kernel launch of an operation, as a GPU would make it.
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

/// The grids and furthest elements of one operation's dispatches, on an adapter with `max` workgroups
/// per dimension: one, or for an LSTM sequence operation one per launch.
pub fn walk_op(op: &Op, max: u32) -> Vec<Walked> {
    let launches = match op {
        Op::LstmForward { seq, tensors } => Some((seq.forward_launches(), tensors)),
        Op::LstmBackward { seq, tensors, accumulate } => Some((seq.backward_launches(*accumulate), tensors)),
        _ => None,
    };
    if let Some((launches, tensors)) = launches {
        return launches.iter().map(|l| walk_launch(l, tensors, max)).collect();
    }
    vec![Walked { kind: op.kind(), groups: op_groups(op, max)[0], ends: op_ends(op) }]
}

/// The furthest element of each tensor a single-launch operation touches.
fn op_ends(op: &Op) -> Vec<(TensorId, u64)> {
    let u = |v: usize| v as u64;
    match op {
        Op::MatMul { shape: p, a, b, c } => product_ends(p, (operand(a.0), &a.1), (operand(b.0), &b.1), (c.0, &c.1)),
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
        Op::LstmForward { .. } | Op::LstmBackward { .. } => Vec::new(), // walked per launch
    }
}

/// The furthest elements of a product's operands.
fn product_ends(
    p: &Product,
    a: (TensorId, &Layout),
    b: (TensorId, &Layout),
    c: (TensorId, &Layout),
) -> Vec<(TensorId, u64)> {
    vec![
        (a.0, layout_end(a.1, p.batches, p.m, p.k) as u64),
        (b.0, layout_end(b.1, p.batches, p.k, p.n) as u64),
        (c.0, layout_end(c.1, p.batches, p.m, p.n) as u64),
    ]
}

/// One launch of an LSTM sequence operation on the plan's tensors `t`: its kernel's indexing
/// (`shaders/lstm.wgsl`, `shaders/matmul.wgsl`).
fn walk_launch(launch: &LstmLaunch, t: &LstmOperands<TensorId>, max: u32) -> Walked {
    let u = |v: usize| v as u64;
    let (kind, ends) = match *launch {
        LstmLaunch::Product { shape, a, b, c } => {
            ("matmul", product_ends(&shape, (t.get(a.0), &a.1), (t.get(b.0), &b.1), (t.get(c.0), &c.1)))
        }
        LstmLaunch::CellForward(s) => {
            let bn = u(s.batches * s.images);
            let (h, steps) = (u(s.shape.hidden), u(s.shape.steps));
            let mut ends = vec![
                (t.weights, u(s.batches.saturating_sub(1) * s.n_prm + s.bias_ih.max(s.bias_hh) + s.shape.gates())),
                (t.gates, (bn.saturating_sub(1) * steps + u(s.step) + 1) * 4 * h),
                (t.cells, (bn.saturating_sub(1) * (steps + 1) + u(s.step) + 2) * h),
            ];
            if s.step + 1 < s.shape.steps {
                ends.push((t.hidden, (bn.saturating_sub(1) * steps + u(s.step) + 2) * h));
            } else {
                ends.push((t.last, bn * h));
            }
            ("lstm-cell", ends)
        }
        LstmLaunch::CellBackward(s) => {
            let bn = u(s.batches * s.images);
            let (h, steps) = (u(s.shape.hidden), u(s.shape.steps));
            let ends = vec![
                (t.gates, (bn.saturating_sub(1) * steps + u(s.step) + 1) * 4 * h),
                (t.cells, (bn.saturating_sub(1) * (steps + 1) + u(s.step) + 2) * h),
                (t.dh, bn * h),
                (t.dc, bn * h),
            ];
            ("lstm-cell-backward", ends)
        }
    };
    Walked { kind, groups: launch_groups(launch, max), ends }
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
