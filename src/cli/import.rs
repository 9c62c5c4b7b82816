use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};

use crate::model::onnx::{self, Loss};

/// Map an ONNX model (torch.onnx.export) onto a network description and write it as TOML.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape import net.onnx --out net.toml\n  losscape import autoencoder.onnx --loss mse-sigmoid --out ae.toml\n\nThe graph must be a chain of Gemm, MatMul(+Add), Conv, MaxPool, AveragePool, Relu, Sigmoid, Tanh,\nSoftplus, Flatten/Reshape, Identity and Dropout nodes and one LSTM (the image's rows in, its last\nhidden state out) whose parameters are named as in the state_dict (export with dynamo=False):\ndocs/networks.md §8."
)]
pub struct ImportArgs {
    /// The ONNX model (its head: --loss).
    file: PathBuf,
    /// The description to write (.toml, or a stream such as /dev/stdout); `--model` takes it, or the
    /// .onnx file itself.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `import` with the head `loss` (the global `--loss`).
pub fn run(args: ImportArgs, loss: Option<Loss>) -> Result<()> {
    check_out(&args.file, &args.out)?;
    let imported = onnx::import(&args.file, loss).map_err(|e| match e.downcast::<onnx::HeadConflict>() {
        Ok(conflict) => super::ranges::usage("import", conflict),
        Err(e) => e,
    })?;
    let d = &imported.description;
    let derived = d.derive()?;
    let text = format!(
        "# Imported from {} by `losscape import` (docs/networks.md §8); tensor names are the ONNX\n\
         # initializers' (the state_dict's).\n{}",
        args.file.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        d.to_toml()
    );
    crate::io::atomic_write(&args.out, text.as_bytes())?;
    // written all the same: the description is the user's to read and edit
    if let Err(e) = crate::model::check_plans(d) {
        eprintln!(
            "warning: {}: every command will refuse this network as it stands ({e:#}); edit the description or \
             export the model without that layer",
            args.out.display()
        );
    }
    let names: Vec<&str> = derived.params.iter().map(|p| p.name.as_str()).collect();
    outln!(
        "wrote {}: {} layers, {} parameters ({})",
        args.out.display(),
        d.layers.len(),
        derived.n_params(),
        names.join(", ")
    )?;
    Ok(())
}

/// Refuses an `--out` that is not a `.toml` file, or that is the model `file` itself (`import m.onnx
/// --out m.onnx` would replace the model with its description), as usage errors naming `--out` and the
/// fix. A stream (`/dev/stdout`, `/dev/null`, a named pipe: an existing path that is neither a file nor
/// a directory) is written through whatever its name.
fn check_out(file: &Path, out: &Path) -> Result<()> {
    let stream = std::fs::metadata(out).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if !stream && !out.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        let message = format!(
            "--out {}: import writes a network description, a TOML file; name it .toml (e.g. --out {})",
            out.display(),
            out.with_extension("toml").display()
        );
        return Err(super::ranges::usage("import", message));
    }
    if super::ranges::same_file(file, out) {
        let message =
            format!("--out {} is the model being imported; write the description to another file", out.display());
        return Err(super::ranges::usage("import", message));
    }
    Ok(())
}
