//! Vector operations over B rows at once (row b of a buffer starts at b * stride), for the optimizers.
//! Reductions read back one f32 partial per workgroup and add them in f64: only scalars cross the bus.

use anyhow::Result;
use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Gpu, GpuBuffer, Shader};

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

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct VectorParams {
    len: u32,
    stride: u32,
    groups: u32,
    _pad: u32,
}

fn layout(r: &Rows) -> (VectorParams, [u32; 3]) {
    let groups = r.len.div_ceil(256).clamp(1, 256) as u32;
    (VectorParams { len: r.len as u32, stride: r.stride as u32, groups, _pad: 0 }, [groups, r.rows as u32, 1])
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
        let (params, grid) = layout(&x);
        self.dispatch(Shader::Vector, "axpy", &[], &params, &[(1, x.buf), (2, y.buf), (3, &coef)], grid)
    }

    /// y_b <- a_b y_b for every row b.
    pub fn scale(&self, a: &[f32], y: Rows) -> Result<()> {
        assert_eq!(a.len(), y.rows, "one coefficient per row");
        let coef = self.upload(a, "coefficients")?;
        let (params, grid) = layout(&y);
        let d = self.dispatch(Shader::Vector, "scale", &[], &params, &[(2, y.buf), (3, &coef)], grid)?;
        self.submit(&[&d]);
        Ok(())
    }
}
