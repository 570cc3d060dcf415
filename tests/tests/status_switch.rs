//! Issue 22, end to end: a town that goes from one status message to parts. The real
//! `evac-hq` first publishes its snapshot whole (retained on `status`), then, restarted with
//! `status_part_bytes = 4096` (hq/README.md) on the same broker (`evac-hq broker`, which keeps
//! retained messages across HQ's restart), in parts. A reader that joins the parts first and
//! then subscribes to `status` (the dashboard's own state, `TownState`) must find nothing
//! retained there to refuse: HQ cleared the whole snapshot with an empty retained message,
//! and the reader takes the deltas that follow.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use evac_dashboard::state::{Applied, Reject, TownState};
use evac_maps::{GenerateParams, generate};
use evac_protocol::{PublicKey, Signed, StatusMessage};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::town::{HqConfig, card_key, hq_key, passwords};
use support::*;

const PW: &str = "pw";

fn hq(d: &Path) -> Proc {
    Proc::spawn(
        "hq",
        Command::new(bin("evac-hq"))
            .current_dir(d)
            .args(["run", "--config", "hq.toml"]),
    )
}

fn client(port: u16, id: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_credentials("viewer", PW)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(opts, 64)
}

/// Waits for a whole snapshot on `status` (HQ's first, retained).
async fn whole_snapshot(port: u16, key: &PublicKey) -> u64 {
    let (c, mut events) = client(port, "whole-watch");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.poll())
            .await
            .expect("HQ's whole snapshot in time");
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                c.subscribe("evac/v1/minato/status", QoS::AtLeastOnce)
                    .await
                    .unwrap();
            }
            Ok(Event::Incoming(Packet::Publish(p))) if !p.payload.is_empty() => {
                let m: StatusMessage = Signed::from_json(&p.payload).unwrap().open(key).unwrap();
                if let StatusMessage::Snapshot(s) = m {
                    let _ = c.disconnect().await;
                    return s.seq;
                }
            }
            _ => {}
        }
    }
}

/// What came on `status` after the parts: for each message, whether it was empty, whether
/// it was a whole snapshot, and what the reader's state made of it.
type OnStatus = Vec<(bool, bool, Result<Applied, Reject>)>;

/// Joins HQ's parts first, then subscribes to `status` and takes what comes there until the
/// parts of HQ's next snapshot are joined (anything retained on `status` comes at once on the
/// subscription, before them): the reader's state and what came on `status`.
async fn parts_then_status(port: u16, key: PublicKey) -> (TownState, OnStatus) {
    let mut state = TownState::new("minato".parse().unwrap(), key, None);
    let (c, mut events) = client(port, "parts-first");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut on_status = false;
    let mut joined = None;
    let mut seen = OnStatus::new();
    let mut mono = 0;
    loop {
        let Ok(ev) = tokio::time::timeout_at(deadline, events.poll()).await else {
            panic!("no next snapshot after the parts: {seen:?}");
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                c.subscribe("evac/v1/minato/status/part/+", QoS::AtLeastOnce)
                    .await
                    .unwrap();
                if on_status {
                    c.subscribe("evac/v1/minato/status", QoS::AtLeastOnce)
                        .await
                        .unwrap();
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                mono += 1;
                let applied = state.on_message(&p.topic, &p.payload, mono);
                if !p.topic.ends_with("/status") {
                    if state.seq.is_some() && !on_status {
                        on_status = true;
                        joined = state.seq;
                        c.subscribe("evac/v1/minato/status", QoS::AtLeastOnce)
                            .await
                            .unwrap();
                    } else if on_status && state.seq > joined {
                        let _ = c.disconnect().await;
                        return (state, seen);
                    }
                    continue;
                }
                let m = Signed::<StatusMessage>::from_json(&p.payload)
                    .ok()
                    .and_then(|s| s.body_unverified().ok());
                let snapshot = matches!(m, Some(StatusMessage::Snapshot(_)));
                seen.push((p.payload.is_empty(), snapshot, applied));
            }
            _ => {}
        }
    }
}

#[test]
fn a_town_gone_to_parts_leaves_no_whole_snapshot_for_a_reader_to_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let town = generate(&GenerateParams {
        households: 3_000,
        shelters: 20,
        seed: 11,
    });
    town.save(d.join("town.geojson")).unwrap();
    hq_key(d);
    card_key(d);
    std::fs::create_dir_all(d.join("keys")).unwrap();
    passwords(d, ["hq", "viewer"], PW);
    let key = PublicKey::read(&d.join("hq.pub")).unwrap();
    let port = free_port();
    // A snapshot every 2 s (HqConfig::for_dashboard): the reader sees the next one come.
    let whole = HqConfig::for_dashboard();
    std::fs::write(d.join("broker.toml"), whole.embedded(port)).unwrap();
    std::fs::write(d.join("hq.toml"), whole.external(port, PW)).unwrap();
    let _broker = hq_broker(d);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // The town's snapshot in one message, retained on `status`.
    let mut first = hq(d);
    let old_seq = rt.block_on(whole_snapshot(port, &key));
    first.kill();

    // The same town in parts (as a town that grew past the bound).
    let parts = HqConfig {
        status_part_bytes: Some(4096),
        ..HqConfig::for_dashboard()
    };
    std::fs::write(d.join("hq.toml"), parts.external(port, PW)).unwrap();
    let _second = hq(d);
    let (state, on_status) = rt.block_on(parts_then_status(port, key));
    assert!(state.seq.is_some_and(|s| s > old_seq), "{:?}", state.seq);
    assert!(
        on_status.iter().all(|(_, snapshot, _)| !snapshot),
        "the whole snapshot still retained on status after the parts: {on_status:?}"
    );
    // Deltas made between the parts and the subscription are missed (a gap the reader
    // waits out until the next snapshot); nothing else may be refused, and HQ's clear of
    // the whole snapshot, if it comes live, is nothing.
    assert!(
        on_status
            .iter()
            .all(|(_, _, r)| matches!(r, Ok(_) | Err(Reject::Gap))),
        "{on_status:?}"
    );
}
