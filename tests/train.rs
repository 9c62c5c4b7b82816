//! `losscape train` as a user runs it: batching, resume after SIGKILL, refusals, NaN runs, all networks.

#[path = "common/files.rs"]
mod files;

use losscape::io::read_weights;
use losscape::model::{init_vector, Arch};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn losscape(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn summary(dir: &Path, model: &str, opt: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{model}-{opt}-summary.json"))).unwrap()).unwrap()
}

fn small(model: &str, opt: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = args(&[
        "train",
        "--model",
        model,
        "--optimizer",
        opt,
        "--train-size",
        "130",
        "--test-size",
        "60",
        "--quiet",
        "--out",
    ]);
    v.push(out.to_str().unwrap().to_string());
    v.extend(args(extra));
    v
}

#[test]
fn minibatch_batched_runs_equal_single_runs_with_the_same_seeds() {
    let dir = tempfile::tempdir().unwrap();
    for (opt, lr) in [("sgd", "0.5"), ("adam", "0.01")] {
        let d = dir.path().join(opt);
        let run = |name: &str, runs: &str, seed: &str| {
            let extra = ["--runs", runs, "--keep", runs, "--seed", seed, "--epochs", "2", "--batch", "32", "--lr", lr];
            ok(losscape(&small("fcp", opt, &d.join(name), &extra)));
            summary(&d.join(name), "fcp", opt)
        };
        let (both, a, b) = (run("both", "2", "5"), run("a", "1", "5"), run("b", "1", "6"));
        assert_eq!(both["runs"][0], a["runs"][0], "{opt}");
        assert_eq!(both["runs"][1], b["runs"][0], "{opt}");
        // the curves moved: the optimizer did something
        let curve = both["runs"][0]["train"].as_array().unwrap();
        assert_eq!(curve.len(), 2);
        assert!(curve[1].as_f64().unwrap() < curve[0].as_f64().unwrap(), "{opt}: {curve:?}");
    }
}

fn kill_and_resume(opt: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(losscape(&small("fcp", opt, &d.join("ref"), extra)));
    let run = small("fcp", opt, &d.join("run"), extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_losscape")).args(&run).spawn().unwrap();
    let start = Instant::now();
    // kill once a checkpoint exists (a random point after it)
    while !d.join("run/checkpoint.safetensors").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint in time");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(start.elapsed().as_millis() as u64 % 97));
    child.kill().unwrap();
    child.wait().unwrap();
    // what a kill during a write leaves, whenever it strikes: a temporary file beside the checkpoint
    // or beside a loss curve (the resumed run must remove both; the comparison below sees every file)
    for sub in ["", "curves"] {
        std::fs::create_dir_all(d.join("run").join(sub)).unwrap();
        std::fs::write(d.join("run").join(sub).join(".partial-killed"), b"half a file").unwrap();
    }
    ok(losscape(&run));
    for kind in ["train", "test"] {
        let f = format!("fcp-{opt}-{kind}.safetensors");
        let (x, y) = (
            read_weights(&d.join("ref").join(&f), Arch::Fcp).unwrap(),
            read_weights(&d.join("run").join(&f), Arch::Fcp).unwrap(),
        );
        assert_eq!(x.flat, y.flat, "{f}: resumed weights differ");
        assert_eq!(x.metadata, y.metadata, "{f}: resumed metadata differs");
    }
    assert_eq!(summary(&d.join("ref"), "fcp", opt), summary(&d.join("run"), "fcp", opt));
    // and every file, checkpoint included, byte for byte
    assert!(files::assert_same_bytes(&d.join("ref"), &d.join("run")) >= 5);
    // a changed configuration is refused, naming the setting
    let mut changed = run.clone();
    changed.extend(args(&["--seed", "9"]));
    let o = losscape(&changed);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("differs in: seed"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn killed_sgd_training_resumes_to_the_uninterrupted_result() {
    kill_and_resume(
        "sgd",
        &["--runs", "3", "--keep", "2", "--epochs", "6", "--batch", "16", "--checkpoint-every", "1"],
    );
}

#[test]
fn killed_adam_training_resumes_to_the_uninterrupted_result() {
    // 130 images in batches of 16: a partial mini-batch per epoch, and Adam's step count across epochs;
    // checkpoints by time (an epoch takes longer than 1 ms, so after every one)
    let every = ["--checkpoint-every", "1ms"];
    kill_and_resume(
        "adam",
        &[&["--runs", "3", "--keep", "2", "--epochs", "6", "--batch", "16", "--lr", "0.01"][..], &every].concat(),
    );
}

#[test]
fn sparse_checkpoints_resume_to_the_uninterrupted_result_too() {
    kill_and_resume("lbfgs", &["--runs", "2", "--keep", "1", "--iterations", "9", "--checkpoint-every", "2"]);
}

/// A directory resumed by another build of losscape says so on stderr, and its `config.json` lists
/// both builds; the same build resumes without a word.
#[test]
fn a_run_resumed_by_another_build_warns_and_lists_both_builds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = small("fcp", "lbfgs", &out, &["--runs", "1", "--keep", "1", "--iterations", "2"]);
    ok(losscape(&run));
    let o = ok(losscape(&run));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("warning"), "{}", String::from_utf8_lossy(&o.stderr));
    let older = "losscape 0.0.9 (0123456789ab)";
    let this = files::pretend_written_by(&out, older);
    assert!(this.starts_with("losscape "), "{this}");
    let o = ok(losscape(&run));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("holds results of {older}; this is {this}")), "{err}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["losscape_builds"], serde_json::json!([older, this]));
}

/// A checkpoint damaged after it was written (a flipped bit in a tensor, a truncated file) is refused,
/// naming the file and the way out, and nothing else is touched; deleted, the run trains again from
/// the start to the same bytes, checkpoint included.
#[test]
fn a_damaged_checkpoint_is_refused_and_deleting_it_trains_again_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (out, copy) = (dir.path().join("run"), dir.path().join("copy"));
    let run = small("fcp", "lbfgs", &out, &["--runs", "2", "--keep", "2", "--iterations", "3"]);
    ok(losscape(&run));
    std::fs::create_dir(&copy).unwrap();
    for f in files::files(&out) {
        std::fs::create_dir_all(copy.join(&f).parent().unwrap()).unwrap();
        std::fs::copy(out.join(&f), copy.join(&f)).unwrap();
    }
    let ck = out.join("checkpoint.safetensors");
    let good = std::fs::read(&ck).unwrap();
    let mut flipped = good.clone();
    let at = flipped.len() - 5; // inside the last tensor's values
    flipped[at] ^= 0x10;
    for (what, bytes, says) in [
        ("a flipped bit", flipped, "do not match the SHA-256 it recorded"),
        ("a truncated file", good[..good.len() / 2].to_vec(), "a damaged checkpoint ("),
    ] {
        std::fs::write(&ck, &bytes).unwrap();
        let o = losscape(&run);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(ck.to_str().unwrap()) && err.contains(says) && err.contains("delete it"), "{what}: {err}");
        assert_eq!(std::fs::read(&ck).unwrap(), bytes, "{what}: the damaged file is left for the user");
    }
    std::fs::remove_file(&ck).unwrap();
    ok(losscape(&run));
    assert!(files::assert_same_bytes(&copy, &out) >= 6);
}

/// The writers a directory lists name the device: a run on the CPU backend lists it with `gemm`'s
/// instruction set, and a resume of the same directory on the wgpu backend (another device, which
/// rounds differently) warns and adds itself, naming its adapter and API. Runs both backends, so the
/// lavapipe pass skips it (`both_backends`).
#[test]
fn both_backends_resuming_one_directory_are_listed_as_two_writers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = small("fcp", "lbfgs", &out, &["--runs", "1", "--keep", "1", "--iterations", "2"]);
    let on = |backend: &str| {
        let mut with = run.clone();
        with.extend(args(&["--backend", backend]));
        losscape(&with)
    };
    ok(on("cpu"));
    let listed = |out: &Path| -> Vec<String> {
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        serde_json::from_value(cfg["losscape_builds"].clone()).unwrap()
    };
    let first = listed(&out);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with("losscape ") && first[0].contains(" on the CPU backend (gemm at "), "{first:?}");
    let o = ok(on("vulkan"));
    let err = String::from_utf8_lossy(&o.stderr);
    let both = listed(&out);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], first[0]);
    assert!(both[1].contains(" via Vulkan, driver "), "{both:?}");
    assert!(err.contains(&format!("holds results of {}; this is {}", both[0], both[1])), "{err}");
}

#[test]
fn killed_lbfgs_training_resumes_to_the_uninterrupted_result() {
    kill_and_resume("lbfgs", &["--runs", "2", "--keep", "2", "--iterations", "8", "--checkpoint-every", "1"]);
}

#[test]
fn a_run_that_overflows_stops_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // run 1 starts with enormous weights: its loss is not finite from the start
    let mut flat: Vec<f32> = (0..3).flat_map(|s| init_vector(Arch::Fcp, s)).collect();
    let n = Arch::Fcp.n_params();
    flat[n..2 * n].iter_mut().for_each(|x| *x *= 1e30);
    let init = d.join("init.safetensors");
    losscape::io::write_weights(&init, &losscape::io::WeightStack::new(Arch::Fcp, flat)).unwrap();
    for (opt, steps) in [("sgd", "--epochs"), ("lbfgs", "--iterations"), ("adam", "--epochs")] {
        let out = d.join(opt);
        let o = ok(losscape(&small("fcp", opt, &out, &["--init", init.to_str().unwrap(), "--keep", "2", steps, "3"])));
        assert!(String::from_utf8_lossy(&o.stderr).contains("run 1 stopped"), "{}", String::from_utf8_lossy(&o.stderr));
        let s = summary(&out, "fcp", opt);
        assert!(s["runs"][1]["stopped"].as_str().unwrap().contains("loss became"));
        // a starting loss that is not finite is not recorded: JSON would read it back as none
        assert!(s["runs"][1].get("initial_train").is_none(), "{opt}: {}", s["runs"][1]);
        for r in [0, 2] {
            assert!(s["runs"][r]["initial_train"].as_f64().unwrap() > 2.0, "{opt}: run {r}");
            assert!(s["runs"][r]["stopped"].is_null(), "{opt}: run {r} must go on");
            assert_eq!(s["runs"][r]["train"].as_array().unwrap().len(), 3, "{opt}: run {r} has all its steps");
        }
        assert_eq!(s["kept_runs"].as_array().unwrap().len(), 2);
    }
}

/// A run whose loss only grew is named: its snapshot is no minimum. A run that learned is not.
#[test]
fn a_diverging_run_is_named_and_one_that_learned_is_not() {
    let dir = tempfile::tempdir().unwrap();
    for (lr, diverges) in [("100", true), ("0.5", false)] {
        let out = dir.path().join(lr);
        let extra = ["--runs", "2", "--keep", "2", "--epochs", "2", "--lr", lr];
        let o = ok(losscape(&small("fcp", "sgd", &out, &extra)));
        let stderr = String::from_utf8_lossy(&o.stderr);
        let s = summary(&out, "fcp", "sgd");
        for r in 0..2 {
            let start = s["runs"][r]["initial_train"].as_f64().unwrap();
            let best = s["runs"][r]["best_train"][1].as_f64().unwrap();
            assert!((2.0..2.6).contains(&start), "lr {lr}: PyTorch's init starts near ln 10: {start}");
            assert_eq!(best > start, diverges, "lr {lr}, run {r}: {best} from {start}");
            assert_eq!(stderr.contains(&format!("run {r} diverged")), diverges, "lr {lr}: {stderr}");
        }
        if diverges {
            assert!(stderr.contains("try a smaller --lr"), "{stderr}");
        }
    }
}

#[test]
fn every_network_trains_with_lbfgs_and_its_sets_load_back() {
    let dir = tempfile::tempdir().unwrap();
    for arch in Arch::ALL {
        let out = dir.path().join(arch.id());
        let mut cmd = args(&["train", "--model", arch.id(), "--optimizer", "lbfgs", "--runs", "2", "--keep", "2"]);
        cmd.extend(args(&["--iterations", "3", "--train-size", "64", "--test-size", "32", "--quiet", "--out"]));
        cmd.push(out.to_str().unwrap().to_string());
        ok(losscape(&cmd));
        let s = summary(&out, arch.id(), "lbfgs");
        for r in 0..2 {
            let curve: Vec<f64> =
                s["runs"][r]["train"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(curve.len(), 3);
            assert!(curve[2] < curve[0], "{arch:?} run {r}: training loss does not fall: {curve:?}");
        }
        for kind in ["train", "test"] {
            let stack = read_weights(&out.join(format!("{}-lbfgs-{kind}.safetensors", arch.id())), arch).unwrap();
            assert_eq!(stack.count(), 2);
            assert_eq!(stack.metadata["losscape.snapshot"], kind);
        }
    }
}

#[test]
fn reproduce_with_align_reports_barriers_before_and_after_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let cmd = args(&["reproduce", "--preset", "smoke", "--models", "fcp", "--align", "--out", work.to_str().unwrap()]);
    ok(losscape(&cmd));
    let report = work.join("report");
    let table = std::fs::read_to_string(report.join("fcp-alignment-train.csv")).unwrap();
    assert!(table.starts_with("set,pairs,unaligned_distance,distance,"), "{table}");
    assert_eq!(table.lines().count(), 5, "a row per set of the training landscape: {table}");
    let claims = std::fs::read_to_string(report.join("claims.csv")).unwrap();
    assert!(claims.lines().any(|l| l.starts_with("barrier-gap-survives-alignment,FCP,train,")), "{claims}");
    let records = std::fs::read_to_string(work.join("fcp/paths-train/paths.jsonl")).unwrap();
    assert!(records.lines().all(|l| l.contains("\"aligned\":true")), "{records}");
}

#[test]
fn reproduce_runs_end_to_end_and_a_second_invocation_recomputes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let cmd = args(&["reproduce", "--preset", "smoke", "--models", "fcp,autoencoder", "--out", work.to_str().unwrap()]);
    let o = ok(losscape(&cmd));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("[train 4/4]") && log.contains("[paths 4/4]") && log.contains("[report]"), "{log}");
    let report = work.join("report");
    assert!(report.join("index.html").exists() && report.join("table1.csv").exists());
    // the claims table: every row of both networks (16 for FCP, 14 for the autoencoder), judged
    // "too few samples" at the smoke scale (2 kept runs, 1 pair per set)
    let claims = std::fs::read_to_string(report.join("claims.csv")).unwrap();
    assert_eq!(claims.lines().count(), 1 + 16 + 14, "{claims}");
    assert_eq!(claims.lines().filter(|l| l.contains(",FCP,")).count(), 16, "{claims}");
    // the probes: a spectrum per minimum, a surface through each optimizer's representative path
    for opt in ["lbfgs", "sgd"] {
        let spectra = std::fs::read_to_string(work.join(format!("fcp/sharpness/{opt}-train.csv"))).unwrap();
        assert_eq!(spectra.lines().next(), Some("vector,lambda_1,trace"));
        assert_eq!(spectra.lines().count(), 1 + 2, "both kept minima: {spectra}");
        let surface = std::fs::read_to_string(report.join(format!("fcp-surface-{opt}.csv"))).unwrap();
        assert_eq!(surface.lines().count(), 1 + 5 * 5, "the smoke preset's 5 x 5 grid: {surface}");
        assert!(report.join(format!("autoencoder-surface-{opt}.png")).exists());
    }
    assert!(report.join("fcp-sharpness-lambda1.png").exists() && report.join("fcp-sharpness.csv").exists());
    assert!(claims.lines().skip(1).all(|l| l.contains(",too few samples,")), "{claims}");
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(html.find("The paper's claims").unwrap() < html.find("Table I").unwrap(), "claims first");
    assert!(claims.starts_with("claim,network,landscape,paper,run,verdict,statistic,p_value,p_holm\n"), "{claims}");
    // convergence: every path's record says whether it converged (2 iterations never do) and the report
    // plots the heights against the iteration next to the height histograms
    let records = std::fs::read_to_string(work.join("fcp/paths-train/paths.jsonl")).unwrap();
    assert!(records.lines().all(|l| l.contains("\"iterations\":2,\"converged\":false,\"trace\":{")), "{records}");
    for (net, landscape) in [("fcp", "train"), ("fcp", "test"), ("autoencoder", "train"), ("autoencoder", "test")] {
        let file = format!("{net}-convergence-{landscape}");
        assert!(report.join(format!("{file}.png")).exists(), "{file}.png");
        let csv = std::fs::read_to_string(report.join(format!("{file}.csv"))).unwrap();
        assert!(csv.starts_with("set,iteration,pairs,median,min,max\n"), "{csv}");
        let sets = if landscape == "train" { 4 } else { 2 };
        assert_eq!(csv.lines().count(), 1 + 2 * sets, "iterations 0 and 1 of each set: {csv}");
        let heights = html.find(&format!("{net}-heights-{landscape}.png")).unwrap();
        let convergence = html.find(&format!("{file}.png")).unwrap();
        assert!(heights < convergence, "the convergence figure follows the height histogram");
    }
    assert!(html.contains("Converged pairs (docs/algorithms.md §5): BFGS-train 0 of 1"), "the caption counts them");
    // each network's scale beside the paper's: 64 images for FCP's 42200 parameters
    assert!(
        html.contains("FCP: 64 training images for 42200 parameters, 0.002 images per parameter (the paper: 60000 images, 1.42 per parameter)"),
        "{}",
        &html[html.find("FCP:").unwrap_or(0)..][..200.min(html.len())]
    );
    assert!(html.contains("autoencoder: 64 training images for"), "the autoencoder's line too");
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let watched = [
        work.join("fcp/lbfgs/fcp-lbfgs-summary.json"),
        work.join("autoencoder/paths-train/paths.jsonl"),
        report.join("index.html"),
    ];
    let before: Vec<_> = watched.iter().map(|p| stamp(p)).collect();
    let t = Instant::now();
    let o = ok(losscape(&cmd));
    assert!(t.elapsed() < Duration::from_secs(20), "the second invocation took {:?}", t.elapsed());
    assert!(String::from_utf8_lossy(&o.stderr).contains("done earlier"));
    let after: Vec<_> = watched.iter().map(|p| stamp(p)).collect();
    assert_eq!(before, after, "nothing was rewritten");
    // another preset in the same directory is refused
    let o = losscape(&args(&[
        "reproduce",
        "--preset",
        "quick",
        "--models",
        "fcp,autoencoder",
        "--out",
        work.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("preset"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A report stage killed by SIGKILL between creating a temporary file (`io::atomic_write`) and
/// renaming it leaves `report/.partial-*` behind, and no `index.html` (written last): the resumed
/// report removes the leftover, so the directory holds exactly the files of an uninterrupted run.
#[test]
fn a_resumed_report_removes_the_temporary_files_of_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let cmd = args(&[
        "reproduce",
        "--preset",
        "smoke",
        "--models",
        "fcp",
        "--backend",
        "cpu",
        "--out",
        work.to_str().unwrap(),
    ]);
    ok(losscape(&cmd));
    let uninterrupted = files::files(&work);
    let report = work.join("report");
    // what the kill leaves (the figures written before it stay; they are written again)
    std::fs::remove_file(report.join("index.html")).unwrap();
    std::fs::write(report.join(".partial-Xk3T9q"), b"half a figure").unwrap();
    ok(losscape(&cmd));
    assert_eq!(files::files(&work), uninterrupted, "the resumed report's directory");
}

/// The cluster recipe: train, then paths on every shard, then one report; a report over a missing
/// shard is refused (it would silently leave out that shard's pairs), and equals the unsharded run
/// once every shard ran.
#[test]
fn reproduce_refuses_to_report_while_a_paths_shard_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let run = |stage: &str, shard: &str| {
        losscape(&args(&[
            "reproduce",
            "--preset",
            "smoke",
            "--models",
            "fcp",
            "--stage",
            stage,
            "--shard",
            shard,
            "--out",
            work.to_str().unwrap(),
        ]))
    };
    ok(run("train", "0/2"));
    ok(run("train", "1/2"));
    ok(run("paths", "0/2"));
    let o = run("report", "0/1");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("pairs are missing") && err.contains("every shard"), "{err}");
    assert!(!work.join("report/index.html").exists());
    ok(run("paths", "1/2"));
    ok(run("report", "0/1"));
    let table = std::fs::read_to_string(work.join("report/fcp-heights-train.csv")).unwrap();
    // the smoke preset draws one pair from each of the four sets on the training landscape
    assert_eq!(table.lines().count(), 1 + 4, "{table}");
    // the study's sweep shards merge with each record's set named from the merged file (the study
    // names its sets from its own directory, above the shards')
    let sweep = work.join("fcp/paths-train");
    let shards: Vec<String> =
        ["shard-0-of-2", "shard-1-of-2"].iter().map(|s| sweep.join(s).display().to_string()).collect();
    let merged = dir.path().join("merged.jsonl");
    let o = ok(losscape(&args(&["merge", &shards[0], &shards[1], "--out", merged.to_str().unwrap()])));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("is not there"), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&merged).unwrap();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let set = dir.path().join(r["set_file"].as_str().unwrap());
        assert!(
            set.is_file() && set.starts_with(dir.path()) && r["set_file"].as_str().unwrap().starts_with("work/fcp/"),
            "{line}"
        );
    }
}

/// Optimizers are a type that writes the on-disk names (`config.json`, summaries, set files) and
/// parses only those: a name the program does not know is an error, not SGD, and each optimizer has
/// its own label in the report.
#[test]
fn optimizer_names_round_trip_and_an_unknown_name_is_an_error() {
    use losscape::io::Optimizer;
    use losscape::report::set_label;
    let all = [(Optimizer::Sgd, "sgd", "SGD"), (Optimizer::Lbfgs, "lbfgs", "BFGS"), (Optimizer::Adam, "adam", "Adam")];
    for (opt, name, label) in all {
        assert_eq!(serde_json::to_string(&opt).unwrap(), format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Optimizer>(&format!("\"{name}\"")).unwrap(), opt);
        assert_eq!(opt.to_string(), name);
        assert_eq!(set_label(opt, "train"), format!("{label}-train"));
    }
    assert!(serde_json::from_str::<Optimizer>("\"newton\"").is_err());
}

/// `config.json` keeps its flat layout with each solver family's settings grouped in memory: the
/// same keys in the same order (a checkpoint and the weight files record the configuration by checksum
/// and content), and it reads back to the same configuration.
#[test]
fn a_training_configuration_writes_the_flat_config_json_it_always_wrote() {
    use losscape::model::Network;
    use losscape::ops::Act;
    use losscape::optim::LineSearchKind;
    use losscape::train::{LbfgsConfig, MiniBatchConfig, Optimizer, TrainConfig};
    let base = TrainConfig::new(Network { arch: Arch::Fcp, act: Act::Softplus }, Optimizer::Lbfgs, 3, 130, 100);
    let mut settings = base.lbfgs.settings;
    (settings.history, settings.line_search) = (3, LineSearchKind::Golden);
    let cfg = TrainConfig {
        keep: 2,
        minibatch: MiniBatchConfig { lr: 0.25, ..base.minibatch },
        lbfgs: LbfgsConfig { iterations: 12, settings },
        data_sha256: Some("d704".into()),
        ..base
    };
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    let expected = r#"{
  "model": "fcp",
  "activation": "softplus",
  "optimizer": "lbfgs",
  "runs": 3,
  "keep": 2,
  "seed": 0,
  "init_sha256": null,
  "train_images": 130,
  "test_images": 100,
  "epochs": 100,
  "lr": 0.25,
  "batch": 64,
  "iterations": 12,
  "history": 3,
  "line_search": "golden",
  "budget": 6,
  "data_sha256": "d704"
}"#;
    assert_eq!(text, expected);
    assert_eq!(serde_json::from_str::<TrainConfig>(&text).unwrap(), cfg);
    // a directory written before the data was fingerprinted has no data_sha256
    let old = TrainConfig { data_sha256: None, ..cfg };
    let without = serde_json::to_string_pretty(&old).unwrap();
    assert!(!without.contains("data_sha256"));
    assert_eq!(serde_json::from_str::<TrainConfig>(&without).unwrap(), old);
}
