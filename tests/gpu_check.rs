//! Issue 26, item 5: `scripts/gpu-check` as it will run on a bare GPU server, dry-run on lavapipe: from
//! a copy of the repository in another directory, the binary beside the copy's `target/release/`, the
//! original source tree's data out of reach (`LOSSCAPE_DATA_NO_SOURCE_TREE=1`), into an output folder
//! that is not empty. It must pass, keep a JSON record of every stage, and fail when a numerical check
//! is broken on purpose (a wrapper that corrupts the CPU backend's losses).
//!
//! It runs in the suite's wgpu pass (`LOSSCAPE_BACKEND=vulkan`, `.ci/run`), where lavapipe is known to
//! be present, and is skipped in the default pass: one dry run of the script is enough for CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// The repository's tracked files (git when present, else the parts the check uses) copied under `dst`.
fn copy_repository(dst: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = Command::new("git").arg("-C").arg(src).args(["ls-files", "-z"]).output();
    let files: Vec<PathBuf> = match listed {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => {
            o.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()).map(|f| PathBuf::from(text(f))).collect()
        }
        _ => {
            ["scripts/gpu-check", "assets/mnist/train-images-idx3-ubyte.gz", "assets/mnist/train-labels-idx1-ubyte.gz"]
                .iter()
                .chain(&["assets/mnist/t10k-images-idx3-ubyte.gz", "assets/mnist/t10k-labels-idx1-ubyte.gz"])
                .map(PathBuf::from)
                .collect()
        }
    };
    for f in files.iter().filter(|f| src.join(f).is_file()) {
        std::fs::create_dir_all(dst.join(f).parent().unwrap()).unwrap();
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    // scripts/gpu-check itself, committed or not
    std::fs::create_dir_all(dst.join("scripts")).unwrap();
    std::fs::copy(src.join("scripts/gpu-check"), dst.join("scripts/gpu-check")).unwrap();
}

/// scripts/gpu-check of the copy at `repo`, run from `cwd` at the dry-run scale with `extra` variables.
fn gpu_check(repo: &Path, cwd: &Path, out: &Path, extra: &[(&str, &str)]) -> Output {
    let mut c = Command::new("bash");
    c.arg(repo.join("scripts/gpu-check")).arg(out).current_dir(cwd);
    c.env_remove("LOSSCAPE_DATA").env_remove("LOSSCAPE_BIN").env("LOSSCAPE_DATA_NO_SOURCE_TREE", "1");
    for (k, v) in [
        ("GPU_CHECK_ALLOW_SOFTWARE", "1"),
        ("GPU_CHECK_IMAGES", "64"),
        ("GPU_CHECK_PAIRS", "2"),
        ("GPU_CHECK_ITERATIONS", "2"),
        ("GPU_CHECK_POINTS", "3"),
        ("GPU_CHECK_VECTORS", "2"),
        ("GPU_CHECK_BATCHES", "1,2"),
        ("GPU_CHECK_TRAIN_RUNS", "2"),
        ("GPU_CHECK_CEILING", "128"),
        ("LOSSCAPE_GPU_BACKEND", "vulkan"),
    ]
    .iter()
    .chain(extra)
    {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn record(out: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(out.join("check.json")).unwrap();
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("check.json is not JSON ({e}): {t}"))
}

fn stage<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name}: {r}"))
}

#[test]
fn the_moved_copy_dry_run_on_lavapipe_passes_and_a_broken_check_fails_it() {
    if std::env::var("LOSSCAPE_BACKEND").map(|b| b.trim().to_lowercase()) != Ok("vulkan".into()) {
        eprintln!("skipped: the dry run belongs to the wgpu pass (LOSSCAPE_BACKEND=vulkan)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("copy");
    copy_repository(&repo);
    std::fs::create_dir_all(repo.join("target/release")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_losscape"), repo.join("target/release/losscape")).unwrap();
    let cwd = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();
    // an output folder from an earlier run: moved aside, not resumed
    let out = cwd.join("out");
    std::fs::create_dir_all(out.join("paths-pN")).unwrap();
    std::fs::write(out.join("paths-pN/stale.txt"), "earlier run").unwrap();

    let o = gpu_check(&repo, &cwd, &out, &[]);
    let log = format!("stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{log}");
    assert!(!out.join("paths-pN/stale.txt").exists(), "the earlier output must be moved aside: {log}");
    let r = record(&out);
    assert_eq!(r["finished"], true, "{r}");
    for name in ["vulkan", "data", "info", "plans", "bench", "paper-estimate", "gpu-vs-cpu", "subgroups", "paths"] {
        assert_eq!(stage(&r, name)["status"], "ok", "{name}: {r}");
    }
    // the data came from the binary's side: the copy's assets/, two levels above target/release/
    let data = stage(&r, "data")["detail"].as_str().unwrap();
    assert!(data.contains("next-to-executable") && data.contains("copy/assets/mnist"), "{data}");
    // bench.json records the budget and each case's chunk
    let bench: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert!(bench["budget"]["total_bytes"].as_u64().unwrap() > 0 && bench["budget"]["source"].is_string(), "{bench}");
    assert!(bench["cases"].as_array().unwrap().iter().all(|c| c["chunk_images"].as_u64() == Some(64)), "{bench}");

    // broken on purpose: the CPU backend's losses corrupted by a wrapper around the binary
    let wrapper = tmp.path().join("broken-losscape");
    std::fs::write(
        &wrapper,
        format!(
            "#!/usr/bin/env bash\nif [[ \" $* \" == *\" eval \"* && \" $* \" == *\" --backend cpu \"* ]]; then\n  \
             \"{0}\" \"$@\" | sed 's/\"losses\":\\[\\([0-9]\\)/\"losses\":[9\\1/'\nelse\n  exec \"{0}\" \"$@\"\nfi\n",
            repo.join("target/release/losscape").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let broken = cwd.join("broken");
    let stages = "vulkan data gpu-vs-cpu";
    let o =
        gpu_check(&repo, &cwd, &broken, &[("LOSSCAPE_BIN", wrapper.to_str().unwrap()), ("GPU_CHECK_STAGES", stages)]);
    let log = format!("stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{log}");
    let r = record(&broken);
    assert_eq!(stage(&r, "gpu-vs-cpu")["status"], "failed", "{r}");
    assert!(stage(&r, "gpu-vs-cpu")["detail"].as_str().unwrap().contains("exceeds"), "{r}");
}
