//! Officers' commands: checked, carried out, answered and kept in the command log.

use evac_protocol::{
    CommandAction, CommandReply, OfficerCommand, OfficerId, Signed, Topic, officer_signer,
};

use crate::error::{HqError, OrderError};
use crate::notice::{Area, Notice};
use crate::store::{CardLinkWrite, CommandRecord};

/// A card link decided by a command, written with the command's record (see
/// [`Hq::on_command`]).
pub(super) struct PendingLink {
    card: evac_protocol::CardRef,
    resident: evac_protocol::ResidentId,
    /// The registry's version with the link.
    version: u64,
    /// The registry's content digest with it, when the link is new.
    digest: Option<String>,
}

use super::answers::MarkKind;
use super::*;

impl Hq {
    /// An officer's command on `.../cmd/{officer}`; returns the reply and whatever the command
    /// caused (orders, registry).
    pub fn on_command(
        &mut self,
        officer: &OfficerId,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Vec<Publication>, HqError> {
        let topic = Topic::Command(self.town_id.clone(), officer.clone()).to_string();
        let reply_topic = Topic::CommandReply(self.town_id.clone(), officer.clone()).to_string();
        let refuse = |hq: &mut Hq, id: u64, why: String| -> Result<Vec<Publication>, HqError> {
            hq.reject(now_ms, &topic, &why);
            let reply = CommandReply {
                officer: officer.clone(),
                command_id: id,
                ok: false,
                message: why,
                at_ms: now_ms,
            };
            Ok(vec![Publication {
                topic: reply_topic.clone(),
                payload: hq.sign(&reply)?,
                retain: false,
            }])
        };
        let env = match Signed::<OfficerCommand>::from_json(payload) {
            Ok(e) => e,
            Err(e) => return refuse(self, 0, format!("not a signed command: {e}")),
        };
        let claimed_id = env.body_unverified().map(|c| c.id).unwrap_or(0);
        let Some(key) = self.keys.officer(officer) else {
            return refuse(
                self,
                claimed_id,
                format!("officer {officer} has no key at HQ: commands refused"),
            );
        };
        if env.signer != officer_signer(officer) {
            return refuse(
                self,
                claimed_id,
                format!("signed as {:?}, not as officer {officer}", env.signer),
            );
        }
        let cmd = match env.open(key) {
            Ok(c) if &c.officer == officer => c,
            Ok(c) => return refuse(self, c.id, format!("command names officer {}", c.officer)),
            Err(e) => return refuse(self, claimed_id, format!("command signature: {e}")),
        };
        let body_digest = hex::encode(sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(env.body_json()),
        ));
        let action = serde_json::to_string(&cmd.action).unwrap_or_default();
        if let Some(held) = self.store.command(officer.as_str(), cmd.id)? {
            // A command kept before digests were is compared by what it did, when and why.
            let same = if held.body_digest.is_empty() {
                held.action == action && held.at_ms == cmd.at_ms && held.reason == cmd.reason
            } else {
                held.body_digest == body_digest
            };
            if !same {
                // A reused number (a dashboard whose clock stepped back numbers commands by
                // its `now_ms`) must not be answered with another command's outcome.
                tracing::warn!(officer = %officer, id = cmd.id, "command number used already for another command: refused, not carried out");
                return refuse(
                    self,
                    cmd.id,
                    format!(
                        "command number {} was used already for another command ({}, given at {} ms): this one is refused and not carried out; give it again under a new number",
                        cmd.id, held.action, held.at_ms
                    ),
                );
            }
            // Carried out once only; the officer (a resend) hears what became of it.
            tracing::info!(officer = %officer, id = cmd.id, "repeated command answered, not carried out again");
            let reply = CommandReply {
                officer: officer.clone(),
                command_id: cmd.id,
                ok: held.ok,
                message: format!("command {} was handled already: {}", cmd.id, held.message),
                at_ms: now_ms,
            };
            return Ok(vec![Publication {
                topic: reply_topic,
                payload: self.sign(&reply)?,
                retain: false,
            }]);
        }
        if cmd.town != self.town_id {
            return refuse(
                self,
                cmd.id,
                format!("command for town {}, this is {}", cmd.town, self.town_id),
            );
        }
        let skew = evac_protocol::messages::command::MAX_COMMAND_SKEW_MS;
        if now_ms.abs_diff(cmd.at_ms) > skew {
            return refuse(
                self,
                cmd.id,
                format!(
                    "command given {} min from HQ's clock (more than {} min): not carried out; give it again if still wanted",
                    now_ms.abs_diff(cmd.at_ms) / 60_000,
                    skew / 60_000
                ),
            );
        }
        if cmd.reason.trim().is_empty() {
            return refuse(
                self,
                cmd.id,
                "a command needs a reason (it is kept in HQ's command log)".into(),
            );
        }
        if cmd.reason.chars().count() > evac_protocol::messages::command::MAX_REASON_CHARS {
            return refuse(
                self,
                cmd.id,
                format!(
                    "the reason is longer than {} characters",
                    evac_protocol::messages::command::MAX_REASON_CHARS
                ),
            );
        }
        self.pending_link = None;
        self.pending_mark = None;
        let (ok, message, mut out) = self.execute(officer, &cmd, now_ms)?;
        let record = CommandRecord {
            officer: officer.to_string(),
            id: cmd.id,
            at_ms: cmd.at_ms,
            received_ms: now_ms,
            action,
            ok,
            message: message.clone(),
            reason: cmd.reason.clone(),
            body_digest,
        };
        match (self.pending_link.take(), self.pending_mark.take()) {
            (Some(l), _) => out.extend(self.link_recorded(&record, l)?),
            (None, Some(m)) => {
                self.store.record_command_marking(&record, &m)?;
                self.answers.mark(m);
            }
            (None, None) => self.store.record_command(&record)?,
        }
        tracing::info!(officer = %officer, id = cmd.id, ok, message = %message, "command");
        let reply = CommandReply {
            officer: officer.clone(),
            command_id: cmd.id,
            ok,
            message,
            at_ms: now_ms,
        };
        out.insert(
            0,
            Publication {
                topic: reply_topic,
                payload: self.sign(&reply)?,
                retain: false,
            },
        );
        Ok(out)
    }

    /// Keeps a card link with the command that made it (one commit), then takes it into the
    /// board and the registry; returns the registry's delta for shelters.
    fn link_recorded(
        &mut self,
        record: &CommandRecord,
        l: PendingLink,
    ) -> Result<Option<Publication>, HqError> {
        let version = l.version.to_string();
        let meta: Vec<(&str, &str)> = match &l.digest {
            Some(d) => vec![("registry_version", &version), ("registry_digest", d)],
            None => vec![],
        };
        self.store.record_command_with(
            record,
            &CardLinkWrite {
                card: &l.card,
                resident: l.resident,
                meta: &meta,
            },
        )?;
        self.board.link_card(&l.card, l.resident);
        self.registry.link(&l.card, l.resident);
        self.registry.version = l.version;
        let digest = self.registry.card_digest(&l.card);
        self.shards.link(digest, l.resident.0, l.version)
    }

    /// An officer's mark on a household's answer: kept with the command (see on_command), or
    /// the reply saying why there is none to make.
    fn mark_answer(
        &mut self,
        officer: &OfficerId,
        household: u32,
        kind: MarkKind,
        reason: &str,
        now_ms: u64,
    ) -> (bool, String, Vec<Publication>) {
        match self.answer_mark(officer, household, kind, reason, now_ms) {
            Ok(m) => {
                let what = match kind {
                    MarkKind::Handled => "needs-help answer marked handled",
                    MarkKind::Confirmed => "answer confirmed",
                };
                self.pending_mark = Some(m);
                (true, format!("household {household}'s {what}"), vec![])
            }
            Err((ok, why)) => (ok, why, vec![]),
        }
    }

    fn execute(
        &mut self,
        officer: &OfficerId,
        cmd: &OfficerCommand,
        now_ms: u64,
    ) -> Result<(bool, String, Vec<Publication>), HqError> {
        let orders = |r: Result<(OrderReport, Vec<Publication>), OrderError>, what: String| match r
        {
            Ok((rep, msgs)) => {
                let id = rep
                    .message_id
                    .map(|m| format!(" as message {m}"))
                    .unwrap_or_default();
                (
                    true,
                    format!(
                        "{what}{id}: {} orders, {} households without room",
                        rep.orders, rep.unassigned
                    ),
                    msgs,
                )
            }
            Err(e) => (false, format!("{what}: {e}"), vec![]),
        };
        Ok(match &cmd.action {
            CommandAction::IssueOrder {
                hazard,
                level,
                zones,
                expires,
            } => {
                let notice = Notice {
                    name: format!("{hazard} level {level} by {officer}"),
                    hazard: *hazard,
                    level: *level,
                    area: Area {
                        zones: zones.clone(),
                        ..Area::default()
                    },
                    issued: now_secs(now_ms),
                    expires: *expires,
                    onset: None,
                    effective: None,
                    drill: false,
                    source: officer_signer(officer),
                    cap: None,
                };
                orders(
                    self.issue(notice, None, now_ms),
                    format!("issued {hazard} level {level} for zones {zones:?}"),
                )
            }
            CommandAction::LiftOrder { message_id } => orders(
                self.lift(*message_id, now_ms),
                format!("lifted message {message_id}"),
            ),
            CommandAction::CloseShelter { shelter } => orders(
                self.set_shelter_open(*shelter, false, now_ms),
                format!("closed shelter {shelter}"),
            ),
            CommandAction::OpenShelter { shelter } => orders(
                self.set_shelter_open(*shelter, true, now_ms),
                format!("opened shelter {shelter}"),
            ),
            CommandAction::MarkFound { resident, note } => {
                if !self.board.knows(*resident) {
                    (
                        false,
                        format!("no resident {resident} in the registry"),
                        vec![],
                    )
                } else {
                    let at = self.clock.now(now_ms);
                    self.store
                        .set_found(*resident, at, officer.as_str(), note)?;
                    self.board.mark_found(*resident, at);
                    (true, format!("resident {resident} marked found"), vec![])
                }
            }
            CommandAction::AnswerHandled { household } => {
                self.mark_answer(officer, *household, MarkKind::Handled, &cmd.reason, now_ms)
            }
            CommandAction::ConfirmAnswer { household } => self.mark_answer(
                officer,
                *household,
                MarkKind::Confirmed,
                &cmd.reason,
                now_ms,
            ),
            CommandAction::LinkCard { card, resident } => {
                if !self.board.knows(*resident) {
                    (
                        false,
                        format!("no resident {resident} in the registry"),
                        vec![],
                    )
                } else if let Some(other) = self.board.resident_of(card).filter(|r| r != resident) {
                    (
                        false,
                        format!("card {card} is already linked to resident {other}"),
                        vec![],
                    )
                } else {
                    // Written with the command's record in one commit, then applied (see
                    // on_command); the registry message follows from a tick, made off this loop.
                    let (version, digest) = match self.registry.digest_with(card, *resident) {
                        Some(d) => {
                            let clock = u64::try_from(now_secs(now_ms)).unwrap_or(0);
                            ((self.registry.version + 1).max(clock), Some(d))
                        }
                        None => (self.registry.version, None),
                    };
                    self.pending_link = Some(PendingLink {
                        card: card.clone(),
                        resident: *resident,
                        version,
                        digest,
                    });
                    (
                        true,
                        format!("card linked to resident {resident}; registry version {version}"),
                        vec![],
                    )
                }
            }
        })
    }
}
