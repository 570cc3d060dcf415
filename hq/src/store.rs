//! HQ's SQLite store: every shelter event exactly once, plus commands, orders, found marks,
//! card links, rejections and households' answers from the TV. An event is acknowledged to
//! its shelter only after the transaction that stored it has committed.
//!
//! This file holds the schema, opening and what every part shares; each concern has a file:
//! `events` (shelters' events, progress per shelter, conflicts), `commands` (officers'
//! commands and the links they make), `orders` (notices, orders, the order log, open
//! shelters), `residents` (found marks and card links), `refusals` (rejected messages, CAP
//! messages already taken in), `answers` (households' answers from the TV, self-reported),
//! `meta` (counters and versions) and `unreadable` (what does not read back at start).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use evac_protocol::ShelterId;
use rusqlite::Connection;

use crate::error::HqError;

mod answers;
mod commands;
mod events;
mod meta;
mod orders;
mod refusals;
mod residents;
mod unreadable;
pub use answers::{AnswerStore, StoredAnswer, StoredMark};
pub use commands::CardLinkWrite;
pub use events::{MAX_CONFLICTS_PER_NUMBER, StoredEvent};
pub use orders::{OrderLogRecord, OrderRow};
pub use unreadable::{NotANumber, Unreadable, scan as scan_unreadable};

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
        store
            .conn
            .execute_batch(answers::SCHEMA)
            .map_err(store.err())?;
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

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests;
