use super::*;
use evac_maps::{GenerateParams, generate};
use evac_protocol::Flag;

fn ev(
    shelter: u32,
    seq: u64,
    wall: u64,
    kind: EventKind,
    resident: Option<u32>,
    card: Option<CardRef>,
) -> CheckEvent {
    CheckEvent {
        card,
        resident: resident.map(ResidentId),
        assurance: Assurance::CardRead,
        ..CheckEvent::new(ShelterId(shelter), seq, wall, kind)
    }
}

fn town() -> Town {
    generate(&GenerateParams {
        households: 50,
        shelters: 4,
        seed: 3,
    })
}

fn picture(b: &StatusBoard, t: &Town) -> Picture {
    let n = t.shelters.len();
    b.picture(
        10_000,
        1_000,
        &vec![None; t.households.len()],
        &vec![true; n],
        &vec![0; n],
    )
}

#[test]
fn same_person_at_two_shelters_counts_at_the_later_one() {
    let t = town();
    let (a, b) = (t.shelters[0].id, t.shelters[1].id);
    let mut board = StatusBoard::new(&t);
    // The later check-in (at B) reaches HQ first.
    board.apply(&ev(b, 1, 2_000, EventKind::CheckIn, Some(1), None));
    board.apply(&ev(a, 1, 1_000, EventKind::CheckIn, Some(1), None));
    let p = picture(&board, &t);
    assert_eq!(
        p.statuses[0],
        ResidentStatus::Arrived {
            shelter: ShelterId(b),
            unverified: false,
        }
    );
    assert_eq!(p.shelters[0].present_day, 0);
    assert_eq!(p.shelters[1].present_day, 1);
    assert_eq!(p.counts.arrived, 1);
}

#[test]
fn checkout_found_correction_and_unregistered_cards() {
    let t = town();
    let s = t.shelters[0].id;
    let mut board = StatusBoard::new(&t);
    board.apply(&ev(s, 1, 1_000, EventKind::CheckIn, Some(2), None));
    board.apply(&ev(s, 2, 2_000, EventKind::CheckOut, Some(2), None));
    board.mark_found(
        ResidentId(3),
        Timestamp {
            wall_ms: 500,
            logical: 0,
            node: 0,
        },
    );
    let visitor = CardRef {
        issuer_key_id: vec![9],
        serial: vec![9],
    };
    let mut e = ev(s, 3, 3_000, EventKind::CheckIn, None, Some(visitor.clone()));
    e.flags = vec![Flag::Unregistered];
    board.apply(&e);
    board.apply(&ev(s, 4, 3_100, EventKind::CheckIn, Some(4), None));
    let mut corr = ev(s, 5, 3_200, EventKind::Correction, None, None);
    corr.corrects = Some(EventId {
        shelter: ShelterId(s),
        seq: 4,
    });
    board.apply(&corr);
    let p = picture(&board, &t);
    assert_eq!(
        p.statuses[1],
        ResidentStatus::CheckedOut {
            shelter: ShelterId(s),
            unverified: false,
        }
    );
    assert_eq!(p.statuses[2], ResidentStatus::Found);
    assert_eq!(p.statuses[3], ResidentStatus::NotOrdered);
    assert_eq!((p.counts.unregistered, p.counts.flagged), (1, 1));
    assert_eq!(p.shelters[0].present_day, 1, "the visitor");
    // Linking the visitor's card makes them resident 5, arrived.
    assert!(board.link_card(&visitor, ResidentId(5)));
    let p = picture(&board, &t);
    assert_eq!(
        p.statuses[4],
        ResidentStatus::Arrived {
            shelter: ShelterId(s),
            unverified: false,
        }
    );
    assert_eq!(p.counts.unregistered, 0);
    // A later check-in beats an earlier found mark.
    board.apply(&ev(s, 6, 4_000, EventKind::CheckIn, Some(3), None));
    assert_eq!(
        picture(&board, &t).statuses[2],
        ResidentStatus::Arrived {
            shelter: ShelterId(s),
            unverified: false,
        }
    );
}

#[test]
fn presence_decided_by_a_card_that_failed_a_check_is_shown_as_such() {
    let t = town();
    let s = t.shelters[0].id;
    let mut board = StatusBoard::new(&t);
    // A card whose challenge failed (a copy?) checks resident 1 in.
    let mut copied = ev(s, 1, 1_000, EventKind::CheckIn, Some(1), None);
    copied.assurance = Assurance::Unverified;
    copied.flags = vec![Flag::CardSignatureFailed];
    board.apply(&copied);
    // A good card checks resident 2 in; then a copy of it checks them out.
    board.apply(&ev(s, 2, 1_100, EventKind::CheckIn, Some(2), None));
    let mut out = ev(s, 3, 1_200, EventKind::CheckOut, Some(2), None);
    out.assurance = Assurance::Unverified;
    board.apply(&out);
    let p = picture(&board, &t);
    let at = |unverified| ResidentStatus::Arrived {
        shelter: ShelterId(s),
        unverified,
    };
    assert_eq!(p.statuses[0], at(true));
    assert_eq!(
        p.statuses[1],
        ResidentStatus::CheckedOut {
            shelter: ShelterId(s),
            unverified: true,
        }
    );
    assert_eq!((p.counts.arrived, p.counts.checked_out), (1, 1));
    assert_eq!(p.counts.unverified, 2);
    // Resident 1 taps again with a card that passes: no longer in doubt.
    board.apply(&ev(s, 4, 2_000, EventKind::CheckIn, Some(1), None));
    let p = picture(&board, &t);
    assert_eq!(p.statuses[0], at(false));
    assert_eq!(p.counts.unverified, 1);
}

#[test]
fn a_correction_voids_only_its_own_shelters_events() {
    let t = town();
    let (a, b) = (t.shelters[0].id, t.shelters[1].id);
    let mut board = StatusBoard::new(&t);
    board.apply(&ev(b, 1, 1_000, EventKind::CheckIn, Some(1), None));
    // Shelter A "corrects" B's event 1 and B's future event 2.
    for seq in [1, 2] {
        let mut corr = ev(a, seq, 1_500, EventKind::Correction, None, None);
        corr.corrects = Some(EventId {
            shelter: ShelterId(b),
            seq,
        });
        board.apply(&corr);
    }
    board.apply(&ev(b, 2, 2_000, EventKind::CheckIn, Some(2), None));
    let p = picture(&board, &t);
    let at_b = ResidentStatus::Arrived {
        shelter: ShelterId(b),
        unverified: false,
    };
    assert_eq!((p.statuses[0], p.statuses[1]), (at_b, at_b));
    assert_eq!(p.shelters[1].present_day, 2);
}

#[test]
fn an_event_dated_far_ahead_is_flagged_and_decides_nothing() {
    let t = town();
    let s = t.shelters[0].id;
    let mut board = StatusBoard::new(&t);
    let ten_years = 10 * 365 * 24 * 3600 * 1000;
    let now = 1_000_000;
    assert!(board.apply_received(&ev(s, 1, now, EventKind::CheckIn, Some(1), None), now));
    let ahead = ev(s, 2, now + ten_years, EventKind::CheckOut, Some(1), None);
    assert!(!board.apply_received(&ahead, now));
    // Just inside the bound still counts.
    let near = ev(
        s,
        3,
        now + MAX_CLOCK_SKEW_MS,
        EventKind::CheckIn,
        Some(2),
        None,
    );
    assert!(board.apply_received(&near, now));
    let p = picture(&board, &t);
    assert_eq!(
        p.statuses[0],
        ResidentStatus::Arrived {
            shelter: ShelterId(s),
            unverified: false,
        },
        "the check-out from the future decides nothing"
    );
    assert_eq!(p.counts.flagged, 1);
    assert_eq!(board.nodes()[&ShelterId(s)].skewed, 1);
    // A found mark made after a real check-in wins, as it would without the future event.
    board.mark_found(
        ResidentId(1),
        Timestamp {
            wall_ms: now + 1,
            logical: 0,
            node: 0,
        },
    );
    assert_eq!(picture(&board, &t).statuses[0], ResidentStatus::Found);
}

#[test]
fn each_shelter_reports_its_flagged_check_ins_and_since_when_it_has_been_quiet() {
    let t = town();
    let (a, b) = (t.shelters[0].id, t.shelters[1].id);
    let mut board = StatusBoard::new(&t);
    let now = 1_000_000;
    let mut flagged = ev(a, 1, now, EventKind::CheckIn, Some(1), None);
    flagged.flags = vec![evac_protocol::Flag::Expired];
    board.apply_received(&flagged, now);
    board.apply_received(&ev(b, 1, now, EventKind::CheckIn, Some(2), None), now);
    board.node_mut(ShelterId(a)).last_seen_ms = Some(now);
    board.node_mut(ShelterId(b)).last_seen_ms = Some(now + 50_000);
    let n = t.shelters.len();
    let p = board.picture(now + 90_000, 3_600_000, &[], &vec![true; n], &vec![0; n]);
    let of = |s: u32| {
        p.shelters
            .iter()
            .find(|x| x.shelter == ShelterId(s))
            .unwrap()
    };
    assert_eq!((of(a).flagged, of(b).flagged), (1, 0));
    assert_eq!(p.counts.flagged, 1);
    // a said nothing for 90 s: since when; b spoke 40 s ago: nothing to say.
    assert_eq!(of(a).quiet_since_ms, Some(now));
    assert_eq!(of(b).quiet_since_ms, None);
    // Never heard from: no time (the dashboard goes by "offline").
    assert!(
        p.shelters
            .iter()
            .filter(|x| ![a, b].contains(&x.shelter.0))
            .all(|x| x.quiet_since_ms.is_none())
    );
}

#[test]
fn ordered_residents_become_unaccounted_when_overdue() {
    let t = town();
    let board = StatusBoard::new(&t);
    let mut ordered = vec![None; t.households.len()];
    ordered[0] = Some(9_500);
    ordered[1] = Some(1_000);
    let n = t.shelters.len();
    let p = board.picture(10_000, 1_000, &ordered, &vec![true; n], &vec![0; n]);
    let h0 = t.households[0].members.len();
    assert_eq!(p.statuses[0], ResidentStatus::UnderOrder);
    assert_eq!(p.statuses[h0], ResidentStatus::Unaccounted);
}

#[test]
fn feed_makes_snapshot_then_only_changes() {
    let t = town();
    let mut board = StatusBoard::new(&t);
    let town_id = TownId::new("minato").unwrap();
    let mut feed = StatusFeed::default();
    let first = board.first_resident();
    let StatusMessage::Snapshot(snap) = feed.snapshot(&town_id, first, 1, picture(&board, &t))
    else {
        panic!()
    };
    assert_eq!(snap.residents.unpack().unwrap().len(), board.tracks.len());
    assert!(
        feed.delta(&town_id, first, 2, picture(&board, &t))
            .is_none()
    );
    board.apply(&ev(
        t.shelters[0].id,
        1,
        1_000,
        EventKind::CheckIn,
        Some(7),
        None,
    ));
    let Some(StatusMessage::Delta(d)) = feed.delta(&town_id, first, 3, picture(&board, &t)) else {
        panic!()
    };
    assert_eq!(d.seq, 2);
    assert_eq!(d.residents.len(), 1);
    assert_eq!(d.residents[0].resident, ResidentId(7));
    assert_eq!(d.shelters.len(), 1);
}

#[test]
fn a_snapshot_is_due_only_after_deltas_and_spaced() {
    let t = town();
    let mut board = StatusBoard::new(&t);
    let town_id = TownId::new("minato").unwrap();
    let mut feed = StatusFeed::default();
    let first = board.first_resident();
    feed.snapshot(&town_id, first, 1_000, picture(&board, &t));
    assert!(!feed.catch_up_due(100_000, 5_000), "nothing missed yet");
    board.apply(&ev(
        t.shelters[0].id,
        1,
        1_000,
        EventKind::CheckIn,
        Some(7),
        None,
    ));
    assert!(
        feed.delta(&town_id, first, 2_000, picture(&board, &t))
            .is_some()
    );
    assert!(
        !feed.catch_up_due(5_999, 5_000),
        "too soon after the snapshot"
    );
    assert!(feed.catch_up_due(6_000, 5_000));
    feed.snapshot(&town_id, first, 6_000, picture(&board, &t));
    assert!(!feed.catch_up_due(60_000, 5_000), "caught up");
}
