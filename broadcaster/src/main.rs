//! `evac-broadcaster`: muxes HQ's signed sections and the broadcaster's own alerts into a
//! transport stream, or into the null packets of one already on air. The live loop is the
//! library's [`evac_broadcaster::live`]; the command line is [`cli`].

mod cli;

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: never into journald, a file or a pipe.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    if let Err(e) = cli::main(cli::Cli::parse()) {
        eprintln!("evac-broadcaster: {e:#}");
        std::process::exit(1);
    }
}
