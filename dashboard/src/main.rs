//! Command-line entry point of `evac-dashboard`: the arguments, the configuration, the log
//! and the terminal; everything else is the library's.

mod shell;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use evac_dashboard::addresses::AddressBook;
use evac_dashboard::app::App;
use evac_dashboard::clock::Clock;
use evac_dashboard::command::Officer;
use evac_dashboard::config::Config;
use evac_dashboard::i18n::Lang;
use evac_dashboard::net;
use evac_dashboard::prefecture::{self, Prefecture, PrefectureConfig, PrefectureScreen};
use evac_dashboard::report::{self, Report};
use evac_protocol::{SecretKey, Slug};
use shell::{init_log, on_terminal, runtime};

// mimalloc gives memory freed after loading a large town file and registry back to the
// system; glibc's allocator kept about 300 MB of it resident at 1,000,000 residents.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The disaster officers' terminal dashboard.
#[derive(Parser)]
#[command(name = "evac-dashboard", version, about)]
struct Cli {
    /// The configuration file (see deploy/dashboard.example.toml; for `prefecture`,
    /// deploy/dashboard-prefecture.example.toml).
    #[arg(long)]
    config: PathBuf,
    /// Screen language: ja or en (default: from the locale).
    #[arg(long)]
    lang: Option<String>,
    /// Where "now" comes from, like every node: `wall` (default) or a drill's clock
    /// `drill:START_MS@WALL_MSxSPEED`. Only the clock shown and the date of commands follow
    /// it: HQ's times are judged on HQ's clock (its newest time plus the monotonic time
    /// since it arrived).
    #[arg(long, default_value = "wall", global = true)]
    clock: evac_protocol::time::TimeSource,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Connect, wait for HQ's snapshot and the registry, print the situation report, exit.
    Report {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Give up after this many seconds without a snapshot.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
    /// The prefecture view: one row a town, from the prefecture broker the towns bridge to
    /// (the config is a prefecture one). q quits.
    Prefecture {
        /// Print the rows once as JSON when every town has sent its status (or after
        /// --timeout-s) and exit, instead of the screen.
        #[arg(long)]
        json: bool,
        /// With --json: wait at most this many seconds for every town.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("evac-dashboard: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The first and only install: a second would be refused, the clock never jumps.
    let _ = evac_protocol::time::install(cli.clock);
    let clock = Clock::new(cli.clock);
    let lang = match &cli.lang {
        Some(l) => Lang::parse(l).with_context(|| format!("--lang {l:?}: use ja or en"))?,
        None => Lang::from_env(),
    };
    if let Some(Cmd::Prefecture { json, timeout_s }) = cli.command {
        return prefecture(&cli.config, json, timeout_s, lang, clock);
    }
    let cfg = Config::read(&cli.config)?;
    init_log(cfg.log_file.as_deref())?;
    let mut town = cfg.town_state()?;
    let officer = match (&cfg.officer_key, &cfg.officer) {
        (Some(k), Some(name)) => Some(Officer {
            name: Slug::new(name).context("officer")?,
            key: SecretKey::read(k).context("officer_key")?,
        }),
        _ => None,
    };
    runtime()?.block_on(async move {
        let (client, mut feed) =
            net::start(&cfg, &town.town, officer.as_ref().map(|o| &o.name), clock)?;
        if let Some(Cmd::Report { json, timeout_s }) = cli.command {
            report::gather(&mut town, &mut feed, Some(&client), timeout_s, || {
                clock.now()
            })
            .await?;
            let r = Report::of(&town).with_addresses(cfg.town_file.as_deref());
            if json {
                let text = serde_json::to_string_pretty(&r).context("encoding the report")?;
                println!("{text}");
            } else {
                print!("{}", r.text(&town, lang, cfg.utc_offset_minutes));
            }
            return Ok(());
        }
        let now = clock.now();
        let mut app = App::new(town, lang, officer, now.wall_ms);
        app.mono_ms = now.mono_ms;
        app.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        app.utc_offset_min = cfg.utc_offset_minutes;
        app.addresses = AddressBook::new(cfg.town_file.clone());
        on_terminal(&mut app, feed, Some(client), clock).await
    })
}

/// `evac-dashboard prefecture`: the rows once as JSON, or the screen until q.
fn prefecture(
    config: &Path,
    json: bool,
    timeout_s: u64,
    lang: Lang,
    clock: Clock,
) -> anyhow::Result<()> {
    let cfg = PrefectureConfig::read(config)?;
    init_log(cfg.log_file.as_deref())?;
    let mut pref = Prefecture::new(&cfg)?;
    let login = cfg.login()?;
    runtime()?.block_on(async move {
        let (_client, mut feed) =
            net::start_with(&login, "prefecture", pref.subscriptions(), clock)?;
        if !json {
            let mut screen = PrefectureScreen::new(pref, lang);
            return on_terminal(&mut screen, feed, None, clock).await;
        }
        let timeout = Duration::from_secs(timeout_s);
        let rows =
            prefecture::gather(&mut pref, &mut feed, &cfg.broker, timeout, || clock.now()).await?;
        let text = serde_json::to_string_pretty(&rows).context("encoding the rows")?;
        println!("{text}");
        Ok(())
    })
}
