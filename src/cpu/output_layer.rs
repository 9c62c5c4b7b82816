//! The output layer and its loss head as one pass over blocks of images (`ops/output_layer.rs`).
//!
//! Why: run as four operations, the autoencoder's last layer (32 → 784) writes its outputs z, the
//! head reads them and writes their gradient d, and the two backward products read d again: for 51
//! vectors on 2,000 images five passes over 320 MB, which on a 2-core VM streaming ~10 GB/s took
//! about half of the evaluation. Here each task takes one vector's images 256 at a time (one
//! partial-sum slot of the head) in blocks of 64, whose z and d (2 x 200 KB) stay in the core's L2
//! cache from the product that makes them to the products that read them; only x, the weights, the
//! targets and the results cross memory.
//!
//! Results: z, and so every loss, has the bits of the four operations (the same products of k
//! terms, the same head, the losses added per slot in image order); d loss / d x is the same
//! product per row; d loss / d W is summed per 256 images (in 64-image products) and the slots' sums
//! added in order, so it differs from the chunk-long product by rounding. The tasks and their order
//! depend only on the chunk's image count, so the bits do not depend on B or the thread count.

use anyhow::Result;
use rayon::prelude::*;

use super::derived::{gather_rows, Derived};
use super::loss::{image_loss, Targets};
use super::matmul::{sgemm_raw, Mat, SendPtr};
use super::scratch::Scratch;
use super::simd::Simd;
use super::{Cpu, CpuBuffer, CpuCommand, Exclusive};
use crate::ops::op::{Operand, GRADS, PARTIALS, WEIGHTS};
use crate::ops::products::check_product;
use crate::ops::{partial_slots, Head, OutputLayer, OutputLayers, Source};

/// Images per block: the block's outputs and their gradient stay in L2 (autoencoder: 2 x 200 KB).
const BLOCK: usize = 64;

/// Images per task: one partial-sum slot of the loss head ([`partial_slots`]).
const GROUP: usize = 256;

impl OutputLayers for Cpu {
    fn output_layer(&self, layer: &OutputLayer, t: &[&CpuBuffer]) -> Result<CpuCommand> {
        let x_id = layer.forward.a.0.tensor();
        let (x, w, targets) = (t[x_id].clone(), t[WEIGHTS].clone(), t[layer.head.targets()].clone());
        let (partials, grads, dx) = (t[PARTIALS].clone(), t[GRADS].clone(), t[layer.input_grad.c.0].clone());
        for p in [&layer.forward, &layer.weight_grad, &layer.input_grad] {
            let source = |o: Operand| Source::F32(t[o.tensor()]);
            check_product(&p.shape, &(source(p.a.0), p.a.1), &(source(p.b.0), p.b.1), &(t[p.c.0], p.c.1))?;
        }
        let f = layer.forward.shape;
        let op = format!(
            "output layer {}x{}x{} x {}{}",
            f.m,
            f.n,
            f.k,
            f.batches,
            if layer.gradient { " with gradient" } else { "" }
        );
        // its three products (the forward one alone for a loss)
        let flops = f.flops() * if layer.gradient { 3.0 } else { 1.0 };
        let checked = CpuCommand::checked(&op, &[&partials, &grads, &dx], &[&x, &w, &targets])?.flops(flops);
        let layer = layer.clone();
        Ok(checked.run(move |cpu, l| {
            let targets = match layer.head.head {
                Head::CrossEntropy => Targets::Labels(targets.view(l)),
                Head::MseSigmoid => Targets::Pixels(targets.view(l)),
            };
            let gradient = layer.gradient.then(|| (grads.view_mut(l), dx.view_mut(l)));
            let mut scratch = cpu.scratch.lock().unwrap_or_else(|e| e.into_inner());
            let mut derived = cpu.derived.lock().unwrap_or_else(|e| e.into_inner());
            let wt = transposed_weights(&layer, (&w, l), &mut derived);
            let inputs = (x.view(l), (w.view(l), wt), &targets);
            output_layer(cpu.kernels, &layer, inputs, partials.view_mut(l), gradient, &mut scratch);
        }))
    }
}

/// Runs `layer` (see the module's documentation): losses into `partials` as the head writes them and,
/// with `gradient` = (the gradients, d loss / d x), the two gradients. `scratch` keeps the slots'
/// weight-gradient sums between calls (B x slots x n x k floats).
fn output_layer(
    simd: Simd,
    layer: &OutputLayer,
    (x, w, targets): (&[f32], Weights, &Targets),
    partials: &mut [f32],
    gradient: Option<(&mut [f32], &mut [f32])>,
    scratch: &mut Vec<f32>,
) {
    let shape = layer.forward.shape;
    let (c, size) = (shape.m, shape.n * shape.k);
    let (batches, slots) = (shape.batches, partial_slots(c));
    let (grads, dx) = gradient.unzip();
    if grads.is_some() && scratch.len() < batches * slots * size {
        scratch.resize(batches * slots * size, 0.0);
    }
    let sums_at = SendPtr(scratch.as_mut_ptr());
    let dx_at = dx.map(|d| SendPtr(d.as_mut_ptr()));
    let sums: Vec<(f64, f64)> = (0..batches * slots)
        .into_par_iter()
        .map(|task| {
            let sums_at: SendPtr = sums_at;
            // SAFETY: task `task` alone writes its n x k block of the slots' sums
            let sum = grads.is_some().then(|| unsafe { SendPtr(sums_at.0.add(task * size)) });
            slot(simd, layer, (task / slots, task % slots), (x, w, targets), sum.zip(dx_at))
        })
        .collect();
    let chunk = &layer.head.chunk;
    for (task, (loss, correct)) in sums.iter().enumerate() {
        let at = ((task / slots) * chunk.parts + chunk.part_off + task % slots) * 2;
        partials[at] = *loss as f32;
        partials[at + 1] = *correct as f32;
    }
    if let Some(grads) = grads {
        add_slots(layer, &scratch[..batches * slots * size], grads);
    }
}

/// The loss and correct count of slot `s` of vector `b` (images 256 s ..), and with `gradient` =
/// (the slot's n x k weight-gradient sum, d loss / d x) its gradients, block by block.
fn slot(
    simd: Simd,
    layer: &OutputLayer,
    (b, s): (usize, usize),
    (x, (w, wt), targets): (&[f32], Weights, &Targets),
    gradient: Option<(SendPtr, SendPtr)>,
) -> (f64, f64) {
    let (f, chunk) = (&layer.forward, &layer.head.chunk);
    let (c, n, k) = (f.shape.m, f.shape.n, f.shape.k);
    let scale = 1.0 / chunk.total_images as f32;
    let Scratch([z, d]) = &mut Scratch::take(BLOCK * n, BLOCK * n);
    let (xl, wl, dxl) = (f.a.1, layer.input_grad.b.1, layer.input_grad.c.1);
    let (mut loss, mut correct) = (0.0f64, 0.0f64);
    let last = c.min((s + 1) * GROUP);
    for (block, r0) in (s * GROUP..last).step_by(BLOCK).enumerate() {
        let rows = BLOCK.min(last - r0);
        let xm = Mat::new(xl.at(b, r0, 0), xl.row, xl.col);
        // SAFETY: `OutputLayers::output_layer` checked the three products' extents in their buffers,
        // and these blocks lie inside them; z and d are this task's own.
        unsafe {
            // W^T (k x n) from its row-major copy where one was made, else as the weights hold it
            let (wp, wm) = match wt {
                Some(wt) => (wt.as_ptr(), Mat::new(b * n * k, n, 1)),
                None => (w.as_ptr(), Mat::new(f.b.1.at(b, 0, 0), f.b.1.row, f.b.1.col)),
            };
            by_pieces((rows, n, k), (x.as_ptr(), xm), (wp, wm), (z.as_mut_ptr(), Mat::new(0, n, 1)));
        }
        for i in 0..rows {
            let image = b * chunk.img_bs + chunk.first_image + r0 + i;
            let grad = gradient.is_some().then(|| &mut d[i * n..][..n]);
            let (l, ok) = image_loss(simd, layer.head.head, &z[i * n..][..n], (targets, image), grad, scale);
            loss += l as f64;
            correct += f64::from(u8::from(ok));
        }
        let Some((sum, dx)) = gradient else { continue };
        // SAFETY: as above; the slot's sum and its rows of d loss / d x are written by this task alone.
        unsafe {
            let dt = Mat::new(0, 1, n);
            sgemm_raw((n, k, rows), (d.as_ptr(), dt), (x.as_ptr(), xm), (sum.0, Mat::new(0, k, 1)), block > 0, 1);
            let (wm, dxm) = (Mat::new(wl.at(b, 0, 0), wl.row, wl.col), Mat::new(dxl.at(b, r0, 0), dxl.row, dxl.col));
            by_pieces((rows, k, n), (d.as_ptr(), Mat::new(0, n, 1)), (w.as_ptr(), wm), (dx.0, dxm));
        }
    }
    (loss, correct)
}

/// Rows per product of [`by_pieces`]: `gemm` runs a row-major product as its transpose and reads that
/// transpose's left operand in place, without packing it, when the other has at most 8 x 6 = 48
/// columns (its micro-kernel's width 6 times its packing threshold, 8) and is laid out as it reads.
const PIECE: usize = 48;

/// C = A B (A m x k, B k x n, C m x n) as products of at most [`PIECE`] rows of A and C, on this
/// thread: each element is the same k-long sum, so the bits are those of one product.
///
/// # Safety
/// As [`sgemm_raw`].
unsafe fn by_pieces(
    (m, n, k): (usize, usize, usize),
    (ap, am): (*const f32, Mat),
    b: (*const f32, Mat),
    (cp, cm): (*mut f32, Mat),
) {
    for r in (0..m).step_by(PIECE) {
        let (a, c) = (Mat::new(am.off + r * am.rs, am.rs, am.cs), Mat::new(cm.off + r * cm.rs, cm.rs, cm.cs));
        sgemm_raw((PIECE.min(m - r), n, k), (ap, a), b, (cp, c), false, 1);
    }
}

/// The weights the layer reads: as the weights buffer holds them, and each vector's W^T row-major
/// (k x n, vector after vector) where it could be kept ([`transposed_weights`]).
type Weights<'a> = (&'a [f32], Option<&'a [f32]>);

/// Each vector's W (n x k, row-major in the weights) as W^T, row-major (k x n), vector after vector:
/// the forward product's operand laid out so that `gemm` reads it without a transposing pack, made
/// once per evaluation and kept for its chunks ([`Derived`]). `None` where it is too large to keep.
fn transposed_weights<'a>(
    layer: &OutputLayer,
    (w, l): (&CpuBuffer, &Exclusive),
    derived: &'a mut Derived,
) -> Option<&'a [f32]> {
    let (f, values) = (&layer.forward, w.view(l));
    let (n, k, at) = (f.shape.n, f.shape.k, f.b.1);
    let key = [1, at.off, at.batch, at.row, at.col, n, k, f.shape.batches];
    derived.get((w, l), key, f.shape.batches * n * k, |wt| {
        wt.par_chunks_mut(n * k).enumerate().for_each(|(b, wt)| {
            gather_rows(values, (at.row, n), |j| at.at(b, 0, j), wt);
        })
    })
}

/// Each vector's weight gradient from its slots' sums, added in slot order (to what the gradients
/// hold when the product accumulates).
fn add_slots(layer: &OutputLayer, sums: &[f32], grads: &mut [f32]) {
    let (p, at) = (layer.weight_grad.shape, layer.weight_grad.c.1);
    let (size, slots) = (p.m * p.n, sums.len() / (p.m * p.n * p.batches));
    let (len, grads_at) = (grads.len(), SendPtr(grads.as_mut_ptr()));
    (0..p.batches).into_par_iter().for_each(|b| {
        let (first, gp): (usize, SendPtr) = (at.at(b, 0, 0), grads_at);
        assert!(first + size <= len, "output layer: the gradient reaches past its buffer");
        // SAFETY: in bounds (asserted); vector b's gradient block is written by this task alone
        // (a row-major block per vector, `OutputLayer::find`).
        let dst = unsafe { std::slice::from_raw_parts_mut(gp.0.add(first), size) };
        let vector = &sums[b * slots * size..][..slots * size];
        for (s, sum) in vector.chunks_exact(size).enumerate() {
            if s == 0 && !p.accumulate {
                dst.copy_from_slice(sum);
            } else {
                dst.iter_mut().zip(sum).for_each(|(g, v)| *g += v);
            }
        }
    });
}
