//! Issue 18 item 4: the dashboard's screen through a broker outage with a command pending.
//! A real `evac-hq` (embedded broker) is killed while the officer's close-shelter command is
//! unanswered; the dashboard's own loop (`run`, on a `TestBackend`) runs on a drill clock
//! (`--clock drill:…x12`, durations at the drill's speed) twelve times as fast as the wall,
//! one re-send a frame, so the outage lasts five minutes of the dashboard's time and the
//! command would have gone out again about a hundred times (the old loop stopped at ~64).
//! The screen must keep redrawing (STALE) and answer keys throughout; HQ, started again,
//! carries the command out once.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use evac_dashboard::app::App;
use evac_dashboard::clock::Clock;
use evac_dashboard::command::Officer;
use evac_dashboard::i18n::Lang;
use evac_dashboard::net;
use evac_dashboard::state::TownState;
use evac_maps::{GenerateParams, generate};
use evac_protocol::{PublicKey, SecretKey, Slug};
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use support::town::{HqConfig, hq_key, officer_key, passwords};
use support::*;

const PW: &str = "pw";
/// How much faster than the wall the dashboard's clock runs.
const SPEED: u64 = 12;

/// What the test sees of the screen: frames drawn and the last one.
#[derive(Default)]
struct Seen {
    frames: u64,
    text: String,
}

/// A `TestBackend` that shows the test every frame it flushes.
struct Shared {
    inner: TestBackend,
    seen: Arc<Mutex<Seen>>,
}

impl Backend for Shared {
    type Error = <TestBackend as Backend>::Error;
    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(p)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, t: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(t)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()?;
        let mut s = self.seen.lock().unwrap();
        s.frames += 1;
        s.text = format!("{}", self.inner);
        Ok(())
    }
}

fn key(c: char) -> std::io::Result<Event> {
    let code = if c == '\n' {
        KeyCode::Enter
    } else {
        KeyCode::Char(c)
    };
    Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

/// Waits (without blocking the runtime) until the screen satisfies `pred`.
async fn wait_screen(
    seen: &Mutex<Seen>,
    secs: u64,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = seen.lock().unwrap().text.clone();
        if pred(&text) {
            return text;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}; screen:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_hq(d: &std::path::Path, name: &str) -> Proc {
    let mut hq = Proc::spawn(
        name,
        Command::new(bin("evac-hq"))
            .current_dir(d)
            .args(["run", "--config"])
            .arg(d.join("hq.toml")),
    );
    hq.wait_line(30, "the embedded broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    hq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_answers_through_a_five_minute_outage_and_the_command_is_done_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);
    let town = generate(&GenerateParams {
        households: 60,
        shelters: 4,
        seed: 3,
    });
    town.save(p("town.geojson")).unwrap();
    let mut shelters: Vec<u32> = town.shelters.iter().map(|s| s.id).collect();
    shelters.sort_unstable();
    let target = shelters[0];
    hq_key(d);
    officer_key(d, "tanaka");
    passwords(d, ["hq", "officer-tanaka"], PW);
    let port = free_port();
    std::fs::write(p("hq.toml"), HqConfig::for_dashboard().embedded(port)).unwrap();
    let mut hq = start_hq(d, "hq");

    // The dashboard: its own loop, state and link, on a clock SPEED times as fast as the wall.
    let slug = Slug::new("minato").unwrap();
    let officer = Officer {
        name: Slug::new("tanaka").unwrap(),
        key: SecretKey::read(&p("officer-tanaka.key")).unwrap(),
    };
    let state = TownState::new(slug.clone(), PublicKey::read(&p("hq.pub")).unwrap(), None);
    let clock = Clock::new(evac_protocol::time::TimeSource::drill_from_now(
        evac_protocol::time::wall_ms(),
        SPEED as f64,
    ));
    let now = move || clock.now();
    let officer_name = officer.name.clone();
    let mut app = App::new(state, Lang::En, Some(officer), now().wall_ms);
    let login = net::Login {
        addr: format!("mqtt://127.0.0.1:{port}").parse().unwrap(),
        ca: None,
        username: "officer-tanaka".into(),
        password: PW.into(),
    };
    let (client, feed) = net::start_with(
        &login,
        "minato",
        net::topics(&slug, Some(&officer_name)),
        clock,
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let backend = Shared {
        inner: TestBackend::new(120, 30),
        seen: seen.clone(),
    };
    let (ktx, mut krx) = tokio::sync::mpsc::channel::<std::io::Result<Event>>(64);
    let keys = Box::pin(futures_util::stream::poll_fn(move |cx| krx.poll_recv(cx)));
    let screen = tokio::spawn(async move {
        let mut term = ratatui::Terminal::new(backend).unwrap();
        evac_dashboard::run::run(&mut term, &mut app, keys, feed, Some(client), now)
            .await
            .unwrap();
        app
    });
    let press = |s: &str| {
        let ktx = ktx.clone();
        let s = s.to_owned();
        async move {
            for c in s.chars() {
                ktx.send(key(c)).await.unwrap();
            }
        }
    };
    wait_screen(&seen, 30, "HQ's snapshot", |s| {
        s.contains("CONNECTED") && s.contains("data ")
    })
    .await;

    // HQ and its broker go away; then the officer closes a shelter, with a reason.
    hq.kill();
    wait_screen(&seen, 20, "STALE", |s| s.contains("STALE")).await;
    press(&format!(":close {target}\n")).await;
    wait_screen(&seen, 10, "the confirmation", |s| s.contains("reason")).await;
    press("road flooded\n").await;
    wait_screen(&seen, 10, "the command pending", |s| {
        s.contains("waiting for HQ")
    })
    .await;

    // Five minutes of the dashboard's time (100 re-sends at one each 3 s): every wall second
    // the screen has drawn new frames and a view key is answered.
    let outage = Duration::from_millis(5 * 60 * 1000 / SPEED);
    let end = Instant::now() + outage;
    // What only that view shows.
    let views = [('2', "Occupancy"), ('6', "road flooded"), ('1', "Arrivals")];
    let mut i = 0;
    while Instant::now() < end {
        let before = seen.lock().unwrap().frames;
        let (k, mark) = views[i % views.len()];
        i += 1;
        press(&k.to_string()).await;
        let shown = wait_screen(&seen, 5, &format!("view {k} during the outage"), |s| {
            s.contains("STALE") && s.contains(mark)
        })
        .await;
        assert!(shown.contains("waiting for HQ"), "{shown}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let after = seen.lock().unwrap().frames;
        assert!(after > before + 1, "the screen stopped redrawing");
    }

    // HQ is back: the command, still pending, goes out and is carried out once.
    let _hq = start_hq(d, "hq again");
    wait_screen(&seen, 30, "HQ's answer", |s| {
        s.contains("CONNECTED") && s.contains("HQ ✔")
    })
    .await;
    press("qy").await;
    let app = tokio::time::timeout(Duration::from_secs(10), screen)
        .await
        .expect("the loop ends on q y")
        .unwrap();
    let cmd = app.town.commands.last().unwrap();
    let db = rusqlite::Connection::open_with_flags(
        p("hq-data/hq.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let rows: i64 = db
        .query_row(
            "SELECT count(*) FROM commands WHERE officer = 'tanaka' AND id = ?1 AND ok = 1",
            [cmd.id as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1, "the command carried out once");
    let open: i64 = db
        .query_row(
            "SELECT open FROM shelter_open WHERE shelter = ?1",
            [target],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open, 0, "shelter {target} closed");
}
