//! Weight stacks on disk. Two formats, both read and written:
//! - safetensors with PyTorch state_dict names; one vector has the spec shapes, a stack of B vectors has
//!   a leading dimension B on every tensor; losscape's metadata rides in the header.
//! - NumPy .npy (the authors' layout, SPEC §9): float32, shape (B, N_prm), one flat vector per row.

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::model::Arch;

/// B flat weight vectors of one network.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightStack {
    pub arch: Arch,
    /// B x N_prm, row-major.
    pub flat: Vec<f32>,
    /// Free-form string metadata (safetensors header); empty for .npy.
    pub metadata: BTreeMap<String, String>,
}

impl WeightStack {
    pub fn new(arch: Arch, flat: Vec<f32>) -> WeightStack {
        assert_eq!(flat.len() % arch.n_params(), 0, "not a whole number of vectors");
        WeightStack { arch, flat, metadata: BTreeMap::new() }
    }
    pub fn count(&self) -> usize {
        self.flat.len() / self.arch.n_params()
    }
    pub fn vector(&self, i: usize) -> &[f32] {
        let n = self.arch.n_params();
        &self.flat[i * n..(i + 1) * n]
    }
}

fn is_npy(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Reads a stack for `arch`, choosing the format by extension (.npy, else safetensors).
pub fn read_weights(path: &Path, arch: Arch) -> Result<WeightStack> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the weight file", path.display()))?;
    let stack = if is_npy(path) { read_npy(&bytes, arch) } else { read_safetensors(&bytes, arch) }
        .with_context(|| format!("{}", path.display()))?;
    check_finite(&stack)?;
    Ok(stack)
}

fn check_finite(stack: &WeightStack) -> Result<()> {
    let n = stack.arch.n_params();
    let (specs, offsets) = (stack.arch.params(), stack.arch.offsets());
    if let Some(i) = stack.flat.iter().position(|v| !v.is_finite()) {
        let (row, col) = (i / n, i % n);
        let t = offsets.iter().rposition(|&o| o <= col).unwrap();
        bail!(
            "tensor '{}' of vector {row} holds a non-finite value ({}) at flat index {}",
            specs[t].name,
            stack.flat[i],
            col - offsets[t]
        );
    }
    Ok(())
}

fn read_npy(bytes: &[u8], arch: Arch) -> Result<WeightStack> {
    let npy = npyz::NpyFile::new(bytes).map_err(|e| anyhow!("not a valid .npy file: {e}"))?;
    let shape = npy.shape().to_vec();
    let n = arch.n_params();
    let row_len = *shape.last().ok_or_else(|| anyhow!("the .npy array has no dimensions"))? as usize;
    if shape.len() > 2 {
        bail!("the .npy array has shape {shape:?}; expected (vectors, {n})");
    }
    if row_len != n {
        bail!(
            "row length {row_len} does not match the {}'s {n} parameters; is this a file of another network?",
            arch.title()
        );
    }
    if npy.order() != npyz::Order::C {
        bail!("the .npy array is in Fortran order; save it in C order");
    }
    let dtype = npy.dtype();
    if dtype.descr() != "'<f4'" {
        bail!("the .npy array has dtype {}; expected little-endian float32 ('<f4')", dtype.descr());
    }
    let flat: Vec<f32> = npy.into_vec().map_err(|e| anyhow!("the .npy data cannot be read: {e}"))?;
    Ok(WeightStack::new(arch, flat))
}

fn read_safetensors(bytes: &[u8], arch: Arch) -> Result<WeightStack> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a valid safetensors file: {e}"))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("not a valid safetensors file: {e}"))?;
    let specs = arch.params();
    let mut unexpected: Vec<&str> = st.names().into_iter().filter(|n| !specs.iter().any(|s| s.name == *n)).collect();
    if !unexpected.is_empty() {
        unexpected.sort_unstable();
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
        if view.dtype() != Dtype::F32 {
            bail!("tensor '{}' has dtype {:?}; expected F32", spec.name, view.dtype());
        }
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
    let mut flat = vec![0f32; b * n];
    let mut off = 0;
    for (spec, view) in specs.iter().zip(&views) {
        let len = spec.len();
        let values: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        for r in 0..b {
            flat[r * n + off..r * n + off + len].copy_from_slice(&values[r * len..(r + 1) * len]);
        }
        off += len;
    }
    let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok(WeightStack { arch, flat, metadata })
}

/// Writes a stack, choosing the format by extension (.npy, else safetensors), atomically: a crash
/// leaves either the old file or the new one.
pub fn write_weights(path: &Path, stack: &WeightStack) -> Result<()> {
    let bytes = if is_npy(path) { npy_bytes(stack)? } else { safetensors_bytes(stack)? };
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
    let mut meta: HashMap<String, String> = stack.metadata.clone().into_iter().collect();
    meta.insert("losscape.model".into(), stack.arch.id().into());
    meta.insert("losscape.vectors".into(), b.to_string());
    Ok(safetensors::serialize(views, Some(meta))?)
}
