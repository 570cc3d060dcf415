//! `evac-stb`: the reference receiver. Reads a transport stream and shows one household its
//! own order, in its language, with its name from the local configuration; with `--route`,
//! prints the walking route from the household's door to its shelter as GeoJSON, from the
//! town's road network (the overlay carries only the shelter: the box knows where it is).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use evac_broadcaster::io::{Endpoint, PacketReader};
use evac_broadcaster::receiver::{
    DEFAULT_SKEW_S, Receiver, ReceiverConfig, ReceiverState, Status, TimeOrigin, TrustedKey,
    rfc3339,
};
use evac_broadcaster::render::{Language, cannot_verify_time, onset_line, render};
use evac_maps::{LonLat, Town};
use evac_protocol::TownId;
use evac_protocol::{Hazard, HouseholdId, PublicKey, ShelterId};
use serde::Deserialize;

/// The reference set-top box for evac overlays.
#[derive(Parser)]
#[command(name = "evac-stb", version, about)]
struct Cli {
    /// Input: a file, `-` for stdin, or udp://HOST:PORT (port 0: any free port, printed).
    #[arg(long)]
    input: String,
    /// Local configuration (TOML, see deploy/stb.example.toml): household, town, name,
    /// language, trusted keys, shelter names, state file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The household (overrides the configuration).
    #[arg(long)]
    household: Option<u32>,
    /// HQ's public key, trusted for any time (added to the configuration's keys).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The town this box is in, by name (overrides the configuration's `town_name`; default:
    /// the town of the first order verified).
    #[arg(long)]
    town_name: Option<String>,
    /// The state file: the order version held and keys learnt, kept across restarts.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The broadcaster's public key, to show its tickers.
    #[arg(long)]
    broadcaster_key: Option<PathBuf>,
    /// Language: ja, en or ja-easy (overrides the configuration).
    #[arg(long)]
    lang: Option<Language>,
    /// Only this program number.
    #[arg(long)]
    program: Option<u16>,
    /// The box's clock, Unix seconds (default: the system clock); the stream's time table,
    /// when there is one, is used instead.
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

/// A trusted HQ key in the box's configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    /// The public key file (SPKI PEM).
    file: PathBuf,
    /// Orders issued before this (RFC 3339) are not taken under it.
    #[serde(default)]
    not_before: Option<String>,
    /// Orders issued after this (RFC 3339) are not taken under it.
    #[serde(default)]
    not_after: Option<String>,
}

/// The box's local configuration file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    household: u32,
    #[serde(default)]
    town_name: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: Option<Language>,
    #[serde(default)]
    hq_keys: Vec<KeyEntry>,
    /// Older configs name one key.
    #[serde(default)]
    hq_key: Option<PathBuf>,
    broadcaster_key: Option<PathBuf>,
    program: Option<u16>,
    #[serde(default)]
    state: Option<PathBuf>,
    #[serde(default)]
    shelters: BTreeMap<String, String>,
    /// The town file with its roads, for `--route`.
    town: Option<PathBuf>,
    /// The household's location, [longitude, latitude], for `--route`.
    location: Option<[f64; 2]>,
    /// The box's local time offset, "+09:00" (the default, Japan): the hazard's expected time
    /// is shown in it.
    #[serde(default)]
    utc_offset: Option<String>,
}

/// A "+HH:MM" or "-HH:MM" offset from UTC.
fn parse_offset(s: &str) -> Result<time::UtcOffset> {
    let bad = || anyhow::anyhow!("utc_offset: {s:?} is not +HH:MM or -HH:MM");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1i8, &s[1..]),
        Some(b'-') => (-1i8, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    time::UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
}

fn main() {
    match run(Cli::parse()) {
        Ok(()) => {}
        // `evac-stb | head`: the reader went away; nothing more to say.
        Err(e) if is_broken_pipe(&e) => {}
        Err(e) => {
            eprintln!("evac-stb: {e:#}");
            std::process::exit(1);
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn time_of(s: &str, field: &str) -> Result<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .with_context(|| format!("{field}: {s:?} is not an RFC 3339 time"))
}

fn load_config(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut c = toml::from_str::<Config>(&text).with_context(|| format!("{}", path.display()))?;
    // Relative paths are relative to the configuration file.
    let base = path.parent().unwrap_or(Path::new("."));
    let abs = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    for k in &mut c.hq_keys {
        abs(&mut k.file);
    }
    for p in [
        &mut c.hq_key,
        &mut c.broadcaster_key,
        &mut c.state,
        &mut c.town,
    ]
    .into_iter()
    .flatten()
    {
        abs(p);
    }
    Ok(c)
}

fn read_key(p: &Path) -> Result<PublicKey> {
    PublicKey::read(p).with_context(|| format!("reading {}", p.display()))
}

fn run(cli: Cli) -> Result<()> {
    let config = cli.config.as_deref().map(load_config).transpose()?;
    let household = cli
        .household
        .or(config.as_ref().map(|c| c.household))
        .context("no household: give --household or a --config")?;
    let mut trusted = Vec::new();
    if let Some(p) = &cli.key {
        trusted.push(TrustedKey::always(read_key(p)?));
    }
    if let Some(c) = &config {
        for k in &c.hq_keys {
            trusted.push(TrustedKey {
                key: read_key(&k.file)?,
                not_before: k
                    .not_before
                    .as_deref()
                    .map(|s| time_of(s, "not_before"))
                    .transpose()?
                    .unwrap_or(i64::MIN),
                not_after: k
                    .not_after
                    .as_deref()
                    .map(|s| time_of(s, "not_after"))
                    .transpose()?
                    .unwrap_or(i64::MAX),
            });
        }
        if let Some(p) = &c.hq_key {
            trusted.push(TrustedKey::always(read_key(p)?));
        }
    }
    if trusted.is_empty() {
        anyhow::bail!("no HQ key: give --key or hq_keys in the --config");
    }
    let broadcaster = match cli
        .broadcaster_key
        .clone()
        .or(config.as_ref().and_then(|c| c.broadcaster_key.clone()))
    {
        Some(p) => Some(read_key(&p)?),
        None => None,
    };
    let town = match cli
        .town_name
        .clone()
        .or(config.as_ref().and_then(|c| c.town_name.clone()))
    {
        Some(t) => Some(TownId::new(&t).context("town_name")?),
        None => None,
    };
    let state_file = cli
        .state
        .clone()
        .or(config.as_ref().and_then(|c| c.state.clone()));
    let state = match &state_file {
        Some(f) => match std::fs::read(f) {
            // The state only remembers what was seen (versions, keys): one that does not
            // decode is set aside and the box starts afresh rather than show nothing.
            Ok(b) => match serde_json::from_slice::<ReceiverState>(&b) {
                Ok(s) => s,
                Err(e) => {
                    let aside =
                        evac_protocol::statefile::set_aside(f, evac_protocol::time::now_ms())?;
                    eprintln!(
                        "evac-stb: state file {} does not decode ({e}): set aside as {}, \
                         starting afresh",
                        f.display(),
                        aside.display()
                    );
                    ReceiverState::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ReceiverState::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", f.display())),
        },
        None => ReceiverState::default(),
    };
    let now = || {
        cli.now
            .unwrap_or_else(|| (evac_protocol::time::now_ms() / 1000) as i64)
    };
    let mut rx = Receiver::with_state(
        ReceiverConfig {
            household: HouseholdId(household),
            town,
            hq: trusted,
            broadcaster,
            program: cli.program.or(config.as_ref().and_then(|c| c.program)),
            skew_s: DEFAULT_SKEW_S,
        },
        state,
        now(),
    );
    let save = |rx: &mut Receiver| -> Result<()> {
        if let (Some(f), true) = (&state_file, rx.take_state_change()) {
            let json = serde_json::to_vec(&rx.state()).context("encoding the state")?;
            evac_protocol::statefile::write(f, &json).context("writing the state file")?;
        }
        Ok(())
    };
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
            save(&mut rx)?;
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
    save(&mut rx)?;
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
    let mut out = std::io::stdout().lock();
    if cli.json {
        let json = serde_json::to_string(&report).context("encoding the report")?;
        writeln!(out, "{json}").context("writing the report")?;
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
    let offset = match config.as_ref().and_then(|c| c.utc_offset.as_deref()) {
        Some(o) => parse_offset(o)?,
        None => time::UtcOffset::from_hms(9, 0, 0).context("the default offset")?,
    };
    let mut text = String::new();
    match (rx.order_now(), report.status) {
        (Some(order), _) => {
            // Shelter 0 (ShelterId::NONE) is no shelter: never look a name up for it.
            let shelter = config
                .as_ref()
                .filter(|_| !order.shelter.is_none())
                .and_then(|c| c.shelters.get(&order.shelter.0.to_string()))
                .map(String::as_str);
            text.push_str(&render(lang, &name, order, shelter));
            if let (Some(onset), Some(_)) = (order.onset, order.level) {
                text.push_str("\n  ");
                text.push_str(&onset_line(lang, order.hazard, onset, rx.now(), offset));
            }
            text.push_str(&format!(
                "\n  (v{} until {})\n",
                order.version,
                rfc3339(order.expires)
            ));
        }
        (None, Status::CannotVerify) => {
            text.push_str(cannot_verify(lang));
            text.push('\n');
        }
        (None, Status::CannotVerifyTime) => {
            text.push_str(cannot_verify_time(lang));
            text.push('\n');
        }
        (None, _) => {
            text.push_str(match lang {
                Language::English => "No evacuation order for this household.",
                Language::Japanese => "この世帯への避難指示はありません。",
                Language::EasyJapanese => "いまは にげる ひつようは ありません。",
            });
            text.push('\n');
        }
    }
    for t in rx.tickers_now() {
        let line = match (lang, &t.text_en) {
            (Language::English, Some(en)) => en,
            _ => &t.text_ja,
        };
        text.push_str(&format!("[ticker {}] {line}\n", t.id));
    }
    let e = &report.emergency;
    text.push_str(&format!(
        "emergency signal: {}{}\n",
        if e.active { "ON" } else { "off" },
        if e.areas.is_empty() {
            String::new()
        } else {
            format!(" areas {:?}", e.areas)
        }
    ));
    let r = report.rejected;
    text.push_str(&format!(
        "rejected: crc {} signature {} key {} town {} stale {} future {} expired {} malformed {}\n",
        r.crc, r.signature, r.key, r.town, r.stale, r.future, r.expired, r.malformed
    ));
    text.push_str(&format!(
        "time: {} ({})\n",
        report.time,
        match (report.time_source, &report.stream_time) {
            (_, Some(said)) => format!(
                "cannot verify the time: the stream says {said}, beyond what this box can \
                 vouch for; judged by its last believed time"
            ),
            (TimeOrigin::Stream, None) => "from the stream".to_owned(),
            (TimeOrigin::Clock, None) =>
                "from this box's clock: the stream carries no time table".to_owned(),
        }
    ));
    out.write_all(text.as_bytes())
        .context("writing the report")?;
    out.flush().context("writing the report")?;
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

/// "Orders are on air that this box cannot verify": a fault, never "no order".
fn cannot_verify(lang: Language) -> &'static str {
    match lang {
        Language::Japanese => {
            "【受信エラー】避難指示を確認できません。この表示は「避難不要」ではありません。\
             テレビ・ラジオ・防災無線の情報に従ってください。"
        }
        Language::English => {
            "[RECEIVER FAULT] Evacuation orders are on air that this box cannot verify. This \
             does NOT mean you are safe: follow TV, radio and the town's loudspeakers."
        }
        Language::EasyJapanese => {
            "【こしょう】ひなんの しらせが よめません。あんぜん という いみでは ありません。\
             テレビや ラジオを きいて ください。"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/stb.example.toml");
        let c = load_config(&path).unwrap();
        assert_eq!(c.household, 455);
        assert_eq!(c.town_name.as_deref(), Some("minato"));
        assert_eq!(c.hq_keys.len(), 1);
        assert!(c.hq_keys[0].file.ends_with("deploy/keys/hq.pub"));
        assert_eq!(c.shelters.get("3").map(String::as_str), Some("港小学校"));
        assert!(c.state.is_some());
        assert_eq!(
            parse_offset(c.utc_offset.as_deref().unwrap()).unwrap(),
            time::UtcOffset::from_hms(9, 0, 0).unwrap()
        );
        assert!(parse_offset("09:00").is_err() && parse_offset("+9").is_err());
    }

    /// Issue 18 item 13: `town` is relative to the configuration file, as the example says.
    #[test]
    fn the_town_file_is_found_beside_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stb.toml");
        std::fs::write(&path, "household = 1\ntown = \"maps/town.geojson\"\n").unwrap();
        let c = load_config(&path).unwrap();
        assert_eq!(c.town, Some(dir.path().join("maps/town.geojson")));
    }
}
