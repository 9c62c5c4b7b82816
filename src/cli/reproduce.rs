use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::{Activation, DataArgs, DeviceArgs};
use crate::data::Split;
use crate::io::shard::Shard;
use crate::model::Arch;
use crate::pipeline::{reproduce, Preset, ReproduceConfig, Stage};

/// The whole study, from MNIST to a report: solution sets, paths on both landscapes, analysis.
#[derive(Args)]
#[command(after_help = "Example:\n  losscape reproduce --preset quick --out work\n  \
losscape reproduce --preset paper --stage train --shard 3/8 --out /scratch/work\n\n\
Resumable: re-running continues where it stopped; finished stages are skipped. With --shard i/n the\n\
train stage takes every n-th (network, optimizer) unit, the paths stage every n-th pair and the probes\n\
stage (Hessian sharpness of the minima, surfaces through representative paths) every n-th network;\n\
run `--stage train` on all shards, then `--stage paths` on all shards, then `--stage report` once (it\n\
completes any probes not yet run).")]
pub struct ReproduceArgs {
    /// quick (≤ 10 minutes on 2 CPU cores: FCP and the autoencoder converge at a reduced scale),
    /// medium (all four networks at a reduced scale, all converging: 2 hours on 2 CPU cores) or paper (the
    /// paper's full scale, for GPU servers).
    #[arg(long, default_value = "quick")]
    preset: String,
    /// Work directory.
    #[arg(long)]
    out: PathBuf,
    /// Networks (default: the preset's — quick: fcp,autoencoder; the others: all four).
    #[arg(long, value_enum, value_delimiter = ',')]
    models: Option<Vec<Arch>>,
    /// Which stage to run.
    #[arg(long, value_enum, default_value_t = Stage::All)]
    stage: Stage,
    /// This invocation's share of the work.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
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
    let models = args.models.clone().unwrap_or_else(|| preset.models.clone());
    let mut train = args.data.load(Split::Train)?;
    let mut test = args.data.load(Split::Test)?;
    if let Some(n) = preset.train_images {
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
    reproduce(&args.out, &cfg, args.stage, args.shard, &gpu, (train, test))?;
    outln!("done: {}", args.out.display())?;
    Ok(())
}
