use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use super::Activation;
use crate::io::read_weights;
use crate::model::description::Activation as ModelActivation;
use crate::model::{onnx, Arch, Network};

/// Write one weight vector as an ONNX model (the network as a graph, the vector as its initializers).
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape export --model net.onnx --weights set.safetensors --vector 3 --out solution3.onnx\n\nThe model opens in onnxruntime (and any ONNX runtime); `losscape import` reads it back to the same network."
)]
pub struct ExportArgs {
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP (mlp:784-64-10:tanh), a description file
    /// (.toml) or an ONNX model (.onnx).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// Weight file: .safetensors, .npy or .onnx.
    #[arg(long)]
    weights: PathBuf,
    /// Which vector of the file (0-based row).
    #[arg(long, default_value_t = 0)]
    vector: usize,
    /// Activation of the FCP and LeNet [default: softplus]; with relu the model is named fcp-relu or
    /// lenet-relu (it is not the paper's network that `--model fcp` names).
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// The ONNX file to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let act = super::activation_for("export", args.model, args.activation)?;
    let stack = read_weights(&args.weights, args.model)?;
    let rows = super::pick_vectors(("export", "--vector"), &stack, Some(&[args.vector]), &args.weights)?;
    if !args.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx")) {
        bail!("{}: give the ONNX file a .onnx name", args.out.display());
    }
    let mut description = Network { arch: args.model, act }.description();
    // the FCP or LeNet with another activation is another network: a name of its own, so that reading
    // the file back as --model does not take it for the paper's
    if description != *args.model.description() {
        description.name = Some(format!("{}-{}", args.model.id(), ModelActivation::from_act(act).id()));
    }
    let bytes = onnx::export(&description, stack.vector(rows[0]))?;
    crate::io::atomic_write(&args.out, &bytes)?;
    outln!(
        "wrote vector {} of {} ({} parameters) as an ONNX model (opset {}) to {}",
        args.vector,
        args.weights.display(),
        args.model.n_params(),
        onnx::OPSET,
        args.out.display()
    )?;
    Ok(())
}
