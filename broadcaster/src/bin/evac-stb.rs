//! `evac-stb`: the reference receiver. Reads a transport stream and shows one household its
//! own order, in its language, with its name from the local configuration; with `--route`,
//! prints the walking route from the household's door to its shelter as GeoJSON, from the
//! town's road network (the overlay carries only the shelter: the box knows where it is).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use evac_broadcaster::io::{Endpoint, PacketReader};
use evac_broadcaster::receiver::{Receiver, ReceiverConfig, rfc3339};
use evac_broadcaster::render::{Language, render};
use evac_maps::{LonLat, Town};
use evac_protocol::{Hazard, HouseholdId, PublicKey, ShelterId};
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
    /// Print the walking route to the ordered shelter as GeoJSON (needs the town and the
    /// household's location).
    #[arg(long)]
    route: bool,
    /// The town file with its roads (overrides the configuration's `town`).
    #[arg(long)]
    town: Option<PathBuf>,
    /// The household's location, LON,LAT (overrides the configuration's `location`).
    #[arg(long, value_parser = parse_location, allow_hyphen_values = true)]
    location: Option<[f64; 2]>,
}

fn parse_location(s: &str) -> Result<[f64; 2], String> {
    let (lon, lat) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: expected LON,LAT"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<f64>()
            .map_err(|_| format!("{v:?} is not a number"))
    };
    let p = [num(lon)?, num(lat)?];
    if LonLat::new(p[0], p[1]).is_valid() {
        Ok(p)
    } else {
        Err(format!("{s:?} is not a WGS 84 longitude,latitude"))
    }
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
    /// The town file with its roads, for `--route`.
    town: Option<PathBuf>,
    /// The household's location, [longitude, latitude], for `--route`.
    location: Option<[f64; 2]>,
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
    if cli.route {
        let order = rx
            .order_now()
            .with_context(|| format!("household {household} has no order in force: no route"))?;
        anyhow::ensure!(
            !order.shelter.is_none(),
            "household {household} is ordered to evacuate with no shelter (no shelter has room): no route"
        );
        let town_path = cli
            .town
            .clone()
            .or(config.as_ref().and_then(|c| c.town.clone()))
            .context("--route needs the town: give --town or town in the --config")?;
        let at = cli
            .location
            .or(config.as_ref().and_then(|c| c.location))
            .context("--route needs the household's location: give --location or location in the --config")?;
        let at = LonLat::new(at[0], at[1]);
        anyhow::ensure!(at.is_valid(), "location {at:?} is not a WGS 84 position");
        let town = Town::load(&town_path)?;
        let doc = route(&town, household, at, order.shelter, order.hazard)?;
        println!("{doc}");
        return Ok(());
    }
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

/// The walking route from `at` to `shelter` over `town`'s roads, avoiding `hazard`'s zones
/// where another route exists, as a GeoJSON FeatureCollection: the route (LineString) and the
/// shelter (Point).
fn route(
    town: &Town,
    household: u32,
    at: LonLat,
    shelter: ShelterId,
    hazard: Hazard,
) -> Result<serde_json::Value> {
    let s = town.shelter(shelter.0).with_context(|| {
        format!("the order names shelter {shelter}, which the town file does not have")
    })?;
    anyhow::ensure!(
        !town.roads.is_empty(),
        "the town file has no roads: import them with `evac-maps roads import`"
    );
    let avoid = hazard.name().parse::<evac_maps::Hazard>().ok();
    let net = town.network();
    let r = net.route(at, s.location, avoid).with_context(|| {
        format!("no road connects the household to shelter {shelter}: no walking route")
    })?;
    let line: Vec<[f64; 2]> = r.points.iter().map(|p| [p.lon, p.lat]).collect();
    Ok(serde_json::json!({
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": line},
                "properties": {
                    "kind": "route", "household": household, "shelter": shelter.0,
                    "hazard": hazard.name(), "length_m": (r.length_m * 10.0).round() / 10.0,
                    "in_zone_m": (r.zone_m * 10.0).round() / 10.0,
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [s.location.lon, s.location.lat]},
                "properties": {"kind": "shelter", "id": s.id, "name": s.name},
            },
        ],
    }))
}
