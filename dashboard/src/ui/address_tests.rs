//! The home address of a household that needs help at home: looked up off the terminal's
//! loop, shown under its row and in the Search view's details.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use evac_protocol::{AnswerKind, HouseholdAnswer};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

use super::tests::{NOW, answers_delta, draw, fixture};
use crate::addresses::AddressBook;
use crate::app::{Action, App, View};
use crate::clock::Now;
use crate::i18n::Lang;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");

/// The fixture with the household of the last resident still missing needing help at home
/// (2 people, 12 minutes ago); that household.
fn needing_help(lang: Lang) -> (App, u32) {
    let mut app = fixture(lang, false);
    let r = *app.town.derived.unaccounted.last().unwrap();
    let help = app
        .town
        .registry
        .as_ref()
        .unwrap()
        .person(r)
        .unwrap()
        .household;
    let answer = HouseholdAnswer {
        household: help,
        kind: AnswerKind::NeedHelp,
        people: Some(2),
        at_ms: NOW - 12 * 60_000,
        needs_confirmation: false,
        handled: None,
        confirmed: None,
    };
    answers_delta(&mut app, vec![answer], vec![]);
    app.handle(Action::Show(View::Unaccounted));
    (app, help)
}

fn address_of(household: u32) -> String {
    let town = evac_maps::Town::load(SAMPLE).unwrap();
    let h = town.households.iter().find(|h| h.id == household).unwrap();
    h.address.clone().unwrap()
}

/// The town file is a FIFO nobody writes yet: the lookup's read waits for as long as the test
/// likes. The real loop meanwhile draws frames, takes keys and quits; the row says the
/// address is being looked up. Once the file comes, the address replaces it.
#[tokio::test]
async fn the_screen_goes_on_while_the_town_file_is_being_read() {
    let (mut app, help) = needing_help(Lang::En);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("town.geojson");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    app.addresses = AddressBook::new(Some(fifo.clone()));
    // Should the lookup ever block the loop, the FIFO is fed after 20 s so the test fails
    // instead of hanging.
    let fed = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (fed, fifo) = (fed.clone(), fifo.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(20));
            if !fed.swap(true, Ordering::SeqCst) {
                let _ = std::fs::write(&fifo, b"{}");
            }
        })
    };
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let (_feed_tx, feed) = mpsc::channel(1);
    let (ktx, mut krx) = mpsc::channel(4);
    let keys = Box::pin(futures_util::stream::poll_fn(move |cx| krx.poll_recv(cx)));
    let driver = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        for c in ['q', 'y'] {
            let k = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
            ktx.send(Ok(Event::Key(k))).await.unwrap();
        }
        ktx
    });
    let started = Instant::now();
    crate::run::run(&mut term, &mut app, keys, feed, None, || Now {
        wall_ms: NOW,
        mono_ms: NOW,
    })
    .await
    .unwrap();
    let _ktx = driver.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the loop waited"
    );
    assert!(app.quit);
    assert!(app.addresses.scanning(), "the lookup is still reading");
    let screen = format!("{}", term.backend());
    assert!(
        screen.contains("home address: looking it up in the town file…"),
        "{screen}"
    );

    // The file comes through the FIFO: the address shows.
    assert!(!fed.swap(true, Ordering::SeqCst), "the watchdog fed it");
    // (The lookup stops reading once it has found its households: the rest may not go in.)
    let writer = std::thread::spawn(move || std::fs::write(&fifo, std::fs::read(SAMPLE).unwrap()));
    let end = Instant::now() + Duration::from_secs(60);
    while app.addresses.scanning() {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(5));
        app.refresh(false);
    }
    let _ = writer.join().unwrap();
    drop(watchdog);
    let screen = draw(&app, 80, 24);
    let home = address_of(help);
    let row = screen.lines().nth(6).unwrap().replace(' ', "");
    assert!(
        row.contains(&format!("homeaddress:{}", home.replace(' ', ""))),
        "{screen}"
    );
}

/// Without a town file the row says so; a household the file has without an address says
/// that; the Search view's details give the address too.
#[test]
fn no_town_file_no_address_and_the_search_details_say_so() {
    let (mut app, help) = needing_help(Lang::En);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("home address: unknown: no town_file in the dashboard's config"),
        "{screen}"
    );
    // The sample town with this household's address taken out.
    let dir = tempfile::tempdir().unwrap();
    let mut town = evac_maps::Town::load(SAMPLE).unwrap();
    town.households
        .iter_mut()
        .find(|h| h.id == help)
        .unwrap()
        .address = None;
    let path = dir.path().join("town.geojson");
    town.save(&path).unwrap();
    settle(&mut app, &path);
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("home address: none in the town file"),
        "{screen}"
    );
    // Search: the household's resident, its details.
    settle(&mut app, Path::new(SAMPLE));
    let r = *app.town.derived.unaccounted.first().unwrap();
    app.handle(Action::Show(View::Search));
    app.handle(Action::StartFilter);
    for c in r.to_string().chars() {
        app.handle(Action::Type(c));
    }
    app.handle(Action::Submit);
    let screen = draw(&app, 160, 48).replace(' ', "");
    let home = address_of(help).replace(' ', "");
    assert!(screen.contains(&format!("homeaddress:{home}")), "{screen}");
}

fn settle(app: &mut App, path: &Path) {
    app.addresses = AddressBook::new(Some(path.to_owned()));
    let end = Instant::now() + Duration::from_secs(60);
    app.refresh(false);
    while app.addresses.scanning() {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(5));
        app.refresh(false);
    }
}

/// The address line takes a row's second line: scrolled down past the screen, the selected
/// resident still shows, and an address line only ever sits under its household's row.
#[test]
fn scrolled_the_selected_row_shows_and_an_address_stays_under_its_row() {
    let (mut app, help) = needing_help(Lang::En);
    settle(&mut app, Path::new(SAMPLE));
    let list = app.town.derived.unaccounted.clone();
    for down in [0, 15, 16, 17, 40] {
        app.handle(Action::Move(i64::MIN));
        app.handle(Action::Move(down));
        let screen = draw(&app, 80, 24);
        let lines: Vec<&str> = screen.lines().collect();
        let selected = list[down as usize].to_string();
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().nth(1) == Some(selected.as_str())),
            "row {down}: {screen}"
        );
        for (i, l) in lines.iter().enumerate() {
            if l.contains("home address:") {
                assert!(
                    lines[i - 1].contains(&format!(" {help} ")) && lines[i - 1].contains("HELP 2"),
                    "row {down}: {screen}"
                );
            }
        }
        // 17 lines for rows: the first row's address line costs the 17th row its place.
        let shown = lines.iter().any(|l| l.contains("home address:"));
        assert_eq!(shown, down < 16, "row {down}: {screen}");
        // No line of the table left empty.
        assert!(
            lines[5..22]
                .iter()
                .all(|l| l.trim_matches(['│', ' ', '"']).len() > 4),
            "row {down}: {screen}"
        );
    }
}
