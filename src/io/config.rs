//! Run directories: the configuration saved beside the results, and the refusal of a different one.

use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

use super::atomic_write;

const CONFIG: &str = "config.json";

/// Keys (`key` or `key.subkey`) whose values differ between two configurations; `ignore` lists
/// top-level keys that may differ. Input files are identified by content: in any object that records
/// a `sha256`, the `file` it was read from is not compared, so the same set named by a relative or an
/// absolute path, through a symlink, or after its directory was moved, is the same set.
pub fn differences<T: Serialize>(a: &T, b: &T, ignore: &[&str]) -> Vec<String> {
    let (mut va, mut vb) = (serde_json::to_value(a).unwrap(), serde_json::to_value(b).unwrap());
    by_content(&mut va);
    by_content(&mut vb);
    let mut out = Vec::new();
    for (k, x) in va.as_object().into_iter().flatten() {
        let y = &vb[k];
        if ignore.contains(&k.as_str()) || x == y {
            continue;
        }
        match (x.as_object(), y.as_object()) {
            (Some(xo), Some(_)) => {
                out.extend(xo.iter().filter(|(kk, xv)| &y[kk.as_str()] != *xv).map(|(kk, _)| format!("{k}.{kk}")))
            }
            _ => out.push(k.clone()),
        }
    }
    out
}

/// Removes the `file` of every object that also records its `sha256` (see [`differences`]).
fn by_content(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if o.contains_key("sha256") {
                o.remove("file");
            }
            o.values_mut().for_each(by_content);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(by_content),
        _ => {}
    }
}

/// Reads a run directory's configuration.
pub fn read_config<T: DeserializeOwned>(dir: &Path) -> Result<T> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a configuration of this command", path.display()))
}

/// Creates `dir` with `cfg`, or checks that the configuration already there is the same (up to the
/// paths its inputs were read from, [`differences`]); returns the configuration the directory holds,
/// whose recorded paths the outputs keep using, so that a resume under another path writes the same
/// bytes as the run it continues.
pub fn prepare_dir<T: Serialize + DeserializeOwned>(dir: &Path, cfg: &T) -> Result<T> {
    if dir.join(CONFIG).exists() {
        let old: T = read_config(dir)?;
        let diff = differences(&old, cfg, &[]);
        if !diff.is_empty() {
            // the same number of images but others: say so (a changed count changes the fingerprint too)
            let data = if diff.iter().any(|d| d == "data_sha256") && !diff.iter().any(|d| d.contains("images")) {
                " (data_sha256: the run there used other images or labels; give the same --data)"
            } else {
                ""
            };
            bail!(
                "{} holds a run with a different configuration (differs in: {}){data}; use another --out or the same settings",
                dir.display(),
                diff.join(", ")
            );
        }
        return Ok(old);
    }
    atomic_write(&dir.join(CONFIG), serde_json::to_string_pretty(cfg)?.as_bytes())?;
    read_config(dir)
}
