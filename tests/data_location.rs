//! Issue 26, item 1: the MNIST files are found at run time (`--data`, `LOSSCAPE_DATA`, beside the
//! executable, the source tree), so that a copied or installed binary runs from any directory.
//!
//! The binary tests copy `CARGO_BIN_EXE_losscape` into a temporary directory instead of running
//! `cargo install --path . --root DIR`: an install compiles a release build from scratch (many minutes on
//! the CI's 2 cores), while the copy is the same program, found through the same `current_exe()`, in
//! well under a second. `LOSSCAPE_DATA_NO_SOURCE_TREE=1` makes the copy behave as a binary whose source
//! tree is gone (the tree this test runs in must keep its assets/ for the other tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use losscape::data::locate::{locate_in, next_to_executable, Places, NO_SOURCE_TREE_VAR};
use losscape::data::{bundled_dir, DataSource};

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// A copy of the binary at `dir/bin/losscape` (`dir` is inside a fresh temporary directory, so that
/// the places beside it, two levels up included, are the test's own).
fn copied_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("losscape");
    std::fs::copy(env!("CARGO_BIN_EXE_losscape"), &exe).unwrap();
    exe
}

/// `exe args` run from `cwd` with no data variable set, and without the source tree unless `source`.
fn run(exe: &Path, cwd: &Path, args: &[&str], envs: &[(&str, &Path)], source: bool) -> Output {
    let mut c = Command::new(exe);
    c.args(args).current_dir(cwd).env_remove("LOSSCAPE_DATA").env_remove(NO_SOURCE_TREE_VAR);
    if !source {
        c.env(NO_SOURCE_TREE_VAR, "1");
    }
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn the_search_order_is_option_environment_beside_the_executable_then_source_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("bin").join("losscape");
    std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
    let data = bundled_dir();
    let places = |option: Option<&Path>, env: Option<&Path>, source: Option<&Path>| Places {
        option: option.map(Path::to_path_buf),
        env: env.map(|p| p.as_os_str().to_owned()),
        exe: Some(exe.clone()),
        source_tree: source.map(Path::to_path_buf),
    };
    let elsewhere = tmp.path().join("elsewhere");
    // --data wins, taken as given
    let d = locate_in(&places(Some(&elsewhere), Some(&data), Some(&data))).unwrap();
    assert_eq!((d.dir, d.source), (elsewhere.clone(), DataSource::Option));
    // then LOSSCAPE_DATA, which must hold the files
    let d = locate_in(&places(None, Some(&data), None)).unwrap();
    assert_eq!((d.dir, d.source), (data.clone(), DataSource::Environment));
    let e = format!("{:#}", locate_in(&places(None, Some(&elsewhere), Some(&data))).unwrap_err());
    assert!(e.contains("LOSSCAPE_DATA=") && e.contains("elsewhere") && e.contains("train-images-idx3-ubyte"), "{e}");
    // then the source tree
    let d = locate_in(&places(None, None, Some(&data))).unwrap();
    assert_eq!(d.source, DataSource::SourceTree);
    // beside the executable comes before the source tree
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&data, tmp.path().join("bin").join("mnist")).unwrap();
        let d = locate_in(&places(None, None, Some(&data))).unwrap();
        assert_eq!((d.dir, d.source), (tmp.path().join("bin").join("mnist"), DataSource::NextToExecutable));
        std::fs::remove_file(tmp.path().join("bin").join("mnist")).unwrap();
    }
    // nothing found: every place is named, and the fix
    let e = format!("{:#}", locate_in(&places(None, None, Some(&elsewhere))).unwrap_err());
    for place in next_to_executable(&exe).iter().chain([&elsewhere]) {
        assert!(e.contains(&place.display().to_string()), "{e} should name {}", place.display());
    }
    for words in ["no MNIST data found", "--data: not given", "LOSSCAPE_DATA: not set", "Fix:"] {
        assert!(e.contains(words), "{e}");
    }
    let e = format!("{:#}", locate_in(&places(None, None, None)).unwrap_err());
    assert!(e.contains("skipped (LOSSCAPE_DATA_NO_SOURCE_TREE=1)"), "{e}");
}

#[test]
fn a_copied_binary_run_from_another_directory_finds_its_data() {
    let root = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir_in(root.path()).unwrap();
    let exe = copied_binary(tmp.path());
    let cwd = tmp.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let w = cwd.join("w.safetensors");
    let init = run(&exe, &cwd, &["init", "--model", "fcp", "--count", "2", "--out", "w.safetensors"], &[], false);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let eval_args = ["eval", "--model", "fcp", "--weights", w.to_str().unwrap(), "--limit", "64", "--backend", "cpu"];

    // no data anywhere: a clean error naming the places looked, beside this copy included
    let o = run(&exe, &cwd, &eval_args, &[], false);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no MNIST data found") && !err.contains("panicked"), "{err}");
    assert!(err.contains(&tmp.path().join("bin").join("mnist").display().to_string()), "{err}");
    let info = run(&exe, &cwd, &["info", "--json", "--backend", "cpu"], &[], false);
    assert!(info.status.success(), "{}", text(&info.stderr));
    let record: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert!(record["data"]["error"].as_str().unwrap().contains("no MNIST data found"), "{record}");

    // LOSSCAPE_DATA
    let data = bundled_dir();
    let o = run(&exe, &cwd, &eval_args, &[("LOSSCAPE_DATA", &data)], false);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("vector 1: loss"), "{}", text(&o.stdout));
    let info = run(&exe, &cwd, &["info", "--json", "--backend", "cpu"], &[("LOSSCAPE_DATA", &data)], false);
    let record: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(record["data"]["source"], "environment", "{record}");

    // beside the executable (a copy of the directory, as a user would ship it)
    let beside = tmp.path().join("bin").join("mnist");
    std::fs::create_dir_all(&beside).unwrap();
    for f in std::fs::read_dir(&data).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, beside.join(f.file_name().unwrap())).unwrap();
    }
    let o = run(&exe, &cwd, &eval_args, &[], false);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let info = run(&exe, &cwd, &["info", "--json", "--backend", "cpu"], &[], false);
    let record: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(record["data"]["source"], "next-to-executable", "{record}");
    assert_eq!(record["data"]["dir"], beside.display().to_string(), "{record}");

    // and, without the copy beside it, the source tree the binary was built from (it exists here)
    std::fs::remove_dir_all(&beside).unwrap();
    let info = run(&exe, &cwd, &["info", "--json", "--backend", "cpu"], &[], true);
    let record: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(record["data"]["source"], "source-tree", "{record}");
}
