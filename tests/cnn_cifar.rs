//! A user's CNN — a stride-2 convolution, max pooling, a bias-free convolution — on a 3-channel dataset
//! in CIFAR-10's binary format (files written here: 3x32x32 images whose class is a bright patch's
//! place), through the commands a researcher runs: SGD and L-BFGS training lower the loss, `paths`
//! optimises a path between two of its solutions, `align` permutes channels and units so that the
//! aligned vectors compute the same losses, and `surface` and `hessian` run (issue 23).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CNN: &str = r#"
format = 1
name = "cifar-cnn"
[input]
image = [3, 32, 32]
[[layers]]
kind = "conv2d"
out = 4
kernel = 3
stride = 2
padding = 1
[[layers]]
kind = "relu"
[[layers]]
kind = "max_pool"
kernel = 2
[[layers]]
kind = "conv2d"
out = 4
kernel = 3
bias = false
[[layers]]
kind = "tanh"
[[layers]]
kind = "flatten"
[[layers]]
kind = "dense"
out = 10
[head]
kind = "cross_entropy"
classes = 10
"#;

fn losscape(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).env("LOSSCAPE_BACKEND", "cpu").output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// `n` CIFAR-10 records: class k in 0..4 lights a 8x8 patch in quadrant k of channel k % 3 over noise.
fn records(n: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let k = (i * 7 + seed) % 4;
        out.push(k as u8);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    let noise = (((i * 131 + c * 71 + y * 29 + x * 17 + seed) * 2654435761usize) >> 7) % 64;
                    let patch = c == k % 3 && (y / 16) == k / 2 && (x / 16) == k % 2 && y % 16 < 8 && x % 16 < 8;
                    out.push(if patch { 200 + (noise % 56) as u8 } else { noise as u8 });
                }
            }
        }
    }
    out
}

fn mean_loss(eval: &Output) -> f64 {
    let text = String::from_utf8_lossy(&eval.stdout);
    let losses: Vec<f64> =
        text.lines().filter_map(|l| l.split("loss ").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
    assert!(!losses.is_empty(), "{text}");
    losses.iter().sum::<f64>() / losses.len() as f64
}

fn losses(eval: &Output) -> Vec<f64> {
    let text = String::from_utf8_lossy(&eval.stdout);
    text.lines().filter_map(|l| l.split("loss ").nth(1)?.split_whitespace().next()?.parse().ok()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_cnn_on_a_cifar_format_dataset_trains_paths_aligns_and_probes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&data).unwrap();
    // the 96 training images in CIFAR-10's five batch files, as its archive extracts them
    for (k, batch) in records(96, 0).chunks(20 * 3073).enumerate() {
        std::fs::write(data.join(format!("data_batch_{}.bin", k + 1)), batch).unwrap();
    }
    std::fs::write(data.join("test_batch.bin"), records(32, 5)).unwrap();
    let model: PathBuf = dir.path().join("cnn.toml");
    std::fs::write(&model, CNN).unwrap();
    let (m, d) = (s(&model), s(&data));
    let out = |name: &str| dir.path().join(name);

    // the loss before training: two vectors of PyTorch's default initialisation
    let init = out("init.safetensors");
    losscape(&["init", "--model", m, "--count", "2", "--out", s(&init)]);
    let before = mean_loss(&losscape(&["eval", "--model", m, "--weights", s(&init), "--split", "train", "--data", d]));

    let (sgd, lbfgs) = (out("sgd"), out("lbfgs"));
    let train = |opt: &str, dir: &Path, steps: &[&str]| {
        let args = [
            &["train", "--model", m, "--data", d, "--optimizer", opt, "--runs", "2", "--out", s(dir), "--quiet"],
            steps,
        ];
        losscape(&args.concat());
    };
    train("sgd", &sgd, &["--epochs", "15", "--batch", "16"]);
    train("lbfgs", &lbfgs, &["--iterations", "15"]);
    let sgd_set = sgd.join("cifar-cnn-sgd-train.safetensors");
    let lbfgs_set = lbfgs.join("cifar-cnn-lbfgs-train.safetensors");
    for set in [&sgd_set, &lbfgs_set] {
        let after = mean_loss(&losscape(&["eval", "--model", m, "--weights", s(set), "--split", "train", "--data", d]));
        assert!(after < 0.7 * before, "{}: training loss {after} against {before} at initialisation", set.display());
    }

    // a path between the two SGD solutions
    let paths = out("paths");
    let args = ["paths", "--model", m, "--set", s(&sgd_set), "--data", d, "--pairs", "1", "--iterations", "3"];
    losscape(&[&args[..], &["--out", s(&paths), "--quiet"]].concat());
    let record = std::fs::read_to_string(paths.join("paths.jsonl")).unwrap();
    assert!(record.contains("\"height\""), "{record}");

    // alignment permutes conv channels and dense units: the aligned vectors compute the same losses
    let aligned = out("aligned.safetensors");
    let o = losscape(&[
        "align",
        "--model",
        m,
        "--a",
        s(&sgd_set),
        "--a-index",
        "0",
        "--b",
        s(&lbfgs_set),
        "--out",
        s(&aligned),
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let eval = |w: &Path| losses(&losscape(&["eval", "--model", m, "--weights", s(w), "--split", "test", "--data", d]));
    let (original, permuted) = (eval(&lbfgs_set), eval(&aligned));
    assert_eq!(original.len(), 2);
    for (a, b) in original.iter().zip(&permuted) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "aligned loss {b} against {a}");
    }
    assert_ne!(std::fs::read(&aligned).unwrap(), std::fs::read(&lbfgs_set).unwrap(), "align moved nothing: {text}");

    // the probes
    let surface = out("surface");
    losscape(&[
        "surface",
        "--model",
        m,
        "--set",
        s(&lbfgs_set),
        "--through",
        "0,1",
        "--data",
        d,
        "--out",
        s(&surface),
        "--quiet",
    ]);
    assert!(surface.join("surface.csv").is_file());
    let hessian = out("hessian");
    losscape(&["hessian", "--model", m, "--set", s(&lbfgs_set), "--data", d, "--out", s(&hessian), "--quiet"]);
    let csv = std::fs::read_to_string(hessian.join("hessian.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two vectors: {csv}");
}
