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
/// writes at a time (a training run's, a path sweep's, a `hessian` run's, a study's report), or one
/// whose writers' locks the caller holds together (a surface's shards: [`lock::hold_all_writers`]),
/// since another writer's file in flight would be removed too.
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

/// Creates the directory `dir` and its missing ancestors (`std::fs::create_dir_all`), naming the
/// problem where that fails because `dir` or an ancestor is a file: a mistyped `--out` that names a
/// weight file would otherwise read "File exists (os error 17)".
///
/// Errors: `dir` or one of its ancestors exists and is not a directory; the directory cannot be created.
pub fn create_dir(dir: &Path) -> Result<()> {
    if let Some(file) = dir.ancestors().find(|a| !a.as_os_str().is_empty() && a.exists() && !a.is_dir()) {
        match file == dir {
            true => bail!(
                "{}: is a file, not a directory; give a directory (a new name, or an existing directory)",
                dir.display()
            ),
            false => bail!(
                "{}: is a file, so it cannot hold the directory {}; give another path",
                file.display(),
                dir.display()
            ),
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the directory", dir.display()))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a crash
/// or a full disk never leaves a half-written file under the final name. Every file losscape writes
/// whole (sets, configurations, checkpoints, summaries, reports) is written here.
///
/// The file's permissions follow the umask, as a file made by `std::fs::write` would have them (0644
/// under umask 022): the temporary file is created with mode 0666 and the umask applied by the system,
/// not with the owner-only 0600 of a plain temporary file.
///
/// A symbolic link is followed: the file it names is replaced and the link stays. A path that is not a
/// regular file (`/dev/stdout`, a named pipe, a device) is written directly, as a shell's `>` would,
/// since renaming over it would replace the device or pipe with a file.
///
/// Errors: `path` is a directory; the directory cannot be created; a write fails (a full disk names
/// the file).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if path.is_dir() {
        bail!("{}: is a directory; give the name of a file to write (inside it, or elsewhere)", path.display());
    }
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return write_through(path, bytes);
    }
    let target = link_target(path);
    let path = target.as_path();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir(dir)?;
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

/// Writes `bytes` into the existing non-regular file `path` (a pipe, a terminal, a device).
fn write_through(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("{}: cannot open for writing", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.flush())
        .with_context(|| format!("{}: cannot write (is the disk full?)", path.display()))
}

/// The file a chain of symbolic links at `path` ends in (`path` itself when it is no link); a link
/// into a directory that does not exist yet resolves by name, so the write creates its target.
pub fn link_target(path: &Path) -> std::path::PathBuf {
    let mut at = path.to_path_buf();
    // a loop of links stops at the limit the system itself uses; the write then reports the error
    for _ in 0..40 {
        let Ok(next) = std::fs::read_link(&at) else { break };
        at = match at.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    at
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn a_link_is_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = (dir.path().join("sub").join("real.json"), dir.path().join("link.json"));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("sub/real.json", &link).unwrap();
        atomic_write(&link, b"one").unwrap(); // a dangling link: its target is created
        atomic_write(&link, b"two").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays");
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
    }

    #[test]
    fn a_device_is_written_through_and_its_errors_name_it() {
        let full = Path::new("/dev/full");
        if !std::fs::metadata(full).is_ok_and(|m| !m.is_file()) {
            return; // not a Linux system
        }
        let err = format!("{:#}", atomic_write(full, b"x").unwrap_err());
        assert!(err.contains("/dev/full") && err.contains("disk full"), "{err}");
        assert!(!std::fs::metadata(full).unwrap().is_file(), "the device is still a device");
        atomic_write(Path::new("/dev/null"), b"x").unwrap();
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    }

    #[test]
    fn a_named_pipe_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        if !std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
            return; // no mkfifo: the device test covers the same path
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        atomic_write(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a pipe");
    }
}
