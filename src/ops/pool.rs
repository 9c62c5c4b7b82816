//! Average pooling (`shaders/pool.wgsl`, `cpu/pool.rs`) and the [`Pooling`] trait.

use anyhow::Result;

use super::backend::Memory;
/// The pooling of a backend.
pub trait Pooling: Memory {
    /// Records 2x2 average pooling of `planes` maps of side `in_hw` (forward), or its gradient
    /// (`backward`: `src` = d loss / d pooled, `dst` = d loss / d input).
    fn avg_pool(
        &self,
        backward: bool,
        planes: usize,
        in_hw: usize,
        src: &Self::Buffer,
        dst: &Self::Buffer,
    ) -> Result<Self::Command>;
}
