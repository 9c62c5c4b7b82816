use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

use super::DeviceArgs;
use crate::backend::profiles::profile;
use crate::backend::ChunkBudget;
use crate::model::{plan_evaluation, Arch, EvaluationPlan};
use crate::path::batching::pairs_per_batch;
use crate::pipeline::regime::default_sizes;
use crate::pipeline::Preset;
use crate::planner::{estimate_study, rates_from_bench, ASSUMED_EFFICIENCY};

/// What an evaluation (or a whole study) would ask of a device — chunk size, dispatches, submissions,
/// read-backs, peak memory, FLOPs, estimated time — without running it.
#[derive(Args)]
#[command(after_help = "Example:\n  losscape plan --model lenet --batch 51 --images 60000 --profile h100\n  \
losscape plan --preset paper --profile h100 --json\n  losscape plan --preset medium --bench bench.json\n\n\
Profiles: h100, h200, a100, rtx4090, apple-m2, webgpu-default, lavapipe (limits and sources: docs/backends.md).\n\
Without --profile, the adapter the device options choose (or the CPU backend).")]
pub struct PlanArgs {
    /// Network of a single evaluation (a --preset plans its own networks).
    #[arg(long, value_parser = crate::cli::model_arg, default_value = "lenet", conflicts_with = "preset")]
    model: Arch,
    /// Weight vectors per evaluation (a path iteration: 51 points).
    #[arg(long, default_value_t = 51, value_parser = clap::value_parser!(u64).range(1..=100_000), conflicts_with = "preset")]
    batch: u64,
    /// Images per evaluation.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000), conflicts_with = "preset")]
    images: u64,
    /// Plan the whole study of a preset: per-network evaluations and estimated hours.
    #[arg(long, value_parser = crate::cli::preset_arg())]
    preset: Option<String>,
    /// A named device profile instead of this machine's adapter.
    #[arg(long)]
    profile: Option<String>,
    /// A `losscape bench --out` record of the adapter: its measured GFLOP/s set the estimated time.
    #[arg(long, value_name = "FILE")]
    bench: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The device planned for: its name, budget, nominal peak (FLOP/s) and whether it is the CPU backend.
struct Target {
    name: String,
    budget: ChunkBudget,
    peak: f64,
    cpu: bool,
}

/// The profile, or this machine's device.
fn target(args: &PlanArgs) -> Result<Target> {
    if let Some(name) = &args.profile {
        let p = profile(name)?;
        let budget = p.budget(args.device.gpu_memory);
        return Ok(Target { name: p.title.to_string(), budget, peak: p.fp32_tflops * 1e12, cpu: false });
    }
    let device = args.device.open()?;
    let s = device.summary();
    // no nominal peak is known for an arbitrary adapter: --bench gives a measured one
    let name = format!("{} ({})", s.name, s.backend);
    Ok(Target { name, budget: device.chunk_budget(), peak: f64::NAN, cpu: device.is_cpu() })
}

/// The batched path evaluation of one network as a sweep would run it: P pairs of `points` points.
#[derive(serde::Serialize)]
struct PathBatch {
    model: Arch,
    /// P: pairs optimised together (`paths --pairs-per-batch` default).
    pairs_per_batch: usize,
    /// B = P x points.
    batch: usize,
    images: usize,
    chunk_images: usize,
    dispatches_per_evaluation: usize,
    /// The dispatch goal P keeps (`model::dispatch_goal`).
    dispatch_goal: usize,
}

/// One JSON object: the device, its budget, and the evaluation's fields at the top level.
fn evaluation_json(device: &str, budget: ChunkBudget, e: &EvaluationPlan) -> serde_json::Value {
    let mut object = serde_json::to_value(e).expect("an evaluation plan serialises");
    object["device"] = device.into();
    object["budget"] = serde_json::to_value(budget).expect("a budget serialises");
    object
}

fn print_evaluation(e: &EvaluationPlan) -> Result<()> {
    outln!(
        "{} B={} N={} {}: chunks of {} images ({} chunks), {} dispatches, {} submission, {} read-back, peak {:.1} MiB, {:.3e} FLOP",
        // the paper's networks as this line always named them (Fcp, Lenet, ...)
        if e.model.is_paper() { format!("{:?}", e.model) } else { e.model.id().to_string() },
        e.batch,
        e.images,
        if e.gradient { "loss+gradient" } else { "loss" },
        e.chunk_images,
        e.chunks,
        e.dispatches_per_evaluation,
        e.submissions_per_evaluation,
        e.readbacks_per_evaluation,
        e.peak_bytes as f64 / (1u64 << 20) as f64,
        e.flops_per_evaluation
    )
}

/// Refuses a benchmark `record` (read from `path`) measured on another device than the `--profile`
/// planned for: its rates would be that device's (a CPU's GFLOP/s under an H100's name). A record
/// that names no adapter (written by hand) is taken as it is.
fn check_bench_device(path: &std::path::Path, record: &serde_json::Value, profile: Option<&str>) -> Result<()> {
    let (Some(profile), Some(adapter)) = (profile, record["adapter"]["name"].as_str()) else { return Ok(()) };
    let wanted = crate::backend::profiles::profile(profile)?;
    if crate::backend::profiles::known_device(adapter).is_some_and(|p| p.name == wanted.name) {
        return Ok(());
    }
    anyhow::bail!(
        "{}: measured on {adapter}, not on the {} that --profile {profile} plans for, so its rates are not that \
         device's; give a record made on that device, leave out --bench for the profile's nominal estimate, or \
         leave out --profile to plan for this machine's device",
        path.display(),
        wanted.title
    )
}

pub fn run(args: PlanArgs) -> Result<()> {
    if args.bench.is_some() && args.preset.is_none() {
        let msg = "--bench sets the estimated time of a study, which --preset names (e.g. --preset quick)";
        return Err(super::ranges::usage("plan", msg));
    }
    let Target { name, budget, peak, cpu } = target(&args)?;
    let Some(preset_name) = &args.preset else {
        let e = plan_evaluation(args.model, args.batch as usize, args.images as usize, budget, true)?;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&evaluation_json(&name, budget, &e))?)?;
        } else {
            outln!(
                "device: {name}; budget: tensors ≤ {} MiB, scratch ≤ {} MiB",
                budget.tensor_bytes >> 20,
                budget.total_bytes >> 20
            )?;
            print_evaluation(&e)?;
        }
        return Ok(());
    };
    let preset = Preset::named(preset_name)?;
    // a regime preset: one study per size; the evaluations are planned at the largest
    let sizes = default_sizes(&preset.name);
    let n = sizes.as_ref().and_then(|s| s.last().copied()).or(preset.train_images).unwrap_or(60_000);
    let mut evaluations = Vec::new();
    let mut paths = Vec::new();
    for &arch in &preset.models {
        // the paths at the B and chunk the sweep will use: P pairs per evaluation
        let points = preset.path.points;
        // never more than a sweep holds: the pairs of every set on the training landscape
        let sweep = preset.pairs * crate::io::workdir::landscape_sets("train").len();
        let p = if cpu { 1 } else { pairs_per_batch(arch, budget, points, n).min(sweep) };
        let path = plan_evaluation(arch, p * points, n, budget, true)?;
        paths.push(PathBatch {
            model: arch,
            pairs_per_batch: p,
            batch: p * points,
            images: n,
            chunk_images: path.chunk_images,
            dispatches_per_evaluation: path.dispatches_per_evaluation,
            dispatch_goal: crate::model::dispatch_goal(arch),
        });
        evaluations.push(path);
        evaluations.push(plan_evaluation(arch, preset.runs, n, budget, true)?);
    }
    let (rates, basis) = match &args.bench {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
            let record: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
            check_bench_device(path, &record, args.profile.as_deref())?;
            (
                rates_from_bench(&record).with_context(|| path.display().to_string())?,
                format!("measured: {}", path.display()),
            )
        }
        None if peak.is_finite() => (
            Vec::new(),
            format!("nominal fp32 peak {:.1} TFLOP/s x assumed efficiency {ASSUMED_EFFICIENCY}", peak / 1e12),
        ),
        // no nominal peak (the CPU backend, an unlisted adapter): the plan without times
        None => (Vec::new(), NO_ESTIMATE.to_string()),
    };
    let rate = |arch: Arch| rates.iter().find(|(a, _)| *a == arch).map_or(peak * ASSUMED_EFFICIENCY, |(_, g)| g * 1e9);
    let missing: Vec<&str> =
        preset.models.iter().filter(|a| !rates.iter().any(|(r, _)| r == *a)).map(|a| a.id()).collect();
    if let (Some(path), false) = (&args.bench, missing.is_empty()) {
        anyhow::bail!(
            "{}: the benchmark record has no {} (the preset studies {}): run `losscape bench --models {} --out FILE` \
             on this device and give that record",
            path.display(),
            missing.join(", "),
            preset.models.iter().map(|a| a.id()).collect::<Vec<_>>().join(", "),
            preset.models.iter().map(|a| a.id()).collect::<Vec<_>>().join(",")
        );
    }
    let study = estimate_study(&preset, &preset.models, rate, basis.clone())?;
    let regime = match &sizes {
        Some(sizes) => Some(regime_estimates(&preset, sizes, &rate, &basis)?),
        None => None,
    };
    if args.json {
        // the top-level counts are those of the evaluation with the most dispatches
        let worst = evaluations.iter().max_by_key(|e| e.dispatches_per_evaluation).expect("a preset has networks");
        let mut object = evaluation_json(&name, budget, worst);
        object["evaluations"] = serde_json::to_value(&evaluations)?;
        object["paths"] = serde_json::to_value(&paths)?;
        object["study"] = serde_json::to_value(&study)?;
        object["estimated_hours"] = study.estimated_hours.into();
        if let Some(regime) = &regime {
            object["regime"] = serde_json::to_value(regime)?;
            object["estimated_hours"] = regime.iter().map(|s| s.estimated_hours).sum::<f64>().into();
        }
        outln!("{}", serde_json::to_string_pretty(&object)?)?;
        return Ok(());
    }
    outln!(
        "device: {name}; budget: tensors ≤ {} MiB, scratch ≤ {} MiB",
        budget.tensor_bytes >> 20,
        budget.total_bytes >> 20
    )?;
    outln!("preset {}: {}", preset.name, preset.describe())?;
    for p in &paths {
        outln!(
            "{:?} paths: P = {} pairs per batch, B = {} ({} x {} points): chunks of {} images, {} dispatches per evaluation (goal {})",
            p.model,
            p.pairs_per_batch,
            p.batch,
            p.pairs_per_batch,
            preset.path.points,
            p.chunk_images,
            p.dispatches_per_evaluation,
            p.dispatch_goal
        )?;
    }
    outln!("per evaluation (a path iteration is one of B = P x {} points; an L-BFGS iteration one of B = {} runs plus 6 line-search losses):", preset.path.points, preset.runs)?;
    evaluations.iter().try_for_each(print_evaluation)?;
    for w in &study.networks {
        outln!(
            "{:?}: training {:.3e} FLOP, paths {:.3e} FLOP, {}",
            w.model,
            w.training_flops,
            w.path_flops,
            duration(w.seconds)
        )?;
    }
    let total = duration(study.estimated_hours * 3600.0);
    match (&sizes, &regime) {
        (Some(sizes), Some(regime)) => print_regime(sizes, regime)?,
        _ if study.estimated_hours.is_finite() => {
            outln!("whole study: {:.3e} FLOP, estimated {total} ({})", study.flops, study.basis)?
        }
        _ => outln!("whole study: {:.3e} FLOP; {}", study.flops, study.basis)?,
    }
    Ok(())
}

/// The study of a regime preset at each of its sizes (the paths at their most iterations: an upper
/// bound where they stop at convergence).
fn regime_estimates(
    preset: &Preset,
    sizes: &[usize],
    rate: &impl Fn(Arch) -> f64,
    basis: &str,
) -> Result<Vec<crate::planner::StudyEstimate>> {
    sizes
        .iter()
        .map(|&n| {
            let at = Preset { train_images: Some(n), ..preset.clone() };
            estimate_study(&at, &preset.models, rate, basis.to_string())
        })
        .collect()
}

fn print_regime(sizes: &[usize], regime: &[crate::planner::StudyEstimate]) -> Result<()> {
    for (n, study) in sizes.iter().zip(regime) {
        let time = duration(study.estimated_hours * 3600.0);
        match study.estimated_hours.is_finite() {
            true => outln!("  study on {n} training images: {:.3e} FLOP, at most {time}", study.flops)?,
            false => outln!("  study on {n} training images: {:.3e} FLOP", study.flops)?,
        }
    }
    let hours: f64 = regime.iter().map(|s| s.estimated_hours).sum();
    if !hours.is_finite() {
        return outln!("regime map ({} sizes): {NO_ESTIMATE}", regime.len());
    }
    outln!(
        "regime map ({} sizes, paths at their most iterations): estimated at most {} ({})",
        regime.len(),
        duration(hours * 3600.0),
        regime.first().map_or("", |s| s.basis.as_str())
    )?;
    Ok(())
}

/// What the plan says in place of a time on a device without a nominal peak or a benchmark.
const NO_ESTIMATE: &str = "no time estimate: this device has no nominal peak; give --bench FILE (from `losscape \
                           bench --out FILE` on it) or --profile NAME";

/// Seconds as hours, or minutes or seconds when shorter (a reduced preset on a GPU is minutes); "no
/// time estimate" when not finite (no rate to divide by).
fn duration(seconds: f64) -> String {
    match seconds {
        s if !s.is_finite() => "no time estimate".to_string(),
        s if s >= 3600.0 => format!("{:.1} hours", s / 3600.0),
        s if s >= 60.0 => format!("{:.1} minutes", s / 60.0),
        s => format!("{s:.1} s"),
    }
}
