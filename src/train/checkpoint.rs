//! One file holds a training run's whole state: the device buffers as safetensors tensors (each once)
//! and the host state (the records and the solver's state) as JSON in the header; written atomically
//! after every epoch (iteration).

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RunRecord;
use crate::backend::{Buffer, Device};

const FILE: &str = "checkpoint.safetensors";
const KEY: &str = "losscape.checkpoint";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epochs (iterations) done.
    pub done: usize,
    pub runs: Vec<RunRecord>,
    /// The solver's host state ([`crate::optim::Solver::state`]); its buffers are tensors.
    pub solver: serde_json::Value,
    /// SHA-256 of the run's configuration ([`config_sha256`]), so that a checkpoint copied from another
    /// run is refused; absent in checkpoints written before it was recorded (then not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
}

/// SHA-256 (hex) of a configuration's JSON, as a checkpoint records it.
pub fn config_sha256<T: Serialize>(cfg: &T) -> Result<String> {
    use sha2::{Digest, Sha256};
    Ok(format!("{:x}", Sha256::digest(serde_json::to_vec(cfg)?)))
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

impl Checkpoint {
    /// Writes the host state and the named GPU buffers.
    pub fn write(&self, dir: &Path, device: &Device, buffers: &[(String, Buffer)]) -> Result<()> {
        let data: Vec<(String, Vec<u8>)> = buffers
            .iter()
            .map(|(name, b)| Ok((name.clone(), bytemuck::cast_slice(&device.read::<f32>(b, 0, b.len())?).to_vec())))
            .collect::<Result<_>>()?;
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(name, bytes)| Ok((name.clone(), TensorView::new(Dtype::F32, vec![bytes.len() / 4], bytes)?)))
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        let meta = BTreeMap::from([(KEY.to_string(), serde_json::to_string(self)?)]);
        crate::io::atomic_write(&path(dir), &crate::io::weights::safetensors_canonical(views, &meta)?)
    }

    /// The checkpoint and its bytes, when the directory has one.
    ///
    /// Errors: the file cannot be read or is not a losscape checkpoint; it holds another number of runs
    /// than `runs` (named with both counts and the fix, whether or not it records its configuration); it
    /// records a configuration other than `config_sha256` (a checkpoint copied from another run).
    pub fn read(dir: &Path, config_sha256: &str, runs: usize) -> Result<Option<(Checkpoint, Vec<u8>)>> {
        let p = path(dir);
        if !p.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&p).with_context(|| format!("{}: cannot read", p.display()))?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| anyhow!("{}: corrupt checkpoint: {e}", p.display()))?;
        let text = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(KEY))
            .ok_or_else(|| anyhow!("{}: not a losscape checkpoint", p.display()))?;
        let ck: Checkpoint =
            serde_json::from_str(text).with_context(|| format!("{}: corrupt checkpoint state", p.display()))?;
        if ck.runs.len() != runs {
            bail!(
                "{}: a checkpoint of {} runs, but this run trains {runs} (--runs {runs}); to resume it give \
                 --runs {} with the rest of its settings (in its own directory), or delete it to start the \
                 {runs} runs over",
                p.display(),
                ck.runs.len(),
                ck.runs.len()
            );
        }
        if ck.config_sha256.as_deref().is_some_and(|h| h != config_sha256) {
            bail!(
                "{}: the checkpoint of another run (its configuration differs from {}); delete it to start \
                 this run over, or resume the other run in its own directory",
                p.display(),
                dir.join("config.json").display()
            );
        }
        Ok(Some((ck, bytes)))
    }

    /// Fills the named GPU buffers from the checkpoint's tensors.
    pub fn load_buffers(bytes: &[u8], device: &Device, buffers: &[(String, Buffer)]) -> Result<()> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("corrupt checkpoint: {e}"))?;
        for (name, buf) in buffers {
            let t = st.tensor(name).map_err(|_| anyhow!("the checkpoint lacks '{name}'; delete it to start over"))?;
            if t.data().len() != buf.len() * 4 {
                bail!("the checkpoint's '{name}' has {} values, expected {}", t.data().len() / 4, buf.len());
            }
            let values: Vec<f32> =
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            device.write(buf, 0, &values)?;
        }
        Ok(())
    }
}
