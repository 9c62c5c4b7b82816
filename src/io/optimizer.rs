//! Which optimizer trained a solution set: its identity as a type. Its on-disk name ([`Optimizer::id`])
//! is what `config.json`, the summaries, the set files and the work directories record, so the enum
//! serialises to exactly those strings and parsing any other name is an error.

use serde::{Deserialize, Serialize};

/// An optimizer of `losscape train`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Mini-batch SGD without momentum (the paper's).
    Sgd,
    /// Full-batch L-BFGS with a line search (the paper's).
    Lbfgs,
    /// Mini-batch Adam with PyTorch's defaults (beyond the paper; not part of `reproduce`).
    Adam,
}

impl Optimizer {
    /// The name files and directories use: `sgd`, `lbfgs`, `adam`.
    pub fn id(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Lbfgs => "lbfgs",
            Optimizer::Adam => "adam",
        }
    }

    /// The name prose uses: SGD, L-BFGS, Adam.
    pub fn title(self) -> &'static str {
        match self {
            Optimizer::Sgd => "SGD",
            Optimizer::Lbfgs => "L-BFGS",
            Optimizer::Adam => "Adam",
        }
    }

    /// The unit of a step: an epoch of mini-batches, or an iteration.
    pub fn unit(self) -> &'static str {
        match self {
            Optimizer::Sgd | Optimizer::Adam => "epoch",
            Optimizer::Lbfgs => "iteration",
        }
    }
}

impl std::fmt::Display for Optimizer {
    /// The on-disk name ([`Optimizer::id`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}
