//! HQ at city size (issue 22): `EVAC_CITY_TOWN=city.geojson cargo bench -p evac-hq --bench city`
//! on a town from `evac-maps generate --city --households N --out city.geojson`. Each part
//! prints its figures; a name after `--` runs only the parts whose name holds it:
//!
//! - `lib`: HQ's library on a fresh store, one process: `Hq::open` (engine town with the
//!   walking network, status board, registry and shards), `on_connect` (every message a
//!   (re)connection publishes, by kind: the shards, the manifest, the snapshot or its parts,
//!   the whole `registry` message this branch still has), every shard built, signed and
//!   packed again, the plan (`Hq::issue`: tsunami zone 1, then the whole city), 20,000
//!   check-ins through `Hq::on_events` (SQLite bytes an event, events a second), a status
//!   2,000 single-tap batches (alone, then 64 a commit as the service groups them), ticks
//!   (with nothing new; after 1,000 check-ins, with their delta), the status snapshot, and a
//!   card link (its delta).
//! - `process`: the real `evac-hq run` with its embedded broker: from launch until a viewer
//!   and a shelter login subscribed on the broker hold the status snapshot (all its parts), the
//!   manifest and every shard it names; then HQ's VmHWM and VmRSS, and again after `SETTLE_S`.
//! - `connections`: that HQ, then `EVAC_CITY_CONNECTIONS` (default 2,000) idle MQTT logins to
//!   its broker (a `viewer-bench` login, one client id each, subscribed to nothing), HQ's
//!   VmRSS and open files before and after, in waves of 16 (the gate lets a peer wait on at
//!   most 32 logins). `EVAC_CITY_NOFILE=1024` starts HQ under that open-file limit.
//!
//! Wall time on a shared 2-core machine: run the large town once or twice.
#![allow(missing_docs)] // a bench binary
#![allow(clippy::unwrap_used)] // a bench: a panic is a failed run, like a test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use evac_hq::core::{Hq, Publication};
use evac_hq::keys::KeyRing;
use evac_hq::notice::{Area, Notice};
use evac_hq::store::Store;
use evac_maps::Town;
use evac_protocol::{
    AlertLevel, Assurance, CardRef, CheckEvent, CommandAction, EventBatch, EventKind, HQ_SIGNER,
    Hazard, OfficerCommand, OfficerId, ResidentId, SecretKey, ShelterId, officer_signer,
    shelter_signer,
};

#[path = "city/broker.rs"]
mod broker;

const NOW: u64 = 1_795_000_000_000;
const PW: &str = "bench-password";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// VmHWM and VmRSS of a process, in MB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmHWM:") / 1024.0, kb("VmRSS:") / 1024.0)
}

/// The whole town's bounding box as an area: an order for the whole city.
fn whole_city(town: &Town) -> Area {
    let (mut w, mut s, mut e, mut n) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for h in &town.households {
        w = w.min(h.location.lon);
        e = e.max(h.location.lon);
        s = s.min(h.location.lat);
        n = n.max(h.location.lat);
    }
    let (w, s, e, n) = (w - 0.01, s - 0.01, e + 0.01, n + 0.01);
    Area {
        polygons: vec![vec![[w, s], [e, s], [e, n], [w, n], [w, s]]],
        ..Area::default()
    }
}

fn notice(name: &str, hazard: Hazard, area: Area) -> Notice {
    Notice {
        name: name.into(),
        hazard,
        level: AlertLevel::Level4,
        area,
        issued: 0,
        expires: 1_795_086_400,
        onset: None,
        effective: None,
        drill: true,
        source: "bench".into(),
        cap: None,
    }
}

/// Publications of a (re)connection by kind: (kind, count, bytes, largest).
fn by_kind(msgs: &[Publication]) -> Vec<(&'static str, usize, usize, usize)> {
    let kind = |t: &str| {
        if t.contains("/registry/shard/") {
            "registry shards"
        } else if t.ends_with("/registry/manifest") {
            "registry manifest"
        } else if t.ends_with("/registry") {
            "whole registry (this branch)"
        } else if t.contains("/status") {
            "status snapshot"
        } else if t.contains("/air/") {
            "air sections"
        } else if t.ends_with("/orders") {
            "orders"
        } else {
            "other (acks, keys)"
        }
    };
    let mut out: Vec<(&'static str, usize, usize, usize)> = Vec::new();
    for m in msgs {
        let k = kind(&m.topic);
        let n = m.payload.len();
        match out.iter_mut().find(|(x, ..)| *x == k) {
            Some(e) => {
                e.1 += 1;
                e.2 += n;
                e.3 = e.3.max(n);
            }
            None => out.push((k, 1, n, n)),
        }
    }
    out
}

fn print_kinds(what: &str, msgs: &[Publication]) {
    for (k, count, bytes, largest) in by_kind(msgs) {
        println!(
            "  {what}: {k}: {count} messages, {:.2} MB, largest {largest} bytes",
            mb(bytes)
        );
    }
}

fn check_in(shelter: ShelterId, seq: u64, resident: u32) -> CheckEvent {
    CheckEvent {
        resident: Some(ResidentId(resident)),
        assurance: Assurance::CardRead,
        ..CheckEvent::new(shelter, seq, NOW + seq, EventKind::CheckIn)
    }
}

/// Signed batches of `size` check-ins, events `from..to` of one shelter, residents spread
/// over the town.
fn batches(
    key: &SecretKey,
    shelter: ShelterId,
    residents: &[u32],
    (from, to): (u64, u64),
    size: usize,
) -> Vec<Vec<u8>> {
    (from..to)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(|seqs| {
            let events = seqs
                .iter()
                .map(|&seq| {
                    let r = residents[(seq as usize * 7919) % residents.len()];
                    key.sign(&shelter_signer(shelter), &check_in(shelter, seq, r))
                        .unwrap()
                })
                .collect();
            serde_json::to_vec(&EventBatch::new(shelter, events)).unwrap()
        })
        .collect()
}

fn store_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| {
            std::fs::metadata(format!("{}{s}", path.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

fn bench_lib(town_path: &Path) {
    let t = Instant::now();
    let town = Arc::new(Town::load(town_path).unwrap());
    let residents: Vec<u32> = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(|m| m.resident))
        .collect();
    println!(
        "town: {} households, {} residents, {} shelters, loaded in {:.1} s",
        town.households.len(),
        residents.len(),
        town.shelters.len(),
        t.elapsed().as_secs_f64()
    );
    let shelter = ShelterId(town.shelters[0].id);
    let shelter_key = SecretKey::from_seed(&[5; 32]);
    let officer: OfficerId = "bench".parse().unwrap();
    let officer_key = SecretKey::from_seed(&[7; 32]);
    let mut keys = KeyRing::default();
    keys.add_shelter(shelter, shelter_key.public());
    keys.add_officer(officer.clone(), officer_key.public());
    let hq_key = SecretKey::from_seed(&[6; 32]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hq.sqlite");

    let t = Instant::now();
    let mut hq = Hq::open(
        "bench".parse().unwrap(),
        town.clone(),
        Store::open(&db).unwrap(),
        keys,
        SecretKey::from_seed(&[6; 32]),
        1_800_000,
        NOW,
    )
    .unwrap();
    println!(
        "Hq::open, fresh store (engine town and walking network, status board, registry, shards): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let connect = hq.on_connect(NOW).unwrap();
    println!(
        "on_connect (everything a (re)connection publishes, built and signed): {:.2} s, {} messages, {:.1} MB",
        t.elapsed().as_secs_f64(),
        connect.len(),
        mb(connect.iter().map(|m| m.payload.len()).sum())
    );
    print_kinds("on_connect", &connect);
    drop(connect);

    // Every shard again, as ShardPublisher::all makes them: the shard, signed, JSON, packed.
    let manifest = hq.registry_manifest();
    let shards = u16::try_from(manifest.shards.len()).unwrap();
    let t = Instant::now();
    let mut sizes = Vec::new();
    for n in 0..shards {
        let json = hq_key
            .sign(HQ_SIGNER, &hq.registry_shard(n))
            .unwrap()
            .to_json()
            .unwrap();
        sizes.push((
            evac_protocol::packed::pack(json.as_bytes()).len(),
            json.len(),
        ));
    }
    let build_s = t.elapsed().as_secs_f64();
    let manifest_json = hq_key
        .sign(HQ_SIGNER, &manifest)
        .unwrap()
        .to_json()
        .unwrap();
    let fullest = sizes.iter().max_by_key(|s| s.1).unwrap();
    println!(
        "registry shards: {shards} shards built, signed and packed in {build_s:.2} s; fullest {} bytes packed ({} signed JSON); all {:.1} MB packed; manifest {} bytes packed ({} JSON)",
        fullest.0,
        fullest.1,
        mb(sizes.iter().map(|s| s.0).sum()),
        evac_protocol::packed::pack(manifest_json.as_bytes()).len(),
        manifest_json.len()
    );

    // The plan: HQ's real engine by walking route, as an order reaches HQ; ticks under the
    // tsunami order alone (its shelters have room), then under both.
    for (name, hazard, area) in [
        (
            "tsunami zone 1",
            Hazard::Tsunami,
            Area {
                zones: vec![1],
                ..Area::default()
            },
        ),
        (
            "whole city, earthquake",
            Hazard::Earthquake,
            whole_city(&town),
        ),
    ] {
        let t = Instant::now();
        let (report, msgs) = hq.issue(notice(name, hazard, area), None, NOW).unwrap();
        println!(
            "plan ({name}; Hq::issue: engine, store commit, signed orders and air sections): {:.2} s; {report:?}; {} messages, {:.2} MB",
            t.elapsed().as_secs_f64(),
            msgs.len(),
            mb(msgs.iter().map(|m| m.payload.len()).sum())
        );
        if hazard == Hazard::Tsunami {
            ticks(
                &mut hq,
                (&shelter_key, shelter, &residents),
                900_001,
                NOW + 10_000,
                "the tsunami order in force",
            );
        }
    }

    // Ingest at city size: the status board, the store and the engine are the city's.
    let before = store_bytes(&db);
    let payloads = batches(&shelter_key, shelter, &residents, (1, 20_001), 100);
    let t = Instant::now();
    for p in &payloads {
        hq.on_events(shelter, p, NOW + 60_000).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    let events = hq.store().event_count().unwrap();
    let after = store_bytes(&db);
    println!(
        "ingest at city size, 20,000 check-ins in batches of 100 through Hq::on_events (verify, SQLite commit synchronous=FULL, status board): {:.0} events/s; {events} events in the store; store grew {:.0} bytes an event (hq.sqlite + -wal, WAL not checkpointed); one commit (fsync) a batch",
        20_000.0 / s,
        (after - before) as f64 / 20_000.0
    );
    // A shelter sends each tap as it is made: live, a batch is one event, one commit each.
    let singles = batches(&shelter_key, shelter, &residents, (20_001, 22_001), 1);
    let t = Instant::now();
    for p in &singles {
        hq.on_events(shelter, p, NOW + 60_500).unwrap();
    }
    println!(
        "ingest at city size, 2,000 check-ins one a batch, each handled alone (one SQLite commit with fsync each: this disk's commit rate): {:.0} events/s",
        2_000.0 / t.elapsed().as_secs_f64()
    );
    // Under load, the service commits the batches that arrived during the last commit
    // together (group commit, at most 64): the same single-event batches, 64 a commit.
    let singles = batches(&shelter_key, shelter, &residents, (22_001, 24_001), 1);
    let keys = hq.keys().clone();
    let t = Instant::now();
    for group in singles.chunks(64) {
        let checked = group
            .iter()
            .map(|p| (shelter, evac_hq::ingest::check_payload(shelter, p, &keys)))
            .collect();
        hq.on_checked_many(checked, NOW + 60_700).unwrap();
    }
    println!(
        "ingest at city size, 2,000 check-ins one a batch, 64 batches a commit as the service groups them (check on this thread too): {:.0} events/s",
        2_000.0 / t.elapsed().as_secs_f64()
    );
    ticks(
        &mut hq,
        (&shelter_key, shelter, &residents),
        24_001,
        NOW + 61_000,
        "both orders in force",
    );
    let mut snap_ms = Vec::new();
    let mut snap = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        snap = hq.snapshot(NOW + 66_000 + i).unwrap();
        snap_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let largest = snap.iter().map(|m| m.payload.len()).max().unwrap_or(0);
    println!(
        "status snapshot (orders above, 30,000 check-ins): {} message(s), {} bytes in all, largest {largest}; built and signed (picture, pack, parts): median {:.0} ms of {snap_ms:.0?}",
        snap.len(),
        snap.iter().map(|m| m.payload.len()).sum::<usize>(),
        median(snap_ms.clone())
    );

    // A card link: one delta with the officer's reply.
    let mut link_ms = Vec::new();
    let mut delta_bytes = 0;
    for i in 1..=15u64 {
        let cmd = OfficerCommand {
            officer: officer.clone(),
            town: "bench".parse().unwrap(),
            id: i,
            at_ms: NOW + 70_000 + i,
            action: CommandAction::LinkCard {
                card: CardRef {
                    issuer_key_id: vec![0xbe; 20],
                    serial: i.to_be_bytes().to_vec(),
                },
                resident: ResidentId(residents[(i as usize * 104_729) % residents.len()]),
            },
            reason: "bench".into(),
        };
        let payload = officer_key
            .sign(&officer_signer(&officer), &cmd)
            .unwrap()
            .to_json()
            .unwrap();
        let t = Instant::now();
        let out = hq
            .on_command(&officer, payload.as_bytes(), NOW + 70_000 + i)
            .unwrap();
        link_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        delta_bytes = out
            .iter()
            .filter(|m| m.topic.ends_with("/registry/delta"))
            .map(|m| m.payload.len())
            .sum();
        hq.tick(NOW + 70_000 + i, false).unwrap();
    }
    println!(
        "card link (Hq::on_command: signature, SQLite commits, one registry delta): median {:.2} ms of 15 ({link_ms:.2?}); delta {delta_bytes} bytes packed",
        median(link_ms.clone())
    );
}

/// Ticks with nothing new, then each after 1,000 more check-ins (events `from..`, their
/// delta), and HQ's picture alone.
fn ticks(
    hq: &mut Hq,
    (key, shelter, residents): (&SecretKey, ShelterId, &[u32]),
    from: u64,
    at: u64,
    what: &str,
) {
    hq.tick(at, false).unwrap();
    let mut idle_ms = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        hq.tick(at + 100 + i, false).unwrap();
        idle_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let t = Instant::now();
    let _ = hq.current_picture(at + 500);
    let picture_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (mut tick_ms, mut delta) = (Vec::new(), 0);
    for i in 0..3u64 {
        let from = from + i * 1_000;
        for p in batches(key, shelter, residents, (from, from + 1_000), 100) {
            hq.on_events(shelter, &p, at + 1_000 + i * 1_000).unwrap();
        }
        let t = Instant::now();
        let out = hq.tick(at + 1_500 + i * 1_000, false).unwrap();
        tick_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        delta = out
            .iter()
            .filter(|m| m.topic.ends_with("/status") && !m.retain)
            .map(|m| m.payload.len())
            .sum::<usize>();
    }
    println!(
        "ticks, {what}: with nothing new median {:.0} ms of {idle_ms:.0?} (HQ's picture of every resident alone {picture_ms:.0} ms); after 1,000 check-ins (arrivals, re-routing, picture, delta) median {:.0} ms of {tick_ms:.0?}, delta {delta} bytes signed",
        median(idle_ms.clone()),
        median(tick_ms.clone())
    );
}

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let Some(town) = std::env::var_os("EVAC_CITY_TOWN").map(PathBuf::from) else {
        // `cargo test --benches` runs this too: nothing to measure without a town.
        println!("EVAC_CITY_TOWN not set: nothing to measure (see the module doc)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if run("lib") {
        bench_lib(&town);
    }
    if run("process") {
        broker::bench_process(&rt, &town);
    }
    if run("connections") {
        broker::bench_connections(&rt, &town);
    }
}
