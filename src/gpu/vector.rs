//! Vector operations over B rows at once (row b of a buffer starts at b * stride), for the optimizers.
//! Immediate reductions ([`VectorOps::dot`], [`VectorOps::sum`]) read back one f32 partial per workgroup and add them in f64: only scalars cross
//! the bus. Recorded reductions ([`VectorOps::reduce`]) keep their result on the device: a second,
//! one-thread-per-row kernel adds the partials in order with compensated f32 summation into a double-f32
//! and applies an L-BFGS scalar operation ([`Reduced`]) in double-f32 arithmetic, so the optimizer's
//! next kernel reads it where it is.

use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Coef, Reduced, VectorOps};

type Rows<'a> = crate::ops::Rows<'a, GpuBuffer>;
use anyhow::Result;

params!(
    Shader::Vector,
    "Params",
    struct VectorParams {
        len: u32,
        stride: u32,
        groups: u32,
        rows: u32,
        use_coef: u32,
        coef_index: u32,
        coef_stride: u32,
        factor: f32,
        op: u32,
        pair: u32,
        width: u32,
        /// Always 1.0: the shader multiplies by it where the compiler must not simplify float algebra.
        one: f32,
    }
);

fn layout(r: &Rows) -> (VectorParams, [u32; 3]) {
    let groups = r.len.div_ceil(256).clamp(1, 256) as u32;
    let params = VectorParams {
        len: r.len as u32,
        stride: r.stride as u32,
        groups,
        rows: r.rows as u32,
        use_coef: 0,
        coef_index: 0,
        coef_stride: 0,
        factor: 1.0,
        op: 0,
        pair: 0,
        width: 0,
        one: 1.0,
    };
    (params, [groups, r.rows as u32, 1])
}

fn with_coef(mut params: VectorParams, c: &Coef<GpuBuffer>) -> VectorParams {
    params.use_coef = c.scalars.is_some() as u32;
    params.coef_index = c.index as u32;
    params.coef_stride = c.stride as u32;
    params.factor = c.factor;
    params
}

impl Gpu {
    fn reduce_now(&self, entry: &'static str, x: Rows, w: Option<Rows>) -> Result<Vec<f64>> {
        let (params, grid) = layout(&x);
        let partials = self.zeros(x.rows * grid[0] as usize, "partials")?;
        let mut buffers = vec![(1, x.buf), (4, &partials)];
        if let Some(w) = &w {
            buffers.push((5, w.buf));
        }
        let d = self.dispatch(Shader::Vector, entry, &[], &params, &buffers, grid)?;
        self.submit(&[&d]);
        let parts: Vec<f32> = self.read(&partials, 0, partials.len)?;
        Ok(parts.chunks(grid[0] as usize).map(|c| c.iter().map(|&v| v as f64).sum()).collect())
    }
}

impl VectorOps for Gpu {
    fn run_dot(&self, x: Rows, y: Rows) -> Result<Vec<f64>> {
        self.reduce_now("dot", x, Some(y))
    }

    fn run_sum(&self, x: Rows) -> Result<Vec<f64>> {
        self.reduce_now("sum", x, None)
    }

    fn run_scale(&self, a: &[f32], y: Rows) -> Result<()> {
        let coef = self.upload(a, "coefficients")?;
        let d = self.record_scale_at(Coef::at(&coef, 0, 1), y)?;
        self.submit(&d.iter().collect::<Vec<_>>());
        Ok(())
    }

    fn record_axpy(&self, a: &[f32], x: Rows, y: Rows) -> Result<Vec<Dispatch>> {
        let coef = self.upload(a, "coefficients")?;
        self.record_axpy_at(Coef::at(&coef, 0, 1), x, y)
    }

    fn record_axpy_at(&self, a: Coef<GpuBuffer>, x: Rows, y: Rows) -> Result<Vec<Dispatch>> {
        let (params, grid) = layout(&x);
        let c = a.scalars.unwrap_or(&self.dummy);
        let buffers = [(1, x.buf), (2, y.buf), (3, c)];
        Ok(vec![self.dispatch(Shader::Vector, "axpy", &[], &with_coef(params, &a), &buffers, grid)?])
    }

    fn record_scale_at(&self, a: Coef<GpuBuffer>, y: Rows) -> Result<Vec<Dispatch>> {
        let (params, grid) = layout(&y);
        let c = a.scalars.unwrap_or(&self.dummy);
        Ok(vec![self.dispatch(Shader::Vector, "scale", &[], &with_coef(params, &a), &[(2, y.buf), (3, c)], grid)?])
    }

    fn record_copy_rows(&self, x: Rows, y: Rows, when: Option<Coef<GpuBuffer>>) -> Result<Vec<Dispatch>> {
        let (params, grid) = layout(&x);
        let when = when.unwrap_or(Coef::constant(1.0));
        let c = when.scalars.unwrap_or(&self.dummy);
        let buffers = [(1, x.buf), (2, y.buf), (3, c)];
        Ok(vec![self.dispatch(Shader::Vector, "copy", &[], &with_coef(params, &when), &buffers, grid)?])
    }

    /// Two dispatches: per-workgroup partials of the dot products, then the in-order compensated sum
    /// and `op`.
    fn record_reduce(&self, x: Rows, y: Rows, scalars: &GpuBuffer, width: usize, op: Reduced) -> Result<Vec<Dispatch>> {
        let (mut params, grid) = layout(&x);
        let partials = self.zeros(x.rows * grid[0] as usize, "partials")?;
        let first =
            self.dispatch(Shader::Vector, "dot", &[], &params, &[(1, x.buf), (4, &partials), (5, y.buf)], grid)?;
        (params.op, params.pair) = op.code();
        params.width = width as u32;
        let rows = (x.rows as u32).div_ceil(64);
        let second =
            self.dispatch(Shader::Vector, "finish", &[], &params, &[(4, &partials), (6, scalars)], [rows, 1, 1])?;
        Ok(vec![first, second])
    }
}
