//! The FCP (784-50-50-10, no biases) as GPU dispatches. Per chunk of images, for B vectors at once:
//! the first layer is one product X [c x 784] * [W1_1 | ... | W1_B]^T; the later layers and the backward
//! pass are batched products over the B vectors.

use anyhow::Result;

use super::evaluator::{Chunk, ChunkPlan, PlanInputs};
use crate::gpu::{Layout, LossChunk, Product, Source};

const IN: usize = 784;
const H: usize = 50;
const OUT: usize = 10;
const W2: usize = H * IN;
const W3: usize = W2 + H * H;
const N_PRM: usize = W3 + OUT * H;

fn product(m: usize, n: usize, k: usize, batches: usize, accumulate: bool) -> Product {
    Product {
        m,
        n,
        k,
        batches,
        accumulate,
    }
}

pub(super) fn plan(p: &PlanInputs, chunks: &[Chunk]) -> Result<Vec<ChunkPlan>> {
    let (gpu, b, cap) = (p.gpu, p.batch, p.chunk_cap);
    let hidden = |name: &str| gpu.zeros(b * cap * H, name);
    let (z1, a1, z2, a2, d1, d2) = (
        hidden("fcp z1")?,
        hidden("fcp a1")?,
        hidden("fcp z2")?,
        hidden("fcp a2")?,
        hidden("fcp d1")?,
        hidden("fcp d2")?,
    );
    let z3 = gpu.zeros(b * cap * OUT, "fcp logits")?;
    let d3 = gpu.zeros(b * cap * OUT, "fcp dlogits")?;
    let images = Source::Images(&p.images.pixels);
    let w = Source::F32(p.weights);
    let f = Source::F32;

    chunks
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            let c = ch.len;
            let (hs, os) = (c * H, c * OUT); // per-vector strides of the activations
            let x = Layout::row_major(ch.first * IN, IN, 0);
            // W^T of a weight matrix with `cols` columns at `off` in every vector.
            let wt = |off, cols| Layout {
                off,
                batch: N_PRM,
                row: 1,
                col: cols,
                group: None,
            };
            let wm = |off, cols| Layout::row_major(off, cols, N_PRM);
            let forward = vec![
                gpu.matmul(
                    product(c, H * b, IN, 1, false),
                    (images, x),
                    (
                        w,
                        Layout {
                            off: 0,
                            batch: 0,
                            row: 1,
                            col: IN,
                            group: Some((H, N_PRM)),
                        },
                    ),
                    (
                        &z1,
                        Layout {
                            off: 0,
                            batch: 0,
                            row: H,
                            col: 1,
                            group: Some((H, hs)),
                        },
                    ),
                )?,
                gpu.activation_forward(p.act, &z1, &a1, b * hs)?,
                gpu.matmul(
                    product(c, H, H, b, false),
                    (f(&a1), Layout::row_major(0, H, hs)),
                    (w, wt(W2, H)),
                    (&z2, Layout::row_major(0, H, hs)),
                )?,
                gpu.activation_forward(p.act, &z2, &a2, b * hs)?,
                gpu.matmul(
                    product(c, OUT, H, b, false),
                    (f(&a2), Layout::row_major(0, H, hs)),
                    (w, wt(W3, H)),
                    (&z3, Layout::row_major(0, OUT, os)),
                )?,
                gpu.loss_head(
                    crate::gpu::Head::CrossEntropy,
                    LossChunk {
                        images: c,
                        width: OUT,
                        first_image: ch.first,
                        batches: b,
                        out_batch_stride: os,
                        part_off: ch.part_off,
                        parts: p.parts,
                        total_images: p.total_images,
                    },
                    &z3,
                    &p.images.labels,
                    &d3,
                    p.partials,
                )?,
            ];
            let acc = i > 0; // the first chunk overwrites the gradient, later ones add to it
            let backward = vec![
                gpu.matmul(
                    product(OUT, H, c, b, acc),
                    (f(&d3), Layout::transposed(0, OUT, os)),
                    (f(&a2), Layout::row_major(0, H, hs)),
                    (p.grads, wm(W3, H)),
                )?,
                gpu.matmul(
                    product(c, H, OUT, b, false),
                    (f(&d3), Layout::row_major(0, OUT, os)),
                    (w, wm(W3, H)),
                    (&d2, Layout::row_major(0, H, hs)),
                )?,
                gpu.activation_backward(p.act, &z2, &d2, b * hs)?,
                gpu.matmul(
                    product(H, H, c, b, acc),
                    (f(&d2), Layout::transposed(0, H, hs)),
                    (f(&a1), Layout::row_major(0, H, hs)),
                    (p.grads, wm(W2, H)),
                )?,
                gpu.matmul(
                    product(c, H, H, b, false),
                    (f(&d2), Layout::row_major(0, H, hs)),
                    (w, wm(W2, H)),
                    (&d1, Layout::row_major(0, H, hs)),
                )?,
                gpu.activation_backward(p.act, &z1, &d1, b * hs)?,
                gpu.matmul(
                    product(H, IN, c, b, acc),
                    (f(&d1), Layout::transposed(0, H, hs)),
                    (images, x),
                    (p.grads, wm(0, IN)),
                )?,
            ];
            Ok(ChunkPlan { forward, backward })
        })
        .collect()
}
