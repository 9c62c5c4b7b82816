//! Typed launch helpers for the network building blocks: strided batched matrix products, element-wise
//! activations and loss heads. They know shapes and strides, nothing about networks.

use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Act, Head, Layout, LossChunk, Product};
use anyhow::Result;

/// Where an operand's elements live.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A buffer of f32.
    F32(&'a GpuBuffer),
    /// The packed-u8 image buffer, read as byte/255.
    Images(&'a GpuBuffer),
}

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

impl Act {
    fn code(self) -> f64 {
        match self {
            Act::Softplus => 0.0,
            Act::Relu => 1.0,
            Act::Sigmoid => 2.0,
            Act::Tanh => 3.0,
        }
    }
}

params!(
    Shader::Activation,
    "Params",
    struct ElementParams {
        len: u32,
        row: u32,
        _pad: [u32; 2],
    }
);

params!(
    Shader::Loss,
    "Params",
    struct LossParams {
        images: u32,
        width: u32,
        first_image: u32,
        part_off: u32,
        parts: u32,
        out_bs: u32,
        inv_total: f32,
        img_bs: u32,
    }
);

/// A 2-D grid of 256-thread workgroups covering `len` elements ([`super::grids::element_groups`]);
/// counts past 32 bits saturate, and [`Gpu::dispatch`] refuses them as past the adapter's limit.
pub(super) fn element_grid(len: usize, max: u32) -> ([u32; 3], u32) {
    let (groups, row) = super::grids::element_groups(len, max);
    (groups32(groups), u32::try_from(row).unwrap_or(u32::MAX))
}

/// A grid in the `u32` wgpu takes, saturating (a saturated count exceeds every adapter's limit).
pub(super) fn groups32(g: [u64; 3]) -> [u32; 3] {
    g.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// The buffer behind a source, and whether it is the packed image buffer.
pub(super) fn split(src: Source<'_>) -> (&GpuBuffer, bool) {
    match src {
        Source::F32(b) => (b, false),
        Source::Images(b) => (b, true),
    }
}

pub(super) fn u(v: usize) -> u32 {
    u32::try_from(v).expect("index exceeds 32 bits")
}

impl Gpu {
    /// Records C (+)= A * B for every batch member (see [`Layout`]); A may not use column groups.
    pub fn matmul(
        &self,
        shape: Product,
        a: (Source, Layout),
        b: (Source, Layout),
        c: (&GpuBuffer, Layout),
    ) -> Result<Dispatch> {
        assert!(a.1.group.is_none(), "operand A cannot be grouped");
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
        self.dispatch(
            Shader::Matmul,
            "main",
            &[("A_BYTES", a_bytes as u32 as f64), ("B_BYTES", b_bytes as u32 as f64)],
            &params,
            &[(1, a_f32), (2, b_f32), (3, c.0), (4, images)],
            groups32(super::grids::matmul_groups(&shape)),
        )
    }

    /// Records `out = act(z)` over the first `len` elements.
    pub fn activation_forward(&self, act: Act, z: &GpuBuffer, out: &GpuBuffer, len: usize) -> Result<Dispatch> {
        self.elementwise("forward", act, z, out, len)
    }

    /// Records `grad *= act'(z)` over the first `len` elements.
    pub fn activation_backward(&self, act: Act, z: &GpuBuffer, grad: &GpuBuffer, len: usize) -> Result<Dispatch> {
        self.elementwise("backward", act, z, grad, len)
    }

    fn elementwise(
        &self,
        entry: &'static str,
        act: Act,
        z: &GpuBuffer,
        out: &GpuBuffer,
        len: usize,
    ) -> Result<Dispatch> {
        let (groups, row) = element_grid(len, self.limits.max_compute_workgroups_per_dimension);
        let params = ElementParams { len: u(len), row, _pad: [0; 2] };
        self.dispatch(Shader::Activation, entry, &[("ACT", act.code())], &params, &[(1, z), (2, out)], groups)
    }

    /// Records a loss head: per-image losses into `partials`, d loss / d outputs into `grad`.
    pub fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &GpuBuffer,
        targets: &GpuBuffer,
        grad: &GpuBuffer,
        partials: &GpuBuffer,
    ) -> Result<Dispatch> {
        let params = LossParams {
            images: u(chunk.images),
            width: u(chunk.width),
            first_image: u(chunk.first_image),
            part_off: u(chunk.part_off),
            parts: u(chunk.parts),
            out_bs: u(chunk.out_batch_stride),
            inv_total: 1.0 / chunk.total_images as f32,
            img_bs: u(chunk.img_bs),
        };
        let (entry, target_binding) = match head {
            Head::CrossEntropy => ("cross_entropy", 2),
            Head::MseSigmoid => ("mse_sigmoid", 5),
        };
        self.dispatch(
            Shader::Loss,
            entry,
            &[],
            &params,
            &[(1, outputs), (target_binding, targets), (3, grad), (4, partials)],
            groups32(super::grids::loss_groups(&chunk)),
        )
    }
}
