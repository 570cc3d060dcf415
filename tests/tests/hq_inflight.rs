//! Issue 22, end to end: HQ's restart with a backlog waiting on the broker and more than a
//! small inflight window to publish at once (the 300,000-household drill's deadlock, fixed in
//! `bb35cdb` with `HQ_INFLIGHT`).
//!
//! The broker and HQ run as separate `evac-hq` processes, as in the drill, so HQ's persistent
//! session outlives HQ. While HQ is down a real `evac-shelter` (one event a batch) records
//! [`BACKLOG`] events: more than the broker sends HQ unacknowledged (rumqttd's
//! `max_inflight_count`, 200), so the broker waits on HQ's acks when HQ is back. HQ's town has
//! [`SHELTERS`] shelters with keys, and HQ publishes a retained ack for each on connecting:
//! more messages at once than a window of 100 holds (a city of 1,753 shelters does the same).
//! With such a window HQ's acks of the backlog wait behind its own publishes, whose acks the
//! broker holds back while its window to HQ is full: the link drops every 20 s and the
//! backlog never arrives. The test asks for every event in HQ's store within a generous bound
//! and for HQ's link to stay up after the restart.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use evac_maps::{GenerateParams, generate};
use support::deploy::stored;
use support::town::{HqConfig, card_key, hq_key, passwords, shelter_key};
use support::*;

const PW: &str = "pw";
/// Shelters with keys: one retained ack each on every HQ connection.
const SHELTERS: u32 = 300;
/// Events recorded while HQ is down, one MQTT message each.
const BACKLOG: usize = 400;

/// `evac-hq run` on `hq.toml`, its log in `log`.
fn hq(d: &Path, log: &str) -> Proc {
    let file = std::fs::File::create(d.join(log)).unwrap();
    Proc::spawn_with_stderr(
        "hq",
        Command::new(bin("evac-hq"))
            .current_dir(d)
            .env("RUST_LOG", "info")
            .args(["run", "--config", "hq.toml"]),
        file,
    )
}

/// Lines of HQ's log that say its link to the broker dropped.
fn drops(d: &Path, log: &str) -> Vec<String> {
    std::fs::read_to_string(d.join(log))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("broker connection lost") || l.contains("collision"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn hq_restarted_with_a_backlog_and_a_burst_of_its_own_takes_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let town = generate(&GenerateParams {
        households: 400,
        shelters: SHELTERS,
        seed: 3,
    });
    assert_eq!(town.shelters.len(), SHELTERS as usize);
    town.save(d.join("town.geojson")).unwrap();
    hq_key(d);
    card_key(d);
    let node = town.shelters[0].id;
    shelter_key(d, node);
    // The other shelters' keys, as HQ's keys_dir holds them: HQ acks each on connecting.
    for s in &town.shelters[1..] {
        evac_protocol::write_key_pair(&d.join(format!("keys/shelter-{}", s.id))).unwrap();
    }
    passwords(d, ["hq".to_owned(), format!("shelter-{node}")], PW);
    let port = free_port();
    let cfg = HqConfig::default();
    std::fs::write(d.join("broker.toml"), cfg.embedded(port)).unwrap();
    std::fs::write(d.join("hq.toml"), cfg.external(port, PW)).unwrap();

    let _broker = hq_broker(d);
    let mut first = hq(d, "hq-1.log");
    let mut shelter = support::town::shelter(d, node, port, PW, "batch_events = 1\n", "");
    // The node's registry comes from HQ: HQ is up and its session on the broker exists.
    shelter.wait_line(60, "the registry from HQ", |l| {
        l.contains("\"result\":\"registry\"")
    });
    first.kill();

    // The backlog: staff register walk-ins, one event each, each published while HQ is away.
    let people: Vec<(u32, u32)> = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(|m| (h.id, m.resident)))
        .take(BACKLOG)
        .collect();
    assert_eq!(people.len(), BACKLOG);
    for (h, r) in &people {
        shelter.send(&format!("staff {h} {r}"));
    }
    for i in 1..=BACKLOG {
        let line = shelter.wait_line(30, "a recorded walk-in", |l| {
            l.contains("\"result\":\"recorded\"") || l.contains("\"result\":\"refused\"")
        });
        assert!(line.contains(&format!("\"seq\":{i},")), "{line}");
    }
    // Every event handed to the broker before HQ comes back: the node's status counts the
    // batches it sent, one event each.
    wait_until(60, "the backlog on the broker", || {
        shelter.send("status");
        let line = shelter.wait_line(10, "status", |l| l.contains("\"result\":\"status\""));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["batches_sent"].as_u64().unwrap_or(0) >= BACKLOG as u64
    });
    assert!(stored(&d.join("hq-data/hq.sqlite"), node).is_empty());

    let started = Instant::now();
    let _second = hq(d, "hq-2.log");
    let store = d.join("hq-data/hq.sqlite");
    let want: Vec<u64> = (1..=BACKLOG as u64).collect();
    let by = Instant::now() + Duration::from_secs(90);
    loop {
        let dropped = drops(d, "hq-2.log");
        assert!(
            dropped.is_empty(),
            "HQ's link dropped after the restart ({} of {BACKLOG} events stored): {dropped:?}",
            stored(&store, node).len()
        );
        if stored(&store, node) == want {
            break;
        }
        assert!(
            Instant::now() < by,
            "{} of {BACKLOG} events at HQ after 90 s",
            stored(&store, node).len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "backlog of {BACKLOG} events at HQ {:.1} s after its restart",
        started.elapsed().as_secs_f64()
    );
    // Settled: the link stays up past rumqttc's 20 s collision timeout (two keep-alives of
    // 10 s), and the shelter hears HQ's ack of everything.
    wait_until(40, "the shelter's outbox acknowledged", || {
        shelter.send("status");
        let line = shelter.wait_line(10, "status", |l| l.contains("\"result\":\"status\""));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["acked_through"] == BACKLOG as u64
    });
    std::thread::sleep(Duration::from_secs(25).saturating_sub(started.elapsed()));
    let dropped = drops(d, "hq-2.log");
    assert!(dropped.is_empty(), "HQ's link dropped: {dropped:?}");
    let log = std::fs::read_to_string(d.join("hq-2.log")).unwrap();
    assert!(
        log.contains("session_present=true"),
        "HQ resumed its session: {log}"
    );
    assert_eq!(log.matches("connected to broker").count(), 1, "{log}");
}
