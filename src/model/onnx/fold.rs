//! The values of a graph that do not depend on the images' values: its constants (initializers,
//! `Constant` nodes and what shape operators and `Concat` compute from them alone — PyTorch's exporter
//! without constant folding writes an LSTM's weights as Slices and Concats of the `state_dict`
//! tensors), evaluated on demand; and the values that depend on the images only through their shape
//! (`Shape` nodes and what follows from them, such as the `ConstantOfShape` zeros the exporter gives an
//! LSTM as its initial state), which are not layers.
//!
//! Source: the ONNX operator specification (onnx/onnx `docs/Operators.md`), opset 17.

use anyhow::{anyhow, bail, Result};
use onnx_protobuf::{GraphProto, NodeProto, TensorProto};
use std::collections::HashMap;

use super::array::Array;
use super::tensor::{self, int_or, ints_attr, node_label};

/// The operators that only move values, which [`Folder::apply`] applies to an [`Array`].
pub const SHAPE_OPS: [&str; 8] =
    ["Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Slice"];

/// A graph's image-independent values (see the module documentation).
pub struct Folder<'g> {
    /// Initializers, `Constant` outputs and `Identity` of them, as tensors of the file.
    constants: HashMap<&'g str, &'g TensorProto>,
    /// Values computed from constants alone, by the node computing them.
    computed: HashMap<&'g str, &'g NodeProto>,
    /// Values that depend on the images only through their shape; a `ConstantOfShape`'s with its fill.
    shape_only: HashMap<&'g str, Option<f64>>,
    /// The node computing each value of `shape_only`.
    shape_nodes: HashMap<&'g str, &'g NodeProto>,
}

impl<'g> Folder<'g> {
    /// Classifies the values of `graph` (its nodes in their topological order, as ONNX requires).
    pub fn new(graph: &'g GraphProto) -> Folder<'g> {
        let mut f = Folder {
            constants: graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
            computed: HashMap::new(),
            shape_only: HashMap::new(),
            shape_nodes: HashMap::new(),
        };
        for node in &graph.node {
            let Some(out) = node.output.first().map(String::as_str) else { continue };
            let inputs: Vec<&str> = node.input.iter().map(String::as_str).filter(|i| !i.is_empty()).collect();
            let first = inputs.first().and_then(|i| f.constants.get(i).copied());
            let op = node.op_type.as_str();
            match op {
                "Constant" => {
                    if let Some(t) = tensor::attribute(node, "value").and_then(|a| a.t.as_ref()) {
                        f.constants.insert(out, t);
                    }
                }
                // PyTorch's exporter writes an Identity for a tensor equal to another: the same tensor
                "Identity" if first.is_some() => {
                    f.constants.insert(out, first.expect("checked"));
                }
                "Shape" => {
                    f.shape_only.insert(out, None);
                    f.shape_nodes.insert(out, node);
                }
                _ if !inputs.is_empty()
                    && inputs.iter().all(|i| f.is_constant(i))
                    && (SHAPE_OPS.contains(&op) || ["Concat", "ConstantOfShape", "Cast"].contains(&op)) =>
                {
                    f.computed.insert(out, node);
                }
                _ if inputs.iter().any(|i| f.shape_only.contains_key(i))
                    && inputs.iter().all(|i| f.is_constant(i) || f.shape_only.contains_key(i)) =>
                {
                    // a ConstantOfShape's fill, kept by what only moves values (a Slice of the zeros
                    // a stacked LSTM's layers share)
                    let fill = match op {
                        "ConstantOfShape" => f.fill(node),
                        _ if SHAPE_OPS.contains(&op) || op == "Cast" => f.shape_only.get(inputs[0]).copied().flatten(),
                        _ => None,
                    };
                    f.shape_only.insert(out, fill);
                    f.shape_nodes.insert(out, node);
                }
                _ => {}
            }
        }
        f
    }

    /// Whether `name` is a constant: a tensor of the file or computed from them.
    pub fn is_constant(&self, name: &str) -> bool {
        self.constants.contains_key(name) || self.computed.contains_key(name)
    }

    /// Whether `name` is not an image-dependent value: a constant, or a value of the images' shape only.
    pub fn is_fixed(&self, name: &str) -> bool {
        self.is_constant(name) || self.shape_only.contains_key(name)
    }

    /// The entries of a 1-D integer value computed from the images' shape, as a `Reshape` target: per
    /// entry its value, or None for the batch size. This is what PyTorch's exporter writes for
    /// `x.view(x.size(0), -1)` under a dynamic batch axis: `Shape` of a value, `Gather` of its index 0,
    /// `Unsqueeze`, then `Concat` with constants. Anything else computed from a shape (another
    /// dimension, arithmetic on it) gives None: it is not read.
    pub fn batch_shape(&self, name: &str) -> Option<Vec<Option<i64>>> {
        if self.is_constant(name) {
            let a = self.evaluate(name).ok()?;
            return (a.sizes().len() <= 1).then(|| a.values.iter().map(|&v| Some(v as i64)).collect());
        }
        let node = self.shape_nodes.get(name)?;
        let input = |i: usize| node.input.get(i).map(String::as_str);
        match node.op_type.as_str() {
            "Concat" if int_or(node, "axis", 0) == 0 => {
                let parts: Option<Vec<_>> = node.input.iter().map(|i| self.batch_shape(i)).collect();
                Some(parts?.concat())
            }
            "Identity" | "Cast" => self.batch_shape(input(0)?),
            "Unsqueeze" if self.int_list(node, 1, "axes").ok()?.as_deref() == Some(&[0]) => self.batch_shape(input(0)?),
            "Gather" if int_or(node, "axis", 0) == 0 => {
                let shape = self.shape_nodes.get(input(0)?).filter(|n| n.op_type == "Shape")?;
                let from_start = int_or(shape, "start", 0) == 0;
                let (_, index) = self.ints(node, 1, "indices").ok()?;
                (from_start && index == [0]).then(|| vec![None])
            }
            _ => None,
        }
    }

    /// The tensor of the file `name` is (an initializer, a `Constant`'s value, an `Identity` of one).
    pub fn tensor(&self, name: &str) -> Option<&'g TensorProto> {
        self.constants.get(name).copied()
    }

    /// The tensor of the file whose 2-D transpose `name` is (`Transpose` of an initializer: PyTorch's
    /// `x @ W.t()`).
    pub fn transpose_of(&self, name: &str) -> Option<&'g TensorProto> {
        let node = self.computed.get(name).filter(|n| n.op_type == "Transpose")?;
        let t = self.tensor(node.input.first()?)?;
        let perm = ints_attr(node, "perm").unwrap_or(&[1, 0]);
        (t.dims.len() == 2 && perm == [1, 0]).then_some(t)
    }

    /// Whether `name` is a value known to be all zeros: a `ConstantOfShape` of 0 of the images' shape,
    /// or a constant whose values are all 0.
    pub fn is_zero(&self, name: &str) -> bool {
        match self.shape_only.get(name) {
            Some(fill) => *fill == Some(0.0),
            None => self.evaluate(name).is_ok_and(|a| a.values.iter().all(|&v| v == 0.0)),
        }
    }

    /// The fill value of a `ConstantOfShape` (its `value` attribute, 0 when absent).
    fn fill(&self, node: &NodeProto) -> Option<f64> {
        match tensor::attribute(node, "value").and_then(|a| a.t.as_ref()) {
            None => Some(0.0),
            Some(t) => tensor::numbers(t).ok().and_then(|v| v.first().copied()),
        }
    }

    /// The names of the tensors of the file that the constant `name` is computed from (its data, not
    /// the axes, shapes or indices that move it).
    pub fn leaves(&self, name: &str) -> Vec<&'g str> {
        if let Some(t) = self.tensor(name) {
            return vec![t.name.as_str()];
        }
        match self.computed.get(name) {
            Some(n) if n.op_type == "Concat" => n.input.iter().flat_map(|i| self.leaves(i)).collect(),
            Some(n) => n.input.first().map(|i| self.leaves(i)).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The values of the constant `name`, in f64 (exact for float32 weights and for integers up to
    /// 2^53).
    ///
    /// Errors: `name` is not a constant; a tensor that cannot be read; an operator whose attributes
    /// do not fit its inputs (the node named).
    pub fn evaluate(&self, name: &str) -> Result<Array<f64>> {
        if let Some(t) = self.tensor(name) {
            return Array::new(tensor::dims(t)?, tensor::numbers(t)?);
        }
        let node = self.computed.get(name).ok_or_else(|| anyhow!("`{name}` is not a constant of the graph"))?;
        let at = |e: anyhow::Error| anyhow!("{}: {e}", node_label(node));
        match node.op_type.as_str() {
            "Concat" => {
                let parts: Vec<Array<f64>> = node.input.iter().map(|i| self.evaluate(i)).collect::<Result<_>>()?;
                Array::concat(&parts, int_or(node, "axis", 0)).map_err(at)
            }
            "ConstantOfShape" => {
                let shape = self.ints(node, 0, "shape")?.1;
                let dims: Vec<usize> = shape
                    .iter()
                    .map(|&d| usize::try_from(d))
                    .collect::<Result<_, _>>()
                    .map_err(|_| anyhow!("{}: shape {shape:?} has a negative dimension", node_label(node)))?;
                let n = dims.iter().product();
                Array::new(dims, vec![self.fill(node).unwrap_or(f64::NAN); n])
            }
            "Cast" => self.evaluate(&node.input[0]),
            _ => {
                let data = self.evaluate(&node.input[0])?;
                Ok(self.apply(node, &data)?.expect("computed values are made by shape operators"))
            }
        }
    }

    /// The integer input `index` of `node` (`what` names it in errors): its dimensions and values.
    fn ints(&self, node: &NodeProto, index: usize, what: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let name = node.input.get(index).filter(|n| !n.is_empty());
        let array = name.filter(|n| self.is_constant(n)).map(|n| self.evaluate(n)).transpose()?.ok_or_else(|| {
            anyhow!("{}: its {what} is not a constant (an initializer or Constant node)", node_label(node))
        })?;
        Ok((array.sizes(), array.values.iter().map(|&v| v as i64).collect()))
    }

    /// An optional integer list of `node`: input `index` (opset ≥ 13) or the attribute `attr` (older).
    fn int_list(&self, node: &NodeProto, index: usize, attr: &str) -> Result<Option<Vec<i64>>> {
        if node.input.get(index).is_some_and(|n| !n.is_empty()) {
            return Ok(Some(self.ints(node, index, attr)?.1));
        }
        Ok(ints_attr(node, attr).map(<[i64]>::to_vec))
    }

    /// `node` applied to `data`, its first input, when it is one of [`SHAPE_OPS`] (None for another
    /// operator); its other inputs (shape, axes, indices, bounds) must be constants.
    ///
    /// Errors: such an input that is not a constant; what the operator refuses on `data` (the node
    /// named).
    pub fn apply<T: Copy>(&self, node: &NodeProto, data: &Array<T>) -> Result<Option<Array<T>>> {
        let at = |e: anyhow::Error| anyhow!("{}: {e}", node_label(node));
        let out = match node.op_type.as_str() {
            "Identity" => Ok(data.clone()),
            "Reshape" => data.reshape(&self.ints(node, 1, "shape")?.1, int_or(node, "allowzero", 0) != 0),
            "Flatten" => data.flatten(int_or(node, "axis", 1)),
            "Transpose" => data.transpose(ints_attr(node, "perm")),
            "Squeeze" => data.squeeze(self.int_list(node, 1, "axes")?.as_deref()),
            "Unsqueeze" => match self.int_list(node, 1, "axes")? {
                Some(axes) => data.unsqueeze(&axes),
                None => bail!("{}: no axes", node_label(node)),
            },
            "Gather" => {
                let (dims, indices) = self.ints(node, 1, "indices")?;
                data.gather(int_or(node, "axis", 0), &indices, &dims)
            }
            "Slice" => {
                let bound = |i: usize, attr: &str| {
                    self.int_list(node, i, attr)?.ok_or_else(|| anyhow!("{}: no {attr}", node_label(node)))
                };
                let (starts, ends) = (bound(1, "starts")?, bound(2, "ends")?);
                let axes = self.int_list(node, 3, "axes")?;
                let steps = if node.input.get(4).is_some_and(|n| !n.is_empty()) {
                    Some(self.ints(node, 4, "steps")?.1)
                } else {
                    None
                };
                data.slice(&starts, &ends, axes.as_deref(), steps.as_deref())
            }
            _ => return Ok(None),
        };
        out.map(Some).map_err(at)
    }
}
