//! What HQ knows of where a resident is, for `/anpi`: a [`StatusBoard`] of its own, fed from
//! HQ's store on a read-only connection (the events HQ stored, officers' card links) and each
//! household's latest answer from the TV. The same rules as HQ's status (latest event in
//! hybrid-logical-clock order, corrections, clock-skew bound), read apart from HQ's loop so a
//! family's query never waits on it nor it on a query.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use evac_maps::Town;
use evac_protocol::{AnswerKind, CardRef, CheckEvent, EventId, ResidentId};
use rusqlite::{Connection, OpenFlags, params};

use crate::error::HqError;
use crate::status::StatusBoard;

/// What `/anpi` may say about a resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Checked in at a shelter (name), stored by HQ at `at_ms` (HQ's clock).
    CheckedIn {
        /// The shelter's name.
        shelter: String,
        /// When HQ stored the check-in (Unix ms, HQ's clock).
        at_ms: u64,
    },
    /// Checked out of a shelter.
    CheckedOut {
        /// The shelter's name.
        shelter: String,
        /// When HQ stored the check-out (Unix ms, HQ's clock).
        at_ms: u64,
    },
    /// The household answered from the TV (self-reported).
    Answered {
        /// What it answered.
        kind: AnswerKind,
        /// When HQ received it (Unix ms, HQ's clock).
        at_ms: u64,
    },
    /// Nothing HQ may say.
    Nothing,
}

/// The facts, as last read.
#[derive(Debug)]
pub struct Facts {
    board: StatusBoard,
    received: HashMap<EventId, u64>,
    answers: HashMap<u32, (AnswerKind, u64)>,
    shelters: HashMap<u32, String>,
}

/// New rows since the last read.
#[derive(Debug, Default)]
pub struct Rows {
    events: Vec<(CheckEvent, u64)>,
    links: Vec<(CardRef, ResidentId)>,
    answers: Vec<(u32, String, u64)>,
}

impl Rows {
    /// Rows of events only, as if read (a desk or list fed without a store).
    pub fn of_events(events: Vec<(CheckEvent, u64)>) -> Rows {
        Rows {
            events,
            ..Rows::default()
        }
    }
}

/// The read-only connection and how far it has read.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
    path: PathBuf,
    /// Events received at or after this (HQ's clock) are read again: applying one twice is
    /// harmless, missing one stored in the same millisecond is not.
    since_ms: i64,
    answers_after: i64,
}

impl Reader {
    /// Opens HQ's store read-only.
    pub fn open(path: &Path) -> Result<Reader, HqError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.busy_timeout(std::time::Duration::from_secs(1))
                    .map(|()| c)
            })
            .map_err(|cause| HqError::Store {
                path: path.to_owned(),
                cause,
            })?;
        Ok(Reader {
            conn,
            path: path.to_owned(),
            since_ms: 0,
            answers_after: 0,
        })
    }

    /// What was stored since the last read.
    pub fn read(&mut self) -> Result<Rows, HqError> {
        let err = |cause| HqError::Store {
            path: self.path.clone(),
            cause,
        };
        let mut rows = Rows::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body, received_ms FROM events WHERE received_ms >= ?1")
            .map_err(err)?;
        let it = stmt
            .query_map(params![self.since_ms], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(err)?;
        let mut newest = self.since_ms;
        for row in it {
            let (body, received) = row.map_err(err)?;
            newest = newest.max(received);
            // A body that does not decode is logged by HQ's own replay; here it is left out.
            if let Ok(e) = serde_json::from_str::<CheckEvent>(&body) {
                rows.events.push((e, received.max(0) as u64));
            }
        }
        drop(stmt);
        self.since_ms = newest;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT card, resident FROM card_links")
            .map_err(err)?;
        let it = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
            .map_err(err)?;
        for row in it {
            let (card, r) = row.map_err(err)?;
            if let Ok(card) = serde_json::from_str::<CardRef>(&card) {
                rows.links.push((card, ResidentId(r)));
            }
        }
        drop(stmt);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, household, kind, received_ms FROM answers
                 WHERE id > ?1 AND needs_confirmation = 0 ORDER BY id",
            )
            .map_err(err)?;
        let it = stmt
            .query_map(params![self.answers_after], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(err)?;
        for row in it {
            let (id, h, kind, at) = row.map_err(err)?;
            self.answers_after = self.answers_after.max(id);
            rows.answers.push((h, kind, at.max(0) as u64));
        }
        Ok(rows)
    }
}

impl Facts {
    /// No facts yet, for `town`.
    pub fn new(town: &Town) -> Facts {
        Facts {
            board: StatusBoard::new(town),
            received: HashMap::new(),
            answers: HashMap::new(),
            shelters: town
                .shelters
                .iter()
                .map(|s| (s.id, s.name.clone()))
                .collect(),
        }
    }

    /// Takes in rows read since the last time.
    pub fn take(&mut self, rows: Rows) {
        for (e, received) in rows.events {
            if self.board.apply_received(&e, received) {
                self.received.entry(e.id).or_insert(received);
            }
        }
        for (card, r) in rows.links {
            self.board.link_card(&card, r);
        }
        for (h, kind, at) in rows.answers {
            let kind = AnswerKind::from_name(&kind).unwrap_or(AnswerKind::Other);
            self.answers.insert(h, (kind, at));
        }
    }

    /// What HQ knows of `resident` of `household`: the latest card tap wins over an answer
    /// from the TV, except a check-out followed by a later answer; a tap by a card that
    /// failed a check says nothing (it may be a copy), nor does an answer an officer must
    /// confirm (its household had too many wrong answer codes), which is not read.
    pub fn about(&self, resident: u32, household: u32) -> Finding {
        let answer = self.answers.get(&household).copied();
        let shelter = |e: &EventId| {
            self.shelters
                .get(&e.shelter.0)
                .cloned()
                .unwrap_or_else(|| format!("{}", e.shelter))
        };
        let at = |e: &EventId| self.received.get(e).copied().unwrap_or(0);
        match self.board.presence(ResidentId(resident)) {
            Some((e, true, false)) => Finding::CheckedIn {
                shelter: shelter(&e),
                at_ms: at(&e),
            },
            Some((e, false, false)) => match answer {
                Some((kind, a)) if a > at(&e) && kind != AnswerKind::Other => {
                    Finding::Answered { kind, at_ms: a }
                }
                _ => Finding::CheckedOut {
                    shelter: shelter(&e),
                    at_ms: at(&e),
                },
            },
            _ => match answer {
                Some((kind, at_ms)) if kind != AnswerKind::Other => {
                    Finding::Answered { kind, at_ms }
                }
                _ => Finding::Nothing,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use evac_maps::{GenerateParams, generate};
    use evac_protocol::{Assurance, EventKind, ShelterId};

    fn event(kind: EventKind, seq: u64, resident: u32, wall_ms: u64) -> CheckEvent {
        CheckEvent {
            resident: Some(ResidentId(resident)),
            assurance: Assurance::CardRead,
            ..CheckEvent::new(ShelterId(1), seq, wall_ms, kind)
        }
    }

    #[test]
    fn a_tap_wins_over_an_answer_and_a_later_answer_over_a_check_out() {
        let town = generate(&GenerateParams {
            households: 5,
            shelters: 2,
            seed: 1,
        });
        let name = town.shelters[0].name.clone();
        let mut f = Facts::new(&town);
        assert_eq!(f.about(1, 1), Finding::Nothing);
        f.take(Rows {
            answers: vec![(1, "safe_at_home".into(), 1_000)],
            ..Rows::default()
        });
        let safe = Finding::Answered {
            kind: AnswerKind::SafeAtHome,
            at_ms: 1_000,
        };
        assert_eq!(f.about(1, 1), safe);
        f.take(Rows {
            events: vec![(event(EventKind::CheckIn, 1, 1, 2_000), 2_050)],
            ..Rows::default()
        });
        let inside = Finding::CheckedIn {
            shelter: name.clone(),
            at_ms: 2_050,
        };
        assert_eq!(f.about(1, 1), inside);
        // The same rows read twice change nothing.
        f.take(Rows {
            events: vec![(event(EventKind::CheckIn, 1, 1, 2_000), 2_050)],
            answers: vec![(1, "safe_at_home".into(), 2_500)],
            ..Rows::default()
        });
        assert_eq!(f.about(1, 1), inside);
        f.take(Rows {
            events: vec![(event(EventKind::CheckOut, 2, 1, 3_000), 3_010)],
            ..Rows::default()
        });
        assert_eq!(
            f.about(1, 1),
            Finding::CheckedOut {
                shelter: name,
                at_ms: 3_010
            }
        );
        f.take(Rows {
            answers: vec![(1, "safe_at_home".into(), 4_000)],
            ..Rows::default()
        });
        assert_eq!(
            f.about(1, 1),
            Finding::Answered {
                kind: AnswerKind::SafeAtHome,
                at_ms: 4_000
            }
        );
    }
}
