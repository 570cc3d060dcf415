//! HQ's picture of the town for dashboards: a retained snapshot, then deltas.
//!
//! Per-resident status travels packed (one byte a resident, plus the shelter for those at
//! one), so a snapshot of a town of 1,000,000 residents stays a few megabytes.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::OverlayError;
use crate::ids::{OfficerId, ResidentId, ShelterId, TownId};
use crate::sign::Signable;
use crate::varint::{self, Reader};

/// Where a resident stands, as HQ knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ResidentStatus {
    /// No order covers the resident's household.
    NotOrdered,
    /// Ordered to evacuate and not seen at a shelter yet.
    UnderOrder,
    /// Ordered, not seen, and overdue: officers should look for them.
    Unaccounted,
    /// Checked in at a shelter.
    Arrived {
        /// The shelter.
        shelter: ShelterId,
        /// The event that decided it came from a card whose certificate or challenge failed
        /// a check (it may be a copy): the resident may not be there.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unverified: bool,
    },
    /// Checked out of a shelter.
    CheckedOut {
        /// The shelter they left.
        shelter: ShelterId,
        /// As for [`ResidentStatus::Arrived`]: decided by a card that failed a check.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unverified: bool,
    },
    /// An officer marked them found.
    Found,
}

impl ResidentStatus {
    fn code(self) -> u8 {
        match self {
            ResidentStatus::NotOrdered => 0,
            ResidentStatus::UnderOrder => 1,
            ResidentStatus::Unaccounted => 2,
            ResidentStatus::Arrived {
                unverified: false, ..
            } => 3,
            ResidentStatus::CheckedOut {
                unverified: false, ..
            } => 4,
            ResidentStatus::Found => 5,
            ResidentStatus::Arrived {
                unverified: true, ..
            } => 6,
            ResidentStatus::CheckedOut {
                unverified: true, ..
            } => 7,
        }
    }

    /// The shelter the resident is at or left, if any.
    pub fn shelter(self) -> Option<ShelterId> {
        match self {
            ResidentStatus::Arrived { shelter, .. }
            | ResidentStatus::CheckedOut { shelter, .. } => Some(shelter),
            _ => None,
        }
    }

    /// Whether the resident's presence was decided by a card that failed a check.
    pub fn unverified(self) -> bool {
        matches!(
            self,
            ResidentStatus::Arrived {
                unverified: true,
                ..
            } | ResidentStatus::CheckedOut {
                unverified: true,
                ..
            }
        )
    }
}

/// Totals over the town.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Residents in the registry.
    pub residents: u32,
    /// Not under any order.
    pub not_ordered: u32,
    /// Ordered, not yet seen.
    pub under_order: u32,
    /// Ordered, not seen, overdue.
    pub unaccounted: u32,
    /// At a shelter now.
    pub arrived: u32,
    /// Left a shelter.
    pub checked_out: u32,
    /// Marked found by an officer.
    pub found: u32,
    /// Cards at shelters that the registry does not know (visitors).
    pub unregistered: u32,
    /// Events flagged for attention.
    pub flagged: u32,
    /// Of `arrived` and `checked_out`, those decided by a card that failed a check (it may
    /// be a copy): officers should confirm who they are.
    #[serde(default)]
    pub unverified: u32,
    /// What HQ could not read of its own store when it last started (skipped or defaulted),
    /// if anything: HQ's log names each row, `evac-hq check` lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_at_start: Option<StoreUnreadable>,
    /// Households' answers from the TV by kind, once any household answered (absent from
    /// older HQs, and while none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<AnswerCounts>,
}

/// Rows of HQ's store that did not read when HQ started, by kind: HQ went on without them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreUnreadable {
    /// Shelter events whose body does not decode: left out of the picture.
    pub events: u32,
    /// Notices whose spec does not parse: their orders are not in force at HQ.
    pub notices: u32,
    /// Officers' card links whose card does not parse: the card is not in the registry.
    pub card_links: u32,
    /// Counters and versions that did not parse: started again from their default.
    pub meta: u32,
}

/// One shelter's state as HQ sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShelterStatus {
    /// The shelter.
    pub shelter: ShelterId,
    /// Open to new arrivals.
    pub open: bool,
    /// Its capacity in people.
    pub capacity: u32,
    /// Present now, counted by day (everyone checked in).
    pub present_day: u32,
    /// Present for the night (not day-only).
    pub present_night: u32,
    /// Ordered there and not yet arrived.
    pub expected: u32,
    /// The node is connected.
    pub online: bool,
    /// How far behind HQ is on this shelter's events (ms), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// Events recorded at the shelter but not yet stored at HQ, as the shelter last said.
    pub pending: u64,
    /// Check-ins of this shelter flagged for attention (a failed card check, a clock far
    /// ahead, ...), counted at HQ.
    #[serde(default)]
    pub flagged: u64,
    /// When HQ last heard from the node itself (events or its own state; a last will is the
    /// broker's word, not the node's), HQ's clock in Unix ms, given once the node has been
    /// quiet for more than [`QUIET_MS`] (a connected node speaks every few seconds); none
    /// while it speaks, or before it first spoke. Stable while nothing changes, so deltas
    /// do not carry every shelter on every tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_since_ms: Option<u64>,
    /// Events this shelter sent under a number HQ already holds a different event for (its
    /// ledger was restored or rebuilt): HQ keeps both, officers should look.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conflicts: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How long a node may say nothing before HQ's status says since when it has been quiet.
pub const QUIET_MS: u64 = 60_000;

/// Every resident's status from `first` on, packed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedStatuses {
    /// The id of the first resident.
    pub first: ResidentId,
    /// How many consecutive residents.
    pub count: u32,
    /// Base64 of: per resident one code byte (0 not ordered, 1 under order, 2 unaccounted,
    /// 3 arrived, 4 checked out, 5 found, 6 and 7 arrived and checked out decided by a card
    /// that failed a check), followed for 3, 4, 6 and 7 by the shelter id as a varint.
    pub data: String,
}

impl PackedStatuses {
    /// Packs `statuses[i]`, the status of resident `first + i`.
    pub fn pack(first: ResidentId, statuses: &[ResidentStatus]) -> Self {
        let mut bytes = Vec::with_capacity(statuses.len() + statuses.len() / 2);
        for s in statuses {
            bytes.push(s.code());
            if let Some(shelter) = s.shelter() {
                varint::put(&mut bytes, u64::from(shelter.0));
            }
        }
        PackedStatuses {
            first,
            count: u32::try_from(statuses.len()).unwrap_or(u32::MAX),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// Unpacks into (resident, status) pairs; errors name the byte offset in the data.
    pub fn unpack(&self) -> Result<Vec<(ResidentId, ResidentStatus)>, OverlayError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .map_err(|e| OverlayError::Invalid {
                offset: 0,
                field: "status data",
                detail: format!("not base64: {e}"),
            })?;
        let mut r = Reader::new(&bytes);
        let mut out = Vec::with_capacity(self.count.min(4_000_000) as usize);
        for i in 0..self.count {
            let at = r.pos();
            let resident = self
                .first
                .0
                .checked_add(i)
                .map(ResidentId)
                .ok_or_else(|| r.invalid(at, "resident id", "overflows 32 bits"))?;
            let status = match r.u8("status code")? {
                0 => ResidentStatus::NotOrdered,
                1 => ResidentStatus::UnderOrder,
                2 => ResidentStatus::Unaccounted,
                c @ (3 | 6) => ResidentStatus::Arrived {
                    shelter: ShelterId(r.varint_u32("shelter")?),
                    unverified: c == 6,
                },
                c @ (4 | 7) => ResidentStatus::CheckedOut {
                    shelter: ShelterId(r.varint_u32("shelter")?),
                    unverified: c == 7,
                },
                5 => ResidentStatus::Found,
                _ => return Err(r.invalid(at, "status code", "unknown code")),
            };
            out.push((resident, status));
        }
        if r.remaining() > 0 {
            return Err(OverlayError::Trailing {
                offset: r.pos(),
                extra: r.remaining(),
            });
        }
        Ok(out)
    }
}

/// A resident whose status changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentChange {
    /// The resident.
    pub resident: ResidentId,
    /// The new status.
    #[serde(flatten)]
    pub status: ResidentStatus,
}

/// What a household answered from the TV (self-reported: it decides no resident's status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// Evacuated elsewhere (a relative's, a car, another town).
    EvacuatedElsewhere,
    /// Safe at home.
    SafeAtHome,
    /// Needs help at home.
    NeedHelp,
    /// Says it reached the shelter (no card tap yet).
    AtShelter,
    /// A kind this reader does not know (a newer HQ).
    #[serde(other)]
    Other,
}

impl AnswerKind {
    /// The kind's name on the wire and in HQ's store (`other` for a kind this reader does not
    /// know).
    pub fn name(self) -> &'static str {
        match self {
            AnswerKind::EvacuatedElsewhere => "evacuated_elsewhere",
            AnswerKind::SafeAtHome => "safe_at_home",
            AnswerKind::NeedHelp => "need_help",
            AnswerKind::AtShelter => "at_shelter",
            AnswerKind::Other => "other",
        }
    }

    /// The kind named as HQ's answer endpoint and store name it (`safe_at_home`, ...).
    pub fn from_name(name: &str) -> Option<AnswerKind> {
        Some(match name {
            "evacuated_elsewhere" => AnswerKind::EvacuatedElsewhere,
            "safe_at_home" => AnswerKind::SafeAtHome,
            "need_help" => AnswerKind::NeedHelp,
            "at_shelter" => AnswerKind::AtShelter,
            _ => return None,
        })
    }
}

/// A household's latest answer from the TV, as HQ carries it in its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdAnswer {
    /// The household (its registry id).
    pub household: u32,
    /// What it answered last.
    pub kind: AnswerKind,
    /// How many people need help (for [`AnswerKind::NeedHelp`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<u32>,
    /// When HQ received it (Unix ms, HQ's clock).
    pub at_ms: u64,
    /// Sent after too many wrong answer codes for this household: an officer must confirm
    /// (false again once one did, see `confirmed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_confirmation: bool,
    /// An officer marked this answer handled (absent from older HQs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled: Option<AnswerMark>,
    /// An officer confirmed this answer, which needed it (absent from older HQs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<AnswerMark>,
}

/// An officer's mark on a household's answer: who, when, and why in their words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerMark {
    /// The officer whose signed command made it.
    pub officer: OfficerId,
    /// When HQ carried the command out (Unix ms, HQ's clock).
    pub at_ms: u64,
    /// The command's reason (at most [`crate::messages::command::MAX_REASON_CHARS`]).
    pub reason: String,
}

/// Households' latest answers from the TV, counted by HQ for everyone who reads its status
/// (the prefecture included): households, not people, and self-reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerCounts {
    /// Answered "evacuated elsewhere".
    pub evacuated_elsewhere: u32,
    /// Answered "safe at home".
    pub safe_at_home: u32,
    /// Answered "needs help at home" (handled or not).
    pub need_help: u32,
    /// Answered "reached the shelter".
    pub at_shelter: u32,
    /// Of `need_help`, those no officer has marked handled yet.
    pub need_help_unhandled: u32,
    /// People in the unhandled needs-help answers, as the households said.
    pub need_help_people_unhandled: u32,
    /// Answers an officer must still confirm (too many wrong answer codes).
    pub needs_confirmation: u32,
}

impl AnswerCounts {
    /// Counts `answers` (one a household).
    pub fn of(answers: &[HouseholdAnswer]) -> AnswerCounts {
        let mut c = AnswerCounts::default();
        for a in answers {
            match a.kind {
                AnswerKind::EvacuatedElsewhere => c.evacuated_elsewhere += 1,
                AnswerKind::SafeAtHome => c.safe_at_home += 1,
                AnswerKind::AtShelter => c.at_shelter += 1,
                AnswerKind::NeedHelp => {
                    c.need_help += 1;
                    if a.handled.is_none() {
                        c.need_help_unhandled += 1;
                        c.need_help_people_unhandled = c
                            .need_help_people_unhandled
                            .saturating_add(a.people.unwrap_or(1));
                    }
                }
                AnswerKind::Other => {}
            }
            c.needs_confirmation += u32::from(a.needs_confirmation);
        }
        c
    }
}

fn no_answers(a: &[HouseholdAnswer]) -> bool {
    a.is_empty()
}

/// The whole picture, retained on `evac/v1/{town}/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// The town.
    pub town: TownId,
    /// Grows with every snapshot or delta; a delta applies to the snapshot or delta before it.
    pub seq: u64,
    /// When HQ made it (Unix ms).
    pub at_ms: u64,
    /// Town totals.
    pub counts: StatusCounts,
    /// Every shelter.
    pub shelters: Vec<ShelterStatus>,
    /// Every resident.
    pub residents: PackedStatuses,
    /// Every household's latest answer from the TV, by household (self-reported; absent
    /// from older HQs).
    #[serde(default, skip_serializing_if = "no_answers")]
    pub answers: Vec<HouseholdAnswer>,
}

/// What changed since the message with sequence `seq - 1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDelta {
    /// The town.
    pub town: TownId,
    /// This delta's sequence number.
    pub seq: u64,
    /// When HQ made it (Unix ms).
    pub at_ms: u64,
    /// Town totals after the change.
    pub counts: StatusCounts,
    /// Shelters whose state changed.
    pub shelters: Vec<ShelterStatus>,
    /// Residents whose status changed.
    pub residents: Vec<ResidentChange>,
    /// Households whose latest answer from the TV is new or changed (self-reported): each
    /// replaces what a reader holds for its household.
    #[serde(default, skip_serializing_if = "no_answers")]
    pub answers: Vec<HouseholdAnswer>,
    /// Households whose answer left HQ's status: a reader forgets it (absent from older HQs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers_removed: Vec<u32>,
}

/// A message on the status topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StatusMessage {
    /// The whole picture.
    Snapshot(StatusSnapshot),
    /// A change to it.
    Delta(StatusDelta),
}

impl Signable for StatusMessage {
    const KIND: &'static str = "status";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Slug;
    use crate::messages::{ack::HQ_SIGNER, golden};
    use crate::sign::Signed;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = ResidentStatus> {
        prop_oneof![
            Just(ResidentStatus::NotOrdered),
            Just(ResidentStatus::UnderOrder),
            Just(ResidentStatus::Unaccounted),
            (any::<u32>(), any::<bool>()).prop_map(|(s, u)| ResidentStatus::Arrived {
                shelter: ShelterId(s),
                unverified: u,
            }),
            (any::<u32>(), any::<bool>()).prop_map(|(s, u)| ResidentStatus::CheckedOut {
                shelter: ShelterId(s),
                unverified: u,
            }),
            Just(ResidentStatus::Found),
        ]
    }

    proptest! {
        #[test]
        fn packing_round_trips(first in 0u32..1_000_000, v in proptest::collection::vec(status(), 0..300)) {
            let p = PackedStatuses::pack(ResidentId(first), &v);
            let back = p.unpack().unwrap();
            prop_assert_eq!(back.len(), v.len());
            for (i, (r, s)) in back.into_iter().enumerate() {
                prop_assert_eq!(r, ResidentId(first + i as u32));
                prop_assert_eq!(s, v[i]);
            }
        }

        #[test]
        fn unpacking_garbage_never_panics(data in ".{0,64}", count in 0u32..100, first in any::<u32>()) {
            let _ = PackedStatuses { first: ResidentId(first), count, data }.unpack();
        }
    }

    #[test]
    fn unreadable_counts_are_left_out_when_none_and_round_trip_when_some() {
        let none = StatusCounts::default();
        let json = serde_json::to_string(&none).unwrap();
        assert!(!json.contains("unreadable"), "{json}");
        let some = StatusCounts {
            unreadable_at_start: Some(StoreUnreadable {
                events: 3,
                meta: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_string(&some).unwrap();
        assert_eq!(serde_json::from_str::<StatusCounts>(&json).unwrap(), some);
    }

    #[test]
    fn answers_are_optional_and_unknown_kinds_still_read() {
        let mut snap = StatusSnapshot {
            town: Slug::new("minato").unwrap(),
            seq: 1,
            at_ms: 5,
            counts: StatusCounts::default(),
            shelters: vec![],
            residents: PackedStatuses::pack(ResidentId(1), &[]),
            answers: vec![],
        };
        let bare = serde_json::to_string(&snap).unwrap();
        assert!(!bare.contains("answers"), "{bare}");
        snap.answers.push(HouseholdAnswer {
            household: 12,
            kind: AnswerKind::NeedHelp,
            people: Some(3),
            at_ms: 4,
            needs_confirmation: false,
            handled: None,
            confirmed: None,
        });
        let json = serde_json::to_string(&snap).unwrap();
        assert!(
            json.contains(
                r#""answers":[{"household":12,"kind":"need_help","people":3,"at_ms":4}]"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<StatusSnapshot>(&json).unwrap(), snap);
        let newer = json.replace("need_help", "gone_fishing");
        let read: StatusSnapshot = serde_json::from_str(&newer).unwrap();
        assert_eq!(read.answers[0].kind, AnswerKind::Other);
        for k in [
            AnswerKind::EvacuatedElsewhere,
            AnswerKind::SafeAtHome,
            AnswerKind::NeedHelp,
            AnswerKind::AtShelter,
        ] {
            assert_eq!(AnswerKind::from_name(k.name()), Some(k));
        }
    }

    #[test]
    fn a_handled_answer_and_answer_counts_round_trip_and_older_readers_skip_them() {
        let handled = HouseholdAnswer {
            household: 12,
            kind: AnswerKind::NeedHelp,
            people: Some(3),
            at_ms: 4,
            needs_confirmation: false,
            handled: Some(AnswerMark {
                officer: Slug::new("tanaka").unwrap(),
                at_ms: 9,
                reason: "fire brigade took them to the hospital".into(),
            }),
            confirmed: None,
        };
        let counts = StatusCounts {
            answers: Some(AnswerCounts::of(std::slice::from_ref(&handled))),
            ..Default::default()
        };
        assert_eq!(
            counts
                .answers
                .as_ref()
                .map(|a| (a.need_help, a.need_help_unhandled)),
            Some((1, 0))
        );
        let delta = StatusDelta {
            town: Slug::new("minato").unwrap(),
            seq: 2,
            at_ms: 10,
            counts,
            shelters: vec![],
            residents: vec![],
            answers: vec![handled],
            answers_removed: vec![7],
        };
        let json = serde_json::to_string(&delta).unwrap();
        assert!(
            json.contains(r#""handled":{"officer":"tanaka","at_ms":9,"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<StatusDelta>(&json).unwrap(), delta);

        /// A reader of the last release: its types, without the new fields.
        #[derive(Deserialize)]
        #[allow(dead_code)] // read only to see that it parses
        struct OldAnswer {
            household: u32,
            kind: AnswerKind,
            people: Option<u32>,
            at_ms: u64,
            #[serde(default)]
            needs_confirmation: bool,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)] // read only to see that it parses
        struct OldDelta {
            counts: StatusCounts,
            #[serde(default)]
            answers: Vec<OldAnswer>,
        }
        let old: OldDelta = serde_json::from_str(&json).unwrap();
        assert_eq!(old.answers.len(), 1);
    }

    #[test]
    fn golden_and_round_trip() {
        let k = golden::key();
        let town = Slug::new("minato").unwrap();
        let snap = StatusMessage::Snapshot(StatusSnapshot {
            town: town.clone(),
            seq: 1,
            at_ms: 1_795_000_000_000,
            counts: StatusCounts {
                residents: 4,
                under_order: 1,
                arrived: 2,
                found: 1,
                unverified: 1,
                ..Default::default()
            },
            shelters: vec![ShelterStatus {
                shelter: ShelterId(3),
                open: true,
                capacity: 120,
                present_day: 2,
                present_night: 2,
                expected: 1,
                online: true,
                lag_ms: Some(250),
                pending: 0,
                flagged: 1,
                quiet_since_ms: Some(1_794_999_990_000),
                conflicts: 0,
            }],
            residents: PackedStatuses::pack(
                ResidentId(1),
                &[
                    ResidentStatus::UnderOrder,
                    ResidentStatus::Arrived {
                        shelter: ShelterId(3),
                        unverified: false,
                    },
                    ResidentStatus::Found,
                    ResidentStatus::Arrived {
                        shelter: ShelterId(3),
                        unverified: true,
                    },
                ],
            ),
            answers: Vec::new(),
        });
        let wire = k.sign(HQ_SIGNER, &snap).unwrap().to_json().unwrap();
        golden::check("status_snapshot.json", &wire);
        assert_eq!(
            Signed::<StatusMessage>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            snap
        );

        let delta = StatusMessage::Delta(StatusDelta {
            town,
            seq: 2,
            at_ms: 1_795_000_001_000,
            counts: StatusCounts {
                residents: 4,
                arrived: 2,
                checked_out: 1,
                found: 1,
                unverified: 1,
                ..Default::default()
            },
            shelters: vec![],
            residents: vec![
                ResidentChange {
                    resident: ResidentId(1),
                    status: ResidentStatus::Arrived {
                        shelter: ShelterId(3),
                        unverified: false,
                    },
                },
                ResidentChange {
                    resident: ResidentId(4),
                    status: ResidentStatus::CheckedOut {
                        shelter: ShelterId(3),
                        unverified: true,
                    },
                },
            ],
            answers: Vec::new(),
            answers_removed: Vec::new(),
        });
        let wire = k.sign(HQ_SIGNER, &delta).unwrap().to_json().unwrap();
        golden::check("status_delta.json", &wire);
        assert_eq!(
            Signed::<StatusMessage>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            delta
        );
    }
}
