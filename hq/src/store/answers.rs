//! Households' answers from the TV (`answers`) and the households whose answers need an
//! officer's confirmation after too many wrong answer codes (`answer_flags`).
//!
//! The answer endpoint writes through an [`AnswerStore`], a connection of its own to HQ's
//! file (SQLite in WAL mode serialises writers; each answer is one short transaction), so it
//! never waits on HQ's main loop nor HQ's loop on it for longer than a commit. An answer is
//! self-reported: it is kept apart from the shelters' events and officers' marks and decides
//! no presence; no answer code is ever stored.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Store, i};
use crate::error::HqError;

/// The answers' tables (also made by [`Store::open`], so readers find them).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY, household INTEGER NOT NULL, kind TEXT NOT NULL, people INTEGER,
    received_ms INTEGER NOT NULL, source TEXT NOT NULL, needs_confirmation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS answer_flags (
    household INTEGER PRIMARY KEY, failures INTEGER NOT NULL, flagged_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS answer_marks (
    answer INTEGER NOT NULL, mark TEXT NOT NULL, household INTEGER NOT NULL,
    officer TEXT NOT NULL, at_ms INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (answer, mark));
";

/// An officer's mark on one stored answer (`answer_marks`), kept with the command that made
/// it (see [`Store::record_command_marking`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMark {
    /// The answer's row in `answers`: a later answer of the household carries no mark.
    pub answer: i64,
    /// `handled` or `confirmed`.
    pub mark: String,
    /// The household that answered.
    pub household: u32,
    /// The officer whose command made it.
    pub officer: String,
    /// When HQ carried the command out (Unix ms, HQ's clock).
    pub at_ms: u64,
    /// The command's reason.
    pub reason: String,
}

/// One answer as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The household that answered.
    pub household: u32,
    /// What it answered (`evacuated_elsewhere`, `safe_at_home`, `need_help`, `at_shelter`).
    pub kind: String,
    /// How many people need help (for `need_help`).
    pub people: Option<u32>,
    /// When HQ received it (Unix ms, HQ's clock).
    pub received_ms: u64,
    /// The source it came from (an IPv4 address or an IPv6 /64).
    pub source: String,
    /// Whether an officer must confirm it (its household had too many wrong codes).
    pub needs_confirmation: bool,
}

/// The answer endpoint's own connection to HQ's store.
pub struct AnswerStore {
    conn: Connection,
    path: PathBuf,
}

impl AnswerStore {
    /// Opens HQ's store at `path` for answers (HQ has made it private already).
    pub fn open(path: &Path) -> Result<AnswerStore, HqError> {
        let err = |cause| HqError::Store {
            path: path.to_owned(),
            cause,
        };
        crate::files::ensure_private(path)?;
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(err)?;
        Ok(AnswerStore {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> HqError + use<> {
        let path = self.path.clone();
        move |cause| HqError::Store {
            path: path.clone(),
            cause,
        }
    }

    /// Keeps an answer; durable when this returns (synchronous = FULL).
    pub fn record(&mut self, a: &StoredAnswer) -> Result<(), HqError> {
        self.conn
            .execute(
                "INSERT INTO answers (household, kind, people, received_ms, source, needs_confirmation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.household,
                    a.kind,
                    a.people,
                    i(a.received_ms),
                    a.source,
                    a.needs_confirmation
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Keeps that `household`'s answers need an officer's confirmation from now on.
    pub fn flag(&mut self, household: u32, failures: u32, at_ms: u64) -> Result<(), HqError> {
        self.conn
            .execute(
                "INSERT INTO answer_flags (household, failures, flagged_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (household) DO UPDATE SET failures = excluded.failures",
                params![household, failures, i(at_ms)],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// The households flagged so far, with their wrong codes when flagged.
    pub fn flagged(&self) -> Result<Vec<(u32, u32)>, HqError> {
        flagged(&self.conn).map_err(self.err())
    }
}

fn flagged(conn: &Connection) -> rusqlite::Result<Vec<(u32, u32)>> {
    let mut stmt =
        conn.prepare("SELECT household, failures FROM answer_flags ORDER BY household")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

impl Store {
    /// Every answer from the TV, in the order received.
    pub fn answers(&self) -> Result<Vec<StoredAnswer>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT household, kind, people, received_ms, source, needs_confirmation
                 FROM answers ORDER BY id",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredAnswer {
                    household: r.get(0)?,
                    kind: r.get(1)?,
                    people: r.get(2)?,
                    received_ms: r.get::<_, i64>(3)?.max(0) as u64,
                    source: r.get(4)?,
                    needs_confirmation: r.get(5)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The answers stored after row `after` (0: all), with their row ids, in the order
    /// received: HQ's loop takes in what the answer endpoint wrote since it last looked.
    pub fn answers_after(&self, after: i64) -> Result<Vec<(i64, StoredAnswer)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, household, kind, people, received_ms, source, needs_confirmation
                 FROM answers WHERE id > ?1 ORDER BY id",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([after], |r| {
                Ok((
                    r.get(0)?,
                    StoredAnswer {
                        household: r.get(1)?,
                        kind: r.get(2)?,
                        people: r.get(3)?,
                        received_ms: r.get::<_, i64>(4)?.max(0) as u64,
                        source: r.get(5)?,
                        needs_confirmation: r.get(6)?,
                    },
                ))
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Keeps a command and the mark it put on an answer in one transaction (one commit): a
    /// restart finds both or neither, so a resend is answered as carried out only if it was.
    pub fn record_command_marking(
        &mut self,
        c: &super::CommandRecord,
        m: &StoredMark,
    ) -> Result<(), HqError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        tx.execute(
            "INSERT OR REPLACE INTO answer_marks (answer, mark, household, officer, at_ms, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                m.answer,
                m.mark,
                m.household,
                m.officer,
                i(m.at_ms),
                m.reason
            ],
        )
        .map_err(&err)?;
        super::commands::insert_command(&tx, c).map_err(&err)?;
        tx.commit().map_err(err)
    }

    /// Every officer's mark on an answer, in the order made.
    pub fn answer_marks(&self) -> Result<Vec<StoredMark>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT answer, mark, household, officer, at_ms, reason FROM answer_marks
                 ORDER BY at_ms, answer",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredMark {
                    answer: r.get(0)?,
                    mark: r.get(1)?,
                    household: r.get(2)?,
                    officer: r.get(3)?,
                    at_ms: r.get::<_, i64>(4)?.max(0) as u64,
                    reason: r.get(5)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The households whose answers need an officer's confirmation, with their wrong codes.
    pub fn answer_flags(&self) -> Result<Vec<(u32, u32)>, HqError> {
        flagged(&self.conn).map_err(self.err())
    }
}
