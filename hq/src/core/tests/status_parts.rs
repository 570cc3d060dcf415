//! Issue 22: HQ's own snapshot in signed parts, and every message HQ makes at 1,000,000
//! residents within the 1 MiB bound ([`assert_bounded`]).

use evac_maps::Town;
use evac_protocol::messages::status_parts::{Joiner, SINGLE_MAX};
use evac_protocol::{AlertLevel, Hazard, StatusMessage, StatusPart, StatusSnapshot};

use super::*;
use crate::notice::{Area, Notice};

fn open(town: Town) -> (Hq, PublicKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[2; 32]);
    let public = key.public();
    let hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        Store::open(&dir.path().join("hq.sqlite")).unwrap(),
        KeyRing::default(),
        key,
        60_000,
        1_000_000,
    )
    .unwrap();
    (hq, public, dir)
}

/// The ids of `town`'s tsunami zones.
fn tsunami_zones(town: &Town) -> Vec<u32> {
    town.zones
        .iter()
        .filter(|z| z.hazard == evac_maps::Hazard::Tsunami)
        .map(|z| z.id)
        .collect()
}

/// A tsunami level 4 notice for `zones`.
fn notice(zones: Vec<u32>) -> Notice {
    Notice {
        name: "t".into(),
        hazard: Hazard::Tsunami,
        level: AlertLevel::Level4,
        area: Area {
            zones,
            ..Area::default()
        },
        issued: 1_000,
        expires: 100_000,
        onset: None,
        effective: None,
        drill: false,
        source: "test".into(),
        cap: None,
    }
}

/// The snapshot of `msgs`: the one on `status`, else the parts on `status/part/{i}` joined
/// as a reader joins them (each checked with `hq`); with the count of parts.
fn snapshot_of(msgs: &[Publication], hq: &PublicKey) -> (StatusSnapshot, usize) {
    let mut joiner = Joiner::new();
    let mut parts = 0;
    for m in msgs {
        if m.topic.ends_with("/status") && m.payload.is_empty() {
            // The clear of a whole snapshot left retained: nothing to read.
            assert!(m.retain);
        } else if m.topic.ends_with("/status") {
            let s = Signed::<StatusMessage>::from_json(&m.payload).unwrap();
            if let StatusMessage::Snapshot(s) = s.open(hq).unwrap() {
                assert!(m.retain);
                return (s, 0);
            }
        } else if let Some(i) = m.topic.split("/status/part/").nth(1) {
            assert!(m.retain, "{}", m.topic);
            let p: StatusPart = Signed::from_json(&m.payload).unwrap().open(hq).unwrap();
            assert_eq!(p.part.to_string(), i);
            parts += 1;
            if let Some(s) = joiner.take(p).unwrap() {
                return (s, parts);
            }
        }
    }
    panic!("no whole snapshot in {} messages", msgs.len());
}

#[test]
fn a_lowered_part_bound_cuts_hqs_snapshot_into_parts_that_join_whole() {
    let town = generate(&GenerateParams {
        households: 3_000,
        shelters: 20,
        seed: 3,
    });
    let zones = tsunami_zones(&town);
    let (mut hq, public, _dir) = open(town);
    let one = hq.snapshot(1_000_000).unwrap();
    assert_eq!(one.len(), 1, "the default bound: one message");
    assert!(one[0].payload.len() < SINGLE_MAX);
    let (whole, _) = snapshot_of(&one, &public);
    hq.set_status_part_bytes(4 << 10);
    // The periodic snapshot of HQ's tick, as the service makes it.
    let out = hq.tick(1_001_000, true).unwrap();
    // No snapshot on `status`: an empty retained message there instead, before the parts,
    // clears the whole one a reader would otherwise find retained, older than the parts.
    let on_status: Vec<_> = out
        .iter()
        .filter(|m| m.topic.ends_with("/status"))
        .collect();
    assert_eq!(on_status.len(), 1, "{on_status:?}");
    assert!(on_status[0].payload.is_empty() && on_status[0].retain);
    let clear_at = out.iter().position(|m| m.topic.ends_with("/status"));
    let first_part = out.iter().position(|m| m.topic.contains("/status/part/"));
    assert!(clear_at < first_part, "the clear before the parts");
    let (joined, parts) = snapshot_of(&out, &public);
    assert!(parts >= 3, "{parts} parts");
    assert!(joined.seq > whole.seq);
    assert_eq!(joined.residents, whole.residents);
    assert_eq!(joined.counts, whole.counts);
    assert_eq!(joined.shelters, whole.shelters);
    // An order's change, a delta past the bound: a snapshot in parts instead.
    let (report, _) = hq.issue(notice(zones), None, 1_001_500).unwrap();
    assert!(report.orders > 50, "{} orders", report.orders);
    let out = hq.tick(1_001_600, false).unwrap();
    assert!(
        out.iter()
            .all(|m| !m.topic.ends_with("/status") || m.payload.is_empty())
    );
    let (after, at_4k) = snapshot_of(&out, &public);
    assert!(after.counts.under_order as usize >= report.orders);
    // Out of range: taken to the nearest bound, never past the default.
    hq.set_status_part_bytes(1);
    let at_least = snapshot_of(&hq.snapshot(1_002_000).unwrap(), &public).1;
    assert_eq!(at_least, at_4k);
    hq.set_status_part_bytes(usize::MAX);
    assert_eq!(hq.snapshot(1_003_000).unwrap().len(), 1);
}

/// HQ's output at 1,000,000 residents: everything it publishes at a connection (its snapshot
/// in parts), the orders for the tsunami zones, the tick after them (its delta too large:
/// a snapshot in parts) and a periodic snapshot, every message within 1 MiB (the whole
/// registry exempt until it is retired).
#[test]
fn hqs_output_at_a_million_residents_stays_within_one_mib() {
    let town = generate(&GenerateParams {
        households: 440_000,
        shelters: 400,
        seed: 5,
    });
    let residents: usize = town.households.iter().map(|h| h.members.len()).sum();
    assert!(residents >= 1_000_000, "{residents} residents");
    let zones = tsunami_zones(&town);
    let (mut hq, public, _dir) = open(town);
    let out = hq.on_connect(1_000_000).unwrap();
    assert_bounded(&out);
    let (snap, parts) = snapshot_of(&out, &public);
    assert!(parts >= 3, "{parts} parts");
    assert_eq!(snap.residents.count as usize, residents);
    let (report, out) = hq.issue(notice(zones), None, 1_001_000).unwrap();
    assert!(report.orders > 10_000, "{} orders", report.orders);
    assert_bounded(&out);
    // The order's change, 16 MB as a delta: a snapshot in parts instead.
    let delta = hq.tick(1_002_000, false).unwrap();
    assert_bounded(&delta);
    let (snap, parts) = snapshot_of(&delta, &public);
    assert!(parts >= 3, "{parts} parts");
    assert!(snap.counts.under_order as usize > report.orders);
    let full = hq.tick(1_003_000, true).unwrap();
    assert_bounded(&full);
    assert!(snapshot_of(&full, &public).1 >= 3);
    // A reconnection with the orders in force: all of it fits HQ's client's inflight window
    // with room to spare, or the client stops reading HQ's acks of the shelters' events while
    // the broker waits for them (the city drill's reconnection loop after HQ's restart).
    let again = hq.on_connect(1_004_000).unwrap();
    assert_bounded(&again);
    assert!(
        again.len() * 4 < usize::from(crate::service::HQ_INFLIGHT),
        "{} messages at a connection",
        again.len()
    );
}
