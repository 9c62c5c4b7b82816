//! Launches of the LSTM kernels (`shaders/lstm.wgsl`): the pixel gather and the cell.

use anyhow::Result;

use super::launch::u;
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{LstmCells, LstmStep};

params!(
    Shader::Lstm,
    "LstmParams",
    struct LstmParams {
        images: u32,
        batches: u32,
        step: u32,
        n_prm: u32,
        bias_ih: u32,
        bias_hh: u32,
        first_image: u32,
        row: u32,
        img_bs: u32,
        hidden: u32,
        steps: u32,
        pixels: u32,
    }
);

/// The shader's parameters of step `s` over a grid whose rows are `row` workgroups wide.
fn lstm_params(s: &LstmStep, row: u32) -> LstmParams {
    LstmParams {
        images: u(s.images),
        batches: u(s.batches),
        step: u(s.step),
        n_prm: u(s.n_prm),
        bias_ih: u(s.bias_ih),
        bias_hh: u(s.bias_hh),
        first_image: u(s.first_image),
        row,
        img_bs: u(s.img_bs),
        hidden: u(s.shape.hidden),
        steps: u(s.shape.steps),
        pixels: u(s.shape.pixels()),
    }
}

impl LstmCells for Gpu {
    fn gather_pixels(
        &self,
        s: LstmStep,
        images: &GpuBuffer,
        perm: &GpuBuffer,
        xperm: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        let (grid, row) = self.grid(s.gathered_len());
        let s = s.gathered();
        let buffers = [(8, images), (9, perm), (10, xperm)];
        Ok(vec![self.dispatch(Shader::Lstm, "gather", &[], &lstm_params(&s, row), &buffers, grid)?])
    }

    fn lstm_cell_forward(
        &self,
        s: LstmStep,
        weights: &GpuBuffer,
        gates: &GpuBuffer,
        cells: &GpuBuffer,
        hidden: &GpuBuffer,
        last: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        let (grid, row) = self.grid(s.cell_len());
        Ok(vec![self.dispatch(
            Shader::Lstm,
            "cell_forward",
            &[],
            &lstm_params(&s, row),
            &[(1, weights), (2, gates), (3, cells), (4, hidden), (5, last)],
            grid,
        )?])
    }

    fn lstm_cell_backward(
        &self,
        s: LstmStep,
        gates: &GpuBuffer,
        cells: &GpuBuffer,
        dh: &GpuBuffer,
        dc: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        let (grid, row) = self.grid(s.cell_len());
        Ok(vec![self.dispatch(
            Shader::Lstm,
            "cell_backward",
            &[],
            &lstm_params(&s, row),
            &[(2, gates), (3, cells), (6, dh), (7, dc)],
            grid,
        )?])
    }
}
