//! What HQ refused (rejected messages, kept for the after-action log) and the CAP messages
//! already taken in (so a message is never taken in twice, across restarts).

use rusqlite::{OptionalExtension, params};

use super::{Store, i};
use crate::error::HqError;

impl Store {
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
}
