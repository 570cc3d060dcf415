//! `evac-stb`: the reference receiver. Reads a transport stream and shows one household its
//! own order, in its language, with its name from the local configuration; with `--route`,
//! prints the walking route from the household's door to its shelter as GeoJSON, from the
//! town's road network (the overlay carries only the shelter: the box knows where it is).
//! The box itself is the library's [`evac_broadcaster::stb`]; this file is its command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use evac_broadcaster::render::Language;
use evac_broadcaster::stb::{StbSettings, parse_location, receive};

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
    #[arg(long, default_value = "2", value_parser = seconds)]
    idle: f64,
    /// Stop after this many seconds in all.
    #[arg(long, value_parser = seconds)]
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

/// A number of seconds a `Duration` can hold: 0 or more, finite (`--idle -1` panicked).
fn seconds(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    match std::time::Duration::try_from_secs_f64(v) {
        Ok(_) => Ok(v),
        Err(_) => Err(format!("{s:?}: seconds must be 0 or more and finite")),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    let settings = StbSettings {
        input: cli.input,
        config: cli.config,
        household: cli.household,
        key: cli.key,
        town_name: cli.town_name,
        state: cli.state,
        broadcaster_key: cli.broadcaster_key,
        program: cli.program,
        now: cli.now,
        idle: cli.idle,
        timeout: cli.timeout,
    };
    let got = receive(&settings, |notice| eprintln!("evac-stb: {notice}"))?;
    if cli.route {
        let doc = got.route(cli.town, cli.location)?;
        writeln!(std::io::stdout().lock(), "{doc}")?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if cli.json {
        got.write_json(&mut out)?;
    } else {
        got.write_screen(cli.lang, &mut out)?;
    }
    Ok(())
}
