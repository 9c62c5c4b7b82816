//! Strided single-precision matrix products on the CPU through the `gemm` crate (which packs operands
//! and runs SIMD micro-kernels for any row and column strides), and the batched, column-grouped
//! product of the kernel vocabulary ([`crate::ops::Layout`]) decomposed into plain strided products.

use anyhow::Result;
use rayon::prelude::*;

use super::derived::Derived;
use super::{Cpu, CpuBuffer, CpuCommand, Exclusive};
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
        let batches = if p.batches > 1 { format!(" x {}", p.batches) } else { String::new() };
        let op = format!("matrix product {}x{}x{}{batches}{}", p.m, p.n, p.k, if p.accumulate { " +=" } else { "" });
        Ok(CpuCommand::checked(&op, &[&c.0], &[&a.0, &b.0])?.flops(p.flops()).run(move |cpu, l| {
            let mut scratch = cpu.scratch.lock().unwrap_or_else(|e| e.into_inner());
            let mut derived = cpu.derived.lock().unwrap_or_else(|e| e.into_inner());
            let gathered = gathered_columns(&p, (&b.0, &b.1, l), &c.1, &mut derived);
            let (a, b, c) = ((a.0.view(l), &a.1), (b.0.view(l), &b.1), (c.0.view_mut(l), &c.1));
            batched(&p, a, (b, gathered), c, (cpu.threads, &mut scratch))
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
pub(super) struct SendPtr(pub(super) *mut f32);
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
pub(super) unsafe fn sgemm_raw(
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

/// B's groups side by side, column after column (k x n, column-major), made once per value of B and
/// kept ([`Derived`]) where the wide product applies to a grouped B, instead of gathered again for
/// every chunk of images (eight chunks of 256 at 2,000 images). `None` where the wide product does
/// not apply or the copy is too large to keep.
fn gathered_columns<'a>(
    p: &Product,
    (b, bl, lock): (&CpuBuffer, &Layout, &Exclusive),
    cl: &Layout,
    derived: &'a mut Derived,
) -> Option<&'a [f32]> {
    let (size, stride) = bl.group?;
    wide_calls(p, bl, cl)?;
    let key = [3, bl.off, bl.row, bl.col, size, stride, p.k, p.n];
    let values = b.view(lock);
    derived.get((b, lock), key, p.k * p.n, |out| gather_columns((values, bl), (p.k, 0), out))
}

/// `C[z] (+)= A[z] * B[z]` for every batch member, with the layouts of [`crate::ops::Layout`]; column
/// groups become one plain product per group. Independent sub-products run in parallel, each on one
/// thread; a single product uses all `threads`. `scratch` is memory kept between calls (`wide`);
/// `gathered`, where given, is B's groups side by side (kept by `gathered_columns`).
pub fn batched(
    p: &Product,
    a: (&[f32], &Layout),
    (b, gathered): ((&[f32], &Layout), Option<&[f32]>),
    c: (&mut [f32], &Layout),
    (threads, scratch): (usize, &mut Vec<f32>),
) {
    assert!(a.1.group.is_none(), "operand A cannot be grouped");
    assert!(layout_end(a.1, p.batches, p.m, p.k) <= a.0.len(), "matrix product: A reaches past its buffer");
    assert!(layout_end(b.1, p.batches, p.k, p.n) <= b.0.len(), "matrix product: B reaches past its buffer");
    assert!(layout_end(c.1, p.batches, p.m, p.n) <= c.0.len(), "matrix product: C reaches past its buffer");
    let jobs = blocks(p, b.1, c.1);
    if jobs.len() > 1 && wide(p, a, (b, gathered), (&mut *c.0, c.1), (threads, scratch)) {
        return;
    }
    if stacked(p, a, b, (&mut *c.0, c.1), (threads, scratch)) {
        return;
    }
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

/// The most floats the wide product's scratch holds per call (32 MiB of C, the same of B at most):
/// the FCP's 51 vectors on a chunk of 3,264 images in one call.
const WIDE_FLOATS: usize = 1 << 23;

/// A grouped product whose A is shared by every group (one batch member: the images times each
/// vector's first-layer weights) run as one product of all groups' columns, or of as many as
/// [`WIDE_FLOATS`] allows: B's groups gathered side by side, C written to a plain matrix and scattered
/// to its groups. One wide product packs A once instead of once per group and keeps both threads in
/// one `gemm` call: the FCP's first layer at B = 51 went from 48.7 to 40.6 ms (2-core Zen 4,
/// docs/benchmarks.md). Each output element is the same k-long dot product accumulated in the same
/// order (`gemm` blocks k by k alone when m > 64 and groups have two columns or more), so the result
/// has the bits of the per-group loop.
/// `gathered` is B's groups already side by side ([`gathered_columns`], kept per value of B); without
/// it each call gathers its columns into `scratch`. `scratch` holds them and C before its scatter; it
/// is kept between calls because allocating tens of MB per call costs as many page faults as the
/// copies themselves.
/// Returns false, having done nothing, where it does not apply.
fn wide(
    p: &Product,
    a: (&[f32], &Layout),
    (b, gathered): ((&[f32], &Layout), Option<&[f32]>),
    c: (&mut [f32], &Layout),
    (threads, scratch): (usize, &mut Vec<f32>),
) -> bool {
    let Some(per_call) = wide_calls(p, b.1, c.1) else { return false };
    let grouped_b = b.1.group.is_some() && gathered.is_none();
    let (b_len, c_len) = (if grouped_b { p.k * per_call } else { 0 }, p.m * per_call);
    if scratch.len() < b_len + c_len {
        scratch.resize(b_len + c_len, 0.0);
    }
    let (wb, wc) = scratch.split_at_mut(b_len);
    let mut col = 0;
    while col < p.n {
        let cols = per_call.min(p.n - col);
        let (bs, bm) = if let Some(gathered) = gathered {
            (gathered, Mat::new(col * p.k, 1, p.k))
        } else if grouped_b {
            gather_columns(b, (p.k, col), &mut wb[..p.k * cols]);
            (&wb[..], Mat::new(0, 1, p.k))
        } else {
            (b.0, Mat::new(b.1.at(0, 0, col), b.1.row, b.1.col))
        };
        let wc = &mut wc[..p.m * cols];
        if p.accumulate {
            move_block(c.0, c.1, (p.m, col, cols), wc, false);
        }
        let am = Mat::new(a.1.off, a.1.row, a.1.col);
        sgemm((p.m, cols, p.k), (a.0, am), (bs, bm), (&mut *wc, Mat::new(0, cols, 1)), p.accumulate, threads);
        move_block(c.0, c.1, (p.m, col, cols), wc, true);
        col += cols;
    }
    true
}

/// The shortest sum (k: images) over which [`stacked`] runs.
const STACKED_SUM: usize = 400;

/// A batched product whose B is shared by every batch member (each vector's weight gradient: its
/// errors times the same images) run as one product of all members' rows, or of as many members as
/// [`WIDE_FLOATS`] allows: A's members gathered one under another into a row-major matrix, C's
/// moved to a plain matrix and back. One product packs B once instead of once per member and keeps
/// both threads in one `gemm` call with tall panels: in the FCP's B = 51 evaluation its first-layer
/// weight gradient (51 products 50x784x512 per chunk) went from 212-221 to 233-253 GFLOP/s with the
/// copies, the whole call 1-5 % faster (2-core Intel Xeon, docs/benchmarks.md). `gemm` accumulates
/// each element over k in the same order whatever m is, so the result has the bits of the
/// per-member loop (`the_stacked_product_has_the_bits_of_one_product_per_member`). Returns false,
/// having done nothing, where it does not apply: one member, B not shared, a grouped C, 64 rows in
/// all or fewer, no two members within [`WIDE_FLOATS`], or shapes where it was measured slower: sums
/// shorter than [`STACKED_SUM`], members of more than 64 rows, a single column.
fn stacked(
    p: &Product,
    a: (&[f32], &Layout),
    b: (&[f32], &Layout),
    c: (&mut [f32], &Layout),
    (threads, scratch): (usize, &mut Vec<f32>),
) -> bool {
    let most = WIDE_FLOATS / (p.m * p.k.max(p.n)).max(1);
    let shared = b.1.batch == 0 && b.1.group.is_none() && c.1.group.is_none() && disjoint(p, c.1);
    // measured (docs/benchmarks.md): stacked, the FCP's 50-unit layer on chunks of 464-512 images
    // gains, the autoencoder's 32 units on 256 images and layers of 100 units or more lose (per member
    // gemm fills its register tiles, and C's copies cost more than B's packings); a bias gradient
    // (n = 1) gains nothing
    let pays = p.k >= STACKED_SUM && p.m <= 64 && p.n > 1;
    if p.batches < 2 || !shared || !pays || p.m * p.batches <= 64 || most < 2 {
        return false;
    }
    let per_call = p.batches.div_ceil(p.batches.div_ceil(most));
    let (a_len, c_len) = (per_call * p.m * p.k, per_call * p.m * p.n);
    if scratch.len() < a_len + c_len {
        scratch.resize(a_len + c_len, 0.0);
    }
    let (wa, wc) = scratch.split_at_mut(a_len);
    let bm = Mat::new(b.1.off, b.1.row, b.1.col);
    let mut first = 0;
    while first < p.batches {
        let members = per_call.min(p.batches - first);
        let rows = members * p.m;
        let (wa, wc) = (&mut wa[..rows * p.k], &mut wc[..rows * p.n]);
        gather_rows(a, (first, p.m, p.k), wa);
        if p.accumulate {
            move_rows((&mut *c.0, c.1), (first, p.m, p.n), wc, false);
        }
        let (am, cm) = (Mat::new(0, p.k, 1), Mat::new(0, p.n, 1));
        sgemm((rows, p.n, p.k), (&*wa, am), (b.0, bm), (&mut *wc, cm), p.accumulate, threads);
        move_rows((&mut *c.0, c.1), (first, p.m, p.n), wc, true);
        first += members;
    }
    true
}

/// Copies batch members `first..` of the (m x k) operand A into `out`, row-major, one member's m rows
/// under the previous member's: row r of member `first + z` is row z * m + r of `out`.
fn gather_rows(a: (&[f32], &Layout), (first, m, k): (usize, usize, usize), out: &mut [f32]) {
    out.par_chunks_mut(k).with_min_len(16).enumerate().for_each(|(i, dst)| {
        copy_strided(a.0, (a.1.at(first + i / m, i % m, 0), a.1.col), dst);
    });
}

/// The columns of one call of the wide product (whole groups, balanced over the calls), or `None`
/// where it does not apply: several batch members, 64 images or fewer, groups of one column, a
/// single group (one vector: nothing to share), or too wide a group for [`WIDE_FLOATS`].
fn wide_calls(p: &Product, b: &Layout, c: &Layout) -> Option<usize> {
    let size = b.group.or(c.group).map_or(p.n, |g| g.0.max(1));
    let most = WIDE_FLOATS / p.m.max(p.k).max(1) / size;
    if p.batches != 1 || p.m <= 64 || size < 2 || p.n <= size || most < 2 || !disjoint(p, c) {
        return None;
    }
    let groups = p.n.div_ceil(size);
    Some(groups.div_ceil(groups.div_ceil(most)) * size)
}

/// Copies columns `col..` of the (k x n) operand B into `out` (k x out.len() / k), column after column.
fn gather_columns(b: (&[f32], &Layout), (k, col): (usize, usize), out: &mut [f32]) {
    out.par_chunks_mut(k).with_min_len(16).enumerate().for_each(|(j, dst)| {
        copy_strided(b.0, (b.1.at(0, 0, col + j), b.1.row), dst);
    });
}

/// Fills `dst` with the elements of `src` `stride` apart from `start`; a contiguous run as one copy.
fn copy_strided(src: &[f32], (start, stride): (usize, usize), dst: &mut [f32]) {
    if stride == 1 {
        dst.copy_from_slice(&src[start..start + dst.len()]);
    } else {
        dst.iter_mut().enumerate().for_each(|(q, d)| *d = src[start + q * stride]);
    }
}

/// Moves columns `col..col + cols` of the (m x n) matrix C between its layout and the row-major
/// `plain` (m x cols): into C when `scatter`, out of it otherwise. Runs of a group's columns are
/// contiguous copies where C's columns are adjacent.
fn move_block(c: &mut [f32], l: &Layout, (m, col, cols): (usize, usize, usize), plain: &mut [f32], scatter: bool) {
    let size = l.group.map_or(cols, |g| g.0.max(1));
    let cp = SendPtr(c.as_mut_ptr());
    plain.par_chunks_mut(cols).with_min_len(32).enumerate().take(m).for_each(|(r, row)| {
        let mut j = 0;
        while j < cols {
            let run = (size - (col + j) % size).min(cols - j);
            // SAFETY: `batched` checked C's extent; distinct (r, column) pairs are distinct elements
            // (`disjoint`), so the rows' threads touch distinct elements, and C is not `plain`.
            unsafe { move_run(cp, (l.at(0, r, col + j), l.col), &mut row[j..j + run], scatter) };
            j += run;
        }
    });
}

/// Moves the rows of batch members `first..` of the ungrouped C between its layout and the row-major
/// `plain` (n columns), one member's m rows under the previous member's: into C when `scatter`, out of
/// it otherwise.
fn move_rows(c: (&mut [f32], &Layout), (first, m, n): (usize, usize, usize), plain: &mut [f32], scatter: bool) {
    let (cp, l) = (SendPtr(c.0.as_mut_ptr()), c.1);
    plain.par_chunks_mut(n).with_min_len(8).enumerate().for_each(|(i, row)| {
        // SAFETY: `batched` checked C's extent; distinct (member, row, column) triples are distinct
        // elements (`disjoint`, ungrouped), so the rows' threads touch distinct elements.
        unsafe { move_run(cp, (l.at(first + i / m, i % m, 0), l.col), row, scatter) };
    });
}

/// Moves `plain.len()` elements of C, `stride` apart from `at`, into `plain`, or `plain` into them
/// when `scatter`; a contiguous run as one copy.
///
/// # Safety
/// The elements must be in C's allocation, not overlap `plain`, and no other thread may touch them.
unsafe fn move_run(c: SendPtr, (at, stride): (usize, usize), plain: &mut [f32], scatter: bool) {
    if stride == 1 {
        let run = std::slice::from_raw_parts_mut(c.0.add(at), plain.len());
        if scatter {
            run.copy_from_slice(plain);
        } else {
            plain.copy_from_slice(run);
        }
        return;
    }
    for (q, p) in plain.iter_mut().enumerate() {
        let e = c.0.add(at + q * stride);
        if scatter {
            *e = *p;
        } else {
            *p = *e;
        }
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

    /// The wide product has the bits of one plain product per group, overwriting and accumulating,
    /// with B's groups contiguous (the FCP's weights) and strided, C's groups row-major (copied a run of
    /// columns at a time) and transposed (an element at a time), and more groups than one call takes;
    /// B gathered per call and kept gathered ([`gathered_columns`]) alike.
    #[test]
    fn the_wide_product_has_the_bits_of_one_product_per_group() {
        let (m, k, units, n_prm) = (130, 300, 7, 2200);
        let vecs = WIDE_FLOATS / (m.max(k) * units) + 3;
        let a = values(m * k, 11);
        let w = values(vecs * n_prm, 12);
        let al = Layout::row_major(0, k, 0);
        for ((row, col), (c_row, c_col)) in [((1, k), (units, 1)), ((units, 1), (units, 1)), ((1, k), (1, m))] {
            for (accumulate, kept) in [(false, false), (true, false), (false, true), (true, true)] {
                let p = Product { m, n: units * vecs, k, batches: 1, accumulate };
                let bl = Layout { off: 5, batch: 0, row, col, group: Some((units, n_prm)) };
                let cl = Layout { off: 0, batch: 0, row: c_row, col: c_col, group: Some((units, m * units)) };
                let mut gathered = vec![f32::NAN; k * p.n];
                gather_columns((&w, &bl), (k, 0), &mut gathered);
                let gathered = kept.then_some(&gathered[..]);
                let mut wide = values(m * units * vecs, 13);
                let mut each = wide.clone();
                batched(&p, (&a, &al), ((&w, &bl), gathered), (&mut wide, &cl), (2, &mut Vec::new()));
                for v in 0..vecs {
                    let bm = Mat::new(bl.at(0, 0, v * units), row, col);
                    let cm = Mat::new(cl.at(0, 0, v * units), c_row, c_col);
                    sgemm((m, units, k), (&a, Mat::new(0, k, 1)), (&w, bm), (&mut each, cm), accumulate, 1);
                }
                assert!(
                    wide.iter().zip(&each).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "B ({row}, {col}), C ({c_row}, {c_col}), accumulate {accumulate}, kept {kept}"
                );
            }
        }
    }

    /// The stacked product has the bits of one plain product per batch member, overwriting and
    /// accumulating, with A's members transposed (the FCP's errors, read a column at a time) and
    /// row-major, C row-major with a gap between members (a vector's weights) and transposed, and more
    /// members than one call takes.
    #[test]
    fn the_stacked_product_has_the_bits_of_one_product_per_member() {
        let (m, n, k) = (50, 130, STACKED_SUM + 50);
        let members = WIDE_FLOATS / (m * k) + 3;
        let b = values(k * n, 21);
        let bl = Layout::row_major(0, n, 0);
        let a_row_major = Layout::row_major(0, k, m * k);
        let a_transposed = Layout { off: 0, batch: m * k, row: 1, col: m, group: None };
        let gap = m * n + 7;
        for al in [a_row_major, a_transposed] {
            for cl in [Layout::row_major(3, n, gap), Layout::transposed(3, m, gap)] {
                for accumulate in [false, true] {
                    let p = Product { m, n, k, batches: members, accumulate };
                    let a = values(members * m * k, 22);
                    let mut all = values(members * gap + 3, 23);
                    let mut each = all.clone();
                    let ran = stacked(&p, (&a, &al), (&b, &bl), (&mut all, &cl), (2, &mut Vec::new()));
                    assert!(ran, "the stacked product applies");
                    for z in 0..members {
                        let am = Mat::new(al.at(z, 0, 0), al.row, al.col);
                        let cm = Mat::new(cl.at(z, 0, 0), cl.row, cl.col);
                        sgemm((m, n, k), (&a, am), (&b, Mat::new(0, n, 1)), (&mut each, cm), accumulate, 1);
                    }
                    assert!(
                        all.iter().zip(&each).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "A {al:?}, C {cl:?}, accumulate {accumulate}"
                    );
                }
            }
        }
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// `batched` against the f64 loop on the same inputs, C starting from the same values.
    fn check(p: &Product, (a, al): (&[f32], Layout), (b, bl): (&[f32], Layout), cl: Layout, c_len: usize) {
        let mut fast = values(c_len, 3);
        let mut slow = fast.clone();
        batched(p, (a, &al), ((b, &bl), None), (&mut fast, &cl), (2, &mut Vec::new()));
        naive(p, (a, &al), (b, &bl), (&mut slow, &cl));
        for (x, y) in fast.iter().zip(&slow) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn grouped_transposed_and_accumulated_products_match_a_naive_loop() {
        // the FCP's first layer: X [m x k] * [W_1 | W_2 | W_3]^T into [vector][image][unit]; with
        // m = 37 one product per group, with m = 150 the wide product (all groups, then a scatter)
        let (k, units, n_prm) = (19, 5, 120);
        for (m, vecs) in [(37, 3), (150, 9)] {
            let p = Product { m, n: units * vecs, k, batches: 1, accumulate: false };
            let bl = Layout { off: 7, batch: 0, row: 1, col: k, group: Some((units, n_prm)) };
            let cl = Layout { off: 0, batch: 0, row: units, col: 1, group: Some((units, m * units)) };
            let (a, w) = (values(m * k, 1), values(vecs * n_prm, 2));
            check(&p, (&a, Layout::row_major(0, k, 0)), (&w, bl), cl, m * units * vecs);
        }
        // a batched, transposed, accumulating product (weight gradients)
        let p = Product { m: 6, n: 4, k: 33, batches: 4, accumulate: true };
        let (a, b) = (values(4 * 33 * 6, 4), values(33 * 4, 5));
        let al = Layout::transposed(0, 6, 33 * 6);
        check(&p, (&a, al), (&b, Layout::row_major(0, 4, 0)), Layout::row_major(3, 4, 40), 4 * 40 + 3);
    }
}
