use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::{Activation, DataArgs, DeviceArgs};
use crate::data::Split;
use crate::io::shard::Shard;
use crate::model::Arch;
use crate::pipeline::regime::{check_sizes, default_sizes, reproduce_regime};
use crate::pipeline::{reproduce, Preset, ReproduceConfig, Stage};

/// The whole study, from the dataset (MNIST by default) to a report: solution sets, paths on both landscapes, analysis.
#[derive(Args)]
#[command(after_help = "Example:\n  losscape reproduce --preset quick --out work\n  \
losscape reproduce --preset paper --stage train --shard 3/8 --out /scratch/work\n\n\
Resumable: re-running continues where it stopped; finished stages are skipped. With --shard i/n the\n\
train stage takes every n-th (network, optimizer) unit, the paths stage every n-th pair and the probes\n\
stage (Hessian sharpness of the minima, surfaces through representative paths) every n-th network;\n\
run `--stage train` on all shards, then `--stage paths` on all shards, then `--stage report` once (it\n\
completes any probes not yet run).\n\n\
The regime map: `--images 250,500,1000,2000` runs the study once per training-set size (the first N\n\
training images, in OUT/images-N) and writes OUT/regime/index.html: path heights and every claim's\n\
verdict against training images per parameter. `--preset regime` does so for FCP with converged paths.\n\
A map (or study) whose preset stops paths at convergence resumes under a larger path budget than it was\n\
made with (a newer preset's): converged pairs are kept, the others found again, the reports rewritten.\n\
  losscape reproduce --preset regime --out map\n\
  losscape reproduce --preset regime --images 250,500,1000,2000,4000 --out map   (adds a size)")]
pub struct ReproduceArgs {
    /// The scale of the study.
    #[arg(long, default_value = "quick", value_parser = crate::cli::preset_arg())]
    preset: String,
    /// Work directory.
    #[arg(long)]
    out: PathBuf,
    /// Networks (default: the preset's — quick: fcp,autoencoder; the others: all four).
    #[arg(long, value_parser = crate::cli::model_arg, value_delimiter = ',')]
    models: Option<Vec<Arch>>,
    /// Which stage to run.
    #[arg(long, value_enum, default_value_t = Stage::All)]
    stage: Stage,
    /// This invocation's share of the work.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// The regime map: one study per number of training images, e.g. 250,500,1000,2000 (default with
    /// --preset regime: 250,500,1000,2000; regime-gpu: 2000,6000,20000,60000), each in OUT/images-N,
    /// and the map in OUT/regime.
    #[arg(long, value_delimiter = ',')]
    images: Option<Vec<usize>>,
    /// Weight-match every path pair before optimising it (Ainsworth et al. 2023): the report then shows
    /// barriers before and after alignment and whether the SGD-vs-L-BFGS gap survives it.
    #[arg(long)]
    align: bool,
    /// Activation of the FCP and LeNet.
    #[arg(long, value_enum, default_value_t)]
    activation: Activation,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: ReproduceArgs) -> Result<()> {
    let preset = Preset::named(&args.preset)?;
    if args.stage == Stage::Report && args.shard.count > 1 {
        let msg = format!(
            "--stage report runs once, on every shard's results, so --shard {}/{} does not apply; leave it out",
            args.shard.index, args.shard.count
        );
        return Err(super::ranges::usage("reproduce", msg));
    }
    let models = args.models.clone().unwrap_or_else(|| preset.models.clone());
    // by name: a network's directory, sets and records are named by it, so two networks of one name
    // (two descriptions with the same `name`) would take each other's results
    let names: Vec<&str> = models.iter().map(|a| a.id()).collect();
    if let Some((first, again)) = super::ranges::repeated(&names) {
        let msg = match models[first - 1] == models[again - 1] {
            true => format!(
                "--models names {} twice (entries {first} and {again}); name each network once",
                names[first - 1]
            ),
            false => format!(
                "--models entries {first} and {again} are two networks named {}: a study keeps each network's results \
                 under its name; give the descriptions different names",
                names[first - 1]
            ),
        };
        return Err(super::ranges::usage("reproduce", msg));
    }
    if let Some((first, again)) = args.images.as_deref().and_then(super::ranges::repeated) {
        let msg = format!(
            "--images names {} twice (entries {first} and {again}); name each size once",
            args.images.as_ref().map_or(0, |s| s[first - 1])
        );
        return Err(super::ranges::usage("reproduce", msg));
    }
    let sizes = args.images.clone().or_else(|| default_sizes(&preset.name));
    let mut train = args.data.load_for("reproduce", &models, Split::Train)?;
    // a size beyond the data is a usage error, as every data-dependent bound is (exit 2)
    let sizes = sizes
        .map(|s| check_sizes(&s, train.len()).map_err(|e| super::ranges::usage("reproduce", format!("{e:#}"))))
        .transpose()?;
    let mut test = args.data.load_for("reproduce", &models, Split::Test)?;
    if let (Some(n), None) = (preset.train_images, &sizes) {
        train = train.truncated(n);
    }
    if let Some(n) = preset.test_images {
        test = test.truncated(n);
    }
    let cfg = ReproduceConfig {
        preset: preset.clone(),
        models,
        activation: args.activation.act(),
        align: args.align,
        data_sha256: Some(crate::data::fingerprint(&[&train, &test])),
    };
    let gpu = args.device.open()?;
    eprintln!(
        "reproduce --preset {}: {} on {} ({})",
        preset.name,
        args.out.display(),
        gpu.summary().name,
        gpu.summary().backend
    );
    match sizes {
        Some(sizes) => reproduce_regime(&args.out, &cfg, &sizes, (args.stage, args.shard), &gpu, (train, test))?,
        None => reproduce(&args.out, &cfg, args.stage, args.shard, &gpu, (train, test))?,
    }
    outln!("done: {}", args.out.display())?;
    Ok(())
}
