//! Append-only JSON-lines result files, the resume mechanism of every long-running command: each finished
//! unit of work (a pair of a path sweep, a row of a surface, a vector's spectrum) is one line written in
//! one append and synced, so a killed run loses at most the unit in flight and never duplicates one.
//!
//! Two roles, kept apart:
//! - [`read_lines`] reads, for anyone (`merge`, `analyze`, a shard looking at another shard's file), and
//!   never modifies the file: an unfinished last line — no final newline, as a writer killed mid-append
//!   or still appending leaves it — is ignored; a damaged line anywhere else is an error naming the file
//!   and the line, and the file stays as it is.
//! - [`Appender`] is the one writer: [`Appender::resume`] reads the records like [`read_lines`], then cuts
//!   an unfinished last line off the file (it is the only one who may), so that its appends start on a
//!   fresh line.

use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Every complete record of `path` (none when the file does not exist), leaving the file as it is.
///
/// An unfinished last line (one without its final newline: a run killed mid-write, or another process
/// appending right now) is ignored. Blank lines are skipped.
///
/// Errors: the file exists but cannot be read; a line other than the unfinished last one is not a
/// record (named by file and 1-based line number; the file is not changed).
pub fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    Ok(parse(path)?.into_records())
}

/// A file's records, each with its 1-based line number, and the length of the part they take (the
/// unfinished last line excluded).
struct Parsed<T> {
    records: Vec<(usize, T)>,
    complete: usize,
    /// The file's bytes (empty when it is missing).
    bytes: Vec<u8>,
}

fn parse<T: DeserializeOwned>(path: &Path) -> Result<Parsed<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Parsed { records: Vec::new(), complete: 0, bytes: Vec::new() })
        }
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let mut records = Vec::new();
    let mut complete = 0;
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if !line.ends_with(b"\n") {
            break; // the unfinished last line
        }
        complete += line.len();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<T>(line) {
            Ok(r) => records.push((i + 1, r)),
            Err(e) => bail!(
                "{}: line {} is damaged ({e}); the file was left as it is. Repair or delete that line (its \
                 unit of work is then recomputed by a resumed run), or delete the file to recompute all",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(Parsed { records, complete, bytes })
}

impl<T> Parsed<T> {
    /// The records without their line numbers.
    fn into_records(self) -> Vec<T> {
        self.records.into_iter().map(|(_, r)| r).collect()
    }
}

/// The writer of one JSON-lines file: created by [`Appender::resume`], which reads what earlier runs
/// finished; each [`Appender::append`] adds one record.
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
}

impl Appender {
    /// Opens `path` for appending (it is created by the first append) and returns the records already
    /// there. An unfinished last line is cut off the file, with a note on stderr, so that the next
    /// append starts on a fresh line; nothing else is changed.
    ///
    /// Only the process that owns the file may call this (the work directory's lock, `io::lock`).
    ///
    /// Errors: as [`read_lines`]; the file cannot be opened for writing to cut the unfinished line.
    pub fn resume<T: DeserializeOwned>(path: &Path) -> Result<(Appender, Vec<T>)> {
        let (appender, records) = Appender::resume_numbered(path)?;
        Ok((appender, records.into_iter().map(|(_, r)| r).collect()))
    }

    /// As [`Appender::resume`], each record with its 1-based line number, so that a record the caller
    /// finds inconsistent with its run can be named by its line.
    ///
    /// Errors: as [`Appender::resume`].
    pub fn resume_numbered<T: DeserializeOwned>(path: &Path) -> Result<(Appender, Vec<(usize, T)>)> {
        let Parsed { records, complete, bytes } = parse::<T>(path)?;
        let len = bytes.len();
        if complete < len {
            eprintln!("note: {}: dropping an unfinished last line (a run was interrupted)", path.display());
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("{}: cannot open to cut the unfinished last line", path.display()))?;
            f.set_len(complete as u64)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("{}: cannot cut the unfinished last line", path.display()))?;
        }
        Ok((Appender { path: path.to_path_buf() }, records))
    }

    /// The file appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one JSON line (the file is created when missing) in a single write, then syncs.
    ///
    /// Errors: the file cannot be opened or written (e.g. a full disk).
    pub fn append<T: Serialize>(&self, record: &T) -> Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("{}: cannot open for appending", self.path.display()))?;
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .with_context(|| format!("{}: cannot append (is the disk full?)", self.path.display()))
    }
}

/// Rewrites `path` with the complete records that `keep` selects, sorted (stably) by `key`, each line
/// byte for byte as it was; the file is replaced atomically, and only when that changes it (an
/// unfinished last line is dropped too). Returns whether it did. Only the process that owns the file
/// may call this (as [`Appender::resume`]). A missing file is left missing.
///
/// Errors: as [`read_lines`]; the new file cannot be written.
pub fn rewrite<T: DeserializeOwned, K: Ord>(
    path: &Path,
    keep: impl Fn(&T) -> bool,
    key: impl Fn(&T) -> K,
) -> Result<bool> {
    let Parsed { records, complete, bytes } = parse::<T>(path)?;
    if bytes.is_empty() {
        return Ok(false);
    }
    // the complete, non-blank lines, in the order `parse` read their records
    let lines = bytes[..complete].split_inclusive(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    let mut kept: Vec<(K, &[u8])> =
        records.iter().map(|(_, r)| r).zip(lines).filter(|(r, _)| keep(r)).map(|(r, line)| (key(r), line)).collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    let text: Vec<u8> = kept.into_iter().flat_map(|(_, line)| line.iter().copied()).collect();
    if text == bytes {
        return Ok(false);
    }
    super::atomic_write(path, &text)?;
    Ok(true)
}
