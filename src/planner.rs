//! `losscape plan`: what an evaluation, an optimizer iteration and a whole study would ask of a device,
//! computed from the networks' plans without running anything — image chunk, dispatches, submissions
//! and read-backs per evaluation, peak memory, FLOPs, and an estimated time.
//!
//! Device profiles ([`crate::backend::profiles`]) carry published limits; the real adapter's come from wgpu.

use anyhow::{bail, Result};
use serde::Serialize;

use crate::backend::ChunkBudget;
use crate::data::PIXELS;
use crate::model::{batch_fits, chunk_capacity, Arch, Network, Plan};
use crate::ops::Act;
use crate::pipeline::Preset;

/// The fraction of nominal fp32 peak assumed when no benchmark record of the adapter is given: the
/// WGSL kernels are plain tiled GEMMs without tensor cores.
pub const ASSUMED_EFFICIENCY: f64 = 0.3;

/// What one batched evaluation asks of the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluationPlan {
    pub model: Arch,
    pub batch: usize,
    pub images: usize,
    pub gradient: bool,
    pub chunk_images: usize,
    pub chunks: usize,
    pub dispatches_per_evaluation: usize,
    /// One compute pass per evaluation (`Evaluator::run`).
    pub submissions_per_evaluation: usize,
    /// One read-back of the per-vector loss partials (`Evaluator::results`).
    pub readbacks_per_evaluation: usize,
    /// Weights, gradients, loss partials, scratch tensors and the images (packed bytes on a GPU).
    pub peak_bytes: u64,
    pub flops_per_evaluation: f64,
}

/// The evaluation of `batch` vectors of `arch` on `images` images within `budget`.
pub fn plan_evaluation(
    arch: Arch,
    batch: usize,
    images: usize,
    budget: ChunkBudget,
    gradient: bool,
) -> Result<EvaluationPlan> {
    let net = Network { arch, act: Act::Softplus };
    let chunk = chunk_capacity(net, budget, batch, images);
    let plan = Plan::new(net, 0..images, images, batch, chunk, 0)?;
    let external: u64 = plan.tensors[..3].iter().map(|t| t.len as u64 * 4).sum();
    let image_bytes = (images * PIXELS).div_ceil(4) as u64 * 4 + images as u64 * 4;
    let dispatches = plan.chunks.iter().map(|c| c.forward.len() + if gradient { c.backward.len() } else { 0 }).sum();
    Ok(EvaluationPlan {
        model: arch,
        batch,
        images,
        gradient,
        chunk_images: chunk,
        chunks: plan.chunks.len(),
        dispatches_per_evaluation: dispatches,
        submissions_per_evaluation: 1,
        readbacks_per_evaluation: 1,
        peak_bytes: external + plan.scratch_bytes() + image_bytes,
        flops_per_evaluation: plan.flops(gradient),
    })
}

/// The dispatches per evaluation (loss and gradient) the engine aims to stay within: above a few
/// thousand a pass's launch overhead rivals its arithmetic on a data-centre GPU. LeNet and the LSTM
/// meet them at B = 51 on 60,000 images on the `h100` profile (924 and 3,840); the batched path
/// evaluations keep them through [`pairs_per_batch`].
pub fn dispatch_goal(arch: Arch) -> usize {
    match arch {
        Arch::Lstm => 6_000,
        Arch::Fcp | Arch::Lenet | Arch::Autoencoder => 2_000,
    }
}

/// The most pairs [`pairs_per_batch`] puts in one batch.
pub const MAX_PAIRS_PER_BATCH: usize = 16;

/// How many path pairs a sweep optimises together on a GPU with `budget` (P; one evaluation of
/// P x `points` vectors on `images` images per iteration): the largest P <= [`MAX_PAIRS_PER_BATCH`]
/// whose evaluator fits the budget (`model::batch_fits`) and whose evaluation keeps within the
/// network's [`dispatch_goal`] — more pairs shrink the image chunks, and past the goal batching would
/// undo them; 1 when even one pair misses the goal (small budgets). The CPU backend takes 1 (its
/// products use every core at one pair).
pub fn pairs_per_batch(arch: Arch, budget: ChunkBudget, points: usize, images: usize) -> usize {
    let net = Network { arch, act: Act::Softplus };
    let goal = dispatch_goal(arch);
    (1..=MAX_PAIRS_PER_BATCH)
        .rev()
        .find(|&p| {
            batch_fits(net, budget, p * points)
                && plan_evaluation(arch, p * points, images.max(1), budget, true)
                    .is_ok_and(|e| e.dispatches_per_evaluation <= goal)
        })
        .unwrap_or(1)
}

/// [`pairs_per_batch`] on `device` (1 on the CPU backend).
pub fn device_pairs_per_batch(net: Network, device: &crate::backend::Device, points: usize, images: usize) -> usize {
    if device.is_cpu() {
        return 1;
    }
    pairs_per_batch(net.arch, device.chunk_budget(), points, images)
}

/// The work of one network in a study, in FLOPs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkWork {
    pub model: Arch,
    pub training_flops: f64,
    pub path_flops: f64,
    /// Seconds at the rate used for the estimate.
    pub seconds: f64,
}

/// A whole study's FLOPs and estimated time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StudyEstimate {
    pub preset: String,
    pub networks: Vec<NetworkWork>,
    pub flops: f64,
    pub estimated_hours: f64,
    /// How the rate was chosen (a benchmark record, or nominal peak times an assumed efficiency).
    pub basis: String,
}

/// Training and path FLOPs of `arch` at the preset's scale (line searches of 6 evaluations, every
/// epoch/iteration evaluating the training and test loss as `train` does).
fn study_flops(arch: Arch, p: &Preset) -> Result<(f64, f64)> {
    let (fwd, grad) = Plan::flops_per_image_vector(arch)?;
    let n = p.train_images.unwrap_or(60_000) as f64;
    let n_test = p.test_images.unwrap_or(10_000) as f64;
    let runs = p.runs as f64;
    const LINE_SEARCH_EVALUATIONS: f64 = 6.0;
    let lbfgs = p.iterations as f64 * runs * (grad * n + LINE_SEARCH_EVALUATIONS * fwd * n + fwd * n_test);
    let sgd = p.epochs as f64 * runs * (grad * n + fwd * n + fwd * n_test);
    let pairs = p.pairs.min(p.keep * p.keep.saturating_sub(1) / 2) as f64;
    let per_path = p.path.iterations as f64 * p.path.points as f64 * grad;
    // four sets on the training landscape, the two test snapshots on the test landscape
    let paths = pairs * per_path * (4.0 * n + 2.0 * n_test);
    Ok((lbfgs + sgd, paths))
}

/// The study of `preset` on `models` at `rate(arch)` FLOP/s.
pub fn estimate_study(
    preset: &Preset,
    models: &[Arch],
    rate: impl Fn(Arch) -> f64,
    basis: String,
) -> Result<StudyEstimate> {
    let mut networks = Vec::new();
    for &arch in models {
        let (training_flops, path_flops) = study_flops(arch, preset)?;
        networks.push(NetworkWork {
            model: arch,
            training_flops,
            path_flops,
            seconds: (training_flops + path_flops) / rate(arch),
        });
    }
    let flops = networks.iter().map(|w| w.training_flops + w.path_flops).sum();
    let hours = networks.iter().map(|w| w.seconds).sum::<f64>() / 3600.0;
    Ok(StudyEstimate { preset: preset.name.clone(), networks, flops, estimated_hours: hours, basis })
}

/// Sustained GFLOP/s per network from a `losscape bench` record: the case with the largest batch.
pub fn rates_from_bench(record: &serde_json::Value) -> Result<Vec<(Arch, f64)>> {
    let Some(cases) = record.get("cases").and_then(|c| c.as_array()) else {
        bail!("not a `losscape bench` record: it has no \"cases\" list");
    };
    let mut out: Vec<(Arch, usize, f64)> = Vec::new();
    for c in cases {
        let model = c.get("model").and_then(|m| serde_json::from_value::<Arch>(m.clone()).ok());
        let batch = c.get("batch").and_then(|b| b.as_u64());
        let gflops = c.get("gflops").and_then(|g| g.as_f64()).filter(|g| g.is_finite() && *g > 0.0);
        let (Some(model), Some(batch), Some(gflops)) = (model, batch, gflops) else {
            bail!("a bench case lacks model, batch or a positive gflops: {c}");
        };
        match out.iter_mut().find(|(a, _, _)| *a == model) {
            Some(e) if e.1 < batch as usize => *e = (model, batch as usize, gflops),
            Some(_) => {}
            None => out.push((model, batch as usize, gflops)),
        }
    }
    Ok(out.into_iter().map(|(a, _, g)| (a, g)).collect())
}
