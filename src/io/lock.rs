//! One writer per work directory: an advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
//! std's `File::try_lock`) on a file in the directory, held while a command writes there.
//!
//! The lock file holds the holder's process id while it is held, so that a second process can say who
//! holds it; the holder empties it when it lets go (a killed holder leaves its PID, but the system
//! releases the lock itself). The file stays, empty, so that two runs' directories hold the same files.
//! Shards that share a directory (`surface --shard`) each lock a file of their own.

use anyhow::{bail, Context, Result};
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`DirLock::acquire`] waits for another writer (`--wait`) instead of refusing.
static WAIT: AtomicBool = AtomicBool::new(false);

/// Makes every later [`DirLock::acquire`] of this process wait for a directory's writer to finish
/// (`wait`) or refuse at once (the default). Set once from the command line (`--wait`).
pub fn wait_for_writers(wait: bool) {
    WAIT.store(wait, Ordering::Relaxed);
}

/// The lock file of a directory written by one process at a time.
pub const LOCK: &str = ".losscape.lock";

/// The lock file of shard `index` of `count` in a directory the shards share ([`LOCK`] for one shard).
pub fn shard_lock(index: usize, count: usize) -> String {
    if count > 1 {
        format!(".losscape-shard-{index}-of-{count}.lock")
    } else {
        LOCK.to_string()
    }
}

/// A held lock on a work directory, let go when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and takes the lock named `name` in it ([`LOCK`], or [`shard_lock`]),
    /// without waiting, or after the holder lets go when [`wait_for_writers`] asked for it (saying so
    /// on standard error).
    ///
    /// Errors: another process holds it and waiting was not asked for (the error names its PID, the
    /// directory and `--wait`); the directory or the lock file cannot be created.
    pub fn acquire(dir: &Path, name: &str) -> Result<DirLock> {
        let (mut file, path) = open_lock_file(dir, name)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder(&mut file).map_or("another losscape process".to_string(), |pid| {
                    format!("another losscape process (PID {pid})")
                });
                if !WAIT.load(Ordering::Relaxed) {
                    bail!(
                        "{} is being written by {holder}; wait until it has finished (or give --wait), or give \
                         another --out (lock file {})",
                        dir.display(),
                        path.display()
                    );
                }
                eprintln!("{} is being written by {holder}; waiting until it has finished (--wait)", dir.display());
                file.lock().with_context(|| format!("{}: cannot lock", path.display()))?;
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                eprintln!(
                    "warning: {}: this file system cannot lock files ({e}); make sure that no other process writes {}",
                    path.display(),
                    dir.display()
                );
                return Ok(DirLock { file, path });
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("{}: cannot lock", path.display()));
            }
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(pid.as_bytes()))
            .with_context(|| format!("{}: cannot write the lock file", path.display()))?;
        Ok(DirLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // empty while nobody holds it; the lock itself goes with the file handle
        let _ = self.file.set_len(0);
    }
}

/// The PID written in a held lock file. The holder writes it just after taking the lock, so an empty
/// file is read again for a moment.
fn holder(file: &mut File) -> Option<u32> {
    for _ in 0..50 {
        let mut text = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Ok(pid) = text.trim().parse() {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// Takes the lock named `name` in `dir` (created if needed), waiting for whoever holds it, and lets
/// go when the returned file is dropped: for a read-and-rewrite of a shared file that must not
/// interleave with another process's (two shards creating or extending one `config.json`). Held for
/// a moment only, so it always waits; a file system that cannot lock (`Unsupported`) gets no lock, as
/// [`DirLock::acquire`] already warned for the directory.
///
/// Errors: the directory or the lock file cannot be created, or the lock fails otherwise.
pub fn hold_briefly(dir: &Path, name: &str) -> Result<Option<File>> {
    let (file, path) = open_lock_file(dir, name)?;
    match file.lock() {
        Ok(()) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot lock", path.display())),
    }
}

/// Opens (creating `dir` and the file if needed, keeping its contents: a holder's PID is read from
/// it) the lock file `name` in `dir`, for reading and writing; returns it with its path.
fn open_lock_file(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
    Ok((file, path))
}
