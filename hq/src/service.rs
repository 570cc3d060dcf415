//! The HQ service: the MQTT loop around [`Hq`].
//!
//! HQ is an ordinary MQTT client of its broker (embedded or external). It keeps a persistent
//! session (clean session off) and acknowledges an incoming event batch to the broker only after
//! the events are committed, so a batch that arrives while HQ restarts is delivered again. On
//! every connection it publishes again what it owns and a broker restart loses: acks, the
//! registry, the status snapshot and the orders in force.
//!
//! Nothing in the loop waits on the network: what HQ publishes (and its acks to the broker)
//! goes through [`Outbox`], handed to the MQTT client with `try_*` calls while connected,
//! so a broker outage never stops CAP intake, the checker or the ticks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use evac_net::BrokerUrl;
use evac_protocol::{DataDirLock, Topic, topics::filter};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions};
use tokio::sync::mpsc;

use crate::broker;
use crate::cap;
use crate::check;
use crate::config::{BrokerConfig, Config};
use crate::core::{Hq, Publication};
use crate::error::{AirError, BrokerError, HqError};
use crate::ingest::Checker;
use crate::outbox::Outbox;
use crate::reload::ReloadedPath;
use crate::store::Store;

/// Now, Unix milliseconds, on the process's clock (the wall clock, or the drill clock that
/// `evac-hq run --clock` installed; see `evac_protocol::time`).
pub fn now_ms() -> u64 {
    evac_protocol::time::now_ms()
}

/// Where HQ's MQTT client connects, and how.
struct Connection {
    broker: Option<broker::RunningBroker>,
    /// TLS exactly when `ca` is set (the config has host and port, no URL).
    url: BrokerUrl,
    user: String,
    password: String,
    ca: Option<PathBuf>,
}

/// Starts the embedded broker alone (`evac-hq broker`), with an extra loopback listener if
/// asked; returns when the broker stops.
pub fn run_broker_only(cfg: &Config) -> Result<(), HqError> {
    let BrokerConfig::Embedded(b) = &cfg.broker else {
        return Err(BrokerError::NotEmbedded.into());
    };
    let passwords = check::passwords(&b.passwords)?;
    let mut watch = ReloadedPath::new(&b.passwords);
    // HQ connects through the gate with the `hq` login of the password file.
    let running = broker::start(b, passwords, cfg, &broker::run_token()?)?;
    println!("evac-hq: broker listening on {}", running.public);
    evac_protocol::notify_ready();
    // Taking in password changes while the broker runs, like `run` does.
    while !running.is_finished() {
        std::thread::sleep(Duration::from_secs(2));
        if watch.changed() {
            match check::passwords(&b.passwords) {
                Ok(p) => {
                    tracing::info!(
                        users = p.user_count(),
                        "password file changed: passwords reloaded"
                    );
                    running.set_passwords(p);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "password file changed but does not load; old passwords kept")
                }
            }
        }
    }
    Err(BrokerError::Stopped.into())
}

fn connection(cfg: &Config) -> Result<Connection, HqError> {
    match &cfg.broker {
        BrokerConfig::Embedded(b) => {
            let passwords = check::passwords(&b.passwords)?;
            // HQ's own login to rumqttd's loopback listener exists only in memory for this run.
            let password = broker::run_token()?;
            let running = broker::start(b, passwords, cfg, &password)?;
            println!("evac-hq: broker listening on {}", running.public);
            let url = BrokerUrl {
                host: running.internal.ip().to_string(),
                port: running.internal.port(),
                tls: false,
            };
            Ok(Connection {
                broker: Some(running),
                url,
                user: "hq".into(),
                password,
                ca: None,
            })
        }
        BrokerConfig::External(b) => {
            let password = match (&b.password_env, &b.password) {
                (Some(var), _) => {
                    std::env::var(var).map_err(|_| BrokerError::NoPasswordVariable(var.clone()))?
                }
                (None, Some(p)) => p.clone(),
                (None, None) => String::new(),
            };
            Ok(Connection {
                broker: None,
                url: BrokerUrl {
                    host: b.host.clone(),
                    port: b.port,
                    tls: b.ca.is_some(),
                },
                user: b.username.clone(),
                password,
                ca: b.ca.clone(),
            })
        }
    }
}

fn mqtt_options(cfg: &Config, c: &Connection) -> Result<MqttOptions, HqError> {
    let mut login =
        evac_net::Login::new(format!("evac-hq-{}", cfg.town)).keep_alive(Duration::from_secs(10));
    // Incoming: no larger than the broker takes (an external broker's limit is its own
    // config's, so HQ bounds what it reads to the default); outgoing: 1 MiB.
    let incoming = match &cfg.broker {
        BrokerConfig::Embedded(b) => b.max_payload_size,
        BrokerConfig::External(_) => crate::config::DEFAULT_MAX_PAYLOAD,
    };
    login = login.max_packet(incoming + 4096, outgoing_limit(cfg) + 4096);
    if !c.user.is_empty() {
        login = login.user(c.user.clone(), c.password.clone());
    }
    if let Some(ca) = &c.ca {
        let pem = std::fs::read(ca)
            .map_err(|e| check::field_error("broker.ca", ca, "copy the town's ca.crt there", e))?;
        login = login.ca(Some(pem));
    }
    let mut o = evac_net::mqtt_options(&c.url, &login).map_err(BrokerError::Options)?;
    o.set_clean_session(false);
    o.set_manual_acks(true);
    // rumqttc reads no request, HQ's acks of the shelters' events included, while its inflight
    // window is full; on a reconnection with the session present the broker sends HQ the events
    // queued meanwhile and waits for their acks, while HQ's publishes of a city (hundreds of
    // registry shards, status parts and orders at once) fill a small window: the two wait on
    // each other until rumqttc gives up ("Timeout while waiting to resolve collision") and
    // reconnects, again and again (the 300,000-household drill after HQ's restart). The
    // window holds every message HQ publishes at once at 1.5M households.
    o.set_inflight(HQ_INFLIGHT);
    Ok(o)
}

/// QoS 1 messages HQ may have unacknowledged at once: more than it publishes at once on a
/// (re)connection at 1.5M households (2,048 registry shards, the manifest, the status in parts,
/// the orders in force); a slot costs a few dozen bytes.
pub const HQ_INFLIGHT: u16 = 10_000;

async fn pump(mut eventloop: EventLoop, tx: mpsc::Sender<Result<Event, rumqttc::ConnectionError>>) {
    loop {
        let ev = eventloop.poll().await;
        let failed = ev.is_err();
        if tx.send(ev).await.is_err() {
            return;
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The largest payload HQ publishes: [`evac_protocol::MAX_MESSAGE`] (1 MiB, issue 22), or
/// what the embedded broker takes when lower.
fn outgoing_limit(cfg: &Config) -> usize {
    match &cfg.broker {
        BrokerConfig::Embedded(b) => b.max_payload_size.min(evac_protocol::MAX_MESSAGE),
        BrokerConfig::External(_) => evac_protocol::MAX_MESSAGE,
    }
}

/// Opens HQ's state from the config: town, keys, store.
pub fn open_hq(cfg: &Config) -> Result<Hq, HqError> {
    let town = check::town(cfg)?;
    let keys = check::keys(cfg)?;
    let key = check::hq_key(cfg)?;
    let mut store = Store::open(&cfg.store_path())?;
    store.set_meta("town", cfg.town.as_str())?;
    store.set_meta("town_file", &cfg.town_file.display().to_string())?;
    tracing::info!(
        households = town.households.len(),
        shelters = town.shelters.len(),
        shelter_keys = keys.shelter_count(),
        "town loaded"
    );
    let mut hq = Hq::open(
        cfg.town.clone(),
        Arc::new(town),
        store,
        keys,
        key,
        cfg.overdue_after_s * 1000,
        now_ms(),
    )?;
    if let Some(bytes) = cfg.status_part_bytes {
        hq.set_status_part_bytes(bytes);
    }
    if let Some(file) = &cfg.key_announcement {
        let bytes = std::fs::read(file).map_err(HqError::io(file, "read"))?;
        let set = evac_protocol::onair::decode_set(&bytes).map_err(|cause| {
            AirError::KeyAnnouncementFile {
                path: file.clone(),
                cause,
            }
        })?;
        hq.set_announcements(set);
    }
    Ok(hq)
}

fn dispatch(
    hq: &mut Hq,
    topic: &str,
    payload: &[u8],
    now: u64,
) -> Result<Vec<Publication>, HqError> {
    match topic.parse::<Topic>() {
        Ok(Topic::ShelterEvents(t, s)) if &t == hq.town_id() => hq.on_events(s, payload, now),
        Ok(Topic::ShelterState(t, s)) if &t == hq.town_id() => {
            hq.on_state(s, payload, now);
            Ok(vec![])
        }
        Ok(Topic::Command(t, o)) if &t == hq.town_id() => hq.on_command(&o, payload, now),
        _ => {
            tracing::debug!(topic, "ignored message");
            Ok(vec![])
        }
    }
}

/// Starts the thread that claims, reads and parses CAP files (see [`cap::intake`]), so that no
/// CAP file, however large or odd, holds up HQ's main loop; parsed messages arrive on the
/// returned receiver. First, files a stop left half-taken are rejected.
fn start_cap_reader(dir: PathBuf) -> Result<mpsc::Receiver<cap::intake::Claimed>, HqError> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("cap-reader".into())
        .spawn(move || {
            cap::intake::recover(&dir);
            loop {
                for c in cap::intake::claim(&dir) {
                    if tx.blocking_send(c).is_err() {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .map_err(|cause| BrokerError::Thread {
            what: "the CAP reader thread",
            cause,
        })?;
    Ok(rx)
}

/// Takes in one claimed CAP file on the main loop and files it under `done/` or `rejected/`.
fn take_in_claimed(
    hq: &mut Hq,
    cfg: &Config,
    dir: &Path,
    c: cap::intake::Claimed,
) -> Vec<Publication> {
    let label = dir.join(&c.name).display().to_string();
    let result = c
        .parsed
        .map_err(cap::CapRefused::from)
        .and_then(|m| cap::take_in_parsed(hq, m, &label, &cfg.cap_senders, now_ms()));
    match result {
        Ok((line, msgs)) => {
            tracing::info!(file = %label, "{line}");
            cap::intake::finish(dir, &c.name, true, &line);
            msgs
        }
        Err(e) => {
            let why = e.to_string();
            if cap::intake::finish(dir, &c.name, false, &why) == cap::intake::Filed::RejectedAgain {
                tracing::debug!(file = %label, "the same CAP file refused again (reported once)");
            } else {
                tracing::warn!(file = %label, error = %e, "CAP file rejected");
            }
            vec![]
        }
    }
}

/// Most messages in HQ's checker queues at once; past it HQ stops reading from the broker
/// (the MQTT client's own queue, then TCP, hold the rest back).
const CHECK_QUEUE: usize = 256;

/// Takes in changed shelter/officer keys and broker passwords; a file that does not load
/// leaves the old ones in force (logged).
fn reload(
    cfg: &Config,
    watch: &mut Watch,
    hq: &mut Hq,
    checker: &Checker<rumqttc::Publish>,
    conn: &Connection,
) {
    if watch.keys.changed() {
        match check::keys(cfg) {
            Ok(ring) => {
                tracing::info!(
                    shelter_keys = ring.shelter_count(),
                    officer_keys = ring.officer_count(),
                    "keys_dir changed: keys reloaded"
                );
                hq.set_keys(ring.clone());
                checker.set_keys(ring);
            }
            Err(e) => {
                tracing::warn!(error = %e, "keys_dir changed but does not load; old keys kept")
            }
        }
    }
    if let (Some(w), Some(running), BrokerConfig::Embedded(b)) =
        (watch.passwords.as_mut(), &conn.broker, &cfg.broker)
        && w.changed()
    {
        match check::passwords(&b.passwords) {
            Ok(p) => {
                let users = p.user_count();
                running.set_passwords(p);
                tracing::info!(users, "broker password file changed: passwords reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "password file changed but does not load; old passwords kept")
            }
        }
    }
}

/// What HQ watches for changes while it runs.
struct Watch {
    keys: ReloadedPath,
    passwords: Option<ReloadedPath>,
}

/// The most checked event batches committed together.
const GROUP_COMMIT: usize = 64;

/// Runs HQ until interrupted (or the broker thread dies).
pub async fn run(cfg: Config) -> Result<(), HqError> {
    let _lock = DataDirLock::acquire(&cfg.data_dir, "data_dir")?;
    if let Some(dir) = &cfg.cap_dir {
        check::ensure_dir("cap_dir", dir)?;
    }
    let mut watch = Watch {
        keys: ReloadedPath::new(&cfg.keys_dir),
        passwords: match &cfg.broker {
            BrokerConfig::Embedded(b) => Some(ReloadedPath::new(&b.passwords)),
            BrokerConfig::External(_) => None,
        },
    };
    let mut hq = open_hq(&cfg)?;
    // Households' answers from the TV, if `[answers]` is configured: served on HQ's runtime,
    // written through a connection of their own, so they never hold up this loop. An endpoint
    // that cannot start (a certificate missing, its port taken) never keeps HQ from serving
    // shelters: it is logged (and `evac-hq check` fails on it).
    let households = hq.household_ids();
    let _answers = crate::answers::start(&cfg, households)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "answer endpoint not started: households cannot answer from the TV");
            None
        });
    let conn = connection(&cfg)?;
    let opts = mqtt_options(&cfg, &conn)?;
    // Store open, broker (if embedded) listening: systemd may start what depends on HQ.
    evac_protocol::notify_ready();
    let (client, eventloop) = AsyncClient::new(opts, 1000);
    let mut outbox = Outbox::new(outgoing_limit(&cfg));
    let (tx, mut rx) = mpsc::channel(1000);
    tokio::spawn(pump(eventloop, tx));
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.status_interval_ms));
    let mut reload_tick = tokio::time::interval(Duration::from_secs(2));
    let mut cap_rx = match &cfg.cap_dir {
        Some(dir) => Some(start_cap_reader(dir.clone())?),
        None => None,
    };
    let snapshot_every = Duration::from_secs(cfg.snapshot_interval_s.max(1));
    let mut last_snapshot = tokio::time::Instant::now();
    let town = cfg.town.clone();
    let subscriptions = vec![
        filter::all_shelter_events(&town),
        filter::all_shelter_states(&town),
        filter::all_commands(&town),
    ];
    let (checker, mut checked_rx) = Checker::start(hq.keys().clone(), CHECK_QUEUE);
    // Messages handed to the checker and not yet handled: never more than CHECK_QUEUE, so
    // the queues stay bounded and the checker never blocks (see Checker::start).
    let mut in_flight = 0usize;
    let mut connected = false;
    loop {
        tokio::select! {
            ev = rx.recv(), if in_flight < CHECK_QUEUE => {
                let Some(ev) = ev else { return Err(BrokerError::LoopEnded.into()) };
                match ev {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        connected = true;
                        tracing::info!(session_present = ack.session_present, "connected to broker");
                        // Subscriptions first; what waited is superseded by what HQ owns now.
                        outbox.connected(&subscriptions);
                        match hq.on_connect(now_ms()) {
                            Ok(msgs) => outbox.publish(msgs),
                            Err(e) => tracing::error!(error = %e, "cannot prepare retained messages"),
                        }
                        last_snapshot = tokio::time::Instant::now();
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        // Event batches are checked on the checker's thread; every message goes
                        // through it so all are handled (and acked) in the order received.
                        let job = match p.topic.parse::<Topic>() {
                            Ok(Topic::ShelterEvents(t, s)) if &t == hq.town_id() => {
                                Some((s, p.payload.to_vec()))
                            }
                            _ => None,
                        };
                        if !checker.submit(p, job) {
                            return Err(BrokerError::CheckerStopped.into());
                        }
                        in_flight += 1;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if connected {
                            tracing::warn!(error = %e, waiting = outbox.len(), "broker connection lost");
                        }
                        connected = false;
                    }
                }
            }
            Some(first) = checked_rx.recv() => {
                // Every event batch already checked goes into one commit (group commit: one
                // fsync for the batches of many shelters); other messages keep their turn.
                let mut ready = vec![first];
                while ready.len() < GROUP_COMMIT {
                    match checked_rx.try_recv() {
                        Ok(item) => ready.push(item),
                        Err(_) => break,
                    }
                }
                in_flight = in_flight.saturating_sub(ready.len());
                let mut items = ready.into_iter().peekable();
                while let Some((p, checked)) = items.next() {
                    let now = now_ms();
                    let (packets, handled) = match checked {
                        Some(batch) => {
                            let mut packets = vec![p];
                            let mut batches = vec![batch];
                            while let Some((_, Some(_))) = items.peek() {
                                if let Some((p, Some(b))) = items.next() {
                                    packets.push(p);
                                    batches.push(b);
                                }
                            }
                            (packets, hq.on_checked_many(batches, now))
                        }
                        None => {
                            let handled = dispatch(&mut hq, &p.topic, &p.payload, now);
                            (vec![p], handled)
                        }
                    };
                    match handled {
                        Ok(msgs) => {
                            outbox.publish(msgs);
                            // Only now, with the events committed, may the broker forget them.
                            for p in packets {
                                outbox.ack(p);
                            }
                        }
                        // Not acked: the broker delivers them again.
                        Err(e) => tracing::error!(topic = %packets[0].topic, error = %e, "cannot handle message"),
                    }
                }
            }
            _ = tick.tick() => {
                if conn.broker.as_ref().is_some_and(|b| b.is_finished()) {
                    return Err(BrokerError::EmbeddedStopped.into());
                }
                if !connected { continue; }
                let full = last_snapshot.elapsed() >= snapshot_every;
                if full { last_snapshot = tokio::time::Instant::now(); }
                match hq.tick(now_ms(), full) {
                    Ok(msgs) => outbox.publish(msgs),
                    Err(e) => tracing::error!(error = %e, "tick failed"),
                }
            }
            _ = reload_tick.tick() => reload(&cfg, &mut watch, &mut hq, &checker, &conn),
            Some(c) = async { match cap_rx.as_mut() { Some(rx) => rx.recv().await, None => None } } => {
                if let Some(dir) = &cfg.cap_dir {
                    let msgs = take_in_claimed(&mut hq, &cfg, dir, c);
                    outbox.publish(msgs);
                }
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted");
                let _ = client.try_disconnect();
                return Ok(());
            }
        }
        // Whatever the turn produced goes to the client as far as it has room; the rest on a
        // later turn (every packet the client sends comes back as an event, a turn).
        if connected {
            outbox.flush(&client);
        }
    }
}
