//! `evac-maps`: generate, inspect and import town data. The command line is [`cli`]; the
//! work is the library's.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evac-maps: {e:#}");
            ExitCode::FAILURE
        }
    }
}
