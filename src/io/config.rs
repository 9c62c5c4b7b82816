//! Run directories: the configuration saved beside the results, the refusal of a different one, and
//! the builds of losscape, and the devices they ran on, that wrote there.

use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

use super::atomic_write;

/// The name of a work directory's configuration file.
pub const CONFIG: &str = "config.json";

/// The lock file held while `config.json` is read and rewritten ([`prepare_dir`]); empty, it stays.
pub const CONFIG_LOCK: &str = ".losscape-config.lock";

/// The key of `config.json` that lists the writers ([`writer`]: build and device) whose results the
/// directory holds.
pub const BUILDS: &str = "losscape_builds";

/// What a directory written before [`BUILDS`] was recorded lists for the build(s) that wrote it.
const UNRECORDED: &str = "unrecorded (before losscape recorded its builds)";

/// This build of losscape: its version and the git commit it was built from ("unknown" outside a
/// git checkout). Two builds may round differently (a changed kernel, another `gemm`), so a directory
/// resumed by another build holds results no single build would write.
pub fn build_id() -> String {
    format!("losscape {} ({})", env!("CARGO_PKG_VERSION"), commit())
}

/// The device this process computes with ([`note_device`]); none until one is opened.
static DEVICE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Records `provenance` (`Device::provenance`) as the device this process computes its results with,
/// so that the directories it writes list it beside the build ([`writer`]). The command line calls it
/// when it opens the device; the last call counts.
pub fn note_device(provenance: String) {
    *DEVICE.lock().unwrap_or_else(|e| e.into_inner()) = Some(provenance);
}

/// This process as a writer of results, as [`BUILDS`] lists it: the build and, once one is opened, the
/// device: `losscape 0.1.0 (1a2b3c4d5e6f) on the CPU backend (gemm at avx512f)`. Another device rounds
/// differently too (`gemm` at AVX2 against AVX-512, another GPU or driver).
pub fn writer() -> String {
    match &*DEVICE.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(device) => format!("{} on {device}", build_id()),
        None => build_id(),
    }
}

/// The git commit this binary was built from (set by build.rs), or "unknown".
pub fn commit() -> &'static str {
    option_env!("LOSSCAPE_GIT_COMMIT").unwrap_or("unknown")
}

/// `cfg` as `config.json` holds it: its own keys in their order, then the [`BUILDS`] list.
#[derive(Serialize)]
struct Saved<'a, T> {
    #[serde(flatten)]
    cfg: &'a T,
    losscape_builds: &'a [String],
}

fn write_config<T: Serialize>(dir: &Path, cfg: &T, builds: &[String]) -> Result<()> {
    let text = serde_json::to_string_pretty(&Saved { cfg, losscape_builds: builds })?;
    atomic_write(&dir.join(CONFIG), text.as_bytes())
}

/// The writers (builds and devices, [`writer`]) `dir`'s `config.json` lists (one "unrecorded …" entry
/// when it lists none).
///
/// Errors: the file cannot be read, is not a JSON object, or its [`BUILDS`] is not a list of strings.
pub fn saved_builds(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let saved: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a configuration of losscape (a JSON object)", path.display()))?;
    let Some(listed) = saved.get(BUILDS) else {
        return Ok(vec![UNRECORDED.into()]);
    };
    match serde_json::from_value::<Vec<String>>(listed.clone()) {
        Ok(builds) if !builds.is_empty() => Ok(builds),
        _ => bail!(
            "{}: \"{BUILDS}\" should list the builds of losscape that wrote the directory (strings such as \"{}\"), \
             not {listed}; restore it, or delete the key to have the directory's builds called unrecorded",
            path.display(),
            writer()
        ),
    }
}

/// The writers `dir` lists with this one ([`writer`]) added when it is not there yet, and then the
/// warning to print: what this build on this device adds may differ in its last bits from what the
/// earlier writers, or an uninterrupted run of any one of them, would have written. The caller writes
/// the list.
fn with_this_build(dir: &Path) -> Result<(Vec<String>, Option<String>)> {
    let (mut builds, this) = (saved_builds(dir)?, writer());
    if builds.contains(&this) {
        return Ok((builds, None));
    }
    let warning = format!(
        "warning: {} holds results of {}; this is {this}, and what it adds may differ in the last bits \
         from an uninterrupted run of either (its config.json, and that of every directory this run adds \
         to, lists the builds and devices that wrote there; to have the results of one build on one \
         device, rerun into an empty directory)",
        dir.display(),
        builds.join(", ")
    );
    builds.push(this);
    Ok((builds, Some(warning)))
}

/// Prints the first writer warning of this process only: `reproduce` resumes tens of directories, and
/// one warning says what each of them lists.
fn announce(warning: Option<String>) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Some(warning) = warning {
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!("{warning}");
        }
    }
}

/// Adds this writer to the list of `dir`, whose configuration is `cfg`, when it is not there yet
/// (rewriting `config.json`), and returns the warning [`with_this_build`] gives.
fn note_build<T: Serialize>(dir: &Path, cfg: &T) -> Result<Option<String>> {
    let (builds, warning) = with_this_build(dir)?;
    if warning.is_some() {
        write_config(dir, cfg, &builds)?;
    }
    Ok(warning)
}

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

/// The input files both configurations name alike (the same recorded `file`) but with different
/// `sha256`s, each said as a sentence: a set changed on disk since the run began (rewritten, damaged,
/// or another run's set under the same name), which [`differences`] reports only as the key holding
/// it.
fn changed_inputs<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value::{Array, Object};
        match (a, b) {
            (Object(x), Object(y)) => {
                let (file, sha) = (x.get("file").and_then(|f| f.as_str()), x.get("sha256").and_then(|h| h.as_str()));
                let now = y.get("sha256").and_then(|h| h.as_str());
                if let (Some(file), Some(sha), Some(now)) = (file, sha, now) {
                    if y.get("file").and_then(|f| f.as_str()) == Some(file) && sha != now {
                        out.push(format!(
                            "{file} (as named from the directory) has changed since the run there began: its \
                             SHA-256 is {}…, not the {}… recorded; restore the file that run used, or start \
                             over with this one in another --out",
                            &now[..now.len().min(12)],
                            &sha[..sha.len().min(12)]
                        ));
                    }
                }
                x.iter().filter_map(|(k, v)| y.get(k).map(|w| (v, w))).for_each(|(v, w)| walk(v, w, out));
            }
            (Array(x), Array(y)) => x.iter().zip(y).for_each(|(v, w)| walk(v, w, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) {
        walk(&a, &b, &mut out);
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
/// bytes as the run it continues. A directory resumed by another build of losscape gets it added to
/// its list ([`BUILDS`]), with a warning on stderr.
///
/// Shards of one directory may call this at once: the check, the creation and the rewrite of
/// `config.json` happen under a lock ([`CONFIG_LOCK`]), so that none of them loses another's build.
pub fn prepare_dir<T: Serialize + DeserializeOwned>(dir: &Path, cfg: &T) -> Result<T> {
    let _lock = super::lock::hold_briefly(dir, CONFIG_LOCK)?;
    prepare_locked(dir, cfg)
}

/// [`prepare_dir`] with its lock held.
fn prepare_locked<T: Serialize + DeserializeOwned>(dir: &Path, cfg: &T) -> Result<T> {
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
            let changed = changed_inputs(&old, cfg);
            let fix = if diff.iter().all(|d| d.starts_with("shard")) {
                // a sweep's shards each write a directory of their own (a `surface`'s share one, and
                // its configuration does not name the shard)
                "each shard of a sweep writes a directory of its own: give this one another --out (e.g. \
                 shard-I-of-N), then join them with `losscape merge`"
                    .to_string()
            } else if changed.is_empty() {
                "use another --out or the same settings".to_string()
            } else {
                changed.join("; ")
            };
            bail!(
                "{} holds a run with a different configuration (differs in: {}){data}; {fix}",
                dir.display(),
                diff.join(", ")
            );
        }
        announce(note_build(dir, &old)?);
        return Ok(old);
    }
    write_config(dir, cfg, &[writer()])?;
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
    let _lock = super::lock::hold_briefly(dir, CONFIG_LOCK)?;
    if dir.join(CONFIG).exists() {
        let old: T = read_config(dir)?;
        if let Some(raised) = raised(&old, cfg, budget) {
            raise(&old)?;
            let (builds, warning) = with_this_build(dir)?;
            write_config(dir, &raised, &builds)?;
            announce(warning);
            return Ok(raised);
        }
    }
    prepare_locked(dir, cfg)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    struct Cfg {
        model: String,
        iterations: usize,
    }

    fn budget(c: &mut Cfg) -> Option<&mut usize> {
        Some(&mut c.iterations)
    }

    fn rewrite_builds(dir: &Path, builds: Option<&[&str]>) {
        let path = dir.join(CONFIG);
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let o = v.as_object_mut().unwrap();
        match builds {
            Some(b) => o.insert(BUILDS.into(), b.iter().map(|s| s.to_string()).collect::<Vec<_>>().into()),
            None => o.remove(BUILDS),
        };
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }

    /// A new directory lists this build after the configuration's own keys; the same build resumes
    /// without a word or a rewrite; another build's resume, or one of a directory from before builds
    /// were recorded, is added to the list with a warning naming both; a raised budget keeps the list.
    #[test]
    fn config_json_lists_the_builds_that_wrote_into_the_directory() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let cfg = Cfg { model: "fcp".into(), iterations: 3 };
        assert_eq!(prepare_dir(dir, &cfg).unwrap(), cfg);
        let text = std::fs::read_to_string(dir.join(CONFIG)).unwrap();
        let this = writer();
        assert!(this.starts_with("losscape ") && this.contains(env!("CARGO_PKG_VERSION")), "{this}");
        let expected =
            format!("{{\n  \"model\": \"fcp\",\n  \"iterations\": 3,\n  \"{BUILDS}\": [\n    \"{this}\"\n  ]\n}}");
        assert_eq!(text, expected);
        assert_eq!(note_build(dir, &cfg).unwrap(), None);
        assert_eq!(std::fs::read_to_string(dir.join(CONFIG)).unwrap(), text, "the same build rewrites nothing");

        let older = "losscape 0.0.9 (0123456789ab)";
        rewrite_builds(dir, Some(&[older]));
        let warning = note_build(dir, &cfg).unwrap().expect("another build is announced");
        assert!(warning.contains(older) && warning.contains(&this) && warning.contains("config.json"), "{warning}");
        assert_eq!(saved_builds(dir).unwrap(), [older.to_string(), this.clone()]);
        assert_eq!(read_config::<Cfg>(dir).unwrap(), cfg, "the list does not disturb the configuration");
        assert_eq!(note_build(dir, &cfg).unwrap(), None, "listed once");

        rewrite_builds(dir, None);
        assert!(note_build(dir, &cfg).unwrap().unwrap().contains(UNRECORDED));
        assert_eq!(saved_builds(dir).unwrap(), [UNRECORDED.to_string(), this.clone()]);

        let more = Cfg { iterations: 5, ..cfg.clone() };
        assert_eq!(prepare_dir_raising(dir, &more, budget, |_| Ok(())).unwrap(), more);
        assert_eq!(read_config::<Cfg>(dir).unwrap(), more);
        assert_eq!(saved_builds(dir).unwrap(), [UNRECORDED.to_string(), this]);
    }

    /// A list that is not one of strings is refused naming the file, the key and both ways out.
    #[test]
    fn a_damaged_build_list_is_named() {
        let t = tempfile::tempdir().unwrap();
        let cfg = Cfg { model: "fcp".into(), iterations: 3 };
        prepare_dir(t.path(), &cfg).unwrap();
        for damaged in [serde_json::json!("losscape 0.1.0"), serde_json::json!([1, 2]), serde_json::json!([])] {
            let path = t.path().join(CONFIG);
            let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            v[BUILDS] = damaged.clone();
            std::fs::write(&path, v.to_string()).unwrap();
            let e = format!("{:#}", prepare_dir(t.path(), &cfg).unwrap_err());
            for part in [&path.display().to_string(), BUILDS, &damaged.to_string(), "restore it", "delete the key"] {
                assert!(e.contains(part), "{part} missing from: {e}");
            }
        }
    }

    /// The read and rewrite of `config.json` waits for a holder of its lock (another shard).
    #[test]
    fn preparing_a_directory_waits_for_the_config_lock() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let held = crate::io::lock::hold_briefly(&dir, CONFIG_LOCK).unwrap().expect("this file system locks");
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let cfg = Cfg { model: "fcp".into(), iterations: 3 };
            tx.send(prepare_dir(&dir, &cfg).map(|_| ()).map_err(|e| e.to_string())).unwrap();
        });
        let waited = rx.recv_timeout(std::time::Duration::from_millis(300));
        assert!(waited.is_err(), "prepare_dir went on while the lock was held: {waited:?}");
        assert!(!t.path().join(CONFIG).exists());
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap().unwrap();
        worker.join().unwrap();
        assert_eq!(saved_builds(t.path()).unwrap(), [writer()]);
    }

    /// An input set changed on disk under the same name is said as such, with both checksums.
    #[test]
    fn a_changed_input_file_is_named_with_both_checksums() {
        #[derive(Serialize, Deserialize, Debug)]
        struct WithSet {
            sets: Vec<serde_json::Value>,
        }
        let set = |sha: &str| serde_json::json!({"file": "../sets/sgd.safetensors", "sha256": sha, "vectors": 2});
        let t = tempfile::tempdir().unwrap();
        prepare_dir(t.path(), &WithSet { sets: vec![set(&"a".repeat(64))] }).unwrap();
        let e = prepare_dir(t.path(), &WithSet { sets: vec![set(&"b".repeat(64))] }).unwrap_err().to_string();
        let expected = ["differs in: sets", "../sets/sgd.safetensors", "has changed", &"b".repeat(12), &"a".repeat(12)];
        assert!(expected.iter().all(|p| e.contains(p)), "{e}");
        // another file (another name) is only a difference of the configuration
        let other = serde_json::json!({"file": "../sets/adam.safetensors", "sha256": "c".repeat(64), "vectors": 2});
        let e = prepare_dir(t.path(), &WithSet { sets: vec![other] }).unwrap_err().to_string();
        assert!(e.contains("differs in: sets") && !e.contains("has changed"), "{e}");
    }
}
