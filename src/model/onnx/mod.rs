//! ONNX models: a PyTorch (or any framework's) network exported with `torch.onnx.export` read as a
//! [`Description`] whose parameter names are the graph's initializer names (PyTorch's `state_dict`
//! keys), its initializers as one weight vector; and the way back, a description and a vector written
//! as an ONNX model that onnxruntime and PyTorch open.
//!
//! The graph must be a chain of the operators in [`SUPPORTED`] (docs/networks.md §8). Sources: the ONNX
//! IR and operator specifications (onnx/onnx `docs/IR.md`, `docs/Operators.md`), opset 17.

mod export;
mod import;
mod tensor;

use anyhow::{anyhow, bail, Context, Result};
use onnx_protobuf::{Message, ModelProto};
use std::path::Path;

use super::description::Description;

pub use export::{export, OPSET};

/// The ONNX operators the importer maps (the others are refused, naming the node).
pub const SUPPORTED: [&str; 16] = [
    "Gemm",
    "MatMul",
    "Add (a MatMul's bias)",
    "Conv",
    "MaxPool",
    "AveragePool",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Flatten",
    "Reshape (a flatten)",
    "Identity",
    "Dropout",
    "LogSoftmax (last, before cross-entropy)",
    "Constant",
];

/// The metadata keys an exported model carries, so that importing it gives back its description.
pub const META_NAME: &str = "losscape.name";
pub const META_HEAD: &str = "losscape.head";

/// The loss head of an imported network, when the graph ends in logits (`--loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy over the last layer's outputs (the classes).
    CrossEntropy,
    /// The autoencoder's: sigmoid, then mean squared error against the input (a trailing Sigmoid node
    /// of the graph is the head's and is not a layer).
    SigmoidMse,
}

/// Where one parameter tensor of an imported network comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The initializer's name, which is the `state_dict` name.
    pub name: String,
    /// Whether the initializer holds the transpose of PyTorch's (in, out) instead of (out, in): a
    /// MatMul's weight stored as is.
    pub transposed: bool,
}

/// An ONNX graph as a network.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub description: Description,
    /// One per derived parameter tensor, in flat order.
    pub sources: Vec<Source>,
}

/// Parses the bytes of an ONNX file.
///
/// Errors: bytes that are not an ONNX model (with a hint for the formats it may be instead).
pub fn parse(bytes: &[u8]) -> Result<ModelProto> {
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| anyhow!("not an ONNX model: {e}"))?;
    if model.graph.is_none() || model.graph.node.is_empty() {
        bail!("not an ONNX model: no graph (is this another kind of file named .onnx?)");
    }
    Ok(model)
}

/// Reads `path` as a network named after its stem (or the name an exported model records). `loss`
/// chooses the head; `None` takes the one an exported model records, else cross-entropy.
///
/// Errors: an unreadable file; an operator outside [`SUPPORTED`] (the op, the node and the list); a
/// graph that is not a chain; attributes the vocabulary has no counterpart for; parameters whose
/// initializer names are not `<module>.weight`/`<module>.bias`. Each message starts with the path.
pub fn import(path: &Path, loss: Option<Loss>) -> Result<Imported> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the ONNX file", path.display()))?;
    let model = parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let meta = |key: &str| model.metadata_props.iter().find(|p| p.key == key).map(|p| p.value.clone());
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = meta(META_NAME).unwrap_or(stem);
    let loss = loss.unwrap_or(match meta(META_HEAD).as_deref() {
        Some("sigmoid_mse") => Loss::SigmoidMse,
        _ => Loss::CrossEntropy,
    });
    import::import(&model, &name, loss)
        .with_context(|| format!("{}: the ONNX graph does not map onto a network", path.display()))
}

/// The initializers of an ONNX file (its bytes) as one flat vector of the network whose parameter
/// tensors are `specs` (`(state_dict name, PyTorch shape)` in flat order).
///
/// Errors: a graph that does not import; a tensor of `specs` that the graph lacks, or has with another
/// shape; parameters of the graph that `specs` lacks (all named).
pub fn vector(bytes: &[u8], specs: &[(&str, &[usize])]) -> Result<Vec<f32>> {
    let model = parse(bytes)?;
    let imported = import::import(&model, "weights", Loss::CrossEntropy)
        .or_else(|_| import::import(&model, "weights", Loss::SigmoidMse))
        .context("the ONNX graph does not map onto a network")?;
    let graph = &model.graph;
    let find = |name: &str| graph.initializer.iter().find(|t| t.name == name);
    let mut flat = Vec::new();
    for &(name, shape) in specs {
        let source = imported.sources.iter().find(|s| s.name == name);
        let t = source.and_then(|s| find(&s.name)).ok_or_else(|| {
            let have: Vec<&str> = imported.sources.iter().map(|s| s.name.as_str()).collect();
            anyhow!("tensor '{name}' is missing (the network needs it, shape {shape:?}); the ONNX graph's parameters are {}", have.join(", "))
        })?;
        let dims = tensor::dims(t)?;
        let values = tensor::floats(t)?;
        let transposed = source.is_some_and(|s| s.transposed);
        let stored: Vec<usize> = if transposed { dims.iter().rev().copied().collect() } else { dims.clone() };
        if stored != shape {
            bail!("tensor '{name}' has shape {dims:?}; expected {shape:?}");
        }
        if transposed {
            let (rows, cols) = (dims[0], dims[1]);
            flat.extend((0..cols).flat_map(|j| (0..rows).map(move |i| (i, j))).map(|(i, j)| values[i * cols + j]));
        } else {
            flat.extend(values);
        }
    }
    let extra: Vec<&str> =
        imported.sources.iter().map(|s| s.name.as_str()).filter(|n| !specs.iter().any(|s| s.0 == *n)).collect();
    if !extra.is_empty() {
        let expected: Vec<&str> = specs.iter().map(|s| s.0).collect();
        bail!(
            "unexpected tensor(s) '{}' in the ONNX graph; the network's tensors are {}",
            extra.join("', '"),
            expected.join(", ")
        );
    }
    Ok(flat)
}
