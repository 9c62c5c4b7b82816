//! Same inputs, same bytes: `init`, `train` (SGD and L-BFGS), `paths` (with saved coefficients),
//! `merge`, `toy` and `analyze` run twice write byte-identical files. (Resume after SIGKILL gives the
//! uninterrupted run's bytes too: tests/train.rs and tests/paths_cli.rs.)

#[path = "common/files.rs"]
mod files;

use std::path::Path;
use std::process::{Command, Output};

fn losscape(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn train_twice_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sgd = [
        "train",
        "--model",
        "fcp",
        "--optimizer",
        "sgd",
        "--runs",
        "3",
        "--keep",
        "2",
        "--seed",
        "5",
        "--epochs",
        "3",
        "--train-size",
        "300",
        "--test-size",
        "100",
        "--quiet",
        "--out",
    ];
    let lbfgs = [
        "train",
        "--model",
        "fcp",
        "--optimizer",
        "lbfgs",
        "--runs",
        "2",
        "--keep",
        "2",
        "--seed",
        "1",
        "--iterations",
        "2",
        "--train-size",
        "200",
        "--test-size",
        "50",
        "--quiet",
        "--out",
    ];
    for run in ["A", "B"] {
        for (name, cmd) in [("sgd", &sgd[..]), ("lbfgs", &lbfgs[..])] {
            let out = d.join(run).join("fcp").join(name);
            losscape(&[cmd, &[s(&out)]].concat());
        }
        losscape(&["analyze", "--in", s(&d.join(run)), "--out", s(&d.join(format!("report-{run}")))]);
    }
    // two sets, summary, config, checkpoint and one curve per run, of each optimizer
    let n = files::assert_same_bytes(&d.join("A"), &d.join("B"));
    assert!(n >= 2 * 7, "only {n} files compared");
    // the report: tables, figures (PNG), their CSVs, index.html
    let n = files::assert_same_bytes(&d.join("report-A"), &d.join("report-B"));
    assert!(n >= 10, "only {n} report files compared");
}

#[test]
fn init_paths_merge_and_toy_twice_write_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for run in ["A", "B"] {
        let r = d.join(run);
        std::fs::create_dir_all(&r).unwrap();
        // the set lives in a shared place: sweeps record its name and SHA-256
        let set = d.join(format!("set-{run}.safetensors"));
        losscape(&["init", "--model", "fcp", "--count", "3", "--seed", "2", "--out", s(&set)]);
        std::fs::copy(&set, r.join("set.safetensors")).unwrap();
        let set = d.join("set.safetensors");
        std::fs::copy(d.join(format!("set-{run}.safetensors")), &set).unwrap();
        for shard in ["0/2", "1/2"] {
            let out = r.join(format!("shard-{}", &shard[..1]));
            losscape(&[
                "paths",
                "--model",
                "fcp",
                "--set",
                s(&set),
                "--pairs",
                "3",
                "--train-size",
                "40",
                "--points",
                "4",
                "--fourier",
                "2",
                "--iterations",
                "2",
                "--save-paths",
                "--shard",
                shard,
                "--quiet",
                "--out",
                s(&out),
            ]);
        }
        losscape(&["merge", s(&r.join("shard-0")), s(&r.join("shard-1")), "--out", s(&r.join("merged.jsonl"))]);
        losscape(&["toy", "--out", s(&r.join("toy"))]);
    }
    let n = files::assert_same_bytes(&d.join("A"), &d.join("B"));
    assert!(n >= 12, "only {n} files compared");
}
