//! Which network ([`Arch`]: the paper's four, or a user's description) and its parameters: PyTorch
//! state_dict names, shapes, flat order and init bounds, derived from its description (docs/networks.md).

use std::fmt;

use super::description::{Activation, Description, LayerKind};
use super::registry::{self, Model, ModelRecord, TensorSpec};
use crate::ops::Act;

/// A network: one of the paper's four, or a user's ([`Model`], read from a description by
/// [`Arch::parse`]). Everything the engine needs — parameters, plan, reference, symmetry — follows from
/// its description ([`Arch::description`]); the variants of the paper's networks only say which of
/// the paper's claims and figures apply.
#[derive(Clone, Copy)]
pub enum Arch {
    Fcp,
    Lenet,
    Lstm,
    Autoencoder,
    /// A user's network (interned: see `model/registry.rs`).
    Custom(&'static Model),
}

impl PartialEq for Arch {
    fn eq(&self, other: &Arch) -> bool {
        match (self, other) {
            (Arch::Custom(a), Arch::Custom(b)) => a.id == b.id && a.sha256 == b.sha256,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for Arch {}

impl std::hash::Hash for Arch {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        std::mem::discriminant(self).hash(h);
        if let Arch::Custom(m) = self {
            m.sha256.hash(h);
        }
    }
}

impl fmt::Debug for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arch::Fcp => f.write_str("Fcp"),
            Arch::Lenet => f.write_str("Lenet"),
            Arch::Lstm => f.write_str("Lstm"),
            Arch::Autoencoder => f.write_str("Autoencoder"),
            Arch::Custom(m) => write!(f, "Custom({})", m.id),
        }
    }
}

/// A paper network is written as its name (`"fcp"`); a user's network as its record (name, SHA-256
/// and canonical description), so that a configuration holds the network itself.
impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Arch::Custom(m) => m.record().serialize(s),
            a => s.serialize_str(a.id()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Record(ModelRecord),
        }
        let arch = match Form::deserialize(d)? {
            Form::Name(n) => Arch::ALL
                .into_iter()
                .find(|a| a.id() == n)
                .ok_or_else(|| format!("unknown network `{n}` (a user's network is recorded with its description)")),
            Form::Record(r) => registry::from_record(&r).map(Arch::Custom).map_err(|e| format!("{e:#}")),
        };
        arch.map_err(serde::de::Error::custom)
    }
}

/// A network and its activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    pub arch: Arch,
    pub act: Act,
}

impl Arch {
    /// The paper's four networks.
    pub const ALL: [Arch; 4] = [Arch::Fcp, Arch::Lenet, Arch::Lstm, Arch::Autoencoder];

    /// The network's model: its description and what follows from it.
    pub fn model(self) -> &'static Model {
        match self {
            Arch::Custom(m) => m,
            a => registry::builtin(a.id()).expect("a built-in description for each paper network"),
        }
    }

    /// The network's description (for the FCP and LeNet with softplus: see [`Network::description`]).
    pub fn description(self) -> &'static Description {
        &self.model().description
    }

    /// Whether this is one of the paper's four networks (whose claims the report judges).
    pub fn is_paper(self) -> bool {
        !matches!(self, Arch::Custom(_))
    }

    /// Whether `--activation` chooses the network's activation (the FCP and LeNet, whose activation
    /// the paper's text and the authors' code disagree on: docs/decisions.md #1).
    pub fn takes_activation(self) -> bool {
        matches!(self, Arch::Fcp | Arch::Lenet)
    }

    /// The paper's name, or a user's network's name.
    pub fn title(self) -> &'static str {
        match self {
            Arch::Fcp => "FCP",
            Arch::Lenet => "LeNet",
            Arch::Lstm => "LSTM",
            Arch::Autoencoder => "autoencoder",
            Arch::Custom(m) => &m.id,
        }
    }

    /// The command-line name (and the prefix of its files).
    pub fn id(self) -> &'static str {
        match self {
            Arch::Fcp => "fcp",
            Arch::Lenet => "lenet",
            Arch::Lstm => "lstm",
            Arch::Autoencoder => "autoencoder",
            Arch::Custom(m) => &m.id,
        }
    }

    /// Parameter tensors in state_dict (= flat vector) order, derived from the description.
    pub fn params(self) -> Vec<TensorSpec> {
        self.model().specs.clone()
    }

    /// Length of the flat parameter vector (N_prm of Table I).
    pub fn n_params(self) -> usize {
        self.model().specs.iter().map(TensorSpec::len).sum()
    }

    /// Offset of each tensor in the flat vector.
    pub fn offsets(self) -> Vec<usize> {
        self.model()
            .specs
            .iter()
            .scan(0, |off, t| {
                let start = *off;
                *off += t.len();
                Some(start)
            })
            .collect()
    }

    /// Classifiers report accuracy; the autoencoder does not.
    pub fn is_classifier(self) -> bool {
        self.model().is_classifier()
    }
}

impl Network {
    /// The description the engine runs: the network's own, with every activation layer set to `act`
    /// for the FCP and LeNet (`--activation`); the others' activations are their description's.
    pub fn description(self) -> Description {
        let mut d = self.arch.description().clone();
        if self.arch.takes_activation() {
            for l in &mut d.layers {
                if let LayerKind::Act(a) = &mut l.kind {
                    *a = Activation::from_act(self.act);
                }
            }
        }
        d
    }
}
