//! Recorded kernel launches: a pipeline, its bound buffers and parameters, and a grid. Algorithms build
//! lists of these once and submit them many times; one submission is one compute pass.

use anyhow::{anyhow, Result};
use std::sync::Arc;
use wgpu::util::DeviceExt;

use super::counters::Counters;
use super::params::Params;
use super::{Gpu, GpuBuffer, Shader};
use crate::ops::Source;

/// One compute dispatch, ready to be recorded.
pub struct Dispatch {
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
    /// The kernel it launches (what `set_adam_step` checks).
    pub(super) shader: Shader,
    pub(super) entry: &'static str,
    /// The parameters at binding 0, rewritten in place by kernels whose scalars change between
    /// submissions (e.g. Adam's bias corrections).
    pub(super) uniform: wgpu::Buffer,
}

impl Gpu {
    /// Records a dispatch of `entry` in `shader`: `params` goes to binding 0 as a uniform (a struct
    /// declared with `params!`, checked against the shader's WGSL struct),
    /// and `buffers` to their binding numbers.
    pub fn dispatch<P: Params>(
        &self,
        shader: Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        params: &P,
        buffers: &[(u32, &GpuBuffer)],
        groups: [u32; 3],
    ) -> Result<Dispatch> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(anyhow!(
                "{entry}: a grid of {groups:?} workgroups exceeds this adapter's {max} per dimension; \
                 use fewer weight vectors or a smaller --chunk"
            ));
        }
        let pipeline = self.pipeline(shader, entry, constants);
        Counters::add(&self.counters.buffers, 1);
        Counters::add(&self.counters.bind_groups, 1);
        let uniform = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        entries.extend(
            buffers
                .iter()
                .map(|(binding, b)| wgpu::BindGroupEntry { binding: *binding, resource: b.buffer.as_entire_binding() }),
        );
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(Dispatch { pipeline, bind_group, groups, shader, entry, uniform })
    }

    /// Submits dispatches in order as one compute pass (wgpu orders them: each sees the previous
    /// one's writes). Returns at once; results are read with [`Gpu::read`].
    pub fn submit(&self, dispatches: &[&Dispatch]) {
        self.submit_inner(dispatches, None);
    }

    /// Submits like [`Gpu::submit`] and waits; returns the GPU time of the pass in seconds when the
    /// adapter has timestamp queries, else the wall-clock time of submit-and-wait.
    pub fn submit_timed(&self, dispatches: &[&Dispatch]) -> Result<f64> {
        if !self.has_timestamps() {
            let t = std::time::Instant::now();
            self.submit(dispatches);
            self.wait()?;
            return Ok(t.elapsed().as_secs_f64());
        }
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timing"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        Counters::add(&self.counters.buffers, 1);
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timing"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.submit_inner(dispatches, Some((&set, &resolve)));
        let ticks: Vec<u32> = self.read(&GpuBuffer { buffer: Arc::new(resolve), len: 4 }, 0, 4)?;
        let start = ticks[0] as u64 | ((ticks[1] as u64) << 32);
        let end = ticks[2] as u64 | ((ticks[3] as u64) << 32);
        Ok(end.saturating_sub(start) as f64 * self.queue.get_timestamp_period() as f64 * 1e-9)
    }

    fn submit_inner(&self, dispatches: &[&Dispatch], timing: Option<(&wgpu::QuerySet, &wgpu::Buffer)>) {
        Counters::add(&self.counters.submissions, 1);
        let mut enc = self.device.create_command_encoder(&Default::default());
        self.encode_pass(&mut enc, dispatches, timing);
        self.queue.submit([enc.finish()]);
    }

    /// Records the dispatches as one compute pass into `enc` (counted as dispatches).
    pub(super) fn encode_pass(
        &self,
        enc: &mut wgpu::CommandEncoder,
        dispatches: &[&Dispatch],
        timing: Option<(&wgpu::QuerySet, &wgpu::Buffer)>,
    ) {
        Counters::add(&self.counters.dispatches, dispatches.len() as u64);
        {
            let timestamp_writes = timing.map(|(set, _)| wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            });
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("losscape"), timestamp_writes });
            for d in dispatches {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        if let Some((set, buf)) = timing {
            enc.resolve_query_set(set, 0..2, buf, 0);
        }
    }
}

/// A 2-D grid of 256-thread workgroups covering `len` elements ([`super::grids::element_groups`]);
/// counts past 32 bits saturate, and [`Gpu::dispatch`] refuses them as past the adapter's limit.
pub(super) fn element_grid(len: usize, max: u32) -> ([u32; 3], u32) {
    let (groups, row) = super::grids::element_groups(len, max);
    (groups32(groups), u32::try_from(row).unwrap_or(u32::MAX))
}

/// A grid in the `u32` wgpu takes, saturating (a saturated count exceeds every adapter's limit).
pub(super) fn groups32(g: [u64; 3]) -> [u32; 3] {
    g.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// The buffer behind a source, and whether it is the packed image buffer.
pub(super) fn split(src: Source<'_, GpuBuffer>) -> (&GpuBuffer, bool) {
    (src.buffer(), src.is_images())
}

pub(super) fn u(v: usize) -> u32 {
    u32::try_from(v).expect("index exceeds 32 bits")
}

impl Gpu {
    /// The grid of an element-wise kernel over `len` elements on this adapter.
    pub(super) fn grid(&self, len: usize) -> ([u32; 3], u32) {
        element_grid(len, self.limits.max_compute_workgroups_per_dimension)
    }
}
