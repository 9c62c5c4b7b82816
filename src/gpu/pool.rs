//! Launches of average and max pooling (`shaders/pool.wgsl`).

use anyhow::Result;

use super::grids;
use super::launch::u;
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Pool, PoolKind, Pooling};

params!(
    Shader::Pool,
    "PoolParams",
    struct PoolParams {
        planes: u32,
        in_h: u32,
        in_w: u32,
        out_h: u32,
        out_w: u32,
        kernel: u32,
        stride: u32,
        row: u32,
        scale: f32,
        _pad: [u32; 3],
    }
);

impl Gpu {
    /// One pooling dispatch: `src` and `dst` as the entry point reads them, `input` the forward input.
    fn pool(&self, pool: Pool, backward: bool, buffers: [&GpuBuffer; 3]) -> Result<Vec<Dispatch>> {
        pool.check()?;
        let (grid, row) = self.grid(grids::pool_len(&pool, backward));
        let params = PoolParams {
            planes: u(pool.planes),
            in_h: u(pool.in_h),
            in_w: u(pool.in_w),
            out_h: u(pool.out_h()),
            out_w: u(pool.out_w()),
            kernel: u(pool.kernel),
            stride: u(pool.stride),
            row,
            scale: pool.scale(),
            _pad: [0; 3],
        };
        let entry = if backward { "backward" } else { "forward" };
        let max = [("MAX", (pool.kind == PoolKind::Max) as u32 as f64)];
        let [src, dst, input] = buffers;
        Ok(vec![self.dispatch(Shader::Pool, entry, &max, &params, &[(1, src), (2, dst), (3, input)], grid)?])
    }
}

impl Pooling for Gpu {
    fn pool_forward(&self, pool: Pool, input: &GpuBuffer, out: &GpuBuffer) -> Result<Vec<Dispatch>> {
        self.pool(pool, false, [input, out, input])
    }

    fn pool_backward(
        &self,
        pool: Pool,
        input: &GpuBuffer,
        grad_out: &GpuBuffer,
        grad_in: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        self.pool(pool, true, [grad_out, grad_in, input])
    }
}
