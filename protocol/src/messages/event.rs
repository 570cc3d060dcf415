//! Shelter events: check-in, check-out, staff registration and correction.

use serde::{Deserialize, Serialize};

use crate::PROTOCOL_VERSION;
use crate::hlc::Timestamp;
use crate::ids::{CardRef, EventId, HouseholdId, ResidentId, ShelterId};
use crate::sign::{Signable, Signed};

/// What happened at the shelter door.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A person arrived.
    CheckIn,
    /// A person left.
    CheckOut,
    /// Staff registered a walk-in without a card.
    StaffRegistration,
    /// Staff corrected an earlier event (named in `corrects`).
    Correction,
}

/// How sure the shelter is of who the person is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Assurance {
    /// The card's certificate was read and passed every check.
    CardRead,
    /// The card also signed a fresh challenge after the resident's PIN.
    CardSigned,
    /// Entered by staff for a walk-in without a card.
    Staff,
    /// A certificate was read but failed a check (see the flags).
    Unverified,
}

/// Why an event is flagged for an officer's attention. None of these refuses a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    /// Certificate past its validity.
    Expired,
    /// Certificate not yet valid.
    NotYetValid,
    /// Certificate not issued by a configured CA.
    UnknownIssuer,
    /// Certificate signature does not verify.
    BadSignature,
    /// Certificate revoked by the configured CRL or deny list.
    Revoked,
    /// Certificate not meant for user authentication.
    WrongKeyUsage,
    /// Certificate could not be parsed.
    Malformed,
    /// A valid card that is not in the registry (a visitor): an unregistered evacuee.
    Unregistered,
    /// The card's challenge signature failed: the card may be a copy.
    CardSignatureFailed,
    /// A flag this node does not know (sent by a newer node).
    #[serde(other)]
    Other,
}

/// One event of a shelter's ledger, as replicated to HQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEvent {
    /// Shelter and sequence number.
    pub id: EventId,
    /// Hybrid-logical-clock time of the event.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// The card tapped, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRef>,
    /// The resident, when the registry knows the card or staff picked them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident: Option<ResidentId>,
    /// The resident's household, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<HouseholdId>,
    /// How sure the identity is.
    pub assurance: Assurance,
    /// Reasons for an officer to look, empty for a clean tap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// The person sleeps elsewhere (in their car): counted by day, not by night.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub day_only: bool,
    /// For a correction: the event it corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<EventId>,
    /// Staff's note (no personal data beyond what the officer needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CheckEvent {
    /// An event of `kind` as `shelter`'s `seq`-th, at `wall_ms` on the shelter's clock
    /// (logical 0), with nothing else known: no card, resident or household, entered by
    /// staff, unflagged. Set the fields a real event has on the result.
    pub fn new(shelter: ShelterId, seq: u64, wall_ms: u64, kind: EventKind) -> CheckEvent {
        CheckEvent {
            id: EventId { shelter, seq },
            at: Timestamp {
                wall_ms,
                logical: 0,
                node: shelter.0,
            },
            kind,
            card: None,
            resident: None,
            household: None,
            assurance: Assurance::Staff,
            flags: vec![],
            day_only: false,
            corrects: None,
            note: None,
        }
    }
}

impl Signable for CheckEvent {
    const KIND: &'static str = "event";
}

/// The most bytes of signed events a shelter puts in one batch (the batch is cut before an
/// event that would pass it; one event alone is far smaller): the broker refuses anything
/// much larger from any login but HQ's.
pub const MAX_BATCH_BYTES: usize = 256 << 10;

/// The longest staff note on an event (a correction's reason), in bytes of UTF-8 (about 340
/// characters of Japanese): a shelter refuses a longer one when it is typed, and HQ refuses
/// an event that carries one.
pub const MAX_NOTE_BYTES: usize = 1024;

/// The payload on `.../shelter/{id}/events`: a run of signed events, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventBatch {
    /// Protocol version.
    pub v: u32,
    /// The shelter that sends them (every event must be its own).
    pub shelter: ShelterId,
    /// Each event signed by the shelter's key.
    pub events: Vec<Signed<CheckEvent>>,
}

impl EventBatch {
    /// A batch of this protocol version.
    pub fn new(shelter: ShelterId, events: Vec<Signed<CheckEvent>>) -> Self {
        EventBatch {
            v: PROTOCOL_VERSION,
            shelter,
            events,
        }
    }
}

/// The signer name of a shelter node.
pub fn shelter_signer(shelter: ShelterId) -> String {
    format!("shelter:{shelter}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::messages::golden;

    pub fn sample() -> CheckEvent {
        CheckEvent {
            id: EventId {
                shelter: ShelterId(3),
                seq: 42,
            },
            at: Timestamp {
                wall_ms: 1_795_000_000_000,
                logical: 1,
                node: 3,
            },
            kind: EventKind::CheckIn,
            card: Some(CardRef {
                issuer_key_id: vec![0x1a; 20],
                serial: vec![0x01, 0x02, 0x03],
            }),
            resident: Some(ResidentId(1207)),
            household: Some(HouseholdId(455)),
            assurance: Assurance::Unverified,
            flags: vec![Flag::Expired],
            day_only: true,
            corrects: None,
            note: None,
        }
    }

    #[test]
    fn golden_and_round_trip() {
        let k = golden::key();
        let batch = EventBatch::new(
            ShelterId(3),
            vec![k.sign(&shelter_signer(ShelterId(3)), &sample()).unwrap()],
        );
        let wire = serde_json::to_string_pretty(&batch).unwrap();
        golden::check("event_batch.json", &wire);
        let back: EventBatch = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.events[0].open(&k.public()).unwrap(), sample());
    }

    #[test]
    fn unknown_flags_do_not_break_old_nodes() {
        let f: Vec<Flag> = serde_json::from_str(r#"["revoked","from-the-future"]"#).unwrap();
        assert_eq!(f, vec![Flag::Revoked, Flag::Other]);
    }
}
