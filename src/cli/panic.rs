//! What a user reads when losscape panics (exit status 101): a bug in the program, never a problem with the input
//! (bad input is an error naming the file and the fix). Rust's own message ("thread 'main' panicked
//! at src/…") does not say that, nor what happened to the files already written.

use std::io::Write as _;
use std::panic::PanicHookInfo;

/// Replaces the panic message with [`message`]; with `RUST_BACKTRACE` set, Rust's own message and
/// backtrace follow it. Installed once, by the binary's `main`.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
        // a closed standard error must not turn into a second panic
        let _ = writeln!(std::io::stderr(), "{}", message(what, location.as_deref()));
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            default(info);
        }
    }));
}

/// The text printed for a panic with payload `what` raised at `location` (`file:line`).
pub fn message(what: &str, location: Option<&str>) -> String {
    let at = location.map_or(String::new(), |l| format!(" (at {l})"));
    format!(
        "error: losscape {} panicked: {what}{at}\n  \
         This is a bug in losscape, not a problem with your input. Files written before it are kept, and \
         the commands that resume (train, paths, surface, hessian, reproduce) continue from them when run \
         again. Please report it with the command line and this message; RUST_BACKTRACE=1 adds a backtrace.",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_bug_its_place_and_what_to_do() {
        let m = message("index out of bounds: the len is 3 but the index is 5", Some("src/cpu/matmul.rs:42"));
        // the suite's tests look for "panicked" in a child's standard error
        assert!(m.starts_with("error: losscape ") && m.contains(" panicked: "), "{m}");
        for part in
            ["index out of bounds", "(at src/cpu/matmul.rs:42)", "not a problem with your input", "RUST_BACKTRACE=1"]
        {
            assert!(m.contains(part), "{part} missing from {m}");
        }
        assert!(!message("x", None).contains("(at"));
    }
}
