//! The presets: the scale of a reproduction (`reproduce --preset`), from the test suite's smoke run to
//! the paper's, and the regime presets (`regime::default_sizes`).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::ProbeSettings;
use crate::model::Arch;
use crate::path::PathSettings;
use crate::probe::hessian::{SpectrumSettings, DEFAULT_STEP};
use crate::train::paper;

/// Every preset [`Preset::named`] accepts, with what it is for: the choices that `reproduce --preset` and
/// `plan --preset` list in their help (`cli::preset_arg`).
pub const PRESETS: [(&str, &str); 6] = [
    ("quick", "≤ 10 minutes on 2 CPU cores: FCP and the autoencoder converge at a reduced scale"),
    ("medium", "all four networks at a reduced scale, all converging: 2 hours on 2 CPU cores"),
    ("paper", "the paper's full scale, for GPU servers"),
    ("regime", "the regime map of FCP on 2 CPU cores, every path run to convergence (see reproduce --images)"),
    ("regime-gpu", "the regime map up to the paper's 60,000 images, for a GPU server"),
    ("smoke", "the test suite's end-to-end run of every network: every stage in seconds, nothing converges"),
];

/// The scale of a reproduction. The times below are measured on a 2-core CPU (`docs/benchmarks.md`,
/// "Presets").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    /// The networks studied unless `--models` says otherwise.
    pub models: Vec<Arch>,
    /// Seeded runs per (network, optimizer), and how many of them are kept as solution sets.
    pub runs: usize,
    pub keep: usize,
    /// Training and test images (None: the full official splits).
    pub train_images: Option<usize>,
    pub test_images: Option<usize>,
    /// SGD epochs and learning rate.
    pub epochs: usize,
    pub lr: f64,
    /// L-BFGS iterations.
    pub iterations: usize,
    /// Path pairs per set and landscape.
    pub pairs: usize,
    pub path: PathSettings,
    /// Stop each path at convergence (`paths --until-converged`), `path.iterations` being the most;
    /// false (and absent from `config.json`) for a fixed budget, as in work directories written before
    /// the option existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_converged: bool,
    /// Hessian sharpness of the minima and surfaces through representative paths (`probes`); None in
    /// work directories written before the stage existed.
    #[serde(default)]
    pub probes: Option<ProbeSettings>,
}

impl Preset {
    pub fn named(name: &str) -> Result<Preset> {
        let paper_path = PathSettings::default();
        let spectrum = SpectrumSettings { top: 1, steps: 20, probes: 10, seed: 0, step: DEFAULT_STEP };
        // the reduced presets: 20 Lanczos steps give λ_1 to < 0.1 % and 10 probes the trace to about 10 %
        // (docs/probes.md); a 21 x 21 grid
        let reduced = ProbeSettings { spectrum, spectrum_images: Some(1000), grid: 21 };
        Ok(match name {
            // the README's main command: ≤ 10 minutes on 2 CPU cores; FCP and the autoencoder converge
            // (L-BFGS to ~1e-12 and ~3e-2, SGD to ~5e-3 and ~7e-2 on 2,000 images)
            "quick" => Preset {
                name: name.into(),
                models: vec![Arch::Fcp, Arch::Autoencoder],
                runs: 10,
                keep: 8,
                train_images: Some(2000),
                test_images: Some(1000),
                epochs: 100,
                lr: 0.1,
                iterations: 200,
                pairs: 6,
                // fewer Adam iterations than the paper's 100, with a larger step to move as far
                path: PathSettings { lr: 5e-3, iterations: 20, ..paper_path },
                until_converged: false,
                probes: Some(reduced),
            },
            // the regime map at a GPU server's scale (`plan --preset regime-gpu`): up to all 60,000 images and
            // the full test split
            "regime-gpu" => Preset { name: name.into(), test_images: None, ..Preset::named("regime")? },
            // the regime map's study (`reproduce --images`, by default at regime::default_sizes): the quick
            // preset's FCP training, every path optimised until it converges, no probes. The budget is
            // the map's longest stop with a margin (docs/findings.md): at lr 5e-3 most pairs stop after
            // 18-540 iterations, but four BFGS-train pairs at 2,000 images were still falling at 600 (the
            // first map's budget). A map made with 600 resumes under this budget, keeping its converged pairs.
            "regime" => Preset {
                name: name.into(),
                models: vec![Arch::Fcp],
                path: PathSettings { lr: 5e-3, iterations: 1500, ..paper_path },
                until_converged: true,
                probes: None,
                ..Preset::named("quick")?
            },
            // all four networks at a reduced scale, all converging: 2 h 2 min on 2 CPU cores (training 46 min,
            // paths 68 min, probes 9 min); 300 SGD epochs because the LSTM's SGD runs were still at a
            // training loss of 0.3 after 100 on 1,000 images; L-BFGS needs ~250 iterations for LeNet
            "medium" => Preset {
                name: name.into(),
                models: Arch::ALL.to_vec(),
                runs: 10,
                keep: 8,
                train_images: Some(1000),
                test_images: Some(500),
                epochs: 300,
                lr: 0.1,
                iterations: 300,
                pairs: 5,
                path: PathSettings { lr: 5e-3, iterations: 20, ..paper_path },
                until_converged: false,
                probes: Some(reduced),
            },
            // the test suite's end-to-end run: every stage in seconds, nothing converges
            "smoke" => Preset {
                name: name.into(),
                models: Arch::ALL.to_vec(),
                runs: 3,
                keep: 2,
                train_images: Some(64),
                test_images: Some(64),
                epochs: 2,
                lr: 0.1,
                iterations: 2,
                pairs: 1,
                path: PathSettings { fourier: 2, points: 5, lambda: 1e-4, lr: 5e-3, iterations: 2 },
                // stopping at convergence exercised end to end (2 iterations never converge: the
                // rule needs at least 10)
                until_converged: true,
                probes: Some(ProbeSettings {
                    spectrum: SpectrumSettings { steps: 3, probes: 2, ..spectrum },
                    spectrum_images: None,
                    grid: 5,
                }),
            },
            // the paper's scale
            "paper" => Preset {
                name: name.into(),
                models: Arch::ALL.to_vec(),
                runs: paper::RUNS,
                keep: paper::KEEP,
                train_images: None,
                test_images: None,
                epochs: paper::EPOCHS,
                lr: paper::LR,
                iterations: paper::ITERATIONS,
                pairs: PathSettings::PAPER_PAIRS,
                path: paper_path,
                until_converged: false,
                probes: Some(ProbeSettings {
                    spectrum: SpectrumSettings { steps: 30, probes: 50, ..spectrum },
                    spectrum_images: Some(10_000),
                    grid: 51,
                }),
            },
            other => {
                let names: Vec<&str> = PRESETS.iter().map(|(name, _)| *name).collect();
                bail!("unknown preset '{other}': choose one of {}", names.join(", "))
            }
        })
    }

    /// The scale in words, for the report.
    pub fn describe(&self) -> String {
        let images = |n: Option<usize>, all: usize| n.map_or(format!("all {all}"), |n| n.to_string());
        format!(
            "{} runs per network and optimizer ({} kept), {} training and {} test images, SGD {} epochs \
             (batch 64, lr {}), L-BFGS {} iterations, {} path pairs per set and landscape, paths of {} points \
             with {} Fourier terms optimised by {}{} Adam iterations (lr {}, λ {})",
            self.runs,
            self.keep,
            images(self.train_images, 60_000),
            images(self.test_images, 10_000),
            self.epochs,
            self.lr,
            self.iterations,
            self.pairs,
            self.path.points,
            self.path.fourier,
            if self.until_converged { "at most " } else { "" },
            self.path.iterations,
            self.path.lr,
            self.path.lambda
        ) + if self.until_converged { ", each path stopped when it converged" } else { "" }
            + &self.probes.map_or(String::new(), |p| {
                format!(
                    "; Hessian of the train snapshots on {} training images ({} Lanczos steps, {} Hutchinson probes), \
                 {} x {} surfaces through a median-height path",
                    p.spectrum_images.map_or("all".into(), |n| n.to_string()),
                    p.spectrum.steps,
                    p.spectrum.probes,
                    p.grid,
                    p.grid
                )
            })
    }
}
