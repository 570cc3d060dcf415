//! Issue 22, end to end: the real `evac-hq` (embedded broker) publishes its status snapshot
//! in signed parts, and the real `evac-dashboard report --json` shows the whole town from
//! them: the counts and every resident under order, spread over all the parts.
//!
//! A town past the default bound (a signed snapshot over 512 KiB) has ~350,000 residents,
//! too slow for a debug test run; HQ runs here with `status_part_bytes = 4096` (hq/README.md),
//! which lowers the bound and the parts' size on HQ's own code path, so a 3,000-household
//! town goes out in several parts, as a large one does.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use evac_maps::{GenerateParams, generate};
use evac_protocol::{
    AlertLevel, CommandAction, CommandReply, Hazard, OfficerCommand, SecretKey, Signed,
    StatusMessage, StatusPart,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use support::tmux::dash_toml;
use support::town::{HqConfig, card_key, hq_key, officer_key, passwords};
use support::*;

const PW: &str = "pw";
const PART_BYTES: usize = 4096;

/// What a watcher of HQ's status saw.
#[derive(Debug, Default)]
struct Seen {
    /// Parts seen, by snapshot seq: (count of parts, indexes seen, residents under order).
    parts: BTreeMap<u64, (u32, BTreeSet<u32>, u32)>,
    /// Snapshots on `status` (one message): none when HQ cuts every snapshot.
    whole: usize,
    /// The largest part, bytes.
    largest: usize,
    /// Empty messages on `status` (HQ clearing a whole snapshot left retained there).
    cleared: usize,
}

impl Seen {
    /// A snapshot of at least 3 parts, all seen, with residents under order.
    fn whole_set_with_orders(&self) -> bool {
        self.parts
            .values()
            .any(|(n, got, under)| *n >= 3 && got.len() == *n as usize && *under > 0)
    }
}

/// Officer tanaka orders `zone` evacuated over MQTT, then watches HQ's status until a whole
/// set of parts made after the order has come (each part checked with HQ's key).
async fn order_and_watch(port: u16, d: &Path, zone: u32) -> Seen {
    let key = SecretKey::read(&d.join("officer-tanaka.key")).unwrap();
    let hq = evac_protocol::PublicKey::read(&d.join("hq.pub")).unwrap();
    let officer: evac_protocol::OfficerId = "tanaka".parse().unwrap();
    let mut opts = MqttOptions::new("status-watch", "127.0.0.1", port);
    opts.set_credentials("officer-tanaka", PW)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(opts, 64);
    let topics = [
        "evac/v1/minato/cmd/tanaka/reply",
        "evac/v1/minato/status",
        "evac/v1/minato/status/part/+",
    ];
    let cmd = OfficerCommand {
        officer: officer.clone(),
        town: "minato".parse().unwrap(),
        id: 1,
        at_ms: evac_protocol::time::now_ms(),
        action: CommandAction::IssueOrder {
            hazard: Hazard::Tsunami,
            level: AlertLevel::Level4,
            zones: vec![zone],
            expires: i64::try_from(evac_protocol::time::now_ms() / 1000).unwrap() + 3600,
        },
        reason: "tsunami warning".into(),
    };
    let body = key
        .sign(&evac_protocol::officer_signer(&officer), &cmd)
        .unwrap()
        .to_json()
        .unwrap();
    let mut seen = Seen::default();
    let mut replied = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // The same signed command again every 3 s until HQ answers, as the dashboard sends it
    // (HQ may not have subscribed yet; it carries a command number out once).
    let mut again = tokio::time::interval(Duration::from_secs(3));
    while !(replied && seen.whole_set_with_orders()) {
        let ev = tokio::select! {
            _ = again.tick(), if !replied => {
                client
                    .publish("evac/v1/minato/cmd/tanaka", QoS::AtLeastOnce, false, body.clone())
                    .await
                    .unwrap();
                continue;
            }
            ev = tokio::time::timeout_at(deadline, events.poll()) => ev,
        };
        let Ok(ev) = ev else {
            panic!("no reply or no whole set of parts in time: {seen:?}");
        };
        // Subscribed on every connection: HQ's broker may drop the first one while it starts
        // (a clean session then forgets what it was subscribed to).
        if let Ok(Event::Incoming(Packet::ConnAck(_))) = ev {
            for t in topics {
                client.subscribe(t, QoS::AtLeastOnce).await.unwrap();
            }
            continue;
        }
        let Ok(Event::Incoming(Packet::Publish(p))) = ev else {
            continue;
        };
        if p.topic.ends_with("/reply") {
            let r: CommandReply = Signed::from_json(&p.payload).unwrap().open(&hq).unwrap();
            assert!(r.ok, "{}", r.message);
            replied = true;
        } else if p.topic.ends_with("/status") && p.payload.is_empty() {
            // HQ's clear of a whole snapshot left retained (the town is in parts).
            seen.cleared += 1;
        } else if p.topic.ends_with("/status") {
            let m: StatusMessage = Signed::from_json(&p.payload).unwrap().open(&hq).unwrap();
            if matches!(m, StatusMessage::Snapshot(_)) {
                seen.whole += 1;
            }
        } else {
            let part: StatusPart = Signed::from_json(&p.payload).unwrap().open(&hq).unwrap();
            assert!(p.topic.ends_with(&format!("/status/part/{}", part.part)));
            seen.largest = seen.largest.max(p.payload.len());
            let e = seen.parts.entry(part.seq).or_default();
            e.0 = part.parts;
            e.1.insert(part.part);
            e.2 = part.counts.under_order;
        }
    }
    let _ = client.disconnect().await;
    seen
}

#[test]
fn the_dashboard_shows_the_whole_town_from_hqs_snapshot_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let town = generate(&GenerateParams {
        households: 3_000,
        shelters: 20,
        seed: 11,
    });
    town.save(d.join("town.geojson")).unwrap();
    let zone = town
        .zones
        .iter()
        .find(|z| z.hazard == evac_maps::Hazard::Tsunami)
        .unwrap();
    let residents: u64 = town.households.iter().map(|h| h.members.len() as u64).sum();
    let ordered: BTreeSet<u64> = town
        .households
        .iter()
        .filter(|h| zone.contains(h.location))
        .flat_map(|h| h.members.iter().map(|m| u64::from(m.resident)))
        .collect();
    assert!(ordered.len() > 100, "{} ordered", ordered.len());
    hq_key(d);
    card_key(d);
    officer_key(d, "tanaka");
    passwords(d, ["hq", "officer-tanaka"], PW);
    let port = free_port();
    let cfg = HqConfig {
        status_part_bytes: Some(PART_BYTES),
        ..HqConfig::for_dashboard()
    };
    std::fs::write(d.join("hq.toml"), cfg.embedded(port)).unwrap();
    let mut hq = Proc::spawn(
        "hq",
        Command::new(bin("evac-hq"))
            .current_dir(d)
            .args(["run", "--config"])
            .arg(d.join("hq.toml")),
    );
    hq.wait_line(60, "the embedded broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });

    let seen = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(order_and_watch(port, d, zone.id));
    assert_eq!(seen.whole, 0, "a snapshot in one message: {seen:?}");
    assert!(seen.largest <= evac_protocol::MAX_MESSAGE, "{seen:?}");

    // The real reader: the officer's dashboard, its report once it holds a whole snapshot.
    dash_toml(d, port, PW);
    let mut last = Value::Null;
    wait_until(60, "the report of the whole town under order", || {
        let out = run(Command::new(bin("evac-dashboard")).current_dir(d).args([
            "--config",
            "dash.toml",
            "report",
            "--json",
        ]));
        last = serde_json::from_str(&out).unwrap();
        last["counts"]["under_order"] == ordered.len() as u64
    });
    assert_eq!(last["refused"], 0, "{last}");
    assert_eq!(last["counts"]["residents"], residents);
    assert_eq!(last["shelters"].as_array().unwrap().len(), 20, "part 0's");
    let unaccounted: BTreeSet<u64> = last["unaccounted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["resident"].as_u64().unwrap())
        .collect();
    assert_eq!(
        unaccounted, ordered,
        "every resident under order, from every part"
    );
}
