//! Answers from the TV, stored as the answer endpoint stores them (its [`AnswerStore`] on
//! HQ's file), travel in HQ's signed status beside the residents' statuses and decide none.

use evac_protocol::{AnswerKind, HouseholdAnswer, ResidentStatus, StatusMessage};

use super::*;
use crate::store::{AnswerStore, StoredAnswer};

fn household_of(resident: u32) -> u32 {
    let town = generate(&GenerateParams {
        households: 100,
        shelters: 4,
        seed: 2,
    });
    town.households
        .iter()
        .find(|h| h.members.iter().any(|m| m.resident == resident))
        .unwrap()
        .id
}

fn answer(household: u32, kind: &str, people: Option<u32>, at: u64) -> StoredAnswer {
    StoredAnswer {
        household,
        kind: kind.into(),
        people,
        received_ms: at,
        source: "192.0.2.7".into(),
        needs_confirmation: false,
    }
}

fn status(p: &Publication, hq: &PublicKey) -> StatusMessage {
    assert!(p.topic.ends_with("/status"), "{}", p.topic);
    Signed::<StatusMessage>::from_json(&p.payload)
        .unwrap()
        .open(hq)
        .unwrap()
}

fn status_of(hq: &Hq, r: u32, now: u64) -> ResidentStatus {
    hq.current_picture(now).statuses[(r - hq.board.first_resident().0) as usize]
}

#[test]
fn answers_travel_in_the_signed_status_and_a_card_tap_wins() {
    let (mut hq, node, hq_pub, s, dir) = setup();
    let mut desk = AnswerStore::open(&dir.path().join("hq.sqlite")).unwrap();
    let home = household_of(1);
    let help = (1..100).map(household_of).find(|h| *h != home).unwrap();

    // "Safe at home" for resident 1's household: in the signed snapshot, deciding nothing.
    desk.record(&answer(home, "safe_at_home", None, 1_000_100))
        .unwrap();
    let before = status_of(&hq, 1, 1_000_200);
    let StatusMessage::Snapshot(snap) = status(&hq.snapshot(1_000_200).unwrap()[0], &hq_pub) else {
        panic!("a snapshot")
    };
    let safe = HouseholdAnswer {
        household: home,
        kind: AnswerKind::SafeAtHome,
        people: None,
        at_ms: 1_000_100,
        needs_confirmation: false,
        handled: None,
        confirmed: None,
    };
    assert_eq!(snap.answers, std::slice::from_ref(&safe));
    assert!(!matches!(
        before,
        ResidentStatus::Arrived { .. } | ResidentStatus::Found
    ));

    // "Need help" (3 people) from another household: the next delta carries only it.
    desk.record(&answer(help, "need_help", Some(3), 1_000_300))
        .unwrap();
    let out = hq.tick(1_000_400, false).unwrap();
    let StatusMessage::Delta(delta) = status(out.last().unwrap(), &hq_pub) else {
        panic!("a delta")
    };
    assert_eq!(
        delta.answers,
        [HouseholdAnswer {
            household: help,
            kind: AnswerKind::NeedHelp,
            people: Some(3),
            at_ms: 1_000_300,
            needs_confirmation: false,
            handled: None,
            confirmed: None,
        }]
    );
    assert!(delta.residents.is_empty(), "an answer changes no status");

    // A card tap after the answer: resident 1 is at the shelter, the answer stays beside.
    send(&mut hq, &node, s, &[1], 1_000_500);
    let out = hq.tick(1_000_600, true).unwrap();
    let StatusMessage::Snapshot(snap) = status(out.last().unwrap(), &hq_pub) else {
        panic!("a snapshot")
    };
    let tapped = snap
        .residents
        .unpack()
        .unwrap()
        .into_iter()
        .find(|(r, _)| r.0 == 1)
        .unwrap()
        .1;
    assert_eq!(
        tapped,
        ResidentStatus::Arrived {
            shelter: s,
            unverified: false
        }
    );
    assert_eq!(snap.answers.len(), 2);
    assert!(snap.answers.contains(&safe));

    // A restarted HQ carries the answers it had.
    let latest = hq.current_picture(1_000_700).answers;
    drop(hq);
    let mut keys = KeyRing::default();
    keys.add_shelter(s, node.public());
    let hq = reopen(&dir, keys, 1_000_800);
    assert_eq!(hq.current_picture(1_000_800).answers, latest);
}

/// Issue 21: the officers' CSV export gives each household's answer beside the resident's
/// status it never changes, and says what it is worth: self-reported, and an officer must
/// confirm one sent after too many wrong codes.
#[test]
fn the_csv_export_gives_answers_beside_the_status_as_self_reported() {
    let (mut hq, node, _, s, dir) = setup();
    let mut desk = AnswerStore::open(&dir.path().join("hq.sqlite")).unwrap();
    let town = generate(&GenerateParams {
        households: 100,
        shelters: 4,
        seed: 2,
    });
    let home = household_of(1);
    let help = (1..100).map(household_of).find(|h| *h != home).unwrap();
    desk.record(&answer(home, "safe_at_home", None, 1_000_100))
        .unwrap();
    let mut doubtful = answer(help, "need_help", Some(2), 1_000_200);
    doubtful.needs_confirmation = true;
    desk.record(&doubtful).unwrap();
    send(&mut hq, &node, s, &[1], 1_000_300);
    hq.tick(1_000_400, true).unwrap();

    let csv = crate::export::csv(&hq, &town, 1_000_500).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let head = rows.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let of_household = |h: u32| {
        rows.iter()
            .filter(|r| r[col("household")] == *h.to_string())
            .collect::<Vec<_>>()
    };
    for r in of_household(home) {
        assert_eq!(&r[col("tv_answer")], "safe_at_home", "{r:?}");
        assert_eq!(&r[col("tv_answer_is")], "self-reported", "{r:?}");
        assert_eq!(&r[col("tv_answer_at")], "1970-01-01T00:16:40Z", "{r:?}");
        // The tap decides resident 1's status; the answer stays beside it.
        let arrived = &r[col("status")] == "arrived";
        assert_eq!(arrived, &r[col("resident")] == "1", "{r:?}");
    }
    for r in of_household(help) {
        assert_eq!(&r[col("tv_answer")], "need_help", "{r:?}");
        assert_eq!(&r[col("tv_answer_people")], "2", "{r:?}");
        assert_eq!(
            &r[col("tv_answer_is")],
            "self-reported; an officer must confirm",
            "{r:?}"
        );
    }
    let silent = rows
        .iter()
        .find(|r| {
            ![home, help]
                .map(|h| h.to_string())
                .contains(&r[col("household")].to_owned())
        })
        .unwrap();
    assert_eq!(&silent[col("tv_answer")], "", "{silent:?}");
    assert_eq!(&silent[col("tv_answer_is")], "", "{silent:?}");
}
