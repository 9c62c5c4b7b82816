use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use super::ranges;
use crate::io::{read_weights, write_weights, WeightStack};
use crate::model::{weight_matching, Arch, MatchSettings};

/// Permute the hidden units of every vector of B to match vector A (weight matching, Ainsworth et al.
/// 2023): each aligned vector computes the same function as the original, but lies closer to A.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape align --model fcp --a sgd.safetensors --a-index 0 --b lbfgs.safetensors --out lbfgs-aligned.safetensors\n  \
losscape align --model lstm --a set.npy --a-index 3 --b set.npy --out set-onto-3.npy --json\n\n\
Output: B's vectors, permuted, in the format the --out extension names (.npy, else safetensors), with\n\
B's metadata. Prints per vector the L2 distance to A before and after, and the sweeps run."
)]
pub struct AlignArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh) or a description
    /// file (.toml; docs/networks.md §7).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// The reference: a weight file (.safetensors or .npy).
    #[arg(long)]
    a: PathBuf,
    /// Which vector of A (0-based); needed when A holds several.
    #[arg(long, value_name = "I")]
    a_index: Option<usize>,
    /// The vectors to align: a weight file; every vector is aligned onto A.
    #[arg(long)]
    b: PathBuf,
    /// Output file for B's aligned copy.
    #[arg(long)]
    out: PathBuf,
    /// Most sweeps over the unit groups (1 to 10000).
    #[arg(long, default_value_t = 100, value_parser = ranges::count(1, 10_000))]
    max_sweeps: usize,
    /// Seed of the order in which the groups are visited.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object per vector (with the permutations) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: AlignArgs) -> Result<()> {
    super::ranges::refuse_input_as_out("align", &args.out, &[&args.a, &args.b])?;
    let a_stack = read_weights(&args.a, args.model)?;
    let b_stack = read_weights(&args.b, args.model)?;
    let a_index = match (args.a_index, a_stack.count()) {
        (_, 0) => bail!("{}: holds no weight vectors", args.a.display()),
        (Some(i), n) if i >= n => return Err(super::no_vector(("align", "--a-index"), i, &args.a, n)),
        (Some(i), _) => i,
        (None, 1) => 0,
        (None, n) => {
            let message = format!("{} holds {n} vectors; choose the reference with --a-index", args.a.display());
            return Err(super::ranges::usage("align", message));
        }
    };
    if b_stack.count() == 0 {
        bail!("{}: holds no weight vectors", args.b.display());
    }
    let a = a_stack.vector(a_index);
    let settings = MatchSettings { max_sweeps: args.max_sweeps, seed: args.seed };
    let mut flat = Vec::with_capacity(b_stack.flat.len());
    let mut lines = Vec::with_capacity(b_stack.count()); // printed once the file is written
    for i in 0..b_stack.count() {
        let m = weight_matching(args.model, a, b_stack.vector(i), settings)?;
        if args.json {
            let line = serde_json::json!({
                "vector": i,
                "distance_before": m.distance_before,
                "distance_after": m.distance_after,
                "sweeps": m.sweeps,
                "perms": m.perms,
            });
            lines.push(line.to_string());
        } else {
            lines.push(format!(
                "vector {i}: distance to A {:.6e} -> {:.6e} ({} sweep(s))",
                m.distance_before, m.distance_after, m.sweeps
            ));
        }
        flat.extend_from_slice(&m.aligned);
    }
    let mut out = WeightStack::new(args.model, flat);
    out.metadata = b_stack.metadata.clone();
    out.metadata.insert("losscape.align.reference".into(), format!("{}#{a_index}", args.a.display()));
    out.metadata.insert("losscape.align.method".into(), "weight-matching".into());
    write_weights(&args.out, &out)?;
    for line in lines {
        outln!("{line}")?;
    }
    if !args.json {
        outln!("wrote {} aligned vector(s) to {}", b_stack.count(), args.out.display())?;
    }
    Ok(())
}
