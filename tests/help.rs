//! What `--help` says agrees with what the commands do: the defaults it states are the ones the code
//! uses, the choices it lists are the ones accepted, the files it describes are the ones written.

use std::process::Command;

use losscape::pipeline::{Preset, PRESETS};
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

/// The names listed under "Possible values" in an option's help paragraph.
fn possible_values(paragraph: &str) -> Vec<String> {
    let (_, list) = paragraph.split_once("Possible values:").unwrap_or_else(|| panic!("no values: {paragraph}"));
    list.split(" - ").skip(1).map(|item| item.split(':').next().unwrap().to_string()).collect()
}

#[test]
fn reproduce_and_plan_help_list_exactly_the_presets_accepted() {
    let accepted: Vec<String> = PRESETS.iter().map(|(name, _)| name.to_string()).collect();
    for name in &accepted {
        assert_eq!(&Preset::named(name).unwrap().name, name);
    }
    assert!(Preset::named("huge").is_err());
    for subcommand in ["reproduce", "plan"] {
        let listed = possible_values(&option_help(&help(subcommand), "--preset"));
        assert_eq!(listed, accepted, "{subcommand} --help");
    }
}

#[test]
fn hessian_help_says_vectors_jsonl_has_a_line_per_vector() {
    let text = help("hessian").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("DIR/vectors.jsonl holds one line per finished vector"), "{text}");
    assert!(!text.contains("batch of vectors is a line"), "{text}");
}
