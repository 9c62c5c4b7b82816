//! Launches of the per-run mini-batch selection (`shaders/select.wgsl`).

use anyhow::Result;

use super::launch::u;
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Selection, Selections};

params!(
    Shader::Select,
    "SelectParams",
    struct SelectParams {
        per_run: u32,
        runs: u32,
        stride: u32,
        offset: u32,
        row: u32,
        words: u32,
        _pad: [u32; 2],
    }
);

impl Selections for Gpu {
    fn select_images(
        &self,
        s: Selection,
        src: (&GpuBuffer, &GpuBuffer),
        idx: &GpuBuffer,
        dst: (&GpuBuffer, &GpuBuffer),
    ) -> Result<Vec<Dispatch>> {
        let words = s.pixels.div_ceil(4);
        let (grid, row) = self.grid(s.runs * s.per_run * words);
        let params = SelectParams {
            per_run: u(s.per_run),
            runs: u(s.runs),
            stride: u(s.stride),
            offset: u(s.offset),
            row,
            words: u(words),
            _pad: [0; 2],
        };
        Ok(vec![self.dispatch(
            Shader::Select,
            "select_images",
            &[],
            &params,
            &[(1, src.0), (2, src.1), (3, idx), (4, dst.0), (5, dst.1)],
            grid,
        )?])
    }
}
