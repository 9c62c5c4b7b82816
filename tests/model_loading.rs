//! What every command does when it reads a network (`--model FILE.toml`, `import`): a description past
//! what a backend addresses, or one the plan builder does not take, is refused when it is read, naming
//! the file and the layer, by `init`, `plan`, `eval` and `train` alike (never an abort, a panic or an
//! error half-way without the file); `plan` of a wide network answers at once; `import` writes only a
//! `.toml` description, never over its own model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).env_remove("LOSSCAPE_DATA").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn digits() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits").display().to_string()
}

fn onnx_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The stderr of a command that failed with `code` (1: an error, 2: a usage error), without a panic.
fn refused(o: Output, code: i32) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "expected exit {code}; stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{err}");
    err
}

fn assert_contains(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "the message lacks `{p}`:\n{message}");
    }
}

/// A description on the 8x8 digits: flatten, then `layers` (TOML tables), and a 10-class head.
fn description(layers: &[&str]) -> String {
    let mut text = "format = 1\nname = \"t\"\n[input]\nimage = [1, 8, 8]\n[[layers]]\nkind = \"flatten\"\n".to_string();
    for l in layers {
        text += &format!("[[layers]]\n{l}\n");
    }
    text + "[head]\nkind = \"cross_entropy\"\nclasses = 10\n"
}

/// `text` written as `name` in `dir`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A run of `train` as short as it gets, on the CPU backend.
const TRAIN: [&str; 8] = ["--optimizer", "sgd", "--runs", "1", "--epochs", "1", "--backend", "cpu"];

/// The commands that read a network, each on `model`: the stderr of each.
fn every_command(model: &Path, dir: &Path) -> Vec<(&'static str, Output)> {
    let (m, d, out) = (s(model), digits(), dir.join("out"));
    let weights = dir.join("w.safetensors");
    vec![
        ("init", losscape(&["init", "--model", m, "--count", "1", "--out", s(&weights)])),
        ("plan", losscape(&["plan", "--model", m, "--backend", "cpu"])),
        ("eval", losscape(&["eval", "--model", m, "--weights", s(&weights), "--data", &d, "--backend", "cpu"])),
        ("train", losscape(&[&["train", "--model", m, "--data", &d, "--out", s(&out)][..], &TRAIN].concat())),
    ]
}

#[test]
fn a_layer_past_what_a_backend_addresses_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let layers = ["kind = \"dense\"\nout = 100000000000", "kind = \"tanh\"", "kind = \"dense\"\nout = 10"];
    let model = write(dir.path(), "huge.toml", &description(&layers));
    for (command, o) in every_command(&model, dir.path()) {
        let err = refused(o, 2);
        assert_contains(&err, &["huge.toml", "layer 1 (dense)", "parameters per vector", "4294967295"]);
        assert!(!dir.path().join("w.safetensors").exists(), "{command} wrote weights");
    }
}

#[test]
fn networks_the_plan_builder_does_not_take_are_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let dense = |out: usize| format!("kind = \"dense\"\nout = {out}");
    let rows = |layers: &str| {
        format!("format = 1\nname = \"r\"\n[input]\nrows = [1, 8, 8]\n{layers}[head]\nkind = \"cross_entropy\"\nclasses = 10\n")
    };
    let cases = [
        ("acts.toml", description(&[&dense(16), "kind = \"relu\"", "kind = \"tanh\"", &dense(10)]), "layer 3 (tanh)"),
        (
            "pool.toml",
            "format = 1\nname = \"p\"\n[input]\nimage = [1, 8, 8]\n[[layers]]\nkind = \"max_pool\"\nkernel = 2\n\
             [[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nout = 10\n[head]\nkind = \"cross_entropy\"\n\
             classes = 10\n"
                .to_string(),
            "layer 0 (max_pool)",
        ),
        (
            "nobias.toml",
            rows("[[layers]]\nkind = \"lstm\"\nhidden = 4\nbias = false\n[[layers]]\nkind = \"dense\"\nout = 10\n"),
            "layer 0 (lstm)",
        ),
        (
            "lstm_act.toml",
            rows("[[layers]]\nkind = \"lstm\"\nhidden = 10\n[[layers]]\nkind = \"relu\"\n[[layers]]\nkind = \"dense\"\nout = 10\n"),
            "layer 0 (lstm)",
        ),
        ("lstm_only.toml", rows("[[layers]]\nkind = \"lstm\"\nhidden = 10\n"), "layer 0 (lstm)"),
    ];
    for (name, text, layer) in &cases {
        let model = write(dir.path(), name, text);
        for (command, o) in every_command(&model, dir.path()) {
            let err = refused(o, 2);
            assert!(err.contains(name) && err.contains(layer), "{command} {name}: the file and {layer}: {err}");
        }
    }
    // a network ending in an activation after its last dense layer is taken, as in PyTorch
    let relu_last = write(dir.path(), "relu_last.toml", &description(&[&dense(10), "kind = \"relu\""]));
    let o = losscape(&["init", "--model", s(&relu_last), "--out", s(&dir.path().join("r.safetensors"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn plan_of_a_wide_network_answers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // 30,000 units: 2.2 million parameters; `plan` computes nothing and walked every column of every
    // product of its 938 chunks (17 s in a release build)
    let layers = ["kind = \"dense\"\nout = 30000", "kind = \"tanh\"", "kind = \"dense\"\nout = 10"];
    let model = write(dir.path(), "wide.toml", &description(&layers));
    let start = Instant::now();
    let o = losscape(&["plan", "--model", s(&model), "--backend", "cpu"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_contains(&text(&o.stdout), &["t B=51 N=60000 loss+gradient"]);
    assert!(start.elapsed() < Duration::from_secs(10), "plan took {:?}", start.elapsed());
}

#[test]
fn import_writes_a_toml_description_and_never_over_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    std::fs::copy(onnx_fixture("mlp.onnx"), &model).unwrap();
    let before = std::fs::read(&model).unwrap();
    // the model itself as --out: refused (it would be replaced by its description)
    let err = refused(losscape(&["import", s(&model), "--out", s(&model)]), 2);
    assert_contains(&err, &["--out", "m.onnx", ".toml", "--out", "m.toml"]);
    // another extension: refused, naming the option and the fix
    let st = dir.path().join("m.safetensors");
    let err = refused(losscape(&["import", s(&model), "--out", s(&st)]), 2);
    assert_contains(&err, &["--out", "m.safetensors", "name it .toml", "m.toml"]);
    assert!(!st.exists());
    // a model named .toml (an ONNX file under that name) as its own --out
    let named = dir.path().join("onnx.toml");
    std::fs::copy(&model, &named).unwrap();
    let err = refused(losscape(&["import", s(&named), "--out", s(&dir.path().join(".").join("onnx.toml"))]), 2);
    assert_contains(&err, &["--out", "is the model being imported", "another file"]);
    assert_eq!(std::fs::read(&model).unwrap(), before);
    assert_eq!(std::fs::read(&named).unwrap(), before);
    // a .toml, and a stream, are written
    let toml = dir.path().join("m.toml");
    let o = losscape(&["import", s(&model), "--out", s(&toml)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(std::fs::read_to_string(&toml).unwrap().contains("[[layers]]"));
    let o = losscape(&["import", s(&model), "--out", "/dev/null"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}
