//! Where the data is found at run time, so that a binary copied elsewhere or installed with
//! `cargo install` finds its data. The search order (README, "Data"):
//!
//! 1. `--data PATH` (a directory or a dataset file, [`super::layout`]);
//! 2. the environment variable `LOSSCAPE_DATA` (the same);
//! 3. next to the executable: `mnist/` or `assets/mnist/` in its directory, or `assets/mnist/` two
//!    levels up (a repository's `target/release/losscape`, the repository moved or copied);
//! 4. the source tree the binary was built from (`assets/mnist/` of its `CARGO_MANIFEST_DIR`), if it
//!    still exists.
//!
//! The first is taken as given (a path without a dataset is an error naming it when read); the second
//! must hold a dataset's training split; the last two, MNIST places, count only when they hold all four
//! MNIST files. When none does, the error names every place looked.

use anyhow::{bail, Result};
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the data (a directory or a dataset file) when `--data` is not given.
pub const DATA_VAR: &str = "LOSSCAPE_DATA";

/// Set to 1 to skip the source tree (step 4): the binary then behaves as one whose source tree is gone
/// (the tests of a moved binary use it; nothing else needs it).
pub const NO_SOURCE_TREE_VAR: &str = "LOSSCAPE_DATA_NO_SOURCE_TREE";

/// The four files, by stem and IDX kind, as [`super::mnist`] looks them up.
const FILES: [(&str, &str); 4] =
    [("train-images", "idx3"), ("train-labels", "idx1"), ("t10k-images", "idx3"), ("t10k-labels", "idx1")];

/// Which step of the search order found the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// `--data`.
    Option,
    /// `LOSSCAPE_DATA`.
    Environment,
    /// Beside the executable.
    NextToExecutable,
    /// The source tree the binary was built from.
    SourceTree,
}

impl DataSource {
    /// Words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            DataSource::Option => "--data",
            DataSource::Environment => "LOSSCAPE_DATA",
            DataSource::NextToExecutable => "next to the executable",
            DataSource::SourceTree => "the source tree the binary was built from",
        }
    }
}

/// The data's path and how it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataDir {
    /// The directory holding the dataset's files, or the dataset file (`--data`, `LOSSCAPE_DATA`).
    pub dir: PathBuf,
    /// The step of the search order that found it.
    pub source: DataSource,
}

/// What the search looks at; [`Places::from_environment`] fills it for this process.
#[derive(Clone, Debug, Default)]
pub struct Places {
    /// `--data`.
    pub option: Option<PathBuf>,
    /// The value of `LOSSCAPE_DATA` (empty counts as unset).
    pub env: Option<OsString>,
    /// The running executable.
    pub exe: Option<PathBuf>,
    /// The source tree's data directory, or `None` when skipped.
    pub source_tree: Option<PathBuf>,
}

impl Places {
    /// This process: `option`, `LOSSCAPE_DATA`, `std::env::current_exe()` and the source tree (unless
    /// `LOSSCAPE_DATA_NO_SOURCE_TREE=1`).
    pub fn from_environment(option: Option<&Path>) -> Places {
        let skip_source = std::env::var(NO_SOURCE_TREE_VAR).is_ok_and(|v| v.trim() == "1");
        Places {
            option: option.map(Path::to_path_buf),
            env: std::env::var_os(DATA_VAR).filter(|v| !v.is_empty()),
            exe: std::env::current_exe().ok(),
            source_tree: (!skip_source).then(super::bundled_dir),
        }
    }
}

/// The directories beside an executable that step 3 tries, in order.
pub fn next_to_executable(exe: &Path) -> Vec<PathBuf> {
    let Some(dir) = exe.parent() else { return Vec::new() };
    let mut list = vec![dir.join("mnist"), dir.join("assets").join("mnist")];
    if let Some(repo) = dir.parent().and_then(Path::parent) {
        list.push(repo.join("assets").join("mnist"));
    }
    list
}

/// Whether `dir` holds all four MNIST files (gzipped or raw, either spelling of the names).
pub fn has_mnist(dir: &Path) -> bool {
    FILES.iter().all(|(stem, idx)| super::mnist::find(dir, stem, idx).is_ok())
}

/// Whether `path` holds a dataset's training split ([`super::split_files`]: the files are there; they
/// are not read whole).
pub fn has_dataset(path: &Path) -> bool {
    super::split_files(path, super::Split::Train).is_ok()
}

/// The data path by the search order, for this process.
///
/// # Errors
/// `LOSSCAPE_DATA` names a path without a dataset, or no step found one (the message names every place
/// looked and how to fix it).
pub fn locate(option: Option<&Path>) -> Result<DataDir> {
    locate_in(&Places::from_environment(option))
}

/// The data path by the search order over `places` (see the module documentation).
///
/// # Errors
/// As [`locate`].
pub fn locate_in(places: &Places) -> Result<DataDir> {
    if let Some(dir) = &places.option {
        return Ok(DataDir { dir: dir.clone(), source: DataSource::Option });
    }
    if let Some(value) = &places.env {
        let dir = PathBuf::from(value);
        if !has_dataset(&dir) {
            bail!(
                "{DATA_VAR}={}: not a directory holding the four MNIST files ({}; each .gz or raw), nor another \
                 dataset losscape reads (CIFAR-10's batches, .npz; README, Datasets); point {DATA_VAR} at one (the \
                 repository's assets/mnist/) or unset it",
                dir.display(),
                file_names()
            );
        }
        return Ok(DataDir { dir, source: DataSource::Environment });
    }
    let beside = places.exe.as_deref().map(next_to_executable).unwrap_or_default();
    if let Some(dir) = beside.iter().find(|d| has_mnist(d)) {
        return Ok(DataDir { dir: dir.clone(), source: DataSource::NextToExecutable });
    }
    if let Some(dir) = places.source_tree.as_ref().filter(|d| has_mnist(d)) {
        return Ok(DataDir { dir: dir.clone(), source: DataSource::SourceTree });
    }
    let list = |dirs: &[PathBuf]| dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    let exe = match &places.exe {
        Some(exe) => format!("{} (beside {})", list(&beside), exe.display()),
        None => "(the executable's path is unknown)".to_string(),
    };
    let source = match &places.source_tree {
        Some(d) => d.display().to_string(),
        None => format!("skipped ({NO_SOURCE_TREE_VAR}=1)"),
    };
    bail!(
        "no MNIST data found. Looked, in order:\n  1. --data: not given\n  2. {DATA_VAR}: not set\n  \
         3. next to the executable: {exe}\n  4. the source tree it was built from: {source}\n\
         none holds the four MNIST files ({}; each .gz or raw). Fix: give --data DIR or set {DATA_VAR}=DIR \
         (the repository's assets/mnist/ holds them), or copy that directory beside the executable as mnist/",
        file_names()
    )
}

fn file_names() -> String {
    FILES.iter().map(|(stem, idx)| format!("{stem}-{idx}-ubyte")).collect::<Vec<_>>().join(", ")
}
