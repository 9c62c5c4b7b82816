//! Weight stacks on disk. Two formats, both read and written:
//! - safetensors with PyTorch state_dict names; one vector has the spec shapes, a stack of B vectors has
//!   a leading dimension B on every tensor; losscape's metadata rides in the header. Read: F32, F64, F16
//!   and BF16 tensors. Written: F32, with a canonical header (sorted keys), so the same stack always
//!   gives the same bytes.
//! - NumPy .npy (the authors' layout, docs/networks.md §1): shape (B, N_prm), one flat vector per row,
//!   or (N_prm,) for one vector. Read: float16/32/64, little or big endian, C or Fortran order.
//!   Written: `<f4`, C order.
//! - ONNX (`.onnx`, read only): the model's initializers, named as the network's tensors, give one
//!   vector (`model/onnx`). `losscape export` writes one.
//!
//! PyTorch's own `.pt`/`.pth` pickles are not read; the error says how to convert one to safetensors.
//!
//! Every value is converted to f32 on reading; a non-finite value (or a float64 beyond the float32
//! range) is refused with the tensor and index that hold it. See `docs/io.md`.

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorInfo, tensor::TensorView, Dtype, SafeTensors};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::model::Arch;

/// B flat weight vectors of one network.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightStack {
    /// The network the vectors belong to.
    pub arch: Arch,
    /// B x N_prm, row-major.
    pub flat: Vec<f32>,
    /// Free-form string metadata (safetensors header); empty for .npy.
    pub metadata: BTreeMap<String, String>,
}

impl WeightStack {
    /// A stack of `flat.len() / N_prm` vectors; panics when `flat` is not a whole number of vectors
    /// (a programming error: every reader checks the shapes first).
    pub fn new(arch: Arch, flat: Vec<f32>) -> WeightStack {
        assert_eq!(flat.len() % arch.n_params(), 0, "not a whole number of vectors");
        WeightStack { arch, flat, metadata: BTreeMap::new() }
    }
    /// Number of vectors B.
    pub fn count(&self) -> usize {
        self.flat.len() / self.arch.n_params()
    }
    /// The host memory the stack holds (its vectors), for a run's memory estimate.
    pub fn footprint(&self) -> crate::backend::Footprint {
        crate::backend::Footprint::host(crate::backend::f32_bytes(self.flat.capacity()))
    }
    /// Vector `i` (panics when `i >= count()`).
    pub fn vector(&self, i: usize) -> &[f32] {
        let n = self.arch.n_params();
        &self.flat[i * n..(i + 1) * n]
    }
}

/// The two weight file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// NumPy `.npy`.
    Npy,
    /// safetensors (any extension other than `.npy` and `.onnx`).
    Safetensors,
    /// An ONNX model's initializers (read only).
    Onnx,
}

impl Format {
    /// The format a path names: `.npy`, `.onnx` (any case) or safetensors.
    pub fn of(path: &Path) -> Format {
        match path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).as_deref() {
            Some("npy") => Format::Npy,
            Some("onnx") => Format::Onnx,
            _ => Format::Safetensors,
        }
    }
}

/// What reading had to convert, for the one note on stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversion {
    /// The file's element type (e.g. `float64`, `F16`), when it is not float32.
    pub from: Option<String>,
    /// How many values changed when rounded to float32 (float64 input only).
    pub rounded: usize,
}

/// Reads a stack for `arch`, choosing the format by extension (.npy, .onnx, else safetensors). When
/// float64 values had to be rounded to float32, says so once on stderr.
pub fn read_weights(path: &Path, arch: Arch) -> Result<WeightStack> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the weight file", path.display()))?;
    let (stack, conv) = parse_weights(&bytes, arch, Format::of(path)).with_context(|| format!("{}", path.display()))?;
    // same tensor names and shapes, another network (another activation, say): allowed, but said
    if let Some(written) = stack.metadata.get("losscape.model").filter(|&m| m != arch.id()) {
        eprintln!(
            "warning: {}: written for the network `{written}`, read as `{}` (their tensors have the same names and \
             shapes, so the numbers are that network's weights in this one); if that is not meant, give --model the network \
             `{written}`",
            path.display(),
            arch.id()
        );
    }
    if conv.rounded > 0 {
        eprintln!(
            "note: {}: {} of {} {} values were rounded to float32 (losscape computes in float32)",
            path.display(),
            conv.rounded,
            stack.flat.len(),
            conv.from.as_deref().unwrap_or("float64")
        );
    }
    Ok(stack)
}

/// Checks that the safetensors file `path` is as long as its header says, reading only the header: a
/// cheap check, for files a run only needs to know are whole (a sweep's saved paths on resume), that
/// catches a truncated or extended file, not changed values. Returns the header's metadata (its string
/// entries), for the caller to check whose file it is.
///
/// Errors: the file cannot be read, its header is not a safetensors header, or its length differs,
/// each naming the file.
pub fn check_complete(path: &Path) -> Result<BTreeMap<String, String>> {
    use std::io::Read;
    let named = |what: &str| format!("{}: {what}", path.display());
    let mut f = std::fs::File::open(path).with_context(|| named("cannot read"))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n).with_context(|| named("too short for a safetensors header"))?;
    let n = u64::from_le_bytes(n);
    if n > 100 << 20 {
        bail!(named("not a safetensors file (its header length is implausible)"));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).with_context(|| named("cut inside its safetensors header"))?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).with_context(|| named("not a safetensors header"))?;
    let data: u64 = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let len = f.metadata().with_context(|| named("cannot read"))?.len();
    if len != 8 + n + data {
        bail!(named(&format!("{len} bytes, but its header describes {}: the file is cut or damaged", 8 + n + data)));
    }
    let metadata = header.get("__metadata__").and_then(|m| m.as_object());
    let strings = metadata.into_iter().flatten().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())));
    Ok(strings.collect())
}

/// Parses the bytes of a weight file: any input gives a stack or an error (never a panic), and no
/// allocation exceeds a small multiple of `bytes.len()`.
pub fn parse_weights(bytes: &[u8], arch: Arch, format: Format) -> Result<(WeightStack, Conversion)> {
    // a file of the other format under this extension: say so rather than fail inside the parser
    // ("header too large" for a .npy read as safetensors)
    let npy = bytes.starts_with(b"\x93NUMPY");
    if is_torch_save(bytes) {
        bail!("{PT_FIX}");
    }
    match (format, npy) {
        (Format::Safetensors, true) => bail!("a .npy file named .safetensors: rename it to .npy"),
        (Format::Npy, false) if bytes.len() >= 8 && bytes.get(8) == Some(&b'{') => {
            bail!("a safetensors file named .npy: rename it to .safetensors")
        }
        _ => {}
    }
    let (stack, conv) = match format {
        Format::Npy => read_npy(bytes, arch)?,
        Format::Safetensors => read_safetensors(bytes, arch)?,
        Format::Onnx => {
            let specs = arch.params();
            let named: Vec<(&str, &[usize])> = specs.iter().map(|s| (s.name, s.shape.as_slice())).collect();
            let flat = crate::model::onnx::vector(bytes, &named).map_err(|e| {
                anyhow!("{e:#} (the ONNX model's initializers are read as the {}'s tensors)", arch.title())
            })?;
            (WeightStack::new(arch, flat), Conversion::default())
        }
    };
    check_finite(&stack)?;
    Ok((stack, conv))
}

/// What to do with a PyTorch pickle (`torch.save`), which losscape does not read.
pub const PT_FIX: &str = "a PyTorch pickle (torch.save's .pt/.pth), which losscape does not read: convert it \
     to safetensors once with python -c \"import torch, safetensors.torch as st; \
     st.save_file(torch.load('x.pt'), 'x.safetensors')\" (a state_dict; for a whole model save \
     model.state_dict())";

/// Whether `bytes` are what `torch.save` writes: a zip archive whose first entry is
/// `<archive>/data.pkl` (PyTorch >= 1.6), or a legacy pickle starting with PyTorch's magic number
/// (protocol 2, LONG1: 0x80 0x02 0x8a). Other zip archives (an `.npz`) are not.
fn is_torch_save(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\x80\x02\x8a") {
        return true;
    }
    // a zip local file header: the name's length at offset 26, the name at 30
    let Some(len) = bytes.get(26..28).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize) else { return false };
    bytes.starts_with(b"PK\x03\x04") && bytes.get(30..30 + len).is_some_and(|name| name.ends_with(b"data.pkl"))
}

/// (vector, tensor name, index within the tensor) of a flat index into a stack.
fn locate(arch: Arch, flat_index: usize) -> (usize, &'static str, usize) {
    let n = arch.n_params();
    let (row, col) = (flat_index / n, flat_index % n);
    let (specs, offsets) = (arch.params(), arch.offsets());
    let t = offsets.iter().rposition(|&o| o <= col).unwrap_or(0);
    (row, specs[t].name, col - offsets[t])
}

fn check_finite(stack: &WeightStack) -> Result<()> {
    if let Some(i) = stack.flat.iter().position(|v| !v.is_finite()) {
        let (row, name, index) = locate(stack.arch, i);
        bail!("tensor '{name}' of vector {row} holds a non-finite value ({}) at flat index {index}", stack.flat[i]);
    }
    Ok(())
}

/// f64 -> f32, counting the values that change; a finite value beyond the f32 range is an error
/// naming `what(index)`.
fn narrow(values: &[f64], what: &dyn Fn(usize) -> String) -> Result<(Vec<f32>, usize)> {
    let mut rounded = 0;
    let mut out = Vec::with_capacity(values.len());
    for (i, &x) in values.iter().enumerate() {
        let y = x as f32;
        if x.is_finite() && !y.is_finite() {
            bail!("{} holds {x:e}, beyond the float32 range (±3.4e38) that losscape computes in", what(i));
        }
        if x.is_finite() && y as f64 != x {
            rounded += 1;
        }
        out.push(y);
    }
    Ok((out, rounded))
}

/// Element types read from .npy files.
#[derive(Clone, Copy)]
enum NpyFloat {
    F16,
    F32,
    F64,
}

fn read_npy(bytes: &[u8], arch: Arch) -> Result<(WeightStack, Conversion)> {
    let data_start = crate::data::npy::precheck(bytes)?;
    let npy = npyz::NpyFile::new(bytes).map_err(|e| anyhow!("not a valid .npy file: {e}"))?;
    let shape = npy.shape().to_vec();
    let n = arch.n_params();
    let (rows, row_len) = match shape[..] {
        [len] => (1, len),
        [rows, len] => (rows, len),
        _ => bail!("the .npy array has shape {shape:?}; expected (vectors, {n}) or ({n},)"),
    };
    if rows == 0 {
        bail!(
            "the .npy array has shape {shape:?}: it holds no weight vectors; save at least one row of {n} parameters"
        );
    }
    if row_len != n as u64 {
        bail!(
            "row length {row_len} does not match the {}'s {n} parameters; is this a file of another network?",
            arch.title()
        );
    }
    let descr = npy.dtype().descr();
    let (kind, size) = match descr.trim_matches('\'') {
        "<f2" | ">f2" => (NpyFloat::F16, 2),
        "<f4" | ">f4" => (NpyFloat::F32, 4),
        "<f8" | ">f8" => (NpyFloat::F64, 8),
        _ => bail!(
            "the .npy array has dtype {descr}; expected a float array: float16, float32 or float64 ('<f4', '>f8', …)"
        ),
    };
    let values = rows.checked_mul(n as u64).ok_or_else(|| anyhow!("the .npy shape is impossibly large"))?;
    let expected = values.checked_mul(size).ok_or_else(|| anyhow!("the .npy shape is impossibly large"))?;
    let found = (bytes.len() - data_start) as u64;
    if found != expected {
        bail!(
            "the .npy data holds {found} bytes, but shape {shape:?} of {} needs {expected}; the file is {}",
            descr,
            if found < expected { "truncated, save it again" } else { "corrupt (bytes after the data)" }
        );
    }
    let fortran = npy.order() == npyz::Order::Fortran && shape.len() == 2;
    let read_err = |e: std::io::Error| anyhow!("the .npy data cannot be read: {e}");
    let mut conv = Conversion::default();
    let file_order: Vec<f32> = match kind {
        NpyFloat::F32 => npy.into_vec::<f32>().map_err(read_err)?,
        NpyFloat::F16 => {
            conv.from = Some("float16".into());
            npy.into_vec::<npyz::half::f16>().map_err(read_err)?.into_iter().map(f32::from).collect()
        }
        NpyFloat::F64 => {
            conv.from = Some("float64".into());
            let wide = npy.into_vec::<f64>().map_err(read_err)?;
            let r = rows as usize;
            // the index in row-major order of file position i
            let to_c = |i: usize| if fortran { (i % r) * n + i / r } else { i };
            let (v, rounded) = narrow(&wide, &|i| {
                let (row, name, index) = locate(arch, to_c(i));
                format!("tensor '{name}' of vector {row} (index {index})")
            })?;
            conv.rounded = rounded;
            v
        }
    };
    let flat = if fortran {
        // element (b, i) is stored at i * rows + b
        let r = rows as usize;
        let mut c = vec![0f32; file_order.len()];
        for (i, &v) in file_order.iter().enumerate() {
            c[(i % r) * n + i / r] = v;
        }
        c
    } else {
        file_order
    };
    Ok((WeightStack::new(arch, flat), conv))
}

/// Little-endian tensor bytes of a supported dtype as f32.
fn tensor_f32(view: &TensorView, name: &str, rows: usize, arch: Arch, conv: &mut Conversion) -> Result<Vec<f32>> {
    let data = view.data();
    let per_row = view.shape().iter().product::<usize>() / rows.max(1);
    Ok(match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => {
            conv.from = Some("F16".into());
            data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        Dtype::BF16 => {
            conv.from = Some("BF16".into());
            data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        Dtype::F64 => {
            conv.from = Some("F64".into());
            let wide: Vec<f64> = data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            let (v, rounded) = narrow(&wide, &|i| {
                format!("tensor '{name}' of vector {} (index {})", i / per_row.max(1), i % per_row.max(1))
            })?;
            conv.rounded += rounded;
            v
        }
        other => bail!(
            "tensor '{name}' has dtype {other:?}; expected a float tensor (F32, F64, F16 or BF16) of the {}",
            arch.title()
        ),
    })
}

/// What a file that is not a whole safetensors file is, in words a user can act on: a web page, a file
/// cut short, something else entirely; `None` when its first bytes look like a safetensors file (an
/// 8-byte little-endian header length, then the header's JSON).
fn not_safetensors(bytes: &[u8]) -> Option<String> {
    const AGAIN: &str = "write or download it again";
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return Some(format!("this is a web page (it starts with '<'), not a weight file; {AGAIN}"));
    }
    if bytes.len() < 9 {
        return Some(format!("only {} bytes, too short for a safetensors file (cut short?); {AGAIN}", bytes.len()));
    }
    let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if bytes[8] != b'{' {
        return Some(format!(
            "not a safetensors file (it does not start with a header length and the header's JSON): another kind of \
             file, or a damaged one; {AGAIN}"
        ));
    }
    (header > bytes.len() as u64 - 8).then(|| {
        format!("cut short: its header alone promises {header} bytes, the file holds {}; {AGAIN}", bytes.len())
    })
}

fn read_safetensors(bytes: &[u8], arch: Arch) -> Result<(WeightStack, Conversion)> {
    if let Some(what) = not_safetensors(bytes) {
        bail!("{what}");
    }
    let invalid = |e| anyhow!("not a valid safetensors file: {e} (damaged, or cut short); write or download it again");
    let st = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let specs = arch.params();
    let mut unexpected: Vec<&str> = st.names().into_iter().filter(|n| !specs.iter().any(|s| s.name == *n)).collect();
    if !unexpected.is_empty() {
        unexpected.sort_unstable();
        data_parallel_prefix(&st.names(), &specs, arch)?;
        let expected: Vec<_> = specs.iter().map(|s| s.name).collect();
        bail!(
            "unexpected tensor(s) '{}' for the {}; its tensors are {}",
            unexpected.join("', '"),
            arch.title(),
            expected.join(", ")
        );
    }
    let mut count: Option<usize> = None;
    let mut views: Vec<TensorView> = Vec::new();
    for spec in &specs {
        let view = st.tensor(spec.name).map_err(|_| {
            anyhow!("tensor '{}' is missing (the {} needs it, shape {:?})", spec.name, arch.title(), spec.shape)
        })?;
        let shape = view.shape();
        let b = if shape == spec.shape.as_slice() {
            1
        } else if shape.len() == spec.shape.len() + 1 && shape[1..] == spec.shape[..] {
            shape[0]
        } else {
            bail!("tensor '{}' has shape {shape:?}; expected {:?} or [B, {:?}]", spec.name, spec.shape, spec.shape);
        };
        if let Some(c) = count.filter(|&c| c != b) {
            bail!("tensor '{}' holds {b} vectors but earlier tensors hold {c}", spec.name);
        }
        count = Some(b);
        views.push(view);
    }
    let b = count.unwrap_or(0);
    let n = arch.n_params();
    let mut conv = Conversion::default();
    let mut flat = vec![0f32; b * n];
    let mut off = 0;
    for (spec, view) in specs.iter().zip(&views) {
        let len = spec.len();
        let values = tensor_f32(view, spec.name, b, arch, &mut conv)?;
        for r in 0..b {
            flat[r * n + off..r * n + off + len].copy_from_slice(&values[r * len..(r + 1) * len]);
        }
        off += len;
    }
    let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok((WeightStack { arch, flat, metadata }, conv))
}

/// Refuses a state_dict whose names are the network's under one prefix (`module.`, as
/// `nn.DataParallel` and DistributedDataParallel save them; `model.` or another, as a module that holds
/// the network as an attribute saves them), naming the prefix and the fix. It is refused rather than
/// stripped silently: the names say the file is a wrapper's, and a file whose names need rewriting to
/// load should be rewritten once, not reinterpreted on every read.
fn data_parallel_prefix(names: &[&str], specs: &[crate::model::TensorSpec], arch: Arch) -> Result<()> {
    let Some(first) = names.first() else { return Ok(()) };
    let Some((prefix, _)) = specs.iter().find_map(|s| first.strip_suffix(s.name).map(|p| (p, s))) else {
        return Ok(());
    };
    let stripped = |n: &str| n.strip_prefix(prefix).map(str::to_string);
    let all = !prefix.is_empty()
        && names.len() == specs.len()
        && names.iter().all(|n| stripped(n).is_some_and(|s| specs.iter().any(|t| t.name == s)));
    if all {
        bail!(
            "every tensor name carries the prefix '{prefix}' ('{first}'), {}: the {} names them without it. {}, or \
             strip the prefix once: {{k.removeprefix('{prefix}'): v for k, v in state_dict.items()}}",
            prefix_origin(prefix),
            arch.title(),
            prefix_fix(prefix)
        );
    }
    Ok(())
}

/// Where a state_dict's common name prefix comes from, for [`data_parallel_prefix`].
fn prefix_origin(prefix: &str) -> String {
    match prefix.strip_suffix('.') {
        Some("module") => "as a state_dict saved from nn.DataParallel/DistributedDataParallel".into(),
        Some(attribute) => {
            format!("as a state_dict saved from a module that holds the network as its attribute `{attribute}`")
        }
        None => "which the network's own names do not have".into(),
    }
}

/// How to save a state_dict without the prefix, for [`data_parallel_prefix`].
fn prefix_fix(prefix: &str) -> String {
    match prefix.strip_suffix('.') {
        Some("module") => "Save the inner module's state_dict (model.module.state_dict())".into(),
        Some(attribute) => format!("Save that attribute's state_dict (outer.{attribute}.state_dict())"),
        None => "Save the network's own state_dict".into(),
    }
}

/// Writes a stack, choosing the format by extension (.npy, else safetensors), atomically: a crash
/// leaves either the old file or the new one. The same stack always gives the same bytes.
pub fn write_weights(path: &Path, stack: &WeightStack) -> Result<()> {
    let bytes = match Format::of(path) {
        Format::Npy => npy_bytes(stack)?,
        Format::Safetensors => safetensors_bytes(stack)?,
        Format::Onnx => bail!(
            "{}: a weight set is written as .safetensors or .npy; `losscape export` writes one vector as an ONNX model",
            path.display()
        ),
    };
    crate::io::atomic_write(path, &bytes)
}

fn npy_bytes(stack: &WeightStack) -> Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[stack.count() as u64, stack.arch.n_params() as u64])
            .writer(&mut out)
            .begin_nd()?;
        w.extend(stack.flat.iter().copied())?;
        w.finish()?;
    }
    Ok(out)
}

/// Serializes tensors with `metadata` into safetensors bytes whose header has its keys in sorted order
/// (the `safetensors` crate writes its metadata map in hash order, which differs from run to run).
pub fn safetensors_canonical<'a>(
    views: Vec<(String, TensorView<'a>)>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let bytes = safetensors::serialize(views, (!meta.is_empty()).then_some(meta))?;
    let (n, parsed) = SafeTensors::read_metadata(&bytes)?;
    #[derive(Serialize)]
    struct Header<'h> {
        #[serde(rename = "__metadata__", skip_serializing_if = "Option::is_none")]
        metadata: Option<BTreeMap<&'h String, &'h String>>,
        #[serde(flatten)]
        tensors: BTreeMap<String, &'h TensorInfo>,
    }
    let header = Header {
        metadata: parsed.metadata().as_ref().map(|m| m.iter().collect()),
        tensors: parsed.tensors().into_iter().collect(),
    };
    let mut text = serde_json::to_vec(&header)?;
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

fn safetensors_bytes(stack: &WeightStack) -> Result<Vec<u8>> {
    let (b, n) = (stack.count(), stack.arch.n_params());
    let specs = stack.arch.params();
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut off = 0;
    for spec in &specs {
        let len = spec.len();
        let mut data = Vec::with_capacity(b * len * 4);
        for r in 0..b {
            for v in &stack.flat[r * n + off..r * n + off + len] {
                data.extend_from_slice(&v.to_le_bytes());
            }
        }
        let shape = if b == 1 { spec.shape.clone() } else { [vec![b], spec.shape.clone()].concat() };
        buffers.push((spec.name.to_string(), shape, data));
        off += len;
    }
    let views: Vec<(String, TensorView)> = buffers
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let mut meta = stack.metadata.clone();
    meta.insert("losscape.model".into(), stack.arch.id().into());
    meta.insert("losscape.vectors".into(), b.to_string());
    safetensors_canonical(views, &meta)
}
