//! What the commands do when they read a network (`--model FILE.toml`): `plan` of a wide network answers
//! at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).env_remove("LOSSCAPE_DATA").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
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
