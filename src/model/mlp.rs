//! A stack of dense layers as GPU dispatches, for B weight vectors over a chunk of images: the FCP and
//! the autoencoder whole, LeNet's fully connected part and the LSTM's classifier. When the input is the
//! image buffer (shared by all vectors) the first layer is one product X [c x in] * [W_1 | ... | W_B]^T;
//! other layers are products batched over the B vectors.

use anyhow::Result;

use super::evaluator::{Chunk, PlanInputs};
use crate::gpu::{Act, Dispatch, GpuBuffer, Head, Layout, LossChunk, Product, Source};

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
pub(super) enum Input<'a> {
    /// The MNIST images of the chunk.
    Images,
    /// Features per vector, [vector][image][inp]; the backward pass writes their gradient to `grad`.
    Features { values: &'a GpuBuffer, grad: &'a GpuBuffer },
}

/// The scratch buffers of a dense stack, sized for the largest chunk.
pub(super) struct Mlp {
    layers: Vec<Dense>,
    head: Head,
    z: Vec<GpuBuffer>,
    a: Vec<Option<GpuBuffer>>,
    d: Vec<GpuBuffer>,
    ones: GpuBuffer,
}

fn product(m: usize, n: usize, k: usize, batches: usize, accumulate: bool) -> Product {
    Product { m, n, k, batches, accumulate }
}

impl Mlp {
    pub fn new(p: &PlanInputs, layers: Vec<Dense>, head: Head) -> Result<Mlp> {
        let (b, cap) = (p.batch, p.chunk_cap);
        let mut z = Vec::new();
        let mut a = Vec::new();
        let mut d = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            z.push(p.gpu.zeros(b * cap * l.out, &format!("dense {i} z"))?);
            a.push(l.act.map(|_| p.gpu.zeros(b * cap * l.out, &format!("dense {i} a"))).transpose()?);
            d.push(p.gpu.zeros(b * cap * l.out, &format!("dense {i} grad"))?);
        }
        let ones = p.gpu.upload(&vec![1f32; cap], "ones")?;
        Ok(Mlp { layers, head, z, a, d, ones })
    }

    /// Widest layer, for chunk sizing.
    pub fn width(layers: &[Dense]) -> usize {
        layers.iter().map(|l| l.out).max().unwrap_or(1)
    }

    fn output(&self, i: usize) -> &GpuBuffer {
        self.a[i].as_ref().unwrap_or(&self.z[i])
    }

    /// The input of layer `i` as a matmul operand (rows = images of the chunk).
    fn layer_input<'a>(&'a self, p: &'a PlanInputs, ch: &Chunk, input: Input<'a>, i: usize) -> (Source<'a>, Layout) {
        let inp = self.layers[i].inp;
        if i > 0 {
            return (Source::F32(self.output(i - 1)), Layout::row_major(0, inp, ch.len * inp));
        }
        match input {
            Input::Images => (Source::Images(&p.images.pixels), Layout::row_major(ch.first * inp, inp, p.img_bs * inp)),
            Input::Features { values, .. } => (Source::F32(values), Layout::row_major(0, inp, ch.len * inp)),
        }
    }

    /// Forward through every layer, ending with the loss head.
    pub fn forward(&self, p: &PlanInputs, ch: &Chunk, input: Input) -> Result<Vec<Dispatch>> {
        let (gpu, b, c, n_prm) = (p.gpu, p.batch, ch.len, p.n_prm);
        let w = Source::F32(p.weights);
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let stride = c * l.out;
            let x = self.layer_input(p, ch, input, i);
            if i == 0 && matches!(input, Input::Images) && p.img_bs == 0 {
                // shared images: one product for all B vectors, columns (vector, unit)
                out.push(gpu.matmul(
                    product(c, l.out * b, l.inp, 1, false),
                    x,
                    (w, Layout { off: l.w_off, batch: 0, row: 1, col: l.inp, group: Some((l.out, n_prm)) }),
                    (&self.z[i], Layout { off: 0, batch: 0, row: l.out, col: 1, group: Some((l.out, stride)) }),
                )?);
            } else {
                out.push(gpu.matmul(
                    product(c, l.out, l.inp, b, false),
                    x,
                    (w, Layout { off: l.w_off, batch: n_prm, row: 1, col: l.inp, group: None }),
                    (&self.z[i], Layout::row_major(0, l.out, stride)),
                )?);
            }
            if let Some(b_off) = l.b_off {
                // z += 1 * bias: a rank-one product
                out.push(gpu.matmul(
                    product(c, l.out, 1, b, true),
                    (Source::F32(&self.ones), Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                    (w, Layout { off: b_off, batch: n_prm, row: 0, col: 1, group: None }),
                    (&self.z[i], Layout::row_major(0, l.out, stride)),
                )?);
            }
            if let (Some(act), Some(a)) = (l.act, &self.a[i]) {
                out.push(gpu.activation_forward(act, &self.z[i], a, b * stride)?);
            }
        }
        let last = self.layers.len() - 1;
        let width = self.layers[last].out;
        let targets = match self.head {
            Head::CrossEntropy => &p.images.labels,
            Head::MseSigmoid => &p.images.pixels,
        };
        out.push(gpu.loss_head(
            self.head,
            LossChunk {
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
            self.output(last),
            targets,
            &self.d[last],
            p.partials,
        )?);
        Ok(out)
    }

    /// Backward through every layer: weight (and bias) gradients into `p.grads` (added when
    /// `accumulate`), and the input gradient for feature inputs.
    pub fn backward(&self, p: &PlanInputs, ch: &Chunk, input: Input, accumulate: bool) -> Result<Vec<Dispatch>> {
        let (gpu, b, c, n_prm) = (p.gpu, p.batch, ch.len, p.n_prm);
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate().rev() {
            let stride = c * l.out;
            let d = Source::F32(&self.d[i]);
            let d_t = Layout::transposed(0, l.out, stride);
            out.push(gpu.matmul(
                product(l.out, l.inp, c, b, accumulate),
                (d, d_t),
                self.layer_input(p, ch, input, i),
                (p.grads, Layout::row_major(l.w_off, l.inp, n_prm)),
            )?);
            if let Some(b_off) = l.b_off {
                out.push(gpu.matmul(
                    product(l.out, 1, c, b, accumulate),
                    (d, d_t),
                    (Source::F32(&self.ones), Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                    (p.grads, Layout { off: b_off, batch: n_prm, row: 1, col: 0, group: None }),
                )?);
            }
            let target = match (i, input) {
                (0, Input::Images) => None,
                (0, Input::Features { grad, .. }) => Some(grad),
                _ => Some(&self.d[i - 1]),
            };
            if let Some(target) = target {
                out.push(gpu.matmul(
                    product(c, l.inp, l.out, b, false),
                    (d, Layout::row_major(0, l.out, stride)),
                    (Source::F32(p.weights), Layout::row_major(l.w_off, l.inp, n_prm)),
                    (target, Layout::row_major(0, l.inp, c * l.inp)),
                )?);
                if i > 0 {
                    if let Some(act) = self.layers[i - 1].act {
                        out.push(gpu.activation_backward(act, &self.z[i - 1], &self.d[i - 1], b * c * l.inp)?);
                    }
                }
            }
        }
        Ok(out)
    }
}
