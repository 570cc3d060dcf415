//! The meta table: HQ's counters, versions and digests, by key.

use rusqlite::OptionalExtension;

use super::Store;
use crate::error::HqError;

impl Store {
    /// A value of the meta table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, HqError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Sets a value of the meta table.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), HqError> {
        self.set_metas(&[(key, value)])
    }

    /// Sets values of the meta table in one transaction (one commit, one sync).
    pub fn set_metas(&mut self, values: &[(&str, &str)]) -> Result<(), HqError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        for (key, value) in values {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                [key, value],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(err)
    }
}
