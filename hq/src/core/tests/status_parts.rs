//! Issue 22: HQ's own snapshot in signed parts.

use evac_maps::Town;
use evac_protocol::messages::status_parts::{Joiner, SINGLE_MAX};
use evac_protocol::{StatusMessage, StatusPart, StatusSnapshot};

use super::*;

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

/// The snapshot of `msgs`: the one on `status`, else the parts on `status/part/{i}` joined
/// as a reader joins them (each checked with `hq`); with the count of parts.
fn snapshot_of(msgs: &[Publication], hq: &PublicKey) -> (StatusSnapshot, usize) {
    let mut joiner = Joiner::new();
    let mut parts = 0;
    for m in msgs {
        if m.topic.ends_with("/status") {
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
    let (mut hq, public, _dir) = open(town);
    let one = hq.snapshot(1_000_000).unwrap();
    assert_eq!(one.len(), 1, "the default bound: one message");
    assert!(one[0].payload.len() < SINGLE_MAX);
    let (whole, _) = snapshot_of(&one, &public);
    hq.set_status_part_bytes(4 << 10);
    // The periodic snapshot of HQ's tick, as the service makes it.
    let out = hq.tick(1_001_000, true).unwrap();
    assert!(out.iter().all(|m| !m.topic.ends_with("/status")));
    let (joined, parts) = snapshot_of(&out, &public);
    assert!(parts >= 3, "{parts} parts");
    assert!(joined.seq > whole.seq);
    assert_eq!(joined.residents, whole.residents);
    assert_eq!(joined.counts, whole.counts);
    assert_eq!(joined.shelters, whole.shelters);
    // Out of range: taken to the nearest bound, never past the default.
    hq.set_status_part_bytes(1);
    let at_least = snapshot_of(&hq.snapshot(1_002_000).unwrap(), &public).1;
    assert_eq!(at_least, parts);
    hq.set_status_part_bytes(usize::MAX);
    assert_eq!(hq.snapshot(1_003_000).unwrap().len(), 1);
}
