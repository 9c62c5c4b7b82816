//! `losscape paths` and `merge` as a user runs them: shards, resume after SIGKILL, refusals.

#[path = "common/files.rs"]
mod files;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn records(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The command line of a small sweep; `extra` holds (flag, value) pairs that override the defaults.
fn sweep_args(set: &str, out: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let mut opts = vec![
        ("--pairs", "6"),
        ("--seed", "3"),
        ("--train-size", "40"),
        ("--points", "5"),
        ("--fourier", "2"),
        ("--iterations", "2"),
        ("--lr", "0.01"),
    ];
    for &(k, v) in extra {
        match opts.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => opts.push((k, v)),
        }
    }
    if extra.iter().any(|&(k, v)| k == "--curve" && v != "fourier") {
        opts.retain(|(k, _)| *k != "--fourier"); // one bend
    }
    let mut args: Vec<String> =
        ["paths", "--model", "fcp", "--set", set, "--out", out, "--quiet"].map(String::from).to_vec();
    for (k, v) in opts {
        args.push(k.to_string());
        args.push(v.to_string());
    }
    args
}

fn run_sweep(args: Vec<String>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

#[test]
fn shards_together_equal_the_unsharded_run_and_configurations_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let set = d("set.safetensors");
    ok(losscape(&["init", "--model", "fcp", "--count", "4", "--out", &set]));
    ok(run_sweep(sweep_args(&set, &d("all"), &[])));
    let all = records(&dir.path().join("all/paths.jsonl"));
    assert_eq!(all.len(), 6);
    let mut pairs: Vec<_> =
        all.iter().map(|r| (r["pair"][0].as_u64().unwrap(), r["pair"][1].as_u64().unwrap())).collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 6, "six distinct pairs of four vectors");
    for i in 0..3 {
        let shard = format!("{i}/3");
        ok(run_sweep(sweep_args(&set, &d(&format!("s{i}")), &[("--shard", &shard)])));
        let part = records(&dir.path().join(format!("s{i}/paths.jsonl")));
        assert!(part.iter().all(|r| r["index"].as_u64().unwrap() % 3 == i));
    }
    // merged beside the sweeps' directories, so that it names the set as they do (from one level down)
    ok(losscape(&["merge", &d("s0"), &d("s1"), &d("s2"), "--out", &d("m/merged.jsonl")]));
    let merged = records(&dir.path().join("m/merged.jsonl"));
    let mut sorted = all.clone();
    sorted.sort_by_key(|r| r["index"].as_u64());
    assert_eq!(merged, sorted, "the union of the shards is the unsharded run");
    // shards written by different builds merge, with a warning naming the writers
    let this = files::pretend_written_by(&dir.path().join("s1"), "losscape 0.0.9 (0123456789ab)");
    let o = ok(losscape(&["merge", &d("s0"), &d("s1"), &d("s2"), "--out", &d("m/merged2.jsonl")]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("2 builds or devices ({this}; losscape 0.0.9 (0123456789ab))")), "{err}");
    assert_eq!(records(&dir.path().join("m/merged2.jsonl")), sorted);
    // a different configuration in the same directory is refused, naming the difference
    let o = run_sweep(sweep_args(&set, &d("all"), &[("--lambda", "0.5")]));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("settings.lambda"), "{}", String::from_utf8_lossy(&o.stderr));
    // another shard given one shard's directory is told that each shard writes its own, then merge
    let o = run_sweep(sweep_args(&set, &d("s0"), &[("--shard", "1/3")]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("shard.index") && err.contains("a directory of its own") && err.contains("merge"), "{err}");
    assert!(!err.contains("  "), "one space between words: {err}");
    // shards of different sweeps do not merge
    ok(run_sweep(sweep_args(&set, &d("other"), &[("--seed", "4"), ("--shard", "1/3")])));
    let o = losscape(&["merge", &d("s0"), &d("other"), "--out", &d("bad.jsonl")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("seed"), "{}", String::from_utf8_lossy(&o.stderr));
    // one shard named twice is a usage error; a shard moved away from its set is merged with a warning
    let o = losscape(&["merge", &d("s0"), &format!("{}/../s0", d("s1")), "--out", &d("twice.jsonl")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("are the same directory"), "{err}");
    // (a shard moved deeper still finds its set above it, by its checksum)
    std::fs::create_dir_all(dir.path().join("deeper/still")).unwrap();
    std::fs::rename(dir.path().join("s2"), dir.path().join("deeper/still/s2")).unwrap();
    let merge = || losscape(&["merge", &d("s0"), &d("s1"), &d("deeper/still/s2"), "--out", &d("m/merged3.jsonl")]);
    let o = ok(merge());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("is not there"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(records(&dir.path().join("m/merged3.jsonl")), sorted);
    std::fs::rename(&set, d("elsewhere.safetensors")).unwrap();
    let o = ok(merge());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("is not there (was the directory moved away from its set?)").count(), 3, "{err}");
    assert!(err.contains("deeper/still/s2"), "{err}");
}

/// A shard that holds none of the pairs says so, and what it wrote, rather than naming a results file
/// that it does not write; `merge` takes it with the others.
#[test]
fn a_shard_without_pairs_says_so_and_names_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let set = d("set.safetensors");
    ok(losscape(&["init", "--model", "fcp", "--count", "2", "--out", &set]));
    let shard = |i: usize| {
        let shard = format!("{i}/3");
        let extra = [("--pairs", "1"), ("--shard", shard.as_str()), ("--backend", "cpu")];
        String::from_utf8(ok(run_sweep(sweep_args(&set, &d(&format!("s{i}")), &extra))).stdout).unwrap()
    };
    let empty = shard(1);
    assert!(empty.contains("shard 1/3 holds none of the sweep's 1 pair(s)"), "{empty}");
    assert!(empty.contains("config.json") && !empty.contains("paths.jsonl"), "{empty}");
    assert!(dir.path().join("s1/config.json").is_file() && !dir.path().join("s1/paths.jsonl").exists());
    let full = shard(0);
    assert!(full.contains("1 pair(s) computed; results in") && full.contains("paths.jsonl"), "{full}");
    // merged at the shards' depth, so that it names the set as they do
    ok(losscape(&["merge", &d("s0"), &d("s1"), "--out", &d("m/merged.jsonl")]));
    assert_eq!(records(&dir.path().join("m/merged.jsonl")), records(&dir.path().join("s0/paths.jsonl")));
}

#[test]
fn killed_and_resumed_sweep_loses_and_duplicates_nothing() {
    for curve in ["fourier", "bezier", "polychain"] {
        killed_and_resumed(curve);
    }
}

fn killed_and_resumed(curve: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let set = d("set.safetensors");
    ok(losscape(&["init", "--model", "fcp", "--count", "4", "--out", &set]));
    // one pair per batch, so that records appear one by one (a GPU's default batches several pairs,
    // whose records then appear together; tests/pairs_batch.rs kills and resumes batched sweeps). Four
    // iterations (was 8): a pair still takes ~25 ms on the CPU backend, so the kill lands four pairs
    // before the end, and the sweeps take half the time on lavapipe.
    let slow = [("--iterations", "4"), ("--train-size", "100"), ("--curve", curve), ("--pairs-per-batch", "1")];
    ok(run_sweep(sweep_args(&set, &d("ref"), &slow)));
    let reference = records(&dir.path().join("ref/paths.jsonl"));

    let results = dir.path().join("run/paths.jsonl");
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_losscape")).args(sweep_args(&set, &d("run"), &slow)).spawn().unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&results).map(|t| t.lines().count()).unwrap_or(0) < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "no pair finished in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = records(&results).len();
    assert!(before < 6, "{curve}: the kill came too late to test anything");
    // a killed write (of a saved path, config.json, a merge's output) leaves a temporary file: removed on
    // resume, as the byte comparison with the uninterrupted run below checks
    std::fs::write(dir.path().join("run/.partial-killed"), b"half a file").unwrap();
    ok(run_sweep(sweep_args(&set, &d("run"), &slow)));
    let mut after = records(&results);
    after.sort_by_key(|r| r["index"].as_u64());
    let mut expected = reference;
    expected.sort_by_key(|r| r["index"].as_u64());
    assert_eq!(after, expected, "{curve}: resumed results equal an uninterrupted run, each pair once");
    assert!(after.iter().all(|r| r["curve"] == curve), "{curve}: each record names its curve family");
    // in the same order, byte for byte (config.json, paths.jsonl and the two emptied lock files)
    assert_eq!(files::assert_same_bytes(&dir.path().join("ref"), &dir.path().join("run")), 4);
}

#[test]
fn aligned_sweep_records_both_sides_and_permuted_copies_meet_on_a_flat_line() {
    use losscape::io::{write_weights, WeightStack};
    use losscape::model::{init_vector, Arch, Symmetry};
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    // one vector and three copies with reordered hidden units: the same function at four points
    let sym = Symmetry::of(Arch::Fcp);
    let a: Vec<f32> = init_vector(Arch::Fcp, 9).iter().map(|x| x * 3.0).collect();
    let mut flat = a.clone();
    for k in 1..4 {
        let mut perms = sym.identity();
        for p in &mut perms {
            p.rotate_left(k * 7);
        }
        flat.extend(sym.apply(&a, &perms).unwrap());
    }
    let set = d("copies.npy");
    write_weights(std::path::Path::new(&set), &WeightStack::new(Arch::Fcp, flat)).unwrap();
    let extra = [("--align", ""), ("--curve", "bezier")];
    let mut args = sweep_args(&set, &d("aligned"), &[("--curve", "bezier")]);
    args.push("--align".into());
    ok(run_sweep(args.clone()));
    let rs = records(&dir.path().join("aligned/paths.jsonl"));
    assert_eq!(rs.len(), 6);
    for r in &rs {
        assert_eq!((r["aligned"].as_bool(), r["curve"].as_str()), (Some(true), Some("bezier")));
        assert_eq!(r["distance"].as_f64(), Some(0.0), "aligned copies coincide: {r}");
        assert!(r["unaligned_distance"].as_f64().unwrap() > 1.0);
        let line: Vec<f64> = r["straight_losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(line.iter().all(|&l| l == line[0]), "the aligned straight line is one point: {line:?}");
        // (untrained copies: the unaligned line dips between them, so its height is the endpoints' loss)
        assert!(r["unaligned_straight_height"].as_f64().unwrap() >= r["straight_height"].as_f64().unwrap(), "{r}");
    }
    // without --align the same directory is refused; --fourier with a one-bend curve is refused
    let o = run_sweep(sweep_args(&set, &d("aligned"), &[("--curve", "bezier")]));
    assert!(String::from_utf8_lossy(&o.stderr).contains("align"), "{}", String::from_utf8_lossy(&o.stderr));
    let mut bad = sweep_args(&set, &d("bad"), &extra[1..]);
    bad.extend(["--fourier".to_string(), "3".to_string()]);
    let o = run_sweep(bad);
    assert!(String::from_utf8_lossy(&o.stderr).contains("one bend"), "{}", String::from_utf8_lossy(&o.stderr));
    // unaligned records say so
    ok(run_sweep(sweep_args(&set, &d("plain"), &[])));
    let plain = records(&dir.path().join("plain/paths.jsonl"));
    assert!(plain
        .iter()
        .all(|r| r["aligned"] == false && r["unaligned_distance"].is_null() && r["curve"] == "fourier"));
}
