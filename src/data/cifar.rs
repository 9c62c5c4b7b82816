//! CIFAR-10's binary batches (`cifar-10-batches-bin/`: `data_batch_1.bin` … `data_batch_5.bin` the
//! training split, `test_batch.bin` the test split): records of one label byte (0-9) and 3,072 pixel
//! bytes, a 3 x 32 x 32 image channel-major (the red plane, then green, then blue, each row-major).
//! The format has no header: a file given alone is recognised by its content (a whole number of records,
//! the first label below 10, [`super::layout`]), and every record's label is checked when it is read.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

use super::idx::read_maybe_gz;
use super::{Dataset, ImageShape, Split};

/// The shape of a CIFAR-10 image.
pub const SHAPE: ImageShape = ImageShape::new(3, 32, 32);
/// Bytes of one record: the label and the image.
pub const RECORD: usize = 1 + SHAPE.pixels();
/// CIFAR-10's classes (airplane … truck).
pub const CLASSES: usize = 10;

/// The images and labels of one batch file's bytes; `path` only names the file in errors.
///
/// # Errors
/// The length is not a whole number of 3,073-byte records (a cut-short download, or CIFAR-100's
/// binary format with two label bytes), or a label is 10 or more.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() {
        bail!("{}: empty; a CIFAR-10 batch holds records of {RECORD} bytes; download it again", path.display());
    }
    if !bytes.len().is_multiple_of(RECORD) {
        let hint = if bytes.len().is_multiple_of(RECORD + 1) {
            "; records of 3,074 bytes are CIFAR-100's binary format (two label bytes), which losscape does not read: \
             convert it to .npz (x, y)"
        } else {
            "; the file is cut short or not a CIFAR-10 batch: download cifar-10-binary.tar.gz again and extract it"
        };
        bail!(
            "{}: {} bytes are not a whole number of CIFAR-10 records ({RECORD} bytes: a label byte and a 3x32x32 \
             image){hint}",
            path.display(),
            bytes.len()
        );
    }
    let n = bytes.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * SHAPE.pixels());
    for (i, record) in bytes.chunks(RECORD).enumerate() {
        if record[0] as usize >= CLASSES {
            bail!(
                "{}: record {i} (byte offset {}) has label {}; CIFAR-10's labels are 0-9: the file is corrupt or not \
                 a CIFAR-10 batch",
                path.display(),
                i * RECORD,
                record[0]
            );
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

/// The number of training batches CIFAR-10 ships: `data_batch_1.bin` … `data_batch_5.bin`.
pub const TRAIN_BATCHES: u64 = 5;

/// The batch files of `split` in `dir`: `data_batch_<k>.bin` in the order of k, or `test_batch.bin`.
/// Empty when there are none.
///
/// # Errors
/// `dir` cannot be listed; some training batches are there but not all of `data_batch_1.bin` …
/// `data_batch_5.bin` (a partial extraction would train on fewer images without a word): the missing
/// files are named, with the fix.
pub fn batches(dir: &Path, split: Split) -> Result<Vec<PathBuf>> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: cannot list: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = match split {
            Split::Train => {
                name.strip_prefix("data_batch_").and_then(|r| r.strip_suffix(".bin")).and_then(|k| k.parse().ok())
            }
            Split::Test => (name == "test_batch.bin").then_some(0),
        };
        if let Some(k) = key.filter(|_| entry.path().is_file()) {
            found.push((k, entry.path()));
        }
    }
    found.sort();
    let missing: Vec<String> = (1..=TRAIN_BATCHES)
        .filter(|k| split == Split::Train && !found.is_empty() && !found.iter().any(|(f, _)| f == k))
        .map(|k| format!("data_batch_{k}.bin"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: CIFAR-10's training split is data_batch_1.bin … data_batch_{TRAIN_BATCHES}.bin, but {} {} missing; \
             extract cifar-10-binary.tar.gz whole (or give --data one batch file to train on it alone)",
            dir.display(),
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        );
    }
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Loads batch files (raw or gzipped) as one dataset; its source is `source` (the directory, or the one
/// file).
pub fn load(files: &[PathBuf], source: &Path) -> Result<Dataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for file in files {
        let (p, l) = parse_batch(&read_maybe_gz(file)?, file)?;
        pixels.extend(p);
        labels.extend(l);
    }
    Ok(Dataset { pixels, labels, shape: SHAPE, classes: CLASSES, source: source.to_path_buf(), labels_source: None })
}
