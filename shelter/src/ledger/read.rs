//! Events read back from the ledger: every event for presence (strictly, or leniently
//! leaving out rows that cannot be read), and signed envelopes for the outbox, where a row
//! that cannot be read is sent repaired (signed again, or a flagged placeholder), never
//! skipped.

use evac_protocol::{CheckEvent, SecretKey, ShelterId, Signed, shelter_signer};
use rusqlite::{Connection, params};

use super::LedgerError;

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
pub(super) fn placeholder(
    shelter: ShelterId,
    seq: u64,
    wall_ms: u64,
    logical: u32,
    why: &str,
) -> CheckEvent {
    let mut e = CheckEvent::new(shelter, seq, wall_ms, evac_protocol::EventKind::Correction);
    e.at.logical = logical;
    e.flags = vec![evac_protocol::Flag::Other];
    e.note = Some(format!(
        "ledger row {seq} unreadable at the shelter ({why}): check the shelter's paper list"
    ));
    e
}
