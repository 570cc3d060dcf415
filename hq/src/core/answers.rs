//! Households' answers from the TV into HQ's status: the answer endpoint writes them to the
//! store on its own connection; HQ's loop reads what was added since it last looked, each
//! tick, and keeps each household's latest. An answer is self-reported: it travels beside the
//! residents' statuses and never changes one (a card tap or an officer's mark always wins).
//!
//! Officers mark an answer handled (needs help at home: help went) or confirm one that came
//! after too many wrong codes, by a signed command (`commands.rs`). A mark belongs to the
//! stored answer it was made on: a later answer of the household is news again.

use std::collections::{BTreeMap, HashMap};

use evac_protocol::{AnswerKind, AnswerMark, HouseholdAnswer, OfficerId};

use super::Hq;
use crate::store::{StoredAnswer, StoredMark};

/// What an officer's command may do to a household's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MarkKind {
    /// A needs-help answer was handled.
    Handled,
    /// An answer that needed confirmation was confirmed.
    Confirmed,
}

impl MarkKind {
    fn name(self) -> &'static str {
        match self {
            MarkKind::Handled => "handled",
            MarkKind::Confirmed => "confirmed",
        }
    }
}

/// Each household's latest answer (with its store row), the marks on stored answers, and the
/// last store row taken in.
#[derive(Debug, Default)]
pub(super) struct Answers {
    latest: BTreeMap<u32, (i64, HouseholdAnswer)>,
    marks: HashMap<i64, Vec<StoredMark>>,
    after: i64,
}

/// Puts `m` on `a`; a mark this HQ does not know is left out.
fn apply(a: &mut HouseholdAnswer, m: &StoredMark) {
    let Ok(officer) = m.officer.parse::<OfficerId>() else {
        return;
    };
    let mark = AnswerMark {
        officer,
        at_ms: m.at_ms,
        reason: m.reason.clone(),
    };
    match m.mark.as_str() {
        "handled" => a.handled = Some(mark),
        "confirmed" => {
            a.needs_confirmation = false;
            a.confirmed = Some(mark);
        }
        _ => {}
    }
}

impl Answers {
    /// Answers that will take in `marks` (HQ's store at start) as their rows come.
    pub(super) fn with_marks(marks: Vec<StoredMark>) -> Answers {
        let mut a = Answers::default();
        for m in marks {
            a.marks.entry(m.answer).or_default().push(m);
        }
        a
    }

    /// Every household's latest answer, by household id.
    pub(super) fn latest(&self) -> Vec<HouseholdAnswer> {
        self.latest.values().map(|(_, a)| a.clone()).collect()
    }

    /// A household's latest answer and its store row.
    pub(super) fn of(&self, household: u32) -> Option<&(i64, HouseholdAnswer)> {
        self.latest.get(&household)
    }

    /// Takes in a mark kept in the store with its command.
    pub(super) fn mark(&mut self, m: StoredMark) {
        if let Some((row, a)) = self.latest.get_mut(&m.household)
            && *row == m.answer
        {
            apply(a, &m);
        }
        self.marks.entry(m.answer).or_default().push(m);
    }

    fn take(&mut self, id: i64, a: StoredAnswer) {
        self.after = self.after.max(id);
        let kind = AnswerKind::from_name(&a.kind).unwrap_or(AnswerKind::Other);
        let mut answer = HouseholdAnswer {
            household: a.household,
            kind,
            people: a.people.filter(|_| kind == AnswerKind::NeedHelp),
            at_ms: a.received_ms,
            needs_confirmation: a.needs_confirmation,
            handled: None,
            confirmed: None,
        };
        for m in self.marks.get(&id).into_iter().flatten() {
            apply(&mut answer, m);
        }
        // Rows come in the order received; a later row is the household's latest answer.
        self.latest.insert(a.household, (id, answer));
    }
}

impl Hq {
    /// Takes in the answers stored since the last call. A store that does not answer now is
    /// logged and tried again next tick: it never stops the status.
    pub(super) fn take_in_answers(&mut self) {
        match self.store.answers_after(self.answers.after) {
            Ok(rows) => {
                for (id, a) in rows {
                    self.answers.take(id, a);
                }
            }
            Err(e) => tracing::warn!(error = %e, "answers from the TV not read this tick"),
        }
    }

    /// What an officer's `kind` of mark on `household`'s latest answer would do: the mark to
    /// keep (with the command), or the reply when there is none to make (`ok` and why).
    pub(super) fn answer_mark(
        &mut self,
        officer: &OfficerId,
        household: u32,
        kind: MarkKind,
        reason: &str,
        now_ms: u64,
    ) -> Result<StoredMark, (bool, String)> {
        // The endpoint may have stored an answer since the last tick.
        self.take_in_answers();
        let Some((row, a)) = self.answers.of(household) else {
            return Err((
                false,
                format!("household {household} has not answered from the TV: nothing to mark"),
            ));
        };
        let done = match kind {
            MarkKind::Handled if a.kind != AnswerKind::NeedHelp => {
                return Err((
                    false,
                    format!(
                        "household {household}'s latest answer is {}, not \"needs help at home\": nothing to mark handled",
                        a.kind.name()
                    ),
                ));
            }
            MarkKind::Handled => a.handled.as_ref(),
            MarkKind::Confirmed if a.confirmed.is_none() && !a.needs_confirmation => {
                return Err((
                    false,
                    format!("household {household}'s latest answer needs no confirmation"),
                ));
            }
            MarkKind::Confirmed => a.confirmed.as_ref(),
        };
        if let Some(m) = done {
            // Another officer (or this one, under a new number) got there first.
            return Err((
                true,
                format!(
                    "household {household}'s answer was {} already by {} (kept as it was)",
                    kind.name(),
                    m.officer
                ),
            ));
        }
        Ok(StoredMark {
            answer: *row,
            mark: kind.name().to_owned(),
            household,
            officer: officer.to_string(),
            at_ms: now_ms,
            reason: reason.to_owned(),
        })
    }
}
