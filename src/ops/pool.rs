//! Average and max pooling (`shaders/pool.wgsl`, `cpu/pool.rs`): the [`Pool`] shape and the
//! [`Pooling`] trait.
//!
//! Both are PyTorch's `nn.AvgPool2d(kernel, stride)` and `nn.MaxPool2d(kernel, stride)` without padding
//! (floor mode): a `kernel × kernel` window every `stride` pixels, output side
//! ⌊(n − kernel) / stride⌋ + 1. The average multiplies the window's sum (taken in row-major order) by
//! the f32 value of 1 / kernel², so a 2×2 window is exactly a quarter of its sum. The maximum is the
//! first maximal element of the window in row-major order (the one PyTorch's CPU kernel picks).
//!
//! Backward is a gather: each input element adds up the gradients of the windows that contain it, in
//! row-major order of the windows, so overlapping windows (stride < kernel) add and no two threads
//! write one element. Max-pool backward needs no index tensor: it reads the forward *input* again and
//! finds each covering window's first maximum, sending the window's gradient there (an element that is
//! the maximum of several windows receives all their gradients). Average-pool backward does not read
//! the input.

use anyhow::{bail, Result};

use super::backend::{Backend, Memory};
use super::op::{end, PlanOp, TensorId};

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// `nn.AvgPool2d`: the window's mean.
    Avg,
    /// `nn.MaxPool2d`: the window's maximum.
    Max,
}

/// Pooling of `planes` maps of `in_h × in_w` (all vectors, images and channels flattened into planes:
/// maps are `[plane][row][col]`) into maps of `out_h × out_w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub kind: PoolKind,
    pub planes: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl Pool {
    /// Output rows: ⌊(in_h − kernel) / stride⌋ + 1 (valid after [`Pool::check`]).
    pub fn out_h(&self) -> usize {
        (self.in_h - self.kernel) / self.stride + 1
    }
    /// Output columns: ⌊(in_w − kernel) / stride⌋ + 1 (valid after [`Pool::check`]).
    pub fn out_w(&self) -> usize {
        (self.in_w - self.kernel) / self.stride + 1
    }
    /// Values of all input maps.
    pub fn in_len(&self) -> usize {
        self.planes * self.in_h * self.in_w
    }
    /// Values of all output maps.
    pub fn out_len(&self) -> usize {
        self.planes * self.out_h() * self.out_w()
    }
    /// The factor of an average: the f32 nearest 1 / kernel².
    pub fn scale(&self) -> f32 {
        1.0 / (self.kernel * self.kernel) as f32
    }
    /// The operation's kind name (for plan counts and printing).
    pub fn name(&self, backward: bool) -> &'static str {
        match (self.kind, backward) {
            (PoolKind::Avg, false) => "avg-pool",
            (PoolKind::Avg, true) => "avg-pool-backward",
            (PoolKind::Max, false) => "max-pool",
            (PoolKind::Max, true) => "max-pool-backward",
        }
    }

    /// Checks the shape: a kernel and stride of at least 1 and a kernel that fits the maps.
    ///
    /// # Errors
    /// The rule broken, with the pooling's sizes.
    pub fn check(&self) -> Result<()> {
        if self.kernel == 0 || self.stride == 0 {
            bail!("pooling {self:?}: the kernel and the stride must be at least 1");
        }
        if self.kernel > self.in_h.min(self.in_w) {
            bail!("pooling {self:?}: a {k}x{k} window does not fit {}x{} maps", self.in_h, self.in_w, k = self.kernel);
        }
        Ok(())
    }
}

/// The pooling of a backend.
pub trait Pooling: Memory {
    /// Records `out` = the pooled `input` (`pool.in_len()` values in, `pool.out_len()` out).
    fn pool_forward(&self, pool: Pool, input: &Self::Buffer, out: &Self::Buffer) -> Result<Self::Command>;

    /// Records `grad_in` = d loss / d input (overwritten, all `pool.in_len()` values) from `grad_out`
    /// = d loss / d out; `input` is the forward input (read by max pooling only).
    fn pool_backward(
        &self,
        pool: Pool,
        input: &Self::Buffer,
        grad_out: &Self::Buffer,
        grad_in: &Self::Buffer,
    ) -> Result<Self::Command>;
}

/// The windows (along one axis) that contain input coordinate `i`: `o` with o·stride ≤ i <
/// o·stride + kernel, clipped to [0, out).
pub fn covering(i: usize, kernel: usize, stride: usize, out: usize) -> std::ops::Range<usize> {
    let lo = (i + 1).saturating_sub(kernel).div_ceil(stride);
    let hi = (i / stride + 1).min(out);
    lo..hi.max(lo)
}

/// Plan operation: `dst` = `src` pooled.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolForward {
    pub pool: Pool,
    pub src: TensorId,
    pub dst: TensorId,
}

/// Plan operation: `grad_in` = d loss / d input from `grad_out`; `input` is the forward's `src` (max
/// pooling reads it to find each window's maximum).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolBackward {
    pub pool: Pool,
    pub input: TensorId,
    pub grad_out: TensorId,
    pub grad_in: TensorId,
}

impl PlanOp for PoolForward {
    fn kind(&self) -> &'static str {
        self.pool.name(false)
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        vec![(self.src, end(self.pool.in_len())), (self.dst, end(self.pool.out_len()))]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.pool_forward(self.pool, t[self.src], t[self.dst])
    }
}

impl PlanOp for PoolBackward {
    fn kind(&self) -> &'static str {
        self.pool.name(true)
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        let (i, o) = (end(self.pool.in_len()), end(self.pool.out_len()));
        vec![(self.input, i), (self.grad_out, o), (self.grad_in, i)]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.pool_backward(self.pool, t[self.input], t[self.grad_out], t[self.grad_in])
    }
}
