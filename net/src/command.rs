//! Sending an officer's command: the one sender the dashboard, `evac-hq cmd` and the drill's
//! officer share. It signs a command, gives it its number, keeps it until HQ answers and says
//! what to hand to the link now; it does no I/O. Each caller publishes what [`CommandSender::due`]
//! returns its own way (the dashboard with `try_publish` while connected, `evac-hq cmd`
//! blocking, the drill on its own thread) and steps it with a monotonic clock in ms.
//!
//! Why here and not in `evac-protocol`: the protocol crate is the wire (messages, topics,
//! signatures) that every node links, HQ and the set-top box too; when to send again, which
//! commands are still unanswered and how to number them is how a client reaches HQ through
//! the broker, which is this crate's concern. The module itself uses no rumqttc or tokio, so
//! it is tested on a stepped clock; its callers all talk MQTT already and depend on rumqttc.
//!
//! # Numbering
//!
//! HQ keeps every command by (officer, number): a repeat of the same signed body is answered
//! with its first outcome and never carried out twice; the same number with another body is
//! refused and not carried out. So a number must never be reused, within a run or across
//! runs, and a resend must be the same signed bytes. The rule, for every caller: a command's
//! number is the node's clock in ms when it is given (`now_ms`, from `evac_protocol::time`,
//! the `--clock` input), or one past the sender's last number when that is higher. Numbers
//! increase within a run, and across a restart because the clock moved on meanwhile: the
//! clock is the counter that survives a restart, with no state file. Should a wall clock
//! step back past an earlier number, HQ refuses the reused number with a reply that says so
//! (give it again), it never answers with another command's outcome.
//!
//! # Sending again
//!
//! A command goes out as soon as it is given and again every [`RESEND_MS`] until HQ's
//! answer names its number, as the same signed message: a command topic is not retained, so
//! a copy sent before HQ subscribed (HQ starting) or lost with a broker restart is not lost.
//! After the link comes back ([`CommandSender::link_up`]) every unanswered command is due at
//! once. A sender may stop sending a command once HQ would refuse it as stale
//! ([`CommandSender::resend_within`]).
//!
//! ```
//! use evac_net::command::{CommandSender, Officer, RESEND_MS};
//! use evac_protocol::{CommandAction, CommandReply, SecretKey, ShelterId, Slug};
//!
//! let officer = Officer { name: Slug::new("tanaka").unwrap(), key: SecretKey::from_seed(&[3; 32]) };
//! let mut sender = CommandSender::new(officer, Slug::new("minato").unwrap());
//! let close = CommandAction::CloseShelter { shelter: ShelterId(4) };
//! let cmd = sender.give(close, "road flooded", 1_795_000_000_000, 0).unwrap();
//! assert_eq!(cmd.id, 1_795_000_000_000);
//! assert_eq!(cmd.topic, "evac/v1/minato/cmd/tanaka");
//! // The caller publishes what is due and says so.
//! assert_eq!(sender.due(0), vec![cmd.clone()]);
//! sender.sent(cmd.id, 0);
//! assert!(sender.due(RESEND_MS - 1).is_empty());
//! assert_eq!(sender.due(RESEND_MS), vec![cmd.clone()]);
//! // HQ's answer ends it.
//! let reply = CommandReply {
//!     officer: Slug::new("tanaka").unwrap(),
//!     command_id: cmd.id,
//!     ok: true,
//!     message: "closed".into(),
//!     at_ms: 1_795_000_001_000,
//! };
//! assert!(sender.answered(&reply));
//! assert!(sender.is_idle());
//! ```

use evac_protocol::{
    CommandAction, CommandReply, OfficerCommand, OfficerId, SecretKey, SignError, Topic, TownId,
    officer_signer,
};

/// How long (monotonic ms) a command waits for HQ's answer before it is sent again.
pub const RESEND_MS: u64 = 3_000;

/// An officer's signing identity: the name HQ knows and the key whose public half HQ holds.
#[derive(Debug)]
pub struct Officer {
    /// The officer's name (`.../cmd/{name}`, signer `officer:{name}`).
    pub name: OfficerId,
    /// The officer's secret key.
    pub key: SecretKey,
}

impl Officer {
    /// Signs command number `id` for `town`, given at `at_ms` (Unix ms), with the officer's
    /// reason.
    pub fn sign(
        &self,
        town: &TownId,
        id: u64,
        at_ms: u64,
        action: CommandAction,
        reason: &str,
    ) -> Result<SignedCommand, SignError> {
        let cmd = OfficerCommand {
            officer: self.name.clone(),
            town: town.clone(),
            id,
            at_ms,
            action,
            reason: reason.to_owned(),
        };
        let env = self.key.sign(&officer_signer(&self.name), &cmd)?;
        Ok(SignedCommand {
            id,
            topic: Topic::Command(town.clone(), self.name.clone()).to_string(),
            payload: env.to_json()?.into_bytes(),
        })
    }
}

/// A signed command ready to publish, as it goes out every time it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCommand {
    /// Its number, which HQ's reply names.
    pub id: u64,
    /// The officer's command topic.
    pub topic: String,
    /// The signed command (JSON).
    pub payload: Vec<u8>,
}

/// A command without HQ's answer yet.
#[derive(Debug)]
struct Unanswered {
    cmd: SignedCommand,
    /// When it was given (monotonic ms).
    given_mono: u64,
    /// When it was last handed to the link (monotonic ms); none: due at once.
    sent_mono: Option<u64>,
}

/// One officer's commands to one town: numbered, signed, and kept until HQ answers (see the
/// module doc).
#[derive(Debug)]
pub struct CommandSender {
    officer: Officer,
    town: TownId,
    last_id: u64,
    unanswered: Vec<Unanswered>,
    resend_within_ms: Option<u64>,
}

impl CommandSender {
    /// A sender for `officer`'s commands to `town`'s HQ, that sends a command again until HQ
    /// answers.
    pub fn new(officer: Officer, town: TownId) -> CommandSender {
        CommandSender {
            officer,
            town,
            last_id: 0,
            unanswered: Vec::new(),
            resend_within_ms: None,
        }
    }

    /// Stops sending a command again once `ms` (monotonic) have passed since it was given: HQ
    /// would refuse it as stale. It stays unanswered (the officer sees it pending).
    pub fn resend_within(mut self, ms: u64) -> CommandSender {
        self.resend_within_ms = Some(ms);
        self
    }

    /// The officer who signs.
    pub fn officer(&self) -> &Officer {
        &self.officer
    }

    /// Numbers and signs `action` given now (`now_ms`: the node's clock, Unix ms; `mono_ms`:
    /// the monotonic clock) and keeps it until HQ answers; it is due at once.
    pub fn give(
        &mut self,
        action: CommandAction,
        reason: &str,
        now_ms: u64,
        mono_ms: u64,
    ) -> Result<SignedCommand, SignError> {
        let id = now_ms.max(self.last_id.saturating_add(1));
        let cmd = self.officer.sign(&self.town, id, now_ms, action, reason)?;
        self.last_id = id;
        self.unanswered.push(Unanswered {
            cmd: cmd.clone(),
            given_mono: mono_ms,
            sent_mono: None,
        });
        Ok(cmd)
    }

    /// Gives the mark "handled" on `household`'s "needs help at home" answer from the TV, with
    /// the officer's `reason` (how it was handled; HQ keeps it with the answer): as
    /// [`CommandSender::give`] with [`CommandAction::AnswerHandled`]. HQ refuses it, with a
    /// reply that says why, when the household's latest answer is not "needs help".
    pub fn answer_handled(
        &mut self,
        household: u32,
        reason: &str,
        now_ms: u64,
        mono_ms: u64,
    ) -> Result<SignedCommand, SignError> {
        self.give(
            CommandAction::AnswerHandled { household },
            reason,
            now_ms,
            mono_ms,
        )
    }

    /// Confirms `household`'s answer from the TV that came after too many wrong answer codes
    /// (the officer reached the household another way, said in `reason`): as
    /// [`CommandSender::give`] with [`CommandAction::ConfirmAnswer`].
    pub fn confirm_answer(
        &mut self,
        household: u32,
        reason: &str,
        now_ms: u64,
        mono_ms: u64,
    ) -> Result<SignedCommand, SignError> {
        self.give(
            CommandAction::ConfirmAnswer { household },
            reason,
            now_ms,
            mono_ms,
        )
    }

    /// What to hand to the link at `mono_ms`, oldest first: commands not sent yet, or last
    /// sent [`RESEND_MS`] ago or more, and still within [`CommandSender::resend_within`].
    /// Call [`CommandSender::sent`] for each one handed over.
    pub fn due(&self, mono_ms: u64) -> Vec<SignedCommand> {
        self.still_sent(mono_ms)
            .filter(|u| {
                u.sent_mono
                    .is_none_or(|last| mono_ms.saturating_sub(last) >= RESEND_MS)
            })
            .map(|u| u.cmd.clone())
            .collect()
    }

    /// The earliest monotonic ms at which a command falls due (for a caller that sleeps until
    /// then); none when nothing is unanswered. Commands past
    /// [`CommandSender::resend_within`] are left out.
    pub fn next_due(&self, mono_ms: u64) -> Option<u64> {
        self.still_sent(mono_ms)
            .map(|u| u.sent_mono.map_or(mono_ms, |last| last + RESEND_MS))
            .min()
    }

    /// The unanswered commands still sent at `mono_ms` (within
    /// [`CommandSender::resend_within`] of being given).
    fn still_sent(&self, mono_ms: u64) -> impl Iterator<Item = &Unanswered> {
        self.unanswered.iter().filter(move |u| {
            self.resend_within_ms
                .is_none_or(|within| mono_ms.saturating_sub(u.given_mono) <= within)
        })
    }

    /// Notes that command `id` was handed to the link at `mono_ms`: it is due again
    /// [`RESEND_MS`] later.
    pub fn sent(&mut self, id: u64, mono_ms: u64) {
        for u in self.unanswered.iter_mut().filter(|u| u.cmd.id == id) {
            u.sent_mono = Some(mono_ms);
        }
    }

    /// The link came back: every unanswered command is due at once.
    pub fn link_up(&mut self) {
        for u in &mut self.unanswered {
            u.sent_mono = None;
        }
    }

    /// Takes HQ's reply (its signature already checked): true when it answers one of this
    /// officer's unanswered commands, which is then no longer sent. A reply for another
    /// officer or a number not waited for (a second answer to a resend) changes nothing.
    pub fn answered(&mut self, reply: &CommandReply) -> bool {
        reply.officer == self.officer.name && self.forget(reply.command_id)
    }

    /// Stops sending command `id` (its answer came another way); true when it was unanswered.
    pub fn forget(&mut self, id: u64) -> bool {
        let before = self.unanswered.len();
        self.unanswered.retain(|u| u.cmd.id != id);
        self.unanswered.len() != before
    }

    /// The numbers of the commands without HQ's answer, oldest first.
    pub fn unanswered(&self) -> impl Iterator<Item = u64> + '_ {
        self.unanswered.iter().map(|u| u.cmd.id)
    }

    /// Whether every command has HQ's answer.
    pub fn is_idle(&self) -> bool {
        self.unanswered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use evac_protocol::{ShelterId, Signed, Slug};

    const T0: u64 = 1_795_000_000_000;

    fn sender() -> CommandSender {
        let officer = Officer {
            name: Slug::new("tanaka").unwrap(),
            key: SecretKey::from_seed(&[3; 32]),
        };
        CommandSender::new(officer, Slug::new("minato").unwrap())
    }

    fn close(shelter: u32) -> CommandAction {
        CommandAction::CloseShelter {
            shelter: ShelterId(shelter),
        }
    }

    fn reply(id: u64) -> CommandReply {
        CommandReply {
            officer: Slug::new("tanaka").unwrap(),
            command_id: id,
            ok: true,
            message: "closed".into(),
            at_ms: T0,
        }
    }

    #[test]
    fn an_answer_mark_is_a_numbered_signed_command_like_any_other() {
        let mut s = sender();
        let out = s.answer_handled(45, "ambulance took them", T0, 0).unwrap();
        let cmd = Signed::<OfficerCommand>::from_json(&out.payload)
            .unwrap()
            .open(&s.officer().key.public())
            .unwrap();
        assert_eq!(cmd.action, CommandAction::AnswerHandled { household: 45 });
        assert_eq!((cmd.id, cmd.reason.as_str()), (T0, "ambulance took them"));
        let out = s.confirm_answer(46, "phoned them", T0, 1).unwrap();
        assert_eq!(out.id, T0 + 1, "numbered after the first");
        assert_eq!(s.due(1).len(), 2, "both wait for HQ's answer");
    }

    #[test]
    fn a_signed_command_opens_with_the_officer_key() {
        let s = sender();
        let out = s
            .officer()
            .sign(
                &Slug::new("minato").unwrap(),
                9,
                5,
                close(1),
                "the gym is flooded",
            )
            .unwrap();
        assert_eq!(out.topic, "evac/v1/minato/cmd/tanaka");
        let env = Signed::<OfficerCommand>::from_json(&out.payload).unwrap();
        assert_eq!(env.signer, "officer:tanaka");
        let cmd = env.open(&s.officer().key.public()).unwrap();
        assert_eq!(
            (cmd.id, cmd.at_ms, cmd.reason.as_str()),
            (9, 5, "the gym is flooded")
        );
    }

    #[test]
    fn a_command_is_sent_again_after_3_s_as_the_same_message() {
        let mut s = sender();
        let cmd = s.give(close(4), "road flooded", T0, 100).unwrap();
        assert_eq!(s.due(100), vec![cmd.clone()], "due at once");
        s.sent(cmd.id, 100);
        assert!(s.due(100 + RESEND_MS - 1).is_empty(), "resent too early");
        assert_eq!(s.next_due(200), Some(100 + RESEND_MS));
        assert_eq!(s.due(100 + RESEND_MS), vec![cmd.clone()]);
        s.sent(cmd.id, 100 + RESEND_MS);
        assert!(s.due(100 + RESEND_MS + 1).is_empty());
        // The link came back: at once.
        s.link_up();
        assert_eq!(s.due(100 + RESEND_MS + 1), vec![cmd]);
    }

    #[test]
    fn hq_s_answer_drops_the_command_and_an_unknown_answer_is_ignored() {
        let mut s = sender();
        let a = s.give(close(1), "flooded", T0, 0).unwrap();
        let b = s.give(close(2), "flooded", T0, 0).unwrap();
        assert!(!s.answered(&reply(a.id + 1000)), "a number not given");
        let mut other = reply(a.id);
        other.officer = Slug::new("sato").unwrap();
        assert!(!s.answered(&other), "another officer's");
        assert_eq!(s.unanswered().collect::<Vec<_>>(), vec![a.id, b.id]);
        assert!(s.answered(&reply(a.id)));
        assert!(!s.answered(&reply(a.id)), "a second answer (to a resend)");
        assert_eq!(s.due(10 * RESEND_MS), vec![b.clone()]);
        assert!(s.forget(b.id));
        assert!(s.is_idle() && s.due(20 * RESEND_MS).is_empty());
        assert_eq!(s.next_due(0), None);
    }

    #[test]
    fn numbers_follow_the_clock_and_never_repeat() {
        let mut s = sender();
        let a = s.give(close(1), "x", T0, 0).unwrap().id;
        // Two in the same millisecond, then a clock that stepped back.
        let b = s.give(close(2), "x", T0, 0).unwrap().id;
        let c = s.give(close(3), "x", T0 - 60_000, 0).unwrap().id;
        let d = s.give(close(4), "x", T0 + 5_000, 0).unwrap().id;
        assert_eq!(vec![a, b, c, d], vec![T0, T0 + 1, T0 + 2, T0 + 5_000]);
        // The command is dated by the clock, not by its number.
        let cmd = Signed::<OfficerCommand>::from_json(&s.due(0)[2].payload).unwrap();
        assert_eq!(cmd.body_unverified().unwrap().at_ms, T0 - 60_000);
    }

    #[test]
    fn numbers_increase_across_a_restart() {
        let mut before = sender();
        let last = (0..5)
            .map(|i| before.give(close(i), "x", T0, 0).unwrap().id)
            .max()
            .unwrap();
        // A new run (a new sender, the monotonic clock from 0 again) a second later.
        let mut after = sender();
        let first = after.give(close(9), "x", T0 + 1_000, 0).unwrap().id;
        assert!(first > last, "{first} after {last}");
    }

    #[test]
    fn a_command_is_not_resent_past_hq_s_freshness_bound() {
        let mut s = sender().resend_within(10 * RESEND_MS);
        let cmd = s.give(close(1), "x", T0, 0).unwrap();
        s.sent(cmd.id, 0);
        assert_eq!(s.due(10 * RESEND_MS), vec![cmd.clone()]);
        assert!(s.due(10 * RESEND_MS + 1).is_empty());
        assert_eq!(s.next_due(10 * RESEND_MS + 1), None);
        assert_eq!(
            s.unanswered().collect::<Vec<_>>(),
            vec![cmd.id],
            "still unanswered"
        );
    }
}
