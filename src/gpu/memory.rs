//! The wgpu backend's [`Memory`]: buffers, copies, read-backs and submission (implemented in
//! `buffer.rs` and `launch.rs`); a recorded command is a list of dispatches run in order.

use anyhow::Result;

use super::{Dispatch, Gpu, GpuBuffer};
use crate::ops::{DeviceBuffer, Memory};

impl DeviceBuffer for GpuBuffer {
    fn len(&self) -> usize {
        self.len
    }
    fn same(&self, other: &Self) -> bool {
        GpuBuffer::same(self, other)
    }
    /// Images are packed bytes, four to an element.
    fn pixels_per_element(&self) -> usize {
        4
    }
}

/// The dispatches of commands, in order.
fn dispatches<'a>(commands: &[&'a Vec<Dispatch>]) -> Vec<&'a Dispatch> {
    commands.iter().flat_map(|c| c.iter()).collect()
}

impl Memory for Gpu {
    type Buffer = GpuBuffer;
    type Command = Vec<Dispatch>;

    fn zeros(&self, len: usize, label: &str) -> Result<GpuBuffer> {
        Gpu::zeros(self, len, label)
    }
    fn upload<T: bytemuck::Pod>(&self, data: &[T], label: &str) -> Result<GpuBuffer> {
        Gpu::upload(self, data, label)
    }
    /// Four pixels to a u32 (byte i of the image data in bits 8·(i mod 4)), a quarter of the f32
    /// memory; the kernels unpack and scale them by 1 / 255.
    fn upload_images(&self, pixels: &[u8], label: &str) -> Result<GpuBuffer> {
        let mut packed = vec![0u32; pixels.len().div_ceil(4)];
        for (i, &b) in pixels.iter().enumerate() {
            packed[i / 4] |= (b as u32) << (8 * (i % 4));
        }
        Gpu::upload(self, &packed, label)
    }
    fn image_elements(&self, pixels: usize) -> usize {
        pixels.div_ceil(4)
    }
    fn write<T: bytemuck::Pod>(&self, dst: &GpuBuffer, offset: usize, data: &[T]) -> Result<()> {
        Gpu::write(self, dst, offset, data);
        Ok(())
    }
    fn copy(&self, src: &GpuBuffer, src_off: usize, dst: &GpuBuffer, dst_off: usize, len: usize) -> Result<()> {
        Gpu::copy(self, src, src_off, dst, dst_off, len);
        Ok(())
    }
    fn read<T: bytemuck::Pod>(&self, src: &GpuBuffer, offset: usize, len: usize) -> Result<Vec<T>> {
        Gpu::read(self, src, offset, len)
    }
    fn wait(&self) -> Result<()> {
        Gpu::wait(self)
    }
    fn submit(&self, commands: &[&Vec<Dispatch>]) {
        Gpu::submit(self, &dispatches(commands))
    }
    fn submit_read(&self, commands: &[&Vec<Dispatch>], reads: &[(&GpuBuffer, usize, usize)]) -> Result<Vec<Vec<f32>>> {
        Gpu::submit_read(self, &dispatches(commands), reads)
    }
    fn submit_timed(&self, commands: &[&Vec<Dispatch>]) -> Result<f64> {
        Gpu::submit_timed(self, &dispatches(commands))
    }
}
