//! One file holds a training run's whole state: the device buffers as safetensors tensors (each once)
//! and the host state (the records and the solver's state) as JSON in the header; written atomically
//! when [`CheckpointEvery`] says and after the last epoch (iteration).

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// SHA-256 of the tensors ([`tensors_sha256`]), set by [`Checkpoint::write`], so that a file
    /// damaged after it was written (a flipped bit keeps safetensors' header valid) is refused rather
    /// than resumed into wrong numbers; absent in checkpoints written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensors_sha256: Option<String>,
}

/// When a training run writes its checkpoint besides after its last step. A checkpoint holds every
/// run's whole optimizer state, synced to disk (for FCP L-BFGS 4 MB per run): written after every
/// iteration it took two thirds of a small run's time, and at paper scale (hundreds of MB) it would
/// outlast the iteration. A resumed run repeats the steps after the last checkpoint, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointEvery {
    /// After every this many steps (epochs, iterations); at least 1.
    Steps(usize),
    /// After the first step that ends at least this long after the last checkpoint (or after the run
    /// started or resumed): a killed run loses about this much work, whatever a step takes.
    Interval(Duration),
}

impl CheckpointEvery {
    /// The default of `train` and `reproduce`: a killed run loses a minute of work or one step, and at
    /// paper scale a checkpoint of hundreds of MB (seconds to write and sync) costs a few percent of
    /// the run at most.
    pub const DEFAULT: CheckpointEvery = CheckpointEvery::Interval(Duration::from_secs(60));

    /// Whether step `done` writes a checkpoint, `since` after the last one was written.
    pub fn due(&self, done: usize, since: Duration) -> bool {
        match *self {
            CheckpointEvery::Steps(k) => done.is_multiple_of(k.max(1)),
            CheckpointEvery::Interval(t) => since >= t,
        }
    }
}

impl std::str::FromStr for CheckpointEvery {
    type Err = String;

    /// A count of steps (`25`) or a duration with its unit (`90s`, `5m`, `1h 30m`, as `humantime`
    /// reads them); zero and bare numbers that are not counts are refused.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let help = "give a number of epochs (iterations), e.g. 25, or a time with its unit, e.g. 90s, 5m, 1h";
        if let Ok(k) = s.parse::<u64>() {
            return match usize::try_from(k) {
                Ok(k) if k >= 1 => Ok(CheckpointEvery::Steps(k)),
                _ => Err(format!("'{s}': at least 1 step; {help}")),
            };
        }
        match humantime::parse_duration(s) {
            Ok(t) if !t.is_zero() => Ok(CheckpointEvery::Interval(t)),
            Ok(_) => Err(format!("'{s}': a zero interval; {help}")),
            Err(e) => Err(format!("'{s}' is neither a step count nor a time ({e}); {help}")),
        }
    }
}

impl std::fmt::Display for CheckpointEvery {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            CheckpointEvery::Steps(k) => write!(f, "{k}"),
            CheckpointEvery::Interval(t) => write!(f, "{}", humantime::format_duration(*t)),
        }
    }
}

/// SHA-256 (hex) of a configuration's JSON, as a checkpoint records it.
pub fn config_sha256<T: Serialize>(cfg: &T) -> Result<String> {
    use sha2::{Digest, Sha256};
    Ok(format!("{:x}", Sha256::digest(serde_json::to_vec(cfg)?)))
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// SHA-256 over a checkpoint's tensors in the order of their names: each name, a zero byte, its
/// length in bytes (u64, little-endian) and its bytes.
fn tensors_sha256<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<_> = tensors.into_iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let mut h = Sha256::new();
    for (name, bytes) in sorted {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("{:x}", h.finalize())
}

/// The error for a checkpoint that cannot be resumed from, with the way out.
fn damaged(p: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "{}: {what}; the runs cannot resume from it: delete it to train them again from the start (the same \
         results, written again)",
        p.display()
    )
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
        let digest = tensors_sha256(data.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())));
        let ck = Checkpoint { tensors_sha256: Some(digest), ..self.clone() };
        let meta = BTreeMap::from([(KEY.to_string(), serde_json::to_string(&ck)?)]);
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
        let st = SafeTensors::deserialize(&bytes).map_err(|e| damaged(&p, format!("a damaged checkpoint ({e})")))?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| damaged(&p, format!("a damaged checkpoint ({e})")))?;
        let text = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(KEY))
            .ok_or_else(|| damaged(&p, "not a losscape checkpoint"))?;
        let ck: Checkpoint =
            serde_json::from_str(text).map_err(|e| damaged(&p, format!("a damaged checkpoint state ({e})")))?;
        if let Some(want) = &ck.tensors_sha256 {
            let tensors = st.tensors();
            if tensors_sha256(tensors.iter().map(|(name, t)| (name.as_str(), t.data()))) != *want {
                return Err(damaged(&p, "a damaged checkpoint: its tensors do not match the SHA-256 it recorded"));
            }
        }
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
    ///
    /// Errors (named with the file in `dir` and the way out): a tensor is missing or of another size.
    pub fn load_buffers(dir: &Path, bytes: &[u8], device: &Device, buffers: &[(String, Buffer)]) -> Result<()> {
        let p = path(dir);
        let st = SafeTensors::deserialize(bytes).map_err(|e| damaged(&p, format!("a damaged checkpoint ({e})")))?;
        for (name, buf) in buffers {
            let t = st.tensor(name).map_err(|_| damaged(&p, format!("the checkpoint lacks '{name}'")))?;
            if t.data().len() != buf.len() * 4 {
                let what =
                    format!("the checkpoint's '{name}' has {} values, expected {}", t.data().len() / 4, buf.len());
                return Err(damaged(&p, what));
            }
            let values: Vec<f32> =
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            device.write(buf, 0, &values)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::CheckpointEvery::{self, Interval, Steps};
    use std::time::Duration;

    #[test]
    fn checkpoint_policies_parse_counts_and_times_and_refuse_zero() {
        let parse = |s: &str| s.parse::<CheckpointEvery>();
        assert_eq!(parse("25"), Ok(Steps(25)));
        assert_eq!(parse(" 1 "), Ok(Steps(1)));
        assert_eq!(parse("90s"), Ok(Interval(Duration::from_secs(90))));
        assert_eq!(parse("1h 30m"), Ok(Interval(Duration::from_secs(5400))));
        assert_eq!(parse("250ms"), Ok(Interval(Duration::from_millis(250))));
        for bad in ["0", "0s", "0m 0s", "1.5", "x", "", "5 parsecs", "-3"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("e.g. 25") && err.contains(&format!("'{}'", bad.trim())), "{bad}: {err}");
        }
        // what --help prints as the default reads back as the default
        assert_eq!(parse(&CheckpointEvery::DEFAULT.to_string()), Ok(CheckpointEvery::DEFAULT));
        assert_eq!(CheckpointEvery::DEFAULT.to_string(), "1m");
    }

    #[test]
    fn a_checkpoint_is_due_after_k_steps_or_once_the_interval_has_passed() {
        let due: Vec<usize> = (1..=10).filter(|&d| Steps(3).due(d, Duration::ZERO)).collect();
        assert_eq!(due, [3, 6, 9]);
        assert!((1..=10).all(|d| Steps(1).due(d, Duration::ZERO)));
        let every_minute = Interval(Duration::from_secs(60));
        assert!(!every_minute.due(7, Duration::from_secs(59)));
        assert!(every_minute.due(7, Duration::from_secs(60)));
        assert!(every_minute.due(1, Duration::from_secs(3600)));
    }
}
