//! Issue 22: a large town's snapshot in signed parts, as HQ cuts it, followed by the dashboard.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use super::*;
use evac_protocol::messages::status_parts::{PART_BUDGET, split};
use evac_protocol::{HQ_SIGNER, PackedStatuses, ResidentChange, SecretKey, Slug, StatusDelta};

const NOW: u64 = 1_795_000_000_000;

fn hq() -> SecretKey {
    SecretKey::from_seed(&[1; 32])
}

fn town() -> TownId {
    Slug::new("minato").unwrap()
}

fn statuses(n: u32) -> Vec<ResidentStatus> {
    (0..n)
        .map(|i| match i % 3 {
            0 => ResidentStatus::UnderOrder,
            _ => ResidentStatus::Arrived {
                shelter: ShelterId(1 + i % 400),
                unverified: false,
            },
        })
        .collect()
}

fn parts(seq: u64, n: u32) -> Vec<(String, Vec<u8>)> {
    let snap = evac_protocol::StatusSnapshot {
        town: town(),
        seq,
        at_ms: NOW + seq,
        counts: StatusCounts {
            residents: n,
            ..Default::default()
        },
        shelters: vec![],
        residents: PackedStatuses::pack(ResidentId(1), &statuses(n)),
        answers: vec![],
    };
    split(&snap, PART_BUDGET)
        .unwrap()
        .iter()
        .map(|p| {
            let topic = Topic::StatusPart(town(), p.part as u16).to_string();
            let wire = hq().sign(HQ_SIGNER, p).unwrap().to_json().unwrap();
            assert!(wire.len() <= evac_protocol::MAX_MESSAGE);
            (topic, wire.into_bytes())
        })
        .collect()
}

#[test]
fn the_dashboard_follows_a_snapshot_in_parts_and_never_mixes_two() {
    const N: u32 = 1_000_000;
    let old = parts(5, N);
    let new = parts(6, N);
    assert!(new.len() >= 3, "{} parts", new.len());
    let mut s = TownState::new(town(), hq().public(), None);
    // A late reader: the newest snapshot's parts but the last, and one left of an older one.
    for (t, p) in &new[..new.len() - 1] {
        assert_eq!(s.on_message(t, p, NOW), Ok(Applied::Same));
    }
    let (t, p) = &old[old.len() - 1];
    assert_eq!(s.on_message(t, p, NOW), Ok(Applied::Same));
    assert_eq!(s.seq, None, "no picture from an incomplete set");
    // A forged last part: refused, still waiting.
    let forged = SecretKey::from_seed(&[9; 32]);
    let last = &new[new.len() - 1];
    let body: evac_protocol::StatusPart = evac_protocol::Signed::from_json(&last.1)
        .unwrap()
        .body_unverified()
        .unwrap();
    let bad = forged.sign(HQ_SIGNER, &body).unwrap().to_json().unwrap();
    assert_eq!(
        s.on_message(&last.0, bad.as_bytes(), NOW),
        Err(Reject::Signature)
    );
    assert_eq!(s.seq, None);
    // A part on another part's topic: refused.
    assert_eq!(s.on_message(&new[0].0, &last.1, NOW), Err(Reject::Topic));
    assert_eq!(s.on_message(&last.0, &last.1, NOW), Ok(Applied::Snapshot));
    assert_eq!(s.seq, Some(6));
    assert_eq!(s.counts.residents, N);
    let want = statuses(N);
    for r in [1, 2, 500_000, N] {
        assert_eq!(
            s.statuses.get(ResidentId(r)),
            Some(want[r as usize - 1]),
            "{r}"
        );
    }
    // Deltas apply to the joined snapshot; the old set, whole again, changes nothing.
    let d = StatusMessage::Delta(StatusDelta {
        town: town(),
        seq: 7,
        at_ms: NOW + 7,
        counts: StatusCounts::default(),
        shelters: vec![],
        residents: vec![ResidentChange {
            resident: ResidentId(N),
            status: ResidentStatus::Found,
        }],
        answers: vec![],
        answers_removed: vec![],
    });
    let d = hq().sign(HQ_SIGNER, &d).unwrap().to_json().unwrap();
    assert_eq!(
        s.on_message("evac/v1/minato/status", d.as_bytes(), NOW),
        Ok(Applied::Delta)
    );
    for (t, p) in &old {
        assert_eq!(s.on_message(t, p, NOW), Ok(Applied::Same));
    }
    assert_eq!(s.seq, Some(7));
    assert_eq!(s.statuses.get(ResidentId(N)), Some(ResidentStatus::Found));
}
