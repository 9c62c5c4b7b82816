//! The batched primitive: loss (and gradient) of B weight vectors of one network on a range of images,
//! recorded once as a list of GPU dispatches, chunked over images so memory stays bounded.

use anyhow::{bail, Result};
use std::ops::Range;
use std::sync::Arc;

use super::Arch;
use crate::data::GpuImages;
use crate::gpu::{partial_slots, Act, Dispatch, Gpu, GpuBuffer};

/// A network and its activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    pub arch: Arch,
    pub act: Act,
}

/// What an evaluation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Loss,
    LossAndGrad,
}

/// One weight vector's mean loss over the images, and accuracy for classifiers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// One chunk of images, as a network plans it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chunk {
    /// First image (dataset index) and number of images.
    pub first: usize,
    pub len: usize,
    /// First partial-sum slot of this chunk.
    pub part_off: usize,
}

/// Everything a network needs to record its kernels.
pub(super) struct PlanInputs<'a> {
    pub gpu: &'a Gpu,
    pub act: Act,
    pub images: &'a GpuImages,
    pub batch: usize,
    /// Images per vector when each vector has its own images (0: all vectors share the range).
    pub img_bs: usize,
    pub n_prm: usize,
    pub chunk_cap: usize,
    pub total_images: usize,
    pub parts: usize,
    pub weights: &'a GpuBuffer,
    pub grads: &'a GpuBuffer,
    pub partials: &'a GpuBuffer,
}

/// The dispatches of one chunk: forward (ending with the loss head) and backward.
pub(super) struct ChunkPlan {
    pub forward: Vec<Dispatch>,
    pub backward: Vec<Dispatch>,
}

/// Floats each scratch buffer may hold; chunks are sized to fit.
const SCRATCH_BUDGET_BYTES: u64 = 32 << 20;

/// Images per chunk for `batch` vectors whose widest layer has `width` values per image.
pub(super) fn chunk_capacity(gpu: &Gpu, batch: usize, width: usize, images: usize) -> usize {
    let budget = SCRATCH_BUDGET_BYTES.min(gpu.max_binding_bytes());
    let per_image = (batch * width * 4) as u64;
    let cap = ((budget / per_image) as usize / 64 * 64).clamp(64, 8192);
    cap.min(images.max(1))
}

/// Loss and gradient of B weight vectors on a fixed range of images, ready to run many times.
pub struct Evaluator {
    gpu: Arc<Gpu>,
    net: Network,
    batch: usize,
    images: usize,
    parts: usize,
    /// B x N_prm weights, row b = vector b; write them before [`Evaluator::run`].
    pub weights: GpuBuffer,
    /// B x N_prm gradients of the mean loss, filled by a `LossAndGrad` run.
    pub grads: GpuBuffer,
    partials: GpuBuffer,
    chunks: Vec<ChunkPlan>,
}

impl Evaluator {
    /// Plans the evaluation of `batch` vectors of `net` on images `range` of `images`.
    pub fn new(net: Network, images: &GpuImages, range: Range<usize>, batch: usize) -> Result<Evaluator> {
        Evaluator::with_chunk(net, images, range, batch, None)
    }

    /// Like [`Evaluator::new`], with at most `chunk` images per chunk (default: sized to memory).
    pub fn with_chunk(
        net: Network,
        images: &GpuImages,
        range: Range<usize>,
        batch: usize,
        chunk: Option<usize>,
    ) -> Result<Evaluator> {
        Evaluator::build(net, images, range, batch, chunk, 0)
    }

    /// Each vector b evaluated on its own `per_vector` images, b * per_vector .. (b + 1) * per_vector of
    /// `images` (mini-batches of independent runs), in one chunk.
    pub fn per_vector(net: Network, images: &GpuImages, per_vector: usize, batch: usize) -> Result<Evaluator> {
        if images.count < per_vector * batch {
            bail!("{} images loaded, {batch} vectors x {per_vector} needed", images.count);
        }
        Evaluator::build(net, images, 0..per_vector, batch, Some(per_vector), per_vector)
    }

    fn build(
        net: Network,
        images: &GpuImages,
        range: Range<usize>,
        batch: usize,
        chunk: Option<usize>,
        img_bs: usize,
    ) -> Result<Evaluator> {
        let gpu = images.gpu.clone();
        if range.is_empty() || range.end > images.count {
            bail!("image range {range:?} is empty or beyond the {} images loaded", images.count);
        }
        if batch == 0 {
            bail!("nothing to evaluate: zero weight vectors");
        }
        let n_prm = net.arch.n_params();
        let weights = gpu.zeros(batch * n_prm, "weights")?;
        let grads = gpu.zeros(batch * n_prm, "gradients")?;
        let width = super::plans::width(net.arch);
        let total = range.len();
        let cap = chunk.map_or_else(|| chunk_capacity(&gpu, batch, width, total), |c| c.clamp(1, total));
        let mut chunk_list = Vec::new();
        let mut part_off = 0;
        let mut first = range.start;
        while first < range.end {
            let len = cap.min(range.end - first);
            chunk_list.push(Chunk { first, len, part_off });
            part_off += partial_slots(len);
            first += len;
        }
        let parts = part_off;
        let partials = gpu.zeros(batch * parts * 2, "loss partials")?;
        let inputs = PlanInputs {
            gpu: &gpu,
            act: net.act,
            images,
            batch,
            img_bs,
            n_prm,
            chunk_cap: cap,
            total_images: total,
            parts,
            weights: &weights,
            grads: &grads,
            partials: &partials,
        };
        let chunks = super::plans::plan(net.arch, &inputs, &chunk_list)?;
        Ok(Evaluator { gpu, net, batch, images: total, parts, weights, grads, partials, chunks })
    }

    pub fn network(&self) -> Network {
        self.net
    }
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Uploads all B vectors (B x N_prm, row-major).
    pub fn set_weights(&self, flat: &[f32]) -> Result<()> {
        if flat.len() != self.weights.len {
            bail!(
                "expected {} weights ({} vectors of {}), got {}",
                self.weights.len,
                self.batch,
                self.net.arch.n_params(),
                flat.len()
            );
        }
        self.gpu.write(&self.weights, 0, flat);
        Ok(())
    }

    /// The dispatches of one evaluation, in order, for callers that submit them with their own.
    pub fn ordered(&self, want: Want) -> Vec<&Dispatch> {
        self.chunks
            .iter()
            .flat_map(|c| {
                let back: &[Dispatch] = if want == Want::LossAndGrad { &c.backward } else { &[] };
                c.forward.iter().chain(back)
            })
            .collect()
    }

    /// Queues one evaluation; returns at once.
    pub fn run(&self, want: Want) {
        self.gpu.submit(&self.ordered(want));
    }

    /// Runs one evaluation and returns its duration in seconds (GPU timestamps where available).
    pub fn run_timed(&self, want: Want) -> Result<f64> {
        self.gpu.submit_timed(&self.ordered(want))
    }

    /// Per-vector mean loss and accuracy of the last run, summed in f64 from the GPU's partials.
    pub fn results(&self) -> Result<Vec<Eval>> {
        let parts: Vec<f32> = self.gpu.read(&self.partials, 0, self.partials.len)?;
        let n = self.images as f64;
        Ok(parts
            .chunks(self.parts * 2)
            .map(|p| {
                let loss: f64 = p.iter().step_by(2).map(|&v| v as f64).sum();
                let correct: f64 = p.iter().skip(1).step_by(2).map(|&v| v as f64).sum();
                Eval { loss: loss / n, accuracy: self.net.arch.is_classifier().then_some(correct / n) }
            })
            .collect())
    }

    /// The B x N_prm gradients of the last `LossAndGrad` run (for tests and checks; optimizers keep
    /// them on the GPU).
    pub fn gradients(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.grads, 0, self.grads.len)
    }
}
