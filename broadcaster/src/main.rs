//! `evac-broadcaster`: muxes HQ's signed sections and the broadcaster's own alerts into a
//! transport stream, or into the null packets of one already on air. The live loop is the
//! library's [`evac_broadcaster::live`]; this is its command line.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use evac_broadcaster::carousel::Carousel;
use evac_broadcaster::config::Config;
use evac_broadcaster::insert::Inserter;
use evac_broadcaster::io::{Endpoint, PacketReader, PacketWriter};
use evac_broadcaster::live::{
    Alerts, Health, LiveCore, Loop, Update, laps_duration, run_generated,
};
use evac_broadcaster::mqtt::{BrokerLogin, broker_url, subscribe_air};
use evac_broadcaster::mux::{Generator, MuxConfig, PACKET_BITS};
use evac_broadcaster::psi::ServiceLayout;
use evac_protocol::onair::decode_set;
use evac_protocol::{Alert, AlertLevel, MessageKind, SecretKey, Slug, Topic};

/// Muxes evacuation orders and alerts into MPEG-2 transport streams.
#[derive(Parser)]
#[command(name = "evac-broadcaster", version, about)]
struct Cli {
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
    /// The password from the service's config file (`run --config`), never from the command
    /// line, where other local users could read it.
    #[arg(skip)]
    password: Option<String>,
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
    if let Err(e) = run(Cli::parse()) {
        eprintln!("evac-broadcaster: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Keygen { out } => {
            let public = evac_protocol::write_key_pair(&out)
                .with_context(|| format!("writing key pair {}", out.display()))?;
            println!("{}", evac_protocol::keygen_line(&out, &public));
            Ok(())
        }
        Cmd::Mux(args) => mux(*args),
        Cmd::Run { config } => run_service(&config),
        Cmd::Check { config } => {
            let cfg = Config::load(&config)?;
            for line in check(&cfg)? {
                println!("{line}");
            }
            println!("{}: ok", config.display());
            Ok(())
        }
        Cmd::Alert(args) => alert(*args),
    }
}

/// Now, Unix seconds, on the process's clock (the wall clock unless `mux --clock` set a drill's).
fn unix_now() -> i64 {
    evac_protocol::time::now_secs()
}

fn read_secret(path: &Path) -> Result<SecretKey> {
    SecretKey::read(path).with_context(|| format!("reading key {}", path.display()))
}

fn password(a: &MuxArgs) -> Result<Option<String>> {
    if a.password.is_some() {
        return Ok(a.password.clone());
    }
    match (&a.password_file, &a.password_env) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading the password file {}", f.display()))?;
            Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
        }
        (None, Some(var)) => std::env::var(var)
            .map(Some)
            .with_context(|| format!("environment variable {var} is not set")),
        (None, None) => Ok(None),
    }
}

/// Connects to the broker and waits until HQ's orders can come, or says loudly why not.
fn connect(a: &MuxArgs, broker: &str, town: &Slug, kept: usize) -> Result<mpsc::Receiver<Update>> {
    let url = broker_url(broker)?;
    let ca = match &a.ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading --ca {}", p.display()))?),
        None => None,
    };
    if url.tls && ca.is_none() {
        bail!("--broker {url} is TLS: give --ca, the CA certificate that signed the broker's");
    }
    let login = BrokerLogin {
        host: url.host,
        port: url.port,
        user: a.user.clone(),
        password: password(a)?,
        ca,
        client_id: format!("evac-broadcaster-{}", std::process::id()),
    };
    let rx = subscribe_air(login, town.clone());
    let deadline = Instant::now() + Duration::from_secs_f64(a.connect_timeout.max(0.0));
    let mut last = String::from("no answer");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Update::Connected) => return Ok(requeue(rx, Update::Connected)),
            Ok(Update::Refused(e)) => {
                bail!("cannot get orders from {broker}: {e}; check --user and the password")
            }
            Ok(Update::Disconnected(e)) => last = e,
            Ok(u) => return Ok(requeue(rx, u)),
            Err(_) => break,
        }
    }
    if kept == 0 {
        bail!(
            "cannot get orders from {broker} within {} s ({last}) and no carousel was kept on \
             disk: refusing to air an empty carousel",
            a.connect_timeout
        );
    }
    eprintln!(
        "evac-broadcaster: WARNING: cannot reach {broker} ({last}): airing the {kept} sections \
         kept on disk; orders may be stale until HQ is reached"
    );
    tracing::error!(broker, error = %last, kept, "HQ unreachable: airing the carousel kept on disk");
    Ok(rx)
}

/// Puts `first` back in front of the updates still to come.
fn requeue(rx: mpsc::Receiver<Update>, first: Update) -> mpsc::Receiver<Update> {
    let (tx, out) = mpsc::channel();
    let _ = tx.send(first);
    std::thread::spawn(move || {
        for u in rx {
            if tx.send(u).is_err() {
                return;
            }
        }
    });
    out
}

/// Writes the health file and says on stderr when the health changes for the worse.
struct HealthOut {
    file: Option<PathBuf>,
    was_ok: Option<bool>,
}

impl HealthOut {
    fn report(&mut self, h: &Health) {
        if let Some(f) = &self.file
            && let Ok(json) = serde_json::to_vec(h)
            && let Err(e) = evac_protocol::statefile::write(f, &json)
        {
            tracing::warn!(error = %e, "cannot write the health file");
        }
        let ok = h.ok();
        if self.was_ok != Some(ok) {
            if ok {
                tracing::info!(source = ?h.source, tables = h.tables, "orders from HQ on air");
            } else if h.broker {
                eprintln!(
                    "evac-broadcaster: WARNING: not connected to HQ's broker ({}): airing {} \
                     tables as last received",
                    h.last_error.as_deref().unwrap_or("no answer"),
                    h.tables
                );
            }
            self.was_ok = Some(ok);
        }
    }
}

fn mux(a: MuxArgs) -> Result<()> {
    let now = a.start.unwrap_or_else(unix_now);
    let town = Slug::new(&a.town).context("--town")?;
    if a.broker.is_none() && a.sections.is_empty() {
        bail!("nothing to air: give --sections FILE (evac-hq plan --sections) or --broker");
    }
    let mut carousel = Carousel::new();
    let mut core = LiveCore::new(a.carousel.clone(), a.broker.is_some());
    let kept = core
        .restore(&mut carousel, now)
        .context("restoring the kept carousel")?;
    if kept > 0 {
        tracing::info!(sections = kept, "carousel restored from disk");
    }
    for path in &a.sections {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let set =
            decode_set(&bytes).with_context(|| format!("{}: not a section set", path.display()))?;
        let done = core.add_file(&mut carousel, &set, now)?;
        tracing::info!(file = %path.display(), tables = done.changed, dropped = done.dropped, "sections loaded");
        if done.dropped > 0 {
            eprintln!(
                "evac-broadcaster: {}: {} sections expired or malformed, not aired",
                path.display(),
                done.dropped
            );
        }
    }
    if a.broker.is_none() && carousel.tables() == 0 {
        bail!(
            "nothing to air: every section given has expired (its alert's expiry is in the \
             signed body) or is malformed"
        );
    }
    let alerts = match (&a.alerts, &a.broadcaster_key) {
        (Some(dir), Some(k)) => Some(Alerts {
            dir: dir.clone(),
            key: read_secret(k)?,
        }),
        (Some(_), None) => bail!("--alerts needs --broadcaster-key"),
        _ => None,
    };
    let updates = match &a.broker {
        Some(broker) => Some(connect(&a, broker, &town, carousel.tables())?),
        None => None,
    };
    let layout = ServiceLayout {
        program: a.program,
        pmt_pid: a.pmt_pid,
        overlay_pid: a.pid,
        pcr_pid: Some(a.pcr_pid),
    };
    let cfg = MuxConfig {
        layout,
        bitrate: a.bitrate.unwrap_or(a.overlay_bitrate + 200_000),
        overlay_bitrate: a.overlay_bitrate,
        transport_stream_id: 1,
        start_unix: now,
    };
    let out_ep = Endpoint::parse(&a.out).with_context(|| format!("--out {}", a.out))?;
    let mut out = PacketWriter::open(&out_ep).with_context(|| format!("opening {}", a.out))?;
    let live = a.live || out.is_udp();
    let mut health = HealthOut {
        file: a.health.clone(),
        was_ok: None,
    };

    match &a.input {
        None => {
            let duration = match (a.duration, &updates) {
                (Some(d), _) => Some(d),
                (None, Some(_)) => None,
                (None, None) => Some(laps_duration(&carousel, cfg.overlay_bitrate, 2.0)),
            };
            let mut g = Generator::new(cfg.clone(), carousel).context("setting up the muxer")?;
            if live {
                out.pace(cfg.bitrate);
            }
            let end = duration.map(|d| (d * cfg.bitrate as f64 / PACKET_BITS as f64) as u64);
            let wall: &dyn Fn() -> i64 = &unix_now;
            run_generated(
                &mut g,
                &mut core,
                Loop {
                    updates: updates.as_ref(),
                    alerts: alerts.as_ref(),
                    wall: live.then_some(wall),
                    report: &mut |h| health.report(h),
                },
                end,
                &mut |p| {
                    out.write(p).map_err(|e| {
                        evac_broadcaster::Error::Orders(format!("writing the stream: {e}"))
                    })
                },
            )?;
            out.flush().context("writing the stream")?;
            let s = g.ours().stats();
            tracing::info!(
                packets = g.packets(),
                overlay = s.overlay,
                sections = s.sections,
                pat = s.pat,
                pmt = s.pmt,
                pcr = s.pcr,
                tdt = s.tdt,
                "stream written"
            );
        }
        Some(input) => {
            let in_ep = Endpoint::parse(input).with_context(|| format!("--input {input}"))?;
            let mut reader = PacketReader::open(&in_ep, Some(Duration::from_secs(2)))
                .with_context(|| format!("opening {input}"))?;
            let mut ins = Inserter::new(cfg.clone(), carousel, a.bitrate)
                .context("setting up the inserter")?;
            if let Some(al) = &alerts {
                al.refresh(ins.ours(), now)?;
            }
            if live && !matches!(in_ep, Endpoint::Udp(_)) {
                // A file played out live: pace it (the bitrate is known once measured).
                out.pace(a.bitrate.unwrap_or(cfg.bitrate));
            }
            let mut buf = Vec::new();
            let mut n = 0u64;
            while let Some(p) = reader
                .next_packet()
                .with_context(|| format!("reading {input}"))?
            {
                n += 1;
                if n.is_multiple_of(10_000) {
                    if let Some(rx) = &updates {
                        while let Ok(u) = rx.try_recv() {
                            core.apply(ins.ours().source_mut(), u, unix_now())?;
                        }
                        health.report(core.health());
                    }
                    // A live input (not a file) runs on the wall clock: pick up new alerts.
                    if let (Some(al), false) =
                        (&alerts, matches!(in_ep, Endpoint::File(_)) && !live)
                    {
                        al.refresh(ins.ours(), unix_now())?;
                    }
                }
                ins.push(&p, &mut buf).context("inserting")?;
                for q in buf.drain(..) {
                    out.write(&q).context("writing the stream")?;
                }
            }
            ins.finish(&mut buf).context("inserting")?;
            for q in buf.drain(..) {
                out.write(&q).context("writing the stream")?;
            }
            out.flush().context("writing the stream")?;
            let s = ins.ours().stats();
            if let Some(r) = ins.report() {
                tracing::info!(
                    input_packets = n,
                    output_packets = out.written(),
                    bitrate = r.bitrate,
                    measured = r.measured,
                    null_share = r.nulls as f64 / r.window.max(1) as f64,
                    overlay = s.overlay,
                    pmt = s.pmt,
                    pat = s.pat,
                    "insertion done"
                );
            }
        }
    }
    Ok(())
}

fn alert(a: AlertArgs) -> Result<()> {
    let key = read_secret(&a.key)?;
    let now = unix_now();
    let expires = match a.expires.strip_prefix('+') {
        Some(secs) => now + secs.parse::<i64>().context("--expires +SECONDS")?,
        None => {
            time::OffsetDateTime::parse(&a.expires, &time::format_description::well_known::Rfc3339)
                .context("--expires: RFC 3339 or +SECONDS")?
                .unix_timestamp()
        }
    };
    let level = a
        .level
        .map(AlertLevel::try_from)
        .transpose()
        .context("--level")?;
    let areas = a
        .areas
        .iter()
        .map(|n| {
            u16::try_from(*n)
                .ok()
                .filter(|c| *c <= 0x0FFF)
                .with_context(|| format!("area code {n} exceeds 12 bits"))
        })
        .collect::<Result<Vec<_>>>()?;
    let id = a.id.unwrap_or(now as u32);
    let (kind, references) = match a.cancel {
        Some(target) => (MessageKind::Cancel, Some(target)),
        None => (MessageKind::Alert, None),
    };
    let (text_ja, text_en) = match (a.lang.as_str(), a.text) {
        (_, None) => (String::new(), None),
        ("ja", Some(t)) => (t, a.text_en),
        ("en", Some(t)) => (
            a.text_ja
                .context("an English --text needs --text-ja as well")?,
            Some(t),
        ),
        (other, _) => bail!("--lang {other:?}: ja or en"),
    };
    let alert = Alert {
        id,
        source: a.source.clone(),
        kind,
        references,
        level,
        areas,
        text_ja,
        text_en,
        issued: now,
        expires,
        drill: a.drill,
    };
    let signed = key.sign(&a.source, &alert).context("signing the alert")?;
    let json = signed.to_json().context("encoding the alert")?;
    std::fs::create_dir_all(&a.spool).with_context(|| format!("creating {}", a.spool.display()))?;
    let name = match kind {
        MessageKind::Cancel => format!("cancel-{}.json", references.unwrap_or(id)),
        _ => format!("alert-{id}.json"),
    };
    let path = a.spool.join(&name);
    evac_protocol::statefile::write(&path, json.as_bytes()).context("writing the alert")?;
    if let Some(broker) = &a.broker {
        publish_alert(broker, &a.town, &json)?;
    }
    println!("{}", path.display());
    Ok(())
}

fn publish_alert(broker: &str, town: &str, json: &str) -> Result<()> {
    use rumqttc::{Client, Event, Outgoing, Packet, QoS};
    let url = broker_url(broker)?;
    let login = evac_net::Login::new(format!("evac-alert-{}", std::process::id()));
    let opts = evac_net::mqtt_options(&url, &login).context("--broker")?;
    let (client, mut connection) = Client::new(opts, 8);
    let topic = Topic::Alerts(Slug::new(town).context("--town")?).to_string();
    client
        .publish(topic, QoS::AtLeastOnce, false, json.as_bytes().to_vec())
        .context("publishing the alert")?;
    for event in connection.iter() {
        match event.context("publishing the alert")? {
            Event::Incoming(Packet::PubAck(_)) => {
                let _ = client.disconnect();
            }
            Event::Outgoing(Outgoing::Disconnect) => break,
            _ => {}
        }
    }
    Ok(())
}

/// `run --config`: the service. Holds the data directory, then muxes as `mux --broker` would.
fn run_service(path: &Path) -> Result<()> {
    let cfg = Config::load(path)?;
    let _lock = evac_protocol::DataDirLock::acquire(&cfg.data_dir, "data_dir")?;
    let alerts = cfg.alerts_dir();
    std::fs::create_dir_all(&alerts).with_context(|| {
        format!(
            "alerts_dir = {}: cannot create the directory",
            alerts.display()
        )
    })?;
    check_keys(&cfg)?;
    let url = cfg.broker.url().map_err(anyhow::Error::msg)?;
    let args = MuxArgs {
        sections: Vec::new(),
        out: cfg.stream.out.clone(),
        input: cfg.stream.input.clone(),
        bitrate: cfg.stream.bitrate,
        overlay_bitrate: cfg.stream.overlay_bitrate,
        pid: 0x0FE1,
        pmt_pid: 0x0FE0,
        pcr_pid: 0x0FE2,
        program: 0x0EAC,
        duration: None,
        start: None,
        town: cfg.town.to_string(),
        alerts: cfg.broadcaster_key.as_ref().map(|_| alerts.clone()),
        broadcaster_key: cfg.broadcaster_key.clone(),
        broker: Some(url.to_string()),
        user: cfg.broker.username.clone(),
        password_file: None,
        password_env: None,
        password: cfg.broker.password.clone(),
        ca: cfg.broker.ca.clone(),
        carousel: Some(cfg.carousel()),
        connect_timeout: 10.0,
        health: Some(cfg.health()),
        live: cfg.stream.live,
        clock: evac_protocol::time::TimeSource::Wall,
    };
    evac_protocol::notify_ready();
    mux(args)
}

/// The keys a config names, each read; errors name the field and the fix.
fn check_keys(cfg: &Config) -> Result<Vec<String>> {
    let missing = |field: &str, path: &Path, fix: &str| {
        if path.exists() {
            format!("{field} = {}", path.display())
        } else {
            format!("{field} = {}: no such file; {fix}", path.display())
        }
    };
    let mut out = Vec::new();
    if let Some(p) = &cfg.broadcaster_key {
        let k = SecretKey::read(p).with_context(|| {
            let prefix = p.with_extension("");
            missing(
                "broadcaster_key",
                p,
                &format!(
                    "make one with `evac-broadcaster keygen --out {}`",
                    prefix.display()
                ),
            )
        })?;
        out.push(format!(
            "broadcaster_key: fingerprint {}",
            k.public().fingerprint()
        ));
    }
    Ok(out)
}

/// `check --config`: keys, data directory, output and broker login, changing nothing.
fn check(cfg: &Config) -> Result<Vec<String>> {
    let mut out = check_keys(cfg)?;
    let mut at = cfg.data_dir.clone();
    while !at.exists() {
        at = at
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
    }
    let probe = at.join(format!(".evac-check-{}", std::process::id()));
    std::fs::File::create_new(&probe).with_context(|| {
        format!(
            "data_dir = {}: {} is not writable",
            cfg.data_dir.display(),
            at.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    out.push(format!("data_dir: {} writable", at.display()));
    Endpoint::parse(&cfg.stream.out).with_context(|| format!("stream.out = {}", cfg.stream.out))?;
    if let Some(i) = &cfg.stream.input {
        Endpoint::parse(i).with_context(|| format!("stream.input = {i}"))?;
    }
    out.push(format!("stream.out: {}", cfg.stream.out));
    let url = cfg.broker.url().map_err(anyhow::Error::msg)?;
    let ca = match &cfg.broker.ca {
        Some(p) => Some(std::fs::read(p).with_context(|| {
            format!(
                "broker.ca = {}: cannot read the CA certificate",
                p.display()
            )
        })?),
        None => None,
    };
    if ca.is_some() {
        out.push("broker.ca: read (TLS)".to_owned());
    }
    broker_login(
        &url,
        cfg.broker.username.as_deref(),
        cfg.broker.password.as_deref(),
        ca,
    )
    .map_err(|e| anyhow::anyhow!("broker.url = {}: {e}", cfg.broker.url))?;
    out.push(format!(
        "broker: {} accepted user {}",
        cfg.broker.url,
        cfg.broker.username.as_deref().unwrap_or("(none)")
    ));
    Ok(out)
}

/// Logs in to the broker and out again, with a client id of its own.
fn broker_login(
    url: &evac_net::BrokerUrl,
    user: Option<&str>,
    password: Option<&str>,
    ca: Option<Vec<u8>>,
) -> std::result::Result<(), String> {
    use rumqttc::{Client, ConnectionError, Event, Packet};
    let mut login = evac_net::Login::new(format!("evac-check-{}", std::process::id()))
        .keep_alive(Duration::from_secs(5))
        .ca(ca);
    if let Some(u) = user {
        login = login.user(u, password.unwrap_or_default());
    }
    let o = evac_net::mqtt_options(url, &login).map_err(|e| e.to_string())?;
    let (client, mut connection) = Client::new(o, 4);
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                let _ = client.disconnect();
                return Ok(());
            }
            Ok(Ok(_)) => {}
            Ok(Err(
                e @ (ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted)
                | ConnectionError::ConnectionRefused(_)),
            )) => {
                return Err(format!(
                    "the broker refused the login or closed the connection before accepting it: a wrong broker.password, or a user the broker does not know ({e})"
                ));
            }
            Ok(Err(e)) => return Err(format!("cannot log in: {e}")),
            Err(_) => return Err("no answer from the broker within 5 s".into()),
        }
    }
}
