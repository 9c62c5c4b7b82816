//! Directories of IDX files named as MNIST's: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (or `test-…`), each raw or `.gz`, optionally
//! after a prefix (EMNIST's `emnist-letters-`). MNIST, Fashion-MNIST and KMNIST ship under exactly
//! MNIST's names, so `--data DIR` reads any of them. The official MNIST splits are 60,000 training and
//! 10,000 test images (docs/networks.md §4).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

use super::idx::{parse_images, parse_labels, read_maybe_gz, IdxError};
use super::{Dataset, Split};

/// The directory of the MNIST files bundled with losscape, in the source tree the binary was built
/// from (step 4 of the search order, [`super::locate()`]; it may not exist where the binary runs).
pub fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join("mnist")
}

/// The stems a split's files may have after the prefix: MNIST's `train` and `t10k`, and `test`
/// (EMNIST's name for its test files).
pub(super) fn stems(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &["train"],
        Split::Test => &["t10k", "test"],
    }
}

/// The file of `stem` (e.g. `train-images`, `idx3`) in `dir`: the official `train-images-idx3-ubyte`
/// or the `train-images.idx3-ubyte` some archive tools produce, each with or without `.gz`.
pub(super) fn find(dir: &Path, stem: &str, idx: &str) -> Result<PathBuf> {
    let names = [format!("{stem}-{idx}-ubyte"), format!("{stem}.{idx}-ubyte")];
    for name in &names {
        for candidate in [dir.join(format!("{name}.gz")), dir.join(name)] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let [a, b] = &names;
    bail!(
        "{}: no {a}.gz, {a}, {b}.gz or {b}; --data must name a directory with the four MNIST IDX files",
        dir.display()
    )
}

/// The image and label files of `split` in `dir`, after `prefix` (empty for MNIST's own names).
pub fn split_files(dir: &Path, prefix: &str, split: Split) -> Result<(PathBuf, PathBuf)> {
    let stems = stems(split);
    // the first stem that has an image file decides (t10k before test); errors name MNIST's own stem
    let stem = stems.iter().find(|s| find(dir, &format!("{prefix}{s}-images"), "idx3").is_ok()).unwrap_or(&stems[0]);
    let images = find(dir, &format!("{prefix}{stem}-images"), "idx3")?;
    let labels = find(dir, &format!("{prefix}{stem}-labels"), "idx1")?;
    Ok((images, labels))
}

/// Loads one split from an IDX directory with MNIST's file names (gzipped or raw files, either
/// spelling of the names).
pub fn load_split(dir: &Path, split: Split) -> Result<Dataset> {
    let (images, labels) = split_files(dir, "", split)?;
    load_pair(&images, &labels).map_err(Into::into)
}

/// Loads and cross-checks an image file and its label file; the dataset's source is the image file,
/// its labels' source the label file.
pub fn load_pair(images_path: &Path, labels_path: &Path) -> Result<Dataset, IdxError> {
    let images = parse_images(read_maybe_gz(images_path)?, images_path)?;
    let labels = parse_labels(&read_maybe_gz(labels_path)?, labels_path)?;
    if labels.len() != images.count {
        return Err(IdxError::CountMismatch {
            images: images_path.into(),
            n_images: images.count,
            labels: labels_path.into(),
            n_labels: labels.len(),
        });
    }
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    Ok(Dataset {
        pixels: images.pixels,
        labels,
        shape: images.shape,
        classes,
        source: images_path.into(),
        labels_source: Some(labels_path.into()),
    })
}
