use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::{Activation, DataArgs, DeviceArgs};
use crate::backend::OpTime;
use crate::bench::{case, ceiling, path_case, train_case, Case, PathCase, Profile, Record, TrainCase};
use crate::data::{DeviceImages, Split};
use crate::model::{Arch, Network};

/// Time loss+gradient of B weight vectors on N training images for each network, against a
/// matrix-product ceiling.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape bench --images 256\n  losscape bench --models fcp --images 60000 --batches 1,51 --ceiling-size 4096 --out bench.json"
)]
pub struct BenchArgs {
    /// Networks to time [default: fcp,lenet,lstm,autoencoder].
    #[arg(long, value_parser = crate::cli::model_arg, value_delimiter = ',')]
    models: Vec<Arch>,
    /// Training images per call.
    #[arg(long, default_value_t = 1024)]
    images: usize,
    /// Weight-vector counts B to time.
    #[arg(long, value_delimiter = ',', default_value = "1,51")]
    batches: Vec<usize>,
    /// Timed calls per case (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Side of the square matrix product that measures the ceiling.
    #[arg(long, default_value_t = 1024)]
    ceiling_size: usize,
    /// Activation.
    #[arg(long, value_enum, default_value_t)]
    activation: Activation,
    /// Path points M for the path-iteration timing (0 skips it).
    #[arg(long, default_value_t = 51)]
    path_points: usize,
    /// Run counts R for the training timings (SGD epoch, L-BFGS iteration); `0` skips them.
    #[arg(long, value_delimiter = ',', default_value = "1,75")]
    train_runs: Vec<usize>,
    /// Also time each operation of the loss-and-gradient cases (CPU backend): where a network's call
    /// spends its time, printed under each case and recorded in the JSON.
    #[arg(long)]
    profile: bool,
    /// JSON record to write.
    #[arg(long, default_value = "bench.json")]
    out: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(mut args: BenchArgs) -> Result<()> {
    if args.models.is_empty() {
        // the default list, given here rather than to clap, whose value parser would read it with a
        // --loss meant for a model the user names (and refuse it naming `fcp`)
        args.models = Arch::ALL.to_vec();
    }
    if args.images == 0 || args.repeats == 0 || args.batches.contains(&0) {
        return Err(super::ranges::usage("bench", "--images, --repeats and every --batches entry must be at least 1"));
    }
    let data = super::ranges::first(
        "bench",
        args.data.load_for("bench", &args.models, Split::Train)?,
        Some(args.images),
        "--images",
    )?;
    let gpu = args.device.open()?;
    let timing = if gpu.has_timestamps() { "gpu-timestamps" } else { "wall-clock" };
    outln!("adapter: {} ({}, {}), timing: {timing}", gpu.summary().name, gpu.summary().backend, gpu.summary().driver)?;
    let budget = gpu.memory_budget();
    outln!("memory budget: {budget}")?;
    let ceil = ceiling(&gpu, args.ceiling_size, args.repeats)?;
    let images = DeviceImages::upload(&gpu, &data)?; // once, for every case
    outln!(
        "ceiling: {0}x{0}x{0} matrix product {1:.3} ms = {2:.1} GFLOP/s",
        ceil.size,
        ceil.seconds * 1e3,
        ceil.gflops
    )?;
    let widest = args.batches.iter().copied().max().unwrap_or(1);
    let first_layer = if args.models.contains(&Arch::Fcp) {
        let f = crate::bench::first_layer(&images, widest, args.repeats)?;
        outln!(
            "fcp first layer, B={} N={}: {:.3} ms, {:.1} GFLOP/s (one grouped product of all vectors)",
            f.batch,
            f.images,
            f.seconds * 1e3,
            f.gflops
        )?;
        Some(f)
    } else {
        None
    };
    let cases = loss_cases(&args, &images, ceil.gflops)?;
    let paths = path_cases(&args, &images)?;
    let training = training_cases(&args, &images)?;
    for arch in &args.models {
        outln!(
            "FLOP count {}: {} per image and vector",
            arch.id(),
            crate::model::Plan::flops_per_image_vector(*arch)?.1
        )?;
    }
    let record = Record {
        adapter: gpu.summary().clone(),
        budget: gpu.memory_budget(),
        commit: crate::io::config::commit(),
        timing,
        flop_count: "per image-vector: forward products + weight-gradient products + data-gradient products, \
                     multiply-add = 2, element-wise work not counted (see model::Plan::flops_per_image_vector)",
        repeats: args.repeats,
        subgroup_reductions: gpu.uses_subgroups(),
        ceiling: ceil,
        first_layer,
        cases,
        paths,
        training,
    };
    crate::io::atomic_write(&args.out, serde_json::to_string_pretty(&record)?.as_bytes())?;
    outln!("wrote {}", args.out.display())?;
    Ok(())
}

/// Loss and gradient of B vectors, per network and --batches entry.
fn loss_cases(args: &BenchArgs, images: &DeviceImages, ceiling_gflops: f64) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for (&arch, &b) in args.models.iter().flat_map(|m| std::iter::repeat(m).zip(&args.batches)) {
        let net = Network { arch, act: args.activation.act() };
        let c = case(net, images, (b, args.repeats), ceiling_gflops, args.profile)?;
        outln!(
            "{:<11} B={:<3} N={} (chunks of {}): {:.3} ms/call, {:.3e} image-vector evaluations/s, {:.1} GFLOP/s ({:.0}% of ceiling); loss only {:.3} ms",
            c.model,
            c.batch,
            c.images,
            c.chunk_images,
            c.seconds_per_call * 1e3,
            c.evaluations_per_second,
            c.gflops,
            100.0 * c.fraction_of_ceiling,
            c.loss_only_seconds_per_call * 1e3
        )?;
        if let Some(profile) = &c.profile {
            print_profile(profile)?;
        }
        cases.push(c);
    }
    if args.profile && images.device.take_profile().is_none() {
        eprintln!("warning: --profile times operations on the CPU backend only (--backend cpu); a GPU's are not");
    }
    Ok(cases)
}

/// One call's operations taking 1 % of it or more, then the rest together, then the time outside them.
fn print_profile(p: &Profile) -> Result<()> {
    let share = |s: f64| 100.0 * s / p.seconds_per_call;
    let (shown, rest): (Vec<&OpTime>, Vec<&OpTime>) = p.ops.iter().partition(|o| share(o.seconds) >= 1.0);
    outln!("  profile of a call ({:.3} ms, timed per operation):", p.seconds_per_call * 1e3)?;
    for o in shown {
        let rate = if o.flops > 0.0 { format!(", {:.0} GFLOP/s", o.flops / o.seconds * 1e-9) } else { String::new() };
        outln!("  {:>5.1} %  {:>9.3} ms  {:>4} x  {}{rate}", share(o.seconds), o.seconds * 1e3, o.calls, o.op)?;
    }
    let other: f64 = rest.iter().map(|o| o.seconds).sum();
    let outside = p.seconds_per_call - p.ops.iter().map(|o| o.seconds).sum::<f64>();
    outln!("  {:>5.1} %  {:>9.3} ms  {} other operations", share(other), other * 1e3, rest.len())?;
    outln!("  {:>5.1} %  {:>9.3} ms  between the operations (host work, read-back)", share(outside), outside * 1e3)?;
    Ok(())
}

/// One path-finder iteration per network, batched and one point at a time (none with --path-points 0).
fn path_cases(args: &BenchArgs, images: &DeviceImages) -> Result<Vec<PathCase>> {
    let mut paths = Vec::new();
    for &arch in args.models.iter().filter(|_| args.path_points > 0) {
        let net = Network { arch, act: args.activation.act() };
        let p = path_case(net, images, args.path_points, args.repeats)?;
        outln!(
            "{:<11} path iteration, M={} N={}: {:.3} ms batched, {:.3} ms as {} calls of B=1 ({:.1}x)",
            p.model,
            p.points,
            p.images,
            p.seconds_per_iteration * 1e3,
            p.seconds_one_at_a_time * 1e3,
            p.points,
            p.speedup
        )?;
        paths.push(p);
    }
    Ok(paths)
}

/// An SGD epoch and an L-BFGS iteration per network and --train-runs entry.
fn training_cases(args: &BenchArgs, images: &DeviceImages) -> Result<Vec<TrainCase>> {
    let mut training = Vec::new();
    for &arch in &args.models {
        for &runs in args.train_runs.iter().filter(|&&r| r > 0) {
            let net = Network { arch, act: args.activation.act() };
            let t = train_case(net, images, runs, args.repeats)?;
            outln!(
                "{:<11} training R={:<3} N={}: SGD epoch {:.4} s ({:.3e} image-runs/s), L-BFGS iteration {:.4} s (1 + {} evaluations); medians",
                t.model,
                t.runs,
                t.images,
                t.seconds_per_sgd_epoch,
                t.sgd_images_per_second,
                t.seconds_per_lbfgs_iteration,
                t.lbfgs_line_search_evaluations
            )?;
            training.push(t);
        }
    }
    Ok(training)
}
