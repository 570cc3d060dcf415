//! The command line of `evac-broadcaster`: its arguments, turned into the library's settings
//! ([`MuxSettings`], [`AlertDraft`]) and run; errors reported with `anyhow`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use evac_broadcaster::alerts::issue::{AlertDraft, issue};
use evac_broadcaster::bml::BmlSettings;
use evac_broadcaster::config::Config;
use evac_broadcaster::live::connect::{BrokerSettings, Password};
use evac_broadcaster::live::run::{MuxSettings, run};
use evac_broadcaster::mqtt::{broker_url, publish_alert};
use evac_broadcaster::psi::ServiceLayout;
use evac_broadcaster::service;
use evac_protocol::Slug;

/// Muxes evacuation orders and alerts into MPEG-2 transport streams.
#[derive(Parser)]
#[command(name = "evac-broadcaster", version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes a new Ed25519 key pair as PREFIX.key and PREFIX.pub.
    Keygen {
        /// File prefix.
        #[arg(long)]
        out: PathBuf,
    },
    /// Muxes HQ's signed sections (files and/or MQTT) into a stream of its own or into --input.
    Mux(Box<MuxArgs>),
    /// Runs as the head-end's service: orders from HQ's broker into the configured output.
    Run {
        /// The config file (see deploy/broadcaster.example.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Checks a config without running: keys, data directory, broker login, output. Exit 0
    /// with a line per item, or 1 with one line saying what is wrong.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Issues or cancels a broadcaster's own alert (ticker and emergency descriptor).
    Alert(Box<AlertArgs>),
}

fn number(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

fn pid(s: &str) -> Result<u16, String> {
    number(s).and_then(|n| u16::try_from(n).map_err(|e| e.to_string()))
}

#[derive(Args)]
struct MuxArgs {
    /// HQ's signed sections (`evac-hq plan --sections`, `evac-hq announce-key`), repeatable.
    /// The broadcaster holds no HQ key: it airs what HQ signed.
    #[arg(long)]
    sections: Vec<PathBuf>,
    /// Output: a file, `-` for stdout, or udp://HOST:PORT (unicast or multicast).
    #[arg(long)]
    out: String,
    /// Input stream to insert into: a file, `-` for stdin, or udp://HOST:PORT.
    #[arg(long)]
    input: Option<String>,
    /// Multiplex bitrate: of our output, or of the input (measured from its PCRs if not given).
    #[arg(long, value_parser = number)]
    bitrate: Option<u64>,
    /// The overlay PID's bitrate budget.
    #[arg(long, value_parser = number, default_value = "1000000")]
    overlay_bitrate: u64,
    /// Overlay PID.
    #[arg(long, value_parser = pid, default_value = "0x0FE1")]
    pid: u16,
    /// PMT PID of the evac data service.
    #[arg(long, value_parser = pid, default_value = "0x0FE0")]
    pmt_pid: u16,
    /// PCR PID of a generated stream.
    #[arg(long, value_parser = pid, default_value = "0x0FE2")]
    pcr_pid: u16,
    /// Program number (ARIB service_id) of the evac data service.
    #[arg(long, value_parser = pid, default_value = "0x0EAC")]
    program: u16,
    /// Seconds of stream to generate (default: two laps of the carousel, or forever with
    /// --broker); ignored with --input, which runs to the input's end.
    #[arg(long)]
    duration: Option<f64>,
    /// Unix time of the first packet, for the time table and expiry (default: now).
    #[arg(long)]
    start: Option<i64>,
    /// Town name (MQTT topics).
    #[arg(long, default_value = "town")]
    town: String,
    /// Directory of the broadcaster's signed alerts (written by `evac-broadcaster alert`).
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// The broadcaster's own key (signs tickers; its public half checks the alert spool).
    #[arg(long)]
    broadcaster_key: Option<PathBuf>,
    /// HQ's broker (`mqtt://HOST:PORT`, `mqtts://HOST:PORT` with --ca, or `HOST:PORT`) to take
    /// HQ's sections from (`evac/v1/{town}/air/+`).
    #[arg(long)]
    broker: Option<String>,
    /// MQTT user (`broadcaster-NAME`).
    #[arg(long)]
    user: Option<String>,
    /// A file holding the MQTT password (first line).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// An environment variable holding the MQTT password.
    #[arg(long)]
    password_env: Option<String>,
    /// PEM of the CA the broker's TLS certificate is checked against: TLS when given.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The carousel kept on disk: restored on start, rewritten on every change.
    #[arg(long)]
    carousel: Option<PathBuf>,
    /// Seconds to wait for the broker at start before giving up (or airing the kept carousel).
    #[arg(long, default_value = "10")]
    connect_timeout: f64,
    /// A JSON health file, rewritten once a second (connected, source, tables, last error).
    #[arg(long)]
    health: Option<PathBuf>,
    /// Send in real time (the default for UDP output).
    #[arg(long)]
    live: bool,
    /// Also airs the stock-TV (BML data broadcasting) carousel beside the overlay, built
    /// only from sections that verify under --hq-key, for the households of --town-file.
    #[arg(long, requires_all = ["town_file", "hq_key"])]
    bml: bool,
    /// The town file (HQ's GeoJSON): household numbers, shelters, roads (with --bml).
    #[arg(long)]
    town_file: Option<PathBuf>,
    /// HQ's public key, repeatable (with --bml: the head-end checks every section with it).
    #[arg(long)]
    hq_key: Vec<PathBuf>,
    /// The stock-TV carousel's bitrate budget.
    #[arg(long, value_parser = number, default_value = "1000000")]
    bml_bitrate: u64,
    /// The stock-TV carousel's PID.
    #[arg(long, value_parser = pid, default_value = "0x0FE3")]
    data_pid: u16,
    /// Seconds after the head-end last confirmed the tables before TVs say "cannot confirm".
    #[arg(long, default_value = "600")]
    bml_fresh: u32,
    /// The postal-code table, `zipcode,district` CSV (with --bml): TVs with no household
    /// number stored show their district's orders by the TV's postal code.
    #[arg(long, requires = "bml")]
    postal_codes: Option<PathBuf>,
    /// HQ's answer endpoint for TVs, `https://HOST:PORT/answer/tv` (with --bml): the page
    /// gets its answer mode (households answer with the remote over the TV's return channel).
    #[arg(long, requires = "bml")]
    answer_url: Option<String>,
    /// Where "now" comes from (issue times, expiry): `wall`, or a drill's accelerated clock
    /// `drill:START_MS@WALL_MSxSPEED` (as `evac-drill` passes it to every node).
    #[arg(long, default_value = "wall")]
    clock: evac_protocol::time::TimeSource,
}

#[derive(Args)]
struct AlertArgs {
    /// The alert spool directory the running muxer reads.
    #[arg(long)]
    spool: PathBuf,
    /// The broadcaster's key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// Alert id (default: the issue time).
    #[arg(long)]
    id: Option<u32>,
    /// The alert's text.
    #[arg(long, required_unless_present = "cancel")]
    text: Option<String>,
    /// Language of --text: ja or en.
    #[arg(long, default_value = "ja")]
    lang: String,
    /// Japanese text, when --text is English.
    #[arg(long)]
    text_ja: Option<String>,
    /// English text.
    #[arg(long)]
    text_en: Option<String>,
    /// Alert level (3, 4 or 5).
    #[arg(long)]
    level: Option<u8>,
    /// ARIB area code (12 bits), repeatable.
    #[arg(long = "area", value_parser = number)]
    areas: Vec<u64>,
    /// Expiry: RFC 3339, or +SECONDS from now.
    #[arg(long, default_value = "+3600")]
    expires: String,
    /// Cancels the alert with this id.
    #[arg(long)]
    cancel: Option<u32>,
    /// Label it as a drill.
    #[arg(long)]
    drill: bool,
    /// Who issues it (`broadcaster:NAME`).
    #[arg(long, default_value = "broadcaster:local")]
    source: String,
    /// Also publish it on MQTT (`mqtt://HOST:PORT` or `HOST:PORT`) to `evac/v1/{town}/alerts`.
    #[arg(long)]
    broker: Option<String>,
    /// Town for the MQTT topic.
    #[arg(long, default_value = "town")]
    town: String,
}

/// Runs the command `cli` names.
pub fn main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Keygen { out } => {
            let public = evac_protocol::write_key_pair(&out)
                .with_context(|| format!("writing key pair {}", out.display()))?;
            println!("{}", evac_protocol::keygen_line(&out, &public));
            Ok(())
        }
        Cmd::Mux(args) => {
            // Installed once, first thing: every "now" of this process comes from it.
            let _ = evac_protocol::time::install(args.clock);
            Ok(run(args.settings()?)?)
        }
        Cmd::Run { config } => Ok(service::serve(&Config::load(&config)?)?),
        Cmd::Check { config } => {
            let cfg = Config::load(&config)?;
            for line in service::check(&cfg)? {
                println!("{line}");
            }
            println!("{}: ok", config.display());
            Ok(())
        }
        Cmd::Alert(args) => alert(*args),
    }
}

impl MuxArgs {
    /// The library's settings from the flags.
    fn settings(self) -> Result<MuxSettings> {
        let town = Slug::new(&self.town).context("--town")?;
        let password = match (self.password_file, self.password_env) {
            (Some(f), _) => Password::File(f),
            (None, Some(var)) => Password::Env(var),
            (None, None) => Password::None,
        };
        Ok(MuxSettings {
            sections: self.sections,
            out: self.out,
            input: self.input,
            bitrate: self.bitrate,
            overlay_bitrate: self.overlay_bitrate,
            layout: ServiceLayout {
                program: self.program,
                pmt_pid: self.pmt_pid,
                overlay_pid: self.pid,
                pcr_pid: Some(self.pcr_pid),
                data_pid: None,
            },
            duration: self.duration,
            start: self.start,
            town,
            alerts: self.alerts,
            broadcaster_key: self.broadcaster_key,
            broker: self.broker.map(|url| BrokerSettings {
                url,
                user: self.user,
                password,
                ca: self.ca,
                connect_timeout: self.connect_timeout,
            }),
            carousel: self.carousel,
            health: self.health,
            live: self.live,
            bml: match (self.bml, self.town_file) {
                (true, Some(town_file)) => Some(BmlSettings {
                    town_file,
                    hq_keys: self.hq_key,
                    bitrate: self.bml_bitrate,
                    data_pid: self.data_pid,
                    fresh_s: self.bml_fresh,
                    postal_codes: self.postal_codes,
                    answer_url: self.answer_url,
                }),
                _ => None,
            },
        })
    }
}

fn alert(a: AlertArgs) -> Result<()> {
    let draft = AlertDraft {
        id: a.id,
        text: a.text,
        lang: a.lang,
        text_ja: a.text_ja,
        text_en: a.text_en,
        level: a.level,
        areas: a.areas,
        expires: a.expires,
        cancel: a.cancel,
        drill: a.drill,
        source: a.source,
    };
    let done = issue(draft, &a.key, &a.spool, evac_protocol::time::now_secs())?;
    if let Some(broker) = &a.broker {
        let url = broker_url(broker)?;
        let town = Slug::new(&a.town).context("--town")?;
        publish_alert(&url, &town, &done.json)?;
    }
    println!("{}", done.path.display());
    Ok(())
}
