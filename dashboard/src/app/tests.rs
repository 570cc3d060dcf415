//! Actions change the app as the keys promise.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use super::*;
use evac_protocol::{SecretKey, Slug};

fn app(officer: bool) -> App {
    let hq = SecretKey::from_seed(&[1; 32]);
    let town = TownState::new(Slug::new("minato").unwrap(), hq.public(), None);
    let officer = officer.then(|| Officer {
        name: Slug::new("tanaka").unwrap(),
        key: SecretKey::from_seed(&[3; 32]),
    });
    App::new(town, Lang::En, officer, 1_795_000_000_000)
}

#[test]
fn quit_only_after_confirmation() {
    let mut a = app(false);
    a.handle(Action::AskQuit);
    assert_eq!(a.mode, Mode::ConfirmQuit);
    a.handle(Action::Close);
    assert!(!a.quit && a.mode == Mode::Normal);
    a.handle(Action::AskQuit);
    a.handle(Action::Quit);
    assert!(a.quit);
}

#[test]
fn a_command_line_goes_through_confirmation_with_a_reason() {
    let mut a = app(true);
    a.handle(Action::StartCommand);
    for c in "open 4".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    let Mode::Confirm { action, text, .. } = &a.mode else {
        panic!("{:?}", a.mode)
    };
    assert_eq!(
        *action,
        CommandAction::OpenShelter {
            shelter: ShelterId(4)
        }
    );
    assert!(text.contains("Reopen #4"), "{text}");
    for c in "water back".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Backspace);
    a.handle(Action::Submit);
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(a.outbox.len(), 1);
    assert_eq!(a.town.commands[0].reason, "water bac");
    assert_eq!(a.town.commands[0].outcome, CommandOutcome::Pending);
}

/// A command given before HQ had subscribed (HQ starting) was lost: it is sent again, the
/// same signed message, until HQ answers, and not past HQ's freshness bound.
#[test]
fn an_unanswered_command_goes_out_again_until_hq_answers() {
    let hq = SecretKey::from_seed(&[1; 32]);
    let mut a = app(true);
    a.on_link(Link::Connected { since_ms: 0 });
    a.handle(Action::StartCommand);
    for c in "close 4".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    for c in "flooded road".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    let first = a.outbox.drain(..).collect::<Vec<_>>();
    assert_eq!(first.len(), 1);
    let t0 = a.mono_ms;
    a.mono_ms = t0 + RESEND_MS - 1;
    a.refresh(false);
    assert!(a.outbox.is_empty(), "resent too early");
    a.mono_ms = t0 + RESEND_MS;
    a.refresh(false);
    assert_eq!(
        a.outbox.drain(..).collect::<Vec<_>>(),
        first,
        "the same signed command"
    );
    // HQ's answer: no more copies.
    let id = a.town.commands[0].id;
    let reply = evac_protocol::CommandReply {
        officer: Slug::new("tanaka").unwrap(),
        command_id: id,
        ok: true,
        message: "closed".into(),
        at_ms: a.now_ms,
    };
    let payload = hq
        .sign(evac_protocol::HQ_SIGNER, &reply)
        .unwrap()
        .to_json()
        .unwrap();
    a.on_message(
        "evac/v1/minato/cmd/tanaka/reply".into(),
        payload.into_bytes(),
    );
    a.mono_ms += 10 * RESEND_MS;
    a.refresh(false);
    assert!(a.outbox.is_empty());
    assert_eq!(
        a.town.commands[0].outcome,
        CommandOutcome::Done("closed".into())
    );

    // A command HQ never answers stops going out once HQ would refuse it as stale.
    a.handle(Action::StartCommand);
    for c in "open 4".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    for c in "dry again".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    a.outbox.clear();
    a.mono_ms += evac_protocol::messages::command::MAX_COMMAND_SKEW_MS + 1;
    a.refresh(false);
    assert!(a.outbox.is_empty(), "resent past HQ's freshness bound");
    assert_eq!(a.town.commands[1].outcome, CommandOutcome::Pending);
}

#[test]
fn a_bad_command_line_explains_itself() {
    let mut a = app(true);
    a.handle(Action::StartCommand);
    for c in "close".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    let Mode::Message(m) = &a.mode else {
        panic!("{:?}", a.mode)
    };
    assert!(
        m.contains("shelter missing") && m.contains("close SHELTER"),
        "{m}"
    );
    assert!(a.outbox.is_empty());
}

#[test]
fn read_only_refuses_the_command_line() {
    let mut a = app(false);
    a.handle(Action::StartCommand);
    assert!(matches!(&a.mode, Mode::Message(m) if m.contains("Read-only")));
}

#[test]
fn views_cycle_and_sorting_inverts() {
    let mut a = app(false);
    a.handle(Action::PrevView);
    assert_eq!(a.view, View::Log);
    a.handle(Action::NextView);
    assert_eq!(a.view, View::Overview);
    a.handle(Action::SortColumn(-1));
    assert_eq!(a.sort, ShelterCol::Flagged);
    a.handle(Action::InvertSort);
    assert!(a.sort_invert);
}

/// Issue 18 item 12: a long freeze holds messages bounded by bytes, not count, and never
/// drops the newest of each registry shard and manifest (nor the newest status): after
/// 100,000 other messages, the registry that came last is applied on unfreeze (issue 22).
#[test]
fn a_long_freeze_is_bounded_by_bytes_and_keeps_the_newest_registry() {
    use evac_protocol::{CardDigest, HouseholdId, RegistryHousehold, RegistryResident};
    let hq = SecretKey::from_seed(&[1; 32]);
    let mut a = app(false);
    a.handle(Action::Freeze);
    let registry = |version, name: &str| {
        let households = vec![RegistryHousehold {
            id: HouseholdId(10),
            residents: vec![RegistryResident {
                id: ResidentId(1),
                name: name.into(),
                needs_help: false,
                card_digests: vec![],
            }],
        }];
        let town = Slug::new("minato").unwrap();
        crate::sample::registry_shards(&town, &hq, version, CardDigest([0; 16]), households)
            .unwrap()
    };
    // An older registry, then 100,000 order messages of 1 KiB (junk: refused once taken
    // in), then the newest registry's shard and manifest.
    for (t, p) in registry(6, "古い") {
        a.on_message(t, p);
    }
    for _ in 0..100_000 {
        a.on_message("evac/v1/minato/orders".into(), vec![b' '; 1024]);
    }
    for (t, p) in registry(7, "佐藤 一郎") {
        a.on_message(t, p);
    }
    a.handle(Action::Freeze);
    let reg = a.town.registry.as_ref();
    assert_eq!(
        reg.map(|r| (r.version, r.complete())),
        Some((7, true)),
        "the newest registry was dropped"
    );
    assert_eq!(a.town.resident_name(ResidentId(1)), Some("佐藤 一郎"));
    // What was held stayed within the bound: the rest was dropped, oldest first.
    let taken = a.town.rejected.total as usize;
    assert!(
        taken * 1024 <= MAX_QUEUED_BYTES,
        "{taken} messages of 1 KiB held"
    );
}

/// Issue 18 item 4: while the link is down a pending command is not handed to the link
/// again and again (it would fill the MQTT client's queue); it waits, once, and goes out as
/// soon as the link is back.
#[test]
fn a_command_given_while_the_link_is_down_waits_once_and_goes_when_it_is_back() {
    let mut a = app(true);
    a.on_link(Link::Reconnecting {
        since_ms: 0,
        retry_ms: 500,
    });
    a.handle(Action::StartCommand);
    for c in "close 4".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    for c in "road flooded".chars() {
        a.handle(Action::Type(c));
    }
    a.handle(Action::Submit);
    for i in 1..=200 {
        a.mono_ms = i * RESEND_MS;
        a.refresh(false);
    }
    assert_eq!(a.outbox.len(), 1, "one copy waits");
    a.on_link(Link::Connected {
        since_ms: a.mono_ms,
    });
    a.refresh(false);
    assert_eq!(a.outbox.len(), 1, "still one copy");
    let out = a.outbox.remove(0);
    a.handed(&out);
    a.refresh(false);
    assert!(a.outbox.is_empty(), "not again at once");
    a.mono_ms += RESEND_MS;
    a.refresh(false);
    assert_eq!(a.outbox, vec![out], "again after {RESEND_MS} ms");
}
