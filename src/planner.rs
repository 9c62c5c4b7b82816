//! `losscape plan`: what a whole study (a preset of the pipeline) would ask of a device — FLOPs and an
//! estimated time — computed from the networks' plans without running anything. One evaluation's image
//! chunk, dispatches, submissions, read-backs, peak memory and FLOPs are the model's
//! ([`crate::model::plan_evaluation`]); the pairs a path sweep batches are the path finder's
//! ([`crate::path::batching::pairs_per_batch`]).
//!
//! Device profiles ([`crate::backend::profiles`]) carry published limits; the real adapter's come from wgpu.

use anyhow::{bail, Result};
use serde::Serialize;

use crate::model::{Arch, Plan};
use crate::pipeline::Preset;

/// The fraction of nominal fp32 peak assumed when no benchmark record of the adapter is given: the
/// WGSL kernels are plain tiled GEMMs without tensor cores.
pub const ASSUMED_EFFICIENCY: f64 = 0.3;

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
/// epoch/iteration evaluating the training and test loss as `train` does, and each of the two
/// trainings evaluating its runs' starting training loss once).
fn study_flops(arch: Arch, p: &Preset) -> Result<(f64, f64)> {
    let (fwd, grad) = Plan::flops_per_image_vector(arch)?;
    let n = p.train_images.unwrap_or(60_000) as f64;
    let n_test = p.test_images.unwrap_or(10_000) as f64;
    let runs = p.runs as f64;
    const LINE_SEARCH_EVALUATIONS: f64 = 6.0;
    let lbfgs = p.iterations as f64 * runs * (grad * n + LINE_SEARCH_EVALUATIONS * fwd * n + fwd * n_test);
    let sgd = p.epochs as f64 * runs * (grad * n + fwd * n + fwd * n_test);
    let starts = 2.0 * runs * fwd * n;
    let pairs = p.pairs.min(p.keep * p.keep.saturating_sub(1) / 2) as f64;
    let per_path = p.path.iterations as f64 * p.path.points as f64 * grad;
    // four sets on the training landscape, the two test snapshots on the test landscape
    let paths = pairs * per_path * (4.0 * n + 2.0 * n_test);
    Ok((lbfgs + sgd + starts, paths))
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
/// Cases of networks that are not the paper's (a user's, named by its id) are passed over: the presets
/// study the paper's networks.
///
/// Errors: no `cases` list; a case without a model name, a batch or a positive, finite `gflops`
/// (named by its index and model).
pub fn rates_from_bench(record: &serde_json::Value) -> Result<Vec<(Arch, f64)>> {
    let Some(cases) = record.get("cases").and_then(|c| c.as_array()) else {
        bail!("not a `losscape bench` record: it has no \"cases\" list");
    };
    let mut out: Vec<(Arch, usize, f64)> = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let Some(name) = c.get("model").and_then(|m| m.as_str()) else {
            bail!("case {i} of \"cases\" names no model; make the record again with `losscape bench --out FILE`");
        };
        let Ok(model) = serde_json::from_value::<Arch>(c["model"].clone()) else { continue };
        let batch = c.get("batch").and_then(|b| b.as_u64());
        let gflops = c.get("gflops").and_then(|g| g.as_f64()).filter(|g| g.is_finite() && *g > 0.0);
        let (Some(batch), Some(gflops)) = (batch, gflops) else {
            bail!(
                "case {i} of \"cases\" ({name}) lacks a batch or a positive gflops; make the record again with \
                 `losscape bench --out FILE`"
            );
        };
        match out.iter_mut().find(|(a, _, _)| *a == model) {
            Some(e) if e.1 < batch as usize => *e = (model, batch as usize, gflops),
            Some(_) => {}
            None => out.push((model, batch as usize, gflops)),
        }
    }
    Ok(out.into_iter().map(|(a, _, g)| (a, g)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smoke preset's training FLOPs of the FCP, counted by hand from its settings.
    #[test]
    fn training_flops_count_every_evaluation_of_both_trainings() {
        let p = Preset::named("smoke").unwrap();
        let (fwd, grad) = Plan::flops_per_image_vector(Arch::Fcp).unwrap();
        let (n, t, r) = (p.train_images.unwrap() as f64, p.test_images.unwrap() as f64, p.runs as f64);
        let (iterations, epochs) = (p.iterations as f64, p.epochs as f64);
        let lbfgs = iterations * r * (grad * n + 6.0 * fwd * n + fwd * t);
        let sgd = epochs * r * (grad * n + fwd * n + fwd * t);
        let (training, _) = study_flops(Arch::Fcp, &p).unwrap();
        assert_eq!(training, lbfgs + sgd + 2.0 * r * fwd * n);
    }
}
