//! What the sharded, resumable runs (path sweeps, surfaces, probes, the pipeline's stages) share: the
//! [`Shard`] of the work one process takes, and an input set identified by content ([`SetInfo`],
//! [`sha256_file`]).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

use super::WeightStack;

/// Shard `index` of `count`: the pairs whose global index is congruent to `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or("expected i/n, e.g. 0/4")?;
        let (index, count) =
            (i.trim().parse().map_err(|_| "i must be a number")?, n.trim().parse().map_err(|_| "n must be a number")?);
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= i < n"));
        }
        Ok(Shard { index, count })
    }
}

/// One input set, identified by content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetInfo {
    pub file: String,
    pub sha256: String,
    pub vectors: usize,
}

impl SetInfo {
    /// The set in `file`, holding `stack`.
    ///
    /// Errors: the file cannot be read (for its checksum).
    pub fn of(file: &Path, stack: &WeightStack) -> Result<SetInfo> {
        Ok(SetInfo { file: file.display().to_string(), sha256: sha256_file(file)?, vectors: stack.count() })
    }

    /// The same set with its file named relative to `base`, a work directory that holds it (unchanged
    /// when it lies elsewhere), so that what the directory records and writes does not depend on
    /// where the directory lies or how it was named.
    pub fn relative_to(mut self, base: &Path) -> SetInfo {
        if let Ok(rest) = Path::new(&self.file).strip_prefix(base) {
            self.file = rest.display().to_string();
        }
        self
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}
