use std::process::ExitCode;

fn main() -> ExitCode {
    match losscape::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        // `losscape … | head -1`: the reader has what it wanted; files were written before printing
        Err(e) if losscape::cli::is_stdout_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
