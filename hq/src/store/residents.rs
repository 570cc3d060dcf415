//! What officers said of residents: found marks and card links.

use evac_protocol::{CardRef, ResidentId, Timestamp};
use rusqlite::params;

use super::{Store, i};
use crate::error::HqError;

impl Store {
    /// Marks a resident found at HQ time `at`.
    pub fn set_found(
        &mut self,
        resident: ResidentId,
        at: Timestamp,
        officer: &str,
        note: &str,
    ) -> Result<(), HqError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO found (resident, wall_ms, logical, officer, note) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![resident.0, i(at.wall_ms), at.logical, officer, note],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Every found mark: resident, time, officer, note.
    pub fn found(&self) -> Result<Vec<(ResidentId, Timestamp, String, String)>, HqError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare("SELECT resident, wall_ms, logical, officer, note FROM found")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    ResidentId(r.get(0)?),
                    Timestamp {
                        wall_ms: r.get::<_, i64>(1)?.max(0) as u64,
                        logical: r.get(2)?,
                        node: 0,
                    },
                    r.get(3)?,
                    r.get(4)?,
                ))
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Links a card to a resident.
    pub fn link_card(
        &mut self,
        card: &CardRef,
        resident: ResidentId,
        officer: &str,
        at_ms: u64,
    ) -> Result<(), HqError> {
        let json = serde_json::to_string(card).unwrap_or_default();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO card_links (card, resident, officer, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![json, resident.0, officer, i(at_ms)],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Every card link made by officers that reads (see [`Store::card_links_read`]).
    pub fn card_links(&self) -> Result<Vec<(CardRef, ResidentId)>, HqError> {
        Ok(self.card_links_read()?.0)
    }
}
