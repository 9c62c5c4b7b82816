//! An ONNX graph mapped onto the description vocabulary: one chain of nodes from the graph's input to
//! its output, each node one layer (or none, for the inference no-ops and the constants), the
//! parameters found by their initializer names (else their node's module scope). An LSTM and the
//! values around it are mapped by `recurrent.rs`.
//!
//! Source: the ONNX operator specification (onnx/onnx `docs/Operators.md`) for each operator's
//! attributes and defaults; PyTorch's `torch.onnx.export` (TorchScript exporter) for the naming.

use anyhow::{anyhow, bail, Result};
use onnx_protobuf::{GraphProto, ModelProto, NodeProto, TensorProto};
use std::collections::HashMap;

use super::array::{Array, Dim};
use super::fold::Folder;
use super::tensor::{self, float_or, int_or, ints_attr, node_label, string_or};
use super::{Imported, Loss, Origin, Source, SUPPORTED};
use crate::model::description::{Activation, Description, Head, Input, Layer, LayerKind, Shape, FORMAT_VERSIONS};

/// A parameter layer's tensors, before the layer's index is known.
pub(super) struct Params {
    /// The module's name: the `state_dict` prefix of its tensors (`fc1` of `fc1.weight`).
    pub module: String,
    /// Where each of its tensors comes from, in `state_dict` order.
    pub tensors: Vec<Origin>,
}

/// The walk along the chain: the layers so far, the shape of the current value, the parameters.
pub(super) struct Walk<'g> {
    pub folder: Folder<'g>,
    /// What the network reads: the graph's input (an LSTM turns it into rows).
    pub input: Input,
    pub layers: Vec<Layer>,
    pub params: Vec<Option<Params>>,
    pub shape: Shape,
    /// Whether the last layer is a MatMul's dense layer still without its bias (an Add may follow).
    open_matmul: bool,
    /// In a graph with an LSTM, until its last hidden state is taken: what each element of the
    /// current value is.
    pub tracked: Option<Tracked>,
    /// How many nodes read each value (Shape nodes, which read only its shape, not counted), and
    /// the graph's outputs.
    pub uses: HashMap<&'g str, usize>,
    pub outputs: Vec<&'g str>,
}

/// What each element of the current value is, around an LSTM (one image's elements, row-major).
pub(super) enum Tracked {
    /// Before it: the index of the pixel it holds in the flattened input image; the Gather node
    /// that reordered them, if one did.
    Pixels { array: Array<u32>, reordered_by: Option<String> },
    /// After it: step · hidden + unit of the hidden state it holds.
    Hidden { array: Array<u32>, steps: usize, hidden: usize },
}

/// The scope PyTorch's exporter names a node with, which is its module's name: `/gru/LSTM` → `gru`,
/// `/enc/enc.2/enc.2.1/Gemm` → `enc.2.1` (each level of the scope is a module's full name).
pub(super) fn scope(node: &NodeProto) -> Option<&str> {
    let mut parts = node.name.rsplit('/');
    parts.next()?;
    parts.next().filter(|s| !s.is_empty())
}

/// The module a parameter tensor belongs to: `<module>` of an initializer named `<module>.<suffix>`
/// (the `state_dict` name, which `do_constant_folding=False` keeps); else, for an initializer that
/// constant folding renamed (`onnx::MatMul_12`), the node's scope.
///
/// Errors: neither gives a name.
fn module_of(name: &str, suffix: &str, node: &NodeProto) -> Result<String> {
    if let Some(m) = name.strip_suffix(suffix).and_then(|p| p.strip_suffix('.')).filter(|p| !p.is_empty()) {
        return Ok(m.to_string());
    }
    scope(node).map(str::to_string).ok_or_else(|| {
        anyhow!(
            "{}: its parameter `{name}` is not named `<module>.{suffix}` as in PyTorch's state_dict, and the node \
             has no module scope (`/<module>/{}`) to name it by, so checkpoints cannot be matched to it; export \
             with torch.onnx.export(model, x, path, dynamo=False, do_constant_folding=False), which keeps the \
             state_dict names",
            node_label(node),
            node.op_type
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
    pub(super) fn push(&mut self, kind: LayerKind, params: Option<Params>, node: &NodeProto) -> Result<()> {
        let layer = Layer::new(kind);
        // the shape after the layer, checked as a description checks it
        let d = Description {
            format: FORMAT_VERSIONS[0],
            name: None,
            input: match self.shape {
                Shape::Image { c, h, w } => Input::Image { c, h, w },
                Shape::Sequence { steps, features } => Input::Rows { c: 1, h: steps, w: features, permute_seed: None },
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

    /// `node`'s optional bias (input 2) of the layer `module`, checked to hold one value per output
    /// (`out`).
    ///
    /// Errors: the bias is not an initializer, has another shape, or is named as another module's.
    fn bias(&self, node: &NodeProto, index: usize, out: usize, module: &str) -> Result<Option<Origin>> {
        if node.input.get(index).is_none_or(|n| n.is_empty()) {
            return Ok(None);
        }
        let (b, shape) = self.parameter(node, index, "bias")?;
        if shape != [out] && shape != [1, out] {
            bail!("{}: bias `{}` has shape {shape:?}; expected [{out}] (one per output)", node_label(node), b.name);
        }
        if let Some(other) = b.name.strip_suffix(".bias").filter(|m| *m != module) {
            bail!(
                "{}: the bias `{}` cannot be matched to a state_dict name: it is named as module `{other}`'s, its \
                 weight as module `{module}`'s (a bias must be named `<module>.bias` beside `<module>.weight`)",
                node_label(node),
                b.name
            );
        }
        Ok(Some(Origin::Initializer { name: b.name.clone(), transposed: false }))
    }

    /// A float parameter input of `node` (an initializer), with its shape.
    fn parameter(&self, node: &NodeProto, index: usize, what: &str) -> Result<(&'g TensorProto, Vec<usize>)> {
        let name = node.input.get(index).filter(|n| !n.is_empty());
        let t = name.and_then(|n| self.folder.tensor(n)).ok_or_else(|| {
            anyhow!(
                "{}: its {what} is not an initializer (a constant tensor); only fixed weights are mapped",
                node_label(node)
            )
        })?;
        Ok((t, tensor::dims(t)?))
    }

    /// A layer with a weight initializer (as PyTorch's, not transposed) and an optional bias input.
    fn weighted(&mut self, node: &NodeProto, w: &TensorProto, kind: LayerKind, out: usize) -> Result<()> {
        let module = module_of(&w.name, "weight", node)?;
        let bias = self.bias(node, 2, out, &module)?;
        let kind = match kind {
            LayerKind::Dense { out, .. } => LayerKind::Dense { out, bias: bias.is_some() },
            LayerKind::Conv2d { out, kernel, stride, padding, .. } => {
                LayerKind::Conv2d { out, kernel, stride, padding, bias: bias.is_some() }
            }
            k => k,
        };
        let tensors = std::iter::once(Origin::Initializer { name: w.name.clone(), transposed: false }).chain(bias);
        self.push(kind, Some(Params { module, tensors: tensors.collect() }), node)
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
        self.weighted(node, w, LayerKind::Dense { out: shape[0], bias: false }, shape[0])
    }

    fn matmul(&mut self, node: &NodeProto) -> Result<()> {
        let label = node_label(node);
        let Shape::Features(inp) = self.shape else {
            bail!("{label}: a MatMul on {}; flatten it first", self.shape);
        };
        let b = node.input.get(1).map_or("", String::as_str);
        // x · Wᵀ with W (out, in) the state_dict's, or x · K with K (in, out) stored transposed
        let (w, transposed) = match (self.folder.transpose_of(b), self.folder.tensor(b)) {
            (Some(w), _) => (w, false),
            (None, Some(k)) => (k, true),
            _ => bail!("{label}: its second input is not an initializer; only fixed weights are mapped"),
        };
        let shape = tensor::dims(w)?;
        let out = match (transposed, shape.as_slice()) {
            (false, [out, i]) if *i == inp => *out,
            (true, [i, out]) if *i == inp => *out,
            _ => bail!("{label}: weight `{}` has shape {shape:?}, which does not take {inp} features", w.name),
        };
        let module = module_of(&w.name, "weight", node)?;
        let params = Params { module, tensors: vec![Origin::Initializer { name: w.name.clone(), transposed }] };
        self.push(LayerKind::Dense { out, bias: false }, Some(params), node)?;
        self.open_matmul = true;
        Ok(())
    }

    /// An Add after a MatMul: the dense layer's bias.
    fn add(&mut self, node: &NodeProto, current: &str) -> Result<()> {
        let label = node_label(node);
        let other = node.input.iter().position(|i| i != current).unwrap_or(0);
        let last = self.layers.len().wrapping_sub(1);
        let dense = match self.layers.last().map(|l| l.kind) {
            Some(LayerKind::Dense { out, .. }) if self.open_matmul && node.input.len() == 2 => Some(out),
            _ => None,
        };
        let bias = match (dense, self.params.get(last).and_then(Option::as_ref)) {
            (Some(out), Some(p)) if self.folder.tensor(&node.input[other]).is_some() => {
                self.bias(node, other, out, &p.module)?
            }
            _ => None,
        };
        let (Some(out), Some(bias)) = (dense, bias) else {
            bail!(
                "{label}: an Add is mapped only as the bias of the MatMul before it (MatMul + Add = a linear \
                 layer); residual additions and other sums are not supported"
            );
        };
        self.layers[last].kind = LayerKind::Dense { out, bias: true };
        if let Some(p) = self.params[last].as_mut() {
            p.tensors.push(bias);
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
        self.weighted(node, w, LayerKind::Conv2d { out: shape[0], kernel, stride, padding, bias: false }, shape[0])
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
            // a constant shape, or one computed from the batch size (`x.view(x.size(0), -1)`)
            let dims = node.input.get(1).and_then(|s| self.folder.batch_shape(s)).ok_or_else(|| {
                anyhow!(
                    "{label}: a Reshape is mapped only with a constant shape (an initializer or Constant node) or \
                     (batch size, -1) as `x.view(x.size(0), -1)` exports it"
                )
            })?;
            let flattens = match dims.as_slice() {
                [None, Some(d)] => *d == -1 || *d == n,
                [Some(b), Some(d)] if *d == n => *b == -1 || *b >= 0,
                [Some(b), Some(-1)] => *b >= 0,
                _ => false,
            };
            if !flattens {
                let shown: Vec<String> = dims.iter().map(|d| d.map_or("batch".into(), |v| v.to_string())).collect();
                bail!(
                    "{label}: a Reshape to [{}] is not a flatten of {} (to (batch, {n})); only flattening is mapped",
                    shown.join(", "),
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

/// The graph's one data input as a description input: (N, C, H, W) an image, (N, F) features, and
/// with an LSTM (`sequence`) also (N, T, F), T rows of F values; with the graph's dimensions.
fn input_of(graph: &GraphProto, folder: &Folder, sequence: bool) -> Result<(String, Input, Vec<Dim>)> {
    let inputs: Vec<_> = graph.input.iter().filter(|i| !folder.is_constant(&i.name)).collect();
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
        3 if sequence => Input::Rows { c: 1, h: fixed(1)?, w: fixed(2)?, permute_seed: None },
        2 => Input::Features(fixed(1)?),
        r => bail!(
            "the graph input `{}` has {r} dimensions; expected (N, C, H, W) images or (N, F) features{}",
            input.name,
            if sequence { " or (N, T, F) sequences" } else { "" }
        ),
    };
    let graph_dims = std::iter::once(Ok(Dim::Batch))
        .chain((1..dims.len()).map(|i| fixed(i).map(Dim::Size)))
        .collect::<Result<_>>()?;
    Ok((input.name.clone(), shape, graph_dims))
}

/// The values an input gives per image.
fn values(input: Input) -> usize {
    match input {
        Input::Image { c, h, w } | Input::Rows { c, h, w, .. } => c * h * w,
        Input::Features(n) => n,
    }
}

/// Maps `model` onto a description named `name` with the head `loss` (see [`super::import`]).
pub(super) fn import(model: &ModelProto, name: &str, loss: Loss) -> Result<Imported> {
    let graph = model.graph.as_ref().ok_or_else(|| anyhow!("the model has no graph"))?;
    let folder = Folder::new(graph);
    let has_lstm = graph.node.iter().any(|n| n.op_type == "LSTM");
    let (mut current, input, dims) = input_of(graph, &folder, has_lstm)?;
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for i in graph.node.iter().filter(|n| n.op_type != "Shape").flat_map(|n| &n.input) {
        *uses.entry(i.as_str()).or_default() += 1;
    }
    let pixels = values(input);
    let mut walk = Walk {
        folder,
        input,
        layers: Vec::new(),
        params: Vec::new(),
        shape: match input {
            Input::Image { c, h, w } => Shape::Image { c, h, w },
            i => Shape::Features(values(i)),
        },
        open_matmul: false,
        tracked: has_lstm.then(|| Tracked::Pixels {
            array: Array { dims, values: (0..pixels as u32).collect() },
            reordered_by: None,
        }),
        uses,
        outputs: graph.output.iter().map(|o| o.name.as_str()).collect(),
    };
    let ends = |node: &NodeProto| graph.output.iter().any(|o| node.output.first() == Some(&o.name));
    for node in &graph.node {
        if node.output.first().is_some_and(|o| walk.folder.is_fixed(o)) {
            continue; // a constant, or computed from the images' shape only
        }
        let label = node_label(node);
        // an LSTM's other inputs (weights, states) are checked as such by Walk::lstm
        let data: Vec<&String> = if node.op_type == "LSTM" {
            node.input.iter().take(1).collect()
        } else {
            node.input.iter().filter(|i| !i.is_empty() && !walk.folder.is_fixed(i)).collect()
        };
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
        if walk.uses.get(current.as_str()).copied().unwrap_or(0) > 1 {
            let users: Vec<String> = graph
                .node
                .iter()
                .filter(|n| n.op_type != "Shape" && n.input.contains(&current))
                .map(node_label)
                .collect();
            bail!(
                "the value `{current}` feeds {} nodes ({}): the graph branches, and only a chain of layers is \
                 mapped (no residual additions, no concatenations)",
                users.len(),
                users.join(", ")
            );
        }
        if let Some(next) = walk.track(node)? {
            current = next;
            continue;
        }
        let act = |a| LayerKind::Act(a);
        match node.op_type.as_str() {
            "Gemm" => walk.gemm(node)?,
            "MatMul" => walk.matmul(node)?,
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
            "LogSoftmax" if ends(node) => {
                let axis = int_or(node, "axis", -1);
                if axis != -1 && axis != 1 {
                    bail!("{label}: LogSoftmax over axis {axis} is not the classes' axis (1 or -1)");
                }
                if loss != Loss::CrossEntropy {
                    bail!(
                        "{label}: the graph ends in LogSoftmax, so its head is cross-entropy; the mse-sigmoid head \
                         does not apply (leave out --loss, or give --loss cross-entropy)"
                    );
                }
            }
            "LSTM" => bail!(
                "{label}: a second LSTM; one LSTM layer (nn.LSTM with num_layers = 1) is mapped, not stacked ones"
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
    walk.finish_tracking("the graph's output")?;
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
    // each parameter layer is named by its module, unless that is its index in the layer list
    for (index, (layer, params)) in walk.layers.iter_mut().zip(&walk.params).enumerate() {
        if let Some(p) = params.as_ref().filter(|p| p.module != index.to_string()) {
            layer.name = Some(p.module.clone());
        }
    }
    let description = Description {
        format: *FORMAT_VERSIONS.last().expect("a format version"),
        name: Some(name.to_string()),
        input: walk.input,
        layers: walk.layers,
        head,
    };
    let derived = description.derive().map_err(|e| anyhow!("the mapped network does not derive: {e}"))?;
    let origins: Vec<Origin> = walk.params.into_iter().flatten().flat_map(|p| p.tensors).collect();
    if origins.len() != derived.params.len() {
        bail!("the mapped network has {} parameter tensors, the graph {}", derived.params.len(), origins.len());
    }
    let sources =
        derived.params.iter().zip(origins).map(|(p, origin)| Source { name: p.name.clone(), origin }).collect();
    Ok(Imported { description, sources })
}
