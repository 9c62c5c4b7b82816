//! Per-run mini-batch selection (`shaders/select.wgsl`, `cpu/select.rs`) and the [`Selections`]
//! trait.

use anyhow::Result;

use super::backend::Memory;
/// A mini-batch per run: `per_run` images from position `offset` of each run's index list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub runs: usize,
    pub per_run: usize,
    /// Length of each run's index list.
    pub stride: usize,
    pub offset: usize,
    /// Pixels per image.
    pub pixels: usize,
}

/// The mini-batch selection of a backend.
pub trait Selections: Memory {
    /// Records the copy of each run's mini-batch (images and labels) out of the dataset.
    fn select_images(
        &self,
        s: Selection,
        src: (&Self::Buffer, &Self::Buffer),
        idx: &Self::Buffer,
        dst: (&Self::Buffer, &Self::Buffer),
    ) -> Result<Self::Command>;
}
