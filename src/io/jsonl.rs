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
//!
//! Every line written ([`line()`]) ends with a field `"checksum"`: the first 16 hex digits of the
//! SHA-256 of the line's JSON object without it. A line whose checksum does not match its contents (an
//! edited number, damage on disk) is refused like a damaged one, since it would otherwise pass for
//! the result of a computation that never gave it. Lines without the field (written before it
//! existed, or by hand) are read unchecked.

use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
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
        let object = match unseal(line) {
            Some((object, true)) => std::borrow::Cow::Owned(object),
            Some((_, false)) => bail!(
                "{}: line {} was changed after losscape wrote it (its checksum does not match its contents: an \
                 edited value, or damage on disk); the file was left as it is. Delete that line {RECOMPUTE}",
                path.display(),
                i + 1
            ),
            None => std::borrow::Cow::Borrowed(line),
        };
        match serde_json::from_slice::<T>(&object) {
            Ok(r) => records.push((i + 1, r)),
            Err(e) => bail!(
                "{}: line {} is damaged ({e}); the file was left as it is. Repair or delete that line {RECOMPUTE}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(Parsed { records, complete, bytes })
}

/// The end of the messages that refuse a line: what deleting it (or the file) does.
const RECOMPUTE: &str = "(its unit of work is then recomputed by a resumed run), or delete the file to recompute all";

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

    /// Appends `record` as one JSON line ([`line()`]; the file is created when missing) in a single write,
    /// then syncs.
    ///
    /// Errors: the file cannot be opened or written (e.g. a full disk).
    pub fn append<T: Serialize>(&self, record: &T) -> Result<()> {
        let line = line(record)?;
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

/// What starts the field that ends every written line: `,"checksum":"` and 16 hex digits, then `"}`.
const CHECKSUM_FIELD: &[u8] = b",\"checksum\":\"";
/// The bytes from the checksum field's start to the line's end (newline excluded).
const CHECKSUM_TAIL: usize = CHECKSUM_FIELD.len() + 16 + 2;

/// `record` as one line of a JSON-lines file, newline included: its JSON object, closed by a field
/// `checksum` ([`seal`]).
///
/// Errors: `record` cannot be serialised.
pub fn line<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    let mut line = seal(&serde_json::to_vec(record)?);
    line.push(b'\n');
    Ok(line)
}

/// The JSON object `object` (`{…}`, not empty) with a last field `"checksum"`: the first 16 hex digits
/// of the SHA-256 of `object` as given. Anything else is returned as it is.
pub fn seal(object: &[u8]) -> Vec<u8> {
    let mut out = object.to_vec();
    if object.len() > 2 && object.starts_with(b"{") && object.ends_with(b"}") {
        out.pop();
        out.extend_from_slice(CHECKSUM_FIELD);
        out.extend_from_slice(checksum(object).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out
}

/// A line's JSON object without its checksum field, and whether the checksum matches it; `None` for a
/// line without the field (trailing whitespace is ignored).
fn unseal(line: &[u8]) -> Option<(Vec<u8>, bool)> {
    let line = line.trim_ascii_end();
    let start = line.len().checked_sub(CHECKSUM_TAIL)?;
    let (head, tail) = line.split_at(start);
    let digits = tail.strip_prefix(CHECKSUM_FIELD)?.strip_suffix(b"\"}")?;
    if !digits.iter().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut object = head.to_vec();
    object.push(b'}');
    let matches = checksum(&object).as_bytes() == digits;
    Some((object, matches))
}

/// The first 16 hex digits of the SHA-256 of `bytes`.
fn checksum(bytes: &[u8]) -> String {
    let mut hex = format!("{:x}", Sha256::digest(bytes));
    hex.truncate(16);
    hex
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_object_opens_to_itself_and_any_changed_byte_is_found() {
        let object = br#"{"index":3,"height":0.25,"set_file":"a,\"checksum\":\"b"}"#;
        let sealed = seal(object);
        assert!(sealed.starts_with(&object[..object.len() - 1]) && sealed.len() == object.len() - 1 + CHECKSUM_TAIL);
        assert_eq!(unseal(&sealed), Some((object.to_vec(), true)));
        let text = String::from_utf8(sealed.clone()).unwrap();
        let serde_reads: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_reads["height"], 0.25);
        let edited = text.replacen("0.25", "0.24", 1);
        assert_eq!(unseal(edited.as_bytes()).map(|(_, ok)| ok), Some(false), "an edited number");
        let digit = text.len() - 3;
        let mut bad = sealed.clone();
        bad[digit] = if bad[digit] == b'0' { b'1' } else { b'0' };
        assert_eq!(unseal(&bad).map(|(_, ok)| ok), Some(false), "a changed checksum");
        assert_eq!(unseal(object), None, "no checksum: read unchecked");
        assert_eq!(seal(b"{}"), b"{}".to_vec(), "an empty object is left as it is");
    }
}
