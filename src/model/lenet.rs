//! LeNet-5 as GPU dispatches (SPEC §1.2): conv 5x5 pad 2 (1->6) + bias, activation, 2x2 average pool,
//! conv 5x5 (6->16) + bias, activation, pool, flatten (channel, row, col), then the dense stack
//! 400-120-84-10 with biases. Maps are [vector][image][channel][row][col], so the flattened pool output
//! is directly the dense stack's input.

use anyhow::Result;

use super::evaluator::{Chunk, ChunkPlan, PlanInputs};
use super::mlp::{Dense, Input, Mlp};
use super::Arch;
use crate::gpu::{Conv, Head, Source};

/// Scratch values per image and vector (the conv1 output), for chunk sizing.
pub(super) const WIDTH: usize = 6 * 28 * 28;

fn dense(p: &PlanInputs) -> Vec<Dense> {
    let o = Arch::Lenet.offsets();
    vec![
        Dense { inp: 400, out: 120, w_off: o[4], b_off: Some(o[5]), act: Some(p.act) },
        Dense { inp: 120, out: 84, w_off: o[6], b_off: Some(o[7]), act: Some(p.act) },
        Dense { inp: 84, out: 10, w_off: o[8], b_off: Some(o[9]), act: None },
    ]
}

pub(super) fn plan(p: &PlanInputs, chunks: &[Chunk]) -> Result<Vec<ChunkPlan>> {
    let (gpu, b, cap) = (p.gpu, p.batch, p.chunk_cap);
    let o = Arch::Lenet.offsets();
    let map = |len: usize, name: &str| gpu.zeros(b * cap * len, name);
    let (z1, a1, d1) = (map(WIDTH, "conv1 z")?, map(WIDTH, "conv1 a")?, map(WIDTH, "conv1 grad")?);
    let (p1, dp1) = (map(6 * 14 * 14, "pool1")?, map(6 * 14 * 14, "pool1 grad")?);
    let (z2, a2, d2) = (map(1600, "conv2 z")?, map(1600, "conv2 a")?, map(1600, "conv2 grad")?);
    let (p2, dp2) = (map(400, "pool2")?, map(400, "pool2 grad")?);
    let mlp = Mlp::new(p, dense(p), Head::CrossEntropy)?;
    let features = Input::Features { values: &p2, grad: &dp2 };
    chunks
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            let c = ch.len;
            let conv1 = Conv {
                images: c,
                batches: b,
                in_c: 1,
                in_hw: 28,
                out_c: 6,
                ksize: 5,
                pad: 2,
                in_off: ch.first * 784,
                w_off: o[0],
                b_off: o[1],
                n_prm: p.n_prm,
                img_bs: p.img_bs,
            };
            let conv2 = Conv { in_c: 6, in_hw: 14, out_c: 16, pad: 0, in_off: 0, w_off: o[2], b_off: o[3], ..conv1 };
            let images = Source::Images(&p.images.pixels);
            let mut forward = vec![
                gpu.conv_forward(conv1, images, p.weights, &z1)?,
                gpu.activation_forward(p.act, &z1, &a1, b * c * WIDTH)?,
                gpu.avg_pool(false, b * c * 6, 28, &a1, &p1)?,
                gpu.conv_forward(conv2, Source::F32(&p1), p.weights, &z2)?,
                gpu.activation_forward(p.act, &z2, &a2, b * c * 1600)?,
                gpu.avg_pool(false, b * c * 16, 10, &a2, &p2)?,
            ];
            forward.extend(mlp.forward(p, ch, features)?);
            let acc = i > 0;
            let mut backward = mlp.backward(p, ch, features, acc)?;
            backward.extend([
                gpu.avg_pool(true, b * c * 16, 10, &dp2, &d2)?,
                gpu.activation_backward(p.act, &z2, &d2, b * c * 1600)?,
                gpu.conv_weight_grad(conv2, Source::F32(&p1), &d2, p.grads, acc)?,
                gpu.conv_input_grad(conv2, p.weights, &d2, &dp1)?,
                gpu.avg_pool(true, b * c * 6, 28, &dp1, &d1)?,
                gpu.activation_backward(p.act, &z1, &d1, b * c * WIDTH)?,
                gpu.conv_weight_grad(conv1, images, &d1, p.grads, acc)?,
            ]);
            Ok(ChunkPlan { forward, backward })
        })
        .collect()
}
