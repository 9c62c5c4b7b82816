//! The layout of a `reproduce` work directory, used by the stages that write it (`pipeline`) and the
//! report that reads it, so that both agree by construction:
//!
//! ```text
//! DIR/config.json                          the ReproduceConfig (refused if a later run asks for another)
//! DIR/<model>/<opt>/                       `train` outputs of optimizer <opt> (lbfgs, sgd):
//!     <model>-<opt>-summary.json           per-run losses, kept runs
//!     <model>-<opt>-{train,test}.safetensors   the train-loss and test-loss snapshot sets
//! DIR/<model>/paths-{train,test}[/shard-i-of-n]/   path sweeps on each landscape
//! DIR/<model>/sharpness/<opt>-train.{csv,json}     Hessian top eigenvalue and trace of each minimum
//! DIR/<model>/surface-<opt>/               the 2-D loss surface through a representative path
//! DIR/report/                              index.html, figures, CSV
//! ```

use std::path::{Path, PathBuf};

use super::optimizer::Optimizer;
use crate::model::Arch;

/// The two optimizers the study compares, in the order the report uses: L-BFGS, SGD.
pub const OPTIMIZERS: [Optimizer; 2] = [Optimizer::Lbfgs, Optimizer::Sgd];

/// The four solution sets of a network (optimizer, snapshot kind), in the paper's order.
pub const SETS: [(Optimizer, &str); 4] =
    [(Optimizer::Lbfgs, "train"), (Optimizer::Lbfgs, "test"), (Optimizer::Sgd, "train"), (Optimizer::Sgd, "test")];

/// The sets whose paths are found on each landscape, in sweep order: all four on the training
/// landscape (Fig. 4), the two test snapshots on the test landscape (Fig. S2).
pub fn landscape_sets(landscape: &str) -> &'static [(Optimizer, &'static str)] {
    if landscape == "train" {
        &SETS
    } else {
        &[(Optimizer::Lbfgs, "test"), (Optimizer::Sgd, "test")]
    }
}

/// The file name `train` gives the `kind` (train/test) snapshot set of optimizer `opt`.
pub fn set_name(arch: Arch, opt: Optimizer, kind: &str) -> String {
    format!("{}-{opt}-{kind}.safetensors", arch.id())
}

/// The file name `train` gives its summary.
pub fn summary_name(arch: Arch, opt: Optimizer) -> String {
    format!("{}-{opt}-summary.json", arch.id())
}

/// The directory of `reproduce`'s train stage for `arch` and optimizer `opt` (a `train` output
/// directory).
pub fn train_dir(dir: &Path, arch: Arch, opt: Optimizer) -> PathBuf {
    dir.join(arch.id()).join(opt.id())
}

/// Where `reproduce`'s train stage keeps the `kind` snapshot set of `arch` and optimizer `opt`.
pub fn set_file(dir: &Path, arch: Arch, opt: Optimizer, kind: &str) -> PathBuf {
    train_dir(dir, arch, opt).join(set_name(arch, opt, kind))
}

/// Where `reproduce`'s train stage keeps the training summary of `arch` and optimizer `opt`.
pub fn summary_file(dir: &Path, arch: Arch, opt: Optimizer) -> PathBuf {
    train_dir(dir, arch, opt).join(summary_name(arch, opt))
}

/// The path sweep of `arch` on `landscape` (train/test); shards write to subdirectories of it.
pub fn paths_dir(dir: &Path, arch: Arch, landscape: &str) -> PathBuf {
    dir.join(arch.id()).join(format!("paths-{landscape}"))
}

/// Shard `index` of `count`'s subdirectory of a sweep directory (the directory itself for one shard).
pub fn shard_dir(base: &Path, index: usize, count: usize) -> PathBuf {
    if count > 1 {
        base.join(format!("shard-{index}-of-{count}"))
    } else {
        base.to_path_buf()
    }
}

/// The Hessian spectra (`hessian.csv` columns) of the train snapshots of optimizer `opt`; the JSON
/// record has the same stem.
pub fn sharpness_file(dir: &Path, arch: Arch, opt: Optimizer) -> PathBuf {
    dir.join(arch.id()).join("sharpness").join(format!("{opt}-train.csv"))
}

/// The surface directory (`surface.csv`, `surface.json`, `surface.png`, `plane.safetensors`) through
/// the representative path of the train snapshots of optimizer `opt`.
pub fn surface_dir(dir: &Path, arch: Arch, opt: Optimizer) -> PathBuf {
    dir.join(arch.id()).join(format!("surface-{opt}"))
}

/// The report directory.
pub fn report_dir(dir: &Path) -> PathBuf {
    dir.join("report")
}
