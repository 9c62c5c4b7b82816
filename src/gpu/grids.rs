//! The workgroup grid of every kernel launch, as pure functions of its shape: the GPU layer records
//! dispatches with them, and whole plans are checked against an adapter's per-dimension limit without a
//! device (through the backend layer, which re-exports them). Counts are `u64` so that an oversized grid
//! is seen, not truncated.

use crate::ops::plan::{
    ActBackward, ActForward, ConvForward, ConvInputGrad, ConvWeightGrad, GatherPixels, Loss, LstmBackward, LstmForward,
    MatMul, Op, PoolBackward, PoolForward,
};
use crate::ops::{partial_slots, Conv, LossChunk, LstmLaunch, Pool, Product};

/// Threads per workgroup of the element-wise kernels.
pub const ELEMENT_WORKGROUP: u64 = 256;

/// A grid of 256-thread workgroups covering `len` elements: at most `max` along x, the rest in rows
/// along y (the kernels index element `gid.x + gid.y * row`); returns the grid and `row`.
pub fn element_groups(len: usize, max: u32) -> ([u64; 3], u64) {
    let groups = (len as u64).div_ceil(ELEMENT_WORKGROUP).max(1);
    let x = groups.min(max.max(1) as u64);
    ([x, groups.div_ceil(x), 1], x * ELEMENT_WORKGROUP)
}

/// A batched matrix product: 64 x 64 tiles of C, one batch member per z.
pub fn matmul_groups(p: &Product) -> [u64; 3] {
    [p.n.div_ceil(64) as u64, p.m.div_ceil(64) as u64, p.batches as u64]
}

/// A loss head: one workgroup per 256 images (a partial-sum slot) and vector.
pub fn loss_groups(c: &LossChunk) -> [u64; 3] {
    [partial_slots(c.images) as u64, c.batches as u64, 1]
}

/// A convolution's weight gradient: one workgroup per weight and bias, per vector.
pub fn conv_weight_groups(c: &Conv) -> [u64; 3] {
    [(c.out_c * (c.in_c * c.ksize * c.ksize + 1)) as u64, c.batches as u64, 1]
}

/// Threads of a pooling kernel: one per output element forward, per input element backward.
pub fn pool_len(pool: &Pool, backward: bool) -> usize {
    if backward {
        pool.in_len()
    } else {
        pool.out_len()
    }
}

/// The grids of a plan operation's dispatches on an adapter with `max` workgroups per dimension, in
/// order: one, or for an LSTM sequence operation one per launch ([`launch_groups`]).
pub fn op_groups(op: &Op, max: u32) -> Vec<[u64; 3]> {
    let element = |len: usize| element_groups(len, max).0;
    let one = match op {
        Op::MatMul(MatMul { shape, .. }) => matmul_groups(shape),
        Op::ActForward(ActForward { len, .. }) | Op::ActBackward(ActBackward { len, .. }) => element(*len),
        Op::Loss(Loss { chunk, .. }) => loss_groups(chunk),
        Op::ConvForward(ConvForward { conv, .. }) => element(conv.out_total()),
        Op::ConvWeightGrad(ConvWeightGrad { conv, .. }) => conv_weight_groups(conv),
        Op::ConvInputGrad(ConvInputGrad { conv, .. }) => element(conv.in_grad_total()),
        Op::PoolForward(PoolForward { pool, .. }) => element(pool_len(pool, false)),
        Op::PoolBackward(PoolBackward { pool, .. }) => element(pool_len(pool, true)),
        Op::GatherPixels(GatherPixels { step, .. }) => element(step.gathered_len()),
        Op::LstmForward(LstmForward { seq, .. }) => {
            return seq.forward_launches().iter().map(|l| launch_groups(l, max)).collect()
        }
        Op::LstmBackward(LstmBackward { seq, accumulate, .. }) => {
            return seq.backward_launches(*accumulate).iter().map(|l| launch_groups(l, max)).collect()
        }
    };
    vec![one]
}

/// The grid of one launch of an LSTM sequence operation.
pub fn launch_groups(launch: &LstmLaunch, max: u32) -> [u64; 3] {
    match launch {
        LstmLaunch::Product { shape, .. } => matmul_groups(shape),
        LstmLaunch::CellForward(s) | LstmLaunch::CellBackward(s) => element_groups(s.cell_len(), max).0,
    }
}
