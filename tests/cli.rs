//! The binary as a user runs it: exit codes, messages, no panics, no driver noise.

use std::path::Path;
use std::process::{Command, Output};

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn assert_clean_failure(o: &Output, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(needle), "stderr should contain {needle:?}: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
}

#[test]
fn info_lists_the_cpu_backend_and_an_adapter_without_driver_noise() {
    let o = Command::new(env!("CARGO_BIN_EXE_losscape"))
        .arg("info")
        .env_remove("LOSSCAPE_BACKEND")
        .env_remove("WGPU_BACKEND")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("[cpu] native CPU backend") && out.contains("threads"), "{out}");
    assert!(out.contains("[0]") && out.contains("backend Vulkan") && out.contains("limits:"), "{out}");
    // lavapipe is a software rasteriser: auto takes the CPU backend
    assert!(out.contains("the chosen backend: cpu"), "{out}");
    assert_eq!(text(&o.stderr), "", "stderr must be silent");
}

#[test]
fn no_adapter_gives_a_short_error_naming_the_fix() {
    // No Metal adapter exists on Linux: the same path as a machine without any driver.
    if cfg!(target_os = "macos") {
        return;
    }
    let info = losscape(&["info", "--backend", "metal"]);
    assert!(info.status.success() && text(&info.stdout).contains("no GPU adapter"), "{}", text(&info.stdout));
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    assert!(losscape(&["init", "--model", "fcp", "--out", w.to_str().unwrap()]).status.success());
    let o =
        losscape(&["eval", "--model", "fcp", "--weights", w.to_str().unwrap(), "--limit", "10", "--backend", "metal"]);
    assert_clean_failure(&o, "no GPU adapter found");
    assert_clean_failure(&o, "--backend cpu");
}

#[test]
fn eval_text_and_json_agree() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    let o = losscape(&["init", "--model", "fcp", "--seed", "4", "--count", "2", "--out", w.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let args = ["eval", "--model", "fcp", "--weights", w.to_str().unwrap(), "--split", "test", "--limit", "300"];
    let plain = losscape(&args);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let json = losscape(&[&args[..], &["--json"]].concat());
    // `--set`, as `surface` and `hessian` name a weight file, gives the same output
    let set = losscape(&["eval", "--model", "fcp", "--set", w.to_str().unwrap(), "--split", "test", "--limit", "300"]);
    assert_eq!(text(&set.stdout), text(&plain.stdout), "{}", text(&set.stderr));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["model"], "fcp");
    assert_eq!(v["split"], "test");
    assert_eq!(v["images"], 300);
    let lines: Vec<String> = text(&plain.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2);
    for (i, line) in lines.iter().enumerate() {
        let loss = v["losses"][i].as_f64().unwrap();
        let acc = v["accuracies"][i].as_f64().unwrap();
        assert!(loss > 2.0 && loss < 2.6, "fresh FCP loss ~ ln 10: {loss}");
        assert!(line.contains(&format!("loss {loss:.6e}")), "{line} vs {loss}");
        assert!(line.contains(&format!("accuracy {:.2}%", 100.0 * acc)), "{line} vs {acc}");
    }
}

#[test]
fn eval_refuses_a_wrong_tensor_name_or_shape_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("lenet.safetensors");
    assert!(losscape(&["init", "--model", "lenet", "--out", w.to_str().unwrap()]).status.success());
    let o = losscape(&["eval", "--model", "fcp", "--weights", w.to_str().unwrap()]);
    assert_clean_failure(&o, "conv1.weight");
    // right names, wrong shape
    let data = vec![0u8; 50 * 50 * 4];
    let other = vec![0u8; 10 * 50 * 4];
    let wide = vec![0u8; 50 * 784 * 4];
    let views = vec![
        (
            "fc1.weight".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![50, 784], &wide).unwrap(),
        ),
        (
            "fc2.weight".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![25, 100], &data).unwrap(),
        ),
        (
            "fc3.weight".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![10, 50], &other).unwrap(),
        ),
    ];
    let bad = dir.path().join("bad.safetensors");
    safetensors::serialize_to_file(views, None, &bad).unwrap();
    let o = losscape(&["eval", "--model", "fcp", "--weights", bad.to_str().unwrap()]);
    assert_clean_failure(&o, "tensor 'fc2.weight' has shape [25, 100]");
}

#[test]
fn eval_of_the_authors_lstm_npy_as_fcp_names_the_row_length() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_authors_rows01.npy");
    let o = losscape(&["eval", "--model", "fcp", "--weights", path.to_str().unwrap()]);
    assert_clean_failure(&o, "row length 15456 does not match the FCP's 42200");
}

#[test]
fn a_truncated_data_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    // cut the raw image file short
    let raw = losscape::data::idx::read_maybe_gz(&dir.path().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::remove_file(dir.path().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &raw[..raw.len() - 1000]).unwrap();
    let w = dir.path().join("w.safetensors");
    assert!(losscape(&["init", "--model", "fcp", "--out", w.to_str().unwrap()]).status.success());
    let o =
        losscape(&["eval", "--model", "fcp", "--weights", w.to_str().unwrap(), "--data", dir.path().to_str().unwrap()]);
    assert_clean_failure(&o, "t10k-images-idx3-ubyte: truncated");
}

/// Issue 26: `info` says why there is no adapter (the loader, the ICD files, wgpu's answer), and for
/// each adapter its memory budget, where it comes from, and each network's chunk.
#[test]
fn info_says_why_there_is_no_adapter_and_each_adapters_budget() {
    if cfg!(target_os = "macos") {
        return;
    }
    // no Metal adapter on Linux: the path of a machine without a driver
    let o = Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(["info", "--backend", "metal"])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("Why, for a GPU:") && out.contains("Vulkan loader"), "{out}");
    assert!(out.contains("named but missing: /nonexistent/icd.json"), "{out}");
    assert!(out.contains("wgpu: request_adapter:"), "{out}");
    let o = losscape(&["info", "--backend", "metal", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let checks = v["no_adapter_diagnosis"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["check"] == "wgpu" && c["ok"] == false), "{v}");
    // lavapipe: the software budget, stated, and a chunk per network
    let o = losscape(&["info", "--backend", "vulkan", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["adapters"][0];
    assert_eq!(a["budget"]["total_bytes"], 256u64 << 20, "{a}");
    assert!(a["budget"]["source"].as_str().unwrap().contains("software"), "{a}");
    for m in ["fcp", "lenet", "lstm", "autoencoder"] {
        assert!(a["chunk_images"][m].as_u64().is_some_and(|c| c >= 64), "{m}: {a}");
    }
    let out = text(&losscape(&["info", "--backend", "vulkan", "--gpu-memory", "1G"]).stdout);
    assert!(out.contains("memory budget: scratch 1024 MiB (--gpu-memory)"), "{out}");
}

#[test]
fn a_batch_job_log_gets_plain_progress_lines() {
    // stderr captured (not a terminal), as in `train > log 2>&1` under Slurm: plain lines at the
    // LOSSCAPE_PROGRESS_SECONDS interval (0: every step), then none with --quiet
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, quiet: bool| {
        let mut args = vec!["train", "--model", "fcp", "--optimizer", "sgd", "--runs", "2", "--epochs", "3"];
        args.extend(["--train-size", "128", "--test-size", "64", "--backend", "cpu", "--out", out]);
        if quiet {
            args.push("--quiet");
        }
        let o = Command::new(env!("CARGO_BIN_EXE_losscape"))
            .args(&args)
            .current_dir(dir.path())
            .env("LOSSCAPE_PROGRESS_SECONDS", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let log = run("a", false);
    for k in 1..=3 {
        assert!(log.contains(&format!("progress: {k}/3 epochs")), "no line for epoch {k}:\n{log}");
    }
    assert!(log.contains("mean train loss"), "the line carries the bar's message:\n{log}");
    assert!(!run("b", true).contains("progress:"), "--quiet prints no progress");
}

#[test]
fn weights_written_for_another_network_of_the_same_shapes_are_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("tanh.safetensors");
    let ws = w.to_str().unwrap();
    assert!(losscape(&["init", "--model", "mlp:784-64-10:tanh", "--count", "1", "--out", ws]).status.success());
    let eval =
        |model: &str| losscape(&["eval", "--model", model, "--weights", ws, "--limit", "20", "--backend", "cpu"]);
    let other = eval("mlp:784-64-10");
    assert!(other.status.success(), "{}", text(&other.stderr));
    let err = text(&other.stderr);
    assert!(
        err.contains(ws) && err.contains("`mlp-784-64-10-tanh`") && err.contains("read as `mlp-784-64-10`"),
        "{err}"
    );
    let same = eval("mlp:784-64-10:tanh");
    assert!(!text(&same.stderr).contains("warning"), "{}", text(&same.stderr));
}

#[test]
fn a_set_trained_with_another_activation_is_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relu");
    let train =
        ["train", "--model", "fcp", "--activation", "relu", "--optimizer", "sgd", "--runs", "2", "--epochs", "1"];
    let rest = ["--train-size", "40", "--batch", "20", "--test-size", "20", "--quiet", "--backend", "cpu", "--out"];
    let o = losscape(&[&train[..], &rest[..], &[out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let set = out.join("fcp-sgd-train.safetensors");
    let eval = |extra: &[&str]| {
        let args = ["eval", "--model", "fcp", "--weights", set.to_str().unwrap(), "--limit", "20", "--backend", "cpu"];
        losscape(&[&args[..], extra].concat())
    };
    let forgot = eval(&[]);
    assert!(forgot.status.success(), "{}", text(&forgot.stderr));
    let err = text(&forgot.stderr);
    assert!(err.contains("trained with the relu activation") && err.contains("--activation relu"), "{err}");
    let right = eval(&["--activation", "relu"]);
    assert!(!text(&right.stderr).contains("warning"), "{}", text(&right.stderr));
}
