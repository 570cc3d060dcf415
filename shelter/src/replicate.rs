//! Replication: the outbox over the ledger, published to HQ over MQTT until HQ acknowledges
//! end to end.
//!
//! - Events go out as [`EventBatch`]es (oldest first) with QoS 1 on
//!   `evac/v1/{town}/shelter/{id}/events`, each event signed by the node when it was recorded.
//! - An event stays pending until HQ's signed [`Ack`] (retained on `.../ack`) says every event
//!   through its sequence number is in HQ's store; the ack is kept in SQLite.
//! - After every (re)connect, and when HQ has not acknowledged for a while, sending starts
//!   again from the oldest unacknowledged event. The MQTT client is dropped and made anew on
//!   every connection loss, so nothing relies on its in-memory queue.
//! - Liveness, Sparkplug style: a retained, signed [`NodeState`] on `.../state` on connect and
//!   periodically, and the same with `online: false` as the last will; `session` counts the
//!   node's MQTT sessions (kept in SQLite) and `seq` its state messages within one.
//! - With [`Replicator::with_shards`], the registry's manifest, shards and deltas
//!   (`evac/v1/{town}/registry/...`) keep a [`crate::replica::Replica`] in step with HQ
//!   ([`crate::replica::sync`] says what to subscribe to): the only registry a node has.

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use evac_net::BrokerUrl;
use evac_protocol::{
    Ack, EventBatch, NodeState, PublicKey, SecretKey, ShelterId, Topic, TownId, shelter_signer,
};
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, Packet, QoS};
use rusqlite::Connection;
use tokio::sync::{Notify, watch};

use crate::ledger::{connect, get_meta, max_seq, set_meta, signed_events_from};

/// What the replicator needs to know.
#[derive(Clone, Debug)]
pub struct ReplicatorConfig {
    /// The town.
    pub town: TownId,
    /// This shelter.
    pub shelter: ShelterId,
    /// The broker.
    pub broker: BrokerUrl,
    /// Password of MQTT user `shelter-{id}`.
    pub password: Option<String>,
    /// The broker's CA certificate (PEM) for TLS; plain TCP when none.
    pub ca_pem: Option<Vec<u8>>,
    /// Resend from the oldest unacknowledged event after this long without ack progress.
    pub ack_timeout: Duration,
    /// Longest wait between reconnects.
    pub reconnect_max: Duration,
    /// Most events in one batch.
    pub batch_events: usize,
}

/// Counters shared with the node and the tests.
#[derive(Debug, Default)]
pub struct Shared {
    /// Wakes the replicator when the node committed an event.
    pub new_event: Notify,
    /// People present (the node keeps it up to date).
    pub present: Arc<AtomicU32>,
    /// Highest sequence HQ acknowledged.
    pub acked_through: AtomicU64,
    /// Acks ignored (bad signature, another shelter, beyond our last event).
    pub rejected_acks: AtomicU64,
    /// MQTT sessions started.
    pub sessions: AtomicU64,
    /// Batches published.
    pub batches_sent: AtomicU64,
    /// Ledger rows sent repaired because they could not be read as stored (each send counts).
    pub repaired_rows: AtomicU64,
    /// Answers from HQ that it rejected a whole batch of ours.
    pub rejected_batches: AtomicU64,
    /// Set when HQ was found ahead of this ledger (restored or rebuilt): what happened.
    pub behind_hq: Mutex<Option<String>>,
    /// HQ's last reason for rejecting a batch of ours.
    pub last_rejection: std::sync::Mutex<Option<String>>,
}

/// Reads the acknowledged sequence from the ledger database.
pub fn acked_through(conn: &Connection) -> u64 {
    get_meta(conn, "acked_through")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn next_session(conn: &Connection) -> u64 {
    let n = get_meta(conn, "session")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    if let Err(e) = set_meta(conn, "session", &n.to_string()) {
        tracing::error!(error = %e, "cannot store session counter");
    }
    n
}

/// Whether a connection that failed before CONNACK looks like a refused login: a CONNACK
/// refusal (Mosquitto), or the broker closing the connection at once (rumqttd).
fn refused_login(e: &rumqttc::ConnectionError) -> bool {
    matches!(e, rumqttc::ConnectionError::ConnectionRefused(_))
        || evac_net::probe::closed_before_connack(e)
}

fn now_ms() -> u64 {
    // The process's clock: the wall clock, or a drill's (`evac-shelter run --clock`).
    evac_protocol::time::now_ms()
}

/// One node's replication loop. Runs until `shutdown` turns true; reconnects with backoff.
pub struct Replicator {
    cfg: ReplicatorConfig,
    conn: Connection,
    key: SecretKey,
    hq_key: PublicKey,
    shared: Arc<Shared>,
    shards: Option<ShardSync>,
}

/// The registry in shards.
struct ShardSync {
    sync: crate::replica::sync::Sync,
    on_synced: Box<dyn FnMut(u64, String) + Send>,
}

impl ShardSync {
    fn act(&mut self, client: &AsyncClient, actions: Vec<crate::replica::sync::Action>) {
        use crate::replica::sync::Action;
        for a in actions {
            match a {
                Action::Subscribe(t) => {
                    if client.try_subscribe(t.clone(), QoS::AtLeastOnce).is_err() {
                        self.sync.not_subscribed(&t);
                    }
                }
                Action::Unsubscribe(t) => {
                    let _ = client.try_unsubscribe(t);
                }
                Action::Synced { version, digest } => (self.on_synced)(version, digest),
            }
        }
    }
}

struct Session {
    client: AsyncClient,
    connected: bool,
    next_send: u64,
    last_progress: Instant,
    resend_after: Duration,
    state_seq: u64,
    last_state: Instant,
    session: u64,
}

impl Replicator {
    /// A replicator over the ledger database at `db`.
    pub fn new(
        cfg: ReplicatorConfig,
        db: &Path,
        key: SecretKey,
        hq_key: PublicKey,
        shared: Arc<Shared>,
    ) -> Result<Self, crate::ledger::LedgerError> {
        let conn = connect(db)?;
        shared
            .acked_through
            .store(acked_through(&conn), Ordering::Relaxed);
        Ok(Replicator {
            cfg,
            conn,
            key,
            hq_key,
            shared,
            shards: None,
        })
    }

    /// Keeps the registry's shards in `sync` too; `on_synced` hears each new version and
    /// digest the replica reaches in step with HQ.
    pub fn with_shards(
        mut self,
        sync: crate::replica::sync::Sync,
        on_synced: Box<dyn FnMut(u64, String) + Send>,
    ) -> Self {
        self.shards = Some(ShardSync { sync, on_synced });
        self
    }

    fn topic(&self, t: fn(TownId, ShelterId) -> Topic) -> String {
        t(self.cfg.town.clone(), self.cfg.shelter).to_string()
    }

    fn state_payload(&self, online: bool, session: u64, seq: u64) -> Vec<u8> {
        let acked = self.shared.acked_through.load(Ordering::Relaxed);
        let last = max_seq(&self.conn).unwrap_or(0);
        let st = NodeState {
            shelter: self.cfg.shelter,
            online,
            session,
            seq,
            present: self.shared.present.load(Ordering::Relaxed),
            pending: last.saturating_sub(acked),
            acked_through: acked,
            at_ms: now_ms(),
        };
        self.key
            .sign(&shelter_signer(self.cfg.shelter), &st)
            .and_then(|s| s.to_json())
            .map(String::into_bytes)
            .unwrap_or_default()
    }

    /// Runs until `shutdown` is true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        while !*shutdown.borrow() {
            let started = Instant::now();
            self.one_session(&mut shutdown).await;
            if *shutdown.borrow() {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => {}
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    async fn one_session(&mut self, shutdown: &mut watch::Receiver<bool>) {
        let session = next_session(&self.conn);
        self.shared.sessions.fetch_add(1, Ordering::Relaxed);
        // A client id of its own per session: rumqttd keeps last wills by client id, so a
        // connection of an earlier session that lingers (a connect attempt that timed out,
        // a link the broker has not yet seen drop) would, when it ends, fire and consume this
        // session's will, and a node killed later would never be reported offline. An old
        // session's will carries its older session number, which HQ ignores.
        let mut login = evac_net::Login::new(format!(
            "evac-shelter-{}-{}-s{session}",
            self.cfg.town, self.cfg.shelter
        ))
        .keep_alive(Duration::from_secs(5))
        .max_packet(16 << 20, 8 << 20)
        .ca(self.cfg.ca_pem.clone());
        if let Some(p) = &self.cfg.password {
            login = login.user(format!("shelter-{}", self.cfg.shelter), p.clone());
        }
        let mut opts = match evac_net::mqtt_options(&self.cfg.broker, &login) {
            Ok(o) => o,
            Err(e) => {
                // The config was checked at start (an mqtts:// URL has its CA): never here.
                tracing::error!(error = %e, "cannot connect");
                return;
            }
        };
        opts.set_clean_session(true)
            .set_request_channel_capacity(64)
            .set_last_will(LastWill::new(
                self.topic(Topic::ShelterState),
                self.state_payload(false, session, 0),
                QoS::AtLeastOnce,
                true,
            ));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        // The event loop runs in a task of its own: a `poll()` dropped by `select!` while it
        // connects (every tap wakes the loop below) abandons a connection the broker has
        // accepted and opens another with the same client id, whose will the first one's end
        // then consumes at rumqttd.
        let (events_tx, mut events) = tokio::sync::mpsc::channel(64);
        let poller = AbortOnDrop(tokio::spawn(async move {
            loop {
                let ev = eventloop.poll().await;
                let end = ev.is_err();
                if events_tx.send(ev).await.is_err() || end {
                    return;
                }
            }
        }));
        let mut s = Session {
            client,
            connected: false,
            next_send: 1,
            last_progress: Instant::now(),
            resend_after: self.cfg.ack_timeout,
            state_seq: 0,
            last_state: Instant::now(),
            session,
        };
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let ack_topic = self.topic(Topic::ShelterAck);
        let registry_parts = format!("{}/", Topic::Registry(self.cfg.town.clone()));
        let shared = self.shared.clone();
        loop {
            tokio::select! {
                ev = events.recv() => match ev.unwrap_or(Err(ConnectionError::RequestsDone)) {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!(shelter = %self.cfg.shelter, session, "connected to broker");
                        s.connected = true;
                        let _ = s.client.try_subscribe(ack_topic.clone(), QoS::AtLeastOnce);
                        if let Some(sh) = &mut self.shards {
                            let actions = sh.sync.connected();
                            sh.act(&s.client, actions);
                        }
                        s.next_send = shared.acked_through.load(Ordering::Relaxed) + 1;
                        s.last_progress = Instant::now();
                        self.publish_state(&mut s);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic == ack_topic {
                            self.handle_ack(&p.payload, &mut s);
                        } else if p.topic.starts_with(&registry_parts)
                            && let Some(sh) = &mut self.shards
                        {
                            let actions = sh.sync.on_message(&p.topic, &p.payload);
                            sh.act(&s.client, actions);
                        }
                    }
                    Ok(_) => {}
                    Err(e) if !s.connected && refused_login(&e) => {
                        tracing::warn!(
                            shelter = %self.cfg.shelter, error = %e,
                            "the broker refused this node's login: check [broker] password, and that the broker has a password for user shelter-{} (evac-hq passwd; HQ takes it in without a restart)",
                            self.cfg.shelter
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(shelter = %self.cfg.shelter, error = %e, "broker connection lost");
                        return;
                    }
                },
                _ = shared.new_event.notified() => {}
                _ = tick.tick() => {
                    if s.connected {
                        if let Some(sh) = &mut self.shards {
                            let actions = sh.sync.idle();
                            sh.act(&s.client, actions);
                        }
                        self.check_ack_timeout(&mut s);
                        if s.last_state.elapsed() > Duration::from_secs(5) {
                            self.publish_state(&mut s);
                        }
                    }
                }
                _ = shutdown.changed() => {
                    if s.connected {
                        let payload = self.state_payload(false, session, s.state_seq + 1);
                        let _ = s.client.try_publish(self.topic(Topic::ShelterState), QoS::AtLeastOnce, true, payload);
                        let _ = s.client.try_disconnect();
                        // Let the event loop flush the offline state and the disconnect.
                        let _ = tokio::time::timeout(Duration::from_millis(500), async {
                            while let Some(Ok(_)) = events.recv().await {}
                        }).await;
                        drop(poller);
                    }
                    return;
                }
            }
            if s.connected {
                self.pump(&mut s);
            }
        }
    }

    fn publish_state(&self, s: &mut Session) {
        s.state_seq += 1;
        let payload = self.state_payload(true, s.session, s.state_seq);
        let _ = s.client.try_publish(
            self.topic(Topic::ShelterState),
            QoS::AtLeastOnce,
            true,
            payload,
        );
        s.last_state = Instant::now();
    }

    fn handle_ack(&mut self, payload: &[u8], s: &mut Session) {
        let ack = match evac_protocol::Signed::<Ack>::from_json(payload)
            .and_then(|e| e.open(&self.hq_key))
        {
            Ok(a) => a,
            Err(e) => {
                let n = self.shared.rejected_acks.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(error = %e, rejected = n, "ack ignored");
                return;
            }
        };
        if ack.shelter == self.cfg.shelter
            && let Some(why) = &ack.rejected
        {
            let n = self.shared.rejected_batches.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(reason = %why, rejected = n, "HQ rejected a batch of ours: check this node's key and clock with HQ");
            if let Ok(mut last) = self.shared.last_rejection.lock() {
                *last = Some(why.clone());
            }
        }
        if ack.shelter != self.cfg.shelter {
            let n = self.shared.rejected_acks.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(shelter = %ack.shelter, rejected = n, "ack for another shelter ignored");
            return;
        }
        self.recover_if_behind(ack.through_seq, s);
        let last = max_seq(&self.conn).unwrap_or(0);
        if ack.through_seq > last {
            let n = self.shared.rejected_acks.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                through = ack.through_seq,
                last,
                rejected = n,
                "ack for events we do not have ignored"
            );
            return;
        }
        let acked = self.shared.acked_through.load(Ordering::Relaxed);
        if ack.through_seq > acked {
            if let Err(e) = set_meta(&self.conn, "acked_through", &ack.through_seq.to_string()) {
                tracing::error!(error = %e, "cannot store ack");
                return;
            }
            self.shared
                .acked_through
                .store(ack.through_seq, Ordering::Relaxed);
            s.last_progress = Instant::now();
            s.resend_after = self.cfg.ack_timeout;
            s.next_send = s.next_send.max(ack.through_seq + 1);
            tracing::debug!(through = ack.through_seq, "acked");
        }
    }

    /// HQ acknowledged more of this shelter's events than this ledger holds: the ledger was
    /// restored from a backup or rebuilt. Says so loudly and recovers (see
    /// [`crate::ledger::recover_behind`]): the events HQ had not acknowledged go again under
    /// new numbers, and new taps follow them, so none is lost and none collides.
    fn recover_if_behind(&mut self, hq_through: u64, s: &mut Session) {
        match crate::ledger::recover_behind(&mut self.conn, &self.key, self.cfg.shelter, hq_through)
        {
            Ok(None) => {}
            Ok(Some(r)) => {
                let msg = format!(
                    "this ledger ends at event {} but HQ holds {} events of this shelter: the \
                     ledger was restored or rebuilt; {} events not yet acknowledged are sent \
                     again as {}..{}, new taps follow",
                    r.last,
                    r.hq_through,
                    r.copied,
                    r.hq_through + 1,
                    r.hq_through + r.copied
                );
                tracing::error!(
                    last = r.last,
                    hq_through = r.hq_through,
                    copied = r.copied,
                    "{msg}"
                );
                if let Ok(mut b) = self.shared.behind_hq.lock() {
                    *b = Some(msg);
                }
                self.shared
                    .acked_through
                    .store(r.hq_through, Ordering::Relaxed);
                s.next_send = r.hq_through + 1;
                s.last_progress = Instant::now();
                self.shared.new_event.notify_one();
            }
            Err(e) => {
                tracing::error!(error = %e, hq_through, "HQ is ahead of this ledger and it cannot recover")
            }
        }
    }

    fn check_ack_timeout(&self, s: &mut Session) {
        let acked = self.shared.acked_through.load(Ordering::Relaxed);
        if s.next_send > acked + 1 && s.last_progress.elapsed() > s.resend_after {
            tracing::info!(
                from = acked + 1,
                "no ack from HQ: resending from the oldest unacknowledged event"
            );
            s.next_send = acked + 1;
            s.last_progress = Instant::now();
            s.resend_after = (s.resend_after * 2).min(self.cfg.ack_timeout * 16);
        }
    }

    /// Publishes batches from `next_send` while the client's queue has room.
    fn pump(&self, s: &mut Session) {
        let topic = self.topic(Topic::ShelterEvents);
        loop {
            let mut batch = match signed_events_from(
                &self.conn,
                s.next_send,
                self.cfg.batch_events,
                &self.key,
                self.cfg.shelter,
            ) {
                Ok((b, repaired)) => {
                    if !repaired.is_empty() {
                        self.shared
                            .repaired_rows
                            .fetch_add(repaired.len() as u64, Ordering::Relaxed);
                    }
                    b
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read outbox");
                    return;
                }
            };
            cut_to_size(&mut batch);
            let Some(&(last, _)) = batch.last() else {
                return;
            };
            let events = batch.into_iter().map(|(_, e)| e).collect();
            let payload = match serde_json::to_vec(&EventBatch::new(self.cfg.shelter, events)) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode batch");
                    return;
                }
            };
            match s
                .client
                .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload)
            {
                Ok(()) => {
                    s.next_send = last + 1;
                    self.shared.batches_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => return, // queue full: the eventloop drains it, we come back
            }
        }
    }
}

/// What an event's envelope adds to its body: signer, kind, version and the signature.
const ENVELOPE_BYTES: usize = 256;

/// Keeps the first events of `batch` that fit in [`evac_protocol::MAX_BATCH_BYTES`] (at least
/// one): the broker refuses a much larger message from a shelter, and a batch it refused
/// would be sent again for ever.
fn cut_to_size(batch: &mut Vec<crate::ledger::OutboxEvent>) {
    let mut bytes = 0;
    let fits = batch
        .iter()
        .take_while(|(_, e)| {
            bytes += e.body_json().len() + ENVELOPE_BYTES;
            bytes <= evac_protocol::MAX_BATCH_BYTES
        })
        .count();
    batch.truncate(fits.max(1));
}

/// Aborts a task when dropped (a session's event loop ends with the session).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use evac_protocol::{CheckEvent, EventBatch, EventKind, SecretKey, ShelterId, shelter_signer};

    #[test]
    fn a_batch_is_cut_to_fit_the_brokers_limit_for_shelters() {
        let key = SecretKey::from_seed(&[3; 32]);
        let event = |seq: u64| {
            let mut e = CheckEvent::new(ShelterId(3), seq, 1_000 + seq, EventKind::Correction);
            // The longest note there is: 3-byte characters up to the bound.
            e.note = Some("訂".repeat(evac_protocol::MAX_NOTE_BYTES / 3));
            (seq, key.sign(&shelter_signer(ShelterId(3)), &e).unwrap())
        };
        let mut batch: Vec<_> = (1..=500).map(event).collect();
        cut_to_size(&mut batch);
        assert!(batch.len() > 50 && batch.len() < 500, "{}", batch.len());
        let wire = serde_json::to_vec(&EventBatch::new(
            ShelterId(3),
            batch.into_iter().map(|(_, e)| e).collect(),
        ))
        .unwrap();
        assert!(
            wire.len() <= evac_protocol::MAX_BATCH_BYTES,
            "{}",
            wire.len()
        );
        // One event is always sent, however large.
        let mut one = vec![event(1)];
        cut_to_size(&mut one);
        assert_eq!(one.len(), 1);
    }
}
