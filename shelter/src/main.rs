//! Command-line entry point of `evac-shelter`.

use clap::Parser;

/// Shelter node: card readers, JPKI certificate checks, the SQLite ledger and the MQTT outbox.
#[derive(Parser)]
#[command(name = "evac-shelter", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
