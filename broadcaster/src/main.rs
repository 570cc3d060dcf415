//! `evac-broadcaster`: muxes HQ's orders and the broadcaster's own alerts into a transport
//! stream, or into the null packets of one already on air.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use evac_broadcaster::alerts::AlertBoard;
use evac_broadcaster::carousel::{Carousel, SectionSource};
use evac_broadcaster::config::Config;
use evac_broadcaster::insert::Inserter;
use evac_broadcaster::io::{Endpoint, PacketReader, PacketWriter};
use evac_broadcaster::mux::{CLOCK_HZ, Generator, MuxConfig, Ours, PACKET_BITS};
use evac_broadcaster::orders::{Plan, open_order_batch};
use evac_broadcaster::psi::ServiceLayout;
use evac_protocol::{Alert, AlertLevel, MessageKind, PublicKey, SecretKey, Slug, Topic};

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
    /// Muxes orders (a plan file and/or MQTT) into a stream of its own or into --input.
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
    /// Orders as `evac-hq plan --json` prints them.
    #[arg(long)]
    orders: Option<PathBuf>,
    /// The key overlay sections are signed with (HQ's overlay key, PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
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
    /// Town name in the orders (and MQTT topics).
    #[arg(long, default_value = "town")]
    town: String,
    /// Message id of the plan's orders (default: the issue time).
    #[arg(long)]
    message_id: Option<u32>,
    /// Issue time of the plan's orders, Unix seconds (default: now).
    #[arg(long)]
    issued: Option<i64>,
    /// Seconds the plan's orders stay valid, when the plan carries no expiry of its own.
    #[arg(long, default_value = "21600")]
    valid_for: i64,
    /// Label the plan's orders as a drill.
    #[arg(long)]
    drill: bool,
    /// Directory of the broadcaster's signed alerts (written by `evac-broadcaster alert`).
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// The broadcaster's key (signs tickers; its public half checks the alert spool).
    #[arg(long)]
    broadcaster_key: Option<PathBuf>,
    /// MQTT broker HOST:PORT to take orders from `evac/v1/{town}/orders`.
    #[arg(long)]
    broker: Option<String>,
    /// HQ's public key, checking orders from MQTT.
    #[arg(long)]
    hq_key: Option<PathBuf>,
    /// MQTT user for --broker (broadcaster-NAME).
    #[arg(long)]
    broker_user: Option<String>,
    /// Its password (visible to other local users in the process list: prefer `run --config`).
    #[arg(long)]
    broker_password: Option<String>,
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
    /// Also publish it on MQTT (HOST:PORT) to `evac/v1/{town}/alerts`.
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

fn read_public(path: &Path) -> Result<PublicKey> {
    PublicKey::read(path).with_context(|| format!("reading public key {}", path.display()))
}

/// Alerts from the spool: the board, and the key that signs their tickers.
struct Alerts {
    dir: PathBuf,
    key: SecretKey,
}

impl Alerts {
    fn refresh<S: SectionSource>(
        &self,
        ours: &mut Ours<S>,
        carousel: impl Fn(&mut S) -> &mut Carousel,
        now: i64,
    ) -> Result<()> {
        let mut board = AlertBoard::default();
        board.load_spool(&self.dir, &self.key.public(), now)?;
        let program = ours.config().layout.program;
        ours.set_emergency(board.emergency(program, now))?;
        let tickers = board.tickers(&self.key, now)?;
        carousel(ours.source_mut()).replace_extras(tickers);
        Ok(())
    }
}

fn mux(a: MuxArgs) -> Result<()> {
    let _ = evac_protocol::time::install(a.clock);
    let key = read_secret(&a.key)?;
    let now = a.issued.unwrap_or_else(unix_now);
    let town = Slug::new(&a.town).context("--town")?;
    let mut carousel = Carousel::new(key);
    if let Some(path) = &a.orders {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading orders {}", path.display()))?;
        let plan = Plan::from_json(&text).with_context(|| path.display().to_string())?;
        let message_id = a.message_id.unwrap_or(now as u32);
        // The alert's own expiry, when the plan carries one (`evac-hq plan` writes it), else
        // --valid-for from now.
        let expires = plan.expires.unwrap_or(now + a.valid_for);
        if expires <= now {
            bail!(
                "{}: the plan's alert expired at {expires} (Unix seconds): nothing to air",
                path.display()
            );
        }
        for batch in plan.batches(&town, message_id, now, expires, a.drill)? {
            let done = carousel.apply(&batch, now);
            tracing::info!(hazard = %batch.hazard, changed = done.changed, expired = done.expired, "orders loaded");
        }
        if !plan.unassigned.is_empty() {
            tracing::warn!(
                count = plan.unassigned.len(),
                "households without a shelter with room in the plan: aired with shelter 0 (evacuate now, no shelter yet)"
            );
        }
    }
    let alerts = match (&a.alerts, &a.broadcaster_key) {
        (Some(dir), Some(k)) => Some(Alerts {
            dir: dir.clone(),
            key: read_secret(k)?,
        }),
        (Some(_), None) => bail!("--alerts needs --broadcaster-key"),
        _ => None,
    };
    let orders_rx = match &a.broker {
        Some(broker) => {
            let hq = read_public(a.hq_key.as_deref().context("--broker needs --hq-key")?)?;
            let login = a
                .broker_user
                .clone()
                .map(|u| (u, a.broker_password.clone().unwrap_or_default()));
            Some(subscribe_orders(broker, &town, hq, login)?)
        }
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

    match &a.input {
        None => {
            let mut g = Generator::new(cfg.clone(), carousel).context("setting up the muxer")?;
            if let Some(al) = &alerts {
                al.refresh(g.ours(), |c| c, now)?;
            }
            let duration = match (a.duration, &orders_rx) {
                (Some(d), _) => Some(d),
                (None, Some(_)) => None,
                (None, None) => {
                    let bytes: usize = g
                        .ours()
                        .source_mut()
                        .sections()
                        .iter()
                        .map(|s| s.len())
                        .sum();
                    Some(2.0 * bytes as f64 * 8.0 / cfg.overlay_bitrate as f64 + 1.0)
                }
            };
            if live {
                out.pace(cfg.bitrate);
            }
            let end = duration.map(|d| (d * cfg.bitrate as f64 / PACKET_BITS as f64) as u64);
            let per_second = cfg.bitrate / PACKET_BITS;
            while end.is_none_or(|e| g.packets() < e) {
                if g.packets().is_multiple_of(per_second) && g.packets() > 0 {
                    let t = now + (g.time() / CLOCK_HZ) as i64;
                    let t = if live { unix_now() } else { t };
                    if let Some(rx) = &orders_rx {
                        take_orders(rx, g.ours().source_mut(), t);
                    }
                    if let (Some(al), true) = (&alerts, live) {
                        al.refresh(g.ours(), |c| c, t)?;
                    }
                }
                out.write(&g.next_packet()).context("writing the stream")?;
            }
            out.flush().context("writing the stream")?;
            let s = g.ours().stats();
            tracing::info!(
                packets = g.packets(),
                overlay = s.overlay,
                sections = s.sections,
                pat = s.pat,
                pmt = s.pmt,
                pcr = s.pcr,
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
                al.refresh(ins.ours(), |c| c, now)?;
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
                    if let Some(rx) = &orders_rx {
                        take_orders(rx, ins.ours().source_mut(), unix_now());
                    }
                    // A live input (not a file) runs on the wall clock: pick up new alerts.
                    if let (Some(al), false) =
                        (&alerts, matches!(in_ep, Endpoint::File(_)) && !live)
                    {
                        al.refresh(ins.ours(), |c| c, unix_now())?;
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

fn take_orders(rx: &mpsc::Receiver<evac_protocol::OrderBatch>, c: &mut Carousel, now: i64) {
    while let Ok(batch) = rx.try_recv() {
        let done = c.apply(&batch, now);
        tracing::info!(
            message = batch.message_id,
            changed = done.changed,
            unchanged = done.unchanged,
            older = done.older,
            expired = done.expired,
            "orders from HQ"
        );
    }
}

fn split_host_port(s: &str) -> Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("broker {s:?}: expected HOST:PORT"))?;
    Ok((
        host.to_owned(),
        port.parse()
            .with_context(|| format!("broker port in {s:?}"))?,
    ))
}

/// Subscribes to HQ's orders; each verified batch comes out of the channel.
fn subscribe_orders(
    broker: &str,
    town: &Slug,
    hq: PublicKey,
    login: Option<(String, String)>,
) -> Result<mpsc::Receiver<evac_protocol::OrderBatch>> {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let (host, port) = split_host_port(broker)?;
    let mut opts = MqttOptions::new(
        format!("evac-broadcaster-{}", std::process::id()),
        host,
        port,
    );
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_max_packet_size(16 << 20, 16 << 20);
    if let Some((user, password)) = login {
        opts.set_credentials(user, password);
    }
    let (client, mut connection) = Client::new(opts, 64);
    let topic = Topic::Orders(town.clone()).to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    // Subscribe on every (re)connect: the broker may have lost our session.
                    if let Err(e) = client.subscribe(topic.clone(), QoS::AtLeastOnce) {
                        tracing::error!(error = %e, "cannot subscribe to orders");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    match open_order_batch(&p.payload, &hq) {
                        Ok(batch) => {
                            if tx.send(batch).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, topic = %p.topic, "order message refused, not aired")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "broker connection");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    });
    Ok(rx)
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
    let tmp = a.spool.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    if let Some(broker) = &a.broker {
        publish_alert(broker, &a.town, &json)?;
    }
    println!("{}", path.display());
    Ok(())
}

fn publish_alert(broker: &str, town: &str, json: &str) -> Result<()> {
    use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};
    let (host, port) = split_host_port(broker)?;
    let opts = MqttOptions::new(format!("evac-alert-{}", std::process::id()), host, port);
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
    let args = MuxArgs {
        orders: None,
        key: cfg.overlay_key.clone(),
        out: cfg.stream.out.clone(),
        input: cfg.stream.input.clone(),
        bitrate: cfg.stream.bitrate,
        overlay_bitrate: cfg.stream.overlay_bitrate,
        pid: 0x0FE1,
        pmt_pid: 0x0FE0,
        pcr_pid: 0x0FE2,
        program: 0x0EAC,
        duration: None,
        town: cfg.town.to_string(),
        message_id: None,
        issued: None,
        valid_for: 21600,
        drill: false,
        alerts: cfg.broadcaster_key.as_ref().map(|_| alerts.clone()),
        broadcaster_key: cfg.broadcaster_key.clone(),
        broker: Some(
            cfg.broker
                .host_port()
                .map(|(h, p)| format!("{h}:{p}"))
                .map_err(anyhow::Error::msg)?,
        ),
        hq_key: Some(cfg.hq_public_key.clone()),
        broker_user: cfg.broker.username.clone(),
        broker_password: cfg.broker.password.clone(),
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
    let k = SecretKey::read(&cfg.overlay_key).with_context(|| {
        missing(
            "overlay_key",
            &cfg.overlay_key,
            "copy the overlay key HQ made there",
        )
    })?;
    out.push(format!(
        "overlay_key: fingerprint {}",
        k.public().fingerprint()
    ));
    let k = PublicKey::read(&cfg.hq_public_key).with_context(|| {
        missing(
            "hq_public_key",
            &cfg.hq_public_key,
            "copy HQ's hq.pub there",
        )
    })?;
    out.push(format!("hq_public_key: fingerprint {}", k.fingerprint()));
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
    let (host, port) = cfg.broker.host_port().map_err(anyhow::Error::msg)?;
    broker_login(
        &host,
        port,
        cfg.broker.username.as_deref(),
        cfg.broker.password.as_deref(),
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
    host: &str,
    port: u16,
    user: Option<&str>,
    password: Option<&str>,
) -> std::result::Result<(), String> {
    use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet};
    let mut o = MqttOptions::new(format!("evac-check-{}", std::process::id()), host, port);
    o.set_keep_alive(Duration::from_secs(5));
    if let Some(u) = user {
        o.set_credentials(u, password.unwrap_or_default());
    }
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
