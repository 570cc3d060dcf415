//! Issue 21 item 3: an officer marks a needs-help answer handled, or confirms a flagged one,
//! by a signed command; the mark is kept with the command, travels in the signed status and
//! survives a restart.

use evac_protocol::{AnswerKind, CommandAction, HouseholdAnswer, OfficerId, StatusMessage};

use super::*;
use crate::store::{AnswerStore, StoredAnswer};

fn answer(household: u32, kind: &str, needs_confirmation: bool, at: u64) -> StoredAnswer {
    StoredAnswer {
        household,
        kind: kind.into(),
        people: (kind == "need_help").then_some(2),
        received_ms: at,
        source: "192.0.2.7".into(),
        needs_confirmation,
    }
}

fn with_officer(hq: &mut Hq) -> (OfficerId, SecretKey) {
    let officer: OfficerId = "tanaka".parse().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let mut keys = hq.keys().clone();
    keys.add_officer(officer.clone(), key.public());
    hq.set_keys(keys);
    (officer, key)
}

fn latest(hq: &Hq, household: u32, now: u64) -> HouseholdAnswer {
    hq.current_picture(now)
        .answers
        .into_iter()
        .find(|a| a.household == household)
        .expect("an answer")
}

#[test]
fn a_needs_help_answer_marked_handled_travels_in_the_status_once_and_survives_a_restart() {
    let (mut hq, _, hq_pub, _, dir) = setup();
    let (officer, key) = with_officer(&mut hq);
    let mut desk = AnswerStore::open(&dir.path().join("hq.sqlite")).unwrap();
    desk.record(&answer(7, "need_help", false, 1_000_100))
        .unwrap();
    desk.record(&answer(8, "safe_at_home", false, 1_000_100))
        .unwrap();
    hq.tick(1_000_200, true).unwrap();

    let cmd = |id, household| {
        officer_command(
            &key,
            &officer,
            id,
            1_000_300,
            CommandAction::AnswerHandled { household },
        )
    };
    // No answer, or not a needs-help one: refused with a clear reply, nothing kept.
    let none = reply_of(&hq.on_command(&officer, &cmd(1, 9), 1_000_300).unwrap());
    assert!(
        !none.ok && none.message.contains("has not answered"),
        "{none:?}"
    );
    let safe = reply_of(&hq.on_command(&officer, &cmd(2, 8), 1_000_300).unwrap());
    assert!(!safe.ok && safe.message.contains("not \""), "{safe:?}");

    let done = reply_of(&hq.on_command(&officer, &cmd(3, 7), 1_000_400).unwrap());
    assert!(done.ok, "{done:?}");
    let out = hq.tick(1_000_500, false).unwrap();
    let Some(StatusMessage::Delta(delta)) = out
        .iter()
        .rev()
        .filter(|p| p.topic.ends_with("/status"))
        .map(|p| {
            Signed::<StatusMessage>::from_json(&p.payload)
                .unwrap()
                .open(&hq_pub)
                .unwrap()
        })
        .next()
    else {
        panic!("a delta")
    };
    assert_eq!(delta.answers.len(), 1, "{delta:?}");
    let handled = delta.answers[0].handled.clone().expect("handled");
    assert_eq!(
        (
            handled.officer.as_str(),
            handled.at_ms,
            handled.reason.as_str()
        ),
        ("tanaka", 1_000_400, "test")
    );
    let counts = delta.counts.answers.expect("answer counts");
    assert_eq!(
        (
            counts.need_help,
            counts.need_help_unhandled,
            counts.safe_at_home
        ),
        (1, 0, 1)
    );

    // The same command again (a resend or a replay): answered, not carried out twice.
    let again = reply_of(&hq.on_command(&officer, &cmd(3, 7), 1_000_600).unwrap());
    assert!(
        again.ok && again.message.contains("handled already"),
        "{again:?}"
    );
    assert_eq!(hq.store().answer_marks().unwrap().len(), 1);
    // Under a new number: said so, the first mark kept.
    let twice = reply_of(&hq.on_command(&officer, &cmd(4, 7), 1_000_700).unwrap());
    assert!(
        twice.ok && twice.message.contains("already by tanaka"),
        "{twice:?}"
    );
    assert_eq!(hq.store().answer_marks().unwrap().len(), 1);
    assert_eq!(latest(&hq, 7, 1_000_800).handled, Some(handled.clone()));

    // A restarted HQ still shows it handled.
    let keys = hq.keys().clone();
    drop(hq);
    let mut hq = reopen(&dir, keys, 1_000_900);
    assert_eq!(latest(&hq, 7, 1_000_900).handled, Some(handled));

    // A later answer from the household is news again.
    desk.record(&answer(7, "need_help", false, 1_001_000))
        .unwrap();
    hq.tick(1_001_100, false).unwrap();
    assert_eq!(latest(&hq, 7, 1_001_100).handled, None);
}

#[test]
fn a_flagged_answer_is_confirmed_by_an_officer_and_only_a_flagged_one() {
    let (mut hq, _, _, _, dir) = setup();
    let (officer, key) = with_officer(&mut hq);
    let mut desk = AnswerStore::open(&dir.path().join("hq.sqlite")).unwrap();
    desk.record(&answer(7, "safe_at_home", true, 1_000_100))
        .unwrap();
    desk.record(&answer(8, "safe_at_home", false, 1_000_100))
        .unwrap();
    let confirm = |id, household| {
        officer_command(
            &key,
            &officer,
            id,
            1_000_300,
            CommandAction::ConfirmAnswer { household },
        )
    };
    let plain = reply_of(&hq.on_command(&officer, &confirm(1, 8), 1_000_300).unwrap());
    assert!(
        !plain.ok && plain.message.contains("needs no confirmation"),
        "{plain:?}"
    );
    assert!(latest(&hq, 7, 1_000_300).needs_confirmation);
    let ok = reply_of(&hq.on_command(&officer, &confirm(2, 7), 1_000_300).unwrap());
    assert!(ok.ok, "{ok:?}");
    let a = latest(&hq, 7, 1_000_400);
    assert!(!a.needs_confirmation && a.confirmed.is_some(), "{a:?}");
    assert_eq!(a.kind, AnswerKind::SafeAtHome);
}

/// An attacker's try: a shelter's key, or a key HQ does not hold for the officer, cannot mark
/// an answer handled.
#[test]
fn a_mark_signed_by_a_shelter_or_an_unknown_officer_is_refused() {
    let (mut hq, node, _, _, dir) = setup();
    let (officer, _) = with_officer(&mut hq);
    let mut desk = AnswerStore::open(&dir.path().join("hq.sqlite")).unwrap();
    desk.record(&answer(7, "need_help", false, 1_000_100))
        .unwrap();
    let action = CommandAction::AnswerHandled { household: 7 };
    // The shelter's key, signing as the officer.
    let forged = officer_command(&node, &officer, 1, 1_000_300, action.clone());
    let r = reply_of(&hq.on_command(&officer, &forged, 1_000_300).unwrap());
    assert!(!r.ok && r.message.contains("signature"), "{r:?}");
    // An officer HQ holds no key for.
    let stranger: OfficerId = "mallory".parse().unwrap();
    let own = officer_command(
        &SecretKey::from_seed(&[9; 32]),
        &stranger,
        2,
        1_000_300,
        action,
    );
    let r = reply_of(&hq.on_command(&stranger, &own, 1_000_300).unwrap());
    assert!(!r.ok && r.message.contains("no key"), "{r:?}");
    assert!(hq.store().answer_marks().unwrap().is_empty());
    hq.tick(1_000_400, false).unwrap();
    assert_eq!(latest(&hq, 7, 1_000_400).handled, None);
}
