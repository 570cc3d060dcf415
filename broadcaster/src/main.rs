//! Command-line entry point of `evac-broadcaster`.

use clap::Parser;

/// Overlay muxing into MPEG transport streams and the reference receiver evac-stb.
#[derive(Parser)]
#[command(name = "evac-broadcaster", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
