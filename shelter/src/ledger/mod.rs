//! The append-only SQLite ledger: every event is committed here (WAL, `synchronous=FULL`)
//! before the person at the door sees the result. Events are never updated or deleted (the
//! schema's triggers refuse it); presence and the outbox are derived from them.
//!
//! This file owns [`Ledger`] (open, number, sign and append) and [`LedgerError`]; around it:
//!
//! - `db.rs`: the SQLite file itself: schema, pragmas, owner-only mode, `meta` values;
//! - `read.rs`: events read back, for presence (strict or lenient) and for the outbox (signed
//!   envelopes, a row that cannot be read sent repaired, never skipped);
//! - `recovery.rs`: a ledger that HQ is ahead of (restored or rebuilt) brought past HQ.

use std::path::Path;

use evac_protocol::{CheckEvent, Clock, EventId, SecretKey, ShelterId, Timestamp, shelter_signer};
use rusqlite::{Connection, TransactionBehavior, params};
use thiserror::Error;

use crate::door::EventDraft;

mod db;
mod read;
mod recovery;

pub use db::{LEDGER_CACHE_KIB, connect, get_meta, max_seq, set_meta};
pub use read::{
    OutboxEvent, RepairKind, RepairedRow, read_events, read_events_lenient, signed_events_from,
};
pub use recovery::{Recovery, recover_behind};

use recovery::{SKIPPED, floor};

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

#[cfg(test)]
mod tests;
