//! Event ingest the way an evacuation delivers it: many shelter nodes at once, each draining
//! its ledger's backlog through the shelters' real replicator into HQ's embedded broker,
//! HQ's real service (signature checks, the SQLite store with `synchronous=FULL` on the
//! target directory's file system, status) and HQ's acks back to each node.
//!
//! Two figures, each the median of three rounds (a fresh HQ and fresh ledgers each round):
//! - 50 shelters × 2,000 events at once: events a second from the first publish until every
//!   node holds HQ's ack for its last event;
//! - one shelter's backlog of 100,000 events (the outbox drain), acknowledged by HQ's real
//!   store (the drain bench in evac-shelter uses a stand-in consumer).
//!
//! `cargo bench -p evac-tests --bench ingest` (`SHELTERS`, `EVENTS` change the first).
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark binary: a panic is a failed run

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use evac_maps::{GenerateParams, generate};
use evac_protocol::{Assurance, EventKind, HouseholdId, ResidentId, SecretKey, ShelterId, Slug};
use evac_shelter::door::EventDraft;
use evac_shelter::ledger::Ledger;
use evac_shelter::replicate::{Replicator, ReplicatorConfig, Shared};

const PW: &str = "bench-password";

use evac_testkit::free_port;

/// One round: a fresh HQ, `shelters` ledgers of `events` each, drained at once. Returns
/// the wall time until every node holds HQ's ack for its last event.
fn round(dir: &Path, town: &evac_maps::Town, shelters: usize, events: u64) -> Duration {
    let p = |x: &str| dir.join(x);
    std::fs::create_dir_all(p("keys")).unwrap();
    town.save(p("town.geojson")).unwrap();
    let hq_key = SecretKey::from_seed(&[9; 32]);
    std::fs::write(p("hq.key"), hq_key.to_pem().unwrap()).unwrap();
    let ids: Vec<u32> = town.shelters.iter().map(|s| s.id).take(shelters).collect();
    assert_eq!(ids.len(), shelters, "the town has too few shelters");
    let mut pw = evac_hq::auth::Passwords::default();
    let mut nodes = Vec::new();
    let residents: Vec<(u32, u32)> = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(move |m| (h.id, m.resident)))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let seed = [(i % 250) as u8 + 1; 32];
        let key = SecretKey::from_seed(&seed);
        std::fs::write(
            p(&format!("keys/shelter-{id}.pub")),
            key.public().to_pem().unwrap(),
        )
        .unwrap();
        pw.set(&format!("shelter-{id}"), PW).unwrap();
        // The backlog: check-ins of the town's residents, made without an fsync each
        // (setup, not measured).
        let db = p(&format!("ledger-{id}.db"));
        let mut l = Ledger::open(&db, ShelterId(*id), SecretKey::from_seed(&seed)).unwrap();
        l.conn().pragma_update(None, "synchronous", "OFF").unwrap();
        for e in 0..events {
            let (h, r) = residents[(i * 7_919 + e as usize) % residents.len()];
            let d = EventDraft {
                kind: EventKind::CheckIn,
                card: None,
                resident: Some(ResidentId(r)),
                household: Some(HouseholdId(h)),
                assurance: Assurance::Staff,
                flags: vec![],
                day_only: false,
            };
            l.append(&d, 1_795_000_000_000 + e).unwrap();
        }
        nodes.push((ShelterId(*id), key, db));
    }
    std::fs::write(p("passwords"), pw.to_text()).unwrap();
    let port = free_port();
    std::fs::write(
        p("hq.toml"),
        format!(
            "town = \"minato\"\ntown_file = \"town.geojson\"\ndata_dir = \"hq-data\"\n\
             hq_key = \"hq.key\"\nkeys_dir = \"keys\"\n[broker]\nmode = \"embedded\"\n\
             listen = \"127.0.0.1:{port}\"\npasswords = \"passwords\"\n"
        ),
    )
    .unwrap();
    let cfg = evac_hq::config::Config::load(&p("hq.toml")).unwrap();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(evac_hq::service::run(cfg))
    });
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "HQ did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let town_id = Slug::new("minato").unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut shared = Vec::new();
    let start = Instant::now();
    for (id, key, db) in nodes {
        let s = Arc::new(Shared::default());
        let r = Replicator::new(
            ReplicatorConfig {
                town: town_id.clone(),
                shelter: id,
                broker: format!("127.0.0.1:{port}").parse().unwrap(),
                password: Some(PW.into()),
                ca_pem: None,
                ack_timeout: Duration::from_secs(10),
                reconnect_max: Duration::from_secs(1),
                batch_events: 200,
            },
            &db,
            key,
            hq_key.public(),
            s.clone(),
        )
        .unwrap();
        rt.spawn(r.run(stop_rx.clone()));
        shared.push(s);
    }
    let done = |s: &Arc<Shared>| s.acked_through.load(Ordering::Relaxed) >= events;
    while !shared.iter().all(done) {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "stalled: {} of {} nodes fully acknowledged",
            shared.iter().filter(|s| done(s)).count(),
            shared.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed();
    let _ = stop_tx.send(true);
    rt.shutdown_timeout(Duration::from_secs(2));
    // What HQ's store holds: every event once.
    let conn = rusqlite::Connection::open(p("hq-data/hq.sqlite")).unwrap();
    let stored: u64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, shelters as u64 * events, "HQ's store");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (shelters, events) = (env("SHELTERS", 50) as usize, env("EVENTS", 2_000));
    let town = generate(&GenerateParams {
        households: 3_000,
        shelters: shelters.max(1) as u32 + 10,
        seed: 1,
    });
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut many = Vec::new();
    let mut one = Vec::new();
    for r in 0..3 {
        many.push(round(
            &base.path().join(format!("many-{r}")),
            &town,
            shelters,
            events,
        ));
        one.push(round(
            &base.path().join(format!("one-{r}")),
            &town,
            1,
            100_000,
        ));
    }
    let total = shelters as f64 * events as f64;
    let m = median(many.clone());
    println!(
        "ingest through the embedded broker, {shelters} shelters x {events} events at once \
         (real replicators, HQ's service and store, synchronous=FULL, acks back): median \
         {:.2} s = {:.0} events/s (rounds {:.2?})",
        m.as_secs_f64(),
        total / m.as_secs_f64(),
        many
    );
    let o = median(one.clone());
    println!(
        "outbox drain, one shelter's 100,000 events acknowledged by HQ's real store through \
         the embedded broker: median {:.2} s = {:.0} events/s (rounds {:.2?})",
        o.as_secs_f64(),
        100_000.0 / o.as_secs_f64(),
        one
    );
}
