//! The binary's shell around the library (bin-side, not part of `evac_dashboard`): the
//! runtime, the log file and the terminal.

use std::path::PathBuf;

use anyhow::Context;
use evac_dashboard::clock::Clock;
use evac_dashboard::net::FeedEvent;
use evac_dashboard::run::{self, Screen};

/// Runs `screen` on the terminal (raw mode and the alternate screen, given back on return
/// and on a panic) until the officer quits.
pub async fn on_terminal(
    screen: &mut impl Screen,
    feed: tokio::sync::mpsc::Receiver<FeedEvent>,
    client: Option<rumqttc::AsyncClient>,
    clock: Clock,
) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init()
        .inspect_err(|_| ratatui::restore())
        .context("the terminal")?;
    let keys = crossterm::event::EventStream::new();
    let result = run::run(&mut terminal, screen, keys, feed, client, move || {
        clock.now()
    })
    .await;
    ratatui::restore();
    Ok(result?)
}

/// The runtime the network and the screen share.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// The log goes to a file (default `evac-dashboard.log`), never to the screen.
pub fn init_log(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let log = path.map_or_else(|| PathBuf::from("evac-dashboard.log"), PathBuf::from);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening the log file {}", log.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}
