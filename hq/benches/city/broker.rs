//! The real `evac-hq` process for the city bench (see `../city.rs`): its start-up as seen on
//! its broker, its memory and CPU, and idle logins to its embedded broker.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evac_protocol::{RegistryManifest, SecretKey, Signed, StatusPart};

use super::{PW, mb, memory};

/// A folder with HQ's config for `town`: keys, passwords, `hq.toml` on `port`.
fn hq_dir(town: &Path, port: u16, max_connections: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("keys")).unwrap();
    std::fs::write(
        d.join("hq.key"),
        SecretKey::from_seed(&[6; 32]).to_pem().unwrap(),
    )
    .unwrap();
    let mut pw = evac_hq::auth::Passwords::default();
    pw.set("viewer-bench", PW).unwrap();
    pw.set("shelter-1", PW).unwrap();
    std::fs::write(d.join("passwords"), pw.to_text()).unwrap();
    std::fs::write(
        d.join("hq.toml"),
        format!(
            "town = \"bench\"\ntown_file = \"{}\"\ndata_dir = \"hq-data\"\nhq_key = \"hq.key\"\nkeys_dir = \"keys\"\n\
             status_interval_ms = 1000\n[broker]\nmode = \"embedded\"\nlisten = \"127.0.0.1:{port}\"\npasswords = \"passwords\"\nmax_connections = {max_connections}\n",
            std::fs::canonicalize(town).unwrap().display()
        ),
    )
    .unwrap();
    dir
}

struct Running {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn launch(town: &Path, port: u16, max_connections: usize) -> (Running, Instant) {
    let dir = hq_dir(town, port, max_connections);
    let log = std::fs::File::create(dir.path().join("hq.log")).unwrap();
    println!("  HQ's log: {}", dir.path().join("hq.log").display());
    let t0 = Instant::now();
    // `EVAC_CITY_NOFILE=1024`: HQ under that open-file limit (systemd's default soft limit).
    let mut cmd = match std::env::var("EVAC_CITY_NOFILE") {
        Ok(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}"))
                .arg(env!("CARGO_BIN_EXE_evac-hq"));
            c
        }
        Err(_) => Command::new(env!("CARGO_BIN_EXE_evac-hq")),
    };
    let child = cmd
        .current_dir(dir.path())
        .args(["run", "--config", "hq.toml"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    (Running { child, _dir: dir }, t0)
}

/// What the logins subscribed on the broker have seen, with the time since launch.
#[derive(Default)]
struct Seen {
    /// When, bytes, and how many shards it names.
    manifest: Option<(f64, usize, usize)>,
    shards: std::collections::BTreeMap<u16, usize>,
    shards_at: f64,
    parts: std::collections::BTreeMap<u32, usize>,
    /// When, parts, bytes.
    snapshot: Option<(f64, usize, usize)>,
}

impl Seen {
    fn take(&mut self, topic: &str, payload: &[u8], retain: bool, at: f64) {
        let n = payload.len();
        if let Some((_, shard)) = topic.rsplit_once("/registry/shard/") {
            self.shards.insert(shard.parse().unwrap(), n);
            self.shards_at = at;
        } else if topic.ends_with("/registry/manifest") {
            let json = evac_protocol::packed::unpack(payload, 64 << 20).unwrap();
            let m: RegistryManifest = Signed::<RegistryManifest>::from_json(json.as_ref())
                .unwrap()
                .body_unverified()
                .unwrap();
            self.manifest = Some((at, n, m.shards.len()));
        } else if topic.contains("/status/part/") {
            let part: StatusPart = Signed::<StatusPart>::from_json(payload)
                .unwrap()
                .body_unverified()
                .unwrap();
            self.parts.insert(part.part, n);
            if self.parts.len() == part.parts as usize && self.snapshot.is_none() {
                self.snapshot = Some((at, part.parts as usize, self.parts.values().sum()));
            }
        } else if topic.ends_with("/status")
            && retain
            && !payload.is_empty()
            && self.snapshot.is_none()
        {
            self.snapshot = Some((at, 1, n));
        }
    }

    fn complete(&self) -> bool {
        self.snapshot.is_some()
            && self
                .manifest
                .is_some_and(|(_, _, shards)| self.shards.len() >= shards)
    }
}

/// Subscribes `user` to `filters` from launch on (retrying until the broker listens) and
/// records what arrives into `seen`.
async fn watch(
    port: u16,
    user: &'static str,
    filters: Vec<String>,
    t0: Instant,
    seen: Arc<std::sync::Mutex<Seen>>,
) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    loop {
        let mut opts = MqttOptions::new(format!("watch-{user}"), "127.0.0.1", port);
        opts.set_credentials(user, PW)
            .set_keep_alive(Duration::from_secs(60))
            .set_max_packet_size(256 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(opts, 64);
        for f in &filters {
            client.subscribe(f, QoS::AtMostOnce).await.unwrap();
        }
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let at = t0.elapsed().as_secs_f64();
                    seen.lock()
                        .unwrap()
                        .take(&p.topic, &p.payload, p.retain, at);
                }
                Ok(_) => {}
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            }
        }
    }
}

/// Starts the real HQ and waits until its start-up is on the broker: the status snapshot
/// (every part), the manifest and every shard it names. Prints the times and HQ's memory.
fn start_up(
    rt: &tokio::runtime::Runtime,
    town: &Path,
    port: u16,
    max_connections: usize,
) -> Running {
    let (mut hq, t0) = launch(town, port, max_connections);
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let prefix = "evac/v1/bench";
    let watchers = [
        rt.spawn(watch(
            port,
            "viewer-bench",
            vec![
                format!("{prefix}/status"),
                format!("{prefix}/status/part/+"),
            ],
            t0,
            seen.clone(),
        )),
        rt.spawn(watch(
            port,
            "shelter-1",
            vec![
                format!("{prefix}/registry/manifest"),
                format!("{prefix}/registry/shard/+"),
            ],
            t0,
            seen.clone(),
        )),
    ];
    let pid = hq.child.id();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(status)) = hq.child.try_wait() {
            panic!("HQ exited: {status}");
        }
        let s = seen.lock().unwrap();
        if s.complete() {
            let (snap_at, parts, bytes) = s.snapshot.unwrap();
            let (man_at, man_bytes, _) = s.manifest.unwrap();
            println!(
                "  start-up, launch until on the broker: {:.1} s (status snapshot at {snap_at:.1} s, {parts} part(s), {bytes} bytes; manifest at {man_at:.1} s, {man_bytes} bytes packed; {} shards by {:.1} s, fullest {} bytes packed, {:.1} MB in all)",
                t0.elapsed().as_secs_f64(),
                s.shards.len(),
                s.shards_at,
                s.shards.values().max().unwrap(),
                mb(s.shards.values().sum())
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1800),
            "HQ not started within 30 min"
        );
    }
    for w in watchers {
        w.abort();
    }
    let (hwm, rss) = memory(pid);
    println!("  HQ's memory once started: VmHWM {hwm:.0} MB, VmRSS {rss:.0} MB");
    hq
}

/// User and system CPU seconds of a process so far.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn settle_s() -> u64 {
    std::env::var("SETTLE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

pub fn bench_process(rt: &tokio::runtime::Runtime, town: &Path) {
    println!("the real evac-hq, embedded broker, fresh data dir:");
    let hq = start_up(rt, town, evac_testkit_port(), 100);
    let cpu0 = cpu_s(hq.child.id());
    std::thread::sleep(Duration::from_secs(settle_s()));
    let cpu = cpu_s(hq.child.id()) - cpu0;
    let (hwm, rss) = memory(hq.child.id());
    println!(
        "  HQ's memory {} s later (no shelter, no event; a tick every 1 s, a snapshot every 30 s): VmHWM {hwm:.0} MB, VmRSS {rss:.0} MB; HQ's CPU meanwhile {:.0} % of one core",
        settle_s(),
        cpu * 100.0 / settle_s() as f64
    );
    print_warnings(&hq);
}

/// HQ's warnings and errors so far (a refused message, a slow tick).
fn print_warnings(hq: &Running) {
    let log = std::fs::read_to_string(hq._dir.path().join("hq.log")).unwrap_or_default();
    for l in log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(8)
    {
        println!("  HQ's log: {}", l.chars().take(400).collect::<String>());
    }
}

/// A free port on loopback.
fn evac_testkit_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn bench_connections(rt: &tokio::runtime::Runtime, town: &Path) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
    let n: usize = std::env::var("EVAC_CITY_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    println!("the real evac-hq, then {n} idle MQTT logins to its embedded broker:");
    let port = evac_testkit_port();
    let hq = start_up(rt, town, port, n + 100);
    let pid = hq.child.id();
    std::thread::sleep(Duration::from_secs(settle_s()));
    let (_, before) = memory(pid);
    let fds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let fds_before = fds(pid);
    let t = Instant::now();
    let mut clients = Vec::new();
    let mut connected = 0;
    for wave in 0..n.div_ceil(16) {
        let mut waiting = Vec::new();
        for i in wave * 16..((wave + 1) * 16).min(n) {
            let mut opts = MqttOptions::new(format!("idle-{i}"), "127.0.0.1", port);
            opts.set_credentials("viewer-bench", PW)
                .set_keep_alive(Duration::from_secs(60));
            let (client, mut events) = AsyncClient::new(opts, 8);
            let (tx, rx) = tokio::sync::oneshot::channel();
            rt.spawn(async move {
                let mut tx = Some(tx);
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            if let Some(tx) = tx.take() {
                                let _ = tx.send(true);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {
                            if let Some(tx) = tx.take() {
                                let _ = tx.send(false);
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            });
            clients.push(client);
            waiting.push(rx);
        }
        let answered = rt.block_on(async {
            let mut ok = 0;
            for rx in waiting {
                if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(20), rx).await {
                    ok += 1;
                }
            }
            ok
        });
        connected += answered;
        if answered < clients.len() - wave * 16 {
            println!(
                "  a login not answered (refused or no answer within 20 s) in the wave after {} connections",
                wave * 16
            );
            break;
        }
    }
    let n = connected;
    let connect_s = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(10));
    let (hwm, after) = memory(pid);
    println!(
        "  {n} logins connected in {connect_s:.1} s; HQ's VmRSS {before:.0} MB before, {after:.0} MB with them ({:.1} KB a connection); VmHWM {hwm:.0} MB; HQ's open files {fds_before} before, {} with them",
        (after - before) * 1024.0 / n as f64,
        fds(pid)
    );
    print_warnings(&hq);
    drop(clients);
}
