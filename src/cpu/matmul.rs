//! Strided single-precision matrix products on the CPU through the `gemm` crate (which packs operands
//! and runs SIMD micro-kernels for any row and column strides), and the batched, column-grouped
//! product of the kernel vocabulary ([`crate::ops::Layout`]) decomposed into plain strided products.

use anyhow::Result;
use rayon::prelude::*;

use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{layout_end, Layout, Product, Products, Source};

impl Products for Cpu {
    fn record_matmul(
        &self,
        p: Product,
        a: (Source<CpuBuffer>, Layout),
        b: (Source<CpuBuffer>, Layout),
        c: (&CpuBuffer, Layout),
    ) -> Result<CpuCommand> {
        // the CPU's image buffer holds f32 pixels: an image operand is read like any other
        let (a, b, c) = ((a.0.buffer().clone(), a.1), (b.0.buffer().clone(), b.1), (c.0.clone(), c.1));
        Ok(CpuCommand::checked("matrix product", &[&c.0], &[&a.0, &b.0])?.run(move |cpu, l| {
            batched(&p, (a.0.view(l), &a.1), (b.0.view(l), &b.1), (c.0.view_mut(l), &c.1), cpu.threads)
        }))
    }
}

/// A strided matrix inside a slice: element (r, c) at `off + r * rs + c * cs`.
#[derive(Clone, Copy, Debug)]
pub struct Mat {
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Mat {
    pub fn new(off: usize, rs: usize, cs: usize) -> Mat {
        Mat { off, rs, cs }
    }
    /// One past the largest index of an (rows x cols) matrix (0 when empty).
    fn end(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            return 0;
        }
        self.off + (rows - 1) * self.rs + (cols - 1) * self.cs + 1
    }
}

/// A raw pointer that may cross threads: the batched product hands disjoint output blocks to workers.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// C (+)= A * B with A (m x k), B (k x n), C (m x n); `threads` > 1 lets `gemm` split the product.
///
/// Panics if an operand reaches past its slice (a planning bug, never user input: layouts are checked
/// when a plan is built).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    (m, n, k): (usize, usize, usize),
    a: (&[f32], Mat),
    b: (&[f32], Mat),
    c: (&mut [f32], Mat),
    accumulate: bool,
    threads: usize,
) {
    assert!(a.1.end(m, k) <= a.0.len(), "matrix product: A reaches past its buffer");
    assert!(b.1.end(k, n) <= b.0.len(), "matrix product: B reaches past its buffer");
    assert!(c.1.end(m, n) <= c.0.len(), "matrix product: C reaches past its buffer");
    // SAFETY: the bounds were checked above and C does not alias A or B (distinct borrows).
    unsafe {
        sgemm_raw((m, n, k), (a.0.as_ptr(), a.1), (b.0.as_ptr(), b.1), (c.0.as_mut_ptr(), c.1), accumulate, threads)
    }
}

/// # Safety
/// Every element the shapes and strides address must be in bounds, and C must not overlap A or B.
unsafe fn sgemm_raw(
    (m, n, k): (usize, usize, usize),
    a: (*const f32, Mat),
    b: (*const f32, Mat),
    c: (*mut f32, Mat),
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let cp = c.0.add(c.1.off);
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for j in 0..n {
                    *cp.add(r * c.1.rs + j * c.1.cs) = 0.0;
                }
            }
        }
        return;
    }
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    gemm::gemm(
        m,
        n,
        k,
        cp,
        c.1.cs as isize,
        c.1.rs as isize,
        accumulate,
        a.0.add(a.1.off),
        a.1.cs as isize,
        a.1.rs as isize,
        b.0.add(b.1.off),
        b.1.cs as isize,
        b.1.rs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        par,
    );
}

/// The sub-products of a batched, grouped product: (batch, first column, columns).
fn blocks(p: &Product, b: &Layout, c: &Layout) -> Vec<(usize, usize, usize)> {
    let size = b.group.or(c.group).map_or(p.n, |g| g.0.max(1));
    let mut out = Vec::new();
    for z in 0..p.batches {
        let mut col = 0;
        while col < p.n {
            let cols = size.min(p.n - col);
            out.push((z, col, cols));
            col += cols;
        }
    }
    out
}

/// C[z] (+)= A[z] * B[z] for every batch member, with the layouts of [`crate::ops::Layout`]; column
/// groups become one plain product per group. Independent sub-products run in parallel, each on one
/// thread; a single product uses all `threads`.
pub fn batched(p: &Product, a: (&[f32], &Layout), b: (&[f32], &Layout), c: (&mut [f32], &Layout), threads: usize) {
    assert!(a.1.group.is_none(), "operand A cannot be grouped");
    assert!(layout_end(a.1, p.batches, p.m, p.k) <= a.0.len(), "matrix product: A reaches past its buffer");
    assert!(layout_end(b.1, p.batches, p.k, p.n) <= b.0.len(), "matrix product: B reaches past its buffer");
    assert!(layout_end(c.1, p.batches, p.m, p.n) <= c.0.len(), "matrix product: C reaches past its buffer");
    let jobs = blocks(p, b.1, c.1);
    let (al, bl, cl) = (*a.1, *b.1, *c.1);
    let (ap, bp, cp) = (a.0.as_ptr() as usize, b.0.as_ptr() as usize, SendPtr(c.0.as_mut_ptr()));
    let run = |&(z, col, cols): &(usize, usize, usize), threads: usize| {
        let am = Mat::new(al.off + z * al.batch, al.row, al.col);
        let bm = Mat::new(bl.at(z, 0, col), bl.row, bl.col);
        let cm = Mat::new(cl.at(z, 0, col), cl.row, cl.col);
        let cp: SendPtr = cp;
        // SAFETY: bounds checked above; distinct jobs write distinct blocks of C (see `disjoint`).
        unsafe {
            sgemm_raw(
                (p.m, cols, p.k),
                (ap as *const f32, am),
                (bp as *const f32, bm),
                (cp.0, cm),
                p.accumulate,
                threads,
            )
        }
    };
    if jobs.len() == 1 || !disjoint(p, c.1) {
        jobs.iter().for_each(|j| run(j, if jobs.len() == 1 { threads } else { 1 }));
    } else {
        jobs.par_iter().for_each(|j| run(j, 1));
    }
}

/// Whether distinct batch members and column groups write distinct elements of C.
fn disjoint(p: &Product, c: &Layout) -> bool {
    let batch_ok = p.batches <= 1 || c.batch > 0;
    let group_ok = c.group.is_none_or(|(_, stride)| stride > 0);
    batch_ok && group_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(p: &Product, a: (&[f32], &Layout), b: (&[f32], &Layout), c: (&mut [f32], &Layout)) {
        for z in 0..p.batches {
            for r in 0..p.m {
                for j in 0..p.n {
                    let s: f64 = (0..p.k).map(|q| a.0[a.1.at(z, r, q)] as f64 * b.0[b.1.at(z, q, j)] as f64).sum();
                    let i = c.1.at(z, r, j);
                    c.0[i] = if p.accumulate { c.0[i] + s as f32 } else { s as f32 };
                }
            }
        }
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn grouped_transposed_and_accumulated_products_match_a_naive_loop() {
        // the FCP's first layer: X [m x k] * [W_1 | W_2 | W_3]^T into [vector][image][unit]
        let (m, k, units, vecs, n_prm) = (37, 19, 5, 3, 120);
        let p = Product { m, n: units * vecs, k, batches: 1, accumulate: false };
        let a = values(m * k, 1);
        let w = values(vecs * n_prm, 2);
        let al = Layout::row_major(0, k, 0);
        let bl = Layout { off: 7, batch: 0, row: 1, col: k, group: Some((units, n_prm)) };
        let cl = Layout { off: 0, batch: 0, row: units, col: 1, group: Some((units, m * units)) };
        let mut fast = values(m * units * vecs, 3);
        let mut slow = fast.clone();
        batched(&p, (&a, &al), (&w, &bl), (&mut fast, &cl), 2);
        naive(&p, (&a, &al), (&w, &bl), (&mut slow, &cl));
        for (x, y) in fast.iter().zip(&slow) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
        // a batched, transposed, accumulating product (weight gradients)
        let p = Product { m: 6, n: 4, k: 33, batches: 4, accumulate: true };
        let a = values(4 * 33 * 6, 4);
        let b = values(33 * 4, 5);
        let al = Layout::transposed(0, 6, 33 * 6);
        let bl = Layout::row_major(0, 4, 0);
        let cl = Layout::row_major(3, 4, 40);
        let mut fast = values(4 * 40 + 3, 6);
        let mut slow = fast.clone();
        batched(&p, (&a, &al), (&b, &bl), (&mut fast, &cl), 2);
        naive(&p, (&a, &al), (&b, &bl), (&mut slow, &cl));
        for (x, y) in fast.iter().zip(&slow) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}
