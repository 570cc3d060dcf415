//! Command-line entry point of `evac-dashboard`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use evac_dashboard::app::App;
use evac_dashboard::clock::Clock;
use evac_dashboard::command::Officer;
use evac_dashboard::config::Config;
use evac_dashboard::i18n::Lang;
use evac_dashboard::net::{self, FeedEvent};
use evac_dashboard::prefecture::{Prefecture, PrefectureConfig};
use evac_dashboard::report::Report;
use evac_dashboard::state::{Link, TownMap, TownState};
use evac_protocol::{PublicKey, SecretKey, Slug};

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
        let cfg = PrefectureConfig::read(&cli.config)?;
        init_log(cfg.log_file.as_deref())?;
        return prefecture(&cfg, json, timeout_s, lang, clock);
    }
    let cfg = Config::read(&cli.config)?;
    init_log(cfg.log_file.as_deref())?;

    let town_id = Slug::new(&cfg.town).context("town")?;
    let hq_key = PublicKey::read(&cfg.hq_key).context("hq_key")?;
    let map = match &cfg.town_file {
        Some(p) => Some(Arc::new(TownMap::new(
            evac_maps::Town::load(p).with_context(|| format!("town_file {}", p.display()))?,
        ))),
        None => None,
    };
    let officer = match (&cfg.officer_key, &cfg.officer) {
        (Some(k), Some(name)) => Some(Officer {
            name: Slug::new(name).context("officer")?,
            key: SecretKey::read(k).context("officer_key")?,
        }),
        _ => None,
    };
    let mut town = TownState::new(town_id.clone(), hq_key, map);
    town.silent_minutes = cfg.silent_minutes;
    let rt = runtime()?;
    rt.block_on(async move {
        let (client, feed) = net::start(&cfg, &town_id, officer.as_ref().map(|o| &o.name), clock)?;
        match cli.command {
            Some(Cmd::Report { json, timeout_s }) => {
                report(
                    town,
                    feed,
                    json,
                    lang,
                    cfg.utc_offset_minutes,
                    timeout_s,
                    clock,
                )
                .await
            }
            None => {
                screen(
                    town,
                    feed,
                    client,
                    officer,
                    lang,
                    cfg.utc_offset_minutes,
                    clock,
                )
                .await
            }
            Some(Cmd::Prefecture { .. }) => unreachable!("handled above"),
        }
    })
}

/// The runtime the network and the screen share.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// The log goes to a file (default `evac-dashboard.log`), never to the screen.
fn init_log(path: Option<&std::path::Path>) -> anyhow::Result<()> {
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

/// `evac-dashboard prefecture`: the rows once as JSON, or the screen until q.
fn prefecture(
    cfg: &PrefectureConfig,
    json: bool,
    timeout_s: u64,
    lang: Lang,
    clock: Clock,
) -> anyhow::Result<()> {
    let mut pref = Prefecture::new(cfg)?;
    let login = cfg.login().map_err(anyhow::Error::msg)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let (_client, mut feed) =
            net::start_with(&login, "prefecture", pref.subscriptions(), clock)?;
        let mut link = Link::Connecting;
        if json {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
            // Every town's retained status first, then what else is already waiting (the
            // bridges' retained states come with the subscription).
            while !pref.complete() {
                match tokio::time::timeout_at(deadline, feed.recv()).await {
                    Ok(Some(FeedEvent::Message(t, p))) => pref.on_message(&t, &p, clock.now()),
                    Ok(Some(FeedEvent::Link(l))) => link = l,
                    Ok(None) => bail!("the network task ended"),
                    Err(_) => break,
                }
            }
            while let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(500), feed.recv()).await
            {
                match ev {
                    FeedEvent::Message(t, p) => pref.on_message(&t, &p, clock.now()),
                    FeedEvent::Link(l) => link = l,
                }
            }
            if !matches!(link, Link::Connected { .. }) {
                bail!("cannot reach the prefecture broker at {}", cfg.broker);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "towns": pref.rows(clock.now()),
                    "refused": pref.refused,
                }))
                .context("encoding the rows")?
            );
            return Ok(());
        }
        let mut term = ratatui::init();
        let (keys_tx, mut keys) = tokio::sync::mpsc::channel(16);
        std::thread::spawn(move || {
            while let Ok(ev) = crossterm::event::read() {
                if keys_tx.blocking_send(ev).is_err() {
                    return;
                }
            }
        });
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let result = loop {
            let rows = pref.rows(clock.now());
            if let Err(e) = term
                .draw(|f| evac_dashboard::prefecture::render(f, &rows, &link, lang, pref.refused))
            {
                break Err(anyhow::anyhow!("drawing: {e}"));
            }
            tokio::select! {
                ev = feed.recv() => match ev {
                    Some(FeedEvent::Message(t, p)) => pref.on_message(&t, &p, clock.now()),
                    Some(FeedEvent::Link(l)) => link = l,
                    None => break Err(anyhow::anyhow!("the network task ended")),
                },
                k = keys.recv() => {
                    if let Some(crossterm::event::Event::Key(k)) = k
                        && k.code == crossterm::event::KeyCode::Char('q')
                    {
                        break Ok(());
                    }
                }
                _ = tick.tick() => {}
            }
        };
        ratatui::restore();
        result
    })
}

async fn report(
    mut town: TownState,
    mut feed: tokio::sync::mpsc::Receiver<FeedEvent>,
    json: bool,
    lang: Lang,
    offset: i32,
    timeout_s: u64,
    clock: Clock,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    loop {
        while !(town.has_data() && town.registry.is_some() && !town.waiting_snapshot) {
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Ok(Some(FeedEvent::Message(t, p))) => {
                    let _ = town.on_message(&t, &p, clock.now().mono_ms);
                }
                Ok(Some(FeedEvent::Link(l))) => town.link = l,
                Ok(None) => bail!("the network task ended"),
                Err(_) => bail!(
                    "no current status snapshot and registry from HQ within {timeout_s} s ({} messages refused)",
                    town.rejected.total
                ),
            }
        }
        // Whatever else is already waiting (orders sent at connection, deltas) is taken in
        // too; a delta that shows the retained snapshot was behind means waiting for the next.
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), feed.recv()).await
        {
            if let FeedEvent::Message(t, p) = ev {
                let _ = town.on_message(&t, &p, clock.now().mono_ms);
            }
        }
        if !town.waiting_snapshot {
            break;
        }
    }
    town.refresh(clock.now().mono_ms, true);
    let r = Report::of(&town);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).context("encoding the report")?
        );
    } else {
        print!("{}", r.text(&town, lang, offset));
    }
    Ok(())
}

async fn screen(
    town: TownState,
    feed: tokio::sync::mpsc::Receiver<FeedEvent>,
    client: rumqttc::AsyncClient,
    officer: Option<Officer>,
    lang: Lang,
    offset: i32,
    clock: Clock,
) -> anyhow::Result<()> {
    use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
    let now = clock.now();
    let mut app = App::new(town, lang, officer, now.wall_ms);
    app.mono_ms = now.mono_ms;
    app.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    app.utc_offset_min = offset;
    crossterm::terminal::enable_raw_mode().context("the terminal")?;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen).context("the terminal")?;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::terminal::disable_raw_mode();
        let _ = crossterm::execute!(std::io::stdout(), LeaveAlternateScreen);
        default_hook(info);
    }));
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let result = async {
        let mut terminal = ratatui::Terminal::new(backend).context("the terminal")?;
        let keys = crossterm::event::EventStream::new();
        evac_dashboard::run::run(
            &mut terminal,
            &mut app,
            keys,
            feed,
            Some(client),
            move || clock.now(),
        )
        .await
    }
    .await;
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(std::io::stdout(), LeaveAlternateScreen);
    result
}
