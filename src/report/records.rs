//! The path records of a work directory's sweeps, each tied to the solution set it joins by the set's
//! file name, not by its position among the sweep's `--set` options.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::Path;

use crate::io::shard::sha256_file;
use crate::io::workdir::{landscape_sets, paths_dir, set_file, set_name};
use crate::model::Arch;
use crate::path::sweep::{read_sweep_records, sweep_sets, PairRecord};

/// The records of `arch`'s sweep on `landscape` (shards included, in pair order), each with `set`
/// rewritten to its set's position in [`landscape_sets`]: the set whose file name ([`set_name`]) the
/// record's `set_file` ends in.
///
/// `reproduce` passes the sets in that order, but a directory laid out by hand may list them in
/// another order or leave some out; reading `set` as a position there would put one optimizer's paths
/// under the other's name. Records of any other set (an Adam set, a renamed file) are left out; with
/// `warn` (one reader per report, so that it is said once) a warning on standard error names the sweep
/// directory, the file and how many paths that is.
///
/// Errors: a damaged or unreadable record file ([`read_sweep_records`]); a set the sweep ran on whose
/// checksum differs from the set of that name in the directory (checked by `same_sets`).
pub fn landscape_records(dir: &Path, arch: Arch, landscape: &str, warn: bool) -> Result<Vec<PairRecord>> {
    let sweep = paths_dir(dir, arch, landscape);
    same_sets(dir, arch, landscape)?;
    let names: Vec<String> = landscape_sets(landscape).iter().map(|&(opt, kind)| set_name(arch, opt, kind)).collect();
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for mut r in read_sweep_records(&sweep)? {
        let name = Path::new(&r.set_file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match names.iter().position(|n| *n == name) {
            Some(set) => {
                r.set = set;
                out.push(r);
            }
            None => *others.entry(r.set_file.clone()).or_default() += 1,
        }
    }
    for (file, count) in others.into_iter().filter(|_| warn) {
        eprintln!(
            "warning: {}: {count} path(s) join vectors of {file}, which is not one of the sets compared on the \
             {landscape} landscape ({}); they are left out of the report",
            sweep.display(),
            names.join(", ")
        );
    }
    Ok(out)
}

/// Checks that each set the sweep of `arch` on `landscape` ran on, where its file has the name of one
/// of the directory's sets, holds that set (the SHA-256 its configuration records against the file's):
/// a sweep run on another file of the same name, or on sets trained again since, would put its paths
/// under a set whose vectors they do not join.
///
/// Errors: the first set whose checksum differs, naming the sweep's configuration, the set file and the
/// fix; a set file that cannot be read.
fn same_sets(dir: &Path, arch: Arch, landscape: &str) -> Result<()> {
    let sweep = paths_dir(dir, arch, landscape);
    for (from, info) in sweep_sets(&sweep)? {
        let name = Path::new(&info.file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(&(opt, kind)) = landscape_sets(landscape).iter().find(|&&(o, k)| set_name(arch, o, k) == name) else {
            continue;
        };
        let file = set_file(dir, arch, opt, kind);
        if !file.exists() {
            continue; // the report says which sets are missing
        }
        let sha = sha256_file(&file)?;
        if sha != info.sha256 {
            bail!(
                "{}: the sweep ran on a set {name} with SHA-256 {}…, but {} has {}…: its paths do not join that set's \
                 vectors; run the sweep again on {} (or put the set it ran on back)",
                from.join("config.json").display(),
                &info.sha256[..12.min(info.sha256.len())],
                file.display(),
                &sha[..12],
                file.display()
            );
        }
    }
    Ok(())
}
