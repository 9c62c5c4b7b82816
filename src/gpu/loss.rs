//! Launches of the loss heads (`shaders/loss.wgsl`), and of the output layer with its head (the plan's
//! own kernels, `ops/output_layer.rs`).

use anyhow::Result;

use super::launch::{groups32, u};
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Head, LossChunk, LossHeads, OutputLayer, OutputLayers};

params!(
    Shader::Loss,
    "Params",
    struct LossParams {
        images: u32,
        width: u32,
        first_image: u32,
        part_off: u32,
        parts: u32,
        out_bs: u32,
        inv_total: f32,
        img_bs: u32,
    }
);

impl LossHeads for Gpu {
    /// The kernel writes the gradient whether or not `grad.1` asks for it (in the same dispatch).
    fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &GpuBuffer,
        targets: &GpuBuffer,
        (grad, _): (&GpuBuffer, bool),
        partials: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        let params = LossParams {
            images: u(chunk.images),
            width: u(chunk.width),
            first_image: u(chunk.first_image),
            part_off: u(chunk.part_off),
            parts: u(chunk.parts),
            out_bs: u(chunk.out_batch_stride),
            inv_total: 1.0 / chunk.total_images as f32,
            img_bs: u(chunk.img_bs),
        };
        let (entry, target_binding) = match head {
            Head::CrossEntropy => ("cross_entropy", 2),
            Head::MseSigmoid => ("mse_sigmoid", 5),
        };
        Ok(vec![self.dispatch(
            Shader::Loss,
            entry,
            &[],
            &params,
            &[(1, outputs), (target_binding, targets), (3, grad), (4, partials)],
            groups32(super::grids::loss_groups(&chunk)),
        )?])
    }
}

impl OutputLayers for Gpu {
    /// The plan's own four kernels (two without the gradient), in their order: a GPU keeps the outputs
    /// and their gradient in its own memory, where the CPU's fusion saves nothing.
    fn output_layer(&self, layer: &OutputLayer, t: &[&GpuBuffer]) -> Result<Vec<Dispatch>> {
        Ok(layer.record_parts(self, t)?.into_iter().flatten().collect())
    }
}
