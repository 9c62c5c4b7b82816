//! A walk over every subcommand's numeric options with boundary values: 0, the largest integer and
//! out-of-range floats are refused (exit 2, naming the option), the smallest accepted value runs or
//! fails cleanly, and nothing panics.

use std::path::Path;
use std::process::{Command, Output};

const MAX: &str = "18446744073709551615";

/// Runs losscape with `args`, and fails if it has not exited within five minutes (a hang fails the
/// test, with the command, instead of holding the suite).
fn run(args: &[String]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (pid, (tx, rx)) = (child.id(), std::sync::mpsc::channel());
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(std::time::Duration::from_secs(300)).map(Result::unwrap).unwrap_or_else(|_| {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("{args:?} did not exit within five minutes")
    })
}

fn no_panic(args: &[String], o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?} panicked: {err}");
    assert!(o.status.code().is_some_and(|c| c == 0 || c == 1 || c == 2), "{args:?}: exit {:?}: {err}", o.status);
}

/// `base` with `option value` added (replacing the base's value of `option`).
fn with(base: &[&str], option: &str, value: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut i = 0;
    while i < base.len() {
        if base[i] == option {
            i += 2;
            continue;
        }
        v.push(base[i].to_string());
        i += 1;
    }
    v.push(format!("{option}={value}")); // so that "-1" is a value, not a flag
    v
}

/// Values outside the range: exit 2 with a message naming the option.
fn refused(base: &[&str], option: &str, values: &[&str]) {
    for value in values {
        let args = with(base, option, value);
        let o = run(&args);
        no_panic(&args, &o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?} should be refused: {err}");
        assert!(err.contains(option), "{args:?}: the error should name {option}: {err}");
    }
}

/// The smallest accepted value: success, or a clean error.
fn accepted(base: &[&str], option: &str, value: &str) {
    let args = with(base, option, value);
    let o = run(&args);
    no_panic(&args, &o);
    assert!(o.status.code() != Some(2), "{args:?} is in range: {}", String::from_utf8_lossy(&o.stderr));
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn every_numeric_option_of_every_subcommand_is_bounded_without_panics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let set = d.join("set.safetensors");
    let out = d.join("out");
    let o = run(&with(&["init", "--model", "fcp", "--count", "3", "--out", p(&set)], "--seed", "1"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let ints = ["0", "-1", MAX, "1.5", "x"];
    let floats = ["0", "-1", "nan", "inf", "-inf", "x"];

    // init
    let init = ["init", "--model", "fcp", "--count", "1", "--out", p(&out)];
    refused(&init, "--count", &ints);
    accepted(&init, "--seed", MAX);
    let o = run(&with(&["init", "--model", "fcp", "--count", "2", "--out", p(&out)], "--seed", MAX));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "--seed max + 1 wraps: {err}");
    assert!(err.contains("--seed") && err.contains("beyond the largest seed"), "{err}");

    // eval
    let eval = ["eval", "--model", "fcp", "--weights", p(&set), "--limit", "20"];
    // beyond the split is a usage error too (the data decides the bound)
    refused(&eval, "--limit", &["0", "-1", "x", MAX]);
    accepted(&eval, "--limit", "1");
    accepted(&eval, "--vectors", "2");
    refused(&eval, "--vectors", &[MAX]); // no such vector: a usage error naming it

    // train (every refusal comes before the data is read)
    let train_out = d.join("train-out");
    let sgd = [
        "train",
        "--model",
        "fcp",
        "--optimizer",
        "sgd",
        "--runs",
        "2",
        "--keep",
        "1",
        "--epochs",
        "1",
        "--batch",
        "8",
        "--train-size",
        "16",
        "--test-size",
        "8",
        "--quiet",
        "--out",
        p(&train_out),
    ];
    for option in ["--runs", "--keep", "--epochs", "--iterations", "--budget", "--history"] {
        refused(&sgd, option, &ints);
    }
    refused(&sgd, "--batch", &["0", "-1", "1.5", "x"]);
    refused(&sgd, "--train-size", &["0", "x"]);
    refused(&sgd, "--test-size", &["0", "x"]);
    refused(&sgd, "--checkpoint-every", &["0", "x", "0s", "1.5", "-2", "5 parsecs"]);
    refused(&sgd, "--memory-limit", &["0", "-1", "1K", "nan", "x"]);
    refused(&sgd, "--lr", &floats);
    refused(&sgd, "--seed", &["-1", "x"]);
    let o = run(&with(&sgd, "--keep", "3"));
    assert_eq!(o.status.code(), Some(2), "--keep > --runs: {}", String::from_utf8_lossy(&o.stderr));
    let o = run(&with(&sgd, "--seed", MAX));
    assert_eq!(o.status.code(), Some(2), "--seed max with 2 runs: {}", String::from_utf8_lossy(&o.stderr));
    // bounds set by the data: more images than the split holds, a mini-batch larger than the images
    refused(&sgd, "--train-size", &[MAX]);
    refused(&sgd, "--test-size", &[MAX]);
    refused(&sgd, "--batch", &["17", MAX]);
    let lbfgs = [
        "train",
        "--model",
        "fcp",
        "--optimizer",
        "lbfgs",
        "--runs",
        "1",
        "--keep",
        "1",
        "--iterations",
        "1",
        "--train-size",
        "16",
        "--test-size",
        "8",
        "--quiet",
        "--out",
    ];
    for (i, (option, value)) in [
        ("--history", "1"),
        ("--budget", "1"),
        ("--checkpoint-every", MAX),
        ("--checkpoint-every", "90s"),
        ("--seed", MAX),
    ]
    .into_iter()
    .enumerate()
    {
        let out = d.join(format!("lbfgs-{i}"));
        accepted(&[&lbfgs[..], &[p(&out)]].concat(), option, value);
    }
    accepted(&[&sgd[..sgd.len() - 1], &[p(&d.join("sgd-1"))]].concat(), "--batch", "1");

    // paths
    let paths = [
        "paths",
        "--model",
        "fcp",
        "--set",
        p(&set),
        "--pairs",
        "1",
        "--train-size",
        "8",
        "--points",
        "3",
        "--fourier",
        "1",
        "--iterations",
        "1",
        "--quiet",
        "--out",
    ];
    let outs: Vec<String> = (0..3).map(|i| p(&d.join(format!("paths-{i}"))).to_string()).collect();
    let paths_out = |i: usize| [&paths[..], &[outs[i].as_str()]].concat();
    let base = paths_out(0);
    for option in ["--fourier", "--iterations"] {
        refused(&base, option, &ints);
    }
    refused(&base, "--pairs", &["0", "-1", "x"]);
    refused(&base, "--points", &["0", "1", "2", MAX, "x"]);
    refused(&base, "--train-size", &["0", "x"]);
    refused(&base, "--lr", &floats);
    refused(&base, "--lambda", &["-1", "nan", "inf", "x", "1.1e12", "1e308"]);
    refused(&base, "--shard", &["1/1", "0/0", "x"]);
    refused(&base, "--pairs-per-batch", &["0", "1001", "-1", "x"]);
    refused(&base, "--memory-limit", &["0", "-1", "1K", "inf", "x"]);
    accepted(&base, "--lambda", "0");
    accepted(&base, "--pairs-per-batch", "1000");
    accepted(&paths_out(1), "--seed", MAX);
    refused(&paths_out(2), "--pairs", &["4", MAX]); // more pairs than three vectors have
    refused(&base, "--train-size", &[MAX]); // beyond the split

    // bench: no panic at its smallest values (its own checks refuse zero counts, and --images beyond
    // the split, below)
    let bench_out = d.join("bench.json");
    let bench = [
        "bench",
        "--models",
        "fcp",
        "--images",
        "8",
        "--batches",
        "1",
        "--repeats",
        "1",
        "--ceiling-size",
        "16",
        "--path-points",
        "0",
        "--train-runs",
        "0",
        "--out",
        p(&bench_out),
    ];
    for (option, value) in [
        ("--images", "0"),
        ("--repeats", "0"),
        ("--batches", "0"),
        ("--ceiling-size", "0"),
        ("--ceiling-size", "1"),
        ("--path-points", "1"),
        ("--images", "1"),
    ] {
        let args = with(&bench, option, value);
        no_panic(&args, &run(&args));
    }

    // toy, reproduce, merge
    refused(&["toy", "--out", p(&d.join("toy"))], "--lambdas", &["-1", "nan", "10,x", "10,1e13", "1e308", "10,100,10"]);
    refused(&["reproduce", "--out", p(&d.join("work"))], "--shard", &["0/0", "2/1", "x"]);
    let o = run(&["reproduce".into(), "--preset".into(), "huge".into(), "--out".into(), p(&d.join("w")).into()]);
    no_panic(&[], &o);
    assert_ne!(o.status.code(), Some(0));
    let o = run(&["merge".into(), p(&d.join("absent")).into(), "--out".into(), p(&d.join("m.jsonl")).into()]);
    no_panic(&[], &o);
    assert_eq!(o.status.code(), Some(1));
}

/// Options that contradict each other or do not apply to the choices made: exit 2 with the
/// subcommand's usage line, as clap's own errors, before any file is read or written.
#[test]
fn usage_mistakes_exit_2_with_the_subcommands_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = p(&out);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["info", "--backend", "bogus"], "unknown backend 'bogus'"),
        (
            vec!["train", "--model", "fcp", "--optimizer", "lbfgs", "--epochs", "5", "--out", o],
            "--epochs applies to --optimizer sgd",
        ),
        (
            vec!["train", "--model", "fcp", "--optimizer", "lbfgs", "--lr", "0.5", "--out", o],
            "--lr applies to --optimizer sgd",
        ),
        (vec!["train", "--model", "fcp", "--optimizer", "lbfgs", "--batch", "8", "--out", o], "--batch applies"),
        (
            vec!["train", "--model", "fcp", "--optimizer", "sgd", "--iterations", "5", "--out", o],
            "--iterations applies to --optimizer lbfgs",
        ),
        (vec!["train", "--model", "fcp", "--optimizer", "adam", "--history", "5", "--out", o], "--history applies"),
        (
            vec!["train", "--model", "fcp", "--optimizer", "sgd", "--line-search", "golden", "--out", o],
            "--line-search applies",
        ),
        (vec!["train", "--model", "fcp", "--optimizer", "sgd", "--budget", "4", "--out", o], "--budget applies"),
        (
            vec!["train", "--model", "fcp", "--optimizer", "sgd", "--runs", "2", "--keep", "3", "--out", o],
            "--keep 3 is more than --runs 2",
        ),
        (
            vec!["train", "--model", "lstm", "--optimizer", "sgd", "--activation", "relu", "--out", o],
            "the LSTM has its own",
        ),
        (
            vec!["eval", "--model", "autoencoder", "--weights", "w.safetensors", "--activation", "relu"],
            "--activation applies",
        ),
        (
            vec!["paths", "--model", "lstm", "--set", "s.safetensors", "--activation", "softplus", "--out", o],
            "--activation applies",
        ),
        (
            vec![
                "paths",
                "--model",
                "fcp",
                "--set",
                "s.safetensors",
                "--curve",
                "bezier",
                "--fourier",
                "3",
                "--out",
                o,
            ],
            "--fourier applies to --curve fourier",
        ),
        (vec!["surface", "--model", "fcp", "--set", "s.safetensors", "--out", o], "say how to span"),
        (
            vec!["surface", "--model", "fcp", "--set", "s.safetensors", "--through", "0,1", "--seed", "4", "--out", o],
            "--seed applies to --random",
        ),
        (
            vec![
                "surface",
                "--model",
                "fcp",
                "--set",
                "s.safetensors",
                "--through",
                "0,1",
                "--biases",
                "ignore",
                "--out",
                o,
            ],
            "--biases applies to --random",
        ),
        (
            vec!["surface", "--model", "fcp", "--set", "s.safetensors", "--random", "1", "--orthonormal", "--out", o],
            "--orthonormal",
        ),
        (
            vec!["surface", "--model", "fcp", "--set", "s.safetensors", "--through", "0,1,2,3", "--out", o],
            "--through takes 2",
        ),
        (
            vec!["hessian", "--model", "fcp", "--set", "s.safetensors", "--top", "50", "--steps", "10", "--out", o],
            "--top 50 needs",
        ),
        (
            vec!["hessian", "--model", "lstm", "--set", "s.safetensors", "--activation", "relu", "--out", o],
            "--activation applies",
        ),
        (vec!["bench", "--images", "0", "--out", o], "at least 1"),
    ];
    for (args, message) in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let o = run(&args);
        no_panic(&args, &o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: the error should say '{message}': {err}");
        assert!(err.contains(&format!("Usage: losscape {}", args[0])) || args[0] == "info", "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

#[test]
fn limits_that_depend_on_the_data_are_usage_errors_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("s.safetensors");
    let init = ["init", "--model", "fcp", "--count", "2", "--out", p(&set)];
    assert!(run(&init.map(String::from)).status.success());
    let out = dir.path().join("out");
    let (o, s) = (p(&out), p(&set));
    let test_landscape = ["--landscape", "test", "--train-size", "300", "--out", o];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "--model", "fcp", "--optimizer", "sgd", "--train-size", "40", "--out", o],
            "--batch 64 (the default) is more than the 40 training images",
        ),
        (vec!["eval", "--model", "fcp", "--weights", s, "--limit", "100000"], "--limit 100000, but the split holds"),
        (
            vec!["train", "--model", "fcp", "--optimizer", "lbfgs", "--train-size", "100000", "--out", o],
            "--train-size 100000",
        ),
        (
            [&["paths", "--model", "fcp", "--set", s, "--pairs", "1"][..], &test_landscape].concat(),
            "--train-size applies",
        ),
        (
            [&["surface", "--model", "fcp", "--set", s, "--through", "0,1"][..], &test_landscape].concat(),
            "--train-size applies",
        ),
        ([&["hessian", "--model", "fcp", "--set", s][..], &test_landscape].concat(), "--train-size applies"),
        (
            vec!["bench", "--models", "fcp", "--images", "70000", "--batches", "1"],
            "--images 70000, but the split holds",
        ),
        (
            vec!["paths", "--model", "fcp", "--set", s, "--pairs", "2", "--out", o],
            "1 distinct pairs; give fewer --pairs",
        ),
        (
            vec![
                "paths",
                "--model",
                "fcp",
                "--set",
                s,
                "--pairs",
                "1",
                "--iterations",
                "2",
                "--max-iterations",
                "5",
                "--out",
                o,
            ],
            "--max-iterations 5 applies to --until-converged",
        ),
        (
            vec!["reproduce", "--preset", "smoke", "--models", "fcp,lenet,fcp", "--out", o],
            "--models names fcp twice (entries 1 and 3)",
        ),
        (vec!["reproduce", "--preset", "regime", "--images", "250,500,250", "--out", o], "--images names 250 twice"),
        (vec!["reproduce", "--stage", "report", "--shard", "1/2", "--out", o], "--shard 1/2 does not apply"),
    ];
    for (args, message) in cases {
        let args: Vec<String> = [&args[..], &["--backend", "cpu"]].concat().iter().map(|s| s.to_string()).collect();
        let o = run(&args);
        no_panic(&args, &o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: the error should say '{message}': {err}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // two networks of one name would share their results; a description that is not there is named so
    let mlp = |width: usize| {
        format!("format = 1\nname = \"mine\"\n[input]\nimage = [1, 28, 28]\n[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nout = {width}\n[[layers]]\nkind = \"relu\"\n[[layers]]\nkind = \"dense\"\nout = 10\n[head]\nkind = \"cross_entropy\"\nclasses = 10\n")
    };
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, mlp(20)).unwrap();
    std::fs::write(&b, mlp(21)).unwrap();
    let models = format!("{},{}", p(&a), p(&b));
    for (args, says) in [
        (vec!["reproduce", "--preset", "smoke", "--models", &models, "--out", o], "two networks named mine"),
        (vec!["eval", "--model", "nothere.toml", "--weights", s], "nothere.toml: no such file"),
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let e = run(&args);
        let err = String::from_utf8_lossy(&e.stderr);
        assert!(e.status.code() == Some(2) && err.contains(says), "{args:?}: {err}");
        assert!(!out.exists());
    }
    // a vector named twice would be computed and written twice: a usage error, like the limits above
    let twice = ["hessian", "--model", "fcp", "--set", s, "--vectors", "0,0", "--backend", "cpu", "--out", o];
    let err = run(&twice.map(String::from));
    assert_eq!(err.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&err.stderr).contains("names vector 0 twice"));
    assert!(!out.exists());
    // the corrected command runs in the directory the refused one left alone
    let train = ["train", "--model", "fcp", "--optimizer", "sgd", "--train-size", "40", "--batch", "40", "--test-size"];
    let args: Vec<String> =
        [&train[..], &["40", "--epochs", "1", "--runs", "1", "--quiet", "--backend", "cpu", "--out", o]]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect();
    let done = run(&args);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
}

/// The regulariser weight is bounded where its f32 gradient (paths) could overflow: the largest
/// accepted, 1e12, gives finite paths (the straight line's height, for the toy), and a larger one is a
/// usage error naming the bound, with nothing written (it used to give NaN paths, the toy's with exit
/// status 0, and `paths` blamed --lr).
#[test]
fn the_largest_lambda_gives_finite_paths_and_a_larger_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let toy =
        |lambdas: &str, out: &str| run(&["toy".into(), format!("--lambdas={lambdas}"), "--out".into(), out.into()]);
    let o = toy("10,1e308", p(&d.join("toy-huge")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--lambdas") && err.contains("1e12"), "{err}");
    assert!(!d.join("toy-huge").exists());
    let o = toy("1e12", p(&d.join("toy")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let heights = std::fs::read_to_string(d.join("toy/toy-heights.csv")).unwrap();
    let points = std::fs::read_to_string(d.join("toy/toy-paths.csv")).unwrap();
    assert!(!heights.contains("inf") && !points.to_lowercase().contains("nan"), "{heights}");
    let height =
        |line: usize| -> f64 { heights.lines().nth(line).unwrap().rsplit(',').next().unwrap().parse().unwrap() };
    assert!((height(2) - height(1)).abs() < 1e-3, "the straight line's height at the largest lambda: {heights}");

    let set = d.join("set.safetensors");
    let o = run(&[
        "init".into(),
        "--model".into(),
        "fcp".into(),
        "--count".into(),
        "2".into(),
        "--out".into(),
        p(&set).into(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let paths = |lambda: &str, out: &str| {
        let args = ["paths", "--model", "fcp", "--set", p(&set), "--pairs", "1", "--train-size", "8", "--points", "3"];
        let rest = ["--fourier", "1", "--iterations", "2", "--backend", "cpu", "--quiet", "--out", out];
        let mut all: Vec<String> = args.iter().chain(&rest).map(|a| a.to_string()).collect();
        all.push(format!("--lambda={lambda}"));
        run(&all)
    };
    let o = paths("1e308", p(&d.join("paths-huge")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--lambda") && err.contains("1e12") && !err.contains("--lr"), "{err}");
    assert!(!d.join("paths-huge").exists());
    let o = paths("1e12", p(&d.join("paths")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("paths/paths.jsonl")).unwrap()).unwrap();
    assert!(record["losses"].as_array().unwrap().iter().all(|l| l.as_f64().is_some_and(f64::is_finite)), "{record}");
}

/// Messages a user reads: a count below its least value says so without the platform's largest
/// integer, a negative number given as a separate word is read as a value (and refused for what it
/// is, not as an unknown flag), and -0 is recorded as 0.
#[test]
fn range_messages_name_the_bound_and_negative_values_are_values() {
    let dir = tempfile::tempdir().unwrap();
    let words = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = run(&words(&["train", "--model", "fcp", "--optimizer", "sgd", "--train-size", "0", "--out", "x"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--train-size") && err.contains("0 is less than 1; give at least 1") && !err.contains(MAX),
        "{err}"
    );
    let cases =
        [("train", "--lr"), ("paths", "--lr"), ("paths", "--lambda"), ("hessian", "--step"), ("toy", "--lambdas")];
    for (sub, option) in cases {
        let model: &[&str] = if sub == "toy" { &[] } else { &["--model", "fcp"] };
        let o = run(&words(&[&[sub][..], model, &[option, "-0.1", "--out", "x"]].concat()));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{sub} {option} -0.1: {err}");
        assert!(err.contains(&format!("invalid value '-0.1' for '{option}")), "{sub} {option} -0.1: {err}");
        assert!(!err.contains("unexpected argument"), "{sub} {option} -0.1 read as a flag: {err}");
    }
    // values f32 turns into 0 or infinity, and finite-difference steps that give no Hessian
    for (sub, option, value, says) in [
        ("train", "--lr", "1e-50", "outside what f32 holds"),
        ("paths", "--lr", "1e40", "outside what f32 holds"),
        ("hessian", "--step", "1e-30", "outside 1e-5 to 1"),
        ("hessian", "--step", "2", "outside 1e-5 to 1"),
    ] {
        let o = run(&words(&[sub, "--model", "fcp", option, value, "--out", "x"]));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.code() == Some(2) && err.contains(says), "{sub} {option} {value}: {err}");
    }
    // a list that starts with a negative number
    let o = run(&words(&["toy", "--lambdas", "-1,10", "--out", "x"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("-1 must be 0 or greater"), "{err}");
    // the toy's regulariser weights, -0 among them: recorded as 0, as `--lambdas 0` records them
    let toy = |lambdas: &str, out: &str| {
        let out = dir.path().join(out);
        let o = run(&words(&["toy", &format!("--lambdas={lambdas}"), "--out", p(&out)]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let (minus, plus) = (toy("-0,10", "minus"), toy("0,10", "plus"));
    let names: Vec<_> = std::fs::read_dir(&plus).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.is_empty());
    for name in names {
        let (a, b) = (std::fs::read(minus.join(&name)).unwrap(), std::fs::read(plus.join(&name)).unwrap());
        assert!(a == b, "{name:?} differs between --lambdas -0,10 and 0,10");
    }
}
