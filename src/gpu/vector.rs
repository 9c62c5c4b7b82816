//! Vector operations over B rows at once (row b of a buffer starts at b * stride), for the optimizers.
//! Immediate reductions read back one f32 partial per workgroup and add them in f64: only scalars cross
//! the bus. Recorded reductions ([`Gpu::reduce_dispatches`]) keep their result on the device: a second,
//! one-thread-per-row kernel adds the partials in order with compensated f32 summation into a double-f32
//! and applies an L-BFGS scalar operation ([`Reduced`]) in double-f32 arithmetic, so the optimizer's
//! next kernel reads it where it is.

use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::Reduced;
use anyhow::Result;

/// B rows of `len` elements, `stride` apart, inside one buffer.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub buf: &'a GpuBuffer,
    pub rows: usize,
    pub len: usize,
    pub stride: usize,
}

impl<'a> Rows<'a> {
    pub fn new(buf: &'a GpuBuffer, rows: usize, len: usize) -> Rows<'a> {
        assert!(rows * len <= buf.len, "rows exceed the buffer");
        Rows { buf, rows, len, stride: len }
    }
}

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

/// A per-row coefficient: `factor`, times element `row * stride + index` of `scalars` when given.
#[derive(Clone, Copy)]
pub struct Coef<'a> {
    pub scalars: Option<&'a GpuBuffer>,
    pub index: usize,
    pub stride: usize,
    pub factor: f32,
}

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

fn with_coef(mut params: VectorParams, c: &Coef) -> VectorParams {
    params.use_coef = c.scalars.is_some() as u32;
    params.coef_index = c.index as u32;
    params.coef_stride = c.stride as u32;
    params.factor = c.factor;
    params
}

impl Gpu {
    fn reduce(&self, entry: &'static str, x: Rows, w: Option<Rows>) -> Result<Vec<f64>> {
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

    /// Per-row dot products x_b . y_b.
    pub fn dot(&self, x: Rows, y: Rows) -> Result<Vec<f64>> {
        assert_eq!((x.rows, x.len, x.stride), (y.rows, y.len, y.stride), "dot of differently shaped rows");
        self.reduce("dot", x, Some(y))
    }

    /// Per-row sums.
    pub fn sum(&self, x: Rows) -> Result<Vec<f64>> {
        self.reduce("sum", x, None)
    }

    /// y_b <- y_b + a_b x_b for every row b.
    pub fn axpy(&self, a: &[f32], x: Rows, y: Rows) -> Result<()> {
        let d = self.axpy_dispatch(a, x, y)?;
        self.submit(&[&d]);
        Ok(())
    }

    /// The dispatch of `axpy`, to record once and submit many times (e.g. every SGD step).
    pub fn axpy_dispatch(&self, a: &[f32], x: Rows, y: Rows) -> Result<Dispatch> {
        assert_eq!((x.rows, x.len, x.stride), (y.rows, y.len, y.stride), "axpy of differently shaped rows");
        assert_eq!(a.len(), x.rows, "one coefficient per row");
        let coef = self.upload(a, "coefficients")?;
        self.axpy_at(Coef { scalars: Some(&coef), index: 0, stride: 1, factor: 1.0 }, x, y)
    }

    /// The dispatch of y_b <- y_b + a_b x_b with a_b from a [`Coef`].
    pub fn axpy_at(&self, a: Coef, x: Rows, y: Rows) -> Result<Dispatch> {
        let (params, grid) = layout(&x);
        let c = a.scalars.unwrap_or(&self.dummy);
        self.dispatch(Shader::Vector, "axpy", &[], &with_coef(params, &a), &[(1, x.buf), (2, y.buf), (3, c)], grid)
    }

    /// The dispatch of y_b <- a_b y_b with a_b from a [`Coef`].
    pub fn scale_at(&self, a: Coef, y: Rows) -> Result<Dispatch> {
        let (params, grid) = layout(&y);
        let c = a.scalars.unwrap_or(&self.dummy);
        self.dispatch(Shader::Vector, "scale", &[], &with_coef(params, &a), &[(2, y.buf), (3, c)], grid)
    }

    /// The dispatch of y_b <- x_b, for every row or (`when`) the rows whose flag is not 0.
    pub fn copy_rows(&self, x: Rows, y: Rows, when: Option<Coef>) -> Result<Dispatch> {
        let (params, grid) = layout(&x);
        let when = when.unwrap_or(Coef { scalars: None, index: 0, stride: 0, factor: 1.0 });
        let c = when.scalars.unwrap_or(&self.dummy);
        self.dispatch(Shader::Vector, "copy", &[], &with_coef(params, &when), &[(1, x.buf), (2, y.buf), (3, c)], grid)
    }

    /// The two dispatches of a recorded per-row dot product x_b . y_b whose result `op` applies to row
    /// b of `scalars` (`width` per row): per-workgroup partials, then the in-order compensated sum.
    pub fn reduce_dispatches(
        &self,
        x: Rows,
        y: Rows,
        scalars: &GpuBuffer,
        width: usize,
        op: Reduced,
    ) -> Result<Vec<Dispatch>> {
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

    /// y_b <- a_b y_b for every row b.
    pub fn scale(&self, a: &[f32], y: Rows) -> Result<()> {
        assert_eq!(a.len(), y.rows, "one coefficient per row");
        let coef = self.upload(a, "coefficients")?;
        let d = self.scale_at(Coef { scalars: Some(&coef), index: 0, stride: 1, factor: 1.0 }, y)?;
        self.submit(&[&d]);
        Ok(())
    }
}
