//! `losscape surface` and `losscape hessian` as a user runs them: outputs, refusals of bad input.

#[path = "common/lines.rs"]
mod lines;

use std::process::{Command, Output};

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn set(dir: &std::path::Path) -> String {
    let p = dir.join("fcp.safetensors").display().to_string();
    ok(losscape(&["init", "--model", "fcp", "--seed", "0", "--count", "3", "--out", &p]));
    p
}

#[test]
fn surface_writes_csv_json_and_figure_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let set = set(dir.path());
    let out = dir.path().join("s").display().to_string();
    let args = [
        "surface",
        "--model",
        "fcp",
        "--set",
        &set,
        "--through",
        "0,1,2",
        "--range",
        "-1:1:3",
        "--train-size",
        "50",
        "--out",
        &out,
        "--backend",
        "cpu",
        "--quiet",
    ];
    ok(losscape(&args));
    let csv = std::fs::read_to_string(dir.path().join("s/surface.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s/surface.json")).unwrap()).unwrap();
    assert_eq!(json["marks"].as_array().unwrap().len(), 3);
    assert!(json["marks"].as_array().unwrap().iter().all(|m| m["grid_point"] == true));
    assert!(dir.path().join("s/surface.png").is_file());
    let again = ok(losscape(&args));
    assert!(!String::from_utf8_lossy(&again.stdout).contains("row(s)"), "a finished surface computes nothing");
}

#[test]
fn hessian_writes_one_line_per_vector() {
    let dir = tempfile::tempdir().unwrap();
    let set = set(dir.path());
    let out = dir.path().join("h").display().to_string();
    ok(losscape(&[
        "hessian",
        "--model",
        "fcp",
        "--set",
        &set,
        "--top",
        "2",
        "--steps",
        "4",
        "--probes",
        "2",
        "--vectors",
        "0,2",
        // one batch of both vectors (a batch of one is the resume test's): still a line per vector
        "--batch",
        "2",
        "--train-size",
        "30",
        "--out",
        &out,
        "--backend",
        "cpu",
        "--quiet",
    ]));
    let records = std::fs::read_to_string(dir.path().join("h/vectors.jsonl")).unwrap();
    let vectors: Vec<u64> = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["vector"].as_u64().unwrap())
        .collect();
    assert_eq!(vectors, [0, 2], "{records}");
    let csv = std::fs::read_to_string(dir.path().join("h/hessian.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "vector,lambda_1,lambda_2,trace");
    assert_eq!(lines.len(), 3);
    assert!(lines[2].starts_with("2,"));
    let f: Vec<f64> = lines[1].split(',').map(|v| v.parse().unwrap()).collect();
    assert!(f[1] >= f[2] && f.iter().all(|v| v.is_finite()), "{csv}");
}

#[test]
fn hessian_resumes_computing_only_the_missing_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let set = set(dir.path());
    let run_in = |out: &str, vectors: &str, probes: &str, batch: &str| {
        let out = dir.path().join(out).display().to_string();
        losscape(&[
            "hessian",
            "--model",
            "fcp",
            "--set",
            &set,
            "--steps",
            "3",
            "--probes",
            probes,
            "--vectors",
            vectors,
            "--batch",
            batch,
            "--train-size",
            "30",
            "--out",
            &out,
            "--backend",
            "cpu",
            "--quiet",
        ])
    };
    let run = |vectors: &str, probes: &str| run_in("h", vectors, probes, "1");
    let csv = || std::fs::read_to_string(dir.path().join("h/hessian.csv")).unwrap();
    ok(run("0,2", "2"));
    let first = csv();
    // a killed run leaves a half-written last line: it is dropped and that vector recomputed
    let records = dir.path().join("h/vectors.jsonl");
    let mut text = std::fs::read_to_string(&records).unwrap();
    text.push_str("{\"vector\":1,\"eigenv");
    std::fs::write(&records, text).unwrap();
    // and a temporary file of a killed write of hessian.csv: removed on resume
    let leftover = dir.path().join("h/.partial-Q7xk2a");
    std::fs::write(&leftover, "vector,eigen").unwrap();
    let o = ok(run("0,1,2", "2"));
    assert!(!leftover.exists(), "the killed write's temporary file is removed");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 vector(s) done earlier") && stdout.contains("1 vector(s) computed"), "{stdout}");
    let all = csv();
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 4, "{all}");
    for (i, line) in first.lines().enumerate().skip(1) {
        assert!(all.lines().any(|l| l == line), "vector line {i} of the first run kept: {all}");
    }
    // the same vectors computed afresh with another batching give the same numbers
    ok(run_in("fresh", "0,1,2", "2", "3"));
    assert_eq!(std::fs::read_to_string(dir.path().join("fresh/hessian.csv")).unwrap(), all);
    // other settings in the same directory are refused, naming the difference
    let o = run("0", "3");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("settings.probes"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A line of vectors.jsonl that the directory's configuration cannot have written (an eigenvalue
/// added, as `sed -i '2s/"eigenvalues":\[/"eigenvalues":[5,/'` does; its trace removed; a vector the
/// set does not hold; a vector twice) is an error naming the file, the line and the fix, and nothing
/// is rewritten: such a line used to reach hessian.csv, a 5-column row under a 4-column header.
#[test]
fn hessian_refuses_a_resumed_line_that_its_configuration_cannot_have_written() {
    let dir = tempfile::tempdir().unwrap();
    let set = set(dir.path());
    let out = dir.path().join("h");
    let run = |vectors: &str| {
        // `--weights`, as `eval` names a weight file, is `--set`
        let args = ["hessian", "--model", "fcp", "--weights", &set, "--top", "2", "--steps", "3", "--probes", "2"];
        let rest = ["--train-size", "30", "--out", out.to_str().unwrap(), "--backend", "cpu", "--quiet"];
        losscape(&[&args[..], &["--vectors", vectors], &rest].concat())
    };
    ok(run("0,1"));
    let (records, csv) = (out.join("vectors.jsonl"), std::fs::read(out.join("hessian.csv")).unwrap());
    let text = std::fs::read_to_string(&records).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // written again without a checksum (`to_string`) or resealed: the checks after the checksum's
    let edited = |key: &str, value: serde_json::Value| {
        let mut record: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        record[key] = value;
        record.as_object_mut().unwrap().remove("checksum");
        record.to_string()
    };
    let cases = [
        (
            lines::resealed(&lines[1].replacen("\"eigenvalues\":[", "\"eigenvalues\":[5,", 1)),
            "holds 3 eigenvalue(s) for vector 1, but the run's --top is 2",
        ),
        (lines[1].replacen("\"eigenvalues\":[", "\"eigenvalues\":[5,", 1), "its checksum does not match"),
        (edited("trace", serde_json::Value::Null), "holds no trace for vector 1, but the run's --probes is 2"),
        (edited("vector", 7.into()), "names vector 7, but the set holds 3 vectors"),
        (lines[0].to_string(), "repeats vector 0"),
    ];
    for (second, want) in cases {
        std::fs::write(&records, format!("{}\n{second}\n", lines[0])).unwrap();
        let o = run("0,1,2");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{second}: {err}");
        assert!(err.contains("vectors.jsonl: line 2 ") && err.contains(want), "{second}: {err}");
        assert!(err.contains("Delete that line") && err.contains("the file"), "{err}");
        assert_eq!(std::fs::read(out.join("hessian.csv")).unwrap(), csv, "hessian.csv is left as it was");
    }
    // deleting the line, as the message says, computes its vector again
    std::fs::write(&records, format!("{}\n", lines[0])).unwrap();
    ok(run("0,1,2"));
    assert_eq!(std::fs::read_to_string(&records).unwrap().lines().count(), 3);
    let csv = std::fs::read_to_string(out.join("hessian.csv")).unwrap();
    assert!(csv.lines().all(|l| l.split(',').count() == 4), "{csv}");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let set = set(dir.path());
    let out = dir.path().join("x").display().to_string();
    let base = ["--model", "fcp", "--set", &set, "--out", &out, "--backend", "cpu"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["surface", "--through", "0,7"], "there is no vector 7"),
        (vec!["surface", "--through", "0,0"], "names a vector twice"),
        (vec!["surface", "--through", "0,1,2,1"], "takes 2 vectors"),
        (vec!["surface", "--through", "0,1", "--range", "1:-1:5"], "less than"),
        (vec!["surface", "--through", "0,1", "--range", "0:1:1"], "points"),
        (vec!["surface", "--through", "0,1", "--range", "nan:1:5"], "finite"),
        (vec!["surface", "--through", "0,1", "--range", "0:1:5", "--range", "0:1:5"], "1-D surface"),
        (vec!["surface", "--random", "3"], "--random"),
        (vec!["surface", "--random", "1", "--vector", "3"], "there is no vector 3"),
        (vec!["surface"], "--through A,B[,C] or --random K"),
        (vec!["surface", "--through", "0,1", "--train-size", "70000"], "holds only"),
        (vec!["surface", "--through", "0,1", "--shard", "2/2"], "shard"),
        (vec!["hessian", "--top", "5", "--steps", "3"], "--steps"),
        (vec!["hessian", "--vectors", "9"], "there is no vector 9"),
        (vec!["hessian", "--step", "nan"], "finite"),
        (vec!["hessian", "--step=-1"], "outside 1e-5 to 1"),
    ];
    for (args, want) in cases {
        let all: Vec<&str> = args[..1].iter().chain(&base).chain(&args[1..]).copied().collect();
        let o = losscape(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && o.status.code().is_some(), "{all:?} must fail");
        assert!(!err.contains("panicked"), "{all:?} panicked: {err}");
        assert!(err.contains(want), "{all:?}: expected '{want}' in: {err}");
    }
}
