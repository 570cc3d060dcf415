//! Command-line entry point of `evac-hq`.

use clap::Parser;

/// HQ service: embedded broker, status store, order engine, CAP intake and officer commands.
#[derive(Parser)]
#[command(name = "evac-hq", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
