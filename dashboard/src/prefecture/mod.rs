//! The prefecture view: several towns side by side, one row each, from a prefecture broker
//! that every town's broker bridges its status up to, under a prefix per town
//! (`deploy/mosquitto/bridge-prefecture.conf`). Each town's status is checked with that
//! town's HQ key, exactly as the town dashboard checks it, and a large town's snapshot in
//! signed parts (`status/part/{i}`, issue 22) is joined as there, never two snapshots mixed;
//! a town whose bridge is down, or
//! whose status has not come for `stale_after_s` on its HQ's clock, is shown STALE with its
//! last counts ([`state`] says how that is judged).
//!
//! - [`config`]: the configuration file;
//! - [`state`]: the towns' picture and the rows, no I/O, no drawing;
//! - [`draw`]: the screen, from the rows;
//! - here: [`PrefectureScreen`], the view [`crate::run::run`] drives (the same loop as the
//!   town view), and [`gather`], the rows once for `prefecture --json`.

pub mod config;
pub mod draw;
pub mod state;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod parts_tests;

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use tokio::sync::mpsc;

pub use config::{PrefectureConfig, PrefectureTown};
pub use draw::render;
pub use state::{CLOCK_TOLERANCE_MS, Prefecture, PrefectureRows, TownError, TownRow, WatchedTown};

use crate::clock::Now;
use crate::i18n::Lang;
use crate::net::FeedEvent;
use crate::run::{RunError, Screen};
use crate::state::Link;

/// The prefecture view as the loop drives it: the towns, the link, the clocks; `q` quits.
#[derive(Debug)]
pub struct PrefectureScreen {
    /// The towns.
    pub prefecture: Prefecture,
    /// The link to the prefecture broker.
    pub link: Link,
    /// The screen's language.
    pub lang: Lang,
    now: Now,
    /// `q` was pressed.
    pub quit: bool,
}

impl PrefectureScreen {
    /// The view of `prefecture`, not yet connected.
    pub fn new(prefecture: Prefecture, lang: Lang) -> PrefectureScreen {
        PrefectureScreen {
            prefecture,
            link: Link::Connecting,
            lang,
            now: Now::default(),
            quit: false,
        }
    }
}

impl Screen for PrefectureScreen {
    fn set_now(&mut self, now: Now) {
        self.now = now;
    }

    fn render(&self, frame: &mut Frame) {
        let rows = self.prefecture.rows(self.now);
        render(frame, &rows, &self.link, self.lang, self.prefecture.refused);
    }

    fn take_key(&mut self, key: KeyEvent) {
        if key.code == KeyCode::Char('q') {
            self.quit = true;
        }
    }

    fn take_message(&mut self, topic: String, payload: Vec<u8>) {
        self.prefecture.on_message(&topic, &payload, self.now);
    }

    fn take_link(&mut self, link: Link) {
        self.link = link;
    }

    /// Without the feed the rows would only grow stale: say so rather than show them.
    fn feed_ended(&mut self) -> Result<(), RunError> {
        Err(RunError::FeedEnded)
    }

    fn quit(&self) -> bool {
        self.quit
    }
}

/// Why [`gather`] has no rows to give.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// The network task stopped.
    #[error("the network task ended")]
    FeedEnded,
    /// The link to the prefecture broker was not up at the end.
    #[error("cannot reach the prefecture broker at {broker}")]
    Unreachable {
        /// The broker, as configured.
        broker: String,
    },
}

/// The rows once: takes the feed until every town has sent its status (or `timeout` has
/// passed), then what else is already waiting, and gives the rows at that moment. `broker`
/// names the broker in the error when the link is not up.
pub async fn gather(
    prefecture: &mut Prefecture,
    feed: &mut mpsc::Receiver<FeedEvent>,
    broker: &str,
    timeout: Duration,
    now: impl Fn() -> Now,
) -> Result<PrefectureRows, GatherError> {
    let mut link = Link::Connecting;
    let deadline = tokio::time::Instant::now() + timeout;
    // Every town's retained status first, then what else is already waiting (the bridges'
    // retained states come with the subscription).
    while !prefecture.complete() {
        match tokio::time::timeout_at(deadline, feed.recv()).await {
            Ok(Some(FeedEvent::Message(t, p))) => prefecture.on_message(&t, &p, now()),
            Ok(Some(FeedEvent::Link(l))) => link = l,
            Ok(None) => return Err(GatherError::FeedEnded),
            Err(_) => break,
        }
    }
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), feed.recv()).await {
        match ev {
            FeedEvent::Message(t, p) => prefecture.on_message(&t, &p, now()),
            FeedEvent::Link(l) => link = l,
        }
    }
    if !matches!(link, Link::Connected { .. }) {
        return Err(GatherError::Unreachable {
            broker: broker.to_owned(),
        });
    }
    Ok(prefecture.summary(now()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use fixture::{NOW, at, prefecture, snapshot};

    #[tokio::test]
    async fn gather_waits_for_every_town_then_gives_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, b) = prefecture(dir.path());
        let (tx, mut rx) = mpsc::channel(8);
        for ev in [
            FeedEvent::Link(Link::Connected { since_ms: 0 }),
            FeedEvent::Message(
                "pref/36/minato/evac/v1/minato/status".into(),
                snapshot("minato", &a, 3),
            ),
            FeedEvent::Message(
                "pref/36/shiomihama/evac/v1/shiomihama/status".into(),
                snapshot("shiomihama", &b, 7),
            ),
            FeedEvent::Message("pref/36/shiomihama/bridge/state".into(), b"0".to_vec()),
        ] {
            tx.send(ev).await.unwrap();
        }
        let rows = gather(
            &mut p,
            &mut rx,
            "mqtt://x:1",
            Duration::from_secs(5),
            || at(NOW + 1_000),
        )
        .await
        .unwrap();
        assert_eq!(rows.refused, 0);
        assert_eq!(rows.towns[0].counts.as_ref().unwrap().under_order, 3);
        assert!(!rows.towns[0].stale);
        // The bridge's state, waiting behind the statuses, is taken in too.
        assert_eq!(rows.towns[1].why.as_deref(), Some("uplink down"));
        drop(tx);
    }

    #[tokio::test]
    async fn gather_without_the_broker_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, _, _) = prefecture(dir.path());
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(FeedEvent::Link(Link::Reconnecting {
            since_ms: 0,
            retry_ms: 500,
        }))
        .await
        .unwrap();
        let e = gather(
            &mut p,
            &mut rx,
            "mqtts://pref.example:8883",
            Duration::from_millis(200),
            || at(NOW),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot reach the prefecture broker at mqtts://pref.example:8883"
        );
        drop(tx);
        let e = gather(&mut p, &mut rx, "x", Duration::from_secs(5), || at(NOW))
            .await
            .unwrap_err();
        assert!(matches!(e, GatherError::FeedEnded), "{e:?}");
    }
}
