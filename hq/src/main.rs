//! Command-line entry point of `evac-hq` (see hq/README.md for every command).

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    match cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evac-hq: {e:#}");
            ExitCode::FAILURE
        }
    }
}
