//! A stack of dense layers as plan operations, for B weight vectors over a chunk of images: the dense
//! part of every network the generic builder (`model/generic.rs`) plans (the whole of an MLP, the
//! classifier after convolutions or an LSTM). When the input is the
//! image buffer (shared by all vectors) the first layer is one product X [c x in] * [W_1 | ... | W_B]^T;
//! other layers are products batched over the B vectors.

use super::builder::{Builder, Chunk};
use crate::ops::plan::{ActBackward, ActForward, Loss, MatMul, Op, Operand, TensorId, GRADS, WEIGHTS};
use crate::ops::{Act, Head, Layout, LossChunk, Product};

/// One dense layer: z = x W^T (+ b), then the activation if any.
#[derive(Clone, Copy, Debug)]
pub(super) struct Dense {
    pub inp: usize,
    pub out: usize,
    pub w_off: usize,
    pub b_off: Option<usize>,
    pub act: Option<Act>,
}

/// What feeds the first layer.
#[derive(Clone, Copy)]
pub(super) enum Input {
    /// The MNIST images of the chunk.
    Images,
    /// Features per vector, [vector][image][inp]; the backward pass writes their gradient to `grad`
    /// (none: no gradient flows further back).
    Features { values: TensorId, grad: Option<TensorId> },
}

/// The scratch tensors of a dense stack, sized for the largest chunk.
pub(super) struct Mlp {
    layers: Vec<Dense>,
    head: Head,
    z: Vec<TensorId>,
    a: Vec<Option<TensorId>>,
    d: Vec<TensorId>,
    ones: TensorId,
}

fn product(m: usize, n: usize, k: usize, batches: usize, accumulate: bool) -> Product {
    Product { m, n, k, batches, accumulate }
}

impl Mlp {
    pub fn new(p: &mut Builder, layers: Vec<Dense>, head: Head) -> Mlp {
        let (b, cap) = (p.batch, p.chunk_cap);
        let mut z = Vec::new();
        let mut a = Vec::new();
        let mut d = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            z.push(p.tensor(&format!("dense {i} z"), b * cap * l.out));
            a.push(l.act.map(|_| p.tensor(&format!("dense {i} a"), b * cap * l.out)));
            d.push(p.tensor(&format!("dense {i} grad"), b * cap * l.out));
        }
        let ones = p.with("ones", cap, crate::ops::plan::Init::Ones);
        Mlp { layers, head, z, a, d, ones }
    }

    fn output(&self, i: usize) -> TensorId {
        self.a[i].unwrap_or(self.z[i])
    }

    /// The input of layer `i` as a matmul operand (rows = images of the chunk).
    fn layer_input(&self, p: &Builder, ch: &Chunk, input: Input, i: usize) -> (Operand, Layout) {
        let inp = self.layers[i].inp;
        if i > 0 {
            return (Operand::Tensor(self.output(i - 1)), Layout::row_major(0, inp, ch.len * inp));
        }
        match input {
            Input::Images => (Operand::Images, Layout::row_major(ch.first * inp, inp, p.img_bs * inp)),
            Input::Features { values, .. } => (Operand::Tensor(values), Layout::row_major(0, inp, ch.len * inp)),
        }
    }

    /// Forward through every layer, ending with the loss head.
    pub fn forward(&self, p: &Builder, ch: &Chunk, input: Input) -> Vec<Op> {
        let (b, c, n_prm) = (p.batch, ch.len, p.n_prm);
        let w = Operand::Tensor(WEIGHTS);
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let stride = c * l.out;
            let x = self.layer_input(p, ch, input, i);
            if i == 0 && matches!(input, Input::Images) && p.img_bs == 0 {
                // shared images: one product for all B vectors, columns (vector, unit)
                out.push(Op::MatMul(MatMul {
                    shape: product(c, l.out * b, l.inp, 1, false),
                    a: x,
                    b: (w, Layout { off: l.w_off, batch: 0, row: 1, col: l.inp, group: Some((l.out, n_prm)) }),
                    c: (self.z[i], Layout { off: 0, batch: 0, row: l.out, col: 1, group: Some((l.out, stride)) }),
                }));
            } else {
                out.push(Op::MatMul(MatMul {
                    shape: product(c, l.out, l.inp, b, false),
                    a: x,
                    b: (w, Layout { off: l.w_off, batch: n_prm, row: 1, col: l.inp, group: None }),
                    c: (self.z[i], Layout::row_major(0, l.out, stride)),
                }));
            }
            if let Some(b_off) = l.b_off {
                // z += 1 * bias: a rank-one product
                out.push(Op::MatMul(MatMul {
                    shape: product(c, l.out, 1, b, true),
                    a: (Operand::Tensor(self.ones), Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                    b: (w, Layout { off: b_off, batch: n_prm, row: 0, col: 1, group: None }),
                    c: (self.z[i], Layout::row_major(0, l.out, stride)),
                }));
            }
            if let (Some(act), Some(a)) = (l.act, self.a[i]) {
                out.push(Op::ActForward(ActForward { act, z: self.z[i], out: a, len: b * stride }));
            }
        }
        let last = self.layers.len() - 1;
        let width = self.layers[last].out;
        out.push(Op::Loss(Loss {
            head: self.head,
            chunk: LossChunk {
                images: c,
                width,
                first_image: ch.first,
                batches: b,
                out_batch_stride: c * width,
                part_off: ch.part_off,
                parts: p.parts,
                total_images: p.total_images,
                img_bs: p.img_bs,
            },
            outputs: self.output(last),
            grad: self.d[last],
        }));
        out
    }

    /// Backward through every layer: weight (and bias) gradients into the gradient tensor (added when
    /// `accumulate`), and the input gradient for feature inputs.
    pub fn backward(&self, p: &Builder, ch: &Chunk, input: Input, accumulate: bool) -> Vec<Op> {
        let (b, c, n_prm) = (p.batch, ch.len, p.n_prm);
        let mut out = Vec::new();
        // the loss head wrote d loss / d (the last layer's output): through its activation, if any,
        // to d loss / d z (the paper's networks have none there)
        let last = self.layers.len() - 1;
        if let Some(act) = self.layers[last].act {
            let len = b * c * self.layers[last].out;
            out.push(Op::ActBackward(ActBackward { act, z: self.z[last], grad: self.d[last], len }));
        }
        for (i, l) in self.layers.iter().enumerate().rev() {
            let stride = c * l.out;
            let d = Operand::Tensor(self.d[i]);
            let d_t = Layout::transposed(0, l.out, stride);
            out.push(Op::MatMul(MatMul {
                shape: product(l.out, l.inp, c, b, accumulate),
                a: (d, d_t),
                b: self.layer_input(p, ch, input, i),
                c: (GRADS, Layout::row_major(l.w_off, l.inp, n_prm)),
            }));
            if let Some(b_off) = l.b_off {
                out.push(Op::MatMul(MatMul {
                    shape: product(l.out, 1, c, b, accumulate),
                    a: (d, d_t),
                    b: (Operand::Tensor(self.ones), Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                    c: (GRADS, Layout { off: b_off, batch: n_prm, row: 1, col: 0, group: None }),
                }));
            }
            let target = match (i, input) {
                (0, Input::Images) => None,
                (0, Input::Features { grad, .. }) => grad,
                _ => Some(self.d[i - 1]),
            };
            if let Some(target) = target {
                out.push(Op::MatMul(MatMul {
                    shape: product(c, l.inp, l.out, b, false),
                    a: (d, Layout::row_major(0, l.out, stride)),
                    b: (Operand::Tensor(WEIGHTS), Layout::row_major(l.w_off, l.inp, n_prm)),
                    c: (target, Layout::row_major(0, l.inp, c * l.inp)),
                }));
                if i > 0 {
                    if let Some(act) = self.layers[i - 1].act {
                        out.push(Op::ActBackward(ActBackward {
                            act,
                            z: self.z[i - 1],
                            grad: self.d[i - 1],
                            len: b * c * l.inp,
                        }));
                    }
                }
            }
        }
        out
    }
}
