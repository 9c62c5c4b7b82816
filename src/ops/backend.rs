//! The interface a compute backend implements: memory and submission ([`Memory`]), and one trait per
//! op family, each in the family's module beside its parameters and the checks of a call
//! ([`super::products`], [`super::activation`], [`super::loss`], [`super::conv`], [`super::pool`],
//! [`super::lstm`], [`super::adam`], [`super::select`], [`super::vector`]). [`Backend`] is all of
//! them: the wgpu backend and the native CPU backend implement it, and `backend::Device` forwards to
//! whichever is open.

use anyhow::Result;

use super::handles::DeviceBuffer;

/// Buffers, copies, read-backs and submission of recorded commands.
///
/// Commands are recorded once (by the op-family traits) and submitted many times; a submission runs
/// its commands in order. On a GPU `submit` queues and returns at once; `wait` and the reads block.
pub trait Memory {
    /// A buffer of 32-bit elements (f32, or u32 bit patterns).
    type Buffer: DeviceBuffer;
    /// One recorded operation.
    type Command;

    /// A zero-filled buffer of `len` elements. Errors: more than the device can hold or bind.
    fn zeros(&self, len: usize, label: &str) -> Result<Self::Buffer>;
    /// A buffer holding `data` (a 32-bit plain type).
    fn upload<T: bytemuck::Pod>(&self, data: &[T], label: &str) -> Result<Self::Buffer>;
    /// An image buffer (what [`super::Source::Images`] reads) holding `pixels`, one byte per pixel
    /// value × 255, in this backend's own layout ([`DeviceBuffer::pixels_per_element`] to an element).
    fn upload_images(&self, pixels: &[u8], label: &str) -> Result<Self::Buffer>;
    /// Elements of an image buffer of `pixels` pixels.
    fn image_elements(&self, pixels: usize) -> usize;
    /// Overwrites elements of `dst` from element `offset` (in bounds: checked by the caller).
    fn write<T: bytemuck::Pod>(&self, dst: &Self::Buffer, offset: usize, data: &[T]) -> Result<()>;
    /// Copies `len` elements between buffers (in bounds: checked by the caller).
    fn copy(&self, src: &Self::Buffer, src_off: usize, dst: &Self::Buffer, dst_off: usize, len: usize) -> Result<()>;
    /// Reads `len` elements from `offset` back to the host, after all submitted work.
    fn read<T: bytemuck::Pod>(&self, src: &Self::Buffer, offset: usize, len: usize) -> Result<Vec<T>>;
    /// Blocks until every submitted command has finished.
    fn wait(&self) -> Result<()>;
    /// Runs commands in order.
    fn submit(&self, commands: &[&Self::Command]);
    /// Runs commands, then reads the `(buffer, offset, len)` ranges back as f32 (on a GPU one
    /// submission and one blocking read-back in all).
    fn submit_read(
        &self,
        commands: &[&Self::Command],
        reads: &[(&Self::Buffer, usize, usize)],
    ) -> Result<Vec<Vec<f32>>>;
    /// Runs commands and waits; returns seconds (GPU timestamps where available, else wall clock).
    fn submit_timed(&self, commands: &[&Self::Command]) -> Result<f64> {
        let t = std::time::Instant::now();
        self.submit(commands);
        self.wait()?;
        Ok(t.elapsed().as_secs_f64())
    }
}

/// A compute backend: memory and every op family.
pub trait Backend:
    Memory
    + super::products::Products
    + super::activation::Activations
    + super::loss::LossHeads
    + super::conv::Convolutions
    + super::pool::Pooling
    + super::lstm::LstmCells
    + super::adam::AdamSteps
    + super::select::Selections
    + super::vector::VectorOps
    + super::output_layer::OutputLayers
{
}

impl<T> Backend for T where
    T: Memory
        + super::products::Products
        + super::activation::Activations
        + super::loss::LossHeads
        + super::conv::Convolutions
        + super::pool::Pooling
        + super::lstm::LstmCells
        + super::adam::AdamSteps
        + super::select::Selections
        + super::vector::VectorOps
        + super::output_layer::OutputLayers
{
}
