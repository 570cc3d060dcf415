//! The append-only SQLite ledger: every event is committed here (WAL, `synchronous=FULL`)
//! before the person at the door sees the result. Events are never updated or deleted (the
//! schema's triggers refuse it); presence and the outbox are derived from them.

use std::path::Path;

use evac_protocol::{
    CheckEvent, Clock, EventId, SecretKey, ShelterId, Signed, Timestamp, shelter_signer,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;

use crate::door::EventDraft;

/// What went wrong with the ledger.
#[derive(Debug, Error)]
pub enum LedgerError {
    /// SQLite refused.
    #[error("ledger {path}: {source}")]
    Sql {
        /// The database file.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file could not be created owner-only (it holds the registry and every visit).
    #[error("ledger {path}: cannot make it owner-only: {source}")]
    Private {
        /// The database file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The database belongs to another shelter.
    #[error("ledger {path} belongs to shelter {found}, this node is shelter {expected}")]
    WrongShelter {
        /// The file.
        path: String,
        /// Configured shelter.
        expected: ShelterId,
        /// Shelter recorded in the file.
        found: String,
    },
    /// The sequence has a gap that no recovery recorded: the file was tampered with.
    #[error("ledger {path}: sequence has gaps ({count} events, highest {max})")]
    Gap {
        /// The file.
        path: String,
        /// Rows.
        count: u64,
        /// Highest sequence.
        max: u64,
    },
    /// An event could not be signed or decoded.
    #[error("ledger {path}: event {seq}: {reason}")]
    Event {
        /// The file.
        path: String,
        /// The event.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    wall_ms  INTEGER NOT NULL,
    logical  INTEGER NOT NULL,
    body     TEXT NOT NULL,
    envelope TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_append_only_u BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_d BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Opens the database with the pragmas every connection to it uses; the file is owner-only.
pub fn connect(path: &Path) -> Result<Connection, LedgerError> {
    let sql = |source| LedgerError::Sql {
        path: path.display().to_string(),
        source,
    };
    evac_protocol::statefile::ensure_private(path).map_err(|source| LedgerError::Private {
        path: path.display().to_string(),
        source,
    })?;
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    Ok(conn)
}

/// Reads a `meta` value.
pub fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// Writes a `meta` value.
pub fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map(|_| ())
}

/// The ledger of one shelter.
pub struct Ledger {
    conn: Connection,
    path: String,
    shelter: ShelterId,
    key: SecretKey,
    clock: Clock,
    next_seq: u64,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` for `shelter`, signing with `key`.
    pub fn open(path: &Path, shelter: ShelterId, key: SecretKey) -> Result<Self, LedgerError> {
        let p = path.display().to_string();
        let conn = connect(path)?;
        let sql = |source| LedgerError::Sql {
            path: p.clone(),
            source,
        };
        match get_meta(&conn, "shelter").map_err(sql)? {
            None => set_meta(&conn, "shelter", &shelter.to_string()).map_err(sql)?,
            Some(s) if s == shelter.to_string() => {}
            Some(found) => {
                return Err(LedgerError::WrongShelter {
                    path: p,
                    expected: shelter,
                    found,
                });
            }
        }
        let (count, max, wall, logical): (u64, u64, u64, u32) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(MAX(seq), 0),
                        COALESCE((SELECT wall_ms FROM events ORDER BY seq DESC LIMIT 1), 0),
                        COALESCE((SELECT logical FROM events ORDER BY seq DESC LIMIT 1), 0)
                 FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(sql)?;
        // Sequence numbers skipped when this ledger found HQ ahead of it (see recover_behind).
        let skipped: u64 = get_meta(&conn, SKIPPED)
            .map_err(sql)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let max = max.max(floor(&conn).map_err(sql)?);
        if count + skipped != max {
            return Err(LedgerError::Gap {
                path: p,
                count,
                max,
            });
        }
        let clock = Clock::resume(
            shelter.0,
            Timestamp {
                wall_ms: wall,
                logical,
                node: shelter.0,
            },
        );
        Ok(Ledger {
            conn,
            path: p,
            shelter,
            key,
            clock,
            next_seq: max + 1,
        })
    }

    /// The database file's path, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The shelter.
    pub fn shelter(&self) -> ShelterId {
        self.shelter
    }

    /// Highest sequence number recorded or skipped (0 when empty), as the file says: the
    /// replicator may have added copies (see [`recover_behind`]).
    pub fn last_seq(&self) -> u64 {
        max_seq(&self.conn)
            .and_then(|m| Ok(m.max(floor(&self.conn)?)))
            .unwrap_or(self.next_seq - 1)
    }

    /// Records an event: assigns the next sequence number and an HLC time, signs it, and
    /// commits it durably. Returns the event once it is on disk.
    pub fn append(&mut self, d: &EventDraft, now_ms: u64) -> Result<CheckEvent, LedgerError> {
        self.append_with(d, now_ms, None, None)
    }

    /// Records an event that may correct another (`corrects`) and carry staff's `note`.
    pub fn append_with(
        &mut self,
        d: &EventDraft,
        now_ms: u64,
        corrects: Option<EventId>,
        note: Option<String>,
    ) -> Result<CheckEvent, LedgerError> {
        // The file decides the number, in one write transaction: the replicator may have
        // appended copies since (see recover_behind).
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| LedgerError::Sql {
                path: self.path.clone(),
                source,
            })?;
        let seq = max_seq(&tx)
            .and_then(|m| Ok(m.max(floor(&tx)?)))
            .map_err(|source| LedgerError::Sql {
                path: self.path.clone(),
                source,
            })?
            .max(self.next_seq - 1)
            + 1;
        let event = CheckEvent {
            id: EventId {
                shelter: self.shelter,
                seq,
            },
            at: self.clock.now(now_ms),
            kind: d.kind,
            card: d.card.clone(),
            resident: d.resident,
            household: d.household,
            assurance: d.assurance,
            flags: d.flags.clone(),
            day_only: d.day_only,
            corrects,
            note,
        };
        let signed = self
            .key
            .sign(&shelter_signer(self.shelter), &event)
            .map_err(|e| LedgerError::Event {
                path: self.path.clone(),
                seq,
                reason: e.to_string(),
            })?;
        let envelope = signed.to_json().map_err(|e| LedgerError::Event {
            path: self.path.clone(),
            seq,
            reason: e.to_string(),
        })?;
        let sql = |source| LedgerError::Sql {
            path: self.path.clone(),
            source,
        };
        tx.execute(
            "INSERT INTO events(seq, wall_ms, logical, body, envelope) VALUES (?1,?2,?3,?4,?5)",
            params![
                seq,
                event.at.wall_ms,
                event.at.logical,
                signed.body_json(),
                envelope
            ],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        self.next_seq = seq + 1;
        Ok(event)
    }

    /// Every event, oldest first.
    pub fn events(&self) -> Result<Vec<CheckEvent>, LedgerError> {
        read_events(&self.conn, &self.path)
    }

    /// The connection (for the registry and meta values).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Every readable event in the database, oldest first, and the sequence numbers of rows
/// whose body cannot be read (logged; a node still starts and records taps).
pub fn read_events_lenient(
    conn: &Connection,
    path: &str,
) -> Result<(Vec<CheckEvent>, Vec<u64>), LedgerError> {
    let sql = |source| LedgerError::Sql {
        path: path.to_owned(),
        source,
    };
    let mut stmt = conn
        .prepare("SELECT seq, body FROM events ORDER BY seq")
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql)?;
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    for row in rows {
        let (seq, body) = row.map_err(sql)?;
        match serde_json::from_str(&body) {
            Ok(e) => out.push(e),
            Err(e) => {
                tracing::error!(seq, error = %e, "ledger row unreadable: left out of presence");
                bad.push(seq);
            }
        }
    }
    Ok((out, bad))
}

/// Every event in the database, oldest first.
pub fn read_events(conn: &Connection, path: &str) -> Result<Vec<CheckEvent>, LedgerError> {
    let sql = |source| LedgerError::Sql {
        path: path.to_owned(),
        source,
    };
    let mut stmt = conn
        .prepare("SELECT seq, body FROM events ORDER BY seq")
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body) = row.map_err(sql)?;
        out.push(serde_json::from_str(&body).map_err(|e| LedgerError::Event {
            path: path.to_owned(),
            seq,
            reason: e.to_string(),
        })?);
    }
    Ok(out)
}

/// Signed events with sequence numbers from `from`, oldest first, at most `limit`, as
/// (sequence, envelope).
///
/// A row whose envelope cannot be read (a damaged disk, a bad restore) never stalls
/// replication: its body is signed again with the node's `key`; when the body is unreadable
/// too, a placeholder correction event under the same sequence number (flagged, with a note
/// saying so) goes in its place, so HQ's contiguous ack passes it and an officer sees it.
/// Either way the row is logged as an error and listed in the second value.
pub fn signed_events_from(
    conn: &Connection,
    from: u64,
    limit: usize,
    key: &SecretKey,
    shelter: ShelterId,
) -> rusqlite::Result<(Vec<OutboxEvent>, Vec<RepairedRow>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, wall_ms, logical, body, envelope FROM events
         WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![from, limit as i64], |r| {
        Ok((
            r.get::<_, u64>(0)?,
            r.get::<_, u64>(1)?,
            r.get::<_, u32>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    let mut repaired = Vec::new();
    for row in rows {
        let (seq, wall_ms, logical, body, env) = row?;
        let env_err = match Signed::<CheckEvent>::from_json(env.as_bytes()) {
            Ok(s) => {
                out.push((seq, s));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let (event, how) = match serde_json::from_str::<CheckEvent>(&body) {
            Ok(e) if e.id.seq == seq && e.id.shelter == shelter => (e, RepairKind::Resigned),
            other => {
                let why = match other {
                    Ok(_) => "body names another event".to_owned(),
                    Err(e) => e.to_string(),
                };
                (
                    placeholder(shelter, seq, wall_ms, logical, &why),
                    RepairKind::Placeholder,
                )
            }
        };
        tracing::error!(seq, error = %env_err, repair = ?how, "ledger row unreadable: sent repaired");
        match key.sign(&shelter_signer(shelter), &event) {
            Ok(s) => out.push((seq, s)),
            Err(e) => {
                tracing::error!(seq, error = %e, "cannot sign a repaired ledger row");
                break; // never leave a gap in a batch
            }
        }
        repaired.push(RepairedRow {
            seq,
            kind: how,
            error: env_err,
        });
    }
    Ok((out, repaired))
}

/// An event ready to send: its sequence number and its signed envelope.
pub type OutboxEvent = (u64, Signed<CheckEvent>);

/// How an unreadable ledger row was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepairKind {
    /// The envelope was unreadable, the body was fine: the body was signed again.
    Resigned,
    /// Nothing could be read: a flagged placeholder correction went in its place.
    Placeholder,
}

/// A ledger row that could not be sent as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairedRow {
    /// Its sequence number.
    pub seq: u64,
    /// What was sent instead.
    pub kind: RepairKind,
    /// Why the envelope was unreadable.
    pub error: String,
}

/// The event sent in place of a row nothing could be read from.
fn placeholder(shelter: ShelterId, seq: u64, wall_ms: u64, logical: u32, why: &str) -> CheckEvent {
    let mut e = CheckEvent::new(shelter, seq, wall_ms, evac_protocol::EventKind::Correction);
    e.at.logical = logical;
    e.flags = vec![evac_protocol::Flag::Other];
    e.note = Some(format!(
        "ledger row {seq} unreadable at the shelter ({why}): check the shelter's paper list"
    ));
    e
}

/// The `meta` key counting sequence numbers skipped by [`recover_behind`].
const SKIPPED: &str = "seq_skipped";
/// The `meta` key of the highest sequence number skipped: new events come after it.
const FLOOR: &str = "seq_floor";

fn floor(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(get_meta(conn, FLOOR)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// What [`recover_behind`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The ledger's highest sequence before.
    pub last: u64,
    /// What HQ acknowledged.
    pub hq_through: u64,
    /// Events this ledger had not had acknowledged, appended again after `hq_through`.
    pub copied: u64,
}

/// Recovers a ledger that HQ is ahead of (HQ acknowledged `hq_through` events of this
/// shelter, the ledger ends before: it was restored from a backup or rebuilt). The events
/// of this ledger that HQ had not acknowledged may share their numbers with different
/// events HQ holds, so HQ would keep them aside as conflicts: each is appended again as a
/// copy numbered after `hq_through` (same tap, same time, a note saying so), the numbers
/// between are recorded as skipped, and the ledger counts everything up to `hq_through` as
/// acknowledged. New taps are numbered after the copies. `None` when HQ is not ahead.
pub fn recover_behind(
    conn: &mut Connection,
    key: &SecretKey,
    shelter: ShelterId,
    hq_through: u64,
) -> rusqlite::Result<Option<Recovery>> {
    // Every ack comes here: the common answer needs no write lock.
    if hq_through <= max_seq(conn)?.max(floor(conn)?) {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let last = max_seq(&tx)?.max(floor(&tx)?);
    if hq_through <= last {
        return Ok(None);
    }
    let number = |k: &str| -> rusqlite::Result<u64> {
        Ok(get_meta(&tx, k)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    };
    let acked = number("acked_through")?;
    let skipped = number(SKIPPED)?;
    let rows: Vec<(u64, u64, u32, String)> = {
        let mut stmt = tx.prepare(
            "SELECT seq, wall_ms, logical, body FROM events WHERE seq > ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([acked], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let renumbered: std::collections::HashMap<u64, u64> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.0, hq_through + 1 + i as u64))
        .collect();
    let mut copied = 0u64;
    for (old, wall_ms, logical, body) in &rows {
        let why = format!(
            "copy of ledger event {old}: the ledger was behind HQ (restored or rebuilt), \
             HQ had {hq_through}"
        );
        let mut event = match serde_json::from_str::<CheckEvent>(body) {
            Ok(e) if e.id.shelter == shelter => e,
            _ => placeholder(shelter, *old, *wall_ms, *logical, "unreadable when copied"),
        };
        event.id.seq = renumbered[old];
        if let Some(c) = event.corrects.as_mut()
            && c.shelter == shelter
            && let Some(&new) = renumbered.get(&c.seq)
        {
            c.seq = new;
        }
        event.note = Some(match event.note.take() {
            Some(n) => format!("{n} · {why}"),
            None => why,
        });
        let signed = key
            .sign(&shelter_signer(shelter), &event)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let envelope = signed
            .to_json()
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        tx.execute(
            "INSERT INTO events(seq, wall_ms, logical, body, envelope) VALUES (?1,?2,?3,?4,?5)",
            params![
                event.id.seq,
                event.at.wall_ms,
                event.at.logical,
                signed.body_json(),
                envelope
            ],
        )?;
        copied += 1;
    }
    set_meta(&tx, SKIPPED, &(skipped + hq_through - last).to_string())?;
    set_meta(&tx, FLOOR, &hq_through.to_string())?;
    set_meta(&tx, "acked_through", &hq_through.to_string())?;
    tx.commit()?;
    Ok(Some(Recovery {
        last,
        hq_through,
        copied,
    }))
}

/// Highest sequence in the database.
pub fn max_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::{Assurance, EventKind};

    fn draft() -> EventDraft {
        EventDraft {
            kind: EventKind::CheckIn,
            card: None,
            resident: None,
            household: None,
            assurance: Assurance::Staff,
            flags: vec![],
            day_only: false,
        }
    }

    #[test]
    fn the_ledger_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let conn = connect(&path).unwrap();
        drop(conn);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _conn = connect(&path).unwrap();
        assert_eq!(mode(&path), 0o640, "world read taken away");
    }

    #[test]
    fn a_ledger_behind_hq_copies_what_hq_did_not_acknowledge_and_numbers_after_hq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let key = || SecretKey::from_seed(&[1; 32]);
        let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
        for t in 0..4 {
            l.append(&draft(), 1_000 + t).unwrap();
        }
        set_meta(l.conn(), "acked_through", "2").unwrap();
        // A correction of the unacknowledged event 3 is renumbered with it.
        let d = EventDraft {
            kind: EventKind::Correction,
            ..draft()
        };
        l.append_with(
            &d,
            2_000,
            Some(EventId {
                shelter: ShelterId(4),
                seq: 3,
            }),
            None,
        )
        .unwrap();
        let mut conn = connect(&path).unwrap();
        assert_eq!(
            recover_behind(&mut conn, &key(), ShelterId(4), 5).unwrap(),
            None
        );
        let r = recover_behind(&mut conn, &key(), ShelterId(4), 9)
            .unwrap()
            .unwrap();
        assert_eq!((r.last, r.hq_through, r.copied), (5, 9, 3));
        // The node's next tap follows the copies, through its own connection.
        let next = l.append(&draft(), 3_000).unwrap();
        assert_eq!(next.id.seq, 13);
        assert_eq!(l.last_seq(), 13);
        assert_eq!(acked_through_meta(l.conn()), 9);
        let events = l.events().unwrap();
        let copies: Vec<&CheckEvent> = events.iter().filter(|e| e.id.seq > 9).collect();
        assert_eq!(
            copies.iter().map(|e| e.id.seq).collect::<Vec<_>>(),
            [10, 11, 12, 13]
        );
        assert_eq!(copies[0].at, events[2].at, "a copy keeps the tap's time");
        assert!(
            copies[0]
                .note
                .as_deref()
                .unwrap()
                .contains("copy of ledger event 3")
        );
        assert_eq!(copies[2].corrects.map(|c| c.seq), Some(10));
        // The skipped numbers are recorded: the ledger opens again, and sends the copies.
        drop(l);
        let l = Ledger::open(&path, ShelterId(4), key()).unwrap();
        assert_eq!(l.last_seq(), 13);
        let (out, _) = signed_events_from(l.conn(), 10, 10, &key(), ShelterId(4)).unwrap();
        assert_eq!(
            out.iter().map(|o| o.0).collect::<Vec<_>>(),
            [10, 11, 12, 13]
        );
        // HQ ahead again with nothing unacknowledged: only the numbers move on.
        set_meta(l.conn(), "acked_through", "13").unwrap();
        let r = recover_behind(&mut conn, &key(), ShelterId(4), 20)
            .unwrap()
            .unwrap();
        assert_eq!(r.copied, 0);
        drop(l);
        let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
        assert_eq!(l.append(&draft(), 4_000).unwrap().id.seq, 21);
    }

    fn acked_through_meta(conn: &Connection) -> u64 {
        get_meta(conn, "acked_through")
            .unwrap()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn appends_survive_reopen_and_refuse_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let key = || SecretKey::from_seed(&[1; 32]);
        let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
        let a = l.append(&draft(), 1_000).unwrap();
        let b = l.append(&draft(), 900).unwrap();
        assert_eq!((a.id.seq, b.id.seq), (1, 2));
        assert!(b.at > a.at, "HLC went backwards");
        drop(l);
        let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
        assert_eq!(l.last_seq(), 2);
        let c = l.append(&draft(), 0).unwrap();
        assert_eq!(c.id.seq, 3);
        assert!(
            c.at > b.at,
            "clock did not resume after the ledger's last event"
        );
        assert_eq!(l.events().unwrap(), vec![a, b, c]);
        let err = l
            .conn()
            .execute("UPDATE events SET body = 'x'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert!(l.conn().execute("DELETE FROM events", []).is_err());
        let (sig, repaired) = signed_events_from(l.conn(), 2, 10, &key(), ShelterId(4)).unwrap();
        assert!(repaired.is_empty());
        assert_eq!(sig.len(), 2);
        assert_eq!(sig[0].1.open(&key().public()).unwrap().id.seq, 2);
        drop(l);
        assert!(matches!(
            Ledger::open(&path, ShelterId(5), key()),
            Err(LedgerError::WrongShelter { .. })
        ));
    }

    /// Regression (issue 13, item 4): an unreadable envelope was skipped, so HQ's contiguous
    /// ack never passed it and the shelter resent the tail for ever.
    #[test]
    fn unreadable_rows_are_sent_repaired_never_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let key = || SecretKey::from_seed(&[1; 32]);
        let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
        let events: Vec<_> = (0..4)
            .map(|i| l.append(&draft(), 1_000 + i).unwrap())
            .collect();
        // Damage rows 2 (envelope only) and 3 (envelope and body), as a bad disk would.
        l.conn()
            .execute_batch(
                "DROP TRIGGER events_append_only_u;
                 UPDATE events SET envelope = '{garbage' WHERE seq = 2;
                 UPDATE events SET envelope = 'x', body = 'y' WHERE seq = 3;",
            )
            .unwrap();
        let (sent, repaired) = signed_events_from(l.conn(), 1, 10, &key(), ShelterId(4)).unwrap();
        assert_eq!(
            sent.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2, 3, 4],
            "a gap stalls HQ's ack"
        );
        let opened: Vec<_> = sent
            .iter()
            .map(|(_, s)| s.open(&key().public()).unwrap())
            .collect();
        assert_eq!(opened[1], events[1], "the body of row 2 was readable");
        assert_eq!(opened[2].kind, evac_protocol::EventKind::Correction);
        assert_eq!(opened[2].id.seq, 3);
        assert!(opened[2].note.as_deref().unwrap().contains("unreadable"));
        assert_eq!(opened[3], events[3]);
        assert_eq!(
            repaired.iter().map(|r| (r.seq, r.kind)).collect::<Vec<_>>(),
            vec![(2, RepairKind::Resigned), (3, RepairKind::Placeholder)]
        );
        // The node still opens and counts what it can read.
        drop(l);
        let l = Ledger::open(&path, ShelterId(4), key()).unwrap();
        let (ok, bad) = read_events_lenient(l.conn(), "x").unwrap();
        assert_eq!((ok.len(), bad), (3, vec![3]));
    }

    #[test]
    fn pragmas_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("x.db")).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
    }
}
