//! What the networks' plan builders share: [`Builder`] (the plan's tensors so far) and [`Chunk`]. The
//! plan itself is backend-neutral data of the kernel vocabulary ([`crate::ops::plan`]).

use crate::ops::plan::{Init, Tensor, TensorId};

/// What a network's plan builder needs to know.
pub(super) struct Builder {
    pub tensors: Vec<Tensor>,
    pub batch: usize,
    /// Images per vector when each vector has its own images (0: all vectors share the range).
    pub img_bs: usize,
    pub n_prm: usize,
    pub chunk_cap: usize,
    pub total_images: usize,
    pub parts: usize,
}

impl Builder {
    /// A new zero-initialised scratch tensor.
    pub fn tensor(&mut self, name: &str, len: usize) -> TensorId {
        self.with(name, len, Init::Zeros)
    }

    /// A new scratch tensor with the given start.
    pub fn with(&mut self, name: &str, len: usize, init: Init) -> TensorId {
        self.tensors.push(Tensor { name: name.to_string(), len, init });
        self.tensors.len() - 1
    }
}

/// One chunk of images as a builder sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chunk {
    /// First image (dataset index) and number of images.
    pub first: usize,
    pub len: usize,
    /// First partial-sum slot of this chunk.
    pub part_off: usize,
}
