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
