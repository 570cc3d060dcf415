//! Test support: an HQ directory (town, keys, passwords, config), the `evac-hq` process, and
//! MQTT clients that sign like shelters and officers, all through a real broker.
#![allow(dead_code)] // each test file uses a part of it
#![allow(clippy::unwrap_used)] // test support: a panic is a failed test

pub mod https;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use evac_hq::auth::Passwords;
use evac_maps::{GenerateParams, Town, generate};
use evac_protocol::{
    Ack, Assurance, CheckEvent, CommandAction, EventBatch, EventKind, OfficerCommand, PublicKey,
    ResidentId, SecretKey, ShelterId, Signed, Slug, officer_signer, shelter_signer,
};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;

pub const TOWN: &str = "minato";
pub const PASSWORD: &str = "pw";

#[allow(unused_imports)] // each test uses a part of it
pub use evac_testkit::free_port;

/// Everything HQ needs on disk, in a temporary directory.
pub struct HqDir {
    pub dir: tempfile::TempDir,
    pub town: Town,
    pub hq_public: PublicKey,
    pub shelter_keys: Vec<(ShelterId, SecretKey)>,
    pub officer_key: SecretKey,
    pub port: u16,
}

impl HqDir {
    /// A town of `households`, keys for its first two shelters and officer "tanaka", users
    /// shelter-1, shelter-2, officer-tanaka and viewer (no key).
    pub fn new(households: u32) -> HqDir {
        let dir = tempfile::tempdir().unwrap();
        let town = generate(&GenerateParams {
            households,
            shelters: 12,
            seed: 5,
        });
        town.save(dir.path().join("town.geojson")).unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::create_dir_all(dir.path().join("cap")).unwrap();
        let hq_public = evac_protocol::write_key_pair(&dir.path().join("hq")).unwrap();
        let mut shelter_keys = Vec::new();
        for (i, s) in town.shelters.iter().take(2).enumerate() {
            let key = SecretKey::from_seed(&[10 + i as u8; 32]);
            std::fs::write(
                dir.path().join(format!("keys/shelter-{}.pub", s.id)),
                key.public().to_pem().unwrap(),
            )
            .unwrap();
            shelter_keys.push((ShelterId(s.id), key));
        }
        let officer_key = SecretKey::from_seed(&[42; 32]);
        std::fs::write(
            dir.path().join("keys/officer-tanaka.pub"),
            officer_key.public().to_pem().unwrap(),
        )
        .unwrap();
        let mut p = Passwords::default();
        for (s, _) in &shelter_keys {
            p.set(&format!("shelter-{s}"), PASSWORD).unwrap();
        }
        p.set("officer-tanaka", PASSWORD).unwrap();
        p.set("viewer", PASSWORD).unwrap();
        p.set("hq", PASSWORD).unwrap();
        std::fs::write(dir.path().join("passwords"), p.to_text()).unwrap();
        let port = free_port();
        let d = HqDir {
            dir,
            town,
            hq_public,
            shelter_keys,
            officer_key,
            port,
        };
        d.write_config("hq.toml", &format!("mode = \"embedded\"\nlisten = \"127.0.0.1:{port}\"\npasswords = \"passwords\"\nmax_connections = 50"));
        d
    }

    /// Writes a config named `name` with the given `[broker]` body.
    pub fn write_config(&self, name: &str, broker: &str) -> PathBuf {
        let text = format!(
            "town = \"{TOWN}\"\ntown_file = \"town.geojson\"\ndata_dir = \"data\"\nhq_key = \"hq.key\"\nkeys_dir = \"keys\"\n\
             overdue_after_s = 3600\nstatus_interval_ms = 200\nsnapshot_interval_s = 5\ncap_dir = \"cap\"\ncap_senders = [\"jma@example.jp\"]\n[broker]\n{broker}\n"
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn store_path(&self) -> PathBuf {
        self.path("data/hq.sqlite")
    }

    /// Events stored at HQ, by reading its SQLite file.
    pub fn stored_events(&self, shelter: ShelterId) -> Vec<u64> {
        let Ok(conn) = rusqlite::Connection::open(self.store_path()) else {
            return vec![];
        };
        let Ok(mut stmt) = conn.prepare("SELECT seq FROM events WHERE shelter = ?1 ORDER BY seq")
        else {
            return vec![];
        };
        stmt.query_map([shelter.0], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|r| r.unwrap() as u64)
            .collect()
    }

    /// Rejections HQ recorded.
    pub fn rejections(&self) -> Vec<(String, String)> {
        let conn = rusqlite::Connection::open(self.store_path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT topic, reason FROM rejections ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}

/// A running `evac-hq` process (killed on drop).
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    stderr_log: PathBuf,
}

impl Proc {
    /// Starts `evac-hq {sub} --config CONFIG` and waits until it says where the broker listens
    /// (or, for `run` against an external broker, until it has started).
    pub fn start(d: &HqDir, sub: &str, config: &Path, expect_broker_line: bool) -> Proc {
        let log = d.path(&format!(
            "{sub}-{}.log",
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        ));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_evac-hq"))
            .args([sub, "--config"])
            .arg(config)
            .env("RUST_LOG", "info,rumqttd=warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let addr = if expect_broker_line {
            let out = child.stdout.take().unwrap();
            let (tx, rx) = std_mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(a) = line.strip_prefix("evac-hq: broker listening on ") {
                        let _ = tx.send(a.trim().parse::<SocketAddr>().unwrap());
                    }
                }
            });
            rx.recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| {
                    panic!(
                        "no broker line; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
        } else {
            SocketAddr::from(([127, 0, 0, 1], 0))
        };
        Proc {
            child,
            addr,
            stderr_log: log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u128 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) as u128
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` until it holds or `secs` pass.
pub fn wait_until(secs: u64, what: &str, cond: impl FnMut() -> bool) {
    evac_testkit::wait_until(Duration::from_secs(secs), what, cond);
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// An MQTT client that subscribes to `filters` and collects what arrives.
pub struct Client {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    pub seen: Vec<Msg>,
    pub connects: tokio::sync::watch::Receiver<u64>,
}

impl Client {
    pub async fn connect(
        port: u16,
        id: &str,
        user: &str,
        password: &str,
        filters: &[String],
    ) -> Client {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_credentials(user, password);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(64 << 20, 64 << 20);
        let (client, mut el) = AsyncClient::new(o, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ctx, crx) = tokio::sync::watch::channel(0u64);
        let c2 = client.clone();
        let filters = filters.to_vec();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        for f in &filters {
                            let _ = c2.subscribe(f.clone(), QoS::AtLeastOnce).await;
                        }
                        ctx.send_modify(|n| *n += 1);
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if tx
                            .send(Msg {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Client {
            client,
            rx,
            seen: Vec::new(),
            connects: crx,
        }
    }

    /// Waits for a message matching `pred` (looking at what was already seen first).
    pub async fn wait_for(
        &mut self,
        secs: u64,
        what: &str,
        mut pred: impl FnMut(&Msg) -> bool,
    ) -> Msg {
        if let Some(m) = self.seen.iter().find(|m| pred(m)) {
            return m.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    self.seen.push(m.clone());
                    if pred(&m) {
                        return m;
                    }
                }
                _ => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Waits until the client has connected (and subscribed) at least once.
    pub async fn connected(&mut self, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while *self.connects.borrow() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "client did not connect"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The SUBACK follows the CONNACK closely; give the broker a moment to register.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Drains what has arrived so far.
    pub fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.seen.push(m);
        }
    }

    pub async fn publish_retained(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .unwrap();
    }

    pub async fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
}

pub fn topic(rest: &str) -> String {
    format!("evac/v1/{TOWN}/{rest}")
}

/// A check-in event of `resident` at `shelter`.
pub fn check_in(shelter: ShelterId, seq: u64, resident: u32, wall_ms: u64) -> CheckEvent {
    CheckEvent {
        resident: Some(ResidentId(resident)),
        assurance: Assurance::CardRead,
        ..CheckEvent::new(shelter, seq, wall_ms, EventKind::CheckIn)
    }
}

/// A signed batch of events.
pub fn batch(
    key: &SecretKey,
    signer_shelter: ShelterId,
    batch_shelter: ShelterId,
    events: &[CheckEvent],
) -> Vec<u8> {
    let signed = events
        .iter()
        .map(|e| key.sign(&shelter_signer(signer_shelter), e).unwrap())
        .collect();
    serde_json::to_vec(&EventBatch::new(batch_shelter, signed)).unwrap()
}

/// The through_seq of an ack message, checked against HQ's key.
pub fn ack_through(m: &Msg, hq: &PublicKey) -> Option<(ShelterId, u64)> {
    let a: Ack = Signed::<Ack>::from_json(&m.payload).ok()?.open(hq).ok()?;
    Some((a.shelter, a.through_seq))
}

/// A signed officer command.
pub fn command(key: &SecretKey, officer: &str, id: u64, action: CommandAction) -> Vec<u8> {
    let o = Slug::new(officer).unwrap();
    let cmd = OfficerCommand {
        officer: o.clone(),
        town: Slug::new(TOWN).unwrap(),
        id,
        at_ms: evac_protocol::time::now_ms(),
        action,
        reason: "test".to_owned(),
    };
    key.sign(&officer_signer(&o), &cmd)
        .unwrap()
        .to_json()
        .unwrap()
        .into_bytes()
}

/// A shelter as the test drives it: keeps its events until HQ acks them and resends all
/// unacked ones after every (re)connection, as evac-shelter does.
pub struct TestShelter {
    pub id: ShelterId,
    key: SecretKey,
    pub events: Vec<CheckEvent>,
    pub acked: u64,
    pub client: Client,
    hq: PublicKey,
    sent_at_connect: u64,
}

impl TestShelter {
    pub async fn connect(d: &HqDir, n: usize) -> TestShelter {
        let (id, key) = (
            d.shelter_keys[n].0,
            SecretKey::from_seed(&[10 + n as u8; 32]),
        );
        let client = Client::connect(
            d.port,
            &format!("test-shelter-{id}"),
            &format!("shelter-{id}"),
            PASSWORD,
            &[topic(&format!("shelter/{id}/ack"))],
        )
        .await;
        TestShelter {
            id,
            key,
            events: Vec::new(),
            acked: 0,
            client,
            hq: d.hq_public.clone(),
            sent_at_connect: 0,
        }
    }

    /// Records `n` new check-ins (not yet sent).
    pub fn tap(&mut self, n: u64, first_resident: u32) {
        for _ in 0..n {
            let seq = self.events.len() as u64 + 1;
            self.events.push(check_in(
                self.id,
                seq,
                first_resident + seq as u32,
                1_795_000_000_000 + seq,
            ));
        }
    }

    /// Sends every unacked event.
    pub async fn flush(&mut self) {
        let unacked: Vec<CheckEvent> = self
            .events
            .iter()
            .filter(|e| e.id.seq > self.acked)
            .cloned()
            .collect();
        if !unacked.is_empty() {
            self.client
                .publish(
                    &topic(&format!("shelter/{}/events", self.id)),
                    batch(&self.key, self.id, self.id, &unacked),
                )
                .await;
        }
    }

    /// Resends the unacked events after a reconnection, and when an ack arrives that does not
    /// move forward (HQ republishes its acks when it reconnects: what was sent meanwhile may be
    /// lost); waits until HQ acks everything. There is no timer-driven resend, so a test
    /// passes only if these two triggers suffice.
    pub async fn sync(&mut self, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let total = self.events.len() as u64;
        while self.acked < total {
            assert!(
                tokio::time::Instant::now() < deadline,
                "shelter {} not acked through {total} (at {})",
                self.id,
                self.acked
            );
            let connects = *self.client.connects.borrow();
            let mut resend = connects > self.sent_at_connect;
            self.sent_at_connect = connects;
            self.client.drain();
            let hq = self.hq.clone();
            let id = self.id;
            for m in self.client.seen.drain(..) {
                if let Some((s, t)) = ack_through(&m, &hq)
                    && s == id
                {
                    if t <= self.acked {
                        resend = true;
                    }
                    self.acked = self.acked.max(t);
                }
            }
            if resend && self.acked < total {
                self.flush().await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
