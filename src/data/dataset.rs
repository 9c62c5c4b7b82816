//! A dataset as loaded: images as bytes with their shape (C, H, W), integer labels with their class
//! count, and the file they came from; the splits; the fingerprint work directories record.

use anyhow::{bail, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// The shape of one image: channels, height, width. Pixels are stored channel-major (channel, then
/// row, then column), as PyTorch's (C, H, W) tensors and CIFAR-10's batches hold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageShape {
    /// Colour channels (1 for grayscale, 3 for RGB).
    pub channels: usize,
    /// Rows of pixels.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
}

impl ImageShape {
    /// MNIST's images: one channel of 28 x 28 pixels.
    pub const MNIST: ImageShape = ImageShape { channels: 1, height: 28, width: 28 };

    /// The shape `channels` x `height` x `width`.
    pub const fn new(channels: usize, height: usize, width: usize) -> ImageShape {
        ImageShape { channels, height, width }
    }

    /// Pixel values per image (C · H · W).
    pub const fn pixels(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// `[C, H, W]`.
    pub fn dims(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
}

/// `CxHxW`, e.g. `1x28x28`.
impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// As the list `[C, H, W]`.
impl serde::Serialize for ImageShape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.dims().serialize(s)
    }
}

/// Images (one byte per pixel value, channel-major per image) and their labels, with the images' shape,
/// the class count and the file they were read from. A byte b stands for the pixel value b / 255
/// (docs/io.md, "Datasets").
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `len() · shape.pixels()` bytes, image after image.
    pub pixels: Vec<u8>,
    /// One class index per image, below `classes`.
    pub labels: Vec<u8>,
    /// The shape of every image.
    pub shape: ImageShape,
    /// The number of classes: 10 for CIFAR-10, else the largest label of the file plus one. Kept by
    /// [`Dataset::truncated`], so that the first N images have the class count of their file.
    pub classes: usize,
    /// The file the images were read from (the directory for several CIFAR-10 batches); what error
    /// messages name. Empty for a dataset built in memory.
    pub source: PathBuf,
    /// The file the labels were read from, where it is not `source` (MNIST's IDX label file); what
    /// messages about labels name ([`Dataset::labels_file`]).
    pub labels_source: Option<PathBuf>,
}

impl Dataset {
    /// A dataset of `labels.len()` images of `shape` from bytes in memory; `classes` is the largest label
    /// plus one.
    ///
    /// # Errors
    /// `pixels` does not hold `labels.len()` images of `shape`.
    pub fn new(pixels: Vec<u8>, labels: Vec<u8>, shape: ImageShape, source: &Path) -> Result<Dataset> {
        if Some(pixels.len()) != labels.len().checked_mul(shape.pixels()) {
            bail!(
                "{}: {} pixel bytes are not {} images of {shape} ({} pixels each)",
                source.display(),
                pixels.len(),
                labels.len(),
                shape.pixels()
            );
        }
        let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        Ok(Dataset { pixels, labels, shape, classes, source: source.to_path_buf(), labels_source: None })
    }
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.shape.pixels();
        &self.pixels[i * p..(i + 1) * p]
    }
    /// SHA-256 (hex) of the images and labels as loaded, so that a gzipped and a raw copy of the same
    /// files, or the same subset (`--train-size`), give the same value; see [`fingerprint`].
    pub fn sha256(&self) -> String {
        fingerprint(&[self])
    }
    /// The first `n` images.
    pub fn truncated(mut self, n: usize) -> Dataset {
        let n = n.min(self.len());
        // the memory of the images left out is given back (the first 100 of MNIST's training images
        // kept its 47 MB)
        self.pixels.truncate(n * self.shape.pixels());
        self.pixels.shrink_to_fit();
        self.labels.truncate(n);
        self.labels.shrink_to_fit();
        self
    }
    /// The file the labels were read from: [`Dataset::labels_source`], else [`Dataset::source`].
    pub fn labels_file(&self) -> &Path {
        self.labels_source.as_deref().unwrap_or(&self.source)
    }
    /// The largest label, if any image is there.
    pub fn max_label(&self) -> Option<u8> {
        self.labels.iter().copied().max()
    }
    /// How many images each class has (`classes` entries).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.max(self.max_label().map_or(0, |m| m as usize + 1))];
        self.labels.iter().for_each(|&l| counts[l as usize] += 1);
        counts
    }
}

/// SHA-256 (hex) of several datasets as loaded: per dataset its image count (u64, little endian), its
/// image shape when it is not MNIST's 1x28x28 (C, H, W as u64, little endian; left out for MNIST's so
/// that work directories made before datasets carried shapes keep their value), its pixels and its
/// labels. Work directories record it (`data_sha256` in `config.json`) and refuse to resume on other
/// data.
pub fn fingerprint(sets: &[&Dataset]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for d in sets {
        h.update((d.len() as u64).to_le_bytes());
        if d.shape != ImageShape::MNIST {
            d.shape.dims().iter().for_each(|&x| h.update((x as u64).to_le_bytes()));
        }
        h.update(&d.pixels);
        h.update(&d.labels);
    }
    format!("{:x}", h.finalize())
}

/// Which split: the training or the test images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The dataset's training images (MNIST's 60,000 by default).
    Train,
    /// The dataset's test images (MNIST's 10,000 by default).
    Test,
}

impl Split {
    /// `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}
