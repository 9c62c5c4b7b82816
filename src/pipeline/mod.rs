//! `reproduce`: the whole study in one work directory — for each network the four solution sets
//! (SGD and L-BFGS, train and test snapshots), paths on the training and test landscapes, and the
//! report. Every stage resumes; training units and path pairs shard over GPUs or cluster nodes.

mod preset;
mod probes;
pub mod regime;

pub use preset::{Preset, PRESETS};
pub use probes::{representative, surface_axes, ProbeSettings};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backend::Device;
use crate::data::{Dataset, DeviceImages, Split};
use crate::io::read_weights;
use crate::io::shard::{SetInfo, Shard};
use crate::io::workdir::{landscape_sets, paths_dir, set_file, shard_dir, summary_file, surface_dir, train_dir};
use crate::model::{init_vector, Arch, Network};
use crate::ops::Act;
use crate::path::sweep::{
    all_jobs, run_sweep_with, Job, PairRecord, SweepConfig, SweepInputs, SweepOptions, SweepProgress,
};
use crate::path::Curve;
use crate::train::{
    train, CheckpointEvery, LbfgsConfig, MiniBatchConfig, Optimizer, RunRecord, TrainConfig, TrainInputs, TrainProgress,
};

/// What a work directory holds: refused if a later invocation asks for something else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReproduceConfig {
    pub preset: Preset,
    pub models: Vec<Arch>,
    pub activation: Act,
    /// Weight-match every path pair before optimising it (`docs/alignment.md`).
    #[serde(default)]
    pub align: bool,
    /// SHA-256 of the training and test images of the study (the units' own configurations leave
    /// it out: this one covers the directory), as loaded ([`crate::data::fingerprint`]): a resume on other data
    /// is refused. Absent in directories written before it was recorded (then not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

impl ReproduceConfig {
    /// The paths' iteration budget, where a resume may raise it: when the preset stops each path at
    /// convergence (the sweeps then keep their converged pairs and find the others again,
    /// `crate::path::sweep`), e.g. a map made by an older `regime` preset with a smaller budget.
    pub(crate) fn path_budget(&mut self) -> Option<&mut usize> {
        self.preset.until_converged.then_some(&mut self.preset.path.iterations)
    }
}

/// Before a study resumes under a larger path budget: removes what is computed from the paths (the
/// report, and the probes' surfaces through a representative path, which may change with the paths),
/// so that they are made again from the paths of the new budget; the sweeps themselves keep their
/// converged pairs when they resume. The Hessian spectra, of the minima alone, stay.
///
/// Errors: a directory that cannot be removed.
fn forget_path_results(dir: &Path, cfg: &ReproduceConfig) -> Result<()> {
    let surfaces = cfg.models.iter().flat_map(|&a| crate::io::workdir::OPTIMIZERS.map(|o| surface_dir(dir, a, o)));
    for d in std::iter::once(crate::io::workdir::report_dir(dir)).chain(surfaces) {
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("{}: cannot remove", d.display()))?;
        }
    }
    Ok(())
}

/// Which part of the pipeline to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    All,
    Train,
    Paths,
    /// Hessian sharpness and path surfaces (the report stage also completes any that are missing).
    Probes,
    Report,
}

struct Quiet;

impl TrainProgress for Quiet {
    fn start(&mut self, _: usize, _: usize) {}
    fn step(&mut self, _: usize, _: &[RunRecord]) {}
}

impl SweepProgress for Quiet {
    fn start(&mut self, _: usize, _: usize) {}
    fn iteration(&mut self, _: &Job, _: usize, _: f64) {}
    fn finished(&mut self, _: &PairRecord) {}
}

/// Overall progress: stage, units done, ETA from the mean unit time.
struct Overall {
    started: Instant,
    done: usize,
    total: usize,
}

impl Overall {
    fn unit(&mut self, stage: &str, what: &str) {
        self.done += 1;
        let per = self.started.elapsed().as_secs_f64() / self.done as f64;
        let eta = per * (self.total - self.done) as f64;
        eprintln!(
            "[{stage} {}/{}] {what} (elapsed {:.0} s, ETA {:.0} s)",
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64(),
            eta
        );
    }
}

/// Refuses to report on unfinished sweeps: the report reads whatever pairs the shard directories hold,
/// so a shard that never ran (a task dropped from a job array, a failed task whose successors ran
/// anyway) would otherwise leave out its pairs without a word.
fn check_sweeps_complete(dir: &Path, cfg: &ReproduceConfig) -> Result<()> {
    for &arch in &cfg.models {
        for landscape in ["train", "test"] {
            let base = paths_dir(dir, arch, landscape);
            // every shard's directory records the whole sweep (all shards' pairs), the shard aside
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
                .map(|e| e.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
                .unwrap_or_default();
            dirs.sort();
            dirs.insert(0, base.clone());
            let Some(config) = dirs.iter().find(|d| d.join("config.json").exists()) else {
                bail!("{}: no paths yet: run the paths stage (of every shard) first", base.display());
            };
            let sweep: SweepConfig = crate::io::config::read_config(config)?;
            let expected = all_jobs(&sweep)?.len();
            let done: std::collections::BTreeSet<usize> =
                crate::path::sweep::read_sweep_records(&base)?.iter().map(|r| r.index).collect();
            let missing: Vec<usize> = (0..expected).filter(|i| !done.contains(i)).collect();
            if !missing.is_empty() {
                bail!(
                    "{}: {} of {expected} pairs are missing (pair indices {}{}): run `--stage paths` on every shard \
                     (resubmit the failed or missing ones; finished pairs are skipped), then the report",
                    base.display(),
                    missing.len(),
                    missing.iter().take(8).map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                    if missing.len() > 8 { ", ..." } else { "" }
                );
            }
        }
    }
    Ok(())
}

/// A work directory's study with its data on the device: what every stage reads.
struct Study<'a> {
    dir: &'a Path,
    cfg: &'a ReproduceConfig,
    device: &'a Device,
    train_set: Dataset,
    train_images: DeviceImages,
    test_images: DeviceImages,
}

impl Study<'_> {
    /// Trains the shard's (network, optimizer) units (unit i belongs to shard i mod n); a unit whose
    /// summary exists is done.
    fn train_stage(&self, shard: Shard) -> Result<()> {
        let (dir, cfg, p) = (self.dir, self.cfg, &self.cfg.preset);
        let units: Vec<(Arch, Optimizer)> =
            cfg.models.iter().flat_map(|&a| [Optimizer::Lbfgs, Optimizer::Sgd].map(|o| (a, o))).collect();
        let mine: Vec<&(Arch, Optimizer)> =
            units.iter().enumerate().filter(|(i, _)| i % shard.count == shard.index).map(|(_, u)| u).collect();
        let mut overall = Overall { started: Instant::now(), done: 0, total: mine.len() };
        for &&(arch, opt) in &mine {
            if summary_file(dir, arch, opt).exists() {
                overall.unit("train", &format!("{} {}: done earlier", arch.title(), opt.id()));
                continue;
            }
            let seeds: Vec<u64> = (0..p.runs as u64).collect();
            let start: Vec<f32> = seeds.iter().flat_map(|&s| init_vector(arch, s)).collect();
            let net = Network { arch, act: cfg.activation };
            let base = TrainConfig::new(net, opt, p.runs, self.train_images.count, self.test_images.count);
            let tc = TrainConfig {
                keep: p.keep,
                minibatch: MiniBatchConfig { epochs: p.epochs, lr: p.lr, ..base.minibatch },
                lbfgs: LbfgsConfig { iterations: p.iterations, ..base.lbfgs },
                ..base
            };
            let inputs = TrainInputs {
                dir: &train_dir(dir, arch, opt),
                cfg: &tc,
                start: &start,
                seeds: Some(seeds),
                train: &self.train_images,
                test: &self.test_images,
                checkpoint_every: CheckpointEvery::DEFAULT,
            };
            let s = train(inputs, &mut Quiet)?;
            overall.unit(
                "train",
                &format!(
                    "{} {}: kept {}, mean train loss {:.3e}, mean test loss {:.3e}",
                    arch.title(),
                    opt.id(),
                    s.kept,
                    s.mean_train_loss,
                    s.mean_test_loss
                ),
            );
        }
        Ok(())
    }

    /// The shard's pairs of every network's sweeps on both landscapes.
    fn paths_stage(&self, shard: Shard) -> Result<()> {
        let (dir, cfg, p) = (self.dir, self.cfg, &self.cfg.preset);
        let mut overall = Overall { started: Instant::now(), done: 0, total: cfg.models.len() * 2 };
        for &arch in &cfg.models {
            for (landscape, images) in [("train", &self.train_images), ("test", &self.test_images)] {
                let files: Vec<_> = landscape_sets(landscape).iter().map(|&(o, k)| set_file(dir, arch, o, k)).collect();
                if let Some(missing) = files.iter().find(|f| !f.exists()) {
                    bail!("{} is missing: run the train stage (of every shard) first", missing.display());
                }
                let stacks = files.iter().map(|f| read_weights(f, arch)).collect::<Result<Vec<_>>>()?;
                let sets =
                    files.iter().zip(&stacks).map(|(f, s)| SetInfo::of(f, s, dir)).collect::<Result<Vec<_>>>()?;
                let sweep = SweepConfig {
                    model: arch,
                    activation: cfg.activation,
                    sets,
                    landscape: if landscape == "train" { Split::Train } else { Split::Test },
                    images: images.count,
                    pairs: p.pairs.min(p.keep * (p.keep - 1) / 2),
                    seed: 0,
                    settings: p.path,
                    save_paths: false,
                    shard,
                    data_sha256: None, // the directory's ReproduceConfig records the data
                };
                let out = shard_dir(&paths_dir(dir, arch, landscape), shard.index, shard.count);
                let inputs = SweepInputs { dir: &out, cfg: &sweep, stacks: &stacks, images };
                let n = run_sweep_with(inputs, self.sweep_options(), &mut Quiet)?;
                overall.unit("paths", &format!("{} {landscape} landscape: {n} pair(s) computed", arch.title()));
            }
        }
        Ok(())
    }

    fn sweep_options(&self) -> SweepOptions {
        SweepOptions { curve: Curve::Fourier, align: self.cfg.align, until_converged: self.cfg.preset.until_converged }
    }

    /// The probes of the shard's networks (network i belongs to shard i mod n), after checking that
    /// every path is there.
    fn probes_stage(&self, settings: &ProbeSettings, shard: Shard) -> Result<()> {
        check_sweeps_complete(self.dir, self.cfg)?;
        let mine: Vec<Arch> = self
            .cfg
            .models
            .iter()
            .enumerate()
            .filter(|(i, _)| i % shard.count == shard.index)
            .map(|(_, &a)| a)
            .collect();
        let subset = match settings.spectrum_images {
            Some(n) if n < self.train_images.count => {
                Some(DeviceImages::upload(self.device, &self.train_set.clone().truncated(n))?)
            }
            _ => None,
        };
        let mut overall = Overall { started: Instant::now(), done: 0, total: mine.len() };
        for arch in mine {
            let inputs = probes::ProbeInputs {
                dir: self.dir,
                arch,
                net: Network { arch, act: self.cfg.activation },
                settings,
                path: self.cfg.preset.path,
                options: self.sweep_options(),
                train_images: &self.train_images,
                spectrum_images: subset.as_ref().unwrap_or(&self.train_images),
                device: self.device,
            };
            let done = probes::probe_network(&inputs)?;
            let what = if done.is_empty() { "done earlier".to_string() } else { done.join(", ") };
            overall.unit("probes", &format!("{}: {what}", arch.title()));
        }
        Ok(())
    }

    /// The report, with the configuration paragraph at its top. A report stage killed before it wrote
    /// `index.html` (its last file) runs again, and first removes the temporary files a kill leaves
    /// (`io::remove_partials`: this stage, under the study's lock, is the report directory's only writer),
    /// so the directory ends with the files of an uninterrupted run.
    fn report_stage(&self, report: &Path) -> Result<()> {
        check_sweeps_complete(self.dir, self.cfg)?;
        crate::io::remove_partials(report)?;
        let context = configuration(self.dir)?
            .with_context(|| format!("{}: holds no study configuration", self.dir.display()))?;
        crate::report::analyze(self.dir, report, &context)?;
        eprintln!("[report] wrote {}", report.join("index.html").display());
        Ok(())
    }
}

/// The configuration paragraph at the top of a study's report, from the study directory `dir`'s
/// `config.json` alone (so that `analyze` of the directory writes the report `reproduce` wrote): the
/// preset and its scale, the networks, the builds and devices that wrote the results, the path budget,
/// and the configuration itself. `None` when `dir` holds no study configuration (no `config.json`, or
/// one of another command: a directory only laid out like a study).
///
/// Errors: a study's `config.json` that cannot be read or parsed.
pub fn configuration(dir: &Path) -> Result<Option<String>> {
    let Some(cfg) = study_config(dir)? else { return Ok(None) };
    let builds = crate::io::config::saved_builds(dir)?;
    let p = &cfg.preset;
    let mixed = match builds.len() > 1 {
        true => {
            " Several builds or devices wrote the results: they may differ in their last bits from one build's run."
        }
        false => "",
    };
    Ok(Some(format!(
        "<h2>Configuration</h2><p>Preset <b>{}</b>: {}; networks: {}{}. Written by {}.{mixed}</p>{}<pre>{}</pre>",
        p.name,
        p.describe(),
        cfg.models.iter().map(|a| a.title()).collect::<Vec<_>>().join(", "),
        if p.name == "paper" {
            ""
        } else {
            " — a reduced scale: the claims are judged on fewer runs, images and pairs than the paper's"
        },
        builds.join("; "),
        fixed_budget_note(p),
        serde_json::to_string_pretty(&cfg)?
    )))
}

/// The configuration of the study in `dir`; `None` when `dir` holds none (no `config.json`, or one of
/// another command).
///
/// Errors: a study's `config.json` that cannot be parsed.
fn study_config(dir: &Path) -> Result<Option<ReproduceConfig>> {
    let is_study = std::fs::read_to_string(dir.join(crate::io::config::CONFIG))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|v| v.get("preset").is_some() && v.get("models").is_some());
    Ok(if is_study { Some(crate::io::config::read_config(dir)?) } else { None })
}

/// What the study in `dir` lacks of its path sweeps (a sweep not run, pairs missing), in the words
/// of the report stage's refusal; `None` when they are complete or `dir` holds no study. `analyze`
/// says it and reports what is there (a look at a study still running).
///
/// Errors: as [`configuration`].
pub fn unfinished_sweeps(dir: &Path) -> Result<Option<String>> {
    let Some(cfg) = study_config(dir)? else { return Ok(None) };
    Ok(check_sweeps_complete(dir, &cfg).err().map(|e| format!("{e:#}")))
}

/// What a fixed path budget means for the report, in plain words (empty when paths stop at
/// convergence).
fn fixed_budget_note(p: &Preset) -> String {
    if p.until_converged {
        return String::new();
    }
    format!(
        "<p class=\"budget\"><b>The paths were not run to convergence.</b> Each was optimised for a fixed {} Adam \
         iterations, so a height below is the height after that budget, an upper bound on the path's own height \
         (the convergence figures show them still falling), and the height claims are judged \
         <i>not converged</i> rather than holds or fails. To judge them, run the paths to convergence: \
         <code>losscape reproduce --preset regime</code> for FCP at several sizes, or <code>losscape paths \
         --until-converged</code> on this directory's sets.</p>",
        p.path.iterations
    )
}

/// Runs the chosen stages for one shard.
pub fn reproduce(
    dir: &Path,
    cfg: &ReproduceConfig,
    stage: Stage,
    shard: Shard,
    device: &Device,
    data: (Dataset, Dataset),
) -> Result<()> {
    // shards run together on one directory, each under its own lock; every unit they write (a training
    // run, a sweep shard, a surface) is locked again by the function that writes it
    let _lock = crate::io::lock::DirLock::acquire(dir, &crate::io::lock::shard_lock(shard.index, shard.count))?;
    crate::io::config::prepare_dir_raising(dir, cfg, ReproduceConfig::path_budget, |_| forget_path_results(dir, cfg))?;
    let (train_set, test_set) = data;
    let study = Study {
        dir,
        cfg,
        device,
        train_images: DeviceImages::upload(device, &train_set)?,
        test_images: DeviceImages::upload(device, &test_set)?,
        train_set,
    };
    if matches!(stage, Stage::All | Stage::Train) {
        study.train_stage(shard)?;
    }
    if matches!(stage, Stage::All | Stage::Paths) {
        study.paths_stage(shard)?;
    }
    let report = crate::io::workdir::report_dir(dir);
    let reported = report.join("index.html").exists();
    // the probes need every path: sharded `--stage all` runs leave them to the report stage
    let probes = match stage {
        Stage::Probes => Some(shard),
        Stage::All if shard.count == 1 => Some(shard),
        Stage::Report => Some(Shard { index: 0, count: 1 }),
        _ => None,
    };
    if let (Some(shard), Some(settings), false) = (probes, &cfg.preset.probes, reported) {
        study.probes_stage(settings, shard)?;
    }
    let wants_report = stage == Stage::Report || (stage == Stage::All && shard.count == 1);
    if wants_report && !reported {
        study.report_stage(&report)?;
    } else if wants_report {
        eprintln!(
            "[report] {} was written earlier and is kept; `losscape analyze --in {} --out {}` writes it again",
            report.join("index.html").display(),
            dir.display(),
            report.display()
        );
    } else if stage == Stage::All && shard.count > 1 {
        eprintln!(
            "shard {}/{} done; after every shard, run `losscape reproduce --stage report --out {}` (with this run's \
             --preset, --models and --data) to merge and report",
            shard.index,
            shard.count,
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_path_budget_is_stated_in_the_report_and_convergence_is_not() {
        let quick = fixed_budget_note(&Preset::named("quick").unwrap());
        assert!(quick.contains("not run to convergence") && quick.contains("fixed 20 Adam iterations"), "{quick}");
        for converged in ["regime", "regime-gpu", "smoke"] {
            assert_eq!(fixed_budget_note(&Preset::named(converged).unwrap()), "", "{converged}");
        }
    }

    #[test]
    fn the_regime_presets_map_fcp_with_converged_paths() {
        let cpu = Preset::named("regime").unwrap();
        let gpu = Preset::named("regime-gpu").unwrap();
        assert!(cpu.until_converged && cpu.probes.is_none() && cpu.models == [Arch::Fcp]);
        assert_eq!((gpu.test_images, gpu.path), (None, cpu.path));
        assert_eq!(regime::default_sizes("regime-gpu").unwrap().last(), Some(&60_000), "the paper's ratio");
        assert_eq!(regime::default_sizes("quick"), None);
    }
}
