//! One writer per work directory: an advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
//! std's `File::try_lock`) on a file in the directory, held while a command writes there.
//!
//! The lock file holds the holder's process id while it is held, so that a second process can say who
//! holds it; the holder empties it when it lets go (a killed holder leaves its PID, but the system
//! releases the lock itself). The file stays, empty, so that two runs' directories hold the same files.
//! Shards that share a directory (`surface --shard`) each lock a file of their own; a shard takes
//! them all for a moment ([`hold_all_writers`]) to clear the leftovers of killed writes.

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

/// How the name of a shard's lock file begins ([`shard_lock`]).
const SHARD_LOCK_PREFIX: &str = ".losscape-shard-";

/// The lock file of shard `index` of `count` in a directory the shards share ([`LOCK`] for one shard).
pub fn shard_lock(index: usize, count: usize) -> String {
    if count > 1 {
        format!("{SHARD_LOCK_PREFIX}{index}-of-{count}.lock")
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
        Self::take(dir, name, false)
    }

    /// [`DirLock::acquire`] for a directory that several writers share (the shards of `surface`). A
    /// sweep of leftovers ([`hold_all_writers`]) holds the other shards' locks for a moment, under
    /// the configuration lock; so a held lock is tried once more under the configuration lock
    /// before it counts as another writer's (if the configuration lock file does not exist, no sweep
    /// has begun). Waiting for it (`--wait`) happens after the configuration lock is let go.
    ///
    /// Errors: as [`DirLock::acquire`], and the configuration lock fails.
    pub fn acquire_shared(dir: &Path, name: &str) -> Result<DirLock> {
        Self::take(dir, name, true)
    }

    /// Takes the lock; `shared`: as [`DirLock::acquire_shared`].
    fn take(dir: &Path, name: &str, shared: bool) -> Result<DirLock> {
        let (mut file, path) = open_lock_file(dir, name)?;
        let mut state = file.try_lock();
        let mut config = None;
        if shared && matches!(state, Err(TryLockError::WouldBlock)) {
            config = hold_existing(dir, super::config::CONFIG_LOCK)?;
            if config.is_some() {
                state = file.try_lock();
            }
        }
        match state {
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
                drop(config);
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

/// Every writer's lock of a directory that several processes write, held together
/// ([`hold_all_writers`]); let go when dropped, the shards' locks before the configuration lock.
///
/// The order matters: a shard that found its lock held waits for the configuration lock and then
/// tries its own once more ([`DirLock::acquire_shared`]); were the configuration lock let go first,
/// that try could come before the shard's lock is let go, and the shard would refuse to start.
#[derive(Debug)]
pub struct AllWriters {
    // fields drop in declaration order: the shards' locks first
    shards: Vec<File>,
    _config: File,
}

impl AllWriters {
    /// How many locks are held: the configuration lock and each other shard's.
    pub fn count(&self) -> usize {
        1 + self.shards.len()
    }
}

/// Every writer's lock of a directory that several processes write (the shards of `surface`), held
/// together: the configuration lock, then each shard's lock file in `dir` other than `own` (which
/// the caller holds), none waited for. `None` when one of them is held elsewhere, with none kept.
///
/// While they are held, no other process is writing in `dir`: every file it writes whole is written
/// under one of these locks (`config.json` under the configuration lock, a shard's outputs under
/// its shard's lock), so its temporary files ([`super::PARTIAL_PREFIX`]) are leftovers of killed
/// writes. A shard that starts meanwhile and finds its lock held tries it again under the
/// configuration lock ([`DirLock::acquire_shared`]), so it waits for this hold to end instead of
/// taking it for a writer's.
///
/// Errors: the directory cannot be listed, or a lock file cannot be opened or locked for a reason
/// other than another holder.
pub fn hold_all_writers(dir: &Path, own: &str) -> Result<Option<AllWriters>> {
    let Some(config) = hold_briefly(dir, super::config::CONFIG_LOCK)? else { return Ok(None) };
    let mut shards = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("{}: cannot list", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let shard = name == LOCK || (name.starts_with(SHARD_LOCK_PREFIX) && name.ends_with(".lock"));
        if !shard || name == own {
            continue;
        }
        let (file, path) = open_lock_file(dir, &name)?;
        match file.try_lock() {
            Ok(()) => shards.push(file),
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("{}: cannot lock", path.display())),
        }
    }
    Ok(Some(AllWriters { shards, _config: config }))
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
    wait_for_lock(file, &path)
}

/// Locks `file` (the lock file at `path`), waiting for any holder; `None` where the file system
/// cannot lock.
fn wait_for_lock(file: File, path: &Path) -> Result<Option<File>> {
    match file.lock() {
        Ok(()) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot lock", path.display())),
    }
}

/// [`hold_briefly`] for a lock file that already exists: `None` when it does not (nothing is
/// created) or the file system cannot lock.
///
/// Errors: the file cannot be opened for another reason, or the lock fails.
fn hold_existing(dir: &Path, name: &str) -> Result<Option<File>> {
    let path = dir.join(name);
    let file = match std::fs::OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot open the lock file", path.display())),
    };
    wait_for_lock(file, &path)
}

/// Opens (creating `dir` and the file if needed, keeping its contents: a holder's PID is read from
/// it) the lock file `name` in `dir`, for reading and writing; returns it with its path.
fn open_lock_file(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    super::create_dir(dir)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A shard starting while another clears leftovers (holding every shard's lock for a moment)
    /// waits for that hold instead of taking it for a writer's and refusing. Repeated, because the
    /// fault it guards against (the configuration lock let go before a shard's) lost a race only
    /// now and then.
    #[test]
    fn a_shard_starting_during_a_sweep_waits_for_it_instead_of_refusing() {
        let dir = tempfile::tempdir().unwrap();
        let (own, other) = (shard_lock(0, 2), shard_lock(1, 2));
        drop(DirLock::acquire(dir.path(), &other).unwrap()); // its lock file exists, as after a first run
        let sweeping = DirLock::acquire_shared(dir.path(), &own).unwrap();
        for round in 0..REPEATS {
            let all = hold_all_writers(dir.path(), &own).unwrap().expect("nobody else writes");
            let (probe, _) = open_lock_file(dir.path(), &other).unwrap();
            assert!(matches!(probe.try_lock(), Err(TryLockError::WouldBlock)), "the sweep holds shard 1's lock");
            let let_go = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(if round == 0 { 300 } else { 20 }));
                drop(all);
            });
            let started = DirLock::acquire_shared(dir.path(), &other);
            let_go.join().unwrap();
            assert!(started.is_ok(), "round {round}: {:?}", started.err());
        }
        // a shard's lock held by a writer is refused, naming it
        let _started = DirLock::acquire(dir.path(), &other).unwrap();
        let refused = format!("{:#}", DirLock::acquire_shared(dir.path(), &other).unwrap_err());
        assert!(refused.contains(&format!("PID {}", std::process::id())), "{refused}");
        drop(sweeping);
    }

    /// Rounds of [`a_shard_starting_during_a_sweep_waits_for_it_instead_of_refusing`].
    const REPEATS: usize = 40;

    /// Every writer's lock is held together only while no other process holds one of them; the
    /// caller's own lock is not taken again.
    #[test]
    fn all_writers_are_held_only_while_none_is_held_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let own = DirLock::acquire(dir.path(), &shard_lock(0, 2)).unwrap();
        let other = DirLock::acquire(dir.path(), &shard_lock(1, 2)).unwrap();
        assert!(hold_all_writers(dir.path(), &shard_lock(0, 2)).unwrap().is_none(), "shard 1 is writing");
        drop(other);
        let all = hold_all_writers(dir.path(), &shard_lock(0, 2)).unwrap().expect("nobody else writes");
        assert_eq!(all.count(), 2, "the configuration lock and shard 1's");
        drop(all);
        drop(own);
    }
}
