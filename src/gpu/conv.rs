//! Launches of the convolution kernels (`shaders/conv.wgsl`).

use anyhow::Result;

use super::grids;
use super::launch::{groups32, split, u};
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Conv, Convolutions, Source};

/// The shader's parameters of a convolution: `shared` when the input is the image buffer.
fn conv_params(c: &Conv, shared: bool, accumulate: bool, row: u32) -> ConvParams {
    ConvParams {
        images: u(c.images),
        in_c: u(c.in_c),
        in_h: u(c.in_h),
        in_w: u(c.in_w),
        out_c: u(c.out_c),
        out_h: u(c.out_h()),
        out_w: u(c.out_w()),
        ksize: u(c.ksize),
        stride: u(c.stride),
        pad: u(c.pad),
        batches: u(c.batches),
        in_off: u(c.in_off),
        in_bs: u(c.in_bs(shared)),
        out_bs: u(c.out_bs()),
        w_off: u(c.w_off),
        b_off: u(c.b_off.unwrap_or(0)),
        has_bias: c.b_off.is_some() as u32,
        n_prm: u(c.n_prm),
        accumulate: accumulate as u32,
        row,
    }
}

params!(
    Shader::Conv,
    "ConvParams",
    struct ConvParams {
        images: u32,
        in_c: u32,
        in_h: u32,
        in_w: u32,
        out_c: u32,
        out_h: u32,
        out_w: u32,
        ksize: u32,
        stride: u32,
        pad: u32,
        batches: u32,
        in_off: u32,
        in_bs: u32,
        out_bs: u32,
        w_off: u32,
        b_off: u32,
        has_bias: u32,
        n_prm: u32,
        accumulate: u32,
        row: u32,
    }
);

impl Convolutions for Gpu {
    fn conv_forward(
        &self,
        c: Conv,
        input: Source<GpuBuffer>,
        weights: &GpuBuffer,
        out: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        c.check()?;
        let (buf, bytes) = split(input);
        let (grid, row) = self.grid(c.out_total());
        let (f32_in, byte_in) = if bytes { (&self.dummy, buf) } else { (buf, &self.dummy) };
        Ok(vec![self.dispatch(
            Shader::Conv,
            "forward",
            &[("IN_BYTES", bytes as u32 as f64)],
            &conv_params(&c, bytes, false, row),
            &[(1, f32_in), (2, weights), (3, out), (4, byte_in)],
            grid,
        )?])
    }

    fn conv_weight_grad(
        &self,
        c: Conv,
        input: Source<GpuBuffer>,
        grad_out: &GpuBuffer,
        grads: &GpuBuffer,
        accumulate: bool,
    ) -> Result<Vec<Dispatch>> {
        c.check()?;
        let (buf, bytes) = split(input);
        let (f32_in, byte_in) = if bytes { (&self.dummy, buf) } else { (buf, &self.dummy) };
        Ok(vec![self.dispatch(
            Shader::Conv,
            "weight_grad",
            &[("IN_BYTES", bytes as u32 as f64)],
            &conv_params(&c, bytes, accumulate, 0),
            &[(1, f32_in), (3, grads), (4, byte_in), (5, grad_out)],
            groups32(grids::conv_weight_groups(&c)),
        )?])
    }

    fn conv_input_grad(
        &self,
        c: Conv,
        weights: &GpuBuffer,
        grad_out: &GpuBuffer,
        grad_in: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        c.check()?;
        let (grid, row) = self.grid(c.in_grad_total());
        Ok(vec![self.dispatch(
            Shader::Conv,
            "input_grad",
            &[("IN_BYTES", 0.0)],
            &conv_params(&c, false, false, row),
            &[(2, weights), (3, grad_in), (5, grad_out)],
            grid,
        )?])
    }
}
