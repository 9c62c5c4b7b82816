//! Which plan serves which network (the generic builder of `model/generic.rs` on the network's
//! description), how much scratch each needs per image, and how the images of an evaluation are cut
//! into chunks.

use anyhow::{bail, Result};
use std::ops::Range;

use super::builder::{Builder, Chunk};
use super::description::Description;
use super::{generic, Arch, Network};
use crate::backend::ChunkBudget;
use crate::ops::partial_slots;
use crate::ops::plan::{Init, Plan, Tensor, EXTERNAL};

/// Largest scratch tensor, in values per image and vector.
pub fn width(arch: Arch) -> usize {
    width_for(arch.description())
}

/// Largest scratch tensor of the network `desc` describes, in values per image and vector (1 for a
/// description that does not derive).
pub fn width_for(desc: &Description) -> usize {
    desc.derive().map_or(1, |d| generic::description_width(&d, desc))
}

/// Refuses a description the plan builder does not lower yet (docs/networks.md §7: an activation or a
/// pooling on the input image, two activations in a row, an LSTM not followed directly by the dense
/// layers or without biases, a network not ending in a dense layer and at most one activation), by
/// planning one vector on one image: the same builder every evaluation uses, at a cost that does not
/// grow with the network's size. [`Arch::parse`] calls it, so that every command refuses such a
/// network when it reads the description, before any work.
///
/// # Errors
/// The builder's refusal, naming the layer (or a description that does not derive).
pub fn check_plans(desc: &Description) -> Result<()> {
    Plan::for_description(desc, 0..1, 1, 1, 1, 0).map(|_| ())
}

/// The most images in one chunk: 60,000 images take 8 chunks, so the dispatches per evaluation are
/// already few; larger chunks would only take more memory.
pub const MAX_CHUNK_IMAGES: usize = 8192;

/// The fewest images a chunk aimed at [`ChunkBudget::cache_bytes`] takes: smaller chunks pay more in
/// per-chunk costs (each operation's fixed work, the LSTM's steps) than they gain in cache hits.
pub const CACHE_FLOOR_IMAGES: usize = 256;

/// Images per chunk for `batch` vectors of `net` within `budget`: the largest multiple of 64 whose
/// largest scratch tensor fits `budget.tensor_bytes`, whose scratch tensors together fit
/// `budget.total_bytes` and, where the budget has a cache aim, fit `budget.cache_bytes` or are
/// [`CACHE_FLOOR_IMAGES`] (whichever is more); between 64 and [`MAX_CHUNK_IMAGES`], and never more than
/// the images.
pub fn chunk_capacity(net: Network, budget: ChunkBudget, batch: usize, images: usize) -> usize {
    chunk_capacity_for(&net.description(), budget, batch, images)
}

/// [`chunk_capacity`] for the network `desc` describes.
pub fn chunk_capacity_for(desc: &Description, budget: ChunkBudget, batch: usize, images: usize) -> usize {
    let batch = batch.max(1);
    let per_tensor = budget.tensor_bytes / bytes(&[batch, width_for(desc), 4]);
    // every scratch tensor grows with the chunk: measure them on a 64-image plan
    let probe = Plan::for_description(desc, 0..64, 64, batch, 64, 0).map_or(0, |p| p.scratch_bytes());
    let per_image = probe.div_ceil(64).max(1);
    let by_total = budget.total_bytes / per_image;
    let by_cache = match budget.cache_bytes {
        0 => u64::MAX,
        bytes => (bytes / per_image).max(CACHE_FLOOR_IMAGES as u64),
    };
    let cap = (per_tensor.min(by_total).min(by_cache) as usize / 64 * 64).clamp(64, MAX_CHUNK_IMAGES);
    cap.min(images.max(1))
}

/// Images per chunk for `batch` vectors whose results must not depend on the batch: the cache aim is
/// sized for `aim` vectors (a unit of the run's configuration: one pair's M points, one surface row),
/// the memory limits for all `batch`. A batch of several such units (`paths --pairs-per-batch`,
/// `surface --batch`, the smaller last batch of a resumed run) then keeps the chunk, and with it the
/// order of every image sum, bit for bit, unless memory rather than the cache aim bounds it (a device
/// without a cache aim sizes by memory alone, as [`chunk_capacity`]).
pub fn chunk_capacity_aimed(net: Network, budget: ChunkBudget, (aim, batch): (usize, usize), images: usize) -> usize {
    let memory = ChunkBudget { cache_bytes: 0, ..budget };
    chunk_capacity(net, budget, aim, images).min(chunk_capacity(net, memory, batch, images))
}

/// Whether an evaluator of `batch` vectors of `net` fits `budget` even with the smallest chunk
/// [`chunk_capacity`] gives (64 images): its weights and gradients (`batch` x N_prm values each) and its
/// largest scratch tensor each within `budget.tensor_bytes`, and all of them together within
/// `budget.total_bytes`. Used to size batches of work (e.g. the pairs of a path sweep) to a device.
pub fn batch_fits(net: Network, budget: ChunkBudget, batch: usize) -> bool {
    batch_fits_for(&net.description(), budget, batch)
}

/// [`batch_fits`] for the network `desc` describes (false for one that does not plan).
pub fn batch_fits_for(desc: &Description, budget: ChunkBudget, batch: usize) -> bool {
    let Ok(derived) = desc.derive() else { return false };
    let vectors = bytes(&[batch, derived.n_params(), 4]);
    let widest = bytes(&[64, batch, width_for(desc), 4]);
    let scratch = Plan::for_description(desc, 0..64, 64, batch.max(1), 64, 0).map_or(u64::MAX, |p| p.scratch_bytes());
    vectors.max(widest) <= budget.tensor_bytes && scratch.saturating_add(2 * vectors) <= budget.total_bytes
}

/// The product of `factors` as a byte count, saturating at `u64::MAX` (a size past any budget).
fn bytes(factors: &[usize]) -> u64 {
    factors.iter().fold(1u64, |p, &f| p.saturating_mul(f as u64))
}

/// The chunks of `range` (at most `chunk` images each) and a builder with the external tensors of a
/// network of `n_prm` parameters on images of `input_len` values.
fn begin(
    (range, loaded): (Range<usize>, usize),
    (batch, chunk, per_vector): (usize, usize, usize),
    (n_prm, input_len): (usize, usize),
) -> Result<(Vec<Chunk>, Builder)> {
    if range.is_empty() || range.end > loaded {
        bail!("image range {range:?} is empty or beyond the {loaded} images loaded");
    }
    if batch == 0 {
        bail!("nothing to evaluate: zero weight vectors");
    }
    if per_vector > 0 && loaded < per_vector * batch {
        bail!("{loaded} images loaded, {batch} vectors x {per_vector} needed");
    }
    let cap = chunk.clamp(1, range.len());
    let mut list = Vec::new();
    let (mut first, mut part_off) = (range.start, 0);
    while first < range.end {
        let len = cap.min(range.end - first);
        list.push(Chunk { first, len, part_off });
        part_off += partial_slots(len);
        first += len;
    }
    let label_count = if per_vector > 0 { per_vector * batch } else { loaded };
    let external = |name: &str, len: usize| Tensor { name: name.into(), len, init: Init::Zeros };
    let tensors = vec![
        external("weights", batch * n_prm),
        external("gradients", batch * n_prm),
        external("loss partials", batch * part_off * 2),
        external("images", label_count * input_len),
        external("labels", label_count),
    ];
    debug_assert_eq!(tensors.len(), EXTERNAL);
    let b = Builder {
        tensors,
        batch,
        img_bs: per_vector,
        n_prm,
        chunk_cap: cap,
        total_images: range.len(),
        parts: part_off,
    };
    Ok((list, b))
}

impl Plan {
    /// The plan of `batch` vectors of `net` on images `range` of a dataset of `loaded` images, in chunks
    /// of at most `chunk` images. With `per_vector` > 0 each vector b has its own images
    /// b * per_vector + range (mini-batches of independent runs), and `range` must be one chunk.
    /// It is the plan of [`Network::description`] ([`Plan::for_description`]).
    pub fn new(
        net: Network,
        range: Range<usize>,
        loaded: usize,
        batch: usize,
        chunk: usize,
        per_vector: usize,
    ) -> Result<Plan> {
        Plan::for_description(&net.description(), range, loaded, batch, chunk, per_vector)
    }

    /// The plan of `batch` vectors of the network `desc` describes, on images `range` of a dataset of
    /// `loaded` images (each of `desc.input_len()` values), in chunks of at most `chunk` images; with
    /// `per_vector` > 0 each vector b has its own images b * per_vector + range, in one chunk (as
    /// [`Plan::new`]). Sizes, parameter offsets (the order of [`Description::derive`]'s tensors) and
    /// scratch tensors all follow from the description (`model/generic.rs`).
    ///
    /// # Errors
    /// A description that does not derive (the layer and shapes named), a layer sequence the builder
    /// does not lower, an empty or out-of-range image range, zero vectors, or too few images loaded.
    pub fn for_description(
        desc: &Description,
        range: Range<usize>,
        loaded: usize,
        batch: usize,
        chunk: usize,
        per_vector: usize,
    ) -> Result<Plan> {
        let derived = desc.derive()?;
        let sizes = (derived.n_params(), desc.input_len());
        let (list, mut b) = begin((range, loaded), (batch, chunk, per_vector), sizes)?;
        let chunks = generic::plan(&mut b, desc, &derived, &list)?;
        Ok(Plan { tensors: b.tensors, chunks })
    }

    /// Partial-sum slots per vector.
    pub fn parts(&self) -> usize {
        self.chunks.iter().map(|c| partial_slots(c.images)).sum()
    }

    /// Images of one evaluation.
    pub fn images(&self) -> usize {
        self.chunks.iter().map(|c| c.images).sum()
    }

    /// Matrix-product and convolution FLOPs per image and weight vector of one evaluation, as (forward
    /// only, loss and gradient), counted on a 64-image plan of one vector: the figure `bench` divides by
    /// and `plan` multiplies with.
    ///
    /// Errors: none for the four networks (the plan of one vector on 64 images is always valid).
    pub fn flops_per_image_vector(arch: super::Arch) -> anyhow::Result<(f64, f64)> {
        Plan::flops_per_image_vector_for(arch.description())
    }

    /// [`Plan::flops_per_image_vector`] of the network `desc` describes.
    ///
    /// # Errors
    /// The description does not plan ([`Plan::for_description`]).
    pub fn flops_per_image_vector_for(desc: &Description) -> anyhow::Result<(f64, f64)> {
        let plan = Plan::for_description(desc, 0..64, 64, 1, 64, 0)?;
        Ok((plan.flops(false) / 64.0, plan.flops(true) / 64.0))
    }
}
