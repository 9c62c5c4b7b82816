//! Which plan serves which network, how much scratch each needs per image, and how the images of an
//! evaluation are cut into chunks.

use anyhow::{bail, Result};
use std::ops::Range;

use super::evaluator::Network;
use super::mlp::{Dense, Input, Mlp};
use super::plan::{Builder, Chunk, ChunkOps, Init, Plan, Tensor, EXTERNAL};
use super::{lenet, lstm, Arch};
use crate::data::PIXELS;
use crate::ops::{partial_slots, Act, Head};

fn fcp(act: Act) -> Vec<Dense> {
    let o = Arch::Fcp.offsets();
    vec![
        Dense { inp: 784, out: 50, w_off: o[0], b_off: None, act: Some(act) },
        Dense { inp: 50, out: 50, w_off: o[1], b_off: None, act: Some(act) },
        Dense { inp: 50, out: 10, w_off: o[2], b_off: None, act: None },
    ]
}

/// The autoencoder's layers (softplus everywhere; the sigmoid output belongs to the loss head).
fn autoencoder() -> Vec<Dense> {
    let o = Arch::Autoencoder.offsets();
    let sp = Some(Act::Softplus);
    vec![
        Dense { inp: 784, out: 32, w_off: o[0], b_off: None, act: sp },
        Dense { inp: 32, out: 32, w_off: o[1], b_off: None, act: sp },
        Dense { inp: 32, out: 32, w_off: o[2], b_off: None, act: sp },
        Dense { inp: 32, out: 784, w_off: o[3], b_off: None, act: None },
    ]
}

/// Largest scratch tensor, in values per image and vector.
pub fn width(arch: Arch) -> usize {
    match arch {
        Arch::Fcp => Mlp::width(&fcp(Act::Softplus)),
        Arch::Autoencoder => Mlp::width(&autoencoder()),
        Arch::Lenet => lenet::WIDTH,
        Arch::Lstm => lstm::SHAPE.steps * lstm::SHAPE.gates(),
    }
}

/// Images per chunk for `batch` vectors when a scratch tensor may take `budget` bytes: a multiple of
/// 64 between 64 and 8192, and never more than the images.
pub fn chunk_capacity(arch: Arch, budget: u64, batch: usize, images: usize) -> usize {
    let per_image = (batch.max(1) * width(arch) * 4) as u64;
    let cap = ((budget / per_image) as usize / 64 * 64).clamp(64, 8192);
    cap.min(images.max(1))
}

fn dense_plan(p: &mut Builder, chunks: &[Chunk], layers: Vec<Dense>, head: Head) -> Vec<ChunkOps> {
    let mlp = Mlp::new(p, layers, head);
    chunks
        .iter()
        .enumerate()
        .map(|(i, ch)| ChunkOps {
            first: ch.first,
            images: ch.len,
            forward: mlp.forward(p, ch, Input::Images),
            backward: mlp.backward(p, ch, Input::Images, i > 0),
        })
        .collect()
}

impl Plan {
    /// The plan of `batch` vectors of `net` on images `range` of a dataset of `loaded` images, in chunks
    /// of at most `chunk` images. With `per_vector` > 0 each vector b has its own images
    /// b * per_vector + range (mini-batches of independent runs), and `range` must be one chunk.
    pub fn new(
        net: Network,
        range: Range<usize>,
        loaded: usize,
        batch: usize,
        chunk: usize,
        per_vector: usize,
    ) -> Result<Plan> {
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
        let n_prm = net.arch.n_params();
        let label_count = if per_vector > 0 { per_vector * batch } else { loaded };
        let external = |name: &str, len: usize| Tensor { name: name.into(), len, init: Init::Zeros };
        let tensors = vec![
            external("weights", batch * n_prm),
            external("gradients", batch * n_prm),
            external("loss partials", batch * part_off * 2),
            external("images", label_count * PIXELS),
            external("labels", label_count),
        ];
        debug_assert_eq!(tensors.len(), EXTERNAL);
        let mut b = Builder {
            tensors,
            act: net.act,
            batch,
            img_bs: per_vector,
            n_prm,
            chunk_cap: cap,
            total_images: range.len(),
            parts: part_off,
        };
        let chunks = match net.arch {
            Arch::Fcp => dense_plan(&mut b, &list, fcp(net.act), Head::CrossEntropy),
            Arch::Autoencoder => dense_plan(&mut b, &list, autoencoder(), Head::MseSigmoid),
            Arch::Lenet => lenet::plan(&mut b, &list),
            Arch::Lstm => lstm::plan(&mut b, &list),
        };
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
}
