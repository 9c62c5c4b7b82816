//! Networks as described: the paper's four built-in descriptions and the user's (a TOML file or the
//! compact `mlp:` form), each read once and kept for the life of the process so that an [`crate::model::Arch`] stays
//! a small `Copy` value that every layer can pass around (as an interned string would).
//!
//! A user's model is identified by its name and the SHA-256 of its canonical TOML
//! ([`Description::to_toml`]): the same network written with other spacing, comments or default options
//! is the same model, and a work directory records the description itself ([`Model::record`]), so a
//! resume or a merge refuses another one even under the same name.

use anyhow::{bail, Context, Result};
use std::sync::{Mutex, OnceLock};

use super::description::{Derived, Description, Head};

/// A network read from a description, with what follows from it.
#[derive(Debug)]
pub struct Model {
    /// The name used on the command line, in file names and reports: the description's `name`
    /// (made safe for file names), else the file's stem.
    pub id: String,
    /// The description, and its canonical TOML's SHA-256 (hex).
    pub description: Description,
    pub sha256: String,
    /// Output shapes and parameter tensors ([`Description::derive`]).
    pub derived: Derived,
    /// The parameter tensors as the engine names them (the `state_dict` keys).
    pub specs: Vec<TensorSpec>,
}

/// The JSON form a configuration records for a user's model: enough to rebuild it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub sha256: String,
    /// The canonical TOML.
    pub description: String,
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// A name safe in file names: letters, digits, `-`, `_` and `.`; anything else becomes `-`.
pub(super) fn file_safe(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    s.trim_matches('-').to_string()
}

impl Model {
    /// Reads `description` as a model named `id`.
    ///
    /// Errors: the description's own ([`Description::derive`]).
    fn new(id: String, description: Description) -> Result<Model> {
        let derived = description.derive()?;
        let specs = derived
            .params
            .iter()
            .map(|p| TensorSpec {
                name: Box::leak(p.name.clone().into_boxed_str()),
                shape: p.shape.clone(),
                fan_in: p.fan_in,
            })
            .collect();
        let sha256 = sha256_hex(&description.to_toml());
        Ok(Model { id, description, sha256, derived, specs })
    }

    /// Whether the network is a classifier (a cross-entropy head) and reports accuracy.
    pub fn is_classifier(&self) -> bool {
        matches!(self.description.head, Head::CrossEntropy { .. })
    }

    /// What a configuration records ([`ModelRecord`]).
    pub fn record(&self) -> ModelRecord {
        ModelRecord { name: self.id.clone(), sha256: self.sha256.clone(), description: self.description.to_toml() }
    }
}

/// The built-in model named `id` (one of [`super::description::BUILTIN`]), read once.
pub(super) fn builtin(id: &str) -> Option<&'static Model> {
    static BUILTIN: OnceLock<Vec<Model>> = OnceLock::new();
    let all = BUILTIN.get_or_init(|| {
        super::description::BUILTIN
            .iter()
            .map(|(id, _)| {
                let d = Description::builtin(id).expect("a built-in description parses");
                Model::new(id.to_string(), d).expect("the built-in descriptions derive (tests/description.rs)")
            })
            .collect()
    });
    all.iter().find(|m| m.id == id)
}

/// The one copy of a user's model named `id`: the same name and description give the same `&Model`.
pub(super) fn intern(id: String, description: Description) -> Result<&'static Model> {
    static MODELS: Mutex<Vec<&'static Model>> = Mutex::new(Vec::new());
    let model = Model::new(id, description)?;
    let mut known = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = known.iter().find(|m| m.id == model.id && m.sha256 == model.sha256) {
        return Ok(m);
    }
    // a process reads a handful of models: keeping each for its lifetime costs nothing and keeps
    // `Arch` a Copy value
    let m: &'static Model = Box::leak(Box::new(model));
    known.push(m);
    Ok(m)
}

/// The model a configuration recorded ([`Model::record`]).
///
/// Errors: a description that no longer parses, or whose SHA-256 is not the recorded one (the record
/// was edited).
pub(super) fn from_record(r: &ModelRecord) -> Result<&'static Model> {
    let d = Description::parse(&r.description).with_context(|| format!("the recorded network `{}`", r.name))?;
    let model = intern(r.name.clone(), d)?;
    if model.sha256 != r.sha256 {
        bail!(
            "the recorded network `{}` has SHA-256 {} but its description hashes to {}: the record was edited",
            r.name,
            r.sha256,
            model.sha256
        );
    }
    Ok(model)
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
