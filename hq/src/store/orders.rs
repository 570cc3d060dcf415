//! The order book's persistent form: notices, each household's order, the order log and which
//! shelters are open.

use rusqlite::params;

use super::{Store, i};
use crate::error::HqError;

/// A line of the order log.
#[derive(Debug, Clone)]
pub struct OrderLogRecord {
    /// When (Unix ms).
    pub at_ms: u64,
    /// The message id.
    pub message_id: u32,
    /// `alert`, `update` or `cancel`.
    pub kind: String,
    /// The household.
    pub household: u32,
    /// The shelter.
    pub shelter: u32,
    /// Alert level.
    pub level: u8,
    /// Hazard name.
    pub hazard: String,
    /// Order version.
    pub version: u32,
}

/// A stored order row (the order book's persistent form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Household id.
    pub household: u32,
    /// The assignment, when the household has an active order: shelter, level, hazard, message.
    pub active: Option<(u32, u8, String, u32)>,
    /// The household's order version.
    pub version: u32,
    /// Someone in the household needs help.
    pub needs_help: bool,
    /// The walk to the shelter in metres, when the order was routed over the town's roads.
    pub walk_m: Option<u32>,
}

impl Store {
    /// Saves notices (message id, spec JSON, active) and order rows and appends the order log,
    /// all in one transaction.
    pub fn save_orders(
        &mut self,
        notices: &[(u32, String, bool)],
        rows: &[OrderRow],
        log: &[OrderLogRecord],
        shelter_open: &[(u32, bool)],
    ) -> Result<(), HqError> {
        let err = self.err();
        let tx = self.conn.transaction().map_err(&err)?;
        {
            let mut n = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO notices (message_id, spec, active) VALUES (?1, ?2, ?3)",
                )
                .map_err(&err)?;
            for (id, spec, active) in notices {
                n.execute(params![id, spec, active]).map_err(&err)?;
            }
            let mut o = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO orders (household, shelter, level, hazard, message_id, version, needs_help, walk_m)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&err)?;
            for r in rows {
                let (s, l, h, m) = match &r.active {
                    Some((s, l, h, m)) => (Some(*s), Some(*l), Some(h.as_str()), Some(*m)),
                    None => (None, None, None, None),
                };
                o.execute(params![
                    r.household,
                    s,
                    l,
                    h,
                    m,
                    r.version,
                    r.needs_help,
                    r.walk_m
                ])
                .map_err(&err)?;
            }
            let mut g = tx
                .prepare_cached(
                    "INSERT INTO order_log (at_ms, message_id, kind, household, shelter, level, hazard, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&err)?;
            for l in log {
                g.execute(params![
                    i(l.at_ms),
                    l.message_id,
                    l.kind,
                    l.household,
                    l.shelter,
                    l.level,
                    l.hazard,
                    l.version
                ])
                .map_err(&err)?;
            }
            let mut s = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO shelter_open (shelter, open) VALUES (?1, ?2)",
                )
                .map_err(&err)?;
            for (id, open) in shelter_open {
                s.execute(params![id, open]).map_err(&err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Stored notices: message id, spec JSON, active.
    pub fn notices(&self) -> Result<Vec<(u32, String, bool)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT message_id, spec, active FROM notices ORDER BY message_id")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Stored order rows.
    pub fn orders(&self) -> Result<Vec<OrderRow>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT household, shelter, level, hazard, message_id, version, needs_help, walk_m FROM orders")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                let s: Option<u32> = r.get(1)?;
                let l: Option<u8> = r.get(2)?;
                let h: Option<String> = r.get(3)?;
                let m: Option<u32> = r.get(4)?;
                let active = match (s, l, h, m) {
                    (Some(s), Some(l), Some(h), Some(m)) => Some((s, l, h, m)),
                    _ => None,
                };
                Ok(OrderRow {
                    household: r.get(0)?,
                    active,
                    version: r.get(5)?,
                    needs_help: r.get(6)?,
                    walk_m: r.get(7)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The order log, in time order.
    pub fn order_log(&self) -> Result<Vec<OrderLogRecord>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT at_ms, message_id, kind, household, shelter, level, hazard, version FROM order_log ORDER BY id")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(OrderLogRecord {
                    at_ms: r.get::<_, i64>(0)?.max(0) as u64,
                    message_id: r.get(1)?,
                    kind: r.get(2)?,
                    household: r.get(3)?,
                    shelter: r.get(4)?,
                    level: r.get(5)?,
                    hazard: r.get(6)?,
                    version: r.get(7)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Shelters whose open/closed state an officer set.
    pub fn shelter_open(&self) -> Result<Vec<(u32, bool)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT shelter, open FROM shelter_open")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}
