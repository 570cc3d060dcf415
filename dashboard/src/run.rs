//! The dashboard's loop: one `select!` over the keyboard, the MQTT feed and a tick,
//! generic over the terminal backend so tests drive it with `TestBackend`, and over the
//! [`Screen`] it shows: the town view ([`App`]) or the prefecture view
//! ([`crate::prefecture::PrefectureScreen`]).
//!
//! Nothing in it waits on the network: commands are handed to the MQTT client only while the
//! link is up and only as far as its queue has room (`try_publish`); what does not fit waits
//! in the app's outbox for the next turn, so an outage never stops the screen.

use std::time::Duration;

use crossterm::event::{Event, KeyEvent, KeyEventKind};
use futures_util::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::{Frame, Terminal};
use rumqttc::{AsyncClient, ClientError, QoS};
use tokio::sync::mpsc;

use crate::app::App;
use crate::clock::Now;
use crate::net::FeedEvent;
use crate::state::Link;
use crate::{keymap, ui};

/// How often the screen is redrawn without input (ages, link countdown).
pub const TICK: Duration = Duration::from_millis(250);

/// Why the loop stopped other than by the officer quitting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The terminal cannot be drawn on or resized.
    #[error("drawing the screen")]
    Draw(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The keyboard cannot be read.
    #[error("reading the terminal")]
    Keys(#[source] std::io::Error),
    /// The network task stopped (a screen that cannot go on without it says so).
    #[error("the network task ended")]
    FeedEnded,
}

/// A view the loop drives: it takes keys, the feed and the clocks, and draws itself.
pub trait Screen {
    /// Both clocks, read before each draw and before each message is taken.
    fn set_now(&mut self, now: Now);
    /// Brings what is derived from the state up to date before a draw.
    fn refresh(&mut self) {}
    /// Draws the whole screen.
    fn render(&self, frame: &mut Frame);
    /// Takes a key (presses and releases alike: the screen decides).
    fn take_key(&mut self, key: KeyEvent);
    /// Takes a message from the feed (not redrawn at once: the tick or a key redraws).
    fn take_message(&mut self, topic: String, payload: Vec<u8>);
    /// Takes a change of the broker link (redrawn at once).
    fn take_link(&mut self, link: Link);
    /// The feed ended: go on with what is known (the default), or stop with an error.
    fn feed_ended(&mut self) -> Result<(), RunError> {
        Ok(())
    }
    /// Hands what the screen has to send to the MQTT client (the default: nothing).
    fn hand_over(&mut self, _client: &AsyncClient) {}
    /// Whether the officer has quit.
    fn quit(&self) -> bool;
}

/// Runs until the officer quits (or the input ends). `now` reads the clocks.
pub async fn run<B, K, S>(
    terminal: &mut Terminal<B>,
    screen: &mut S,
    mut keys: K,
    mut feed: mpsc::Receiver<FeedEvent>,
    client: Option<AsyncClient>,
    now: impl Fn() -> Now,
) -> Result<(), RunError>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    K: Stream<Item = std::io::Result<Event>> + Unpin,
    S: Screen + ?Sized,
{
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut feed_open = true;
    let draw_error = |e: B::Error| RunError::Draw(Box::new(e));
    loop {
        screen.set_now(now());
        screen.refresh();
        terminal.draw(|f| screen.render(f)).map_err(draw_error)?;
        // Feed messages are taken in without a redraw each; the tick or a key redraws.
        loop {
            tokio::select! {
                ev = keys.next() => {
                    match ev {
                        Some(Ok(Event::Key(k))) => screen.take_key(k),
                        Some(Ok(Event::Resize(..))) => terminal.autoresize().map_err(draw_error)?,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(RunError::Keys(e)),
                        None => return Ok(()),
                    }
                    break;
                }
                m = feed.recv(), if feed_open => match m {
                    Some(FeedEvent::Message(t, p)) => {
                        screen.set_now(now());
                        screen.take_message(t, p);
                        // A shard taken makes room for the next one's read at once.
                        if let Some(c) = &client {
                            screen.hand_over(c);
                        }
                    }
                    Some(FeedEvent::Link(l)) => {
                        screen.set_now(now());
                        screen.take_link(l);
                        break;
                    }
                    None => {
                        feed_open = false;
                        screen.feed_ended()?;
                    }
                },
                _ = tick.tick() => break,
            }
        }
        if let Some(c) = &client {
            screen.hand_over(c);
        }
        if screen.quit() {
            return Ok(());
        }
    }
}

/// The town view.
impl Screen for App {
    fn set_now(&mut self, now: Now) {
        set_now(self, now);
    }

    fn refresh(&mut self) {
        App::refresh(self, false);
    }

    fn render(&self, frame: &mut Frame) {
        ui::render(self, frame);
    }

    fn take_key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        if let Some(a) = keymap::action(k, &self.mode, self.view) {
            tracing::debug!(?a, "action");
            self.handle(a);
        }
    }

    fn take_message(&mut self, topic: String, payload: Vec<u8>) {
        self.on_message(topic, payload);
    }

    fn take_link(&mut self, link: Link) {
        self.on_link(link);
    }

    fn hand_over(&mut self, client: &AsyncClient) {
        hand_over(self, client);
        // While frozen no shard is taken: no new one is read either (what comes is held).
        if self.frozen_since.is_none() {
            crate::net::hand_subs(&mut self.town, client, self.mono_ms);
        }
    }

    fn quit(&self) -> bool {
        self.quit
    }
}

fn set_now(app: &mut App, now: Now) {
    app.now_ms = now.wall_ms;
    app.mono_ms = now.mono_ms;
}

/// Hands the outbox to the MQTT client while the link is up, as far as its queue takes it;
/// the rest waits (the queue is drained only while connected: waiting on it would stop the
/// screen for the whole outage).
fn hand_over(app: &mut App, client: &AsyncClient) {
    if !app.connected() {
        return;
    }
    while !app.outbox.is_empty() {
        let out = app.outbox.remove(0);
        match client.try_publish(
            out.topic.clone(),
            QoS::AtLeastOnce,
            false,
            out.payload.clone(),
        ) {
            Ok(()) => app.handed(&out),
            Err(ClientError::TryRequest(_) | ClientError::Request(_)) => {
                // Full: it goes on the next turn (and again while HQ has not answered).
                app.outbox.insert(0, out);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use evac_protocol::{SecretKey, Slug};
    use ratatui::backend::TestBackend;

    use crate::i18n::Lang;
    use crate::state::{Link, TownState};

    #[tokio::test]
    async fn the_loop_takes_the_feed_and_quits_after_confirmation() {
        let hq = SecretKey::from_seed(&[1; 32]);
        let town = TownState::new(Slug::new("minato").unwrap(), hq.public(), None);
        let mut app = App::new(town, Lang::En, None, 0);
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let (tx, rx) = mpsc::channel(8);
        tx.send(FeedEvent::Link(Link::Connected { since_ms: 0 }))
            .await
            .unwrap();
        tx.send(FeedEvent::Message(
            "evac/v1/minato/status".into(),
            b"{".to_vec(),
        ))
        .await
        .unwrap();
        // Keys arrive after the feed has been read.
        let (ktx, krx) = mpsc::channel(8);
        let keys = tokio_stream_from(krx);
        let driver = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for c in ['q', 'y'] {
                let k = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
                ktx.send(Ok(Event::Key(k))).await.unwrap();
            }
            tx
        });
        run(&mut term, &mut app, keys, rx, None, || Now {
            wall_ms: 1_000,
            mono_ms: 1_000,
        })
        .await
        .unwrap();
        let _tx = driver.await.unwrap();
        assert!(app.quit);
        assert_eq!(app.town.rejected.total, 1);
        assert!(app.connected());
    }

    /// The prefecture view goes through the same loop: it draws the towns as the feed
    /// brings them and `q` quits.
    #[tokio::test]
    async fn the_loop_drives_the_prefecture_view_and_q_quits() {
        use crate::prefecture::PrefectureScreen;
        use crate::prefecture::fixture::{NOW, at, prefecture, snapshot};
        let dir = tempfile::tempdir().unwrap();
        let (p, a, _) = prefecture(dir.path());
        let mut screen = PrefectureScreen::new(p, Lang::En);
        let mut term = Terminal::new(TestBackend::new(120, 8)).unwrap();
        let (tx, rx) = mpsc::channel(8);
        tx.send(FeedEvent::Link(Link::Connected { since_ms: 0 }))
            .await
            .unwrap();
        tx.send(FeedEvent::Message(
            "pref/36/minato/evac/v1/minato/status".into(),
            snapshot("minato", &a, 3),
        ))
        .await
        .unwrap();
        let (ktx, krx) = mpsc::channel(8);
        let keys = tokio_stream_from(krx);
        let driver = tokio::spawn(async move {
            // A key other than q first: nothing happens.
            for (c, wait) in [('x', 100), ('q', 600)] {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let k = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
                ktx.send(Ok(Event::Key(k))).await.unwrap();
            }
            (tx, ktx)
        });
        run(&mut term, &mut screen, keys, rx, None, || at(NOW + 1_000))
            .await
            .unwrap();
        let _keep = driver.await.unwrap();
        assert!(screen.quit);
        assert_eq!(screen.prefecture.refused, 0);
        let shown = format!("{}", term.backend());
        assert!(
            shown.contains("Prefecture  CONNECTED  refused 0"),
            "{shown}"
        );
        assert!(shown.contains("港町") && shown.contains("live"), "{shown}");
        assert!(shown.contains("STALE (no status yet)"), "{shown}");
    }

    /// The prefecture view stops when its feed ends (its rows would only grow stale).
    #[tokio::test]
    async fn the_prefecture_view_stops_when_the_feed_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _, _) = crate::prefecture::fixture::prefecture(dir.path());
        let mut screen = crate::prefecture::PrefectureScreen::new(p, Lang::En);
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let (tx, rx) = mpsc::channel::<FeedEvent>(1);
        drop(tx);
        let (_ktx, krx) = mpsc::channel(1);
        let e = run(
            &mut term,
            &mut screen,
            tokio_stream_from(krx),
            rx,
            None,
            Now::default,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, RunError::FeedEnded), "{e:?}");
    }

    fn tokio_stream_from(
        mut rx: mpsc::Receiver<std::io::Result<Event>>,
    ) -> impl Stream<Item = std::io::Result<Event>> + Unpin {
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
