//! The packet loops around [`LiveCore`]: once a stream second (or every 10,000 packets of an
//! input) they take HQ's updates, refresh the broadcaster's own alerts and report the health;
//! between those steps they only move packets. No network here: updates come on a channel,
//! packets go to a closure, so a test steps a loop with a channel and a `Vec`.

use std::path::PathBuf;
use std::sync::mpsc;

use crate::alerts::AlertBoard;
use crate::carousel::Carousel;
use crate::error::Error;
use crate::insert::Inserter;
use crate::mux::{CLOCK_HZ, Generator, Ours, PACKET_BITS, Packet};

use super::run::MuxError;
use super::{Health, LiveCore, Update};

/// The broadcaster's own alerts: the spool directory and the key that signs its tickers.
pub struct Alerts {
    /// The spool `evac-broadcaster alert` writes.
    pub dir: PathBuf,
    /// The broadcaster's own key (never HQ's).
    pub key: evac_protocol::SecretKey,
}

impl Alerts {
    /// Loads the spool and puts its tickers and emergency descriptor on air.
    pub fn refresh(&self, ours: &mut Ours<Carousel>, now: i64) -> Result<(), Error> {
        let mut board = AlertBoard::default();
        board.load_spool(&self.dir, &self.key.public(), now)?;
        let program = ours.config().layout.program;
        ours.set_emergency(board.emergency(program, now))?;
        let tickers = board.tickers(&self.key, now)?;
        ours.source_mut().replace_extras(tickers);
        Ok(())
    }
}

/// What the generated-stream loop does once a stream second.
pub struct Loop<'a> {
    /// Updates from HQ, if a broker is configured.
    pub updates: Option<&'a mpsc::Receiver<Update>>,
    /// The broadcaster's alerts, if any.
    pub alerts: Option<&'a Alerts>,
    /// The wall clock, in live mode (the stream's own time otherwise).
    pub wall: Option<&'a dyn Fn() -> i64>,
    /// Called with the health after each second's updates (the health file, the log).
    pub report: &'a mut dyn FnMut(&Health),
}

/// Takes every update waiting on `rx` into the carousels.
fn take_updates(
    core: &mut LiveCore,
    outputs: &mut Ours<Carousel>,
    rx: &mpsc::Receiver<Update>,
    now: i64,
) -> Result<(), Error> {
    while let Ok(u) = rx.try_recv() {
        let done = core.apply(outputs, u, now)?;
        if done.changed > 0 {
            tracing::info!(
                changed = done.changed,
                dropped = done.dropped,
                tables = core.health().tables,
                "orders from HQ"
            );
        }
    }
    Ok(())
}

/// The stock-TV tables count as current while HQ's orders are (connected to HQ's broker, or
/// `--sections` files without one): TVs say "cannot confirm" once the tables are older than
/// their bound.
fn confirm_bml(core: &LiveCore, ours: &mut Ours<Carousel>, now: i64) -> Result<(), Error> {
    if core.health().ok()
        && let Some(bml) = ours.bml_mut()
    {
        bml.confirm(now)?;
    }
    Ok(())
}

/// Runs a generated stream for `packets` packets (forever with `None`), writing each packet
/// with `write`, taking updates and refreshing alerts once a stream second.
pub fn run_generated(
    g: &mut Generator<Carousel>,
    core: &mut LiveCore,
    l: Loop<'_>,
    packets: Option<u64>,
    write: &mut dyn FnMut(&Packet) -> Result<(), Error>,
) -> Result<(), Error> {
    let per_second = (g.ours().config().bitrate / PACKET_BITS).max(1);
    while packets.is_none_or(|e| g.packets() < e) {
        if g.packets().is_multiple_of(per_second) {
            let t = g.time();
            if let Some(wall) = l.wall {
                // A live stream's time table follows the wall clock.
                g.ours().set_unix_at(t, wall());
            }
            let now = g.ours().unix_at(t);
            if let Some(rx) = l.updates {
                take_updates(core, g.ours(), rx, now)?;
            }
            confirm_bml(core, g.ours(), now)?;
            if let Some(a) = l.alerts {
                a.refresh(g.ours(), now)?;
            }
            (l.report)(core.health());
        }
        write(&g.next_packet())?;
    }
    Ok(())
}

/// What the insertion loop does every [`INSERT_STEP`] input packets.
pub struct InsertLoop<'a> {
    /// Updates from HQ, if a broker is configured.
    pub updates: Option<&'a mpsc::Receiver<Update>>,
    /// The broadcaster's alerts, refreshed on the way (none: only at the start).
    pub alerts: Option<&'a Alerts>,
    /// Now, Unix seconds (an input on air runs on the wall clock, not on its own).
    pub clock: &'a dyn Fn() -> i64,
    /// Called with the health after each step's updates.
    pub report: &'a mut dyn FnMut(&Health),
}

/// Input packets between two looks at updates and alerts while inserting.
pub const INSERT_STEP: u64 = 10_000;

/// Inserts into the packets `read` gives until it gives `None`, writing with `write`; returns
/// how many packets were read.
pub fn run_inserted(
    ins: &mut Inserter<Carousel>,
    core: &mut LiveCore,
    l: InsertLoop<'_>,
    read: &mut dyn FnMut() -> Result<Option<Packet>, MuxError>,
    write: &mut dyn FnMut(&Packet) -> Result<(), MuxError>,
) -> Result<u64, MuxError> {
    let mut buf = Vec::new();
    let mut n = 0u64;
    // The stock-TV tables count as current from the first packet when HQ's orders are.
    confirm_bml(core, ins.ours(), (l.clock)()).map_err(MuxError::Live)?;
    while let Some(p) = read()? {
        n += 1;
        if n.is_multiple_of(INSERT_STEP) {
            if let Some(rx) = l.updates {
                take_updates(core, ins.ours(), rx, (l.clock)())?;
                (l.report)(core.health());
            }
            confirm_bml(core, ins.ours(), (l.clock)()).map_err(MuxError::Live)?;
            if let Some(al) = l.alerts {
                al.refresh(ins.ours(), (l.clock)())?;
            }
        }
        ins.push(&p, &mut buf).map_err(MuxError::Insert)?;
        for q in buf.drain(..) {
            write(&q)?;
        }
    }
    ins.finish(&mut buf).map_err(MuxError::Insert)?;
    for q in buf.drain(..) {
        write(&q)?;
    }
    Ok(n)
}

/// Stream seconds for `laps` laps of the carousel at the overlay bitrate (at least one second).
pub fn laps_duration(c: &Carousel, overlay_bitrate: u64, laps: f64) -> f64 {
    let bytes: usize = c.sections().iter().map(|s| s.len()).sum();
    laps * bytes as f64 * 8.0 / overlay_bitrate.max(1) as f64 + 1.0
}

/// Stream time of `g` in seconds.
pub fn seconds(g: &Generator<Carousel>) -> f64 {
    g.time() as f64 / CLOCK_HZ as f64
}
