//! An ONNX graph mapped onto the description vocabulary: one chain of nodes from the graph's input to
//! its output, each node one layer (or none, for the inference no-ops), the parameters found by their
//! initializer names.
//!
//! Source: the ONNX operator specification (onnx/onnx `docs/Operators.md`) for each operator's
//! attributes and defaults; PyTorch's `torch.onnx.export` (TorchScript exporter) for the naming.

use anyhow::{anyhow, bail, Result};
use onnx_protobuf::{GraphProto, ModelProto, NodeProto, TensorProto};
use std::collections::HashMap;

use super::tensor::{self, float_or, int_or, ints_attr, string_or};
use super::{Imported, Loss, Source, SUPPORTED};
use crate::model::description::{Activation, Description, Head, Input, Layer, LayerKind, Shape, FORMAT_VERSIONS};

/// A parameter layer's tensors as the graph names them, before the layer index is known.
struct Params {
    weight: String,
    weight_transposed: bool,
    bias: Option<String>,
}

/// The walk along the chain: the layers so far, the shape of the current value, the parameters.
struct Walk<'g> {
    constants: HashMap<&'g str, &'g TensorProto>,
    layers: Vec<Layer>,
    params: Vec<Option<Params>>,
    shape: Shape,
    /// Whether the last layer is a MatMul's dense layer still without its bias (an Add may follow).
    open_matmul: bool,
}

fn node_label(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} node (output `{}`)", node.op_type, node.output.first().map_or("", String::as_str))
    } else {
        format!("{} node `{}`", node.op_type, node.name)
    }
}

/// `<prefix>` of `<prefix>.<suffix>`.
fn prefix_of<'a>(name: &'a str, suffix: &str, node: &NodeProto) -> Result<&'a str> {
    name.strip_suffix(suffix).and_then(|p| p.strip_suffix('.')).filter(|p| !p.is_empty()).ok_or_else(|| {
        anyhow!(
            "{}: its parameter `{name}` is not named `<module>.{suffix}` as in PyTorch's state_dict, so \
             checkpoints cannot be matched to it; export with torch.onnx.export(model, x, path, dynamo=False, \
             do_constant_folding=False), which keeps the state_dict names",
            node_label(node)
        )
    })
}

fn positive(v: i64) -> Option<usize> {
    usize::try_from(v).ok().filter(|&v| v > 0)
}

/// A square size from a 2-element attribute (kernel, strides), `default` when absent.
fn square(node: &NodeProto, attr: &str, default: Option<usize>) -> Result<usize> {
    match ints_attr(node, attr) {
        None => default.ok_or_else(|| anyhow!("{}: no `{attr}` attribute", node_label(node))),
        Some([a, b]) if a == b => {
            positive(*a).ok_or_else(|| anyhow!("{}: `{attr}` {a} is not positive", node_label(node)))
        }
        Some(v) => bail!(
            "{}: `{attr}` {v:?} is not square; losscape's convolutions and pools take one size for both sides",
            node_label(node)
        ),
    }
}

/// Refuses what a convolution or pool may have that the vocabulary has not.
fn plain_window(node: &NodeProto, pads_allowed: bool) -> Result<usize> {
    let label = node_label(node);
    let auto_pad = string_or(node, "auto_pad", "NOTSET");
    if auto_pad != "NOTSET" {
        bail!("{label}: auto_pad {auto_pad} is not supported; give explicit pads (PyTorch's export does)");
    }
    if let Some(d) = ints_attr(node, "dilations").filter(|d| d.iter().any(|&x| x != 1)) {
        bail!("{label}: dilations {d:?} are not supported (only 1)");
    }
    let pads = ints_attr(node, "pads").unwrap_or(&[0, 0, 0, 0]);
    match pads {
        [p, ..] if pads.len() == 4 && pads.iter().all(|x| x == p) && *p >= 0 => {
            if *p != 0 && !pads_allowed {
                bail!("{label}: pads {pads:?} are not supported on a pool (only 0)");
            }
            Ok(*p as usize)
        }
        _ => bail!("{label}: pads {pads:?} are not symmetric; losscape pads every side alike"),
    }
}

impl<'g> Walk<'g> {
    fn push(&mut self, kind: LayerKind, params: Option<Params>, node: &NodeProto) -> Result<()> {
        let layer = Layer::new(kind);
        // the shape after the layer, checked as a description checks it
        let d = Description {
            format: FORMAT_VERSIONS[0],
            name: None,
            input: match self.shape {
                Shape::Image { c, h, w } => Input::Image { c, h, w },
                s => Input::Features(s.len()),
            },
            layers: vec![layer.clone()],
            head: Head::SigmoidMse,
        };
        let derived = d.derive_layers().map_err(|e| anyhow!("{}: {}", node_label(node), e))?;
        self.shape = derived.outputs[0];
        self.layers.push(layer);
        self.params.push(params);
        self.open_matmul = false;
        Ok(())
    }

    fn constant(&self, name: &str) -> Option<&'g TensorProto> {
        self.constants.get(name).copied()
    }

    /// The name of `node`'s optional bias (input 2), checked to hold one value per output (`out`).
    ///
    /// Errors: the bias is not an initializer, or has another shape.
    fn bias(&self, node: &NodeProto, out: usize) -> Result<Option<String>> {
        if node.input.get(2).is_none_or(|n| n.is_empty()) {
            return Ok(None);
        }
        let (b, shape) = self.parameter(node, 2, "bias")?;
        if shape != [out] {
            bail!("{}: bias `{}` has shape {shape:?}; expected [{out}] (one per output)", node_label(node), b.name);
        }
        Ok(Some(b.name.clone()))
    }

    /// A float parameter input of `node` (an initializer), with its shape.
    fn parameter(&self, node: &NodeProto, index: usize, what: &str) -> Result<(&'g TensorProto, Vec<usize>)> {
        let name = node.input.get(index).filter(|n| !n.is_empty());
        let t = name.and_then(|n| self.constant(n)).ok_or_else(|| {
            anyhow!(
                "{}: its {what} is not an initializer (a constant tensor); only fixed weights are mapped",
                node_label(node)
            )
        })?;
        Ok((t, tensor::dims(t)?))
    }

    fn gemm(&mut self, node: &NodeProto) -> Result<()> {
        let label = node_label(node);
        let (alpha, beta) = (float_or(node, "alpha", 1.0), float_or(node, "beta", 1.0));
        if int_or(node, "transA", 0) != 0 || int_or(node, "transB", 0) != 1 {
            bail!(
                "{label}: Gemm with transA = {}, transB = {} is not mapped; a linear layer is Gemm(x, W, b) with \
                 transB = 1 and W of shape (out, in), as PyTorch exports nn.Linear",
                int_or(node, "transA", 0),
                int_or(node, "transB", 0)
            );
        }
        if alpha != 1.0 || (beta != 1.0 && node.input.len() > 2) {
            bail!("{label}: alpha = {alpha}, beta = {beta}; only alpha = beta = 1 (nn.Linear) is mapped");
        }
        let (w, shape) = self.parameter(node, 1, "weight")?;
        let Shape::Features(inp) = self.shape else {
            bail!("{label}: a Gemm on {}; flatten it first", self.shape);
        };
        if shape.len() != 2 || shape[1] != inp {
            bail!("{label}: weight `{}` has shape {shape:?}; expected (out, {inp})", w.name);
        }
        prefix_of(&w.name, "weight", node)?;
        let bias = self.bias(node, shape[0])?;
        let params = Params { weight: w.name.clone(), weight_transposed: false, bias };
        self.push(LayerKind::Dense { out: shape[0], bias: params.bias.is_some() }, Some(params), node)
    }

    fn matmul(&mut self, node: &NodeProto, transposes: &HashMap<&'g str, &'g TensorProto>) -> Result<()> {
        let label = node_label(node);
        let Shape::Features(inp) = self.shape else {
            bail!("{label}: a MatMul on {}; flatten it first", self.shape);
        };
        let b = node.input.get(1).map_or("", String::as_str);
        // x · Wᵀ with W (out, in) the state_dict's, or x · K with K (in, out) stored transposed
        let (w, transposed) = match (transposes.get(b), self.constant(b)) {
            (Some(w), _) => (*w, false),
            (None, Some(k)) => (k, true),
            _ => bail!("{label}: its second input is not an initializer; only fixed weights are mapped"),
        };
        let shape = tensor::dims(w)?;
        let out = match (transposed, shape.as_slice()) {
            (false, [out, i]) if *i == inp => *out,
            (true, [i, out]) if *i == inp => *out,
            _ => bail!("{label}: weight `{}` has shape {shape:?}, which does not take {inp} features", w.name),
        };
        prefix_of(&w.name, "weight", node)?;
        let params = Params { weight: w.name.clone(), weight_transposed: transposed, bias: None };
        self.push(LayerKind::Dense { out, bias: false }, Some(params), node)?;
        self.open_matmul = true;
        Ok(())
    }

    /// An Add after a MatMul: the dense layer's bias.
    fn add(&mut self, node: &NodeProto, current: &str) -> Result<()> {
        let label = node_label(node);
        let other = node.input.iter().find(|i| *i != current).map_or("", String::as_str);
        let Some(b) = self.constant(other).filter(|_| self.open_matmul && node.input.len() == 2) else {
            bail!(
                "{label}: an Add is mapped only as the bias of the MatMul before it (MatMul + Add = a linear \
                 layer); residual additions and other sums are not supported"
            );
        };
        let Some(LayerKind::Dense { out, .. }) = self.layers.last().map(|l| l.kind) else { unreachable!() };
        let shape = tensor::dims(b)?;
        if shape != [out] && shape != [1, out] {
            bail!("{label}: bias `{}` has shape {shape:?}; expected [{out}]", b.name);
        }
        let last = self.layers.len() - 1;
        self.layers[last].kind = LayerKind::Dense { out, bias: true };
        if let Some(p) = self.params[last].as_mut() {
            p.bias = Some(b.name.clone());
        }
        self.open_matmul = false;
        Ok(())
    }

    fn conv(&mut self, node: &NodeProto) -> Result<()> {
        let label = node_label(node);
        if int_or(node, "group", 1) != 1 {
            bail!(
                "{label}: group = {} is not supported (only 1: no grouped or depthwise convolutions)",
                int_or(node, "group", 1)
            );
        }
        let padding = plain_window(node, true)?;
        let (w, shape) = self.parameter(node, 1, "weight")?;
        if shape.len() != 4 || shape[2] != shape[3] {
            bail!("{label}: weight `{}` has shape {shape:?}; expected (out, in, k, k), a square kernel", w.name);
        }
        let kernel = square(node, "kernel_shape", Some(shape[2]))?;
        let stride = square(node, "strides", Some(1))?;
        prefix_of(&w.name, "weight", node)?;
        let bias = self.bias(node, shape[0])?;
        let params = Params { weight: w.name.clone(), weight_transposed: false, bias };
        let kind = LayerKind::Conv2d { out: shape[0], kernel, stride, padding, bias: params.bias.is_some() };
        self.push(kind, Some(params), node)
    }

    fn pool(&mut self, node: &NodeProto, max: bool) -> Result<()> {
        let label = node_label(node);
        plain_window(node, false)?;
        if int_or(node, "ceil_mode", 0) != 0 {
            bail!("{label}: ceil_mode = 1 is not supported (windows that do not fit are dropped, as ceil_mode = 0)");
        }
        let kernel = square(node, "kernel_shape", None)?;
        let stride = square(node, "strides", Some(1))?;
        let kind = if max { LayerKind::MaxPool { kernel, stride } } else { LayerKind::AvgPool { kernel, stride } };
        self.push(kind, None, node)
    }

    /// Flatten (axis 1), or a Reshape to (batch, C·H·W) with a constant shape.
    fn flatten(&mut self, node: &NodeProto) -> Result<()> {
        let label = node_label(node);
        let n = self.shape.len() as i64;
        if node.op_type == "Flatten" {
            let axis = int_or(node, "axis", 1);
            if axis != 1 {
                bail!("{label}: Flatten with axis = {axis} is not mapped (only axis = 1: one vector per image)");
            }
        } else {
            let target = node.input.get(1).and_then(|s| self.constant(s)).ok_or_else(|| {
                anyhow!("{label}: a Reshape is mapped only with a constant shape (an initializer or Constant node)")
            })?;
            let dims = tensor::ints(target)?;
            let flattens = match dims.as_slice() {
                [b, d] if *d == n => *b == -1 || *b >= 0,
                [b, -1] => *b >= 0,
                _ => false,
            };
            if !flattens {
                bail!(
                    "{label}: a Reshape to {dims:?} is not a flatten of {} (to (batch, {n})); only flattening is mapped",
                    self.shape
                );
            }
        }
        if matches!(self.shape, Shape::Features(_)) {
            return Ok(()); // already one vector per image
        }
        self.push(LayerKind::Flatten, None, node)
    }
}

/// The graph's one data input as a description input: (N, C, H, W) an image, (N, F) features.
fn input_of(graph: &GraphProto, constants: &HashMap<&str, &TensorProto>) -> Result<(String, Input)> {
    let inputs: Vec<_> = graph.input.iter().filter(|i| !constants.contains_key(i.name.as_str())).collect();
    let [input] = inputs.as_slice() else {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        bail!(
            "the graph has {} data inputs ({}); losscape maps graphs of one input, the images",
            names.len(),
            names.join(", ")
        );
    };
    let t = input.type_.tensor_type();
    if t.elem_type != onnx_protobuf::tensor_proto::DataType::FLOAT as i32 {
        bail!("the graph input `{}` has element type {}; expected FLOAT (1)", input.name, t.elem_type);
    }
    let dims: Vec<Option<usize>> =
        t.shape.dim.iter().map(|d| if d.has_dim_value() { positive(d.dim_value()) } else { None }).collect();
    let fixed = |i: usize| {
        dims[i].ok_or_else(|| anyhow!("the graph input `{}` has no fixed size in dimension {i}: export with a fixed image shape (only the batch may vary)", input.name))
    };
    let shape = match dims.len() {
        4 => Input::Image { c: fixed(1)?, h: fixed(2)?, w: fixed(3)? },
        2 => Input::Features(fixed(1)?),
        r => bail!(
            "the graph input `{}` has {r} dimensions; expected (N, C, H, W) images or (N, F) features",
            input.name
        ),
    };
    Ok((input.name.clone(), shape))
}

/// Maps `model` onto a description named `name` with the head `loss` (see [`super::import`]).
pub(super) fn import(model: &ModelProto, name: &str, loss: Loss) -> Result<Imported> {
    let graph = model.graph.as_ref().ok_or_else(|| anyhow!("the model has no graph"))?;
    let mut constants: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut transposes: HashMap<&str, &TensorProto> = HashMap::new();
    // constant values: Constant nodes, and Identity / Transpose of a constant (PyTorch's exporter
    // writes an Identity for a tensor that equals another)
    for node in &graph.node {
        let first = node.input.first().and_then(|i| constants.get(i.as_str()).copied());
        match (node.op_type.as_str(), node.output.first()) {
            ("Constant", Some(out)) => {
                if let Some(t) = tensor::attribute(node, "value").and_then(|a| a.t.as_ref()) {
                    constants.insert(out, t);
                }
            }
            ("Identity", Some(out)) if first.is_some() => {
                constants.insert(out, first.expect("checked"));
            }
            ("Transpose", Some(out)) if first.is_some() => {
                let perm = ints_attr(node, "perm").unwrap_or(&[1, 0]);
                if perm == [1, 0] {
                    transposes.insert(out, first.expect("checked"));
                }
            }
            _ => {}
        }
    }
    let (mut current, input) = input_of(graph, &constants)?;
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for i in graph.node.iter().flat_map(|n| &n.input) {
        *uses.entry(i.as_str()).or_default() += 1;
    }
    let mut walk = Walk {
        constants,
        layers: Vec::new(),
        params: Vec::new(),
        shape: match input {
            Input::Image { c, h, w } => Shape::Image { c, h, w },
            i => Shape::Features(match i {
                Input::Features(n) => n,
                _ => unreachable!(),
            }),
        },
        open_matmul: false,
    };
    let ends = |node: &NodeProto| graph.output.iter().any(|o| node.output.first() == Some(&o.name));
    for node in &graph.node {
        let is_constant = node.output.first().is_some_and(|o| walk.constants.contains_key(o.as_str()))
            || node.output.first().is_some_and(|o| transposes.contains_key(o.as_str()));
        if is_constant {
            continue;
        }
        let label = node_label(node);
        let data: Vec<&String> = node
            .input
            .iter()
            .filter(|i| !i.is_empty() && walk.constant(i).is_none() && !transposes.contains_key(i.as_str()))
            .collect();
        if data.len() != 1 || *data[0] != current {
            bail!(
                "{label} takes {} as its data input{}; losscape maps a chain of layers (each node taking the \
                 previous one's output), and branches, residual additions and multi-input nodes are not supported",
                if data.is_empty() {
                    "nothing".to_string()
                } else {
                    data.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(" and ")
                },
                if data.len() == 1 { format!(" instead of `{current}`, the chain's value") } else { String::new() }
            );
        }
        if uses.get(current.as_str()).copied().unwrap_or(0) > 1 {
            let users: Vec<String> = graph.node.iter().filter(|n| n.input.contains(&current)).map(node_label).collect();
            bail!(
                "the value `{current}` feeds {} nodes ({}): the graph branches, and only a chain of layers is \
                 mapped (no residual additions, no concatenations)",
                users.len(),
                users.join(", ")
            );
        }
        let act = |a| LayerKind::Act(a);
        match node.op_type.as_str() {
            "Gemm" => walk.gemm(node)?,
            "MatMul" => walk.matmul(node, &transposes)?,
            "Add" => walk.add(node, &current)?,
            "Conv" => walk.conv(node)?,
            "MaxPool" => walk.pool(node, true)?,
            "AveragePool" => walk.pool(node, false)?,
            "Relu" => walk.push(act(Activation::Relu), None, node)?,
            "Sigmoid" if loss == Loss::SigmoidMse && ends(node) => {} // the head applies it
            "Sigmoid" => walk.push(act(Activation::Sigmoid), None, node)?,
            "Tanh" => walk.push(act(Activation::Tanh), None, node)?,
            "Softplus" => walk.push(act(Activation::Softplus), None, node)?,
            "Flatten" | "Reshape" => walk.flatten(node)?,
            "Identity" | "Dropout" => {}
            // log_softmax before the cross-entropy changes nothing: CE(log_softmax(x)) = CE(x)
            "LogSoftmax" if loss == Loss::CrossEntropy && ends(node) => {
                let axis = int_or(node, "axis", -1);
                if axis != -1 && axis != 1 {
                    bail!("{label}: LogSoftmax over axis {axis} is not the classes' axis (1 or -1)");
                }
            }
            "LSTM" => bail!(
                "{label}: LSTM is not mapped yet (ONNX's LSTM packs PyTorch's weight_ih/weight_hh in another gate \
                 order under new names); describe the network in a .toml file (docs/networks.md §7) and load \
                 its state_dict from safetensors"
            ),
            "BatchNormalization" => bail!(
                "{label}: BatchNormalization is not supported (the vocabulary has no normalisation layers; \
                 fold it into the convolution before export, or describe the network without it). Supported \
                 operators: {}",
                SUPPORTED.join(", ")
            ),
            op => {
                bail!("{label}: operator {op} is not supported; the supported operators are: {}", SUPPORTED.join(", "))
            }
        }
        current = node.output.first().cloned().unwrap_or_default();
    }
    if !graph.output.iter().any(|o| o.name == current) || graph.output.len() != 1 {
        let outs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        bail!("the graph's output ({}) is not the end of its chain of layers (`{current}`); only one output, the last layer's, is mapped", outs.join(", "));
    }
    let head = match loss {
        Loss::CrossEntropy => match walk.shape {
            Shape::Features(classes) => Head::CrossEntropy { classes },
            s => bail!(
                "the graph ends in {s}; the cross-entropy head needs a vector of logits (flatten and a linear layer)"
            ),
        },
        Loss::SigmoidMse => Head::SigmoidMse,
    };
    // each parameter layer is named by its weight's prefix, unless that is its index in the layer list
    let mut sources = Vec::new();
    for (index, (layer, params)) in walk.layers.iter_mut().zip(&walk.params).enumerate() {
        let Some(p) = params else { continue };
        let prefix = p.weight.strip_suffix(".weight").expect("checked by prefix_of");
        if prefix != index.to_string() {
            layer.name = Some(prefix.to_string());
        }
        sources.push(Source { name: p.weight.clone(), transposed: p.weight_transposed });
        if let Some(b) = &p.bias {
            sources.push(Source { name: b.clone(), transposed: false });
        }
    }
    let description = Description {
        format: *FORMAT_VERSIONS.last().expect("a format version"),
        name: Some(name.to_string()),
        input,
        layers: walk.layers,
        head,
    };
    let derived = description.derive().map_err(|e| anyhow!("the mapped network does not derive: {e}"))?;
    for (p, s) in derived.params.iter().zip(&sources) {
        if p.name != s.name {
            bail!(
                "the initializer `{}` cannot be matched to a state_dict name: the network's layer {} names its \
                 tensor `{}` (a bias must be named `<module>.bias` beside `<module>.weight`)",
                s.name,
                p.layer,
                p.name
            );
        }
    }
    Ok(Imported { description, sources })
}
