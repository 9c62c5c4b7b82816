use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::path::sweep::merge;

/// Join the shard directories of one `paths` sweep into a single JSON-lines file.
#[derive(Args)]
#[command(after_help = "Example:\n  losscape merge shard0 shard1 shard2 --out paths.jsonl")]
pub struct MergeArgs {
    /// Shard directories (each made by `losscape paths --shard i/n`).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The merged file: one JSON object per pair, sorted by pair index.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: MergeArgs) -> Result<()> {
    // the shards' own files, and weights or models, which a merged JSON-lines file would replace
    let owned: Vec<PathBuf> = args.dirs.iter().flat_map(|d| [d.join("paths.jsonl"), d.join("config.json")]).collect();
    super::ranges::refuse_input_as_out("merge", &args.out, &owned.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let weights = ["safetensors", "npy", "onnx", "toml"];
    if args.out.is_file() && args.out.extension().is_some_and(|e| weights.iter().any(|w| e.eq_ignore_ascii_case(w))) {
        let message = format!(
            "--out {} holds weights or a network, not merged paths; write to a .jsonl file",
            args.out.display()
        );
        return Err(super::ranges::usage("merge", message));
    }
    let resolved: Vec<PathBuf> = args.dirs.iter().map(|d| d.canonicalize().unwrap_or_else(|_| d.clone())).collect();
    if let Some((first, again)) = super::ranges::repeated(&resolved) {
        let message = format!(
            "{} and {} are the same directory (directories {first} and {again}); name each shard once",
            args.dirs[first - 1].display(),
            args.dirs[again - 1].display()
        );
        return Err(super::ranges::usage("merge", message));
    }
    let (have, total) = merge(&args.dirs, &args.out)?;
    outln!("merged {have} of {total} pairs into {}", args.out.display())?;
    let mut builds: Vec<String> = Vec::new();
    for dir in &args.dirs {
        for b in crate::io::config::saved_builds(dir)? {
            if !builds.contains(&b) {
                builds.push(b);
            }
        }
    }
    if builds.len() > 1 {
        eprintln!(
            "warning: the shards were written by {} builds or devices ({}); pairs computed by different builds or \
             devices may differ in their last bits from one build's run on one device (each shard's config.json \
             lists its writers)",
            builds.len(),
            builds.join("; ")
        );
    }
    if have < total {
        eprintln!(
            "warning: {} pair(s) are missing: run the remaining shards (or re-run unfinished ones)",
            total - have
        );
    }
    Ok(())
}
