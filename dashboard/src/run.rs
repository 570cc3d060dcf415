//! The dashboard's loop: one `select!` over the keyboard, the MQTT feed and a tick,
//! generic over the terminal backend so tests drive it with `TestBackend`.
//!
//! Nothing in it waits on the network: commands are handed to the MQTT client only while the
//! link is up and only as far as its queue has room (`try_publish`); what does not fit waits
//! in the app's outbox for the next turn, so an outage never stops the screen.

use std::time::Duration;

use crossterm::event::{Event, KeyEventKind};
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use rumqttc::{AsyncClient, ClientError, QoS};
use tokio::sync::mpsc;

use crate::app::App;
use crate::clock::Now;
use crate::net::FeedEvent;
use crate::{keymap, ui};

/// How often the screen is redrawn without input (ages, link countdown).
pub const TICK: Duration = Duration::from_millis(250);

/// Runs until the officer quits (or the input ends). `now` reads the clocks.
pub async fn run<B, K>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut keys: K,
    mut feed: mpsc::Receiver<FeedEvent>,
    client: Option<AsyncClient>,
    now: impl Fn() -> Now,
) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    K: Stream<Item = std::io::Result<Event>> + Unpin,
{
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut feed_open = true;
    loop {
        set_now(app, now());
        app.refresh(false);
        terminal.draw(|f| ui::render(app, f))?;
        // Feed messages are taken in without a redraw each; the tick or a key redraws.
        loop {
            tokio::select! {
                ev = keys.next() => {
                    match ev {
                        Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                            if let Some(a) = keymap::action(k, &app.mode, app.view) {
                                tracing::debug!(?a, "action");
                                app.handle(a);
                            }
                        }
                        Some(Ok(Event::Resize(..))) => terminal.autoresize()?,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(anyhow::Error::new(e).context("reading the terminal")),
                        None => return Ok(()),
                    }
                    break;
                }
                m = feed.recv(), if feed_open => match m {
                    Some(FeedEvent::Message(t, p)) => {
                        set_now(app, now());
                        app.on_message(t, p);
                    }
                    Some(FeedEvent::Link(l)) => {
                        set_now(app, now());
                        app.on_link(l);
                        break;
                    }
                    None => feed_open = false,
                },
                _ = tick.tick() => break,
            }
        }
        if let Some(c) = &client {
            hand_over(app, c);
        }
        if app.quit {
            return Ok(());
        }
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

    fn tokio_stream_from(
        mut rx: mpsc::Receiver<std::io::Result<Event>>,
    ) -> impl Stream<Item = std::io::Result<Event>> + Unpin {
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
