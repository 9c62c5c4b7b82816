use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::io::{read_weights, write_weights, WeightStack};
use crate::model::Arch;

/// Build a weight set from single checkpoints (PyTorch state_dicts saved with safetensors), in order.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape stack run1.safetensors run2.safetensors --model net.onnx --out set.safetensors\n\nIn PyTorch: safetensors.torch.save_file(model.state_dict(), 'run1.safetensors'). A .pt file\nconverts in one line: safetensors.torch.save_file(torch.load('x.pt'), 'x.safetensors')."
)]
pub struct StackArgs {
    /// Weight files (.safetensors state_dicts or stacks, .npy, .onnx): every vector of each, in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Network: fcp, lenet, lstm, autoencoder, a compact MLP, a description file (.toml) or an ONNX
    /// model (.onnx).
    #[arg(long, value_parser = crate::cli::model_arg)]
    model: Arch,
    /// The set to write: .safetensors (PyTorch names, a leading dimension B) or .npy.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: StackArgs) -> Result<()> {
    let inputs: Vec<&std::path::Path> = args.files.iter().map(PathBuf::as_path).collect();
    super::ranges::refuse_input_as_out("stack", &args.out, &inputs)?;
    let mut flat = Vec::new();
    let mut sources = Vec::new();
    for f in &args.files {
        let s = read_weights(f, args.model)?;
        sources.push(format!(
            "{}:{}",
            f.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            s.count()
        ));
        flat.extend(s.flat);
    }
    let mut stack = WeightStack::new(args.model, flat);
    stack.metadata.insert("losscape.stacked".into(), sources.join(","));
    write_weights(&args.out, &stack)?;
    outln!(
        "wrote {} {} vector(s) from {} file(s) to {}",
        stack.count(),
        args.model.title(),
        args.files.len(),
        args.out.display()
    )?;
    Ok(())
}
