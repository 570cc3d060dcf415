//! The command log: every officer's command with who, when, what, why and the outcome.

use evac_protocol::{CardRef, ResidentId};
use rusqlite::{OptionalExtension, params};

use super::{CommandRecord, Store, i};
use crate::error::HqError;

pub(super) const COMMAND_COLUMNS: &str =
    "officer, id, at_ms, received_ms, action, ok, message, reason, body_digest";

fn command_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<CommandRecord> {
    Ok(CommandRecord {
        officer: r.get(0)?,
        id: r.get::<_, i64>(1)?.max(0) as u64,
        at_ms: r.get::<_, i64>(2)?.max(0) as u64,
        received_ms: r.get::<_, i64>(3)?.max(0) as u64,
        action: r.get(4)?,
        ok: r.get(5)?,
        message: r.get(6)?,
        reason: r.get(7)?,
        body_digest: r.get(8)?,
    })
}

pub(super) fn insert_command(
    conn: &rusqlite::Connection,
    c: &CommandRecord,
) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "INSERT OR IGNORE INTO commands ({COMMAND_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            c.officer,
            i(c.id),
            i(c.at_ms),
            i(c.received_ms),
            c.action,
            c.ok,
            c.message,
            c.reason,
            c.body_digest
        ],
    )
}

/// A card link to keep with the command that made it (see [`Store::record_command_with`]).
pub struct CardLinkWrite<'a> {
    /// The card.
    pub card: &'a CardRef,
    /// Its resident.
    pub resident: ResidentId,
    /// Meta values that change with it (the registry's version and digest).
    pub meta: &'a [(&'a str, &'a str)],
}

impl Store {
    /// The command an officer gave under a number, if HQ has one.
    pub fn command(&self, officer: &str, id: u64) -> Result<Option<CommandRecord>, HqError> {
        self.conn
            .query_row(
                &format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE officer = ?1 AND id = ?2"),
                params![officer, i(id)],
                command_record,
            )
            .optional()
            .map_err(self.err())
    }

    /// Keeps a command with who, when, what and the outcome.
    pub fn record_command(&mut self, c: &CommandRecord) -> Result<(), HqError> {
        insert_command(&self.conn, c)
            .map(|_| ())
            .map_err(self.err())
    }

    /// Every command, in the order received.
    pub fn commands(&self) -> Result<Vec<CommandRecord>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COMMAND_COLUMNS} FROM commands ORDER BY received_ms"
            ))
            .map_err(&err)?;
        let rows = stmt.query_map([], command_record).map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Keeps a command and, with it, the card link it made and the meta values that change,
    /// in one transaction: one commit (one sync) for an officer's card link.
    pub fn record_command_with(
        &mut self,
        c: &CommandRecord,
        link: &CardLinkWrite<'_>,
    ) -> Result<(), HqError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        let json = serde_json::to_string(link.card).unwrap_or_default();
        tx.execute(
            "INSERT OR REPLACE INTO card_links (card, resident, officer, at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![json, link.resident.0, c.officer, i(c.received_ms)],
        )
        .map_err(&err)?;
        for (key, value) in link.meta {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                [key, value],
            )
            .map_err(&err)?;
        }
        insert_command(&tx, c).map_err(&err)?;
        tx.commit().map_err(err)
    }
}
