//! Files: weight stacks (safetensors with PyTorch names, and the authors' .npy layout).

pub mod config;
pub mod jsonl;
pub mod weights;
pub mod workdir;

pub use weights::{read_weights, write_weights, WeightStack};

use anyhow::{Context, Result};
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a crash
/// or a full disk never leaves a half-written file under the final name.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("{}: cannot write (is the disk full?)", path.display()))?;
    tmp.persist(path).with_context(|| format!("{}: cannot move the finished file into place", path.display()))?;
    Ok(())
}
