//! GPU-resident arrays and the only ways data crosses between host and device.

use anyhow::{anyhow, bail, Result};
use std::sync::Arc;
use wgpu::util::DeviceExt;

use super::counters::Counters;
use super::Gpu;

/// A storage buffer of 32-bit elements (f32 or u32) on the device.
#[derive(Clone)]
pub struct GpuBuffer {
    pub(super) buffer: Arc<wgpu::Buffer>,
    /// Number of 32-bit elements.
    pub len: usize,
}

impl GpuBuffer {
    pub fn bytes(&self) -> u64 {
        (self.len as u64) * 4
    }
    /// Whether two handles name the same device buffer.
    pub fn same(&self, other: &GpuBuffer) -> bool {
        Arc::ptr_eq(&self.buffer, &other.buffer)
    }
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    fn check_size(&self, bytes: u64, label: &str) -> Result<()> {
        if bytes > self.max_binding_bytes() {
            bail!(
                "buffer '{label}' needs {bytes} bytes, more than this adapter binds ({} bytes); \
                 use fewer weight vectors or a smaller --chunk",
                self.max_binding_bytes()
            );
        }
        Ok(())
    }

    /// A zero-filled buffer of `len` 32-bit elements (at least one, so that it can be bound).
    pub fn zeros(&self, len: usize, label: &str) -> Result<GpuBuffer> {
        let bytes = (len.max(1) as u64) * 4;
        self.check_size(bytes, label)?;
        Counters::add(&self.counters.buffers, 1);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: STORAGE,
            mapped_at_creation: false,
        });
        Ok(GpuBuffer { buffer: Arc::new(buffer), len })
    }

    /// A buffer holding `data` (any 32-bit plain type).
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T], label: &str) -> Result<GpuBuffer> {
        assert_eq!(std::mem::size_of::<T>(), 4, "GPU buffers hold 32-bit elements");
        let bytes: &[u8] = if data.is_empty() { &[0u8; 4] } else { bytemuck::cast_slice(data) };
        self.check_size(bytes.len() as u64, label)?;
        Counters::add(&self.counters.buffers, 1);
        let buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytes,
            usage: STORAGE,
        });
        Ok(GpuBuffer { buffer: Arc::new(buffer), len: data.len() })
    }

    /// Overwrites elements of `dst` starting at element `offset`.
    pub fn write<T: bytemuck::Pod>(&self, dst: &GpuBuffer, offset: usize, data: &[T]) {
        assert!(offset + data.len() <= dst.len, "write past the end of a GPU buffer");
        self.queue.write_buffer(&dst.buffer, (offset * 4) as u64, bytemuck::cast_slice(data));
    }

    /// Copies `len` elements between buffers on the device.
    pub fn copy(&self, src: &GpuBuffer, src_off: usize, dst: &GpuBuffer, dst_off: usize, len: usize) {
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(
            &src.buffer,
            (src_off * 4) as u64,
            &dst.buffer,
            (dst_off * 4) as u64,
            Some((len * 4) as u64),
        );
        Counters::add(&self.counters.submissions, 1);
        self.queue.submit([enc.finish()]);
    }

    /// Reads `len` elements from `offset` back to the host; waits for all queued work first.
    pub fn read<T: bytemuck::Pod>(&self, src: &GpuBuffer, offset: usize, len: usize) -> Result<Vec<T>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        Ok(self.submit_read(&[], &[(src, offset, len)])?.remove(0))
    }

    /// Submits `dispatches` as one compute pass followed by copies of the `(buffer, offset, len)`
    /// ranges into staging buffers, all in one queue submission, then waits once and returns the
    /// ranges' elements: one submission and one blocking read-back, however many ranges.
    pub fn submit_read<T: bytemuck::Pod>(
        &self,
        dispatches: &[&super::Dispatch],
        reads: &[(&GpuBuffer, usize, usize)],
    ) -> Result<Vec<Vec<T>>> {
        let mut enc = self.device.create_command_encoder(&Default::default());
        if !dispatches.is_empty() {
            self.encode_pass(&mut enc, dispatches, None);
        }
        let mut staged = Vec::new();
        for &(src, offset, len) in reads {
            let bytes = (len.max(1) * 4) as u64;
            let staging = self.staging_buffer(bytes);
            enc.copy_buffer_to_buffer(&src.buffer, (offset * 4) as u64, &staging, 0, Some((len * 4) as u64));
            staged.push((staging, bytes, len));
        }
        Counters::add(&self.counters.submissions, 1);
        Counters::add(&self.counters.readbacks, 1);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        for (staging, _, _) in &staged {
            let tx = tx.clone();
            staging.map_async(wgpu::MapMode::Read, .., move |r| {
                let _ = tx.send(r);
            });
        }
        self.wait()?;
        for _ in &staged {
            rx.recv()
                .map_err(|_| anyhow!("the GPU read-back was dropped"))?
                .map_err(|e| anyhow!("could not read results back from the GPU: {e}"))?;
        }
        let mut out = Vec::with_capacity(staged.len());
        for (staging, bytes, len) in staged {
            let view =
                staging.get_mapped_range(..).map_err(|e| anyhow!("could not map the GPU read-back buffer: {e}"))?;
            out.push(bytemuck::cast_slice::<u8, T>(&view)[..len].to_vec());
            drop(view);
            staging.unmap();
            self.staging.lock().unwrap().entry(bytes).or_default().push(staging);
        }
        Ok(out)
    }

    /// A mappable buffer of `bytes` for a read-back: one from the pool, or a new one the first time
    /// this size is read.
    fn staging_buffer(&self, bytes: u64) -> wgpu::Buffer {
        if let Some(b) = self.staging.lock().unwrap().get_mut(&bytes).and_then(Vec::pop) {
            return b;
        }
        Counters::add(&self.counters.buffers, 1);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Blocks until every submitted command has finished.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow!("the GPU did not finish its work: {e}"))?;
        Ok(())
    }
}
