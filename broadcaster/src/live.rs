//! The live head-end: HQ's sections from the broker (or files) into the carousel, the
//! carousel kept on disk, the broadcaster's own alerts refreshed, and the health it reports.
//!
//! [`LiveCore`] is the part with decisions and no network: updates in, carousel changes,
//! the on-disk copy and the health out. [`run_generated`] is the loop around a
//! [`Generator`] that feeds it once a stream second; the MQTT side ([`crate::mqtt`]) only
//! turns broker events into [`Update`]s.
//!
//! The carousel is kept in one file (a section set, [`evac_protocol::onair`]), rewritten on
//! every change, so a broadcaster restarted while HQ or the broker is unreachable airs every
//! order it had.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use evac_protocol::keyroll::KEY_TABLE_ID;
use evac_protocol::onair::{AirSection, OVERLAY_TABLE_ID, decode_set, encode_set};
use serde::Serialize;

use crate::alerts::AlertBoard;
use crate::carousel::{Applied, Carousel};
use crate::error::Error;
use crate::mux::{CLOCK_HZ, Generator, Ours, PACKET_BITS, Packet};

/// What the MQTT side (or a test) hands the live loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Connected and subscribed to HQ's air topics.
    Connected,
    /// The connection is lost or cannot be made (the error as text).
    Disconnected(String),
    /// The broker refused our login: a configuration error, not a passing fault.
    Refused(String),
    /// One household group's sections as HQ published them (empty: nothing on air for it).
    Group(u16, Vec<u8>),
    /// HQ's key announcements.
    Keys(Vec<u8>),
}

/// Where the orders on air came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Nothing yet.
    None,
    /// `--sections` files.
    File,
    /// The carousel kept on disk by an earlier run (HQ not reached since).
    Disk,
    /// HQ through the broker.
    Broker,
}

/// The broadcaster's health, as its health file and its log show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Connected to the broker and subscribed to HQ's orders.
    pub connected: bool,
    /// A broker is configured: without a connection the orders on air may be stale.
    pub broker: bool,
    /// Where the orders on air came from.
    pub source: Source,
    /// Tables on air (household groups, key announcements).
    pub tables: usize,
    /// Order sections on air.
    pub order_sections: usize,
    /// Updates taken from HQ.
    pub updates: u64,
    /// Updates refused (not a section set).
    pub refused: u64,
    /// The last connection or update error.
    pub last_error: Option<String>,
    /// Stream time of the last change, Unix seconds.
    pub changed_at: Option<i64>,
}

impl Health {
    /// Whether all is well: orders come from HQ now (or from files, with no broker).
    pub fn ok(&self) -> bool {
        if self.broker {
            self.connected
        } else {
            self.source != Source::None
        }
    }
}

/// The live loop's decisions: updates into the carousel, the disk copy, the health.
pub struct LiveCore {
    file: Option<PathBuf>,
    health: Health,
}

impl LiveCore {
    /// A core keeping the carousel in `file` (if any); `broker` is whether orders are to come
    /// from a broker.
    pub fn new(file: Option<PathBuf>, broker: bool) -> Self {
        LiveCore {
            file,
            health: Health {
                connected: false,
                broker,
                source: Source::None,
                tables: 0,
                order_sections: 0,
                updates: 0,
                refused: 0,
                last_error: None,
                changed_at: None,
            },
        }
    }

    /// Loads the carousel an earlier run kept; returns how many sections it had.
    ///
    /// The file only keeps what HQ's broker gives again on connection: one that does not
    /// decode (torn by a power cut) is logged, set aside as `NAME.bad-NOW_MS` and the
    /// broadcaster starts without it.
    pub fn restore(&mut self, carousel: &mut Carousel, now: i64) -> Result<usize, Error> {
        let Some(file) = &self.file else {
            return Ok(0);
        };
        let set = match std::fs::read(file) {
            Ok(b) => match decode_set(&b) {
                Ok(set) => set,
                Err(e) => {
                    let now_ms = u64::try_from(now).unwrap_or(0).saturating_mul(1000);
                    let aside = evac_protocol::statefile::set_aside(file, now_ms)?;
                    tracing::error!(
                        file = %file.display(),
                        aside = %aside.display(),
                        error = %e,
                        "the kept carousel does not decode: set aside, starting without it"
                    );
                    return Ok(0);
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::Orders(format!("{}: {e}", file.display()))),
        };
        let n = set.len();
        carousel.apply_set(&set, now);
        if carousel.tables() > 0 {
            self.health.source = Source::Disk;
        }
        self.count(carousel, now);
        Ok(n)
    }

    /// Takes in `--sections` files' contents.
    pub fn add_file(
        &mut self,
        carousel: &mut Carousel,
        set: &[AirSection],
        now: i64,
    ) -> Result<Applied, Error> {
        let done = carousel.apply_set(set, now);
        if self.health.source != Source::Broker {
            self.health.source = Source::File;
        }
        self.changed(carousel, now)?;
        Ok(done)
    }

    /// Takes one update; returns what changed on air.
    pub fn apply(
        &mut self,
        carousel: &mut Carousel,
        u: Update,
        now: i64,
    ) -> Result<Applied, Error> {
        let (table, payload) = match u {
            Update::Connected => {
                self.health.connected = true;
                self.health.last_error = None;
                return Ok(Applied::default());
            }
            Update::Disconnected(e) | Update::Refused(e) => {
                self.health.connected = false;
                self.health.last_error = Some(e);
                return Ok(Applied::default());
            }
            Update::Group(g, payload) => ((OVERLAY_TABLE_ID, g), payload),
            Update::Keys(payload) => ((KEY_TABLE_ID, 0), payload),
        };
        let set = if payload.is_empty() {
            Vec::new()
        } else {
            match decode_set(&payload) {
                Ok(s) => s,
                Err(e) => {
                    self.health.refused += 1;
                    self.health.last_error = Some(format!("update refused: {e}"));
                    return Ok(Applied::default());
                }
            }
        };
        // A group's message speaks for that group only: anything else in it is ignored.
        let bodies: Vec<Vec<u8>> = set
            .into_iter()
            .filter(|s| {
                (s.table_id, s.extension) == table
                    || table.0 == KEY_TABLE_ID && s.table_id == KEY_TABLE_ID
            })
            .map(|s| s.body)
            .collect();
        self.health.updates += 1;
        self.health.source = Source::Broker;
        let done = carousel.set_table(table.0, table.1, bodies, now);
        if done.changed > 0 {
            self.changed(carousel, now)?;
        }
        Ok(done)
    }

    fn count(&mut self, carousel: &Carousel, now: i64) {
        self.health.tables = carousel.tables();
        self.health.order_sections = carousel.order_sections();
        self.health.changed_at = Some(now);
    }

    fn changed(&mut self, carousel: &Carousel, now: i64) -> Result<(), Error> {
        self.count(carousel, now);
        if let Some(file) = &self.file {
            save(file, &carousel.snapshot())?;
        }
        Ok(())
    }

    /// The health now.
    pub fn health(&self) -> &Health {
        &self.health
    }
}

fn save(file: &Path, set: &[AirSection]) -> Result<(), Error> {
    let bytes = encode_set(set).map_err(Error::Overlay)?;
    Ok(evac_protocol::statefile::write(file, &bytes)?)
}

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
                while let Ok(u) = rx.try_recv() {
                    let done = core.apply(g.ours().source_mut(), u, now)?;
                    if done.changed > 0 {
                        tracing::info!(
                            changed = done.changed,
                            dropped = done.dropped,
                            tables = core.health().tables,
                            "orders from HQ"
                        );
                    }
                }
            }
            if let Some(a) = l.alerts {
                a.refresh(g.ours(), now)?;
            }
            (l.report)(core.health());
        }
        write(&g.next_packet())?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carousel::tests::{hq, set};
    use crate::mux::MuxConfig;
    use crate::psi::ServiceLayout;
    use crate::receiver::{Receiver, ReceiverConfig, TrustedKey};
    use evac_protocol::{HouseholdId, ShelterId, Slug};

    fn cfg() -> MuxConfig {
        MuxConfig {
            layout: ServiceLayout::default(),
            bitrate: 1_000_000,
            overlay_bitrate: 500_000,
            transport_stream_id: 1,
            start_unix: 1_500,
        }
    }

    fn receiver(h: u32) -> Receiver {
        Receiver::new(
            ReceiverConfig {
                household: HouseholdId(h),
                town: Some(Slug::new("minato").unwrap()),
                hq: vec![TrustedKey::always(hq().public())],
                broadcaster: None,
                program: None,
                skew_s: 120,
            },
            1_500,
        )
    }

    fn payload(sets: &[AirSection]) -> Vec<u8> {
        encode_set(sets).unwrap()
    }

    #[test]
    fn updates_go_on_air_are_kept_on_disk_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("carousel.evs");
        let (tx, rx) = mpsc::channel();
        let mut core = LiveCore::new(Some(file.clone()), true);
        let mut g = Generator::new(cfg(), Carousel::new()).unwrap();
        assert!(!core.health().ok(), "no broker yet: not well");
        tx.send(Update::Connected).unwrap();
        tx.send(Update::Group(0, payload(&set(1, 5_000, &[(7, 4, 3, 1)]))))
            .unwrap();
        tx.send(Update::Group(1, b"not a set".to_vec())).unwrap();
        let mut stb = receiver(7);
        let mut healths = Vec::new();
        run_generated(
            &mut g,
            &mut core,
            Loop {
                updates: Some(&rx),
                alerts: None,
                wall: None,
                report: &mut |h| healths.push(h.clone()),
            },
            Some(2 * 1_000_000 / PACKET_BITS),
            &mut |p| {
                stb.feed(p);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));
        let h = core.health();
        assert!(h.ok() && h.connected && h.source == Source::Broker);
        assert_eq!((h.updates, h.refused, h.tables), (1, 1, 1));
        assert!(healths.len() >= 2);

        // Restarted with the broker down: the carousel comes back from disk.
        tx.send(Update::Disconnected("connection refused".into()))
            .unwrap();
        let mut core2 = LiveCore::new(Some(file.clone()), true);
        let mut c = Carousel::new();
        assert!(core2.restore(&mut c, 1_500).unwrap() >= 1);
        assert_eq!(core2.health().source, Source::Disk);
        assert!(
            !core2.health().ok(),
            "orders from disk are not orders from HQ"
        );
        let mut g = Generator::new(cfg(), c).unwrap();
        let mut stb = receiver(7);
        run_generated(
            &mut g,
            &mut core2,
            Loop {
                updates: None,
                alerts: None,
                wall: None,
                report: &mut |_| {},
            },
            Some(1_000_000 / PACKET_BITS),
            &mut |p| {
                stb.feed(p);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));

        // An empty group message takes the group off the air, on disk too.
        core2
            .apply(g.ours().source_mut(), Update::Group(0, vec![]), 1_500)
            .unwrap();
        assert_eq!(g.ours().source_mut().tables(), 0);
        let mut c = Carousel::new();
        assert_eq!(
            LiveCore::new(Some(file), true)
                .restore(&mut c, 1_500)
                .unwrap(),
            0
        );
    }

    #[test]
    fn a_torn_carousel_file_is_set_aside_and_the_broadcaster_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("carousel.evs");
        let whole = payload(&set(1, 5_000, &[(7, 4, 3, 1)]));
        std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
        let mut core = LiveCore::new(Some(file.clone()), true);
        let mut c = Carousel::new();
        assert_eq!(core.restore(&mut c, 1_500).unwrap(), 0);
        assert_eq!(c.tables(), 0);
        assert!(!file.exists());
        let aside = dir.path().join("carousel.evs.bad-1500000");
        assert_eq!(std::fs::read(aside).unwrap(), whole[..whole.len() / 2]);
        // The next change writes a whole file again.
        core.apply(&mut c, Update::Group(0, whole.clone()), 1_500)
            .unwrap();
        assert_eq!(decode_set(&std::fs::read(&file).unwrap()).unwrap().len(), 1);
    }
}
