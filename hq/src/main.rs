//! Command-line entry point of `evac-hq` (see hq/README.md for every command).

use std::process::ExitCode;

mod cli;

// mimalloc gives memory freed after the start-up back to the system (the town file loaded
// twice, for HQ and for the answer desk, the registry's shards built): glibc's allocator kept
// it resident, as the dashboard's and the drill runner's did (see their main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evac-hq: {e:#}");
            ExitCode::FAILURE
        }
    }
}
