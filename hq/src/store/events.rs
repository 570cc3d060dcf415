//! Shelters' events: each stored once, in order of arrival, with what is stored per shelter
//! and the conflicting bodies kept aside under a number already held.

use evac_protocol::{CheckEvent, EventKind, ShelterId, Signed};
use rusqlite::params;

use super::{Progress, Store, Stored, i};
use crate::error::HqError;

/// The most different events kept aside under one (shelter, number): enough for a ledger
/// restored several times, bounded against a key that sends new bodies without end.
pub const MAX_CONFLICTS_PER_NUMBER: u64 = 8;

/// One stored event as read back for replay or export.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The event.
    pub event: CheckEvent,
    /// When HQ stored it (Unix ms).
    pub received_ms: u64,
}

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

    pub(super) fn load_progress(&mut self) -> Result<(), HqError> {
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
}
