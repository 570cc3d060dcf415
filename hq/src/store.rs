//! HQ's SQLite store: every shelter event exactly once, plus commands, orders, found marks,
//! card links and rejections. An event is acknowledged to its shelter only after the
//! transaction that stored it has committed.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use evac_protocol::{CardRef, CheckEvent, EventKind, ResidentId, ShelterId, Signed, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::HqError;

mod commands;
mod meta;
mod unreadable;
pub use commands::CardLinkWrite;
pub use unreadable::{Unreadable, scan as scan_unreadable};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    shelter INTEGER NOT NULL, seq INTEGER NOT NULL,
    wall_ms INTEGER NOT NULL, logical INTEGER NOT NULL, node INTEGER NOT NULL,
    kind TEXT NOT NULL, resident INTEGER, received_ms INTEGER NOT NULL,
    body TEXT NOT NULL, sig TEXT NOT NULL,
    PRIMARY KEY (shelter, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflicts (
    shelter INTEGER NOT NULL, seq INTEGER NOT NULL, received_ms INTEGER NOT NULL,
    body TEXT NOT NULL, sig TEXT NOT NULL,
    PRIMARY KEY (shelter, seq, body)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    officer TEXT NOT NULL, id INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL, action TEXT NOT NULL, ok INTEGER NOT NULL,
    message TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', body_digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (officer, id));
CREATE TABLE IF NOT EXISTS found (
    resident INTEGER PRIMARY KEY, wall_ms INTEGER NOT NULL, logical INTEGER NOT NULL,
    officer TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS card_links (
    card TEXT PRIMARY KEY, resident INTEGER NOT NULL, officer TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notices (
    message_id INTEGER PRIMARY KEY, spec TEXT NOT NULL, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    household INTEGER PRIMARY KEY, shelter INTEGER, level INTEGER, hazard TEXT,
    message_id INTEGER, version INTEGER NOT NULL, needs_help INTEGER NOT NULL, walk_m INTEGER);
CREATE TABLE IF NOT EXISTS order_log (
    id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, message_id INTEGER NOT NULL,
    kind TEXT NOT NULL, household INTEGER NOT NULL, shelter INTEGER NOT NULL,
    level INTEGER NOT NULL, hazard TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shelter_open (shelter INTEGER PRIMARY KEY, open INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cap_seen (
    sender TEXT NOT NULL, identifier TEXT NOT NULL, sent INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (sender, identifier, sent)) WITHOUT ROWID;
";

/// What became of an event handed to [`Store::insert_events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New,
    /// Already held, the same event (or the same conflicting one, or one past
    /// [`MAX_CONFLICTS_PER_NUMBER`]): ignored.
    Repeat,
    /// A different event under a number already held: kept in `conflicts`, not applied.
    Conflict,
}

/// The most different events kept aside under one (shelter, number): enough for a ledger
/// restored several times, bounded against a key that sends new bodies without end.
pub const MAX_CONFLICTS_PER_NUMBER: u64 = 8;

impl Store {
    /// How many conflicting events each shelter sent (see [`Stored::Conflict`]).
    pub fn conflicts_by_shelter(&self) -> Result<Vec<(ShelterId, u64)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT shelter, COUNT(*) FROM conflicts GROUP BY shelter")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((ShelterId(r.get(0)?), r.get::<_, i64>(1)? as u64))
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

/// Which events of one shelter are stored: the highest contiguous sequence and the ones above it.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    /// Every event 1..=through is stored.
    pub through: u64,
    /// Stored events above `through + 1` (a gap lies below the smallest).
    pub above: BTreeSet<u64>,
}

impl Progress {
    fn add(&mut self, seq: u64) {
        if seq <= self.through {
            return;
        }
        self.above.insert(seq);
        while self.above.remove(&(self.through + 1)) {
            self.through += 1;
        }
    }

    /// How many sequence numbers are missing below the highest stored one.
    pub fn missing(&self) -> u64 {
        match self.above.last() {
            Some(max) => max - self.through - self.above.len() as u64,
            None => 0,
        }
    }
}

/// One stored event as read back for replay or export.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The event.
    pub event: CheckEvent,
    /// When HQ stored it (Unix ms).
    pub received_ms: u64,
}

/// A command as kept in the store.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    /// The officer.
    pub officer: String,
    /// The officer's command number.
    pub id: u64,
    /// When the officer gave it (Unix ms).
    pub at_ms: u64,
    /// When HQ received it (Unix ms).
    pub received_ms: u64,
    /// The action, JSON.
    pub action: String,
    /// Whether HQ carried it out.
    pub ok: bool,
    /// HQ's reply text.
    pub message: String,
    /// The officer's reason.
    pub reason: String,
    /// SHA-256 (hex) of the signed body: a repeat of the number must be the same command
    /// (empty for a command kept before digests were).
    pub body_digest: String,
}

/// A line of the order log.
#[derive(Debug, Clone)]
pub struct OrderLogRecord {
    /// When (Unix ms).
    pub at_ms: u64,
    /// The message id.
    pub message_id: u32,
    /// `alert`, `update` or `cancel`.
    pub kind: String,
    /// The household.
    pub household: u32,
    /// The shelter.
    pub shelter: u32,
    /// Alert level.
    pub level: u8,
    /// Hazard name.
    pub hazard: String,
    /// Order version.
    pub version: u32,
}

/// A stored order row (the order book's persistent form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Household id.
    pub household: u32,
    /// The assignment, when the household has an active order: shelter, level, hazard, message.
    pub active: Option<(u32, u8, String, u32)>,
    /// The household's order version.
    pub version: u32,
    /// Someone in the household needs help.
    pub needs_help: bool,
    /// The walk to the shelter in metres, when the order was routed over the town's roads.
    pub walk_m: Option<u32>,
}

/// The SQLite store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    progress: HashMap<ShelterId, Progress>,
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, HqError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(HqError::io(dir, "create"))?;
        }
        // The store holds the registry's card links and every person's whereabouts.
        crate::files::ensure_private(path)?;
        let conn = Connection::open(path).map_err(|cause| HqError::Store {
            path: path.to_owned(),
            cause,
        })?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            progress: HashMap::new(),
        };
        store.conn.execute_batch(SCHEMA).map_err(store.err())?;
        store.add_new_columns()?;
        for ext in ["sqlite-wal", "sqlite-shm"] {
            let side = path.with_extension(ext);
            if side.exists() {
                crate::files::ensure_private(&side)?;
            }
        }
        store.load_progress()?;
        Ok(store)
    }

    /// Columns added since the first schema, added to a store made before them: an order's
    /// walk (NULL: not known), a command's reason (empty: not given), a command's body digest
    /// (empty: not known).
    fn add_new_columns(&self) -> Result<(), HqError> {
        let err = self.err();
        for (table, column, decl) in [
            ("orders", "walk_m", "walk_m INTEGER"),
            ("commands", "reason", "reason TEXT NOT NULL DEFAULT ''"),
            (
                "commands",
                "body_digest",
                "body_digest TEXT NOT NULL DEFAULT ''",
            ),
        ] {
            let has = self
                .conn
                .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
                .and_then(|mut s| s.exists([table, column]))
                .map_err(&err)?;
            if !has {
                self.conn
                    .execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {decl}"))
                    .map_err(&err)?;
            }
        }
        Ok(())
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> HqError + use<> {
        let path = self.path.clone();
        move |cause| HqError::Store {
            path: path.clone(),
            cause,
        }
    }

    fn load_progress(&mut self) -> Result<(), HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT shelter, seq FROM events ORDER BY shelter, seq")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&err)?;
        for row in rows {
            let (shelter, seq) = row.map_err(&err)?;
            self.progress
                .entry(ShelterId(shelter))
                .or_default()
                .add(seq.max(0) as u64);
        }
        Ok(())
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores verified events in one transaction (at most [`MAX_CONFLICTS_PER_NUMBER`]
    /// conflicting bodies are kept under one number); returns what became of each: new, a
    /// repeat (ignored), or a different event under a number already held (kept aside in
    /// `conflicts`, once). When this returns `Ok`, the events are committed.
    pub fn insert_events(
        &mut self,
        events: &[(&Signed<CheckEvent>, &CheckEvent)],
        received_ms: u64,
    ) -> Result<Vec<Stored>, HqError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        let mut fresh = Vec::with_capacity(events.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (shelter, seq, wall_ms, logical, node, kind, resident,
                     received_ms, body, sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(&err)?;
            for (signed, e) in events {
                let kind = match e.kind {
                    EventKind::CheckIn => "check-in",
                    EventKind::CheckOut => "check-out",
                    EventKind::StaffRegistration => "staff-registration",
                    EventKind::Correction => "correction",
                };
                let n = stmt
                    .execute(params![
                        e.id.shelter.0,
                        i(e.id.seq),
                        i(e.at.wall_ms),
                        e.at.logical,
                        e.at.node,
                        kind,
                        e.resident.map(|r| r.0),
                        i(received_ms),
                        signed.body_json(),
                        signed.sig,
                    ])
                    .map_err(&err)?;
                if n == 1 {
                    fresh.push(Stored::New);
                    continue;
                }
                let held: String = tx
                    .query_row(
                        "SELECT body FROM events WHERE shelter = ?1 AND seq = ?2",
                        params![e.id.shelter.0, i(e.id.seq)],
                        |r| r.get(0),
                    )
                    .map_err(&err)?;
                if held == signed.body_json() {
                    fresh.push(Stored::Repeat);
                    continue;
                }
                let kept: u64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM conflicts WHERE shelter = ?1 AND seq = ?2",
                        params![e.id.shelter.0, i(e.id.seq)],
                        |r| r.get(0),
                    )
                    .map_err(&err)?;
                if kept >= MAX_CONFLICTS_PER_NUMBER {
                    // A restored ledger reuses a number once or twice; a key that sends ever
                    // new bodies under one number fills no disk.
                    tracing::warn!(
                        shelter = e.id.shelter.0,
                        seq = e.id.seq,
                        "another conflicting event under a number: not kept"
                    );
                    fresh.push(Stored::Repeat);
                    continue;
                }
                let n = tx
                    .execute(
                        "INSERT OR IGNORE INTO conflicts (shelter, seq, received_ms, body, sig)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            e.id.shelter.0,
                            i(e.id.seq),
                            i(received_ms),
                            signed.body_json(),
                            signed.sig
                        ],
                    )
                    .map_err(&err)?;
                fresh.push(if n == 1 {
                    Stored::Conflict
                } else {
                    Stored::Repeat
                });
            }
        }
        tx.commit().map_err(&err)?;
        for ((_, e), new) in events.iter().zip(&fresh) {
            if *new == Stored::New {
                self.progress.entry(e.id.shelter).or_default().add(e.id.seq);
            }
        }
        Ok(fresh)
    }

    /// What is stored of a shelter's events.
    pub fn progress(&self, shelter: ShelterId) -> Progress {
        self.progress.get(&shelter).cloned().unwrap_or_default()
    }

    /// Every shelter that has sent events, with its progress.
    pub fn all_progress(&self) -> impl Iterator<Item = (ShelterId, &Progress)> {
        self.progress.iter().map(|(s, p)| (*s, p))
    }

    /// How many events are stored.
    pub fn event_count(&self) -> Result<u64, HqError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(self.err())
    }

    /// Every stored event that decodes, in HLC order (see [`Store::events_read`]).
    pub fn events(&self) -> Result<Vec<StoredEvent>, HqError> {
        Ok(self.events_read()?.0)
    }

    /// Records rejected messages (kept for the after-action log) in one transaction.
    pub fn record_rejections(&mut self, rows: &[(u64, String, String)]) -> Result<(), HqError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO rejections (at_ms, topic, reason) VALUES (?1, ?2, ?3)")
                .map_err(&err)?;
            for (at, topic, reason) in rows {
                stmt.execute(params![i(*at), topic, reason]).map_err(&err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Events kept aside as conflicts (see [`Stored::Conflict`]): (received_ms, event), in the
    /// order received; a body that no longer parses is left out.
    pub fn conflicts(&self) -> Result<Vec<(u64, CheckEvent)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT received_ms, body FROM conflicts ORDER BY received_ms, shelter, seq")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, String>(1)?))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (at, body) = row.map_err(&err)?;
            if let Ok(e) = serde_json::from_str(&body) {
                out.push((at, e));
            }
        }
        Ok(out)
    }

    /// Rejections so far: (at_ms, topic, reason).
    pub fn rejections(&self) -> Result<Vec<(u64, String, String)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT at_ms, topic, reason FROM rejections ORDER BY id")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?, r.get(2)?))
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Whether a CAP message (sender, identifier, sent) was taken in already.
    pub fn cap_seen(&self, sender: &str, identifier: &str, sent: i64) -> Result<bool, HqError> {
        self.conn
            .query_row(
                "SELECT 1 FROM cap_seen WHERE sender = ?1 AND identifier = ?2 AND sent = ?3",
                params![sender, identifier, sent],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(self.err())
    }

    /// Remembers a CAP message as taken in.
    pub fn record_cap(
        &mut self,
        sender: &str,
        identifier: &str,
        sent: i64,
        at_ms: u64,
    ) -> Result<(), HqError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO cap_seen (sender, identifier, sent, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![sender, identifier, sent, i(at_ms)],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Marks a resident found at HQ time `at`.
    pub fn set_found(
        &mut self,
        resident: ResidentId,
        at: Timestamp,
        officer: &str,
        note: &str,
    ) -> Result<(), HqError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO found (resident, wall_ms, logical, officer, note) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![resident.0, i(at.wall_ms), at.logical, officer, note],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Every found mark: resident, time, officer, note.
    pub fn found(&self) -> Result<Vec<(ResidentId, Timestamp, String, String)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT resident, wall_ms, logical, officer, note FROM found")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    ResidentId(r.get(0)?),
                    Timestamp {
                        wall_ms: r.get::<_, i64>(1)?.max(0) as u64,
                        logical: r.get(2)?,
                        node: 0,
                    },
                    r.get(3)?,
                    r.get(4)?,
                ))
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Links a card to a resident.
    pub fn link_card(
        &mut self,
        card: &CardRef,
        resident: ResidentId,
        officer: &str,
        at_ms: u64,
    ) -> Result<(), HqError> {
        let json = serde_json::to_string(card).unwrap_or_default();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO card_links (card, resident, officer, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![json, resident.0, officer, i(at_ms)],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Every card link made by officers that reads (see [`Store::card_links_read`]).
    pub fn card_links(&self) -> Result<Vec<(CardRef, ResidentId)>, HqError> {
        Ok(self.card_links_read()?.0)
    }

    /// Saves notices (message id, spec JSON, active) and order rows and appends the order log,
    /// all in one transaction.
    pub fn save_orders(
        &mut self,
        notices: &[(u32, String, bool)],
        rows: &[OrderRow],
        log: &[OrderLogRecord],
        shelter_open: &[(u32, bool)],
    ) -> Result<(), HqError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        {
            let mut n = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO notices (message_id, spec, active) VALUES (?1, ?2, ?3)",
                )
                .map_err(&err)?;
            for (id, spec, active) in notices {
                n.execute(params![id, spec, active]).map_err(&err)?;
            }
            let mut o = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO orders (household, shelter, level, hazard, message_id, version, needs_help, walk_m)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&err)?;
            for r in rows {
                let (s, l, h, m) = match &r.active {
                    Some((s, l, h, m)) => (Some(*s), Some(*l), Some(h.as_str()), Some(*m)),
                    None => (None, None, None, None),
                };
                o.execute(params![
                    r.household,
                    s,
                    l,
                    h,
                    m,
                    r.version,
                    r.needs_help,
                    r.walk_m
                ])
                .map_err(&err)?;
            }
            let mut g = tx
                .prepare_cached(
                    "INSERT INTO order_log (at_ms, message_id, kind, household, shelter, level, hazard, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&err)?;
            for l in log {
                g.execute(params![
                    i(l.at_ms),
                    l.message_id,
                    l.kind,
                    l.household,
                    l.shelter,
                    l.level,
                    l.hazard,
                    l.version
                ])
                .map_err(&err)?;
            }
            let mut s = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO shelter_open (shelter, open) VALUES (?1, ?2)",
                )
                .map_err(&err)?;
            for (id, open) in shelter_open {
                s.execute(params![id, open]).map_err(&err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Stored notices: message id, spec JSON, active.
    pub fn notices(&self) -> Result<Vec<(u32, String, bool)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT message_id, spec, active FROM notices ORDER BY message_id")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Stored order rows.
    pub fn orders(&self) -> Result<Vec<OrderRow>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT household, shelter, level, hazard, message_id, version, needs_help, walk_m FROM orders")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                let s: Option<u32> = r.get(1)?;
                let l: Option<u8> = r.get(2)?;
                let h: Option<String> = r.get(3)?;
                let m: Option<u32> = r.get(4)?;
                let active = match (s, l, h, m) {
                    (Some(s), Some(l), Some(h), Some(m)) => Some((s, l, h, m)),
                    _ => None,
                };
                Ok(OrderRow {
                    household: r.get(0)?,
                    active,
                    version: r.get(5)?,
                    needs_help: r.get(6)?,
                    walk_m: r.get(7)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The order log, in time order.
    pub fn order_log(&self) -> Result<Vec<OrderLogRecord>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT at_ms, message_id, kind, household, shelter, level, hazard, version FROM order_log ORDER BY id")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(OrderLogRecord {
                    at_ms: r.get::<_, i64>(0)?.max(0) as u64,
                    message_id: r.get(1)?,
                    kind: r.get(2)?,
                    household: r.get(3)?,
                    shelter: r.get(4)?,
                    level: r.get(5)?,
                    hazard: r.get(6)?,
                    version: r.get(7)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Shelters whose open/closed state an officer set.
    pub fn shelter_open(&self) -> Result<Vec<(u32, bool)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT shelter, open FROM shelter_open")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

#[cfg(test)]
mod tests;
