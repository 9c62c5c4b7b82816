//! Launches of average pooling (`shaders/pool.wgsl`).

use anyhow::Result;

use super::grids;
use super::launch::u;
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::Pooling;

params!(
    Shader::Pool,
    "PoolParams",
    struct PoolParams {
        planes: u32,
        in_hw: u32,
        row: u32,
        _pad: u32,
    }
);

impl Pooling for Gpu {
    fn avg_pool(
        &self,
        backward: bool,
        planes: usize,
        in_hw: usize,
        src: &GpuBuffer,
        dst: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        let (grid, row) = self.grid(grids::pool_len(backward, planes, in_hw));
        let params = PoolParams { planes: u(planes), in_hw: u(in_hw), row, _pad: 0 };
        let entry = if backward { "backward" } else { "forward" };
        Ok(vec![self.dispatch(Shader::Pool, entry, &[], &params, &[(1, src), (2, dst)], grid)?])
    }
}
