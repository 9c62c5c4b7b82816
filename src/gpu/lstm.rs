//! Launches of the LSTM kernels (`shaders/lstm.wgsl`): the pixel gather, and the sequence operations
//! as their per-step launches ([`LstmSequence::forward_launches`]): the tiled matrix products of
//! `matmul.wgsl` and one cell dispatch per step.

use anyhow::Result;

use super::launch::u;
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{LstmCells, LstmLaunch, LstmOperands, LstmSequence, LstmStep, Products, Source};

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

    fn record_lstm_forward(&self, s: LstmSequence, t: LstmOperands<&GpuBuffer>) -> Result<Vec<Dispatch>> {
        self.launch_all(&s.forward_launches(), &t)
    }

    fn record_lstm_backward(
        &self,
        s: LstmSequence,
        t: LstmOperands<&GpuBuffer>,
        accumulate: bool,
    ) -> Result<Vec<Dispatch>> {
        self.launch_all(&s.backward_launches(accumulate), &t)
    }
}

impl Gpu {
    /// The dispatches of a sequence operation's launches, in order, on the buffers `t` names.
    fn launch_all(&self, launches: &[LstmLaunch], t: &LstmOperands<&GpuBuffer>) -> Result<Vec<Dispatch>> {
        let mut out = Vec::with_capacity(launches.len());
        for launch in launches {
            match *launch {
                LstmLaunch::Product { shape, a, b, c } => out.extend(self.matmul(
                    shape,
                    (Source::F32(t.get(a.0)), a.1),
                    (Source::F32(t.get(b.0)), b.1),
                    (t.get(c.0), c.1),
                )?),
                LstmLaunch::CellForward(s) => {
                    let buffers = [(1, t.weights), (2, t.gates), (3, t.cells), (4, t.hidden), (5, t.last)];
                    out.push(self.cell(s, "cell_forward", &buffers)?);
                }
                LstmLaunch::CellBackward(s) => {
                    let buffers = [(2, t.gates), (3, t.cells), (6, t.dh), (7, t.dc)];
                    out.push(self.cell(s, "cell_backward", &buffers)?);
                }
            }
        }
        Ok(out)
    }

    /// One cell launch of step `s` (`entry` of `lstm.wgsl`), one thread per vector, image and unit.
    fn cell(&self, s: LstmStep, entry: &'static str, buffers: &[(u32, &GpuBuffer)]) -> Result<Dispatch> {
        let (grid, row) = self.grid(s.cell_len());
        self.dispatch(Shader::Lstm, entry, &[], &lstm_params(&s, row), buffers, grid)
    }
}
