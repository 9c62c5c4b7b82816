//! ONNX models: a PyTorch (or any framework's) network exported with `torch.onnx.export` read as a
//! [`Description`] whose parameter names are the graph's initializer names (PyTorch's `state_dict`
//! keys), its initializers as one weight vector; and the way back, a description and a vector written
//! as an ONNX model that onnxruntime and PyTorch open.
//!
//! The graph must be a chain of the operators in [`SUPPORTED`] (docs/networks.md §8). Sources: the ONNX
//! IR and operator specifications (onnx/onnx `docs/IR.md`, `docs/Operators.md`), opset 17.

mod array;
mod export;
mod fold;
mod import;
mod recurrent;
mod tensor;

use anyhow::{anyhow, bail, Context, Result};
use onnx_protobuf::{Message, ModelProto};
use std::path::Path;

use super::description::Description;

pub use export::{export, OPSET};
pub use recurrent::PERMUTE_SEEDS;

/// The ONNX operators the importer maps (the others are refused, naming the node).
pub const SUPPORTED: [&str; 18] = [
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
    "LSTM (one layer, forward, h0 = c0 = 0, its last hidden state used)",
    "Reshape, Transpose, Gather, Slice, Squeeze, Unsqueeze, Shape and ConstantOfShape around an LSTM",
];

/// The gate order of ONNX's LSTM in PyTorch's: ONNX's block a of 4·hidden rows (i, o, f, c) is
/// PyTorch's block `GATES[a]` (i, f, g, o; g is ONNX's c).
pub const GATES: [usize; 4] = [0, 3, 1, 2];

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

impl Loss {
    /// The name `--loss` takes.
    pub fn id(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross-entropy",
            Loss::SigmoidMse => "mse-sigmoid",
        }
    }
}

/// One parameter tensor of an imported network: its `state_dict` name and where its values are.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The `state_dict` name (the derived parameter's name).
    pub name: String,
    pub origin: Origin,
}

/// Where a parameter tensor's values are in an ONNX model.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// The initializer `name` (the `state_dict` name, or one constant folding gave it), as PyTorch's
    /// (out, in, …) tensor, or when `transposed` a MatMul's (in, out) weight stored as is.
    Initializer { name: String, transposed: bool },
    /// Values computed from the graph's constants in PyTorch's layout (`dims`, row-major): an LSTM's
    /// W, R and B with their gates reordered and B split into the two biases.
    Computed { dims: Vec<usize>, values: Vec<f32> },
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
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| {
        anyhow!("not an ONNX model: {e} (a file cut short or damaged, or not a model: export it again with torch.onnx.export)")
    })?;
    if model.graph.is_none() || model.graph.node.is_empty() {
        bail!("not an ONNX model: no graph (is this another kind of file named .onnx?)");
    }
    Ok(model)
}

/// The error of a `--loss` that contradicts the head a model records (a usage mistake: the command
/// line asks for what the file rules out).
#[derive(Debug)]
pub struct HeadConflict(pub String);

impl std::fmt::Display for HeadConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeadConflict {}

/// Reads `path` as a network named after its stem (or the name an exported model records). `loss`
/// chooses the head; `None` takes the one an exported model records, else cross-entropy.
///
/// Errors: an unreadable file; an operator outside [`SUPPORTED`] (the op, the node and the list); a
/// graph that is not a chain; attributes the vocabulary has no counterpart for; parameters whose
/// initializer names are not `<module>.weight`/`<module>.bias`; a [`HeadConflict`]. Each message
/// starts with the path.
pub fn import(path: &Path, loss: Option<Loss>) -> Result<Imported> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the ONNX file", path.display()))?;
    let model = parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let meta = |key: &str| model.metadata_props.iter().find(|p| p.key == key).map(|p| p.value.clone());
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = meta(META_NAME).unwrap_or(stem);
    let recorded = meta(META_HEAD).map(|h| if h == "sigmoid_mse" { Loss::SigmoidMse } else { Loss::CrossEntropy });
    if let (Some(r), Some(l)) = (recorded, loss) {
        if r != l {
            return Err(HeadConflict(format!(
                "{}: the model records its head, {} (losscape export wrote it), so --loss {} does not apply; leave \
                 --loss out",
                path.display(),
                r.id(),
                l.id()
            ))
            .into());
        }
    }
    let loss = loss.or(recorded).unwrap_or(Loss::CrossEntropy);
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
    let find = |name: &str| model.graph.initializer.iter().find(|t| t.name == name);
    let mut flat = Vec::new();
    for &(name, shape) in specs {
        let source = imported.sources.iter().find(|s| s.name == name).ok_or_else(|| {
            let have: Vec<&str> = imported.sources.iter().map(|s| s.name.as_str()).collect();
            anyhow!("tensor '{name}' is missing (the network needs it, shape {shape:?}); the ONNX graph's parameters are {}", have.join(", "))
        })?;
        let (dims, values, transposed) = match &source.origin {
            Origin::Initializer { name: init, transposed } => {
                let t = find(init).ok_or_else(|| anyhow!("the initializer `{init}` of tensor '{name}' is missing"))?;
                (tensor::dims(t)?, tensor::floats(t)?, *transposed)
            }
            Origin::Computed { dims, values } => (dims.clone(), values.clone(), false),
        };
        let mut stored: Vec<usize> = if transposed { dims.iter().rev().copied().collect() } else { dims.clone() };
        // a bias added as (1, out) is PyTorch's (out)
        if stored.len() == shape.len() + 1 && stored[0] == 1 {
            stored.remove(0);
        }
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
