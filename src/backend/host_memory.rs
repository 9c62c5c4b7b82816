//! How much host memory this process may still take: the machine's available memory, and under a
//! control group's limit (a Slurm job, a container) what the group has left, whichever is less.
//!
//! Read from the kernel's files (Linux): `MemAvailable` of `/proc/meminfo` (the kernel's own estimate
//! of what can be allocated without swapping, page cache it would reclaim included), and for each
//! control group from the process's own up to the root of the hierarchy: cgroup v2 `memory.max` less
//! `memory.current`, or v1 `memory.limit_in_bytes` less `memory.usage_in_bytes`, where the usage is
//! counted without inactive file pages (`memory.stat`), which the kernel reclaims before it kills — the
//! "working set" container runtimes compare with the limit. No crate is used for this: `sysinfo` reads
//! the same files but only the process's own group (not the ancestors that carry a job's limit), and
//! it is a large dependency for two numbers.

use std::path::{Path, PathBuf};

/// Memory available to this process, in bytes, and where the number comes from (in words).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostMemory {
    /// Bytes available.
    pub bytes: u64,
    /// The file (or option) the number comes from.
    pub source: String,
}

/// v1 reports "no limit" as a page-rounded `i64::MAX`; anything this large is no limit.
const NO_LIMIT: u64 = 1 << 60;

/// The memory this process may take, from the live system (`/proc`, `/sys/fs/cgroup`); `None` where
/// the files are missing (not Linux), so that the caller applies no budget rather than a guess.
pub fn available() -> Option<HostMemory> {
    available_in(Path::new("/proc"), Path::new("/sys/fs/cgroup"))
}

/// [`available`] with the `/proc` and `/sys/fs/cgroup` trees at `proc` and `cgroup` (tests give a
/// made-up tree).
pub fn available_in(proc: &Path, cgroup: &Path) -> Option<HostMemory> {
    let meminfo = std::fs::read_to_string(proc.join("meminfo")).ok()?;
    let kib = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.trim().strip_suffix("kB")?;
    let mut best =
        HostMemory { bytes: kib.trim().parse::<u64>().ok()? * 1024, source: "MemAvailable in /proc/meminfo".into() };
    let groups = std::fs::read_to_string(proc.join("self/cgroup")).unwrap_or_default();
    for (dir, files) in group_dirs(&groups, cgroup) {
        if let Some(left) = group_left(&dir, files) {
            if left.bytes < best.bytes {
                best = left;
            }
        }
    }
    Some(best)
}

/// The names of a hierarchy's files: one its mount's root always has, the limit, the usage and the
/// inactive-file statistic.
#[derive(Clone, Copy)]
struct Files {
    root: &'static str,
    limit: &'static str,
    usage: &'static str,
    inactive: &'static str,
}

const V2: Files =
    Files { root: "cgroup.controllers", limit: "memory.max", usage: "memory.current", inactive: "inactive_file" };
const V1: Files = Files {
    root: "memory.usage_in_bytes",
    limit: "memory.limit_in_bytes",
    usage: "memory.usage_in_bytes",
    inactive: "total_inactive_file",
};

/// The directories of this process's memory control groups, from `/proc/self/cgroup`: the v2 group
/// ("0::/path", under `cgroup` or, on a hybrid system, `cgroup/unified`) and the v1 memory group
/// ("N:memory:/path", under `cgroup/memory`). A path the mount does not show (a group namespace shows
/// its own root) falls back to the mount's root.
fn group_dirs(groups: &str, cgroup: &Path) -> Vec<(PathBuf, Files)> {
    let mut out = Vec::new();
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (mounts, files) = match controllers {
            "" => (vec![cgroup.to_path_buf(), cgroup.join("unified")], V2),
            c if c.split(',').any(|c| c == "memory") => (vec![cgroup.join("memory")], V1),
            _ => continue,
        };
        for mount in mounts.into_iter().filter(|m| m.join(files.root).exists()) {
            let own = mount.join(path.trim_start_matches('/'));
            out.push((if own.is_dir() { own } else { mount.clone() }, files));
            // the group's ancestors up to the mount may hold the tighter limit (a job's, above its steps')
            let mut d = out.last().expect("just pushed").0.clone();
            while d != mount && d.pop() && d.starts_with(&mount) {
                out.push((d.clone(), files));
            }
        }
    }
    out
}

/// What the group at `dir` has left under its limit; `None` without a limit.
fn group_left(dir: &Path, files: Files) -> Option<HostMemory> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let limit: u64 = read(files.limit)?.trim().parse().ok().filter(|&l| l < NO_LIMIT)?;
    let usage: u64 = read(files.usage).and_then(|u| u.trim().parse().ok()).unwrap_or(0);
    let inactive: u64 = read("memory.stat")
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(files.inactive)?.strip_prefix(' ')?.trim().parse().ok()))
        .unwrap_or(0);
    let left = limit.saturating_sub(usage.saturating_sub(inactive));
    Some(HostMemory {
        bytes: left,
        source: format!("the control group's {} less its usage", dir.join(files.limit).display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`available_in`] finds in a made-up tree: 4,000,000 kB available, `groups` as
    /// `/proc/self/cgroup`, and `files` (path under the cgroup root, content).
    fn available_with(groups: &str, files: &[(&str, &str)]) -> Option<HostMemory> {
        let t = tempfile::tempdir().unwrap();
        let mut all =
            vec![("proc/meminfo", "MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n"), ("proc/self/cgroup", groups)];
        let cg: Vec<(String, &str)> = files.iter().map(|(p, text)| (format!("cg/{p}"), *text)).collect();
        all.extend(cg.iter().map(|(p, text)| (p.as_str(), *text)));
        for (path, text) in all {
            let p = t.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        available_in(&t.path().join("proc"), &t.path().join("cg"))
    }

    const MACHINE: &str = "MemAvailable in /proc/meminfo";

    #[test]
    fn without_a_limit_the_machine_s_available_memory() {
        let m = available_with("0::/\n", &[("cgroup.controllers", "cpu memory\n")]);
        assert_eq!(m, Some(HostMemory { bytes: 4_000_000 * 1024, source: MACHINE.into() }));
    }

    #[test]
    fn a_v2_limit_of_an_ancestor_counts_less_its_working_set() {
        let m = available_with(
            "0::/job/step\n",
            &[
                ("cgroup.controllers", "cpu memory\n"),
                ("job/memory.max", "1000000000\n"),
                ("job/memory.current", "600000000\n"),
                ("job/memory.stat", "anon 400000000\ninactive_file 100000000\n"),
                ("job/step/memory.max", "max\n"),
                ("job/step/memory.current", "10\n"),
            ],
        )
        .unwrap();
        assert_eq!(m.bytes, 1_000_000_000 - 500_000_000);
        assert!(m.source.contains("job/memory.max"), "{}", m.source);
    }

    #[test]
    fn a_v1_limit_and_a_namespace_that_hides_the_group_s_path() {
        let v1 = |limit| {
            available_with(
                "4:memory:/not/mounted/here\n0::/\n",
                &[
                    ("memory/memory.limit_in_bytes", limit),
                    ("memory/memory.usage_in_bytes", "500000000\n"),
                    ("memory/memory.stat", "cache 1\ntotal_inactive_file 250000000\n"),
                ],
            )
            .unwrap()
        };
        assert_eq!(v1("2000000000\n").bytes, 2_000_000_000 - 250_000_000);
        // v1's "no limit" is no limit
        assert_eq!(v1("9223372036854771712\n").source, MACHINE);
    }

    #[test]
    fn no_proc_no_budget() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(available_in(&t.path().join("proc"), &t.path().join("cg")), None);
    }
}
