//! A ledger that HQ is ahead of (restored from a backup or rebuilt): the events HQ had not
//! acknowledged copied after HQ's number, the numbers between recorded as skipped.

use evac_protocol::{CheckEvent, SecretKey, ShelterId, shelter_signer};
use rusqlite::{Connection, TransactionBehavior, params};

use super::db::{get_meta, max_seq, set_meta};
use super::read::placeholder;

/// The `meta` key counting sequence numbers skipped by [`recover_behind`].
pub(super) const SKIPPED: &str = "seq_skipped";
/// The `meta` key of the highest sequence number skipped: new events come after it.
pub(super) const FLOOR: &str = "seq_floor";

pub(super) fn floor(conn: &Connection) -> rusqlite::Result<u64> {
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
