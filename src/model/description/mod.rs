//! A network as data: the versioned TOML description of docs/networks.md §7 (input, layer list,
//! loss head), the compact MLP form `mlp:784-64-10:tanh`, the paper's four networks as built-in
//! descriptions, and what follows from a description without being written per network: each layer's
//! output shape, the parameter tensors with the names and shapes PyTorch gives the equivalent
//! `torch.nn.Sequential`, their default init bounds, the parameter count and the forward FLOPs.
//!
//! Every [`crate::model::Arch`] is a description: the paper's four are built in, a user's is read by
//! `model/registry.rs`; the plans are built from descriptions (`model/generic.rs`,
//! `Plan::for_description`), and `tests/description.rs` checks the built-ins against the paper's
//! parameter table.

mod compact;
mod derive;
mod error;
mod parse;

pub use derive::{Derived, Param, Shape, MAX_VALUES};
pub use error::DescriptionError;

/// The format versions this build reads (the `format` key of a description).
pub const FORMAT_VERSIONS: &[u32] = &[1];

/// The built-in descriptions: `(command-line name, TOML text)`, the paper's four networks in
/// `Arch::ALL` order.
pub const BUILTIN: [(&str, &str); 4] = [
    ("fcp", include_str!("builtin/fcp.toml")),
    ("lenet", include_str!("builtin/lenet.toml")),
    ("lstm", include_str!("builtin/lstm.toml")),
    ("autoencoder", include_str!("builtin/autoencoder.toml")),
];

/// A network: what it reads, its layers in order (one per module of the equivalent
/// `torch.nn.Sequential`), and its loss head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// The format version it was written in (one of [`FORMAT_VERSIONS`]).
    pub format: u32,
    /// An optional name, for messages and reports.
    pub name: Option<String>,
    pub input: Input,
    pub layers: Vec<Layer>,
    pub head: Head,
}

/// What the first layer receives for one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The image as (channels, height, width): `image = [C, H, W]`.
    Image { c: usize, h: usize, w: usize },
    /// The image flattened to `n` values in (channel, row, column) order: `features = n`.
    Features(usize),
    /// A sequence over the image's rows (`rows = [C, H, W]`): H steps, step s holding row s of every
    /// channel, (channel, column) order, C·W values. With `permute_seed = S` the flattened image is
    /// first reordered by the permutation `torch.randperm(C·H·W)` returns on a generator seeded S
    /// (`x'[j] = x[P[j]]`, as the paper's LSTM with S = 1234: docs/networks.md §2.3).
    Rows { c: usize, h: usize, w: usize, permute_seed: Option<u32> },
}

/// One layer: its kind and, optionally, the name its parameters take in place of its Sequential
/// index (e.g. `fc1` for `fc1.weight`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub name: Option<String>,
    pub kind: LayerKind,
}

/// The layer vocabulary. Sizes are counts of values; kernels, strides and paddings are in pixels
/// and square.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// `nn.Linear(in, out, bias)`: y = x Wᵀ (+ b) on a vector of features.
    Dense { out: usize, bias: bool },
    /// `nn.Conv2d(in_c, out, kernel, stride, padding, bias)` on an image (a cross-correlation with
    /// zero padding).
    Conv2d { out: usize, kernel: usize, stride: usize, padding: usize, bias: bool },
    /// `nn.AvgPool2d(kernel, stride)` (no padding; windows that do not fit are dropped).
    AvgPool { kernel: usize, stride: usize },
    /// `nn.MaxPool2d(kernel, stride)` (no padding; windows that do not fit are dropped).
    MaxPool { kernel: usize, stride: usize },
    /// `nn.Flatten()`: an image to its C·H·W values in (channel, row, column) order.
    Flatten,
    /// `nn.LSTM(features, hidden, bias=bias, batch_first=True)` over a sequence with h₀ = c₀ = 0;
    /// its output is the last hidden state (`hidden` values), for a classifier to follow.
    Lstm { hidden: usize, bias: bool },
    /// An element-wise activation module (`nn.ReLU()`, `nn.Softplus()`, `nn.Sigmoid()`, `nn.Tanh()`).
    Act(Activation),
}

/// The element-wise activations, with PyTorch's defaults (softplus: beta 1, threshold 20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Softplus,
    Sigmoid,
    Tanh,
}

/// The loss on the last layer's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Softmax cross-entropy over `classes` logits against the image's label.
    CrossEntropy { classes: usize },
    /// The autoencoder's: the logistic sigmoid of the output, then the mean squared error against the
    /// input image itself (the output has the input's C·H·W values).
    SigmoidMse,
}

impl Activation {
    /// Every activation, in the order the vocabulary lists them.
    pub const ALL: [Activation; 4] = [Activation::Relu, Activation::Softplus, Activation::Sigmoid, Activation::Tanh];

    /// The name in a description (`relu`, `softplus`, `sigmoid`, `tanh`).
    pub fn id(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Softplus => "softplus",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }

    /// The kernels' activation.
    pub fn act(self) -> crate::ops::Act {
        use crate::ops::Act;
        match self {
            Activation::Relu => Act::Relu,
            Activation::Softplus => Act::Softplus,
            Activation::Sigmoid => Act::Sigmoid,
            Activation::Tanh => Act::Tanh,
        }
    }

    /// The activation of the kernels' `act`.
    pub fn from_act(act: crate::ops::Act) -> Activation {
        use crate::ops::Act;
        match act {
            Act::Relu => Activation::Relu,
            Act::Softplus => Activation::Softplus,
            Act::Sigmoid => Activation::Sigmoid,
            Act::Tanh => Activation::Tanh,
        }
    }

    /// The activation named `id`, if any.
    pub fn from_id(id: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.id() == id)
    }
}

impl LayerKind {
    /// Every layer kind of the format, as written in a description.
    pub const VOCABULARY: [&'static str; 10] =
        ["dense", "conv2d", "avg_pool", "max_pool", "flatten", "lstm", "relu", "softplus", "sigmoid", "tanh"];

    /// The kind's name in a description.
    pub fn id(&self) -> &'static str {
        match self {
            LayerKind::Dense { .. } => "dense",
            LayerKind::Conv2d { .. } => "conv2d",
            LayerKind::AvgPool { .. } => "avg_pool",
            LayerKind::MaxPool { .. } => "max_pool",
            LayerKind::Flatten => "flatten",
            LayerKind::Lstm { .. } => "lstm",
            LayerKind::Act(a) => a.id(),
        }
    }

    /// Whether the layer has parameter tensors (and may carry a `name`).
    pub fn has_params(&self) -> bool {
        matches!(self, LayerKind::Dense { .. } | LayerKind::Conv2d { .. } | LayerKind::Lstm { .. })
    }
}

impl Layer {
    /// A layer without a name override.
    pub fn new(kind: LayerKind) -> Layer {
        Layer { name: None, kind }
    }

    /// A layer whose parameters are named `name.weight` etc.
    pub fn named(name: &str, kind: LayerKind) -> Layer {
        Layer { name: Some(name.to_string()), kind }
    }
}

impl Description {
    /// Reads a description: the compact MLP form when `text` starts with `mlp:`, else TOML.
    ///
    /// Errors: TOML syntax; a missing or unsupported `format` (the versions listed); an unknown key,
    /// layer kind or option (the vocabulary listed); a value of the wrong type or out of range; a
    /// layer whose input shape does not fit it, or a head that does not fit the last layer (the
    /// layer's index and kind, the shapes and the requirement named).
    pub fn parse(text: &str) -> Result<Description, DescriptionError> {
        if text.trim_start().starts_with("mlp:") {
            Description::mlp(text.trim())
        } else {
            Description::from_toml(text)
        }
    }

    /// The built-in description named `id` (`fcp`, `lenet`, `lstm`, `autoencoder`), if any.
    pub fn builtin(id: &str) -> Option<Description> {
        let text = BUILTIN.iter().find(|b| b.0 == id)?.1;
        Some(Description::from_toml(text).expect("the built-in descriptions parse (tests/description.rs)"))
    }
}
