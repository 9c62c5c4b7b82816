//! Which GPU plan serves which network, and how much scratch each needs per image.

use anyhow::Result;

use super::evaluator::{Chunk, ChunkPlan, PlanInputs};
use super::mlp::{Dense, Input, Mlp};
use super::{lenet, lstm, Arch};
use crate::gpu::{Act, Head};

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

/// Largest scratch buffer, in values per image and vector.
pub(super) fn width(arch: Arch) -> usize {
    match arch {
        Arch::Fcp => Mlp::width(&fcp(Act::Softplus)),
        Arch::Autoencoder => Mlp::width(&autoencoder()),
        Arch::Lenet => lenet::WIDTH,
        Arch::Lstm => lstm::WIDTH,
    }
}

fn dense_plan(p: &PlanInputs, chunks: &[Chunk], layers: Vec<Dense>, head: Head) -> Result<Vec<ChunkPlan>> {
    let mlp = Mlp::new(p, layers, head)?;
    chunks
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            Ok(ChunkPlan {
                forward: mlp.forward(p, ch, Input::Images)?,
                backward: mlp.backward(p, ch, Input::Images, i > 0)?,
            })
        })
        .collect()
}

pub(super) fn plan(arch: Arch, p: &PlanInputs, chunks: &[Chunk]) -> Result<Vec<ChunkPlan>> {
    match arch {
        Arch::Fcp => dense_plan(p, chunks, fcp(p.act), Head::CrossEntropy),
        Arch::Autoencoder => dense_plan(p, chunks, autoencoder(), Head::MseSigmoid),
        Arch::Lenet => lenet::plan(p, chunks),
        Arch::Lstm => lstm::plan(p, chunks),
    }
}
