//! What the sharded, resumable runs (path sweeps, surfaces, probes, the pipeline's stages) share: the
//! [`Shard`] of the work one process takes, and an input set identified by content ([`SetInfo`],
//! [`sha256_file`]) and named from the work directory that records it ([`path_from`]).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use super::WeightStack;

/// Shard `index` of `count`: the pairs whose global index is congruent to `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or("expected i/n, e.g. 0/4")?;
        let (index, count) =
            (i.trim().parse().map_err(|_| "i must be a number")?, n.trim().parse().map_err(|_| "n must be a number")?);
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= i < n"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether the item of global index `i` (a pair, a row, a unit) is this shard's.
    pub fn holds(self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// How many of `items` items (global indices 0..items) are this shard's: none when there are
    /// fewer items than the shard's index + 1.
    pub fn share(self, items: usize) -> usize {
        (0..items).filter(|&i| self.holds(i)).count()
    }
}

/// One input set, identified by content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetInfo {
    pub file: String,
    pub sha256: String,
    pub vectors: usize,
}

impl SetInfo {
    /// The set in `file`, holding `stack`, as the work directory `dir` records it: the file is named
    /// from `dir` ([`path_from`]), so that the same set given by a relative or an absolute path or
    /// through a symlink is recorded as the same text, and what a directory records and writes does not
    /// depend on where the command ran or how it named the directory.
    ///
    /// Errors: the file cannot be read (for its checksum).
    pub fn of(file: &Path, stack: &WeightStack, dir: &Path) -> Result<SetInfo> {
        let named = path_from(dir, file).unwrap_or_else(|| file.display().to_string());
        Ok(SetInfo { file: named, sha256: sha256_file(file)?, vectors: stack.count() })
    }
}

/// The path of `file` from the directory `dir` (`../sets/a.safetensors`, `fcp/sgd/x.safetensors`),
/// both resolved first (symlinks, `.` and `..`; a directory not made yet through its nearest existing
/// ancestor), so that every way of naming either gives the same text. `None` where either cannot be
/// resolved (the file is missing).
pub fn path_from(dir: &Path, file: &Path) -> Option<String> {
    let file = file.canonicalize().ok()?;
    let dir = resolve_dir(dir)?;
    let common = dir.components().zip(file.components()).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    (common..dir.components().count()).for_each(|_| out.push(".."));
    file.components().skip(common).for_each(|c| out.push(c));
    Some(out.display().to_string())
}

/// `dir` made absolute with its symlinks resolved; the part that does not exist yet is kept as named.
fn resolve_dir(dir: &Path) -> Option<PathBuf> {
    let mut existing = std::path::absolute(dir).ok()?;
    let mut missing = Vec::new();
    while !existing.exists() {
        missing.push(existing.file_name()?.to_owned());
        existing.pop();
    }
    let mut out = existing.canonicalize().ok()?;
    missing.iter().rev().for_each(|m| out.push(m));
    Some(out)
}

/// The SHA-256 of the file at `path`, in lowercase hex: read in pieces (a set of a large network need
/// not fit in memory twice), and once per process while the file keeps its length, inode and
/// modification time. Why: a study's report checks each sweep's sets on every read of its records
/// (four or five reads per network), and a set of a user's model can be gigabytes.
///
/// A file replaced in the meantime is read again: losscape writes by rename (a new inode and
/// modification time), and so does any editor that saves whole files.
///
/// Errors: the file cannot be opened or read (naming it).
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    /// What identifies a file's contents without reading them: length, inode, modification time.
    type Stamp = (u64, u64, Option<std::time::SystemTime>);
    static HASHED: Mutex<Option<HashMap<PathBuf, (Stamp, String)>>> = Mutex::new(None);
    let read_error = || format!("{}: cannot read", path.display());
    let meta = std::fs::metadata(path).with_context(read_error)?;
    // the inode too, where there is one: a file replaced within the file system's time resolution
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    let stamp: Stamp = (meta.len(), inode, meta.modified().ok());
    let name = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut hashed = HASHED.lock().unwrap_or_else(|e| e.into_inner());
    let hashed = hashed.get_or_insert_with(HashMap::new);
    // without a modification time (a file system that keeps none), every call reads the file
    if let Some((_, sha)) = hashed.get(&name).filter(|(seen, _)| stamp.2.is_some() && *seen == stamp) {
        return Ok(sha.clone());
    }
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).with_context(read_error)?;
    std::io::copy(&mut file, &mut hasher).with_context(read_error)?;
    let sha = format!("{:x}", hasher.finalize());
    hashed.insert(name, (stamp, sha.clone()));
    Ok(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hash_is_its_bytes_hash_and_follows_a_replaced_file() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("set.safetensors");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&file, &bytes).unwrap();
        let want = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(sha256_file(&file).unwrap(), want);
        // rewritten in place with its length, inode and modification time kept: the memo answers,
        // so the file was not read again (what the memo promises, and what it saves)
        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        let mut edited = bytes.clone();
        edited[0] ^= 1;
        std::fs::write(&file, &edited).unwrap();
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(modified).unwrap();
        assert_eq!(sha256_file(&file).unwrap(), want, "from the memo");
        // replaced as losscape writes (a rename), with other bytes of the same length
        let other: Vec<u8> = bytes.iter().map(|b| b ^ 1).collect();
        crate::io::atomic_write(&file, &other).unwrap();
        assert_eq!(sha256_file(&file).unwrap(), format!("{:x}", Sha256::digest(&other)));
        let err = format!("{:#}", sha256_file(&t.path().join("gone.safetensors")).unwrap_err());
        assert!(err.contains("gone.safetensors: cannot read"), "{err}");
    }

    #[test]
    fn a_shard_holds_every_nth_item_and_may_hold_none() {
        let shard = Shard { index: 1, count: 3 };
        assert_eq!((0..7).filter(|&i| shard.holds(i)).collect::<Vec<_>>(), [1, 4]);
        assert_eq!([0, 1, 2, 4, 5, 7].map(|n| shard.share(n)), [0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn a_file_is_named_from_the_directory_however_either_is_named() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("sets")).unwrap();
        std::fs::write(root.join("sets/a.npy"), b"x").unwrap();
        let want = Some("../sets/a.npy".to_string());
        assert_eq!(path_from(&root.join("out"), &root.join("sets/a.npy")), want, "a directory not made yet");
        assert_eq!(path_from(&root.join("sets/../out"), &root.join("sets/../sets/./a.npy")), want);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("sets/a.npy"), root.join("link.npy")).unwrap();
            std::os::unix::fs::symlink(root.join("sets"), root.join("dir-link")).unwrap();
            assert_eq!(path_from(&root.join("out"), &root.join("link.npy")), want, "through a symlink");
            // a directory named through a symlink is where the symlink points
            assert_eq!(path_from(&root.join("dir-link/out"), &root.join("sets/a.npy")), Some("../a.npy".to_string()));
        }
        assert_eq!(path_from(root, &root.join("sets/a.npy")), Some("sets/a.npy".to_string()), "inside the directory");
        assert_eq!(path_from(root, &root.join("missing.npy")), None);
    }
}
