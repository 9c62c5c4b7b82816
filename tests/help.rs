//! What `--help` says agrees with what the commands do: the defaults it states are the ones the code
//! uses, the choices it lists are the ones accepted, the files it describes are the ones written.

use std::process::Command;

use losscape::train::paper;

/// The `--help` text of `subcommand`.
fn help(subcommand: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args([subcommand, "--help"]).output().unwrap();
    assert!(o.status.success(), "{subcommand} --help: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The paragraph of `option` in a help text: its line and the description below it, up to the next
/// option, joined into one line.
fn option_help(help: &str, option: &str) -> String {
    let start = help.find(&format!("  {option} ")).unwrap_or_else(|| panic!("no {option} in the help:\n{help}"));
    let rest = &help[start..];
    let end = rest[2..].find("\n      --").map_or(rest.len(), |e| e + 2);
    rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn train_help_states_the_defaults_the_code_uses() {
    let text = help("train");
    for (option, default) in [
        ("--epochs", paper::EPOCHS),
        ("--iterations", paper::ITERATIONS),
        ("--batch", paper::BATCH),
        ("--history", paper::HISTORY),
    ] {
        let line = option_help(&text, option);
        assert!(line.contains(&format!("[default: {default}]")), "{option}: {line}");
    }
    assert!(option_help(&text, "--runs").contains(&format!("[default: {},", paper::RUNS)));
    assert!(option_help(&text, "--keep").contains(&format!("[default: {},", paper::KEEP)));
    let lr = option_help(&text, "--lr");
    assert!(lr.contains(&format!("[default: {} for SGD", paper::LR)), "{lr}");
    assert!(lr.contains(&format!("{} for Adam", losscape::optim::adam::DEFAULT_LR)), "{lr}");
}
