//! The path records of a work directory's sweeps, each tied to the solution set it joins by the set's
//! file name, not by its position among the sweep's `--set` options.

use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

use crate::io::workdir::{landscape_sets, paths_dir, set_name};
use crate::model::Arch;
use crate::path::sweep::{read_sweep_records, PairRecord};

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
/// Errors: a damaged or unreadable record file ([`read_sweep_records`]).
pub fn landscape_records(dir: &Path, arch: Arch, landscape: &str, warn: bool) -> Result<Vec<PairRecord>> {
    let sweep = paths_dir(dir, arch, landscape);
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
