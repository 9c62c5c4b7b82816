//! One plan builder for any network description (issue 23, docs/networks.md §7): the layer list of a
//! [`Description`] lowered to plan operations, with every size, offset and scratch width taken from
//! [`Description::derive`]. The paper's four networks are built-in descriptions planned here too.
//!
//! A description is lowered in three parts:
//! * the *image part* (convolutions, pooling, flatten and activations on images), one stage per layer
//!   on [vector][image][channel][row][col] maps: `flatten` is a no-op on that layout, and an
//!   activation writes its own output tensor and shares the gradient tensor of its input (its
//!   backward turns d loss / d act(z) into d loss / d z in place, as the dense stack's do);
//! * or an LSTM over the input's rows (`Input::Rows`), whose image values are gathered once per chunk
//!   through a table that applies the optional pixel permutation and the row order ([`rows_table`]);
//! * then the *dense stack* (every `dense` layer, each optionally followed by one activation) and the
//!   loss head, as [`Mlp`] plans it.
//!
//! Gradient tensors exist only where a gradient flows: after the first layer with parameters.
//!
//! Not lowered yet (each an error that names the layer): an activation or a pooling applied directly
//! to the input image (the image buffer is bytes on a GPU: it would need an f32 copy first), two
//! activations in a row after a dense layer, an activation between an LSTM and the dense stack, an
//! LSTM without biases, and a network whose last layer before the loss head is not a dense layer.

use anyhow::{bail, Context, Result};

use super::builder::{Builder, Chunk};
use super::description::{Derived, Description, Head as LossHead, Input as DescInput, LayerKind, Shape};
use super::lstm::Lstm;
use super::mlp::{Dense, Input, Mlp};
use super::permutation::randperm;
use crate::ops::plan::{
    ActBackward, ActForward, ChunkOps, ConvForward, ConvInputGrad, ConvWeightGrad, Op, Operand, PoolBackward,
    PoolForward, TensorId,
};
use crate::ops::{Act, Conv, Head, LstmShape, Pool, PoolKind};

/// The gather table of an LSTM over `rows = [c, h, w]`: entry s·(c·w) + ci·w + x (step s, feature
/// (ci, x)) is the index in the flattened image of row s, column x of channel ci, after the optional
/// permutation `torch.randperm(c·h·w)` seeded `permute_seed` (`x'[j] = x[P[j]]`).
pub fn rows_table(c: usize, h: usize, w: usize, permute_seed: Option<u32>) -> Vec<u32> {
    let n = c * h * w;
    let perm = permute_seed.map_or_else(|| (0..n).collect(), |seed| randperm(n, seed));
    let mut table = Vec::with_capacity(n);
    for s in 0..h {
        for ci in 0..c {
            table.extend((0..w).map(|x| perm[(ci * h + s) * w + x] as u32));
        }
    }
    table
}

/// Scratch values per image and vector of a description's widest scratch tensor (for chunk sizing):
/// the largest output of a layer that writes a tensor (every layer but `flatten`), and for an LSTM its
/// gates over all steps.
pub fn description_width(derived: &Derived, desc: &Description) -> usize {
    let mut width = 1;
    let mut shape = derived.input;
    for (layer, out) in desc.layers.iter().zip(&derived.outputs) {
        width = width.max(match (layer.kind, shape) {
            (LayerKind::Flatten, _) => 1,
            (LayerKind::Lstm { hidden, .. }, Shape::Sequence { steps, .. }) => steps * 4 * hidden,
            _ => out.len(),
        });
        shape = *out;
    }
    width
}

/// A value between two stages of the image part: where it lives, its values per image and vector,
/// and the tensor of its gradient (none where no gradient flows).
#[derive(Clone, Copy)]
struct Value {
    src: Operand,
    len: usize,
    grad: Option<TensorId>,
}

/// One stage of the image part; sizes per image, completed per chunk.
enum Stage {
    /// `conv` has `images` 0 and `in_off` 0: set per chunk.
    Conv {
        conv: Conv,
        input: Operand,
        out: TensorId,
        grad_out: TensorId,
        grad_in: Option<TensorId>,
    },
    /// `pool` has `planes` = channels: times vectors and images per chunk.
    Pool {
        pool: Pool,
        input: TensorId,
        out: TensorId,
        grad_out: Option<TensorId>,
        grad_in: Option<TensorId>,
    },
    Act {
        act: Act,
        z: TensorId,
        out: TensorId,
        grad: Option<TensorId>,
        len: usize,
    },
}

impl Stage {
    fn forward(&self, p: &Builder, ch: &Chunk, input_len: usize) -> Op {
        let (b, c) = (p.batch, ch.len);
        match *self {
            Stage::Conv { conv, input, out, .. } => {
                Op::ConvForward(ConvForward { conv: chunk_conv(conv, input, ch, input_len), input, out })
            }
            Stage::Pool { pool, input, out, .. } => Op::PoolForward(PoolForward {
                pool: Pool { planes: b * c * pool.planes, ..pool },
                src: input,
                dst: out,
            }),
            Stage::Act { act, z, out, len, .. } => Op::ActForward(ActForward { act, z, out, len: b * c * len }),
        }
    }

    fn backward(&self, p: &Builder, ch: &Chunk, input_len: usize, accumulate: bool, ops: &mut Vec<Op>) {
        let (b, c) = (p.batch, ch.len);
        match *self {
            Stage::Conv { conv, input, grad_out, grad_in, .. } => {
                let conv = chunk_conv(conv, input, ch, input_len);
                ops.push(Op::ConvWeightGrad(ConvWeightGrad { conv, input, grad_out, accumulate }));
                if let Some(grad_in) = grad_in {
                    ops.push(Op::ConvInputGrad(ConvInputGrad { conv, grad_out, grad_in }));
                }
            }
            Stage::Pool { pool, input, grad_out: Some(grad_out), grad_in: Some(grad_in), .. } => {
                let pool = Pool { planes: b * c * pool.planes, ..pool };
                ops.push(Op::PoolBackward(PoolBackward { pool, input, grad_out, grad_in }));
            }
            Stage::Act { act, z, grad: Some(grad), len, .. } => {
                ops.push(Op::ActBackward(ActBackward { act, z, grad, len: b * c * len }))
            }
            Stage::Pool { .. } | Stage::Act { .. } => {}
        }
    }
}

/// A convolution of a chunk: its images and, on the image buffer, the chunk's first image.
fn chunk_conv(conv: Conv, input: Operand, ch: &Chunk, input_len: usize) -> Conv {
    let in_off = if input == Operand::Images { ch.first * input_len } else { 0 };
    Conv { images: ch.len, in_off, ..conv }
}

/// The kernels' loss head for a description's.
fn head_of(head: LossHead) -> Head {
    match head {
        LossHead::CrossEntropy { .. } => Head::CrossEntropy,
        LossHead::SigmoidMse => Head::MseSigmoid,
    }
}

/// The plan operations of every chunk of `desc` (with `derived` = `desc.derive()`), its tensors added
/// to `p`.
///
/// # Errors
/// A layer sequence this builder does not lower yet (see the module documentation), naming the layer.
pub(super) fn plan(p: &mut Builder, desc: &Description, derived: &Derived, chunks: &[Chunk]) -> Result<Vec<ChunkOps>> {
    let offsets: Vec<usize> = derived
        .params
        .iter()
        .scan(0, |off, t| {
            let start = *off;
            *off += t.len();
            Some(start)
        })
        .collect();
    // the offsets of layer i's tensors, in registration order
    let params_of = |i: usize| -> Vec<usize> {
        derived.params.iter().zip(&offsets).filter(|(t, _)| t.layer == i).map(|(_, &o)| o).collect()
    };
    let layers = &desc.layers;
    let split = layers.iter().position(|l| matches!(l.kind, LayerKind::Dense { .. })).unwrap_or(layers.len());
    let named = |i: usize| format!("layer {i} ({})", layers[i].kind.id());
    let input_len = desc.input_len();
    let (b, cap) = (p.batch, p.chunk_cap);

    // the LSTM: the first layer, on the input's rows, right before the dense stack
    if let Some(i) = layers.iter().position(|l| matches!(l.kind, LayerKind::Lstm { .. })) {
        let (LayerKind::Lstm { hidden, bias }, DescInput::Rows { c, h, w, permute_seed }) =
            (layers[i].kind, desc.input)
        else {
            bail!("{}: an lstm reads the input `rows = [C, H, W]`", named(i));
        };
        if i != 0 || split != 1 {
            bail!(
                "{}: an lstm must be the first layer, followed directly by a dense layer (no activation between, \
                 none missing)",
                named(i)
            );
        }
        if !bias {
            bail!(
                "{}: an lstm without biases is not supported by the plan builder yet; leave out `bias = false`",
                named(i)
            );
        }
        let shape = LstmShape { hidden, steps: h, features: c * w };
        let o = params_of(i);
        let classifier = dense_stack(layers, split, hidden, &params_of).with_context(|| named(i))?;
        let lstm = Lstm::new(
            p,
            shape,
            [o[0], o[1], o[2], o[3]],
            rows_table(c, h, w, permute_seed),
            classifier,
            head_of(desc.head),
        );
        return Ok(per_chunk(chunks, |ch, acc| (lstm.forward(p, ch), lstm.backward(p, ch, acc))));
    }

    // the image part
    let mut value = Value { src: Operand::Images, len: input_len, grad: None };
    let mut shape = derived.input;
    let mut stages: Vec<Stage> = Vec::new();
    let (mut convs, mut pools) = (0, 0);
    let mut i = 0;
    while i < split {
        let out_len = derived.outputs[i].len();
        // the output tensor of layer i, then those of the activations right after it, then (with `grad`)
        // the gradient tensor they all share; the index of the next layer
        let produce = |p: &mut Builder, name: &str, grad: bool| {
            let out =
                p.tensor(&format!("{name}{}", if name.starts_with("conv") { " z" } else { "" }), b * cap * out_len);
            let acts: Vec<(Act, TensorId)> = layers[i + 1..split]
                .iter()
                .map_while(|l| match l.kind {
                    LayerKind::Act(a) => Some(a.act()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|act| (act, p.tensor(&format!("{name} a"), b * cap * out_len)))
                .collect();
            let grad = grad.then(|| p.tensor(&format!("{name} grad"), b * cap * out_len));
            (out, acts, grad)
        };
        let (out, acts, grad) = match (layers[i].kind, shape) {
            (LayerKind::Conv2d { out, kernel, stride, padding, bias }, Shape::Image { c, h, w }) => {
                convs += 1;
                let (z, acts, grad) = produce(p, &format!("conv{convs}"), true);
                let o = params_of(i);
                let conv = Conv {
                    images: 0,
                    batches: b,
                    in_c: c,
                    in_h: h,
                    in_w: w,
                    out_c: out,
                    ksize: kernel,
                    stride,
                    pad: padding,
                    in_off: 0,
                    w_off: o[0],
                    b_off: bias.then(|| o[1]),
                    n_prm: p.n_prm,
                    img_bs: p.img_bs,
                };
                conv.check().with_context(|| named(i))?;
                let grad_out = grad.context("a convolution's output has a gradient")?;
                stages.push(Stage::Conv { conv, input: value.src, out: z, grad_out, grad_in: value.grad });
                (z, acts, grad)
            }
            (
                LayerKind::AvgPool { kernel, stride } | LayerKind::MaxPool { kernel, stride },
                Shape::Image { c, h, w },
            ) => {
                let Operand::Tensor(input) = value.src else {
                    bail!(
                        "{}: pooling directly on the input image is not supported by the plan builder yet; put a \
                         conv2d layer before it, or give the network images pooled beforehand",
                        named(i)
                    );
                };
                pools += 1;
                let kind =
                    if matches!(layers[i].kind, LayerKind::MaxPool { .. }) { PoolKind::Max } else { PoolKind::Avg };
                let (out, acts, grad) = produce(p, &format!("pool{pools}"), value.grad.is_some());
                let pool = Pool { kind, planes: c, in_h: h, in_w: w, kernel, stride };
                pool.check().with_context(|| named(i))?;
                stages.push(Stage::Pool { pool, input, out, grad_out: grad, grad_in: value.grad });
                (out, acts, grad)
            }
            (LayerKind::Flatten, _) => {
                i += 1;
                continue;
            }
            (LayerKind::Act(act), _) => {
                // an activation that follows no tensor-writing layer (after `flatten`): on the last value
                let Operand::Tensor(z) = value.src else {
                    bail!(
                        "{}: an activation directly on the input is not supported by the plan builder yet; put a \
                         layer with parameters (dense, conv2d) before it",
                        named(i)
                    );
                };
                let a = p.tensor(&format!("layer {i} a"), b * cap * value.len);
                stages.push(Stage::Act { act: act.act(), z, out: a, grad: value.grad, len: value.len });
                value.src = Operand::Tensor(a);
                i += 1;
                continue;
            }
            _ => bail!("{}: not supported by the plan builder in this place", named(i)),
        };
        value = Value { src: Operand::Tensor(out), len: out_len, grad };
        for &(act, a_out) in &acts {
            let Operand::Tensor(z) = value.src else { bail!("{}: internal: a layer output is not a tensor", named(i)) };
            stages.push(Stage::Act { act, z, out: a_out, grad: value.grad, len: value.len });
            value.src = Operand::Tensor(a_out);
        }
        i += 1 + acts.len();
        shape = derived.outputs[i - 1];
    }
    let dense = dense_stack(layers, split, value.len, &params_of)?;
    let input = match value.src {
        Operand::Images => Input::Images,
        Operand::Tensor(values) => Input::Features { values, grad: value.grad },
    };
    let mlp = Mlp::new(p, dense, head_of(desc.head));
    let p = &*p;
    Ok(per_chunk(chunks, |ch, acc| {
        let mut forward: Vec<Op> = stages.iter().map(|s| s.forward(p, ch, input_len)).collect();
        forward.extend(mlp.forward(p, ch, input));
        let mut backward = mlp.backward(p, ch, input, acc);
        for s in stages.iter().rev() {
            s.backward(p, ch, input_len, acc, &mut backward);
        }
        (forward, backward)
    }))
}

/// The chunks' operations from `ops(chunk, accumulate)` = (forward, backward).
fn per_chunk(chunks: &[Chunk], mut ops: impl FnMut(&Chunk, bool) -> (Vec<Op>, Vec<Op>)) -> Vec<ChunkOps> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            let (forward, backward) = ops(ch, i > 0);
            ChunkOps { first: ch.first, images: ch.len, forward, backward }
        })
        .collect()
}

/// The dense layers from `split` on, each with the activation that follows it, on `inp` features.
fn dense_stack(
    layers: &[super::description::Layer],
    split: usize,
    mut inp: usize,
    params_of: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Vec<Dense>> {
    let mut out = Vec::new();
    let mut i = split;
    while i < layers.len() {
        let LayerKind::Dense { out: width, bias } = layers[i].kind else {
            bail!(
                "layer {i} ({}): only dense layers and activations may follow the first dense layer",
                layers[i].kind.id()
            );
        };
        let act = match layers.get(i + 1).map(|l| l.kind) {
            Some(LayerKind::Act(a)) => Some(a.act()),
            _ => None,
        };
        if act.is_some() && matches!(layers.get(i + 2).map(|l| l.kind), Some(LayerKind::Act(_))) {
            bail!(
                "layer {} ({}): two activations in a row after a dense layer are not supported by the plan builder yet; keep one",
                i + 2,
                layers[i + 2].kind.id()
            );
        }
        let o = params_of(i);
        out.push(Dense { inp, out: width, w_off: o[0], b_off: bias.then(|| o[1]), act });
        inp = width;
        i += 1 + act.is_some() as usize;
    }
    if out.is_empty() {
        bail!("the loss head needs a dense layer before it (the plan builder ends every network with one)");
    }
    Ok(out)
}
