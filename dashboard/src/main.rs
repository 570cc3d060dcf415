//! Command-line entry point of `evac-dashboard`.

use clap::Parser;

/// The disaster officers' terminal dashboard.
#[derive(Parser)]
#[command(name = "evac-dashboard", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
