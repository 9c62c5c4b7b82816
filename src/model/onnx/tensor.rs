//! ONNX tensors and attributes as plain values: a `TensorProto`'s numbers (float data as f32, integer
//! data as i64, from `raw_data` little-endian or the typed fields) and a node's attributes by name.
//!
//! Source: the ONNX IR specification (onnx/onnx `docs/IR.md`, "Tensor definition") and `onnx.proto3`.

use anyhow::{bail, Result};
use onnx_protobuf::{attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_proto::DataType};
use onnx_protobuf::{AttributeProto, NodeProto, TensorProto};

/// A tensor's dimensions as sizes; a negative dimension is refused.
pub fn dims(t: &TensorProto) -> Result<Vec<usize>> {
    t.dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow::anyhow!("tensor `{}` has a negative dimension {d}", t.name)))
        .collect()
}

fn count(t: &TensorProto) -> Result<usize> {
    dims(t)?
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| anyhow::anyhow!("tensor `{}` has impossibly large dimensions {:?}", t.name, t.dims))
}

fn data_type(t: &TensorProto) -> Option<DataType> {
    protobuf::Enum::from_i32(t.data_type)
}

fn external(t: &TensorProto) -> Result<()> {
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) {
        bail!(
            "tensor `{}` is stored in an external data file, which losscape does not read: save the model \
             with its weights inside (onnx.save(model, path, save_as_external_data=False))",
            t.name
        );
    }
    Ok(())
}

/// The values of a float tensor (FLOAT, DOUBLE, FLOAT16 or BFLOAT16), as f32, in row-major order.
///
/// Errors: another element type; data stored outside the file; a data length that does not match the
/// dimensions.
pub fn floats(t: &TensorProto) -> Result<Vec<f32>> {
    external(t)?;
    let n = count(t)?;
    let raw = &t.raw_data;
    let values: Vec<f32> = match data_type(t) {
        Some(DataType::FLOAT) if !raw.is_empty() => {
            raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        Some(DataType::FLOAT) => t.float_data.clone(),
        Some(DataType::DOUBLE) if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Some(DataType::DOUBLE) => t.double_data.iter().map(|&v| v as f32).collect(),
        // 16-bit floats are stored in raw_data, or one per int32_data entry (low 16 bits)
        Some(DataType::FLOAT16) if !raw.is_empty() => {
            raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        Some(DataType::FLOAT16) => t.int32_data.iter().map(|&v| half::f16::from_bits(v as u16).to_f32()).collect(),
        Some(DataType::BFLOAT16) if !raw.is_empty() => {
            raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        Some(DataType::BFLOAT16) => t.int32_data.iter().map(|&v| half::bf16::from_bits(v as u16).to_f32()).collect(),
        other => bail!(
            "tensor `{}` has element type {}; a parameter must be a float tensor (FLOAT, DOUBLE, FLOAT16 or BFLOAT16)",
            t.name,
            other.map_or(format!("{}", t.data_type), |d| format!("{d:?}"))
        ),
    };
    whole(t, values, n)
}

/// The values of an integer tensor (INT64 or INT32), as i64.
///
/// Errors: another element type, data outside the file, or a length that does not match.
pub fn ints(t: &TensorProto) -> Result<Vec<i64>> {
    external(t)?;
    let n = count(t)?;
    let raw = &t.raw_data;
    let values: Vec<i64> = match data_type(t) {
        Some(DataType::INT64) if !raw.is_empty() => {
            raw.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
        }
        Some(DataType::INT64) => t.int64_data.clone(),
        Some(DataType::INT32) if !raw.is_empty() => {
            raw.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
        }
        Some(DataType::INT32) => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
        _ => bail!("tensor `{}` has element type {}; expected INT64 or INT32", t.name, t.data_type),
    };
    whole(t, values, n)
}

/// The values of a numeric tensor as f64: an integer one (INT64, INT32) exactly up to 2^53 (larger
/// ones, such as Slice's "to the end" bound i64::MAX, round to the nearest f64, which converts back
/// saturating), a float one as [`floats`] reads it.
///
/// Errors: as [`floats`] and [`ints`].
pub fn numbers(t: &TensorProto) -> Result<Vec<f64>> {
    match data_type(t) {
        Some(DataType::INT64 | DataType::INT32) => Ok(ints(t)?.into_iter().map(|v| v as f64).collect()),
        _ => Ok(floats(t)?.into_iter().map(f64::from).collect()),
    }
}

/// An INT64 tensor named `name` of `shape` holding `values` (a shape, axes or indices of a node).
pub fn int_tensor(name: &str, shape: &[usize], values: &[i64]) -> TensorProto {
    written(name, shape, DataType::INT64, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// A FLOAT tensor named `name` of `shape` holding `values` (little-endian `raw_data`).
pub fn float_tensor(name: &str, shape: &[usize], values: &[f32]) -> TensorProto {
    written(name, shape, DataType::FLOAT, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// A tensor for a model being written, its values as little-endian `raw_data`.
fn written(name: &str, shape: &[usize], data_type: DataType, raw_data: Vec<u8>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = shape.iter().map(|&d| d as i64).collect();
    t.data_type = data_type as i32;
    t.raw_data = raw_data;
    t
}

/// A node as messages name it: its op and name (or its first output when it has no name).
pub fn node_label(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} node (output `{}`)", node.op_type, node.output.first().map_or("", String::as_str))
    } else {
        format!("{} node `{}`", node.op_type, node.name)
    }
}

/// A node's attribute named `name`, if present.
pub fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// An INT attribute, or `default` when absent.
pub fn int_or(node: &NodeProto, name: &str, default: i64) -> i64 {
    attribute(node, name).map_or(default, |a| a.i)
}

/// A FLOAT attribute, or `default` when absent.
pub fn float_or(node: &NodeProto, name: &str, default: f32) -> f32 {
    attribute(node, name).map_or(default, |a| a.f)
}

/// An INTS attribute, if present.
pub fn ints_attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    attribute(node, name).map(|a| a.ints.as_slice())
}

/// A STRING attribute, or `default` when absent.
pub fn string_or(node: &NodeProto, name: &str, default: &str) -> String {
    attribute(node, name).map_or(default.to_string(), |a| String::from_utf8_lossy(&a.s).into_owned())
}

/// A STRINGS attribute, if present.
pub fn strings_attr(node: &NodeProto, name: &str) -> Option<Vec<String>> {
    attribute(node, name).map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
}

/// An INT attribute for a node being written.
pub fn int_attribute(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_string();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

/// An INTS attribute for a node being written.
pub fn ints_attribute(name: &str, values: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_string();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    a
}

/// A FLOAT attribute for a node being written.
pub fn float_attribute(name: &str, value: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_string();
    a.type_ = AttributeType::FLOAT.into();
    a.f = value;
    a
}

/// `values` when they are the `n` values `t`'s dimensions need.
///
/// Errors: another count (a corrupt file).
fn whole<T>(t: &TensorProto, values: Vec<T>, n: usize) -> Result<Vec<T>> {
    if values.len() != n {
        bail!(
            "tensor `{}` holds {} values but its dimensions {:?} need {n}: the file is corrupt",
            t.name,
            values.len(),
            t.dims
        );
    }
    Ok(values)
}
