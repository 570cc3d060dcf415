//! The ledger's SQLite file: its schema (events append-only by trigger, a `meta` table), the
//! pragmas every connection uses, the file kept owner-only, and `meta` values.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::LedgerError;

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

/// The page cache of each connection to the ledger, in KiB (SQLite's default is 2,000 KiB a
/// connection, and a node holds two: its own and the replicator's). A shelter's ledger is a few
/// MB at most and its reads are the newest events (the outbox) or one pass at start-up; the
/// operating system's file cache holds the rest, and every commit is on disk (`FULL`) whatever
/// the cache.
pub const LEDGER_CACHE_KIB: i64 = 256;

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
    conn.pragma_update(None, "cache_size", -LEDGER_CACHE_KIB)
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

/// Highest sequence in the database.
pub fn max_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
}
