//! Rows of the store that no longer read (a newer HQ's format, a hand edit, a torn page):
//! HQ starts without them rather than not at all, but never silently. Each is logged with its
//! id, counted in [`Unreadable`], sent to officers in the status counts
//! ([`evac_protocol::StoreUnreadable`]) and listed by `evac-hq check` ([`scan`]).

use evac_protocol::{CardRef, CheckEvent, ResidentId, ShelterId, StoreUnreadable};
use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoredEvent};
use crate::error::HqError;

/// Events that read, and the (shelter, seq) of those that do not.
pub type EventsRead = (Vec<StoredEvent>, Vec<(ShelterId, u64)>);

/// Card links that read, and the residents of those that do not.
pub type CardLinksRead = (Vec<(CardRef, ResidentId)>, Vec<ResidentId>);

/// The meta values HQ reads as numbers at start (each falls back to a default when bad).
pub const NUMERIC_META: [&str; 3] = ["next_message", "registry_version", "status_seq"];

/// What HQ could not read of its store, by id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Events whose body does not decode: (shelter, seq).
    pub events: Vec<(ShelterId, u64)>,
    /// Notices whose spec does not parse: message ids.
    pub notices: Vec<u32>,
    /// Card links whose card does not parse: the resident each was linked to.
    pub card_links: Vec<ResidentId>,
    /// Meta values that do not parse: their keys.
    pub meta: Vec<String>,
}

impl Unreadable {
    /// Whether everything read.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.notices.is_empty()
            && self.card_links.is_empty()
            && self.meta.is_empty()
    }

    /// The counts officers see, or `None` when everything read.
    pub fn counts(&self) -> Option<StoreUnreadable> {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        (!self.is_empty()).then(|| StoreUnreadable {
            events: n(self.events.len()),
            notices: n(self.notices.len()),
            card_links: n(self.card_links.len()),
            meta: n(self.meta.len()),
        })
    }

    /// One line naming what did not read (the first ten ids of each kind).
    pub fn describe(&self) -> String {
        fn part<T>(what: &str, v: &[T], id: impl Fn(&T) -> String) -> Option<String> {
            if v.is_empty() {
                return None;
            }
            let ids: Vec<String> = v.iter().take(10).map(id).collect();
            let more = if v.len() > 10 { ", ..." } else { "" };
            Some(format!("{} {what} ({}{more})", v.len(), ids.join(", ")))
        }
        [
            part("events", &self.events, |(s, q)| {
                format!("shelter {s} seq {q}")
            }),
            part("notices", &self.notices, |m| format!("message {m}")),
            part("card links", &self.card_links, |r| format!("resident {r}")),
            part("meta values", &self.meta, |k| k.clone()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Every stored event that decodes, in HLC order, and the ids of those that do not.
fn read_events(conn: &Connection) -> rusqlite::Result<EventsRead> {
    let mut stmt = conn.prepare(
        "SELECT shelter, seq, body, received_ms FROM events ORDER BY wall_ms, logical, node, shelter, seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, u32>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for row in rows {
        let (shelter, seq, body, received) = row?;
        let id = (ShelterId(shelter), seq.max(0) as u64);
        match serde_json::from_str::<CheckEvent>(&body) {
            Ok(event) => good.push(StoredEvent {
                event,
                received_ms: received.max(0) as u64,
            }),
            Err(e) => {
                tracing::warn!(shelter, seq = id.1, error = %e, "stored event does not decode: left out");
                bad.push(id);
            }
        }
    }
    Ok((good, bad))
}

/// Every officer's card link that reads, in the order made, and the residents of those that
/// do not (the card itself is not logged: it names a person's card).
fn read_card_links(conn: &Connection) -> rusqlite::Result<CardLinksRead> {
    let mut stmt = conn.prepare("SELECT card, resident FROM card_links ORDER BY at_ms")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, ResidentId(r.get(1)?))))?;
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for row in rows {
        let (card, resident) = row?;
        match serde_json::from_str::<CardRef>(&card) {
            Ok(card) => good.push((card, resident)),
            Err(e) => {
                tracing::warn!(resident = resident.0, error = %e, "stored card link does not read: left out of the registry");
                bad.push(resident);
            }
        }
    }
    Ok((good, bad))
}

/// A meta value that should be a number and is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("meta {key}: {value:?} is not a number")]
pub struct NotANumber {
    /// The meta key.
    pub key: String,
    /// The value stored.
    pub value: String,
}

/// A numeric meta value: `Ok(None)` when not set, `Err` when set but not a number.
fn read_meta_number(
    conn: &Connection,
    key: &str,
) -> rusqlite::Result<Result<Option<u64>, NotANumber>> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    Ok(match v {
        None => Ok(None),
        Some(value) => value.trim().parse().map(Some).map_err(|_| NotANumber {
            key: key.to_owned(),
            value,
        }),
    })
}

/// Stored notices whose spec does not parse.
fn bad_notices(conn: &Connection) -> rusqlite::Result<Vec<u32>> {
    let mut stmt = conn.prepare("SELECT message_id, spec FROM notices ORDER BY message_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))?;
    let mut bad = Vec::new();
    for row in rows {
        let (id, spec) = row?;
        if serde_json::from_str::<crate::notice::Notice>(&spec).is_err() {
            bad.push(id);
        }
    }
    Ok(bad)
}

/// Everything of a store that would not read at HQ's start, without changing it (for
/// `evac-hq check`, which opens the store only to begin and roll back).
pub fn scan(conn: &Connection) -> rusqlite::Result<Unreadable> {
    let mut meta = Vec::new();
    for key in NUMERIC_META {
        if read_meta_number(conn, key)?.is_err() {
            meta.push(key.to_owned());
        }
    }
    Ok(Unreadable {
        events: read_events(conn)?.1,
        notices: bad_notices(conn)?,
        card_links: read_card_links(conn)?.1,
        meta,
    })
}

impl Store {
    /// Every stored event that decodes, in HLC order, and the ids of those that do not
    /// (each logged).
    pub fn events_read(&self) -> Result<EventsRead, HqError> {
        read_events(&self.conn).map_err(self.err())
    }

    /// Every officer's card link that reads, and the residents of those that do not (each
    /// logged).
    pub fn card_links_read(&self) -> Result<CardLinksRead, HqError> {
        read_card_links(&self.conn).map_err(self.err())
    }

    /// A numeric meta value: `Ok(None)` when not set, `Ok(Err(_))` when set but not a
    /// number.
    pub fn meta_number(&self, key: &str) -> Result<Result<Option<u64>, NotANumber>, HqError> {
        read_meta_number(&self.conn, key).map_err(self.err())
    }
}
