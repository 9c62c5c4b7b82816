//! What determines a training run's results ([`TrainConfig`]): the executor's settings (runs, seeds,
//! data), which optimizer, and each solver family's own settings. `config.json` holds it as one flat
//! JSON object (the families' settings are flattened into it), which a checkpoint and the weight files
//! record by checksum and content; both families' settings are written whichever optimizer runs, as
//! they always were, so that existing run directories resume.

use serde::{Deserialize, Serialize};

use crate::io::Optimizer;
use crate::model::{Arch, Network};
use crate::ops::Act;
use crate::optim::{LbfgsSettings, LineSearchKind, MiniBatchSettings, Rule};

/// Everything that determines a training run's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: Arch,
    pub activation: Act,
    pub optimizer: Optimizer,
    pub runs: usize,
    pub keep: usize,
    /// Run r starts from seed + r (or from vector r of the init file).
    pub seed: u64,
    /// SHA-256 of the --init file, when runs start from given vectors.
    pub init_sha256: Option<String>,
    pub train_images: usize,
    pub test_images: usize,
    /// SGD's and Adam's settings (`epochs`, `lr`, `batch` in the file); unused by L-BFGS.
    #[serde(flatten)]
    pub minibatch: MiniBatchConfig,
    /// L-BFGS's settings (`iterations`, `history`, `line_search`, `budget` in the file); unused by SGD
    /// and Adam.
    #[serde(flatten)]
    pub lbfgs: LbfgsConfig,
    /// SHA-256 of the training and test data, as loaded ([`crate::data::fingerprint`]): a resume on other data
    /// is refused. Absent in directories written before it was recorded (then not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

/// The mini-batch optimizers' (SGD, Adam) settings of a training run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MiniBatchConfig {
    /// Epochs: the executor's steps.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// Mini-batch size (1 to the number of training images).
    pub batch: usize,
}

impl MiniBatchConfig {
    /// The settings of the mini-batch solver with `rule`, for runs reshuffling with `seeds`.
    pub fn settings(&self, rule: Rule, seeds: Vec<u64>) -> MiniBatchSettings {
        MiniBatchSettings { rule, lr: self.lr, batch: self.batch, seeds }
    }
}

/// L-BFGS's settings of a training run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LbfgsConfig {
    /// Iterations: the executor's steps.
    pub iterations: usize,
    /// The solver's own settings (history, line search, budget).
    #[serde(flatten)]
    pub settings: LbfgsSettings,
}

/// The paper's training settings (`docs/algorithms.md`): the defaults of `losscape train` and of
/// [`TrainConfig::new`].
pub mod paper {
    /// Seeded runs per network and optimizer, and how many are kept as solution sets.
    pub const RUNS: usize = 75;
    pub const KEEP: usize = 48;
    /// SGD: epochs, learning rate, mini-batch size.
    pub const EPOCHS: usize = 100;
    pub const LR: f64 = 0.1;
    pub const BATCH: usize = 64;
    /// L-BFGS: iterations and history length.
    pub const ITERATIONS: usize = 1000;
    pub const HISTORY: usize = 10;
}

impl TrainConfig {
    /// `runs` runs of `optimizer` from seed 0 with the paper's settings ([`paper`]; the authors' line
    /// search and its budget), the mini-batch capped at the training images; keep at most `runs`.
    pub fn new(
        net: Network,
        optimizer: Optimizer,
        runs: usize,
        train_images: usize,
        test_images: usize,
    ) -> TrainConfig {
        let line_search = LineSearchKind::Reference;
        TrainConfig {
            model: net.arch,
            activation: net.act,
            optimizer,
            runs,
            keep: paper::KEEP.min(runs),
            seed: 0,
            init_sha256: None,
            train_images,
            test_images,
            minibatch: MiniBatchConfig { epochs: paper::EPOCHS, lr: paper::LR, batch: paper::BATCH.min(train_images) },
            lbfgs: LbfgsConfig {
                iterations: paper::ITERATIONS,
                settings: LbfgsSettings { history: paper::HISTORY, line_search, budget: line_search.default_budget() },
            },
            data_sha256: None,
        }
    }

    /// The executor's steps: epochs (SGD, Adam) or iterations (L-BFGS).
    pub fn steps(&self) -> usize {
        match self.optimizer {
            Optimizer::Sgd | Optimizer::Adam => self.minibatch.epochs,
            Optimizer::Lbfgs => self.lbfgs.iterations,
        }
    }
}
