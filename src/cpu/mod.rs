//! The native CPU backend: the kernel vocabulary executed in f32 on the host, matrix products through
//! the `gemm` crate, everything else as plain Rust over slices with `rayon`. Operations are recorded as
//! [`CpuOp`] values (the counterpart of a GPU dispatch) and run in order when submitted.

mod buffer;
pub mod conv;
pub mod flush;
pub mod gemm;
pub mod kernels;
pub mod math;
pub mod simd;

use anyhow::{bail, Result};
use rayon::prelude::*;

use crate::ops::{Act, AdamStep, Conv, Head, Layout, LossChunk, LstmStep, Product, Reduced, Selection};
pub use buffer::{distinct, exclusive, CpuBuffer, Exclusive};
pub use flush::Flushed;
pub use simd::Simd;

/// The host as a compute device. Its kernels run with subnormals flushed to zero ([`flush`]).
pub struct Cpu {
    /// Worker threads (rayon's pool).
    pub threads: usize,
    /// The widest SIMD instruction set the `gemm` kernels can use here.
    pub simd: String,
    /// The level the element-wise kernels run at ([`Simd::effective`] of what was asked).
    pub kernels: Simd,
}

impl Cpu {
    /// The CPU backend at the level `LOSSCAPE_SIMD` asks for, or the widest this processor has when
    /// the variable is unset or invalid (with a warning on stderr; [`Cpu::from_env`] refuses instead).
    pub fn new() -> Cpu {
        Cpu::from_env().unwrap_or_else(|e| {
            eprintln!("warning: {e:#}; using {}", Simd::detect().name());
            Cpu::with_simd(Simd::detect())
        })
    }

    /// The CPU backend at the level `LOSSCAPE_SIMD` asks for.
    ///
    /// Errors: the variable names an unknown level or one this processor lacks.
    pub fn from_env() -> Result<Cpu> {
        Ok(Cpu::with_simd(Simd::from_env()?))
    }

    /// The CPU backend with its element-wise kernels at `simd` (or the widest level below it that this
    /// processor has).
    pub fn with_simd(simd: Simd) -> Cpu {
        flush::ensure_workers();
        Cpu { threads: rayon::current_num_threads(), simd: simd_level(), kernels: simd.effective() }
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

/// The best vector extension of this processor that matters for f32 products.
pub fn simd_level() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let level = if std::is_x86_feature_detected!("avx512f") {
            "avx512f"
        } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            "avx2+fma"
        } else if std::is_x86_feature_detected!("avx") {
            "avx"
        } else {
            "sse2"
        };
        level.to_string()
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon".to_string()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar".to_string()
    }
}

/// `len` elements of `rows` rows, `stride` apart, in one buffer.
#[derive(Clone)]
pub struct CpuRows {
    pub buf: CpuBuffer,
    pub rows: usize,
    pub len: usize,
    pub stride: usize,
}

/// A per-row coefficient: `factor`, times element `row * stride + index` of `scalars` when given.
#[derive(Clone)]
pub struct CpuCoef {
    pub scalars: Option<CpuBuffer>,
    pub index: usize,
    pub stride: usize,
    pub factor: f32,
}

impl CpuCoef {
    fn at(&self, row: usize, l: &Exclusive) -> f32 {
        match &self.scalars {
            Some(b) => self.factor * b.view(l)[row * self.stride + self.index],
            None => self.factor,
        }
    }
    fn buffers(&self) -> Vec<&CpuBuffer> {
        self.scalars.iter().collect()
    }
}

/// One recorded operation of the CPU backend (the buffers are shared handles).
pub enum CpuOp {
    MatMul {
        p: Product,
        a: (CpuBuffer, Layout),
        b: (CpuBuffer, Layout),
        c: (CpuBuffer, Layout),
    },
    Activation {
        act: Act,
        backward: bool,
        z: CpuBuffer,
        out: CpuBuffer,
        len: usize,
    },
    Loss {
        head: Head,
        chunk: LossChunk,
        outputs: CpuBuffer,
        targets: CpuBuffer,
        grad: CpuBuffer,
        partials: CpuBuffer,
    },
    ConvForward {
        conv: Conv,
        images: bool,
        input: CpuBuffer,
        weights: CpuBuffer,
        out: CpuBuffer,
    },
    ConvWeightGrad {
        conv: Conv,
        images: bool,
        input: CpuBuffer,
        grad_out: CpuBuffer,
        grads: CpuBuffer,
        accumulate: bool,
    },
    ConvInputGrad {
        conv: Conv,
        weights: CpuBuffer,
        grad_out: CpuBuffer,
        grad_in: CpuBuffer,
    },
    Pool {
        backward: bool,
        planes: usize,
        in_hw: usize,
        src: CpuBuffer,
        dst: CpuBuffer,
    },
    Gather {
        step: LstmStep,
        pixels: CpuBuffer,
        perm: CpuBuffer,
        out: CpuBuffer,
    },
    LstmForward {
        step: LstmStep,
        weights: CpuBuffer,
        gates: CpuBuffer,
        cells: CpuBuffer,
        hidden: CpuBuffer,
        last: CpuBuffer,
    },
    LstmBackward {
        step: LstmStep,
        gates: CpuBuffer,
        cells: CpuBuffer,
        dh: CpuBuffer,
        dc: CpuBuffer,
    },
    Adam {
        step: AdamStep,
        grad: CpuBuffer,
        param: (CpuBuffer, usize),
        m: CpuBuffer,
        v: CpuBuffer,
    },
    Select {
        sel: Selection,
        src: (CpuBuffer, CpuBuffer),
        idx: CpuBuffer,
        dst: (CpuBuffer, CpuBuffer),
    },
    Axpy {
        coef: Vec<f32>,
        x: CpuRows,
        y: CpuRows,
    },
    AxpyAt {
        coef: CpuCoef,
        x: CpuRows,
        y: CpuRows,
    },
    ScaleAt {
        coef: CpuCoef,
        y: CpuRows,
    },
    CopyRows {
        x: CpuRows,
        y: CpuRows,
        when: Option<CpuCoef>,
    },
    Reduce {
        x: CpuRows,
        y: CpuRows,
        scalars: CpuBuffer,
        width: usize,
        op: Reduced,
    },
}

impl CpuOp {
    /// Checks once, when the operation is recorded, that no output is also an input.
    pub fn checked(self) -> Result<CpuOp> {
        let (name, outs, ins) = self.operands();
        distinct(name, &outs, &ins)?;
        Ok(self)
    }

    fn operands(&self) -> (&'static str, Vec<&CpuBuffer>, Vec<&CpuBuffer>) {
        match self {
            CpuOp::MatMul { a, b, c, .. } => ("matrix product", vec![&c.0], vec![&a.0, &b.0]),
            CpuOp::Activation { z, out, .. } => ("activation", vec![out], vec![z]),
            CpuOp::Loss { outputs, targets, grad, partials, .. } => {
                ("loss head", vec![grad, partials], vec![outputs, targets])
            }
            CpuOp::ConvForward { input, weights, out, .. } => ("convolution", vec![out], vec![input, weights]),
            CpuOp::ConvWeightGrad { input, grad_out, grads, .. } => {
                ("convolution weight gradient", vec![grads], vec![input, grad_out])
            }
            CpuOp::ConvInputGrad { weights, grad_out, grad_in, .. } => {
                ("convolution input gradient", vec![grad_in], vec![weights, grad_out])
            }
            CpuOp::Pool { src, dst, .. } => ("average pooling", vec![dst], vec![src]),
            CpuOp::Gather { pixels, perm, out, .. } => ("pixel gather", vec![out], vec![pixels, perm]),
            CpuOp::LstmForward { weights, gates, cells, hidden, last, .. } => {
                ("LSTM cell", vec![gates, cells, hidden, last], vec![weights])
            }
            CpuOp::LstmBackward { gates, cells, dh, dc, .. } => {
                ("LSTM cell backward", vec![gates, dc], vec![cells, dh])
            }
            CpuOp::Adam { grad, param, m, v, .. } => ("Adam", vec![&param.0, m, v], vec![grad]),
            CpuOp::Select { src, idx, dst, .. } => {
                ("mini-batch selection", vec![&dst.0, &dst.1], vec![&src.0, &src.1, idx])
            }
            CpuOp::Axpy { x, y, .. } => ("axpy", vec![&y.buf], vec![&x.buf]),
            CpuOp::AxpyAt { coef, x, y } => ("axpy", vec![&y.buf], [vec![&x.buf], coef.buffers()].concat()),
            CpuOp::ScaleAt { coef, y } => ("scale", vec![&y.buf], coef.buffers()),
            CpuOp::CopyRows { x, y, when } => {
                ("row copy", vec![&y.buf], [vec![&x.buf], when.iter().flat_map(CpuCoef::buffers).collect()].concat())
            }
            CpuOp::Reduce { x, y, scalars, .. } => ("reduction", vec![scalars], vec![&x.buf, &y.buf]),
        }
    }
}

impl Cpu {
    /// Runs operations in order.
    pub fn submit(&self, ops: &[&CpuOp]) {
        let _flush = Flushed::new();
        let lock = exclusive();
        for op in ops {
            self.run(op, &lock);
        }
    }

    fn run(&self, op: &CpuOp, l: &Exclusive) {
        let (t, simd) = (self.threads, self.kernels);
        match op {
            CpuOp::MatMul { p, a, b, c } => {
                gemm::batched(p, (a.0.view(l), &a.1), (b.0.view(l), &b.1), (c.0.view_mut(l), &c.1), t)
            }
            CpuOp::Activation { act, backward: false, z, out, len } => {
                kernels::activation_forward(simd, *act, z.view(l), out.view_mut(l), *len)
            }
            CpuOp::Activation { act, backward: true, z, out, len } => {
                kernels::activation_backward(simd, *act, z.view(l), out.view_mut(l), *len)
            }
            CpuOp::Loss { head, chunk, outputs, targets, grad, partials } => {
                let targets = match head {
                    Head::CrossEntropy => kernels::Targets::Labels(targets.view(l)),
                    Head::MseSigmoid => kernels::Targets::Pixels(targets.view(l)),
                };
                kernels::loss_head(simd, *head, chunk, outputs.view(l), targets, grad.view_mut(l), partials.view_mut(l))
            }
            CpuOp::ConvForward { conv: c, images, input, weights, out } => {
                conv::forward(c, *images, input.view(l), weights.view(l), out.view_mut(l), t)
            }
            CpuOp::ConvWeightGrad { conv: c, images, input, grad_out, grads, accumulate } => {
                conv::weight_grad(c, *images, input.view(l), grad_out.view(l), grads.view_mut(l), *accumulate, t)
            }
            CpuOp::ConvInputGrad { conv: c, weights, grad_out, grad_in } => {
                conv::input_grad(c, weights.view(l), grad_out.view(l), grad_in.view_mut(l), t)
            }
            CpuOp::Pool { backward, planes, in_hw, src, dst } => {
                kernels::avg_pool(*backward, *planes, *in_hw, src.view(l), dst.view_mut(l))
            }
            CpuOp::Gather { step, pixels, perm, out } => {
                kernels::gather_pixels(step, pixels.view(l), perm.view(l), out.view_mut(l))
            }
            CpuOp::LstmForward { step, weights, gates, cells, hidden, last } => kernels::lstm_cell_forward(
                simd,
                step,
                weights.view(l),
                gates.view_mut(l),
                cells.view_mut(l),
                hidden.view_mut(l),
                last.view_mut(l),
            ),
            CpuOp::LstmBackward { step, gates, cells, dh, dc } => {
                kernels::lstm_cell_backward(simd, step, gates.view_mut(l), cells.view(l), dh.view(l), dc.view_mut(l))
            }
            CpuOp::Adam { step, grad, param, m, v } => {
                let g = grad.view(l);
                let p = &mut param.0.view_mut(l)[param.1..param.1 + g.len()];
                kernels::adam(simd, step, g, p, m.view_mut(l), v.view_mut(l))
            }
            CpuOp::Select { sel, src, idx, dst } => kernels::select_images(
                sel,
                (src.0.view(l), src.1.view(l)),
                idx.view(l),
                (dst.0.view_mut(l), dst.1.view_mut(l)),
            ),
            CpuOp::Axpy { coef, x, y } => axpy(coef, x, y, l),
            CpuOp::AxpyAt { coef, x, y } => {
                let a: Vec<f32> = (0..x.rows).map(|r| coef.at(r, l)).collect();
                axpy(&a, x, y, l)
            }
            CpuOp::ScaleAt { coef, y } => {
                let a: Vec<f32> = (0..y.rows).map(|r| coef.at(r, l)).collect();
                scale(&a, y, l)
            }
            CpuOp::CopyRows { x, y, when } => {
                let (xs, ys) = (x.buf.view(l), y.buf.view_mut(l));
                for r in 0..x.rows {
                    if when.as_ref().is_none_or(|c| c.at(r, l) != 0.0) {
                        ys[r * y.stride..][..y.len].copy_from_slice(&xs[r * x.stride..][..x.len]);
                    }
                }
            }
            CpuOp::Reduce { x, y, scalars, width, op } => {
                let d = dots(simd, x, y, l);
                let sc = scalars.view_mut(l);
                for (r, d) in d.into_iter().enumerate() {
                    op.apply(d, &mut sc[r * width..][..*width]);
                }
            }
        }
    }

    /// Per-row dot products x_b . y_b (f64 accumulation).
    pub fn dot(&self, x: &CpuRows, y: &CpuRows) -> Vec<f64> {
        let _flush = Flushed::new();
        dots(self.kernels, x, y, &exclusive())
    }

    /// Per-row sums (f64 accumulation).
    pub fn sum(&self, x: &CpuRows) -> Vec<f64> {
        let _flush = Flushed::new();
        let l = exclusive();
        let xs = x.buf.view(&l);
        (0..x.rows).map(|r| xs[r * x.stride..][..x.len].iter().map(|&v| v as f64).sum()).collect()
    }

    /// y_b <- a_b y_b.
    pub fn scale(&self, a: &[f32], y: &CpuRows) {
        let _flush = Flushed::new();
        scale(a, y, &exclusive())
    }

    /// Copies `len` elements between buffers (the same buffer allowed).
    pub fn copy(&self, src: &CpuBuffer, src_off: usize, dst: &CpuBuffer, dst_off: usize, len: usize) -> Result<()> {
        if src_off + len > src.len || dst_off + len > dst.len {
            bail!("copy of {len} elements past the end of a buffer");
        }
        let l = exclusive();
        if src.same(dst) {
            dst.view_mut(&l).copy_within(src_off..src_off + len, dst_off);
        } else {
            dst.view_mut(&l)[dst_off..dst_off + len].copy_from_slice(&src.view(&l)[src_off..src_off + len]);
        }
        Ok(())
    }

    /// Overwrites elements of `dst` from `offset` with 32-bit values.
    pub fn write(&self, dst: &CpuBuffer, offset: usize, data: &[f32]) -> Result<()> {
        if offset + data.len() > dst.len {
            bail!("write of {} elements past the end of a {}-element buffer", data.len(), dst.len);
        }
        let l = exclusive();
        dst.view_mut(&l)[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// Copies `len` elements from `offset` out.
    pub fn read(&self, src: &CpuBuffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        if offset + len > src.len {
            bail!("read of {len} elements past the end of a {}-element buffer", src.len);
        }
        let l = exclusive();
        Ok(src.view(&l)[offset..offset + len].to_vec())
    }
}

/// Per-row dot products: f32 over pieces of 4096 elements, the pieces added in f64 in order.
fn dots(simd: Simd, x: &CpuRows, y: &CpuRows, l: &Exclusive) -> Vec<f64> {
    let (xs, ys) = (x.buf.view(l), y.buf.view(l));
    (0..x.rows)
        .into_par_iter()
        .map(|r| {
            let (a, b) = (&xs[r * x.stride..][..x.len], &ys[r * y.stride..][..y.len]);
            a.chunks(4096).zip(b.chunks(4096)).map(|(a, b)| dot_f32(simd, a, b) as f64).sum()
        })
        .collect()
}

fn scale(a: &[f32], y: &CpuRows, l: &Exclusive) {
    let ys = y.buf.view_mut(l);
    for (r, &a) in a.iter().enumerate() {
        ys[r * y.stride..][..y.len].par_iter_mut().for_each(|v| *v *= a);
    }
}

simd::dispatch!(fn dot_f32(a: &[f32], b: &[f32]) -> f32 => dot_f32_plain);

/// The dot product in eight lanes ([`simd::sum8`]), the same order at every SIMD level.
#[inline(always)]
fn dot_f32_plain(a: &[f32], b: &[f32]) -> f32 {
    simd::sum8(a, b, |x, y| x * y)
}

fn axpy(coef: &[f32], x: &CpuRows, y: &CpuRows, l: &Exclusive) {
    let (xs, ys) = (x.buf.view(l), y.buf.view_mut(l));
    for (r, &a) in coef.iter().enumerate() {
        let xr = &xs[r * x.stride..][..x.len];
        ys[r * y.stride..][..y.len].par_chunks_mut(4096).zip(xr.par_chunks(4096)).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y += a * x);
        });
    }
}
