//! A description and one weight vector written as an ONNX model (opset 17): each layer one node as
//! PyTorch's exporter writes it (`Gemm` with transB = 1, `Conv`, `MaxPool`, `AveragePool`, `Flatten`,
//! the activations), the parameters as initializers under their `state_dict` names, the batch
//! dimension free. The head is not part of the graph, except the autoencoder's sigmoid (its output is
//! the reconstruction); the description's name and head ride in the model's metadata so that
//! [`super::import`] gives the same description back.
//!
//! Source: the ONNX operator specification (onnx/onnx `docs/Operators.md`), opset 17.

use anyhow::{bail, Result};
use onnx_protobuf::{
    tensor_shape_proto::Dimension, type_proto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::tensor::{float_attribute, float_tensor, int_attribute, ints_attribute};
use super::{META_HEAD, META_NAME};
use crate::model::description::{Activation, Description, Head, Input, LayerKind};

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

/// The bytes of an ONNX model of `description` holding `vector` (its flat weights, in
/// [`Description::derive`]'s order).
///
/// Errors: a description that does not derive; a vector of the wrong length; an LSTM layer or a
/// sequence input (not exported: ONNX's LSTM packs the weights differently).
pub fn export(description: &Description, vector: &[f32]) -> Result<Vec<u8>> {
    let derived = description.derive()?;
    if vector.len() != derived.n_params() {
        bail!("the weight vector has {} values; the network has {} parameters", vector.len(), derived.n_params());
    }
    let input_dims = match description.input {
        Input::Image { c, h, w } => vec![c, h, w],
        Input::Features(n) => vec![n],
        Input::Rows { .. } => bail!("a network over image rows (an LSTM) is not exported to ONNX yet"),
    };
    let mut graph = GraphProto::new();
    graph.name = description.name.clone().unwrap_or_else(|| "losscape".into());
    graph.input.push(value_info("image", &input_dims));
    let mut offset = 0;
    for p in &derived.params {
        graph.initializer.push(float_tensor(&p.name, &p.shape, &vector[offset..offset + p.len()]));
        offset += p.len();
    }
    let mut current = "image".to_string();
    let mut node = |op: &str, index: usize, inputs: Vec<String>, attributes| {
        let mut n = NodeProto::new();
        n.op_type = op.to_string();
        n.name = format!("/{index}/{op}");
        n.input = std::iter::once(current.clone()).chain(inputs).collect();
        n.output = vec![format!("/{index}/{op}_output_0")];
        n.attribute = attributes;
        current = n.output[0].clone();
        n
    };
    let params_of = |index: usize| derived.params.iter().filter(|p| p.layer == index).map(|p| p.name.clone()).collect();
    let mut nodes = Vec::new();
    for (i, layer) in description.layers.iter().enumerate() {
        nodes.push(match layer.kind {
            LayerKind::Dense { .. } => node(
                "Gemm",
                i,
                params_of(i),
                vec![float_attribute("alpha", 1.0), float_attribute("beta", 1.0), int_attribute("transB", 1)],
            ),
            LayerKind::Conv2d { kernel, stride, padding, .. } => {
                let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
                node(
                    "Conv",
                    i,
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
                node(
                    op,
                    i,
                    Vec::new(),
                    vec![
                        int_attribute("ceil_mode", 0),
                        ints_attribute("kernel_shape", &[k, k]),
                        ints_attribute("pads", &[0, 0, 0, 0]),
                        ints_attribute("strides", &[s, s]),
                    ],
                )
            }
            LayerKind::Flatten => node("Flatten", i, Vec::new(), vec![int_attribute("axis", 1)]),
            LayerKind::Act(a) => node(op_of(a), i, Vec::new(), Vec::new()),
            LayerKind::Lstm { .. } => bail!("layer {i} (lstm): LSTM layers are not exported to ONNX yet"),
        });
    }
    let head = match description.head {
        Head::CrossEntropy { .. } => "cross_entropy",
        Head::SigmoidMse => {
            nodes.push(node("Sigmoid", description.layers.len(), Vec::new(), Vec::new()));
            "sigmoid_mse"
        }
    };
    let last = nodes.last_mut().expect("a description has layers");
    last.output[0] = "output".into();
    graph.node = nodes;
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
