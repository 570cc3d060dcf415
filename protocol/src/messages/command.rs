//! Officer commands to HQ and HQ's replies.

use serde::{Deserialize, Serialize};

use crate::hazard::{AlertLevel, Hazard};
use crate::ids::{CardRef, OfficerId, ResidentId, ShelterId, TownId};
use crate::sign::Signable;

/// What an officer asks HQ to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum CommandAction {
    /// Order the households in these hazard zones to evacuate.
    IssueOrder {
        /// The hazard.
        hazard: Hazard,
        /// The level.
        level: AlertLevel,
        /// Zone ids of the town map.
        zones: Vec<u32>,
        /// When the order lapses (Unix seconds).
        expires: i64,
    },
    /// Lift the orders of a message.
    LiftOrder {
        /// The order message to lift.
        message_id: u32,
    },
    /// Close a shelter: households sent there and not yet arrived are re-routed.
    CloseShelter {
        /// The shelter.
        shelter: ShelterId,
    },
    /// Open a shelter again.
    OpenShelter {
        /// The shelter.
        shelter: ShelterId,
    },
    /// Mark a resident found (not at a shelter, but safe or located).
    MarkFound {
        /// The resident.
        resident: ResidentId,
        /// Where and how, in the officer's words.
        note: String,
    },
    /// Link a card that checked in unregistered to a resident.
    LinkCard {
        /// The card.
        card: CardRef,
        /// The resident it belongs to.
        resident: ResidentId,
    },
    /// Mark a household's latest answer from the TV, "needs help at home", handled (help
    /// went, or it was found not needed); the command's reason says how and stays with the
    /// answer in HQ's status. A later answer from the household is news again.
    AnswerHandled {
        /// The household (its registry id).
        household: u32,
    },
    /// Confirm a household's latest answer from the TV that came after too many wrong answer
    /// codes (the officer reached the household another way); the command's reason says how.
    ConfirmAnswer {
        /// The household (its registry id).
        household: u32,
    },
}

/// Published on `evac/v1/{town}/cmd/{officer}`, signed by the officer's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerCommand {
    /// The officer (must match the topic and the signing key).
    pub officer: OfficerId,
    /// The town it is for: HQ refuses a command for another town.
    pub town: TownId,
    /// The officer's own number for the command, echoed in the reply; a repeat is ignored.
    pub id: u64,
    /// When the officer gave it (Unix ms).
    pub at_ms: u64,
    /// What to do.
    #[serde(flatten)]
    pub action: CommandAction,
    /// Why, in the officer's words: HQ refuses a command without one and keeps it in its
    /// command log.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The longest reason HQ keeps, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// How far (ms) a command's `at_ms` may lie from HQ's clock, either way: an older one (held
/// by a broker while HQ was down, or replayed) is refused with a reply, not carried out late.
pub const MAX_COMMAND_SKEW_MS: u64 = 15 * 60 * 1000;

impl Signable for OfficerCommand {
    const KIND: &'static str = "command";
}

/// Published on `evac/v1/{town}/cmd/{officer}/reply`, signed by HQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    /// The officer who asked.
    pub officer: OfficerId,
    /// The command's id.
    pub command_id: u64,
    /// Whether HQ carried it out.
    pub ok: bool,
    /// What HQ did, or why not, in words for the officer.
    pub message: String,
    /// When (Unix ms).
    pub at_ms: u64,
}

impl Signable for CommandReply {
    const KIND: &'static str = "reply";
}

/// The signer name of an officer.
pub fn officer_signer(officer: &OfficerId) -> String {
    format!("officer:{officer}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Slug;
    use crate::messages::{ack::HQ_SIGNER, golden};
    use crate::sign::Signed;

    #[test]
    fn golden_and_round_trip() {
        let k = golden::key();
        let officer = Slug::new("tanaka").unwrap();
        let cmd = OfficerCommand {
            officer: officer.clone(),
            town: Slug::new("minato").unwrap(),
            id: 12,
            at_ms: 1_795_000_000_000,
            action: CommandAction::MarkFound {
                resident: ResidentId(1207),
                note: "at her daughter's house, safe".into(),
            },
            reason: "her daughter called the town hall".into(),
        };
        let wire = k
            .sign(&officer_signer(&officer), &cmd)
            .unwrap()
            .to_json()
            .unwrap();
        golden::check("command.json", &wire);
        assert_eq!(
            Signed::<OfficerCommand>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            cmd
        );

        let reply = CommandReply {
            officer,
            command_id: 12,
            ok: true,
            message: "resident 1207 marked found".into(),
            at_ms: 1_795_000_000_100,
        };
        let wire = k.sign(HQ_SIGNER, &reply).unwrap().to_json().unwrap();
        golden::check("reply.json", &wire);
        assert_eq!(
            Signed::<CommandReply>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            reply
        );
    }

    #[test]
    fn every_action_round_trips() {
        let actions = [
            CommandAction::IssueOrder {
                hazard: Hazard::Tsunami,
                level: AlertLevel::Level4,
                zones: vec![1, 2],
                expires: 1_795_000_000,
            },
            CommandAction::LiftOrder { message_id: 4 },
            CommandAction::CloseShelter {
                shelter: ShelterId(2),
            },
            CommandAction::OpenShelter {
                shelter: ShelterId(2),
            },
            CommandAction::LinkCard {
                card: CardRef {
                    issuer_key_id: vec![1],
                    serial: vec![2],
                },
                resident: ResidentId(5),
            },
            CommandAction::AnswerHandled { household: 45 },
            CommandAction::ConfirmAnswer { household: 45 },
        ];
        for action in actions {
            let cmd = OfficerCommand {
                officer: Slug::new("sato").unwrap(),
                town: Slug::new("minato").unwrap(),
                id: 1,
                at_ms: 0,
                action,
                reason: String::new(),
            };
            let j = serde_json::to_string(&cmd).unwrap();
            assert_eq!(
                serde_json::from_str::<OfficerCommand>(&j).unwrap(),
                cmd,
                "{j}"
            );
        }
    }
}
