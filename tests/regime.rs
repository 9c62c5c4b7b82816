//! `reproduce --images`: the regime map as a user runs it — one study per training-set size, the map,
//! resume, adding a size, and the refusals.

#[path = "common/files.rs"]
mod files;

use std::path::Path;
use std::process::{Command, Output};

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn smoke_map(out: &Path, images: &str) -> Output {
    losscape(&["reproduce", "--preset", "smoke", "--models", "fcp", "--images", images, "--out", out.to_str().unwrap()])
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_map_over_two_sizes_runs_resumes_and_grows() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("map");
    ok(smoke_map(&work, "128,64"));
    // one study per size, each on its own first N images
    for n in [64, 128] {
        let cfg: serde_json::Value =
            serde_json::from_str(&read(&work.join(format!("images-{n}/config.json")))).unwrap();
        assert_eq!(cfg["preset"]["train_images"], n, "{cfg}");
        assert!(work.join(format!("images-{n}/report/claims.json")).exists());
    }
    let regime = work.join("regime");
    let csv = read(&regime.join("regime.csv"));
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "2 sizes x (BFGS-train, SGD-train), smallest first: {csv}");
    assert!(rows[0].starts_with("fcp,64,") && rows[0].contains(",BFGS-train,1,0,"), "{csv}");
    assert!(rows[3].starts_with("fcp,128,") && rows[3].contains(",SGD-train,1,0,"), "{csv}");
    // 128 images / 42200 parameters
    assert!(rows[2].starts_with(&format!("fcp,128,{},", 128.0 / 42200.0)), "{csv}");
    let verdicts = read(&regime.join("regime-claims.csv"));
    for n in [64, 128] {
        assert!(verdicts.contains(&format!("FCP,{n},{},heights-sgd-lower,train,too few samples,", n as f64 / 42200.0)));
    }
    let html = read(&regime.join("index.html"));
    assert!(html.contains("regime-fcp.png") && regime.join("regime-fcp.png").exists());
    assert!(html.contains("<a href=\"../images-64/report/index.html\">64 images</a>"), "{html}");
    // a second invocation recomputes nothing and writes the same map
    let before = read(&work.join("images-64/fcp/paths-train/paths.jsonl"));
    let o = ok(smoke_map(&work, "64,128"));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("FCP lbfgs: done earlier") && log.contains("FCP train landscape: 0 pair(s) computed"),
        "{log}"
    );
    assert_eq!(read(&regime.join("regime.csv")), csv);
    // adding a size keeps the others' results and puts it in the map
    ok(smoke_map(&work, "64,96,128"));
    assert_eq!(read(&work.join("images-64/fcp/paths-train/paths.jsonl")), before);
    let grown = read(&regime.join("regime.csv"));
    assert_eq!(grown.lines().count(), 1 + 6, "{grown}");
    assert!(grown.lines().nth(3).unwrap().starts_with("fcp,96,"), "{grown}");
}

#[test]
fn sizes_out_of_range_and_mixed_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("map");
    for bad in ["10", "64,70000"] {
        let o = smoke_map(&work, bad);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("each size must be between 64"), "{err}");
        assert!(!work.exists(), "refused before the directory is touched");
    }
    // a single study's directory is not a map's, and the other way round
    let single = dir.path().join("single");
    ok(losscape(&[
        "reproduce",
        "--preset",
        "smoke",
        "--models",
        "fcp",
        "--stage",
        "train",
        "--out",
        single.to_str().unwrap(),
    ]));
    let o = smoke_map(&single, "64");
    assert!(!o.status.success(), "a map into a single study's directory");
    assert!(String::from_utf8_lossy(&o.stderr).contains("config.json"), "{}", String::from_utf8_lossy(&o.stderr));
    ok(smoke_map(&work, "64"));
    let o = losscape(&["reproduce", "--preset", "smoke", "--models", "fcp", "--out", work.to_str().unwrap()]);
    assert!(!o.status.success(), "a single study into a map's directory");
    // the map's settings are fixed by its first invocation
    let o = losscape(&[
        "reproduce",
        "--preset",
        "smoke",
        "--models",
        "fcp",
        "--align",
        "--images",
        "64",
        "--out",
        work.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("differs in: regime.align"), "{err}");
}

/// Sets the path budget recorded in the JSON file `file` at `key` (a path of object keys) to `k`.
fn set_budget(file: &Path, key: &[&str], k: usize) {
    let mut cfg: serde_json::Value = serde_json::from_str(&read(file)).unwrap();
    let slot = key.iter().fold(&mut cfg, |v, k| &mut v[*k]);
    assert!(slot.is_u64(), "{}: no budget at {key:?}", file.display());
    *slot = k.into();
    std::fs::write(file, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

#[test]
fn a_map_made_with_a_smaller_path_budget_resumes_under_the_presets_to_a_fresh_maps_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (fresh, old) = (dir.path().join("fresh"), dir.path().join("old"));
    ok(smoke_map(&fresh, "64"));
    // the map an older smoke preset with a budget of one path iteration would have left: smoke's paths
    // never converge (the rule needs 10 iterations), so every pair has to be found again
    for f in files::files(&fresh) {
        std::fs::create_dir_all(old.join(&f).parent().unwrap()).unwrap();
        std::fs::copy(fresh.join(&f), old.join(&f)).unwrap();
    }
    set_budget(&old.join("config.json"), &["regime", "preset", "path", "iterations"], 1);
    set_budget(&old.join("images-64/config.json"), &["preset", "path", "iterations"], 1);
    for landscape in ["train", "test"] {
        set_budget(&old.join(format!("images-64/fcp/paths-{landscape}/config.json")), &["settings", "iterations"], 1);
    }
    // what is made from the paths goes: a file the report of the smaller budget had, and its surfaces
    std::fs::write(old.join("images-64/report/stale.txt"), "from the smaller budget").unwrap();
    let o = ok(smoke_map(&old, "64"));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("FCP lbfgs: done earlier"), "the training is kept: {log}");
    // every pair of the four sets on the training landscape, and of the two on the test one
    assert!(log.contains("train landscape: 4 pair(s) computed") && log.contains("test landscape: 2 pair(s)"), "{log}");
    // configurations, paths, probes, report and map: the bytes of the map made with the larger budget
    files::assert_same_bytes(&fresh, &old);
    // a smaller budget than the map's is refused
    set_budget(&old.join("config.json"), &["regime", "preset", "path", "iterations"], 3);
    let o = smoke_map(&old, "64");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("differs in: regime.preset"), "{err}");
}
