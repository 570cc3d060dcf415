use super::*;
use crate::ids::{ShelterId, Slug};
use crate::messages::ack::HQ_SIGNER;
use crate::messages::status::{AnswerKind, ResidentStatus};
use crate::sign::{SecretKey, Signed};

fn snapshot(seq: u64, n: u32, answers: u32) -> StatusSnapshot {
    let statuses: Vec<ResidentStatus> = (0..n)
        .map(|i| match i % 4 {
            0 => ResidentStatus::UnderOrder,
            1 => ResidentStatus::Arrived {
                shelter: ShelterId(i % 300),
                unverified: false,
            },
            2 => ResidentStatus::CheckedOut {
                shelter: ShelterId(200),
                unverified: true,
            },
            _ => ResidentStatus::Found,
        })
        .collect();
    StatusSnapshot {
        town: Slug::new("minato").unwrap(),
        seq,
        at_ms: 1_000 + seq,
        counts: StatusCounts {
            residents: n,
            ..Default::default()
        },
        shelters: vec![],
        residents: PackedStatuses::pack(ResidentId(7), &statuses),
        answers: (0..answers)
            .map(|h| HouseholdAnswer {
                household: h,
                kind: AnswerKind::SafeAtHome,
                people: None,
                at_ms: 5,
                needs_confirmation: false,
                handled: None,
                confirmed: None,
            })
            .collect(),
    }
}

fn join_all(parts: Vec<StatusPart>) -> Option<StatusSnapshot> {
    let mut j = Joiner::new();
    let mut out = None;
    for p in parts {
        out = j.take(p).unwrap();
    }
    out
}

#[test]
fn split_then_join_gives_the_snapshot_back_in_any_order() {
    let snap = snapshot(3, 20_000, 500);
    let mut parts = split(&snap, 4_096).unwrap();
    assert!(parts.len() >= 3, "{}", parts.len());
    assert!(parts.iter().all(|p| p.parts == parts.len() as u32));
    parts.reverse();
    assert_eq!(join_all(parts), Some(snap.clone()));
    let one = split(&snap, usize::MAX / 2).unwrap();
    assert_eq!(one.len(), 2, "residents, then answers");
    let empty = snapshot(1, 0, 0);
    assert_eq!(join_all(split(&empty, 1_000).unwrap()), Some(empty));
}

#[test]
fn a_missing_part_waits_and_parts_of_two_seqs_never_join() {
    let old = split(&snapshot(3, 20_000, 0), 4_096).unwrap();
    let new = split(&snapshot(4, 20_000, 0), 4_096).unwrap();
    assert_eq!(old.len(), new.len());
    let n = new.len();
    let mut j = Joiner::new();
    // The newest parts but the last, then the old set's missing one: still waiting.
    for p in &new[..n - 1] {
        assert_eq!(j.take(p.clone()).unwrap(), None);
    }
    assert_eq!(j.take(old[n - 1].clone()).unwrap(), None);
    assert_eq!(j.progress(), (n - 1, Some(n as u32)));
    // The old set whole, after the new one started: dropped.
    for p in &old {
        assert_eq!(j.take(p.clone()).unwrap(), None);
    }
    let got = j.take(new[n - 1].clone()).unwrap().expect("complete");
    assert_eq!(got.seq, 4);
    // Old parts first, then a newer part: the old set is dropped, never mixed.
    let mut j = Joiner::new();
    for p in &old[..n - 1] {
        j.take(p.clone()).unwrap();
    }
    j.take(new[0].clone()).unwrap();
    assert_eq!(j.take(old[n - 1].clone()).unwrap(), None);
    assert_eq!(j.progress(), (1, Some(n as u32)));
    // Parts of the snapshot already given are not gathered again.
    let mut j = Joiner::new();
    assert!(
        new.iter()
            .map(|p| j.take(p.clone()).unwrap())
            .last()
            .flatten()
            .is_some()
    );
    assert_eq!(j.take(new[0].clone()).unwrap(), None);
    assert_eq!(j.progress(), (0, None));
}

#[test]
fn parts_that_disagree_or_are_out_of_bounds_are_refused() {
    let parts = split(&snapshot(3, 20_000, 0), 4_096).unwrap();
    let mut j = Joiner::new();
    j.take(parts[0].clone()).unwrap();
    let mut odd = parts[1].clone();
    odd.at_ms += 1;
    assert!(matches!(j.take(odd), Err(PartError::Mismatch { .. })));
    let mut big = parts[0].clone();
    big.part = big.parts;
    assert!(matches!(j.take(big), Err(PartError::Bounds { .. })));
    // A part whose range overlaps the one before: the set does not join.
    let mut shifted = parts.clone();
    shifted[1].statuses.first.0 -= 1;
    let mut j = Joiner::new();
    let last = shifted.into_iter().map(|p| j.take(p)).last().unwrap();
    assert!(matches!(last, Err(PartError::Mismatch { .. })), "{last:?}");
}

#[test]
fn a_part_signed_by_another_key_is_refused_and_every_signed_part_is_bounded() {
    let hq = SecretKey::from_seed(&[1; 32]);
    let forger = SecretKey::from_seed(&[2; 32]);
    let snap = snapshot(9, 1_000_000, 60_000);
    let parts = split(&snap, PART_BUDGET).unwrap();
    assert!(parts.len() >= 3);
    for p in &parts {
        let wire = hq.sign(HQ_SIGNER, p).unwrap().to_json().unwrap();
        assert!(wire.len() <= SINGLE_MAX + (64 << 10), "{}", wire.len());
        assert!(wire.len() <= crate::MAX_MESSAGE);
    }
    let wire = forger
        .sign(HQ_SIGNER, &parts[0])
        .unwrap()
        .to_json()
        .unwrap();
    let opened = Signed::<StatusPart>::from_json(wire.as_bytes())
        .unwrap()
        .open(&hq.public());
    assert!(opened.is_err());
}
