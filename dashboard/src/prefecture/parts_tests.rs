//! Issue 22 at the prefecture: a town whose snapshot passes the one-message bound comes up
//! the bridge in signed parts, and the prefecture joins them as the town dashboard does.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use evac_protocol::messages::status_parts::{PART_BUDGET, SINGLE_MAX};
use evac_protocol::{ResidentId, ResidentStatus, ShelterId};

use super::fixture::{NOW, at, parts, prefecture, snapshot};

/// `n` residents, a third under order, the rest arrived at one of 400 shelters.
fn mixed(n: u32) -> Vec<ResidentStatus> {
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

/// A town of 400,000 residents, past the bound, cut as HQ cuts it: every part in (any
/// order) and the town shows with its counts and every resident, beside a town that still
/// sends one message.
#[test]
fn a_town_in_parts_shows_at_the_prefecture() {
    const N: u32 = 400_000;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, a, b) = prefecture(dir.path());
    let want = mixed(N);
    let set = parts("minato", &a, 1, &want, PART_BUDGET);
    let whole: usize = set.iter().map(|(_, w)| w.len()).sum();
    assert!(whole > SINGLE_MAX, "{whole} bytes: not a town HQ would cut");
    assert!(set.len() >= 3, "{} parts", set.len());
    assert!(
        set.iter()
            .all(|(_, w)| w.len() <= evac_protocol::MAX_MESSAGE)
    );
    p.on_message(
        "pref/36/shiomihama/evac/v1/shiomihama/status",
        &snapshot("shiomihama", &b, 7),
        at(NOW),
    );
    for (t, w) in set.iter().rev() {
        assert!(
            p.rows(at(NOW))[0].counts.is_none(),
            "shown before every part"
        );
        p.on_message(t, w, at(NOW));
    }
    assert_eq!(p.refused, 0);
    assert!(p.complete());
    let rows = p.rows(at(NOW + 1_000));
    let c = rows[0].counts.as_ref().unwrap();
    assert_eq!((c.residents, c.under_order), (N, N.div_ceil(3)));
    assert_eq!(c.arrived, N - N.div_ceil(3));
    assert!(!rows[0].stale, "{rows:?}");
    assert_eq!(rows[0].shelters_online, (1, 1), "part 0's shelters");
    assert_eq!(rows[1].counts.as_ref().unwrap().under_order, 7);
    let s = &p.towns[0].state;
    for r in [1, 2, 3, N / 2, N - 1, N] {
        assert_eq!(
            s.statuses.get(ResidentId(r)),
            Some(want[r as usize - 1]),
            "{r}"
        );
    }
}

/// Snapshot 1 and 2 of a town arrive interleaved (the bridge's retained parts of the older
/// one beside the newer): no row is made of both, and the newer shows once it is whole.
#[test]
fn parts_of_two_snapshots_never_mix_at_the_prefecture() {
    const N: u32 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, a, _) = prefecture(dir.path());
    let first = vec![ResidentStatus::UnderOrder; N as usize];
    let second = mixed(N);
    let old = parts("minato", &a, 1, &first, 1_024);
    let new = parts("minato", &a, 2, &second, 1_024);
    assert!(
        old.len() >= 2 && new.len() >= 3,
        "{} {}",
        old.len(),
        new.len()
    );
    // The old set but its last part, the new set but its last part, the old last part: each
    // set misses a part the other has.
    let (old_last, last) = (old.len() - 1, new.len() - 1);
    for (t, w) in old[..old_last]
        .iter()
        .chain(&new[..last])
        .chain(&old[old_last..])
    {
        p.on_message(t, w, at(NOW));
    }
    assert_eq!(p.refused, 0);
    assert!(
        p.rows(at(NOW))[0].counts.is_none(),
        "a row of two snapshots"
    );
    p.on_message(&new[last].0, &new[last].1, at(NOW + 62_000));
    let rows = p.rows(at(NOW + 62_500));
    let c = rows[0].counts.as_ref().unwrap();
    assert_eq!((c.under_order, c.arrived), (N / 3, N - N / 3));
    let s = &p.towns[0].state;
    assert_eq!(s.seq, Some(2));
    for r in 1..=N {
        assert_eq!(
            s.statuses.get(ResidentId(r)),
            Some(second[r as usize - 1]),
            "{r}"
        );
    }
    // The old set, whole again (a bridge's retained parts at a new subscription): nothing
    // changes, nothing refused.
    for (t, w) in &old {
        p.on_message(t, w, at(NOW + 63_000));
    }
    assert_eq!(p.towns[0].state.seq, Some(2));
    assert_eq!(p.refused, 0);
}

/// A part signed by another town's HQ, a town's part under another's prefix and a part on
/// another part's topic are refused and counted; the town's own parts still make its row.
#[test]
fn a_forged_or_misplaced_part_is_refused_at_the_prefecture() {
    const N: u32 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, a, b) = prefecture(dir.path());
    let want = mixed(N);
    let good = parts("minato", &a, 1, &want, 1_024);
    let forged = parts("minato", &b, 1, &want, 1_024);
    let last = good.len() - 1;
    for (t, w) in &good[..last] {
        p.on_message(t, w, at(NOW));
    }
    // Signed by shiomihama's HQ, on minato's topic.
    p.on_message(&forged[last].0, &forged[last].1, at(NOW));
    // Minato's genuine part under shiomihama's prefix.
    p.on_message(
        &good[last]
            .0
            .replace("pref/36/minato/", "pref/36/shiomihama/"),
        &good[last].1,
        at(NOW),
    );
    // Minato's last part on the topic of its part 0.
    p.on_message(&good[0].0, &good[last].1, at(NOW));
    assert_eq!(p.refused, 3);
    assert!(p.rows(at(NOW))[0].counts.is_none());
    assert!(p.rows(at(NOW))[1].counts.is_none());
    p.on_message(&good[last].0, &good[last].1, at(NOW));
    assert_eq!(p.refused, 3);
    let c = p.rows(at(NOW))[0].counts.clone().unwrap();
    assert_eq!(c.under_order, N / 3);
}

/// A town gone to parts: HQ clears the whole snapshot it left retained on `status` with an
/// empty retained message. Joined parts first, then that empty message (as a reader that
/// subscribed to the parts first gets them): nothing refused, the parts' picture stays. The
/// old whole snapshot itself, had it stayed, would be refused as a replay.
#[test]
fn an_empty_status_that_clears_the_whole_snapshot_is_nothing_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, a, _) = prefecture(dir.path());
    for (t, w) in parts("minato", &a, 2, &mixed(3_000), 1_024) {
        p.on_message(&t, &w, at(NOW));
    }
    assert_eq!(p.towns[0].state.seq, Some(2));
    let status = "pref/36/minato/evac/v1/minato/status";
    p.on_message(status, b"", at(NOW + 100));
    assert_eq!(p.refused, 0);
    assert_eq!(p.towns[0].state.seq, Some(2));
    assert!(p.rows(at(NOW + 200))[0].counts.is_some());
    p.on_message(status, &snapshot("minato", &a, 1), at(NOW + 300));
    assert_eq!(p.refused, 1, "the old whole snapshot: a replay");
}
