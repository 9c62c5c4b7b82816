use std::process::ExitCode;

fn main() -> ExitCode {
    losscape::cli::panic::install_hook();
    match losscape::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        // `losscape … | head -1`: the reader has what it wanted; files were written before printing
        Err(e) if losscape::cli::is_stdout_closed(&e) => ExitCode::SUCCESS,
        Err(e) => match losscape::cli::usage_exit(&e) {
            // options that contradict each other or do not apply: exit 2 with the subcommand's usage
            Some(code) => ExitCode::from(code as u8),
            None => {
                // a closed standard error must not turn the failure into a panic (exit 101)
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
