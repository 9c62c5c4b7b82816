//! `reproduce --images N1,N2,…`: the same study at several training-set sizes, each in its own work
//! directory `DIR/images-N` (every stage resumes and shards as a single study does), then the regime
//! map in `DIR/regime` ([`crate::report::regime`]). The first N images of the training split are used
//! at each size, so a smaller study's images are a subset of a larger one's.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::{reproduce, ReproduceConfig, Stage};
use crate::backend::Device;
use crate::data::Dataset;
use crate::io::shard::Shard;
use crate::report::regime::{write_map, Study};

/// The fewest training images a study of the map may have: every SGD epoch needs a full batch of 64.
pub const MIN_IMAGES: usize = 64;

/// The sizes a regime preset maps when `--images` is not given (None for the other presets):
/// `regime`, 0.006 to 0.047 FCP images per parameter, for 2 CPU cores (`docs/findings.md`);
/// `regime-gpu`, 0.047 to the paper's 1.42, for a GPU server (`losscape plan --preset regime-gpu`).
pub fn default_sizes(preset: &str) -> Option<Vec<usize>> {
    match preset {
        "regime" => Some(vec![250, 500, 1000, 2000]),
        "regime-gpu" => Some(vec![2000, 6000, 20_000, 60_000]),
        _ => None,
    }
}

/// What the top of a map's directory holds: the settings every size shares (the preset as named, with
/// its own `train_images`, and the fingerprint of all the images the sizes are cut from). The sizes
/// are not part of it, so a later invocation may add sizes to the map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RegimeConfig {
    regime: ReproduceConfig,
}

impl RegimeConfig {
    fn path_budget(&mut self) -> Option<&mut usize> {
        self.regime.path_budget()
    }
}

/// The work directory of the study on `images` training images.
pub fn study_dir(dir: &Path, images: usize) -> PathBuf {
    dir.join(format!("images-{images}"))
}

/// The sizes sorted and deduplicated, each checked against the training images available.
///
/// Errors: a size below [`MIN_IMAGES`] or above `available`.
pub fn check_sizes(sizes: &[usize], available: usize) -> Result<Vec<usize>> {
    let mut s = sizes.to_vec();
    s.sort_unstable();
    s.dedup();
    if let Some(&bad) = s.iter().find(|&&n| !(MIN_IMAGES..=available).contains(&n)) {
        bail!(
            "--images {bad}: each size must be between {MIN_IMAGES} (one SGD batch) and the {available} training \
             images loaded; e.g. --images 250,500,1000,2000"
        );
    }
    Ok(s)
}

/// Runs `stage` of the study at each size in `sizes` (checked by [`check_sizes`]), then writes the map
/// when the stage reports. `base` is the single-study configuration of the invocation and `data` the
/// training split (uncut) and the test split (cut to the preset's size).
///
/// Errors: `dir` holds a single study or a map made with other settings; any size's study fails (the
/// sizes before it keep their results).
pub fn reproduce_regime(
    dir: &Path,
    base: &ReproduceConfig,
    sizes: &[usize],
    (stage, shard): (Stage, Shard),
    device: &Device,
    (train, test): (Dataset, Dataset),
) -> Result<()> {
    let top = RegimeConfig { regime: base.clone() };
    // a larger path budget than the map's resumes it (each study and sweep keeps its converged pairs)
    crate::io::config::prepare_dir_raising(dir, &top, RegimeConfig::path_budget, |_| Ok(()))?;
    let mut studies = Vec::new();
    for &n in sizes {
        let cut = train.clone().truncated(n);
        let mut cfg = base.clone();
        cfg.preset.train_images = Some(n);
        cfg.data_sha256 = Some(crate::data::fingerprint(&[&cut, &test]));
        let sub = study_dir(dir, n);
        eprintln!("[regime] {n} training images: {}", sub.display());
        reproduce(&sub, &cfg, stage, shard, device, (cut, test.clone()))?;
        studies.push(Study { images: n, dir: sub });
    }
    if stage == Stage::Report || (stage == Stage::All && shard.count == 1) {
        let out = dir.join("regime");
        // a map killed while written leaves temporary files: removed, as by the studies' report stage
        crate::io::remove_partials(&out)?;
        write_map(&out, &studies, &base.models)?;
        eprintln!("[regime] wrote {}", out.join("index.html").display());
    }
    Ok(())
}
