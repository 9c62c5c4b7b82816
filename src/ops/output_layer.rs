//! A network's last dense layer and its loss head as one operation ([`OutputLayer`]): the product
//! z = x W^T, the head, and, for a gradient, d loss / d W and d loss / d x, which a plan lists as four
//! operations (two at the end of a chunk's forward pass, two at the start of its backward pass). The
//! evaluator records them as one where [`OutputLayer::find`] recognises them, and a backend runs them
//! its own way ([`OutputLayers`]): a GPU launches the same four kernels as before; the CPU runs them
//! per block of images, so that the outputs and their gradient (for the autoencoder 784 floats per
//! image and vector, 320 MB at B = 51 on 2,000 images) never leave the cache (`cpu/output_layer.rs`).
//!
//! Not an operation of plans: a plan keeps its four operations, which are what plan counts, walks and
//! FLOPs read, for any backend.

use anyhow::Result;

use super::backend::{Backend, Memory};
use super::loss::{Loss, LossWithoutGradient};
use super::op::{Operand, PlanOp, TensorId, GRADS, WEIGHTS};
use super::plan::{ChunkOps, MatMul, Op};
use super::products::Layout;

/// The last dense layer of a chunk with its loss head: `forward` (z = x W^T for every vector, x the
/// previous layer's output, never the images), `head` (the loss on z, its gradient d = d loss / d z),
/// and the two products of the backward pass that read d: `weight_grad` (d loss / d W = d^T x, into
/// [`GRADS`], added when the product accumulates) and `input_grad` (d loss / d x = d W).
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLayer {
    pub forward: MatMul,
    pub head: Loss,
    pub weight_grad: MatMul,
    pub input_grad: MatMul,
    /// Whether the operation computes the gradient (`weight_grad` and `input_grad`); without it, the
    /// loss alone, as a loss-only evaluation runs the head.
    pub gradient: bool,
}

impl OutputLayer {
    /// The output layer of `chunk` where it pays to run as one operation: its forward pass ends with
    /// a dense product of the previous layer's output (no bias, no activation) and the loss head on
    /// it, its backward pass starts with the product's weight and input gradients, and the layer is
    /// wider than its input (the autoencoder's 32 → 784), so that its outputs and their gradient are
    /// most of the chunk's memory traffic. `None` otherwise (a classifier's 50 → 10 layer, a bias, an
    /// activation before the head, a single layer on the images): the four operations run as they are.
    pub fn find(chunk: &ChunkOps) -> Option<OutputLayer> {
        let [.., Op::MatMul(forward), Op::Loss(head)] = &chunk.forward[..] else { return None };
        let [Op::MatMul(weight_grad), Op::MatMul(input_grad), ..] = &chunk.backward[..] else { return None };
        let layer = OutputLayer {
            forward: forward.clone(),
            head: head.clone(),
            weight_grad: weight_grad.clone(),
            input_grad: input_grad.clone(),
            gradient: true,
        };
        (layer.fits() && layer.forward.shape.n > layer.forward.shape.k).then_some(layer)
    }

    /// Whether the four operations are one dense layer and its head, in the layouts the dense stack
    /// (`model/mlp.rs`) writes: per vector b, x row-major `[image][k]`, W `[n][k]` in the weights,
    /// z and d row-major `[image][n]`, d loss / d x like x.
    fn fits(&self) -> bool {
        let (f, h, wg, ig) = (&self.forward, &self.head, &self.weight_grad, &self.input_grad);
        let (c, n, k, batches) = (f.shape.m, f.shape.n, f.shape.k, f.shape.batches);
        let stride = c * n;
        let d = Operand::Tensor(h.grad);
        let x = f.a;
        let Operand::Tensor(x_tensor) = x.0 else { return false };
        let w = f.b.1;
        let chunk = &h.chunk;
        let forward_ok = !f.shape.accumulate
            && x.1 == Layout::row_major(0, k, c * k)
            && f.b.0 == Operand::Tensor(WEIGHTS)
            && w == Layout { off: w.off, batch: w.batch, row: 1, col: k, group: None }
            && f.c == (h.outputs, Layout::row_major(0, n, stride));
        let head_ok = chunk.images == c
            && chunk.width == n
            && chunk.batches == batches
            && chunk.out_batch_stride == stride
            && h.grad != h.outputs;
        let weight_grad_ok = wg.shape.m == n
            && wg.shape.n == k
            && wg.shape.k == c
            && wg.shape.batches == batches
            && wg.a == (d, Layout::transposed(0, n, stride))
            && wg.b == x
            && wg.c == (GRADS, Layout::row_major(w.off, k, w.batch));
        let input_grad_ok = ig.shape.m == c
            && ig.shape.n == k
            && ig.shape.k == n
            && ig.shape.batches == batches
            && !ig.shape.accumulate
            && ig.a == (d, Layout::row_major(0, n, stride))
            && ig.b == (Operand::Tensor(WEIGHTS), Layout::row_major(w.off, k, w.batch))
            && ig.c.1 == Layout::row_major(0, k, c * k)
            && ![x_tensor, WEIGHTS, GRADS, h.grad, h.outputs].contains(&ig.c.0);
        forward_ok && head_ok && weight_grad_ok && input_grad_ok
    }

    /// The same operation without the gradient (a loss-only evaluation's).
    pub fn without_gradient(&self) -> OutputLayer {
        OutputLayer { gradient: false, ..self.clone() }
    }

    /// The operations this one stands for, in the plan's order.
    pub fn parts(&self) -> Vec<Op> {
        let mut out = vec![Op::MatMul(self.forward.clone()), Op::Loss(self.head.clone())];
        if self.gradient {
            out.extend([Op::MatMul(self.weight_grad.clone()), Op::MatMul(self.input_grad.clone())]);
        }
        out
    }

    /// The commands of the four operations (two without the gradient) as the plan's own operations
    /// record them, in order, with the head writing its gradient only with `gradient`: what a backend
    /// that gains nothing by the fusion runs (a GPU keeps every tensor in its own memory).
    ///
    /// # Errors
    /// As each operation's own recording.
    pub fn record_parts<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<Vec<B::Command>> {
        let record = |op: &Op| match op {
            Op::Loss(head) if !self.gradient => LossWithoutGradient(head.clone()).record(backend, t),
            op => op.record(backend, t),
        };
        self.parts().iter().map(record).collect()
    }

    /// The number of the chunk's forward operations (at its end) and backward operations (at its
    /// start) this one stands for.
    pub const REPLACES: (usize, usize) = (2, 2);
}

/// The fused output layer of a backend.
pub trait OutputLayers: Memory {
    /// Records `layer` on the plan's tensors `t` (in [`TensorId`] order): the losses into the
    /// partials, and with `layer.gradient` d loss / d W into the gradients (added when its product
    /// accumulates) and d loss / d x into `input_grad`'s output. The head's outputs and gradient
    /// tensors may be left unwritten; nothing else reads them.
    ///
    /// # Errors
    /// An operand past its buffer, aliasing, device errors.
    fn output_layer(&self, layer: &OutputLayer, t: &[&Self::Buffer]) -> Result<Self::Command>;
}

impl PlanOp for OutputLayer {
    fn kind(&self) -> &'static str {
        "output layer"
    }
    fn flops(&self) -> f64 {
        self.parts().iter().map(Op::flops).sum()
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        self.parts().iter().flat_map(Op::ends).collect()
    }
    fn launch_ends(&self) -> Vec<(&'static str, Vec<(TensorId, u64)>)> {
        self.parts().iter().flat_map(Op::launch_ends).collect()
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.output_layer(self, t)
    }
}
