//! `evac-stb`: the reference receiver. Reads a transport stream and shows one household its
//! own order, in its language, with its name from the local configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use evac_broadcaster::io::{Endpoint, PacketReader};
use evac_broadcaster::receiver::{Receiver, ReceiverConfig, rfc3339};
use evac_broadcaster::render::{Language, render};
use evac_protocol::{HouseholdId, PublicKey};
use serde::Deserialize;

/// The reference set-top box for evac overlays.
#[derive(Parser)]
#[command(name = "evac-stb", version, about)]
struct Cli {
    /// Input: a file, `-` for stdin, or udp://HOST:PORT (port 0: any free port, printed).
    #[arg(long)]
    input: String,
    /// Local configuration (TOML): household, name, language, keys, shelter names.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The household (overrides the configuration).
    #[arg(long)]
    household: Option<u32>,
    /// HQ's public key (overrides the configuration).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The broadcaster's public key, to show its tickers.
    #[arg(long)]
    broadcaster_key: Option<PathBuf>,
    /// Language: ja, en or ja-easy (overrides the configuration).
    #[arg(long)]
    lang: Option<Language>,
    /// Only this program number.
    #[arg(long)]
    program: Option<u16>,
    /// The time to judge expiry by, Unix seconds (default: the clock).
    #[arg(long)]
    now: Option<i64>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// UDP input: stop when no packet has come for this many seconds.
    #[arg(long, default_value = "2")]
    idle: f64,
    /// Stop after this many seconds in all.
    #[arg(long)]
    timeout: Option<f64>,
}

/// The box's local configuration file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    household: u32,
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: Option<Language>,
    hq_key: Option<PathBuf>,
    broadcaster_key: Option<PathBuf>,
    program: Option<u16>,
    #[serde(default)]
    shelters: BTreeMap<String, String>,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("evac-stb: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(toml::from_str::<Config>(&text).with_context(|| format!("{}", path.display()))?)
        }
        None => None,
    };
    let household = cli
        .household
        .or(config.as_ref().map(|c| c.household))
        .context("no household: give --household or a --config")?;
    let key_path = cli
        .key
        .clone()
        .or(config.as_ref().and_then(|c| c.hq_key.clone()))
        .context("no HQ key: give --key or hq_key in the --config")?;
    let hq =
        PublicKey::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let broadcaster = match cli
        .broadcaster_key
        .clone()
        .or(config.as_ref().and_then(|c| c.broadcaster_key.clone()))
    {
        Some(p) => Some(PublicKey::read(&p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let now = || {
        cli.now
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp())
    };
    let mut rx = Receiver::new(
        ReceiverConfig {
            household: HouseholdId(household),
            hq,
            broadcaster,
            program: cli.program.or(config.as_ref().and_then(|c| c.program)),
        },
        now(),
    );
    let ep = Endpoint::parse(&cli.input).with_context(|| format!("--input {}", cli.input))?;
    let mut reader = PacketReader::open(&ep, Some(Duration::from_secs_f64(cli.idle)))
        .with_context(|| format!("opening {}", cli.input))?;
    if let Some(addr) = reader.local_addr() {
        eprintln!("evac-stb: listening on udp://{addr}");
    }
    let started = Instant::now();
    while let Some(p) = reader
        .next_packet()
        .with_context(|| format!("reading {}", cli.input))?
    {
        rx.feed(&p);
        if rx.packets().is_multiple_of(4096) {
            rx.set_now(now());
            if cli
                .timeout
                .is_some_and(|t| started.elapsed().as_secs_f64() >= t)
            {
                break;
            }
        }
    }
    if rx.packets() == 0 {
        anyhow::bail!(
            "{}: no MPEG transport stream packets (no 0x47 sync every 188 bytes)",
            cli.input
        );
    }
    rx.set_now(now());
    let report = rx.report();
    if cli.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("encoding the report")?
        );
        return Ok(());
    }
    let lang = cli
        .lang
        .or(config.as_ref().and_then(|c| c.language))
        .unwrap_or(Language::Japanese);
    let name = config
        .as_ref()
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty());
    let name = name.unwrap_or_else(|| format!("#{household}"));
    match rx.order_now() {
        Some(order) => {
            // Shelter 0 (ShelterId::NONE) is no shelter: never look a name up for it.
            let shelter = config
                .as_ref()
                .filter(|_| !order.shelter.is_none())
                .and_then(|c| c.shelters.get(&order.shelter.0.to_string()))
                .map(String::as_str);
            println!("{}", render(lang, &name, order, shelter));
            println!("  (v{} until {})", order.version, rfc3339(order.expires));
        }
        None => println!(
            "{}",
            match lang {
                Language::English => "No evacuation order for this household.",
                Language::Japanese => "この世帯への避難指示はありません。",
                Language::EasyJapanese => "いまは にげる ひつようは ありません。",
            }
        ),
    }
    for t in rx.tickers_now() {
        let text = match (lang, &t.text_en) {
            (Language::English, Some(en)) => en,
            _ => &t.text_ja,
        };
        println!("[ticker {}] {text}", t.id);
    }
    let e = &report.emergency;
    println!(
        "emergency signal: {}{}",
        if e.active { "ON" } else { "off" },
        if e.areas.is_empty() {
            String::new()
        } else {
            format!(" areas {:?}", e.areas)
        }
    );
    let r = report.rejected;
    println!(
        "rejected: crc {} signature {} stale {} expired {} malformed {}",
        r.crc, r.signature, r.stale, r.expired, r.malformed
    );
    Ok(())
}
