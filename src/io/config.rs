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

/// As [`prepare_dir`], except that a configuration asking for a larger iteration budget than the one
/// saved in `dir`, and the same in everything else, resumes the directory instead of being refused.
/// `budget` gives a configuration's budget where it may grow (None where it may not: a fixed budget,
/// whose every result depends on it); `raise` is called with the saved configuration before the
/// larger budget replaces it in `config.json`, to discard what the larger budget changes. A smaller
/// budget, or any other difference, is refused as [`prepare_dir`] refuses it. Returns the
/// configuration the directory holds from now on (the saved one, with the larger budget).
///
/// The order makes an interrupted raise safe: until `config.json` says the larger budget, the
/// directory is a valid one of the smaller budget (`raise` only discards), so a resume with either
/// budget finds it consistent.
///
/// Errors: as [`prepare_dir`]; those of `raise`; `config.json` cannot be written.
pub fn prepare_dir_raising<T: Serialize + DeserializeOwned + Clone>(
    dir: &Path,
    cfg: &T,
    budget: fn(&mut T) -> Option<&mut usize>,
    raise: impl FnOnce(&T) -> Result<()>,
) -> Result<T> {
    if dir.join(CONFIG).exists() {
        let old: T = read_config(dir)?;
        if let Some(raised) = raised(&old, cfg, budget) {
            raise(&old)?;
            atomic_write(&dir.join(CONFIG), serde_json::to_string_pretty(&raised)?.as_bytes())?;
            return Ok(raised);
        }
    }
    prepare_dir(dir, cfg)
}

/// `old` with `new`'s budget, when that is larger and the two differ in nothing else.
fn raised<T: Serialize + Clone>(old: &T, new: &T, budget: fn(&mut T) -> Option<&mut usize>) -> Option<T> {
    let wanted = *budget(&mut new.clone())?;
    let mut lifted = old.clone();
    let saved = budget(&mut lifted)?;
    if wanted <= *saved {
        return None;
    }
    *saved = wanted;
    differences(&lifted, new, &[]).is_empty().then_some(lifted)
}
