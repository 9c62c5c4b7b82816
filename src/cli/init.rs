use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::ranges;
use crate::io::{write_weights, WeightStack};
use crate::model::{init_vectors, Arch};

/// Write freshly initialised weight vectors (PyTorch default init, one seed per vector).
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape init --model fcp --seed 0 --count 51 --out fcp-init.safetensors\n  losscape init --model lstm --seed 7 --out lstm.npy"
)]
pub struct InitArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh) or a description
    /// file (.toml; docs/networks.md §7).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// Seed of the first vector; vector i uses seed S + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of vectors (1 to 10000).
    #[arg(long, default_value_t = 1, value_parser = ranges::count(1, ranges::MAX_VECTORS))]
    count: usize,
    /// Output file: .safetensors (PyTorch names) or .npy (rows = flat vectors).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: InitArgs) -> Result<()> {
    let seeds = ranges::seeds("init", args.seed, args.count)?;
    let flat = init_vectors(args.model, &seeds)
        .map_err(|e| anyhow::anyhow!("init: {e}; lower --count, or make the network smaller"))?;
    let mut stack = WeightStack::new(args.model, flat);
    let names: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    stack.metadata.insert("losscape.seeds".into(), names.join(","));
    stack.metadata.insert("losscape.init".into(), "pytorch-default-uniform-chacha8".into());
    write_weights(&args.out, &stack)?;
    outln!(
        "wrote {} {} vector(s) of {} parameters (seeds {}..={}) to {}",
        args.count,
        args.model.title(),
        args.model.n_params(),
        seeds[0],
        seeds[seeds.len() - 1],
        args.out.display()
    )?;
    Ok(())
}
