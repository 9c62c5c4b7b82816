//! `losscape bench` as a user runs it: the per-operation profile of `--profile`.

use std::process::Command;

fn bench(out: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["bench", "--backend", "cpu", "--models", "mlp:784-16-10:relu", "--images", "64"];
    args.extend([
        "--batches",
        "3",
        "--repeats",
        "1",
        "--train-runs",
        "0",
        "--path-points",
        "0",
        "--ceiling-size",
        "64",
    ]);
    args.extend(extra);
    let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).arg("--out").arg(out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// With `--profile` a case prints and records its operations with their shapes (the network's first
/// layer as one product of all 3 vectors' 16 units); without it, neither.
#[test]
fn bench_profile_names_each_operation_of_a_call_with_its_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (with, without) = (dir.path().join("with.json"), dir.path().join("without.json"));
    let text = bench(&with, &["--profile"]);
    assert!(text.contains("profile of a call") && text.contains("matrix product 64x48x784"), "{text}");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&with).unwrap()).unwrap();
    let profile = &record["cases"][0]["profile"];
    assert!(profile["seconds_per_call"].as_f64().unwrap() > 0.0, "{profile}");
    let ops = profile["ops"].as_array().unwrap();
    let first = ops.iter().find(|o| o["op"] == "matrix product 64x48x784").unwrap_or_else(|| panic!("{profile}"));
    assert_eq!(first["calls"], 1);
    assert_eq!(first["flops"].as_f64().unwrap(), 2.0 * 64.0 * 48.0 * 784.0);
    assert!(ops.iter().any(|o| o["op"].as_str().unwrap().starts_with("activation Relu")), "{profile}");
    let text = bench(&without, &[]);
    assert!(!text.contains("profile of a call"), "{text}");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&without).unwrap()).unwrap();
    assert!(record["cases"][0].get("profile").is_none(), "{record}");
}
