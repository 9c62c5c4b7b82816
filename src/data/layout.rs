//! What a data path (`--data PATH`, `LOSSCAPE_DATA`) holds and where each split's files are. The path
//! is a directory or a file (README, "Data"; docs/io.md, "Datasets"):
//!
//! - a **directory**: its files' names say which split they hold, their content is read by the reader of
//!   their format: MNIST's four IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//!   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each raw or `.gz`; also `test-…`, and after a
//!   prefix such as EMNIST's `emnist-letters-`), CIFAR-10's binary batches (`data_batch_<k>.bin` the
//!   training split, `test_batch.bin` the test split), or `train.npz` and `test.npz` (arrays `x`, `y`).
//!   A directory holding more than one of these is refused with the list;
//! - a **file**: its format is recognised by content, not by name: a `.npz` archive (`x_train`,
//!   `y_train`, `x_test`, `y_test`: both splits; `x`, `y`: the training split only), one IDX file of a
//!   set named as MNIST's (its directory and prefix name the set), or one CIFAR-10 batch (the training
//!   split only).

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::idx::{read_maybe_gz, IdxError, IMAGES_MAGIC_BYTES, LABELS_MAGIC_BYTES};
use super::npz::Arrays;
use super::{cifar, mnist, npz, Dataset, Split};

/// A dataset file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// IDX image and label files (MNIST, Fashion-MNIST, KMNIST, EMNIST).
    Idx,
    /// CIFAR-10's binary batches.
    Cifar10,
    /// A NumPy `.npz` archive.
    Npz,
}

impl Format {
    /// Words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Idx => "IDX files",
            Format::Cifar10 => "CIFAR-10 binary batches",
            Format::Npz => ".npz",
        }
    }
}

/// The files of one split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitFiles {
    /// An IDX image file and its label file.
    Idx { images: PathBuf, labels: PathBuf },
    /// CIFAR-10 batch files, read in order; `source` is what messages name (the directory, or the one
    /// file).
    Cifar10 { batches: Vec<PathBuf>, source: PathBuf },
    /// Two arrays of a `.npz` archive.
    Npz { file: PathBuf, arrays: Arrays },
}

impl SplitFiles {
    /// The format of the files.
    pub fn format(&self) -> Format {
        match self {
            SplitFiles::Idx { .. } => Format::Idx,
            SplitFiles::Cifar10 { .. } => Format::Cifar10,
            SplitFiles::Npz { .. } => Format::Npz,
        }
    }

    /// The file (or directory) that holds the images: what messages name.
    pub fn source(&self) -> &Path {
        match self {
            SplitFiles::Idx { images, .. } => images,
            SplitFiles::Cifar10 { source, .. } => source,
            SplitFiles::Npz { file, .. } => file,
        }
    }

    /// Reads the split.
    ///
    /// # Errors
    /// A file cannot be read, is not of its format, is truncated or contradicts its header, or holds no
    /// images; the message names the file and the fix.
    pub fn load(&self) -> Result<Dataset> {
        let data = match self {
            SplitFiles::Idx { images, labels } => mnist::load_pair(images, labels)?,
            SplitFiles::Cifar10 { batches, source } => cifar::load(batches, source)?,
            SplitFiles::Npz { file, arrays } => {
                let bytes = std::fs::read(file).map_err(|e| anyhow!("{}: cannot read: {e}", file.display()))?;
                npz::parse(&bytes, file, arrays)?
            }
        };
        if data.is_empty() {
            bail!("{}: holds no images; a split needs at least one", self.source().display());
        }
        Ok(data)
    }
}

/// Loads `split` of the dataset at `path` (a directory or a file; see the module documentation).
///
/// # Errors
/// As [`split_files`] and [`SplitFiles::load`].
pub fn load_split(path: &Path, split: Split) -> Result<Dataset> {
    split_files(path, split)?.load()
}

/// The files of `split` of the dataset at `path`, found without reading them whole.
///
/// # Errors
/// The path does not exist; a directory holds no dataset, or several; a file is of no format losscape
/// reads; the split is not there. Each message names the path and says what to give instead.
pub fn split_files(path: &Path, split: Split) -> Result<SplitFiles> {
    let meta = std::fs::metadata(path).map_err(|e| {
        anyhow!("{}: cannot read it ({e}); --data names a dataset directory or file (README, Datasets)", path.display())
    })?;
    if meta.is_dir() {
        directory(path, split)
    } else {
        file(path, meta.len(), split)
    }
}

/// The IDX set a file name belongs to: its prefix (e.g. `emnist-letters-`, empty for MNIST's names),
/// when the name is `{prefix}{train|t10k|test}-{images|labels}{-|.}idx{3|1}-ubyte[.gz]`.
fn idx_prefix(name: &str) -> Option<String> {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let rest = ["images-idx3-ubyte", "images.idx3-ubyte", "labels-idx1-ubyte", "labels.idx1-ubyte"]
        .iter()
        .find_map(|s| name.strip_suffix(s))?;
    ["train-", "t10k-", "test-"].iter().find_map(|stem| rest.strip_suffix(stem)).map(str::to_string)
}

/// What a directory's names show: IDX sets by prefix, CIFAR-10 batches, `train.npz`/`test.npz`.
struct Listing {
    idx: BTreeSet<String>,
    cifar: bool,
    npz: bool,
}

fn listing(dir: &Path) -> Result<Listing> {
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow!("{}: cannot list the directory: {e}", dir.display()))?;
    let mut l = Listing { idx: BTreeSet::new(), cifar: false, npz: false };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(prefix) = idx_prefix(&name) {
            l.idx.insert(prefix);
        } else if name == "test_batch.bin" || (name.starts_with("data_batch_") && name.ends_with(".bin")) {
            l.cifar = true;
        } else if name == "train.npz" || name == "test.npz" {
            l.npz = true;
        }
    }
    Ok(l)
}

/// What a directory holds, as the message of a refusal lists it.
fn kinds(l: &Listing) -> Vec<String> {
    let mut out: Vec<String> = l
        .idx
        .iter()
        .map(|p| if p.is_empty() { "IDX files named as MNIST's".to_string() } else { format!("IDX files {p}…") })
        .collect();
    if l.cifar {
        out.push("CIFAR-10 batches (data_batch_*.bin, test_batch.bin)".into());
    }
    if l.npz {
        out.push("train.npz/test.npz".into());
    }
    out
}

/// The formats a directory may hold, for messages.
const DIRECTORY_FORMATS: &str = "MNIST's four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, \
     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; each .gz or raw: MNIST, Fashion-MNIST, KMNIST, or EMNIST's \
     files after their prefix), CIFAR-10's binary batches (data_batch_1.bin … data_batch_5.bin, test_batch.bin), or \
     train.npz and test.npz (arrays x, y)";

fn directory(dir: &Path, split: Split) -> Result<SplitFiles> {
    let l = listing(dir)?;
    let found = kinds(&l);
    if found.len() > 1 {
        bail!(
            "{}: holds several datasets: {}; give --data one of them: a directory holding only its files, or (a .npz \
             or an IDX file) the file itself",
            dir.display(),
            found.join("; ")
        );
    }
    if let Some(prefix) = l.idx.first() {
        let (images, labels) = mnist::split_files(dir, prefix, split)?;
        return Ok(SplitFiles::Idx { images, labels });
    }
    if l.cifar {
        let batches = cifar::batches(dir, split)?;
        if batches.is_empty() {
            let name = if split == Split::Train { "data_batch_1.bin … data_batch_5.bin" } else { "test_batch.bin" };
            let words = if split == Split::Train { "training" } else { "test" };
            bail!(
                "{}: CIFAR-10 batches, but no {name} for the {words} split; extract cifar-10-binary.tar.gz whole",
                dir.display()
            );
        }
        return Ok(SplitFiles::Cifar10 { batches, source: dir.to_path_buf() });
    }
    if l.npz {
        let file = dir.join(format!("{}.npz", split.name()));
        if !file.is_file() {
            bail!(
                "{}: no {}.npz; a directory of .npz files holds train.npz and test.npz (arrays x, y)",
                dir.display(),
                split.name()
            );
        }
        // the split is the file: its arrays are x and y
        return Ok(SplitFiles::Npz { file, arrays: Arrays { x: "x".into(), y: "y".into() } });
    }
    bail!(
        "{}: no dataset files; --data names a directory of {DIRECTORY_FORMATS}, or a .npz file (README, Datasets)",
        dir.display()
    )
}

/// The first bytes of a file (its content after un-gzipping for gzip) and its size when it is not
/// gzipped; gzip files are read whole (IDX files are small), so that their size is known too.
fn head(path: &Path, size: u64) -> Result<(Vec<u8>, u64)> {
    let mut start = Vec::new();
    let f = std::fs::File::open(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    f.take(4096).read_to_end(&mut start).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    if start.starts_with(&[0x1f, 0x8b]) {
        let all = read_maybe_gz(path)?;
        let n = all.len() as u64;
        return Ok((all, n));
    }
    Ok((start, size))
}

fn file(path: &Path, size: u64, split: Split) -> Result<SplitFiles> {
    let (bytes, size) = head(path, size)?;
    let first = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes[..]);
    if first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return Err(IdxError::WebPage { path: path.into() }.into());
    }
    if npz::looks_like(&bytes) {
        let all = std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
        let arrays = npz::arrays_for(&npz::array_names(&all, path)?, split, path)?;
        return Ok(SplitFiles::Npz { file: path.to_path_buf(), arrays });
    }
    if bytes.starts_with(b"\x93NUMPY") {
        bail!(
            "{}: one .npy array; a dataset needs images and labels together: np.savez(FILE.npz, x=images, y=labels)",
            path.display()
        );
    }
    if bytes.starts_with(&IMAGES_MAGIC_BYTES) || bytes.starts_with(&LABELS_MAGIC_BYTES) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(prefix) = idx_prefix(&name) else {
            bail!(
                "{}: an IDX file, whose labels and other split losscape finds by MNIST's names \
                 ({{prefix}}train-images-idx3-ubyte, …-labels-idx1-ubyte, t10k-… or test-…, each .gz or raw); rename \
                 the four files so, or give --data their directory",
                path.display()
            );
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let (images, labels) = mnist::split_files(dir, &prefix, split)?;
        return Ok(SplitFiles::Idx { images, labels });
    }
    if bytes.get(257..262) == Some(b"ustar") {
        bail!(
            "{}: a tar archive; extract it (tar xf FILE) and give --data the directory it holds (for CIFAR-10: \
             cifar-10-batches-bin)",
            path.display()
        );
    }
    if size > 0 && size.is_multiple_of(cifar::RECORD as u64) && (bytes[0] as usize) < cifar::CLASSES {
        if split == Split::Test {
            bail!(
                "{}: one CIFAR-10 batch, which serves as the training split; for a test split give --data the \
                 directory cifar-10-batches-bin (data_batch_1.bin … data_batch_5.bin, test_batch.bin)",
                path.display()
            );
        }
        return Ok(SplitFiles::Cifar10 { batches: vec![path.to_path_buf()], source: path.to_path_buf() });
    }
    bail!(
        "{}: not a dataset file losscape reads ({} bytes; it is no .npz archive, IDX file or CIFAR-10 batch, whose \
         3,073-byte records start with a label 0-9). Give --data a .npz (arrays x, y), or a directory of {DIRECTORY_FORMATS}",
        path.display(),
        size
    )
}
