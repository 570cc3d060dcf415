//! The live head-end: HQ's sections from the broker (or files) into the carousel, the
//! carousel kept on disk, the broadcaster's own alerts refreshed, and the health it reports.
//!
//! [`LiveCore`] is the part with decisions and no network: updates in, carousel changes,
//! the on-disk copy and the health out. Around it:
//!
//! - [`stream`]: the packet loops that feed it once a stream second, for a stream of our own
//!   ([`run_generated`]) and for insertion into one on air ([`run_inserted`]);
//! - [`connect`]: waiting at start for HQ's broker, or airing the carousel kept on disk;
//! - [`health`]: the health file and the warnings on stderr;
//! - [`run`]: `evac-broadcaster mux` (and the service) set up from its settings and run.
//!
//! The MQTT side ([`crate::mqtt`]) only turns broker events into [`Update`]s.
//!
//! # Where HQ's sections go
//!
//! Every update from HQ goes through [`LiveCore::apply`] in two steps: [`LiveCore::check`]
//! decodes it and keeps only the sections the topic speaks for (a [`TableUpdate`]), then
//! [`LiveCore::air`] puts that table on air and keeps the carousel on disk. The carousel kept
//! on disk ([`LiveCore::restore`]) and `--sections` files ([`LiveCore::add_file`]) come as
//! [`TableUpdate`]s too ([`TableUpdate::from_set`]). All three reach the air through one
//! private function, `LiveCore::put`, which hands each table to the [`Outputs`]: the overlay
//! carousel and, with `--bml`, the stock-TV carousel, which checks HQ's signature first.
//!
//! The carousel is kept in one file (a section set, [`evac_protocol::onair`]), rewritten on
//! every change, so a broadcaster restarted while HQ or the broker is unreachable airs every
//! order it had.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use evac_protocol::keyroll::KEY_TABLE_ID;
use evac_protocol::onair::{AirSection, OVERLAY_TABLE_ID, decode_set, encode_set};
use serde::Serialize;

use crate::carousel::{Applied, Carousel};
use crate::error::Error;
use crate::mux::Ours;

pub mod connect;
pub mod health;
pub mod run;
pub mod stream;

pub use stream::{Alerts, Loop, laps_duration, run_generated, run_inserted, seconds};

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

/// One table as HQ's update sets it: a household group's order sections (table
/// [`OVERLAY_TABLE_ID`], extension the group) or the key announcements ([`KEY_TABLE_ID`]);
/// no bodies: the table goes off the air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableUpdate {
    /// The table id.
    pub table_id: u8,
    /// The table id extension (the household group).
    pub extension: u16,
    /// The section bodies, as HQ signed them.
    pub bodies: Vec<Vec<u8>>,
}

impl TableUpdate {
    /// The tables a section set names, each with its sections in the set's order (as
    /// [`Carousel::apply_set`] takes them).
    pub fn from_set(set: &[AirSection]) -> Vec<TableUpdate> {
        let mut by: BTreeMap<(u8, u16), Vec<Vec<u8>>> = BTreeMap::new();
        for s in set {
            by.entry((s.table_id, s.extension))
                .or_default()
                .push(s.body.clone());
        }
        by.into_iter()
            .map(|((table_id, extension), bodies)| TableUpdate {
                table_id,
                extension,
                bodies,
            })
            .collect()
    }
}

/// What HQ's tables go on air through: the overlay carousel alone ([`Carousel`]), or the
/// muxer's side with the stock-TV carousel beside it ([`Ours`]).
pub trait Outputs {
    /// Puts one of HQ's tables on air; what changed on the overlay.
    fn put(&mut self, table: TableUpdate, now: i64) -> Applied;
    /// The overlay carousel (kept on disk, counted in the health).
    fn overlay(&self) -> &Carousel;
}

impl Outputs for Carousel {
    fn put(&mut self, table: TableUpdate, now: i64) -> Applied {
        self.set_table(table.table_id, table.extension, table.bodies, now)
    }

    fn overlay(&self) -> &Carousel {
        self
    }
}

impl Outputs for Ours<Carousel> {
    fn put(&mut self, table: TableUpdate, now: i64) -> Applied {
        let (overlay, bml) = self.outputs_mut();
        if let Some(bml) = bml {
            let before = bml.rejected().total();
            let result = bml.apply_table(table.table_id, table.extension, &table.bodies, now);
            if bml.rejected().total() > before {
                tracing::warn!(
                    group = table.extension,
                    rejected = ?bml.rejected(),
                    "sections kept off the stock-TV carousel: they do not verify under HQ's keys, \
                     or are for another town, expired or from the future"
                );
            }
            match result {
                Ok(modules) if !modules.is_empty() => {
                    tracing::info!(group = table.extension, ?modules, "stock-TV tables changed");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "stock-TV tables not rebuilt"),
            }
        }
        overlay.put(table, now)
    }

    fn overlay(&self) -> &Carousel {
        self.source()
    }
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
    pub fn restore(&mut self, carousel: &mut impl Outputs, now: i64) -> Result<usize, Error> {
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
        for table in TableUpdate::from_set(&set) {
            Self::put(carousel, table, now);
        }
        if carousel.overlay().tables() > 0 {
            self.health.source = Source::Disk;
        }
        self.count(carousel.overlay(), now);
        Ok(n)
    }

    /// Takes in `--sections` files' contents.
    pub fn add_file(
        &mut self,
        carousel: &mut impl Outputs,
        set: &[AirSection],
        now: i64,
    ) -> Result<Applied, Error> {
        let mut done = Applied::default();
        for table in TableUpdate::from_set(set) {
            done += Self::put(carousel, table, now);
        }
        if self.health.source != Source::Broker {
            self.health.source = Source::File;
        }
        self.changed(carousel.overlay(), now)?;
        Ok(done)
    }

    /// Takes one update; returns what changed on air: [`LiveCore::check`], then
    /// [`LiveCore::air`].
    pub fn apply(
        &mut self,
        carousel: &mut impl Outputs,
        u: Update,
        now: i64,
    ) -> Result<Applied, Error> {
        let Some(table) = self.check(u) else {
            return Ok(Applied::default());
        };
        self.air(carousel, table, now)
    }

    /// The first step of an update: connection news goes into the health; HQ's payload is
    /// decoded and reduced to the sections its topic speaks for. `None`: nothing to air (news,
    /// or a payload that is not a section set, counted as refused).
    pub fn check(&mut self, u: Update) -> Option<TableUpdate> {
        let (table, payload) = match u {
            Update::Connected => {
                self.health.connected = true;
                self.health.last_error = None;
                return None;
            }
            Update::Disconnected(e) | Update::Refused(e) => {
                self.health.connected = false;
                self.health.last_error = Some(e);
                return None;
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
                    return None;
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
        Some(TableUpdate {
            table_id: table.0,
            extension: table.1,
            bodies,
        })
    }

    /// The second step: a checked table onto the overlay carousel, and the carousel kept on
    /// disk when it changed.
    pub fn air(
        &mut self,
        carousel: &mut impl Outputs,
        table: TableUpdate,
        now: i64,
    ) -> Result<Applied, Error> {
        let done = Self::put(carousel, table, now);
        if done.changed > 0 {
            self.changed(carousel.overlay(), now)?;
        }
        Ok(done)
    }

    /// The one place HQ's tables reach the air, whichever way they came (the carousel kept
    /// on disk, `--sections` files, the broker): the overlay carousel and, when it is on, the
    /// stock-TV (BML) carousel, which checks HQ's signature first ([`Outputs`]).
    fn put(carousel: &mut impl Outputs, table: TableUpdate, now: i64) -> Applied {
        carousel.put(table, now)
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

#[cfg(test)]
mod tests;
