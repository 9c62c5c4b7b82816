//! Append-only JSON-lines result files, the resume mechanism of every long-running command: each finished
//! unit of work (a pair of a path sweep, a row of a surface) is one line written in one append and
//! synced, so a killed run loses at most the unit in flight and never duplicates one.

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::io::Write;
use std::path::Path;

/// Reads every complete record of `path` (none when the file does not exist). A trailing partial or
/// unparsable line (a run killed mid-write) is cut off the file, with a note on stderr, so that the next
/// append starts on a fresh line.
///
/// Errors: the file exists but cannot be read, or cannot be truncated.
pub fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let (records, good, len) = complete_lines(path);
    if good < len {
        eprintln!("note: {}: dropping an unfinished last line (a run was interrupted)", path.display());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open to cut the unfinished line", path.display()))?;
        f.set_len(good as u64)?;
        f.sync_all()?;
    }
    Ok(records)
}

/// The complete records of `path`, leaving the file as it is: for reading another process's file,
/// whose last line may be still being written.
pub fn peek_lines<T: DeserializeOwned>(path: &Path) -> Vec<T> {
    complete_lines(path).0
}

/// The records up to the first partial or unparsable line, the bytes they take, and the file's length.
fn complete_lines<T: DeserializeOwned>(path: &Path) -> (Vec<T>, usize, usize) {
    let Ok(bytes) = std::fs::read(path) else { return (Vec::new(), 0, 0) };
    let mut records = Vec::new();
    let mut good = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        match serde_json::from_slice::<T>(line) {
            Ok(r) => records.push(r),
            Err(_) => break,
        }
        good += line.len();
    }
    (records, good, bytes.len())
}

/// Appends `record` as one JSON line to `path` (created when missing) in a single write, then syncs.
///
/// Errors: the file cannot be opened or written (e.g. a full disk).
pub fn append_line<T: Serialize>(path: &Path, record: &T) -> Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open for appending", path.display()))?;
    f.write_all(&line)
        .and_then(|_| f.sync_data())
        .with_context(|| format!("{}: cannot append (is the disk full?)", path.display()))
}
