//! What can be wrong with a description, each error naming the problem and what would fit.

use super::FORMAT_VERSIONS;

/// Why a description was refused. The messages name the key, layer or option at fault and list what
/// is allowed there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DescriptionError {
    /// The text is not TOML (the parser's message, with line and column).
    #[error("the description is not valid TOML: {0}")]
    Toml(String),
    /// `format` is missing or names a version this build does not read.
    #[error("{}", version_message(*.found))]
    Version {
        /// The version written, `None` when the key is missing.
        found: Option<i64>,
    },
    /// An unknown key, layer kind or option, or a value of the wrong type or out of range.
    #[error("{0}")]
    Invalid(String),
    /// A layer that does not fit the shape it receives.
    #[error("layer {index} ({kind}): {message}")]
    Shape {
        /// The layer's index in the list (its `torch.nn.Sequential` index).
        index: usize,
        kind: &'static str,
        message: String,
    },
    /// A head that does not fit the last layer's output.
    #[error("head {head}: {message}")]
    Head { head: &'static str, message: String },
    /// A compact MLP form that does not parse.
    #[error("`{spec}`: {message} (the form is mlp:WIDTH-WIDTH[-WIDTH...][:ACTIVATION][:nobias], e.g. mlp:784-64-32-10:tanh)")]
    Compact { spec: String, message: String },
}

fn version_message(found: Option<i64>) -> String {
    let known = FORMAT_VERSIONS.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    match found {
        None => format!("the description has no `format` key: write `format = 1` (versions this build reads: {known})"),
        Some(v) => format!("format version {v} is not supported: this build reads format versions {known}"),
    }
}
