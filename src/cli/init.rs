use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use crate::io::{write_weights, WeightStack};
use crate::model::{init_vector, Arch};

/// Write freshly initialised weight vectors (PyTorch default init, one seed per vector).
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape init --model fcp --seed 0 --count 51 --out fcp-init.safetensors\n  losscape init --model lstm --seed 7 --out lstm.npy"
)]
pub struct InitArgs {
    /// Network.
    #[arg(long, value_enum)]
    model: Arch,
    /// Seed of the first vector; vector i uses seed S + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of vectors.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Output file: .safetensors (PyTorch names) or .npy (rows = flat vectors).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: InitArgs) -> Result<()> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let flat: Vec<f32> = (0..args.count as u64).flat_map(|i| init_vector(args.model, args.seed + i)).collect();
    let mut stack = WeightStack::new(args.model, flat);
    let seeds: Vec<String> = (0..args.count as u64).map(|i| (args.seed + i).to_string()).collect();
    stack.metadata.insert("losscape.seeds".into(), seeds.join(","));
    stack.metadata.insert("losscape.init".into(), "pytorch-default-uniform-chacha8".into());
    write_weights(&args.out, &stack)?;
    println!(
        "wrote {} {} vector(s) of {} parameters (seeds {}..={}) to {}",
        args.count,
        args.model.title(),
        args.model.n_params(),
        args.seed,
        args.seed + args.count as u64 - 1,
        args.out.display()
    );
    Ok(())
}
