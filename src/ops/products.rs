//! The strided batched matrix product (`shaders/matmul.wgsl`, `cpu/matmul.rs`): operand layouts,
//! shapes, the bounds check of a call, and the [`Products`] trait a backend implements.

use anyhow::{bail, Result};

use super::backend::{Backend, Memory};
use super::handles::{DeviceBuffer, Source};
use super::op::{end, Operand, PlanOp, TensorId};
/// Element (row r, column c) of matrix z in a batch lives at
/// `off + z*batch + r*row + (c / group.0)*group.1 + (c % group.0)*col`.
/// Without a group, `(c / group.0)` is always 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub off: usize,
    pub batch: usize,
    pub row: usize,
    pub col: usize,
    pub group: Option<(usize, usize)>,
}

impl Layout {
    /// A row-major matrix with `cols` columns, batches `batch` elements apart.
    pub fn row_major(off: usize, cols: usize, batch: usize) -> Layout {
        Layout { off, batch, row: cols, col: 1, group: None }
    }
    /// The transpose of a row-major matrix with `cols` columns: element (r, c) is at c*cols + r.
    pub fn transposed(off: usize, cols: usize, batch: usize) -> Layout {
        Layout { off, batch, row: 1, col: cols, group: None }
    }
    /// Index of element (z, r, c).
    pub fn at(&self, z: usize, r: usize, c: usize) -> usize {
        let (size, stride) = self.group.unwrap_or((usize::MAX, 0));
        self.off + z * self.batch + r * self.row + (c / size) * stride + (c % size) * self.col
    }
}

/// One past the largest index a batched layout addresses for (rows x cols) matrices, in constant
/// time (a plan's cost, `plan` and the backends' bounds checks ask it of every product: a loop over
/// the columns made them quadratic in a layer's width). An end past `usize::MAX` saturates there, so
/// that it fails every bounds check instead of wrapping to a small index.
pub fn layout_end(l: &Layout, batches: usize, rows: usize, cols: usize) -> usize {
    if batches == 0 || rows == 0 || cols == 0 {
        return 0;
    }
    let terms = [l.off, (batches - 1).saturating_mul(l.batch), (rows - 1).saturating_mul(l.row), last_column(l, cols)];
    terms.into_iter().fold(1, usize::saturating_add)
}

/// The largest `(c / size) * stride + (c % size) * col` over the columns c < `cols` (`cols` > 0): every
/// term grows with c within a group, and the groups with their index, so the largest is the last
/// column's, or (when the last group is partial) the last column of the full group before it.
fn last_column(l: &Layout, cols: usize) -> usize {
    let Some((size, stride)) = l.group.filter(|&(size, _)| size > 0 && size < cols) else {
        return (cols - 1).saturating_mul(l.col);
    };
    let column =
        |group: usize, member: usize| group.saturating_mul(stride).saturating_add(member.saturating_mul(l.col));
    let last = (cols - 1) / size;
    let full_before = if last > 0 { column(last - 1, size - 1) } else { 0 };
    column(last, (cols - 1) % size).max(full_before)
}

/// Shape of a batched product `C[z] (m x n) = A[z] (m x k) * B[z] (k x n)`, z < batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batches: usize,
    /// Add into C instead of overwriting it.
    pub accumulate: bool,
}

impl Product {
    /// Multiply-adds times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.batches) as f64
    }
}

/// The matrix product of a backend.
pub trait Products: Memory {
    /// Records C (+)= A * B for every batch member (see [`Layout`]); A may not use column groups.
    ///
    /// Errors: A is grouped, or an operand reaches past its buffer ([`check_product`]).
    fn matmul(
        &self,
        p: Product,
        a: (Source<Self::Buffer>, Layout),
        b: (Source<Self::Buffer>, Layout),
        c: (&Self::Buffer, Layout),
    ) -> Result<Self::Command> {
        check_product(&p, &a, &b, &c)?;
        self.record_matmul(p, a, b, c)
    }

    /// [`Products::matmul`] after its checks.
    fn record_matmul(
        &self,
        p: Product,
        a: (Source<Self::Buffer>, Layout),
        b: (Source<Self::Buffer>, Layout),
        c: (&Self::Buffer, Layout),
    ) -> Result<Self::Command>;
}

/// Checks that a product stays inside its buffers (a GPU would read garbage, the CPU must not).
pub fn check_product<B: DeviceBuffer>(
    p: &Product,
    a: &(Source<B>, Layout),
    b: &(Source<B>, Layout),
    c: &(&B, Layout),
) -> Result<()> {
    if a.1.group.is_some() {
        bail!("matrix product: operand A cannot be grouped");
    }
    let fits = [
        ("A", layout_end(&a.1, p.batches, p.m, p.k), a.0.addressable()),
        ("B", layout_end(&b.1, p.batches, p.k, p.n), b.0.addressable()),
        ("C", layout_end(&c.1, p.batches, p.m, p.n), c.0.len()),
    ];
    for (name, end, len) in fits {
        if end > len {
            bail!(
                "matrix product {}x{}x{} (x{}): operand {name} reaches element {end} of a buffer of {len}",
                p.m,
                p.n,
                p.k,
                p.batches
            );
        }
    }
    Ok(())
}

/// Plan operation: C (+)= A * B, batched and possibly column-grouped (see [`Layout`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MatMul {
    pub shape: Product,
    pub a: (Operand, Layout),
    pub b: (Operand, Layout),
    pub c: (TensorId, Layout),
}

impl PlanOp for MatMul {
    fn kind(&self) -> &'static str {
        "matmul"
    }
    fn flops(&self) -> f64 {
        self.shape.flops()
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        let p = &self.shape;
        vec![
            (self.a.0.tensor(), end(layout_end(&self.a.1, p.batches, p.m, p.k))),
            (self.b.0.tensor(), end(layout_end(&self.b.1, p.batches, p.k, p.n))),
            (self.c.0, end(layout_end(&self.c.1, p.batches, p.m, p.n))),
        ]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        let (a, b) = ((self.a.0.source(t), self.a.1), (self.b.0.source(t), self.b.1));
        backend.matmul(self.shape, a, b, (t[self.c.0], self.c.1))
    }
}
