//! LeNet-5 as a plan (docs/networks.md): conv 5x5 pad 2 (1->6) + bias, activation, 2x2 average pool,
//! conv 5x5 (6->16) + bias, activation, pool, flatten (channel, row, col), then the dense stack
//! 400-120-84-10 with biases. Maps are [vector][image][channel][row][col], so the flattened pool output
//! is directly the dense stack's input.

use super::builder::{Builder, Chunk};
use super::input::INPUT_PIXELS;
use super::mlp::{Dense, Input, Mlp};
use super::Arch;
use crate::ops::plan::{ChunkOps, Op, Operand};
use crate::ops::{Conv, Head, Pool, PoolKind};

/// Scratch values per image and vector (the conv1 output), for chunk sizing.
pub(super) const WIDTH: usize = 6 * 28 * 28;

/// The dense stack: spec tensors 4, 6, 8 with their biases 5, 7, 9; the activation after the first two.
fn dense(p: &Builder) -> Vec<Dense> {
    [4, 6, 8].into_iter().map(|w| Dense::from_spec(Arch::Lenet, w, Some(w + 1), (w < 8).then_some(p.act))).collect()
}

pub(super) fn plan(p: &mut Builder, chunks: &[Chunk]) -> Vec<ChunkOps> {
    let (b, cap, act) = (p.batch, p.chunk_cap, p.act);
    let o = Arch::Lenet.offsets();
    let mut map = |name: &str, len: usize| p.tensor(name, b * cap * len);
    let (z1, a1, d1) = (map("conv1 z", WIDTH), map("conv1 a", WIDTH), map("conv1 grad", WIDTH));
    let (p1, dp1) = (map("pool1", 6 * 14 * 14), map("pool1 grad", 6 * 14 * 14));
    let (z2, a2, d2) = (map("conv2 z", 1600), map("conv2 a", 1600), map("conv2 grad", 1600));
    let (p2, dp2) = (map("pool2", 400), map("pool2 grad", 400));
    let mlp = Mlp::new(p, dense(p), Head::CrossEntropy);
    let features = Input::Features { values: p2, grad: Some(dp2) };
    let p = &*p;
    chunks
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            let c = ch.len;
            let conv1 = Conv {
                images: c,
                batches: b,
                in_c: 1,
                in_h: 28,
                in_w: 28,
                out_c: 6,
                ksize: 5,
                stride: 1,
                pad: 2,
                in_off: ch.first * INPUT_PIXELS,
                w_off: o[0],
                b_off: Some(o[1]),
                n_prm: p.n_prm,
                img_bs: p.img_bs,
            };
            let conv2 = Conv {
                in_c: 6,
                in_h: 14,
                in_w: 14,
                out_c: 16,
                pad: 0,
                in_off: 0,
                w_off: o[2],
                b_off: Some(o[3]),
                ..conv1
            };
            let pool =
                |planes, in_hw| Pool { kind: PoolKind::Avg, planes, in_h: in_hw, in_w: in_hw, kernel: 2, stride: 2 };
            let (pool1, pool2) = (pool(b * c * 6, 28), pool(b * c * 16, 10));
            let mut forward = vec![
                Op::ConvForward { conv: conv1, input: Operand::Images, out: z1 },
                Op::ActForward { act, z: z1, out: a1, len: b * c * WIDTH },
                Op::PoolForward { pool: pool1, src: a1, dst: p1 },
                Op::ConvForward { conv: conv2, input: Operand::Tensor(p1), out: z2 },
                Op::ActForward { act, z: z2, out: a2, len: b * c * 1600 },
                Op::PoolForward { pool: pool2, src: a2, dst: p2 },
            ];
            forward.extend(mlp.forward(p, ch, features));
            let accumulate = i > 0;
            let mut backward = mlp.backward(p, ch, features, accumulate);
            backward.extend([
                Op::PoolBackward { pool: pool2, input: a2, grad_out: dp2, grad_in: d2 },
                Op::ActBackward { act, z: z2, grad: d2, len: b * c * 1600 },
                Op::ConvWeightGrad { conv: conv2, input: Operand::Tensor(p1), grad_out: d2, accumulate },
                Op::ConvInputGrad { conv: conv2, grad_out: d2, grad_in: dp1 },
                Op::PoolBackward { pool: pool1, input: a1, grad_out: dp1, grad_in: d1 },
                Op::ActBackward { act, z: z1, grad: d1, len: b * c * WIDTH },
                Op::ConvWeightGrad { conv: conv1, input: Operand::Images, grad_out: d1, accumulate },
            ]);
            ChunkOps { first: ch.first, images: c, forward, backward }
        })
        .collect()
}
