//! Households' answers from the TV into HQ's status: the answer endpoint writes them to the
//! store on its own connection; HQ's loop reads what was added since it last looked, each
//! tick, and keeps each household's latest. An answer is self-reported: it travels beside the
//! residents' statuses and never changes one (a card tap or an officer's mark always wins).

use std::collections::BTreeMap;

use evac_protocol::{AnswerKind, HouseholdAnswer};

use super::Hq;
use crate::store::StoredAnswer;

/// Each household's latest answer, and the last store row taken in.
#[derive(Debug, Default)]
pub(super) struct Answers {
    latest: BTreeMap<u32, HouseholdAnswer>,
    after: i64,
}

impl Answers {
    /// Every household's latest answer, by household id.
    pub(super) fn latest(&self) -> Vec<HouseholdAnswer> {
        self.latest.values().cloned().collect()
    }

    fn take(&mut self, id: i64, a: StoredAnswer) {
        self.after = self.after.max(id);
        let kind = AnswerKind::from_name(&a.kind).unwrap_or(AnswerKind::Other);
        let answer = HouseholdAnswer {
            household: a.household,
            kind,
            people: a.people.filter(|_| kind == AnswerKind::NeedHelp),
            at_ms: a.received_ms,
            needs_confirmation: a.needs_confirmation,
        };
        // Rows come in the order received; a later row is the household's latest answer.
        self.latest.insert(a.household, answer);
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
}
