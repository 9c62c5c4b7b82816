//! Vector operations on the CPU (`shaders/vector.wgsl`): per-row dot products and sums accumulated in
//! f64, axpy, scaling, row copies, and the recorded reductions that apply an L-BFGS scalar operation
//! ([`Reduced`]) in f64.

use anyhow::Result;
use rayon::prelude::*;

use super::buffer::{exclusive, Exclusive};
use super::flush::Flushed;
use super::simd::{self, Simd};
use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{Coef, Reduced, Rows, VectorOps};

/// Rows a recorded command owns (a shared handle of the buffer, where [`Rows`] borrows it).
#[derive(Clone)]
struct Owned {
    buf: CpuBuffer,
    rows: usize,
    len: usize,
    stride: usize,
}

impl Owned {
    fn of(r: Rows<CpuBuffer>) -> Owned {
        Owned { buf: r.buf.clone(), rows: r.rows, len: r.len, stride: r.stride }
    }
}

/// A per-row coefficient a recorded command owns.
#[derive(Clone)]
struct OwnedCoef {
    scalars: Option<CpuBuffer>,
    index: usize,
    stride: usize,
    factor: f32,
}

impl OwnedCoef {
    fn of(c: Coef<CpuBuffer>) -> OwnedCoef {
        OwnedCoef { scalars: c.scalars.cloned(), index: c.index, stride: c.stride, factor: c.factor }
    }
    fn at(&self, row: usize, l: &Exclusive) -> f32 {
        match &self.scalars {
            Some(b) => self.factor * b.view(l)[row * self.stride + self.index],
            None => self.factor,
        }
    }
    fn all(&self, rows: usize, l: &Exclusive) -> Vec<f32> {
        (0..rows).map(|r| self.at(r, l)).collect()
    }
    fn buffers(&self) -> Vec<&CpuBuffer> {
        self.scalars.iter().collect()
    }
}

impl VectorOps for Cpu {
    fn run_dot(&self, x: Rows<CpuBuffer>, y: Rows<CpuBuffer>) -> Result<Vec<f64>> {
        let _flush = Flushed::new();
        Ok(dots(self.kernels, &Owned::of(x), &Owned::of(y), &exclusive()))
    }

    fn run_sum(&self, x: Rows<CpuBuffer>) -> Result<Vec<f64>> {
        let _flush = Flushed::new();
        let l = exclusive();
        let xs = x.buf.view(&l);
        Ok((0..x.rows).map(|r| xs[r * x.stride..][..x.len].iter().map(|&v| v as f64).sum()).collect())
    }

    fn run_scale(&self, a: &[f32], y: Rows<CpuBuffer>) -> Result<()> {
        let _flush = Flushed::new();
        scale(a, &Owned::of(y), &exclusive());
        Ok(())
    }

    fn record_axpy(&self, a: &[f32], x: Rows<CpuBuffer>, y: Rows<CpuBuffer>) -> Result<CpuCommand> {
        let (a, x, y) = (a.to_vec(), Owned::of(x), Owned::of(y));
        Ok(CpuCommand::checked("axpy", &[&y.buf], &[&x.buf])?.run(move |_, l| axpy(&a, &x, &y, l)))
    }

    fn record_axpy_at(&self, a: Coef<CpuBuffer>, x: Rows<CpuBuffer>, y: Rows<CpuBuffer>) -> Result<CpuCommand> {
        let (a, x, y) = (OwnedCoef::of(a), Owned::of(x), Owned::of(y));
        let inputs = [vec![&x.buf], a.buffers()].concat();
        Ok(CpuCommand::checked("axpy", &[&y.buf], &inputs)?.run(move |_, l| axpy(&a.all(x.rows, l), &x, &y, l)))
    }

    fn record_scale_at(&self, a: Coef<CpuBuffer>, y: Rows<CpuBuffer>) -> Result<CpuCommand> {
        let (a, y) = (OwnedCoef::of(a), Owned::of(y));
        Ok(CpuCommand::checked("scale", &[&y.buf], &a.buffers())?.run(move |_, l| scale(&a.all(y.rows, l), &y, l)))
    }

    fn record_copy_rows(
        &self,
        x: Rows<CpuBuffer>,
        y: Rows<CpuBuffer>,
        when: Option<Coef<CpuBuffer>>,
    ) -> Result<CpuCommand> {
        let (x, y, when) = (Owned::of(x), Owned::of(y), when.map(OwnedCoef::of));
        let inputs = [vec![&x.buf], when.iter().flat_map(OwnedCoef::buffers).collect()].concat();
        Ok(CpuCommand::checked("row copy", &[&y.buf], &inputs)?.run(move |_, l| {
            let (xs, ys) = (x.buf.view(l), y.buf.view_mut(l));
            for r in 0..x.rows {
                if when.as_ref().is_none_or(|c| c.at(r, l) != 0.0) {
                    ys[r * y.stride..][..y.len].copy_from_slice(&xs[r * x.stride..][..x.len]);
                }
            }
        }))
    }

    fn record_reduce(
        &self,
        x: Rows<CpuBuffer>,
        y: Rows<CpuBuffer>,
        scalars: &CpuBuffer,
        width: usize,
        op: Reduced,
    ) -> Result<CpuCommand> {
        let (x, y, scalars) = (Owned::of(x), Owned::of(y), scalars.clone());
        Ok(CpuCommand::checked("reduction", &[&scalars], &[&x.buf, &y.buf])?.run(move |cpu, l| {
            let d = dots(cpu.kernels, &x, &y, l);
            let sc = scalars.view_mut(l);
            for (r, d) in d.into_iter().enumerate() {
                op.apply(d, &mut sc[r * width..][..width]);
            }
        }))
    }
}

/// Per-row dot products: f32 over pieces of 4096 elements, the pieces added in f64 in order.
fn dots(simd: Simd, x: &Owned, y: &Owned, l: &Exclusive) -> Vec<f64> {
    let (xs, ys) = (x.buf.view(l), y.buf.view(l));
    (0..x.rows)
        .into_par_iter()
        .map(|r| {
            let (a, b) = (&xs[r * x.stride..][..x.len], &ys[r * y.stride..][..y.len]);
            a.chunks(4096).zip(b.chunks(4096)).map(|(a, b)| dot_f32(simd, a, b) as f64).sum()
        })
        .collect()
}

/// Elements below which a row's scale or axpy is not split among threads: waking a worker costs more
/// than it saves (an SGD step on one LSTM run's 15,456 parameters).
const SERIAL_LEN: usize = 1 << 16;

fn scale(a: &[f32], y: &Owned, l: &Exclusive) {
    let ys = y.buf.view_mut(l);
    for (r, &a) in a.iter().enumerate() {
        ys[r * y.stride..][..y.len].par_iter_mut().with_min_len(SERIAL_LEN).for_each(|v| *v *= a);
    }
}

simd::dispatch!(fn dot_f32(a: &[f32], b: &[f32]) -> f32 => dot_f32_plain);

/// The dot product in eight lanes ([`simd::sum8`]), the same order at every SIMD level.
#[inline(always)]
fn dot_f32_plain(a: &[f32], b: &[f32]) -> f32 {
    simd::sum8!(a, b, |x, y| x * y)
}

fn axpy(coef: &[f32], x: &Owned, y: &Owned, l: &Exclusive) {
    let (xs, ys) = (x.buf.view(l), y.buf.view_mut(l));
    for (r, &a) in coef.iter().enumerate() {
        let xr = &xs[r * x.stride..][..x.len];
        let pieces = ys[r * y.stride..][..y.len].par_chunks_mut(4096).zip(xr.par_chunks(4096));
        pieces.with_min_len(SERIAL_LEN / 4096).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y += a * x);
        });
    }
}
