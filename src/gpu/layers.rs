//! Launch helpers for the convolution, pooling and LSTM-cell kernels.

use super::grids;
use super::kernels::{element_grid, groups32, split, u};
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader, Source};
use crate::ops::{AdamStep, Conv, LstmStep, Selection};
use anyhow::Result;

impl Conv {
    fn params(&self, shared: bool, accumulate: bool, row: u32) -> ConvParams {
        ConvParams {
            images: u(self.images),
            in_c: u(self.in_c),
            in_hw: u(self.in_hw),
            out_c: u(self.out_c),
            out_hw: u(self.out_hw()),
            ksize: u(self.ksize),
            pad: u(self.pad),
            batches: u(self.batches),
            in_off: u(self.in_off),
            in_bs: u(self.in_bs(shared)),
            out_bs: u(self.out_bs()),
            w_off: u(self.w_off),
            b_off: u(self.b_off),
            n_prm: u(self.n_prm),
            accumulate: accumulate as u32,
            row,
        }
    }
}

params!(
    Shader::Conv,
    "ConvParams",
    struct ConvParams {
        images: u32,
        in_c: u32,
        in_hw: u32,
        out_c: u32,
        out_hw: u32,
        ksize: u32,
        pad: u32,
        batches: u32,
        in_off: u32,
        in_bs: u32,
        out_bs: u32,
        w_off: u32,
        b_off: u32,
        n_prm: u32,
        accumulate: u32,
        row: u32,
    }
);

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

impl LstmStep {
    fn params(&self, row: u32) -> LstmParams {
        LstmParams {
            images: u(self.images),
            batches: u(self.batches),
            step: u(self.step),
            n_prm: u(self.n_prm),
            bias_ih: u(self.bias_ih),
            bias_hh: u(self.bias_hh),
            first_image: u(self.first_image),
            row,
            img_bs: u(self.img_bs),
            hidden: u(self.shape.hidden),
            steps: u(self.shape.steps),
            pixels: u(self.shape.pixels()),
        }
    }
}

impl Gpu {
    fn grid(&self, len: usize) -> ([u32; 3], u32) {
        element_grid(len, self.limits.max_compute_workgroups_per_dimension)
    }

    /// out = conv(input) + bias.
    pub fn conv_forward(&self, c: Conv, input: Source, weights: &GpuBuffer, out: &GpuBuffer) -> Result<Dispatch> {
        let (buf, bytes) = split(input);
        let (grid, row) = self.grid(grids::conv_forward_len(&c));
        let (f32_in, byte_in) = if bytes { (&self.dummy, buf) } else { (buf, &self.dummy) };
        self.dispatch(
            Shader::Conv,
            "forward",
            &[("IN_BYTES", bytes as u32 as f64)],
            &c.params(bytes, false, row),
            &[(1, f32_in), (2, weights), (3, out), (4, byte_in)],
            grid,
        )
    }

    /// grads (+)= d loss / d (weights, bias) from d loss / d out.
    pub fn conv_weight_grad(
        &self,
        c: Conv,
        input: Source,
        grad_out: &GpuBuffer,
        grads: &GpuBuffer,
        accumulate: bool,
    ) -> Result<Dispatch> {
        let (buf, bytes) = split(input);
        let (f32_in, byte_in) = if bytes { (&self.dummy, buf) } else { (buf, &self.dummy) };
        self.dispatch(
            Shader::Conv,
            "weight_grad",
            &[("IN_BYTES", bytes as u32 as f64)],
            &c.params(bytes, accumulate, 0),
            &[(1, f32_in), (3, grads), (4, byte_in), (5, grad_out)],
            groups32(grids::conv_weight_groups(&c)),
        )
    }

    /// grad_in = d loss / d input (an f32 map per vector) from d loss / d out.
    pub fn conv_input_grad(
        &self,
        c: Conv,
        weights: &GpuBuffer,
        grad_out: &GpuBuffer,
        grad_in: &GpuBuffer,
    ) -> Result<Dispatch> {
        let (grid, row) = self.grid(grids::conv_input_grad_len(&c));
        self.dispatch(
            Shader::Conv,
            "input_grad",
            &[("IN_BYTES", 0.0)],
            &c.params(false, false, row),
            &[(2, weights), (3, grad_in), (5, grad_out)],
            grid,
        )
    }

    /// 2x2 average pooling of `planes` maps of side `in_hw` (forward), or its gradient (backward:
    /// `src` = d loss / d pooled, `dst` = d loss / d input).
    pub fn avg_pool(
        &self,
        backward: bool,
        planes: usize,
        in_hw: usize,
        src: &GpuBuffer,
        dst: &GpuBuffer,
    ) -> Result<Dispatch> {
        let (grid, row) = self.grid(grids::pool_len(backward, planes, in_hw));
        let params = PoolParams { planes: u(planes), in_hw: u(in_hw), row, _pad: 0 };
        let entry = if backward { "backward" } else { "forward" };
        self.dispatch(Shader::Pool, entry, &[], &params, &[(1, src), (2, dst)], grid)
    }

    /// xperm[b][n][j] = pixel perm[j] of image b * img_bs + first_image + n (one vector's worth when
    /// the images are shared).
    pub fn gather_pixels(
        &self,
        s: LstmStep,
        images: &GpuBuffer,
        perm: &GpuBuffer,
        xperm: &GpuBuffer,
    ) -> Result<Dispatch> {
        let (grid, row) = self.grid(grids::gather_len(s));
        let s = grids::gather_step(s);
        self.dispatch(Shader::Lstm, "gather", &[], &s.params(row), &[(8, images), (9, perm), (10, xperm)], grid)
    }

    /// One LSTM step forward: biases into the gates, then c and h.
    pub fn lstm_cell_forward(
        &self,
        s: LstmStep,
        weights: &GpuBuffer,
        gates: &GpuBuffer,
        cells: &GpuBuffer,
        hidden: &GpuBuffer,
        last: &GpuBuffer,
    ) -> Result<Dispatch> {
        let (grid, row) = self.grid(grids::cell_len(&s));
        self.dispatch(
            Shader::Lstm,
            "cell_forward",
            &[],
            &s.params(row),
            &[(1, weights), (2, gates), (3, cells), (4, hidden), (5, last)],
            grid,
        )
    }

    /// One LSTM step backward: gates become their gradients; dc carries d loss / d c.
    pub fn lstm_cell_backward(
        &self,
        s: LstmStep,
        gates: &GpuBuffer,
        cells: &GpuBuffer,
        dh: &GpuBuffer,
        dc: &GpuBuffer,
    ) -> Result<Dispatch> {
        let (grid, row) = self.grid(grids::cell_len(&s));
        self.dispatch(
            Shader::Lstm,
            "cell_backward",
            &[],
            &s.params(row),
            &[(2, gates), (3, cells), (6, dh), (7, dc)],
            grid,
        )
    }
}

params!(
    Shader::Adam,
    "AdamParams",
    struct AdamParams {
        len: u32,
        row: u32,
        p_off: u32,
        _p0: u32,
        step_size: f32,
        bc2_sqrt: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        _pad: [u32; 3],
    }
);

impl Gpu {
    /// One Adam step on `grad.len` parameters of `param` from element `param.1`, with moments `m`, `v`.
    pub fn adam(
        &self,
        s: AdamStep,
        grad: &GpuBuffer,
        param: (&GpuBuffer, usize),
        m: &GpuBuffer,
        v: &GpuBuffer,
    ) -> Result<Dispatch> {
        let ((param, p_off), len) = (param, grad.len);
        let (grid, row) = self.grid(len);
        let (step_size, bc2_sqrt) = s.corrections();
        let params = AdamParams {
            len: u(len),
            row,
            p_off: u(p_off),
            _p0: 0,
            step_size: step_size as f32,
            bc2_sqrt: bc2_sqrt as f32,
            beta1: s.beta1 as f32,
            beta2: s.beta2 as f32,
            eps: s.eps as f32,
            _pad: [0; 3],
        };
        self.dispatch(Shader::Adam, "step", &[], &params, &[(1, grad), (2, param), (3, m), (4, v)], grid)
    }

    /// Makes a recorded Adam dispatch take step `s` (its bias corrections are the only parameters that
    /// change between steps): rewrites them in the dispatch's uniform, creating nothing.
    pub fn set_adam_step(&self, d: &Dispatch, s: AdamStep) {
        let (step_size, bc2_sqrt) = s.corrections();
        let fields = [step_size as f32, bc2_sqrt as f32];
        let offset = std::mem::offset_of!(AdamParams, step_size) as u64;
        self.queue.write_buffer(&d.uniform, offset, bytemuck::cast_slice(&fields));
    }
}

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

impl Gpu {
    /// Copies each run's mini-batch (images and labels) out of the dataset.
    pub fn select_images(
        &self,
        s: Selection,
        src: (&GpuBuffer, &GpuBuffer),
        idx: &GpuBuffer,
        dst: (&GpuBuffer, &GpuBuffer),
    ) -> Result<Dispatch> {
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
        self.dispatch(
            Shader::Select,
            "select_images",
            &[],
            &params,
            &[(1, src.0), (2, src.1), (3, idx), (4, dst.0), (5, dst.1)],
            grid,
        )
    }
}
