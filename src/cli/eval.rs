use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::{Activation, DataArgs, DeviceArgs};
use crate::data::{DeviceImages, Split};
use crate::io::read_weights;
use crate::model::{Arch, Evaluator, Network, Want};

/// Evaluate the mean loss (and accuracy) of every vector in a weight file on a split of the dataset (MNIST by default).
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape eval --model fcp --weights fcp-init.safetensors --split test\n  losscape eval --model fcp --weights fcp.npy --split train --limit 5000 --json"
)]
pub struct EvalArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh) or a description
    /// file (.toml; docs/networks.md §7).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// Weight file: .safetensors or .npy (`--set`, as `surface` and `hessian` name it, is the same).
    #[arg(long, visible_alias = "set")]
    weights: PathBuf,
    /// Which split.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    split: Split,
    /// Evaluate only these vectors (0-based row indices, e.g. 0,1,5).
    #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
    vectors: Option<Vec<usize>>,
    /// Evaluate on the first N images only.
    #[arg(long, value_name = "N", value_parser = super::ranges::at_least(1))]
    limit: Option<usize>,
    /// Activation of the FCP and LeNet [default: softplus].
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let act = super::activation_for("eval", args.model, args.activation)?;
    let stack = read_weights(&args.weights, args.model)?;
    super::note_activation(&stack, &args.weights, act);
    let rows = super::pick_vectors(("eval", "--vectors"), &stack, args.vectors.as_deref(), &args.weights)?;
    let flat: Vec<f32> = rows.iter().flat_map(|&r| stack.vector(r).iter().copied()).collect();
    let data =
        super::ranges::first("eval", args.data.load_for("eval", &[args.model], args.split)?, args.limit, "--limit")?;
    let gpu = args.device.open()?;
    let images = DeviceImages::upload(&gpu, &data)?;
    let net = Network { arch: args.model, act };
    let eval = Evaluator::new(net, &images, 0..images.count, rows.len())?;
    eval.set_weights(&flat)?;
    let results = eval.evaluate(Want::Loss)?;
    let overflowed: Vec<String> =
        rows.iter().zip(&results).filter(|(_, r)| !r.loss.is_finite()).map(|(i, _)| i.to_string()).collect();
    if !overflowed.is_empty() {
        let (these, have) = if overflowed.len() == 1 { ("vector", "has") } else { ("vectors", "have") };
        eprintln!(
            "warning: {}: {these} {} {have} a non-finite loss (the weights overflow this network), and no accuracy",
            args.weights.display(),
            overflowed.join(", ")
        );
    }
    if args.json {
        let out = serde_json::json!({
            "model": args.model.id(),
            "vectors": rows,
            "split": args.split.name(),
            "images": data.len(),
            "losses": results.iter().map(|r| r.loss).collect::<Vec<_>>(),
            "accuracies": results.iter().map(|r| r.accuracy).collect::<Vec<_>>(),
        });
        outln!("{out}")?;
    } else {
        for (&i, r) in rows.iter().zip(&results) {
            match r.accuracy.filter(|a| a.is_finite()) {
                Some(a) => outln!("vector {i}: loss {:.6e}  accuracy {:.2}%", r.loss, 100.0 * a)?,
                None => outln!("vector {i}: loss {:.6e}", r.loss)?,
            }
        }
    }
    Ok(())
}
