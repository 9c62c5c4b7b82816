//! Byte-for-byte comparison of output directories.

use std::path::{Path, PathBuf};

/// Every file under `dir`, as paths relative to it, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Asserts that `a` and `b` hold the same files with the same bytes; returns how many were compared.
pub fn assert_same_bytes(a: &Path, b: &Path) -> usize {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa, fb, "the two directories hold different files");
    for f in &fa {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{} differs between {} and {}", f.display(), a.display(), b.display());
    }
    fa.len()
}

/// Rewrites `dir/config.json` as if the build `older` alone had written the directory (its
/// `losscape_builds` list); returns the build the file listed before, which is this build when this
/// build made the directory.
#[allow(dead_code)] // not every test binary that includes this module resumes with another build
pub fn pretend_written_by(dir: &Path, older: &str) -> String {
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let builds = cfg["losscape_builds"].as_array().unwrap_or_else(|| panic!("{}: no builds: {cfg}", path.display()));
    assert_eq!(builds.len(), 1, "{}: {cfg}", path.display());
    let this = builds[0].as_str().unwrap().to_string();
    cfg["losscape_builds"] = serde_json::json!([older]);
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    this
}
