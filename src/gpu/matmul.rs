//! Launches of the strided batched matrix product (`shaders/matmul.wgsl`).

use anyhow::Result;

use super::launch::{groups32, split, u};
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Layout, Product, Products, Source};

fn grouping(l: &Layout, cols: usize) -> (u32, u32) {
    match l.group {
        Some((size, stride)) => (size as u32, stride as u32),
        None => (cols.max(1) as u32, 0),
    }
}

params!(
    Shader::Matmul,
    "Params",
    struct MatmulParams {
        m: u32,
        n: u32,
        k: u32,
        accumulate: u32,
        a_off: u32,
        a_bs: u32,
        a_rs: u32,
        a_cs: u32,
        b_off: u32,
        b_bs: u32,
        b_rs: u32,
        b_cs: u32,
        b_ng: u32,
        b_gs: u32,
        c_off: u32,
        c_bs: u32,
        c_rs: u32,
        c_cs: u32,
        c_ng: u32,
        c_gs: u32,
        alpha: f32,
        _pad: [u32; 3],
    }
);

impl Products for Gpu {
    fn record_matmul(
        &self,
        shape: Product,
        a: (Source<GpuBuffer>, Layout),
        b: (Source<GpuBuffer>, Layout),
        c: (&GpuBuffer, Layout),
    ) -> Result<Vec<Dispatch>> {
        let (a_src, a_lay) = a;
        let (b_src, b_lay) = b;
        let (b_ng, b_gs) = grouping(&b_lay, shape.n);
        let (c_ng, c_gs) = grouping(&c.1, shape.n);
        let params = MatmulParams {
            m: u(shape.m),
            n: u(shape.n),
            k: u(shape.k),
            accumulate: shape.accumulate as u32,
            a_off: u(a_lay.off),
            a_bs: u(a_lay.batch),
            a_rs: u(a_lay.row),
            a_cs: u(a_lay.col),
            b_off: u(b_lay.off),
            b_bs: u(b_lay.batch),
            b_rs: u(b_lay.row),
            b_cs: u(b_lay.col),
            b_ng,
            b_gs,
            c_off: u(c.1.off),
            c_bs: u(c.1.batch),
            c_rs: u(c.1.row),
            c_cs: u(c.1.col),
            c_ng,
            c_gs,
            alpha: 1.0,
            _pad: [0; 3],
        };
        let (a_buf, a_bytes) = split(a_src);
        let (b_buf, b_bytes) = split(b_src);
        let images = if a_bytes {
            a_buf
        } else if b_bytes {
            b_buf
        } else {
            &self.dummy
        };
        let a_f32 = if a_bytes { &self.dummy } else { a_buf };
        let b_f32 = if b_bytes { &self.dummy } else { b_buf };
        Ok(vec![self.dispatch(
            Shader::Matmul,
            "main",
            &[("A_BYTES", a_bytes as u32 as f64), ("B_BYTES", b_bytes as u32 as f64)],
            &params,
            &[(1, a_f32), (2, b_f32), (3, c.0), (4, images)],
            groups32(super::grids::matmul_groups(&shape)),
        )?])
    }
}
