//! Whole-screen snapshots of every view for the sample town in a mid-evacuation state, at
//! 80×24 and 160×48, in Japanese and English, live and stale.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::sync::{Arc, OnceLock};

use evac_protocol::{CommandReply, HQ_SIGNER, SecretKey, Slug};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::app::{Action, App, View};
use crate::command::Officer;
use crate::i18n::Lang;
use crate::state::{Link, TownMap, TownState};

/// 2026-11-18 05:40 UTC (14:40 JST).
pub(super) const NOW: u64 = 1_795_412_400_000;

fn town() -> &'static evac_maps::Town {
    static TOWN: OnceLock<evac_maps::Town> = OnceLock::new();
    TOWN.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
        evac_maps::Town::load(path).unwrap()
    })
}

fn map() -> Arc<TownMap> {
    static MAP: OnceLock<Arc<TownMap>> = OnceLock::new();
    MAP.get_or_init(|| Arc::new(TownMap::new(town().clone())))
        .clone()
}

fn hq() -> SecretKey {
    SecretKey::from_seed(&[1; 32])
}

fn feed() -> &'static crate::sample::Feed {
    static FEED: OnceLock<crate::sample::Feed> = OnceLock::new();
    FEED.get_or_init(|| {
        crate::sample::mid_evacuation(town(), &Slug::new("minato").unwrap(), &hq(), NOW).unwrap()
    })
}

/// The sample town mid-evacuation, with one closed shelter answered by HQ.
pub(super) fn fixture(lang: Lang, stale: bool) -> App {
    let town = Slug::new("minato").unwrap();
    let mut s = TownState::new(town.clone(), hq().public(), Some(map()));
    s.link = Link::Connected {
        since_ms: NOW - 3_600_000,
    };
    // The newest status (HQ's time NOW) arrives at NOW on the monotonic clock.
    for (t, p) in feed() {
        s.on_message(t, p, NOW).unwrap();
    }
    let officer = Officer {
        name: Slug::new("tanaka").unwrap(),
        key: SecretKey::from_seed(&[3; 32]),
    };
    let mut app = App::new(s, lang, Some(officer), NOW - 120_000);
    // The monotonic clock reads the same numbers as the wall here: messages came a minute ago.
    app.mono_ms = NOW - 120_000;
    app.color = false;
    // Close the second shelter from the Shelters view, with a reason; HQ answers.
    app.handle(Action::Show(View::Shelters));
    app.handle(Action::Move(1));
    app.handle(Action::CloseShelter);
    for c in "roof damage".chars() {
        app.handle(Action::Type(c));
    }
    app.handle(Action::Submit);
    let sent = app.outbox.pop().unwrap();
    assert!(sent.topic.ends_with("/cmd/tanaka"));
    let id = app.town.commands[0].id;
    let reply = CommandReply {
        officer: Slug::new("tanaka").unwrap(),
        command_id: id,
        ok: true,
        message: "shelter 2 closed; 0 households re-routed".into(),
        at_ms: NOW - 100_000,
    };
    let wire = hq().sign(HQ_SIGNER, &reply).unwrap().to_json().unwrap();
    app.on_message("evac/v1/minato/cmd/tanaka/reply".into(), wire.into_bytes());
    app.now_ms = NOW;
    app.mono_ms = NOW;
    if stale {
        app.on_link(Link::Reconnecting {
            since_ms: NOW - 95_000,
            retry_ms: NOW + 2_000,
        });
    }
    app.refresh(true);
    app
}

pub(super) fn draw(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| super::render(app, f)).unwrap();
    format!("{}", term.backend())
}

fn views() -> [(View, &'static str); 6] {
    [
        (View::Overview, "overview"),
        (View::Shelters, "shelters"),
        (View::Unaccounted, "unaccounted"),
        (View::Map, "map"),
        (View::Search, "search"),
        (View::Log, "log"),
    ]
}

#[test]
fn every_view_at_both_sizes_in_both_languages_live_and_stale() {
    for (lang, ln) in [(Lang::Ja, "ja"), (Lang::En, "en")] {
        for stale in [false, true] {
            let mut app = fixture(lang, stale);
            for (view, name) in views() {
                app.handle(Action::Show(view));
                if view == View::Search {
                    // Search for the first needs-help resident still missing.
                    let r = app.town.derived.unaccounted[0];
                    app.handle(Action::StartFilter);
                    for c in r.to_string().chars() {
                        app.handle(Action::Type(c));
                    }
                    app.handle(Action::Submit);
                }
                for (w, h) in [(80, 24), (160, 48)] {
                    let screen = draw(&app, w, h);
                    let live = if stale { "stale" } else { "live" };
                    insta::assert_snapshot!(format!("{name}_{w}x{h}_{ln}_{live}"), screen);
                }
            }
        }
    }
}

#[test]
fn a_needs_help_resident_heads_the_unaccounted_list() {
    let app = fixture(Lang::En, false);
    let s = &app.town;
    let list = &s.derived.unaccounted;
    assert!(list.len() > 100, "mid-evacuation: many still missing");
    let reg = s.registry.as_ref().unwrap();
    let needs = |r| reg.person(r).unwrap().needs_help;
    assert!(needs(list[0]));
    // Every needs-help resident comes before everyone else.
    let k = s.derived.unaccounted_needs_help;
    assert!(k > 0 && list[..k].iter().all(|&r| needs(r)) && !list[k..].iter().any(|&r| needs(r)));
    let screen = draw(
        &{
            let mut a = app;
            a.handle(Action::Show(View::Unaccounted));
            a
        },
        80,
        24,
    );
    let first_row = screen.lines().nth(5).unwrap();
    assert!(first_row.contains('★'), "{screen}");
}

#[test]
fn stale_shows_stale_with_its_age_and_live_does_not() {
    let live = draw(&fixture(Lang::En, false), 80, 24);
    let stale = draw(&fixture(Lang::En, true), 80, 24);
    assert!(!live.contains("STALE") && live.contains("CONNECTED"));
    assert!(
        stale.contains("STALE 1m35s") && stale.contains("RECONNECTING"),
        "{stale}"
    );
}

#[test]
fn read_only_says_so_when_a_command_key_is_pressed() {
    let mut app = fixture(Lang::En, false);
    app.officer = None;
    app.handle(Action::Show(View::Shelters));
    app.handle(Action::CloseShelter);
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("Read-only"), "{screen}");
    assert!(app.outbox.is_empty());
}

#[test]
fn a_command_without_a_reason_is_not_sent() {
    let mut app = fixture(Lang::En, false);
    app.handle(Action::Show(View::Shelters));
    app.handle(Action::CloseShelter);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("Close") && screen.contains("re-routed"),
        "{screen}"
    );
    app.handle(Action::Submit);
    assert!(app.outbox.is_empty(), "an empty reason sends nothing");
    assert!(matches!(app.mode, crate::app::Mode::Confirm { .. }));
    app.handle(Action::Close);
    assert!(app.outbox.is_empty());
}

#[test]
fn no_color_draws_no_colour() {
    let app = fixture(Lang::Ja, false);
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| super::render(&app, f)).unwrap();
    let buf = term.backend().buffer();
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset)
    );
}

#[test]
fn freeze_holds_messages_until_unfrozen() {
    let mut app = fixture(Lang::En, false);
    app.handle(Action::Freeze);
    assert!(draw(&app, 80, 24).contains("FROZEN"));
    app.on_message("evac/v1/minato/status".into(), b"{truncated".to_vec());
    assert_eq!(app.town.rejected.total, 0, "held while frozen");
    app.handle(Action::Freeze);
    assert_eq!(app.town.rejected.total, 1, "taken in once unfrozen");
    assert!(!draw(&app, 80, 24).contains("FROZEN"));
}

/// Issue 18: the header lists each notice in force once, with when its hazard is expected and
/// how long is left.
#[test]
fn the_header_shows_when_the_wave_is_expected() {
    let mut app = fixture(Lang::En, false);
    assert_eq!(app.town.notices.len(), 1);
    for n in app.town.notices.values_mut() {
        n.onset = Some((NOW / 1000) as i64 + 18 * 60);
    }
    let screen = draw(&app, 160, 48);
    let header: String = screen.lines().take(3).collect();
    assert!(header.contains("expected 14:58 (in 18m00s)"), "{header}");
    let mut app = fixture(Lang::Ja, false);
    for n in app.town.notices.values_mut() {
        n.onset = Some((NOW / 1000) as i64 - 60);
    }
    let header: String = draw(&app, 160, 48).lines().take(3).collect();
    assert!(header.contains("到達予想 14:39"), "{header}");
}

/// Issue 18 item 9: a dashboard whose own clock is 10 minutes off (either way) shows the
/// same data age, warnings (needs-help late, silent shelters), minutes since the order and
/// curve as one with a right clock: HQ's times are judged on HQ's clock (its newest time plus
/// the monotonic time since it arrived). Only the clock in the header differs. (The notices
/// line is left out: helper h1 reworks it.)
#[test]
fn a_dashboard_clock_ten_minutes_off_shows_the_same_ages_and_warnings() {
    let body = |off: i64, view: View| {
        let mut app = fixture(Lang::En, false);
        app.now_ms = NOW.saturating_add_signed(off);
        // Five minutes pass on the monotonic clock: ages grow alike.
        app.mono_ms += 300_000;
        app.refresh(true);
        app.handle(Action::Show(view));
        let screen = draw(&app, 160, 48);
        let mut lines: Vec<String> = screen.lines().map(str::to_owned).collect();
        // The header: the clock (the dashboard's own) out, the rest (link, data age) in.
        let head = &lines[0];
        let data = head[head.find('│').unwrap()..].to_owned();
        lines[0] = data;
        lines.remove(1);
        (lines.join("\n"), app.town.derived.warnings.clone())
    };
    for view in [View::Overview, View::Unaccounted, View::Shelters] {
        let (right, warnings) = body(0, view);
        assert!(right.contains("data 5m00s"), "{right}");
        if view == View::Overview {
            assert!(
                warnings
                    .iter()
                    .any(|w| matches!(w, crate::state::Warning::NeedsHelpLate { .. })),
                "{warnings:?}"
            );
        }
        for off in [-600_000, 600_000] {
            let (skewed, w) = body(off, view);
            assert_eq!(skewed, right, "clock off by {off} ms, {view:?}");
            assert_eq!(w, warnings);
        }
    }
}

/// Through an outage (no message at all) the warnings' ages keep moving on HQ's clock.
#[test]
fn warnings_age_through_an_outage_without_messages() {
    let mut app = fixture(Lang::En, true);
    let minutes = |app: &App| {
        app.town.derived.warnings.iter().find_map(|w| match w {
            crate::state::Warning::NeedsHelpLate { minutes, .. } => Some(*minutes),
            _ => None,
        })
    };
    assert_eq!(minutes(&app), Some(40));
    app.mono_ms += 10 * 60_000;
    app.refresh(false);
    assert_eq!(minutes(&app), Some(50));
    assert!(draw(&app, 160, 48).contains("data 10m00s"));
}

/// Answers from the TV for the households of three residents still missing: "needs help at
/// home" (2 people, 12 minutes ago) heads the list, "safe at home" goes after everyone with
/// no word; the column and the title say which, marked (TV) / self-reported.
#[test]
fn the_unaccounted_view_puts_needs_help_at_home_first_and_answered_safe_last() {
    use evac_protocol::{AnswerKind, HouseholdAnswer, StatusDelta, StatusMessage};
    for (lang, ln, w, h) in [(Lang::En, "en", 80, 24), (Lang::Ja, "ja", 160, 48)] {
        let mut app = fixture(lang, false);
        let s = &app.town;
        let reg = s.registry.as_ref().unwrap();
        let list = s.derived.unaccounted.clone();
        let of: std::collections::HashMap<_, u32> = list
            .iter()
            .map(|&r| (r, reg.person(r).unwrap().household))
            .collect();
        let household = |r| of[&r];
        let (help, safe, away) = (
            household(*list.last().unwrap()),
            household(list[0]),
            household(list[list.len() / 2]),
        );
        let answer = |household, kind, people, ago_min: u64, needs_confirmation| HouseholdAnswer {
            household,
            kind,
            people,
            at_ms: NOW - ago_min * 60_000,
            needs_confirmation,
            handled: None,
            confirmed: None,
        };
        let delta = StatusMessage::Delta(StatusDelta {
            town: s.town.clone(),
            seq: s.seq.unwrap() + 1,
            at_ms: NOW,
            counts: s.counts.clone(),
            shelters: vec![],
            residents: vec![],
            answers: vec![
                answer(help, AnswerKind::NeedHelp, Some(2), 12, false),
                answer(safe, AnswerKind::SafeAtHome, None, 5, false),
                answer(away, AnswerKind::EvacuatedElsewhere, None, 3, true),
            ],
            answers_removed: vec![],
        });
        let wire = hq().sign(HQ_SIGNER, &delta).unwrap().to_json().unwrap();
        app.on_message("evac/v1/minato/status".into(), wire.into_bytes());
        app.refresh(true);
        look_up_addresses(&mut app);
        let d = &app.town.derived;
        let now = &d.unaccounted;
        assert_eq!(now.len(), list.len(), "an answer accounts for no one");
        assert_eq!(household(now[0]), help, "needs help at home first");
        let tail: Vec<u32> = now[now.len() - d.answered_safe..]
            .iter()
            .map(|&r| household(r))
            .collect();
        assert!(tail.iter().all(|h| *h == safe || *h == away), "{tail:?}");
        app.handle(Action::Show(View::Unaccounted));
        let screen = draw(&app, w, h);
        let first_row = screen.lines().nth(5).unwrap();
        let help_text = if lang == Lang::En {
            "HELP 2 12m"
        } else {
            "要救助 2 12m"
        };
        assert!(first_row.contains(help_text), "{screen}");
        // Under it, the household's home address from the town file.
        let home = town()
            .households
            .iter()
            .find(|h| h.id == help)
            .and_then(|h| h.address.clone())
            .unwrap();
        let second = screen.lines().nth(6).unwrap().replace(' ', "");
        assert!(second.contains(&home.replace(' ', "")), "{screen}");
        insta::assert_snapshot!(format!("unaccounted_answers_{w}x{h}_{ln}"), screen);
        // The Overview's warnings start with it.
        app.handle(Action::Show(View::Overview));
        let screen = draw(&app, 160, 48);
        let house = if lang == Lang::En {
            "‼ house"
        } else {
            "‼ 世帯"
        };
        assert!(screen.contains(&format!("{house} {help}: 2")), "{screen}");
    }
}

/// Gives `app` the sample town file to look addresses up in, and waits for the lookup.
pub(super) fn look_up_addresses(app: &mut App) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
    app.addresses = crate::addresses::AddressBook::new(Some(path.into()));
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    app.refresh(false);
    while app.addresses.scanning() {
        assert!(std::time::Instant::now() < end, "the lookup did not finish");
        std::thread::sleep(std::time::Duration::from_millis(5));
        app.refresh(false);
    }
}

/// Sends `answers` (and removals) to `app` as HQ's next signed delta.
pub(super) fn answers_delta(
    app: &mut App,
    answers: Vec<evac_protocol::HouseholdAnswer>,
    removed: Vec<u32>,
) {
    use evac_protocol::{StatusDelta, StatusMessage};
    let s = &app.town;
    let delta = StatusMessage::Delta(StatusDelta {
        town: s.town.clone(),
        seq: s.seq.unwrap() + 1,
        at_ms: NOW,
        counts: s.counts.clone(),
        shelters: vec![],
        residents: vec![],
        answers,
        answers_removed: removed,
    });
    let wire = hq().sign(HQ_SIGNER, &delta).unwrap().to_json().unwrap();
    app.on_message("evac/v1/minato/status".into(), wire.into_bytes());
    app.refresh(true);
}

/// Issue 21 item 3: on the Unaccounted view `a` marks the selected household's "needs help at
/// home" handled with the officer's reason, as a signed command through the one sender; once
/// HQ's status says so, the household leaves the top group and shows as handled, and the
/// map's ▲ for it goes. `a` on a household that asked for no help sends nothing.
#[test]
fn an_officer_marks_needs_help_at_home_handled_and_it_leaves_the_top() {
    use crate::app::Mode;
    use evac_protocol::{AnswerKind, AnswerMark, CommandAction, HouseholdAnswer, OfficerCommand};
    let mut app = fixture(Lang::En, false);
    let reg = app.town.registry.clone().unwrap();
    let household = |r: evac_protocol::ResidentId| reg.person(r).unwrap().household;
    let list = app.town.derived.unaccounted.clone();
    let help = household(*list.last().unwrap());
    let mut answer = HouseholdAnswer {
        household: help,
        kind: AnswerKind::NeedHelp,
        people: Some(2),
        at_ms: NOW - 12 * 60_000,
        needs_confirmation: false,
        handled: None,
        confirmed: None,
    };
    answers_delta(&mut app, vec![answer.clone()], vec![]);
    app.handle(Action::Show(View::Map));
    let map_before = draw(&app, 80, 24);
    assert!(map_before.contains('▲'), "{map_before}");
    insta::assert_snapshot!("map_help_at_home_80x24_en", map_before);

    app.handle(Action::Show(View::Unaccounted));
    assert_eq!(household(app.town.derived.unaccounted[0]), help);
    // The second row's household gave no word: nothing to mark, said so, nothing sent.
    let sent_before = app.outbox.len();
    app.handle(Action::Move(list.len() as i64));
    app.handle(Action::AnswerHandled);
    assert!(matches!(app.mode, Mode::Message(_)), "{:?}", app.mode);
    app.handle(Action::Close);
    app.handle(Action::Move(i64::MIN));
    app.handle(Action::AnswerHandled);
    let Mode::Confirm { text, .. } = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert!(text.contains(&format!("household {help}")), "{text}");
    for c in "ambulance took them".chars() {
        app.handle(Action::Type(c));
    }
    app.handle(Action::Submit);
    assert_eq!(app.outbox.len(), sent_before + 1);
    let out = app.outbox.last().unwrap();
    let cmd: OfficerCommand = evac_protocol::Signed::<OfficerCommand>::from_json(&out.payload)
        .unwrap()
        .open(&SecretKey::from_seed(&[3; 32]).public())
        .unwrap();
    assert_eq!(cmd.action, CommandAction::AnswerHandled { household: help });
    assert_eq!(cmd.reason, "ambulance took them");

    // HQ's status says handled: out of the top group, shown as handled, off the map.
    answer.handled = Some(AnswerMark {
        officer: Slug::new("tanaka").unwrap(),
        at_ms: NOW - 60_000,
        reason: "ambulance took them".into(),
    });
    answers_delta(&mut app, vec![answer], vec![]);
    let d = &app.town.derived;
    assert_ne!(household(d.unaccounted[0]), help);
    assert_eq!((d.needs_help_households.0, d.help_handled > 0), (0, true));
    assert!(d.help_points.is_empty());
    // Last now (no household answered safe here): the last row shows it handled.
    app.handle(Action::Move(i64::MAX));
    let screen = draw(&app, 80, 24);
    let last_row = screen.lines().nth(21).unwrap();
    assert!(last_row.contains("handled 2"), "{screen}");
    insta::assert_snapshot!("unaccounted_handled_80x24_en", screen);

    // A delta that removes the answer: the dashboard forgets it.
    answers_delta(&mut app, vec![], vec![help]);
    assert!(app.town.answers.is_empty());
}
