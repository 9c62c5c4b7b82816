//! MNIST splits: the official 60,000 training and 10,000 test images (docs/networks.md §4).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

use super::idx::{parse_images, parse_labels, read_maybe_gz, IdxError};

pub const PIXELS: usize = 784;

/// Images (one byte per pixel, row-major 28x28) and their labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }
    /// SHA-256 (hex) of the images and labels as loaded, so that a gzipped and a raw copy of the same
    /// files, or the same subset (`--train-size`), give the same value; see [`fingerprint`].
    pub fn sha256(&self) -> String {
        fingerprint(&[self])
    }
    /// The first `n` images.
    pub fn truncated(mut self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.pixels.truncate(n * PIXELS);
        self.labels.truncate(n);
        self
    }
}

/// SHA-256 (hex) of several datasets as loaded: per dataset its image count (u64, little endian), its
/// pixels and its labels. Work directories record it (`data_sha256` in `config.json`) and refuse to
/// resume on other data.
pub fn fingerprint(sets: &[&Dataset]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for d in sets {
        h.update((d.len() as u64).to_le_bytes());
        h.update(&d.pixels);
        h.update(&d.labels);
    }
    format!("{:x}", h.finalize())
}

/// Which official split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    fn stem(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// The directory of the MNIST files bundled with losscape, in the source tree the binary was built
/// from (step 4 of the search order, [`super::locate`]; it may not exist where the binary runs).
pub fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join("mnist")
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

/// Loads one split from an IDX directory (gzipped or raw files, either spelling of the names).
pub fn load_split(dir: &Path, split: Split) -> Result<Dataset> {
    let images_path = find(dir, &format!("{}-images", split.stem()), "idx3")?;
    let labels_path = find(dir, &format!("{}-labels", split.stem()), "idx1")?;
    load_pair(&images_path, &labels_path).map_err(Into::into)
}

/// Loads and cross-checks an image file and its label file.
pub fn load_pair(images_path: &Path, labels_path: &Path) -> Result<Dataset, IdxError> {
    let (n_images, pixels) = parse_images(&read_maybe_gz(images_path)?, images_path)?;
    let labels = parse_labels(&read_maybe_gz(labels_path)?, labels_path)?;
    if labels.len() != n_images {
        return Err(IdxError::CountMismatch {
            images: images_path.into(),
            n_images,
            labels: labels_path.into(),
            n_labels: labels.len(),
        });
    }
    Ok(Dataset { pixels, labels })
}
