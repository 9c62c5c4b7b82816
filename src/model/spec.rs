//! The four networks' parameters: PyTorch state_dict names, shapes, flat order and init bounds
//! (docs/networks.md §1–2).

use crate::ops::Act;

/// One of the paper's four networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Fcp,
    Lenet,
    Lstm,
    Autoencoder,
}

/// A network and its activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    pub arch: Arch,
    pub act: Act,
}

/// One parameter tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: &'static str,
    pub shape: Vec<usize>,
    /// PyTorch's default init draws U(±1/sqrt(fan_in)) (for LSTM tensors fan_in = hidden size).
    pub fan_in: usize,
}

impl TensorSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn init_bound(&self) -> f32 {
        1.0 / (self.fan_in as f32).sqrt()
    }
}

fn t(name: &'static str, shape: &[usize], fan_in: usize) -> TensorSpec {
    TensorSpec { name, shape: shape.to_vec(), fan_in }
}

impl Arch {
    pub const ALL: [Arch; 4] = [Arch::Fcp, Arch::Lenet, Arch::Lstm, Arch::Autoencoder];

    /// The paper's name.
    pub fn title(self) -> &'static str {
        match self {
            Arch::Fcp => "FCP",
            Arch::Lenet => "LeNet",
            Arch::Lstm => "LSTM",
            Arch::Autoencoder => "autoencoder",
        }
    }

    /// The command-line name.
    pub fn id(self) -> &'static str {
        match self {
            Arch::Fcp => "fcp",
            Arch::Lenet => "lenet",
            Arch::Lstm => "lstm",
            Arch::Autoencoder => "autoencoder",
        }
    }

    /// Parameter tensors in state_dict (= flat vector) order.
    pub fn params(self) -> Vec<TensorSpec> {
        match self {
            Arch::Fcp => {
                vec![t("fc1.weight", &[50, 784], 784), t("fc2.weight", &[50, 50], 50), t("fc3.weight", &[10, 50], 50)]
            }
            Arch::Lenet => vec![
                t("conv1.weight", &[6, 1, 5, 5], 25),
                t("conv1.bias", &[6], 25),
                t("conv2.weight", &[16, 6, 5, 5], 150),
                t("conv2.bias", &[16], 150),
                t("fc1.weight", &[120, 400], 400),
                t("fc1.bias", &[120], 400),
                t("fc2.weight", &[84, 120], 120),
                t("fc2.bias", &[84], 120),
                t("fc3.weight", &[10, 84], 84),
                t("fc3.bias", &[10], 84),
            ],
            Arch::Lstm => vec![
                t("gru.weight_ih_l0", &[192, 28], 48),
                t("gru.weight_hh_l0", &[192, 48], 48),
                t("gru.bias_ih_l0", &[192], 48),
                t("gru.bias_hh_l0", &[192], 48),
                t("fc.weight", &[10, 48], 48),
            ],
            Arch::Autoencoder => vec![
                t("encoder.0.weight", &[32, 784], 784),
                t("encoder.2.weight", &[32, 32], 32),
                t("decoder.0.weight", &[32, 32], 32),
                t("decoder.2.weight", &[784, 32], 32),
            ],
        }
    }

    /// Length of the flat parameter vector (N_prm of Table I).
    pub fn n_params(self) -> usize {
        self.params().iter().map(TensorSpec::len).sum()
    }

    /// Offset of each tensor in the flat vector.
    pub fn offsets(self) -> Vec<usize> {
        self.params()
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
        self != Arch::Autoencoder
    }
}
