//! A description and one weight vector written as an ONNX model (opset 17): each layer one node as
//! PyTorch's exporter writes it (`Gemm` with transB = 1, `Conv`, `MaxPool`, `AveragePool`, `Flatten`,
//! the activations; an `LSTM` over the image's rows, after a `Gather` that permutes the pixels when the
//! input has a `permute_seed`, its weights reordered to ONNX's gate order by `Gather` nodes), the
//! parameters as initializers under their `state_dict` names, the batch dimension free. The head is not part of the graph, except the autoencoder's sigmoid (its output is
//! the reconstruction); the description's name and head ride in the model's metadata so that
//! [`super::import`] gives the same description back.
//!
//! Source: the ONNX operator specification (onnx/onnx `docs/Operators.md`), opset 17.

use anyhow::{bail, Result};
use onnx_protobuf::{
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, Message, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use std::collections::HashMap;

use super::tensor::{float_attribute, float_tensor, int_attribute, int_tensor, ints_attribute};
use super::{GATES, META_HEAD, META_NAME};
use crate::model::description::{Activation, Description, Head, Input, LayerKind};
use crate::model::permutation::randperm;

/// The opset the exported models declare.
pub const OPSET: i64 = 17;

/// A FLOAT tensor's type with a free batch dimension and then `dims`.
fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    let mut batch = Dimension::new();
    batch.set_dim_param("batch".into());
    shape.dim.push(batch);
    for &d in dims {
        let mut dim = Dimension::new();
        dim.set_dim_value(d as i64);
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = onnx_protobuf::tensor_proto::DataType::FLOAT as i32;
    tensor.shape = Some(shape).into();
    let mut t = TypeProto::new();
    t.set_tensor_type(tensor);
    let mut v = ValueInfoProto::new();
    v.name = name.to_string();
    v.type_ = Some(t).into();
    v
}

fn meta(key: &str, value: &str) -> StringStringEntryProto {
    let mut e = StringStringEntryProto::new();
    e.key = key.to_string();
    e.value = value.to_string();
    e
}

/// A graph being written: its nodes in order, and the value the chain of layers has reached.
struct Writer {
    graph: GraphProto,
    current: String,
    /// Nodes per name so far, so that a second `/scope/Op` becomes `/scope/Op_1` (as PyTorch names them).
    names: HashMap<String, usize>,
}

impl Writer {
    /// A new node `/{scope}/{op}` (its output `…_output_0`).
    fn node(&mut self, op: &str, scope: &str, inputs: Vec<String>, attributes: Vec<AttributeProto>) -> NodeProto {
        let base = format!("/{scope}/{op}");
        let count = self.names.entry(base.clone()).or_default();
        let mut n = NodeProto::new();
        n.name = if *count == 0 { base } else { format!("{base}_{count}") };
        *count += 1;
        n.op_type = op.to_string();
        n.input = inputs;
        n.output = vec![format!("{}_output_0", n.name)];
        n.attribute = attributes;
        n
    }

    /// A node on the chain: it takes the chain's value (and `inputs`), and its output is the next.
    fn chain(&mut self, op: &str, scope: &str, inputs: Vec<String>, attributes: Vec<AttributeProto>) {
        let all = std::iter::once(self.current.clone()).chain(inputs).collect();
        let n = self.node(op, scope, all, attributes);
        self.current = n.output[0].clone();
        self.graph.node.push(n);
    }

    /// A node off the chain (a weight's reordering); its output's name.
    fn side(&mut self, op: &str, scope: &str, inputs: Vec<String>, attributes: Vec<AttributeProto>) -> String {
        let n = self.node(op, scope, inputs, attributes);
        let out = n.output[0].clone();
        self.graph.node.push(n);
        out
    }

    /// An INT64 initializer (a shape, axes or indices); its name.
    fn ints(&mut self, name: String, values: &[i64]) -> String {
        self.graph.initializer.push(int_tensor(&name, &[values.len()], values));
        name
    }

    /// The image reordered as an ONNX LSTM reads it, (steps, batch, features): flattened and permuted
    /// by a Gather when `permute_seed` is set, cut into rows (row s of every channel), time first.
    fn rows(&mut self, c: usize, h: usize, w: usize, permute_seed: Option<u32>) {
        let (c, h, w) = (c as i64, h as i64, w as i64);
        let reshape = |wr: &mut Writer, shape: &[i64]| {
            let s = wr.ints(format!("/input/shape_{}", wr.graph.node.len()), shape);
            wr.chain("Reshape", "input", vec![s], Vec::new());
        };
        if let Some(seed) = permute_seed {
            reshape(self, &[-1, c * h * w]);
            let perm: Vec<i64> = randperm((c * h * w) as usize, seed).into_iter().map(|p| p as i64).collect();
            let indices = self.ints("/input/permutation".into(), &perm);
            self.chain("Gather", "input", vec![indices], vec![int_attribute("axis", 1)]);
        }
        if c == 1 {
            reshape(self, &[-1, h, w]);
        } else {
            reshape(self, &[-1, c, h, w]);
            self.chain("Transpose", "input", Vec::new(), vec![ints_attribute("perm", &[0, 2, 1, 3])]);
            reshape(self, &[-1, h, c * w]);
        }
        self.chain("Transpose", "input", Vec::new(), vec![ints_attribute("perm", &[1, 0, 2])]);
    }

    /// An LSTM layer named `scope` over the chain's rows, its tensors the initializers `params`
    /// (`weight_ih_l0`, `weight_hh_l0`, then the biases if any): Gather nodes reorder their gates to
    /// ONNX's, as PyTorch's exporter does with Slices; the chain continues with the last hidden state.
    fn lstm(&mut self, scope: &str, hidden: usize, params: &[String]) {
        let order: Vec<i64> = GATES.iter().flat_map(|&k| (k * hidden..(k + 1) * hidden).map(|r| r as i64)).collect();
        let order = self.ints(format!("/{scope}/gate_order"), &order);
        let axes = self.ints(format!("/{scope}/axes_0"), &[0]);
        let gates = |wr: &mut Writer, name: &String| {
            wr.side("Gather", scope, vec![name.clone(), order.clone()], vec![int_attribute("axis", 0)])
        };
        let (w, r) = (gates(self, &params[0]), gates(self, &params[1]));
        let mut inputs = vec![w, r];
        if params.len() == 4 {
            let both = vec![gates(self, &params[2]), gates(self, &params[3])];
            inputs.push(self.side("Concat", scope, both, vec![int_attribute("axis", 0)]));
        }
        let inputs =
            inputs.into_iter().map(|i| self.side("Unsqueeze", scope, vec![i, axes.clone()], Vec::new())).collect();
        self.chain("LSTM", scope, inputs, vec![int_attribute("hidden_size", hidden as i64)]);
        // Y (every step) and Y_h (the last step): the chain takes Y_h, (1, batch, hidden) squeezed
        let last = self.graph.node.last_mut().expect("the LSTM node");
        last.output.push(last.output[0].replace("_output_0", "_output_1"));
        self.current = last.output[1].clone();
        self.chain("Squeeze", scope, vec![axes], Vec::new());
    }
}

/// The bytes of an ONNX model of `description` holding `vector` (its flat weights, in
/// [`Description::derive`]'s order).
///
/// Errors: a description that does not derive; a vector of the wrong length; a sequence input whose
/// first layer is not its `lstm`.
pub fn export(description: &Description, vector: &[f32]) -> Result<Vec<u8>> {
    let derived = description.derive()?;
    if vector.len() != derived.n_params() {
        bail!("the weight vector has {} values; the network has {} parameters", vector.len(), derived.n_params());
    }
    let input_dims = match description.input {
        Input::Image { c, h, w } | Input::Rows { c, h, w, .. } => vec![c, h, w],
        Input::Features(n) => vec![n],
    };
    let mut wr = Writer { graph: GraphProto::new(), current: "image".into(), names: HashMap::new() };
    wr.graph.name = description.name.clone().unwrap_or_else(|| "losscape".into());
    wr.graph.input.push(value_info("image", &input_dims));
    let mut offset = 0;
    for p in &derived.params {
        wr.graph.initializer.push(float_tensor(&p.name, &p.shape, &vector[offset..offset + p.len()]));
        offset += p.len();
    }
    if let Input::Rows { c, h, w, permute_seed } = description.input {
        if !matches!(description.layers.first().map(|l| l.kind), Some(LayerKind::Lstm { .. })) {
            bail!("a network over image rows is exported with its lstm as the first layer");
        }
        wr.rows(c, h, w, permute_seed);
    }
    let params_of = |index: usize| derived.params.iter().filter(|p| p.layer == index).map(|p| p.name.clone()).collect();
    for (i, layer) in description.layers.iter().enumerate() {
        let scope = i.to_string();
        match layer.kind {
            LayerKind::Dense { .. } => wr.chain(
                "Gemm",
                &scope,
                params_of(i),
                vec![float_attribute("alpha", 1.0), float_attribute("beta", 1.0), int_attribute("transB", 1)],
            ),
            LayerKind::Conv2d { kernel, stride, padding, .. } => {
                let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
                wr.chain(
                    "Conv",
                    &scope,
                    params_of(i),
                    vec![
                        ints_attribute("dilations", &[1, 1]),
                        int_attribute("group", 1),
                        ints_attribute("kernel_shape", &[k, k]),
                        ints_attribute("pads", &[p, p, p, p]),
                        ints_attribute("strides", &[s, s]),
                    ],
                )
            }
            LayerKind::MaxPool { kernel, stride } | LayerKind::AvgPool { kernel, stride } => {
                let (k, s) = (kernel as i64, stride as i64);
                let op = if matches!(layer.kind, LayerKind::MaxPool { .. }) { "MaxPool" } else { "AveragePool" };
                wr.chain(
                    op,
                    &scope,
                    Vec::new(),
                    vec![
                        int_attribute("ceil_mode", 0),
                        ints_attribute("kernel_shape", &[k, k]),
                        ints_attribute("pads", &[0, 0, 0, 0]),
                        ints_attribute("strides", &[s, s]),
                    ],
                )
            }
            LayerKind::Flatten => wr.chain("Flatten", &scope, Vec::new(), vec![int_attribute("axis", 1)]),
            LayerKind::Act(a) => wr.chain(op_of(a), &scope, Vec::new(), Vec::new()),
            LayerKind::Lstm { hidden, .. } => {
                let params: Vec<String> = params_of(i);
                wr.lstm(layer.name.as_deref().unwrap_or(&scope), hidden, &params)
            }
        }
    }
    let head = match description.head {
        Head::CrossEntropy { .. } => "cross_entropy",
        Head::SigmoidMse => {
            wr.chain("Sigmoid", &description.layers.len().to_string(), Vec::new(), Vec::new());
            "sigmoid_mse"
        }
    };
    let mut graph = wr.graph;
    let last = graph.node.last_mut().expect("a description has layers");
    last.output[0] = "output".into();
    let out_len = derived.outputs.last().expect("a description has layers").len();
    graph.output.push(value_info("output", &[out_len]));
    let mut model = ModelProto::new();
    model.ir_version = 8;
    model.producer_name = "losscape".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    let mut opset = OperatorSetIdProto::new();
    opset.version = OPSET;
    model.opset_import.push(opset);
    if let Some(name) = &description.name {
        model.metadata_props.push(meta(META_NAME, name));
    }
    model.metadata_props.push(meta(META_HEAD, head));
    model.graph = Some(graph).into();
    Ok(model.write_to_bytes()?)
}

/// The ONNX operator of an activation.
fn op_of(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "Relu",
        Activation::Softplus => "Softplus",
        Activation::Sigmoid => "Sigmoid",
        Activation::Tanh => "Tanh",
    }
}
