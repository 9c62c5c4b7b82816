//! Images on the GPU: packed four pixels to a u32 (a 60k x 784 f32 copy would exceed the common 128 MiB
//! binding limit); the kernels scale bytes to [0, 1].

use anyhow::Result;
use std::sync::Arc;

use super::Dataset;
use crate::gpu::{Gpu, GpuBuffer};

/// A dataset resident on the GPU.
pub struct GpuImages {
    pub pixels: GpuBuffer,
    pub labels: GpuBuffer,
    pub count: usize,
    pub gpu: Arc<Gpu>,
}

impl GpuImages {
    /// Room for `count` images and labels, filled on the GPU (mini-batches).
    pub fn empty(gpu: &Arc<Gpu>, count: usize) -> Result<GpuImages> {
        Ok(GpuImages {
            pixels: gpu.zeros(count * 196, "batch images")?,
            labels: gpu.zeros(count, "batch labels")?,
            count,
            gpu: gpu.clone(),
        })
    }

    pub fn upload(gpu: &Arc<Gpu>, data: &Dataset) -> Result<GpuImages> {
        let mut packed = vec![0u32; data.pixels.len().div_ceil(4)];
        for (i, &b) in data.pixels.iter().enumerate() {
            packed[i / 4] |= (b as u32) << (8 * (i % 4));
        }
        let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();
        Ok(GpuImages {
            pixels: gpu.upload(&packed, "images")?,
            labels: gpu.upload(&labels, "labels")?,
            count: data.len(),
            gpu: gpu.clone(),
        })
    }
}
