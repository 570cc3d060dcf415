//! The registry replica on disk, in shards (see [`evac_protocol::messages::shards`]): what a
//! shelter holds of HQ's registry at any town size, in SQLite rather than in memory, indexed
//! for a tap (card digest → resident and household) and for staff (resident → household,
//! household → members).
//!
//! It takes HQ's three registry messages, already verified: the manifest names the shards
//! whose digest differs from ours ([`Replica::take_manifest`]: read those, one at a time); a
//! shard replaces ours whole ([`Replica::take_shard`]); a delta is applied when it follows the
//! version we hold, and otherwise shows a gap: the shard is then read again
//! ([`Replica::offer_delta`]). Each shard keeps its version and the order-free sum of its
//! households' hashes, so its digest is updated with each change and compared with HQ's.
//!
//! [`sync`] keeps it in step with HQ over MQTT (one connection, in the replicator's thread);
//! the door reads it through a connection of its own ([`Replica::open_reader`], see
//! [`crate::registry`]).

use std::path::{Path, PathBuf};

use evac_protocol::messages::shards::{household_hash, registry_digest, shard_of};
use evac_protocol::{
    CardDigest, DeltaFit, HouseholdId, RegistryDelta, RegistryHousehold, RegistryManifest,
    RegistryShard, ResidentId, ShardDigest, ShardSum, TownId,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use thiserror::Error;

use crate::registry::Member;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registry_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registry_shards (
    shard   INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    xor     BLOB NOT NULL,
    count   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_households (
    id    INTEGER PRIMARY KEY,
    shard INTEGER NOT NULL,
    body  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS registry_households_shard ON registry_households(shard);
CREATE TABLE IF NOT EXISTS registry_cards (
    digest    BLOB PRIMARY KEY,
    resident  INTEGER NOT NULL,
    household INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registry_cards_household ON registry_cards(household);
CREATE TABLE IF NOT EXISTS registry_residents (
    id        INTEGER PRIMARY KEY,
    household INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS registry_residents_household ON registry_residents(household);
";

/// The page cache of the door's connection to the replica, in KiB (SQLite's default is 2,000
/// KiB a connection). At a city's size the replica is over 100 MB and a drill's taps reach
/// pages all over it, so the door's cache filled to its bound. A tap reads a few pages of three
/// B-trees; what the cache misses comes from the operating system's file cache in microseconds
/// (the `replica` bench's lookup p99).
pub const DOOR_CACHE_KIB: i64 = 512;

/// The page cache of the sync's connection (the one that writes), in KiB: SQLite's default,
/// kept because a node filling its replica writes 16 shards a transaction across four B-trees
/// and a smaller cache was not measured against that fill's time. A node that does not fill
/// reads only the shard table and the pages a delta changes with it, far under this bound.
pub const WRITER_CACHE_KIB: i64 = 2_000;

/// The longest a door's lookup waits for a lock on the replica.
pub const READ_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// What went wrong with the replica's database.
#[derive(Debug, Error)]
pub enum ReplicaError {
    /// SQLite refused.
    #[error("registry replica: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The file could not be made owner-only.
    #[error("registry replica {path}: cannot make it owner-only: {reason}")]
    Private {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A stored household does not read (the file was edited or damaged).
    #[error("registry replica: household {household} does not read: {reason}")]
    Household {
        /// The household.
        household: u32,
        /// Why.
        reason: String,
    },
}

/// Where a node keeps its replica: `registry.db` beside its ledger.
pub fn replica_path(ledger: &Path) -> PathBuf {
    ledger.with_file_name("registry.db")
}

/// The registry replica in its SQLite file.
pub struct Replica {
    conn: Connection,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("path", &self.conn.path())
            .finish()
    }
}

/// The town, card key and shard count the stored shards belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Frame {
    town: String,
    card_check: String,
    shards: u16,
}

impl Replica {
    /// Opens (or creates) the replica in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Replica, ReplicaError> {
        // Names and needs-help flags: owner-only, like the ledger.
        evac_protocol::statefile::ensure_private(path).map_err(|e| ReplicaError::Private {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A replica lost in a power cut is read again from HQ: no fsync a change.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        Replica::with(conn)
    }

    /// Opens the replica at `path`; one that does not open or does not read (not SQLite, its
    /// tables or frame damaged) is set aside beside it (`registry.db.bad-NOW_MS`, its `-wal`
    /// and `-shm` too) and made anew, empty: the replicator reads it again from HQ's retained
    /// shards. `None` (logged) only when not even a new one can be made: the node still
    /// starts, every card then reads as not registered.
    pub fn open_or_set_aside(path: &Path) -> Option<Replica> {
        let checked = Replica::open(path).and_then(|r| r.check().map(|()| r));
        let e = match checked {
            Ok(r) => return Some(r),
            Err(e) => e,
        };
        let now = evac_protocol::time::now_ms();
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            if file.exists() {
                match evac_protocol::statefile::set_aside(&file, now) {
                    Ok(to) => {
                        tracing::error!(error = %e, aside = %to.display(), "registry replica does not read: set aside, read again from HQ")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "registry replica does not read and cannot be set aside")
                    }
                }
            }
        }
        Replica::open(path)
            .map_err(|e| tracing::error!(error = %e, path = %path.display(), "no registry replica: every card reads as not registered"))
            .ok()
    }

    /// Reads what every lookup relies on (the frame, each shard's row): an error when the file
    /// is damaged.
    fn check(&self) -> Result<(), ReplicaError> {
        self.frame()?;
        self.version()?;
        let mut st = self
            .conn
            .prepare("SELECT shard, version, xor, count FROM registry_shards")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let xor: Vec<u8> = r.get(2)?;
            let (_, _, _): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(3)?);
            if xor.len() != 32 {
                return Err(ReplicaError::Sql(rusqlite::Error::InvalidColumnType(
                    2,
                    "xor".into(),
                    rusqlite::types::Type::Blob,
                )));
            }
        }
        Ok(())
    }

    /// The replica in `conn` (its tables are made when missing).
    pub fn with(conn: Connection) -> Result<Replica, ReplicaError> {
        conn.execute_batch(SCHEMA)?;
        Ok(Replica { conn })
    }

    fn info(&self, key: &str) -> Result<Option<String>, ReplicaError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM registry_info WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn frame(&self) -> Result<Option<Frame>, ReplicaError> {
        let (Some(town), Some(card_check), Some(shards)) = (
            self.info("town")?,
            self.info("card_check")?,
            self.info("shards")?,
        ) else {
            return Ok(None);
        };
        Ok(shards.parse().ok().map(|shards| Frame {
            town,
            card_check,
            shards,
        }))
    }

    /// The town of the registry held.
    pub fn town(&self) -> Result<Option<TownId>, ReplicaError> {
        Ok(self.info("town")?.and_then(|t| t.parse().ok()))
    }

    /// The card key check value of the registry held.
    pub fn card_check(&self) -> Result<Option<CardDigest>, ReplicaError> {
        let mut check = [0u8; 16];
        Ok(self
            .info("card_check")?
            .filter(|c| hex::decode_to_slice(c, &mut check).is_ok())
            .map(|_| CardDigest(check)))
    }

    /// Opens the replica at `path` for the door's lookups: reads wait at most [`READ_WAIT`]
    /// for a lock (a reader in WAL mode rarely waits at all), so a tap is never held up.
    pub fn open_reader(path: &Path) -> Result<Replica, ReplicaError> {
        let r = Replica::open(path)?;
        r.conn.busy_timeout(READ_WAIT)?;
        r.conn.pragma_update(None, "cache_size", -DOOR_CACHE_KIB)?;
        Ok(r)
    }

    /// The version of the newest manifest taken (0 before any).
    pub fn version(&self) -> Result<u64, ReplicaError> {
        Ok(self
            .info("version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Takes a verified manifest: a manifest of another town, card key or shard count starts
    /// the replica afresh. Returns the shards to read, whose digest differs from ours (a
    /// shard with HQ's digest takes HQ's version).
    pub fn take_manifest(&mut self, m: &RegistryManifest) -> Result<Vec<u16>, ReplicaError> {
        let frame = Frame {
            town: m.town.to_string(),
            card_check: hex::encode(m.card_check.0),
            shards: m.shard_count(),
        };
        let tx = self.conn.transaction()?;
        if frame_of(&tx)? != Some(frame.clone()) {
            tx.execute_batch(
                "DELETE FROM registry_shards; DELETE FROM registry_households;
                 DELETE FROM registry_cards; DELETE FROM registry_residents;",
            )?;
            set_info(&tx, "town", &frame.town)?;
            set_info(&tx, "card_check", &frame.card_check)?;
            set_info(&tx, "shards", &frame.shards.to_string())?;
        }
        set_info(&tx, "version", &m.version.to_string())?;
        let mut behind = Vec::new();
        for (n, e) in m.shards.iter().enumerate() {
            let n = n as u16;
            match shard_state(&tx, n)? {
                Some((_, sum)) if sum.digest(n, frame.shards) == e.digest => {
                    tx.execute(
                        "UPDATE registry_shards SET version = ?2 WHERE shard = ?1",
                        params![n, e.version as i64],
                    )?;
                }
                _ => behind.push(n),
            }
        }
        tx.commit()?;
        Ok(behind)
    }

    /// Takes a verified shard whole, in place of ours. Refused (false) when it is of another
    /// town or shard count than the manifest taken, inconsistent, or older than ours.
    pub fn take_shard(&mut self, s: &RegistryShard) -> Result<bool, ReplicaError> {
        Ok(self.take_shards(std::slice::from_ref(s))?.first() == Some(&true))
    }

    /// Takes several verified shards in one transaction (as [`Replica::take_shard`] each):
    /// a shelter catching up from nothing writes each index page once for many shards rather
    /// than once a shard. Returns, in order, whether each was taken.
    pub fn take_shards(&mut self, shards: &[RegistryShard]) -> Result<Vec<bool>, ReplicaError> {
        self.take_shards_with(shards.len(), |i| shards.get(i))
    }

    /// As [`Replica::take_shards`], shard `i` of `n` given by `shard(i)` only when it is put
    /// (`None`: not taken), so a caller need not hold a whole batch decoded at once.
    pub fn take_shards_with<S: std::borrow::Borrow<RegistryShard>>(
        &mut self,
        n: usize,
        mut shard: impl FnMut(usize) -> Option<S>,
    ) -> Result<Vec<bool>, ReplicaError> {
        let Some(frame) = self.frame()? else {
            return Ok(vec![false; n]);
        };
        let tx = self.conn.transaction()?;
        let mut taken = Vec::with_capacity(n);
        for i in 0..n {
            taken.push(match shard(i) {
                Some(s) => put_shard(&tx, &frame, s.borrow())?,
                None => false,
            });
        }
        tx.commit()?;
        Ok(taken)
    }

    /// Offers a verified delta: applied when it follows the version held ([`DeltaFit::Apply`]),
    /// ignored when held already ([`DeltaFit::Old`]); [`DeltaFit::Gap`] when a delta before it
    /// was missed or the result's digest is not HQ's: read the shard again.
    pub fn offer_delta(&mut self, d: &RegistryDelta) -> Result<DeltaFit, ReplicaError> {
        let Some(frame) = self.frame()? else {
            return Ok(DeltaFit::Gap);
        };
        if frame.town != d.town.as_str()
            || d.households
                .iter()
                .any(|h| shard_of(h.id, d.shards) != d.shard)
        {
            return Ok(DeltaFit::Gap);
        }
        let tx = self.conn.transaction()?;
        let held = shard_state(&tx, d.shard)?;
        let fit = d.fit(frame.shards, held.map(|(v, _)| v));
        let (DeltaFit::Apply, Some((_, mut sum))) = (fit, held) else {
            return Ok(fit);
        };
        for h in &d.households {
            if let Some(old) = household(&tx, h.id.0)? {
                sum.remove(&household_hash(&old));
                remove_household(&tx, h.id.0)?;
            }
            put_household(&tx, d.shard, h)?;
            sum.add(&household_hash(h));
        }
        if sum.digest(d.shard, frame.shards) != d.digest {
            // Ours was not what HQ changed: leave it, and read the shard again.
            return Ok(DeltaFit::Gap);
        }
        set_shard(&tx, d.shard, d.version, &sum)?;
        tx.commit()?;
        Ok(DeltaFit::Apply)
    }

    /// Who owns the card of `digest`: the resident and their household.
    pub fn by_card(
        &self,
        digest: &CardDigest,
    ) -> Result<Option<(ResidentId, HouseholdId)>, ReplicaError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT resident, household FROM registry_cards WHERE digest = ?1")?;
        Ok(st
            .query_row([&digest.0[..]], |r| {
                Ok((ResidentId(r.get(0)?), HouseholdId(r.get(1)?)))
            })
            .optional()?)
    }

    /// The household of a resident.
    pub fn household_of(&self, r: ResidentId) -> Result<Option<HouseholdId>, ReplicaError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT household FROM registry_residents WHERE id = ?1")?;
        Ok(st
            .query_row([r.0], |r| Ok(HouseholdId(r.get(0)?)))
            .optional()?)
    }

    /// The members of a household.
    pub fn members(&self, h: HouseholdId) -> Result<Option<Vec<Member>>, ReplicaError> {
        Ok(household(&self.conn, h.0)?.map(|h| {
            h.residents
                .into_iter()
                .map(|r| Member {
                    id: r.id,
                    name: r.name,
                    needs_help: r.needs_help,
                })
                .collect()
        }))
    }

    /// Each shard's digest as held (`None` for a shard not held), in shard order.
    pub fn shard_digests(&self) -> Result<Vec<Option<ShardDigest>>, ReplicaError> {
        let Some(frame) = self.frame()? else {
            return Ok(Vec::new());
        };
        (0..frame.shards)
            .map(|n| Ok(shard_state(&self.conn, n)?.map(|(_, s)| s.digest(n, frame.shards))))
            .collect()
    }

    /// The registry's digest, when every shard is held (equal to HQ's manifest's digest when
    /// the replica is HQ's registry).
    pub fn digest(&self) -> Result<Option<String>, ReplicaError> {
        let (Some(town), Some(frame)) = (self.town()?, self.frame()?) else {
            return Ok(None);
        };
        let mut check = [0u8; 16];
        if hex::decode_to_slice(&frame.card_check, &mut check).is_err() {
            return Ok(None);
        }
        let digests: Option<Vec<ShardDigest>> = self.shard_digests()?.into_iter().collect();
        Ok(digests.map(|d| registry_digest(&town, &CardDigest(check), &d)))
    }
}

fn frame_of(tx: &Transaction<'_>) -> Result<Option<Frame>, ReplicaError> {
    let get = |k: &str| -> rusqlite::Result<Option<String>> {
        tx.query_row("SELECT value FROM registry_info WHERE key = ?1", [k], |r| {
            r.get(0)
        })
        .optional()
    };
    let (Some(town), Some(card_check), Some(shards)) =
        (get("town")?, get("card_check")?, get("shards")?)
    else {
        return Ok(None);
    };
    Ok(shards.parse().ok().map(|shards| Frame {
        town,
        card_check,
        shards,
    }))
}

/// Puts shard `s` in place of ours, unless it is of another frame, inconsistent or older.
fn put_shard(tx: &Transaction<'_>, frame: &Frame, s: &RegistryShard) -> Result<bool, ReplicaError> {
    if frame.town != s.town.as_str() || frame.shards != s.shards || !s.is_consistent() {
        return Ok(false);
    }
    if shard_state(tx, s.shard)?.is_some_and(|(v, _)| v > s.version) {
        return Ok(false);
    }
    let old: Vec<u32> = {
        let mut st = tx.prepare_cached("SELECT id FROM registry_households WHERE shard = ?1")?;
        st.query_map([s.shard], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for h in old {
        remove_household(tx, h)?;
    }
    let mut sum = ShardSum::default();
    for h in &s.households {
        put_household(tx, s.shard, h)?;
        sum.add(&household_hash(h));
    }
    set_shard(tx, s.shard, s.version, &sum)?;
    Ok(true)
}

fn set_info(tx: &Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO registry_info(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map(|_| ())
}

fn shard_state(conn: &Connection, n: u16) -> Result<Option<(u64, ShardSum)>, ReplicaError> {
    let row: Option<(i64, Vec<u8>, i64)> = conn
        .query_row(
            "SELECT version, xor, count FROM registry_shards WHERE shard = ?1",
            [n],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.and_then(|(v, xor, count)| {
        Some((
            v as u64,
            ShardSum {
                xor: xor.try_into().ok()?,
                count: count as u64,
            },
        ))
    }))
}

fn set_shard(tx: &Transaction<'_>, n: u16, version: u64, sum: &ShardSum) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO registry_shards(shard, version, xor, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(shard) DO UPDATE SET version = excluded.version, xor = excluded.xor,
             count = excluded.count",
        params![n, version as i64, &sum.xor[..], sum.count as i64],
    )
    .map(|_| ())
}

fn household(conn: &Connection, id: u32) -> Result<Option<RegistryHousehold>, ReplicaError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM registry_households WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    body.map(|b| {
        serde_json::from_str(&b).map_err(|e| ReplicaError::Household {
            household: id,
            reason: e.to_string(),
        })
    })
    .transpose()
}

fn remove_household(tx: &Transaction<'_>, id: u32) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM registry_cards WHERE household = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM registry_residents WHERE household = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM registry_households WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

fn put_household(
    tx: &Transaction<'_>,
    shard: u16,
    h: &RegistryHousehold,
) -> Result<(), ReplicaError> {
    let body = serde_json::to_string(h).map_err(|e| ReplicaError::Household {
        household: h.id.0,
        reason: e.to_string(),
    })?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO registry_households(id, shard, body) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![h.id.0, shard, body])?;
    let mut resident = tx.prepare_cached(
        "INSERT OR REPLACE INTO registry_residents(id, household) VALUES (?1, ?2)",
    )?;
    let mut card = tx.prepare_cached(
        "INSERT OR REPLACE INTO registry_cards(digest, resident, household) VALUES (?1, ?2, ?3)",
    )?;
    for r in &h.residents {
        resident.execute(params![r.id.0, h.id.0])?;
        for c in &r.card_digests {
            card.execute(params![&c.0[..], r.id.0, h.id.0])?;
        }
    }
    Ok(())
}

pub mod sync;

#[cfg(test)]
mod tests;
