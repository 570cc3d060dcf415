//! Command-line entry point of `evac-drills`.

use clap::Parser;

/// Drill scenarios, the resident simulator and the one-command drill runner.
#[derive(Parser)]
#[command(name = "evac-drills", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
