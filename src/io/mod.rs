//! Files: weight stacks (safetensors with PyTorch names, and the authors' .npy layout).

pub mod config;
pub mod float;
pub mod jsonl;
pub mod lock;
pub mod optimizer;
pub mod shard;
pub mod weights;
pub mod workdir;

pub use optimizer::Optimizer;
pub use weights::{read_weights, write_weights, WeightStack};

use anyhow::{bail, Context, Result};
use std::path::Path;

/// The name prefix of [`atomic_write`]'s temporary files: a process killed while writing leaves one
/// behind, never a half-written file under the final name. They hold nothing of value.
pub const PARTIAL_PREFIX: &str = ".partial-";

/// Removes the temporary files a killed writer left in `dir` (not in its subdirectories), so that a
/// resumed directory holds the files of an uninterrupted run. Only for a directory that one process
/// writes at a time (a training run's, a study's report), since another writer's file in flight would
/// be removed too.
///
/// Errors: `dir` exists but cannot be listed, or a leftover cannot be removed.
pub fn remove_partials(dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    let mut removed = 0;
    for e in entries {
        let e = e.with_context(|| format!("{}: cannot list", dir.display()))?;
        if e.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX) && e.path().is_file() {
            std::fs::remove_file(e.path())
                .with_context(|| format!("{}: cannot remove a leftover temporary file", e.path().display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a crash
/// or a full disk never leaves a half-written file under the final name. Every file losscape writes
/// whole (sets, configurations, checkpoints, summaries, reports) is written here.
///
/// The file's permissions follow the umask, as a file made by `std::fs::write` would have them (0644
/// under umask 022): the temporary file is created with mode 0666 and the umask applied by the system,
/// not with the owner-only 0600 of a plain temporary file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if path.is_dir() {
        bail!("{}: is a directory; give the name of a file to write (inside it, or elsewhere)", path.display());
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(PARTIAL_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666)); // the umask is applied on creation
    }
    let mut tmp =
        builder.tempfile_in(dir).with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("{}: cannot write (is the disk full?)", path.display()))?;
    tmp.persist(path).with_context(|| format!("{}: cannot move the finished file into place", path.display()))?;
    Ok(())
}
