//! Vector operations over B rows at once (`shaders/vector.wgsl`, `cpu/vector.rs`), for the
//! optimizers: dot products and sums read back as f64, axpy, scaling, row copies, and the recorded
//! reductions that write L-BFGS scalars on the device ([`super::Reduced`]); the [`VectorOps`] trait.

use anyhow::{bail, Result};

use super::backend::Memory;
use super::handles::{same_shape, Coef, DeviceBuffer, Rows};
use super::Reduced;

/// The vector operations of a backend. Each public method checks its operands, then calls the
/// backend's `run_*` (immediate) or `record_*` (recorded) method.
pub trait VectorOps: Memory {
    /// Per-row dot products x_b . y_b, accumulated in f64 (only scalars reach the host).
    ///
    /// Errors: the rows differ in shape or reach past their buffers.
    fn dot(&self, x: Rows<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<Vec<f64>> {
        same_shape("dot", &x, &y)?;
        x.check()?;
        y.check()?;
        self.run_dot(x, y)
    }

    /// Per-row sums, accumulated in f64. Errors: the rows reach past their buffer.
    fn sum(&self, x: Rows<Self::Buffer>) -> Result<Vec<f64>> {
        x.check()?;
        self.run_sum(x)
    }

    /// y_b <- a_b y_b for every row b, now. Errors: one coefficient per row is not given.
    fn scale(&self, a: &[f32], y: Rows<Self::Buffer>) -> Result<()> {
        if a.len() != y.rows {
            bail!("scale needs one coefficient per row ({} rows, {} coefficients)", y.rows, a.len());
        }
        y.check()?;
        self.run_scale(a, y)
    }

    /// The recorded form of y_b <- y_b + a_b x_b, to submit many times (e.g. every SGD step).
    ///
    /// Errors: shapes differ, or one coefficient per row is not given.
    fn axpy_command(&self, a: &[f32], x: Rows<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<Self::Command> {
        same_shape("axpy", &x, &y)?;
        if a.len() != x.rows {
            bail!("axpy needs one coefficient per row ({} rows, {} coefficients)", x.rows, a.len());
        }
        x.check()?;
        y.check()?;
        self.record_axpy(a, x, y)
    }

    /// y_b <- y_b + a_b x_b for every row b, now.
    fn axpy(&self, a: &[f32], x: Rows<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<()> {
        let cmd = self.axpy_command(a, x, y)?;
        self.submit(&[&cmd]);
        Ok(())
    }

    /// Records y_b <- y_b + a_b x_b with a_b from a [`Coef`] (read when the command runs).
    fn axpy_at(&self, a: Coef<Self::Buffer>, x: Rows<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<Self::Command> {
        same_shape("axpy", &x, &y)?;
        a.check(x.rows)?;
        x.check()?;
        y.check()?;
        self.record_axpy_at(a, x, y)
    }

    /// Records y_b <- a_b y_b with a_b from a [`Coef`].
    fn scale_at(&self, a: Coef<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<Self::Command> {
        a.check(y.rows)?;
        y.check()?;
        self.record_scale_at(a, y)
    }

    /// Records y_b <- x_b for every row, or only for the rows whose flag `when` is not 0.
    fn copy_rows(
        &self,
        x: Rows<Self::Buffer>,
        y: Rows<Self::Buffer>,
        when: Option<Coef<Self::Buffer>>,
    ) -> Result<Self::Command> {
        same_shape("copy", &x, &y)?;
        if let Some(w) = &when {
            w.check(x.rows)?;
        }
        x.check()?;
        y.check()?;
        self.record_copy_rows(x, y, when)
    }

    /// Records the per-row dot products d_b = x_b . y_b and `op` applied to row b of `scalars`
    /// (`width` scalars per row, laid out as [`crate::ops::LbfgsScalars`]); nothing reaches the host.
    /// Precision: f32 partial sums (per workgroup on a GPU, per 4096 elements on the CPU) added in
    /// order in f64 (CPU) or with compensated f32 sums into a double-f32 (GPU: WGSL has no f64); `op`
    /// computes in f64 (CPU) or double-f32 (GPU) and stores double-f32 scalars.
    fn reduce(
        &self,
        x: Rows<Self::Buffer>,
        y: Rows<Self::Buffer>,
        scalars: &Self::Buffer,
        width: usize,
        op: Reduced,
    ) -> Result<Self::Command> {
        same_shape("dot", &x, &y)?;
        if x.rows * width > scalars.len() {
            bail!("{} rows of {width} scalars do not fit in a buffer of {}", x.rows, scalars.len());
        }
        x.check()?;
        y.check()?;
        self.record_reduce(x, y, scalars, width, op)
    }

    /// [`VectorOps::dot`] after its checks.
    fn run_dot(&self, x: Rows<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<Vec<f64>>;
    /// [`VectorOps::sum`] after its checks.
    fn run_sum(&self, x: Rows<Self::Buffer>) -> Result<Vec<f64>>;
    /// [`VectorOps::scale`] after its checks.
    fn run_scale(&self, a: &[f32], y: Rows<Self::Buffer>) -> Result<()>;
    /// [`VectorOps::axpy_command`] after its checks.
    fn record_axpy(&self, a: &[f32], x: Rows<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<Self::Command>;
    /// [`VectorOps::axpy_at`] after its checks.
    fn record_axpy_at(
        &self,
        a: Coef<Self::Buffer>,
        x: Rows<Self::Buffer>,
        y: Rows<Self::Buffer>,
    ) -> Result<Self::Command>;
    /// [`VectorOps::scale_at`] after its checks.
    fn record_scale_at(&self, a: Coef<Self::Buffer>, y: Rows<Self::Buffer>) -> Result<Self::Command>;
    /// [`VectorOps::copy_rows`] after its checks.
    fn record_copy_rows(
        &self,
        x: Rows<Self::Buffer>,
        y: Rows<Self::Buffer>,
        when: Option<Coef<Self::Buffer>>,
    ) -> Result<Self::Command>;
    /// [`VectorOps::reduce`] after its checks.
    fn record_reduce(
        &self,
        x: Rows<Self::Buffer>,
        y: Rows<Self::Buffer>,
        scalars: &Self::Buffer,
        width: usize,
        op: Reduced,
    ) -> Result<Self::Command>;
}
