//! The report's part on households' answers from the TV (issue 21): what was sent and what HQ
//! made of it, and when HQ had accounted for every resident under order, those at home
//! included. HQ's side is read from what its signed status carries at the end (each
//! household's latest answer, with the time HQ received it) and from its store's events, as
//! the rest of the report reads HQ's accounting.

use std::collections::{HashMap, HashSet};

use evac_broadcaster::stb::reply::AnswerResult;
use evac_protocol::{AnswerKind, HouseholdAnswer};
use serde::Serialize;

use crate::homeanswers::SentAnswer;
use crate::report::is_arrival;
use crate::residents::HouseholdPlan;
use crate::truth::StoredEvent;

/// One kind of answer: how many households sent it and what HQ made of it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AnswerCounts {
    /// Households that sent it.
    pub sent: usize,
    /// HQ stored it (self-reported; some may need an officer's confirmation).
    pub accepted: usize,
    /// HQ replied and did not store it (a wrong code, too many, malformed).
    pub refused: usize,
    /// No reply HQ stored it by, after every try (unreachable, not stored, not understood).
    pub failed: usize,
}

/// Households' answers from the TV.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Answered {
    /// Households at home meant to answer (the scenario's `share_answer`).
    pub planned: usize,
    /// "Safe at home".
    pub safe_at_home: AnswerCounts,
    /// "Evacuated elsewhere".
    pub evacuated_elsewhere: AnswerCounts,
    /// "Need help here".
    pub need_help: AnswerCounts,
    /// People named by the need-help answers HQ stored.
    pub need_help_people: u64,
    /// Sends in all, the tries again included.
    pub tries: u64,
    /// Residents of the households whose answer HQ stored.
    pub residents_answered: usize,
    /// Answers HQ stored that its status does not carry at the end (a loss).
    pub missing_at_hq: usize,
}

/// Officers' "handled" marks on need-help answers, and how long each answer waited for one.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Handling {
    /// "Handled" commands the officers gave.
    pub marked: usize,
    /// Of those, the ones HQ carried out.
    pub carried_out: usize,
    /// Need-help answers HQ's status carries at the end.
    pub need_help_at_hq: usize,
    /// Of those, the ones marked handled.
    pub handled_at_hq: usize,
    /// From the answer at HQ to its "handled" mark at HQ, median, drill s.
    pub median_s: Option<f64>,
    /// The same, longest.
    pub max_s: Option<f64>,
}

/// Officers' marks (`replies`: household, whether HQ carried it out) against what HQ's status
/// `hq` carries at the end.
pub fn handling(replies: &[(u32, bool)], hq: &[HouseholdAnswer]) -> Handling {
    let need: Vec<&HouseholdAnswer> = hq
        .iter()
        .filter(|a| a.kind == AnswerKind::NeedHelp)
        .collect();
    let mut waits: Vec<f64> = need
        .iter()
        .filter_map(|a| Some(a.handled.as_ref()?.at_ms.saturating_sub(a.at_ms) as f64 / 1000.0))
        .collect();
    waits.sort_by(f64::total_cmp);
    Handling {
        marked: replies.len(),
        carried_out: replies.iter().filter(|r| r.1).count(),
        need_help_at_hq: need.len(),
        handled_at_hq: waits.len(),
        median_s: waits.get(waits.len().saturating_sub(1) / 2).copied(),
        max_s: waits.last().copied(),
    }
}

/// When HQ had accounted for every resident under order: tapped in at a shelter, marked found,
/// or their household answered safe at home, evacuated elsewhere or at the shelter.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Accounted {
    /// Residents under order.
    pub residents: usize,
    /// Of those, accounted for by HQ at the end.
    pub accounted: usize,
    /// Of those, by their household's answer alone (no tap, no mark).
    pub by_answer: usize,
    /// From the order until HQ had accounted for every one of them (drill s); none when some
    /// never were.
    pub everyone_s: Option<f64>,
    /// From the order until HQ had accounted for half of them (drill s); none if never.
    pub half_s: Option<f64>,
    /// From the order until HQ had accounted for 90 % of them (drill s); none if never.
    pub p90_s: Option<f64>,
    /// From the order until HQ accounted for the last of those it did (drill s).
    pub last_s: Option<f64>,
}

/// Whether an answer tells HQ where the household is and that it is safe.
fn accounts(kind: AnswerKind) -> bool {
    matches!(
        kind,
        AnswerKind::SafeAtHome | AnswerKind::EvacuatedElsewhere | AnswerKind::AtShelter
    )
}

/// What was sent and what became of it; `planned` households were meant to answer, `hq` is
/// the answers HQ's status carries at the end.
pub fn answered(
    plans: &[HouseholdPlan],
    planned: usize,
    sent: &[SentAnswer],
    hq: &[HouseholdAnswer],
) -> Answered {
    let at_hq: HashSet<u32> = hq.iter().map(|a| a.household).collect();
    let size: HashMap<u32, usize> = plans
        .iter()
        .map(|p| (p.household, p.members.len()))
        .collect();
    let mut a = Answered {
        planned,
        ..Answered::default()
    };
    for s in sent {
        let c = match s.kind {
            "need_help" => &mut a.need_help,
            "evacuated_elsewhere" => &mut a.evacuated_elsewhere,
            _ => &mut a.safe_at_home,
        };
        c.sent += 1;
        a.tries += u64::from(s.tries);
        match &s.result {
            r if r.stored() => {
                c.accepted += 1;
                a.residents_answered += size.get(&s.household).copied().unwrap_or(0);
                if s.kind == "need_help" {
                    a.need_help_people += u64::from(s.people);
                }
                if !at_hq.contains(&s.household) {
                    a.missing_at_hq += 1;
                }
            }
            AnswerResult::WrongCode | AnswerResult::Refused { .. } => c.refused += 1,
            AnswerResult::TooMany { .. } => c.refused += 1,
            _ => c.failed += 1,
        }
    }
    a
}

/// When HQ accounted for each resident under order, and for all of them: `held` is HQ's
/// events, `found` the residents HQ shows as found at the end (`end_ms`), `hq` the answers its
/// status carries; times are drill seconds after `order_ms`.
pub fn accounted(
    plans: &[HouseholdPlan],
    held: &[StoredEvent],
    found: &HashSet<u32>,
    hq: &[HouseholdAnswer],
    order_ms: u64,
    end_ms: u64,
) -> Accounted {
    let mut tapped: HashMap<u32, u64> = HashMap::new();
    for e in held.iter().filter(|e| is_arrival(&e.kind)) {
        if let Some(r) = e.resident {
            let t = tapped.entry(r).or_insert(e.received_ms);
            *t = (*t).min(e.received_ms);
        }
    }
    let answer: HashMap<u32, u64> = hq
        .iter()
        .filter(|a| accounts(a.kind))
        .map(|a| (a.household, a.at_ms))
        .collect();
    let mut out = Accounted::default();
    let mut times: Vec<u64> = Vec::new();
    for p in plans {
        for m in &p.members {
            out.residents += 1;
            // A mark's time is not in the status: it counts at the end.
            let by_hq = [
                tapped.get(&m.resident).copied(),
                found.contains(&m.resident).then_some(end_ms),
            ]
            .into_iter()
            .flatten()
            .min();
            let by_answer = answer.get(&p.household).copied();
            let Some(t) = by_hq.into_iter().chain(by_answer).min() else {
                continue;
            };
            out.accounted += 1;
            if by_hq.is_none() {
                out.by_answer += 1;
            }
            times.push(t);
        }
    }
    times.sort_unstable();
    let secs = |ms: u64| ms.saturating_sub(order_ms) as f64 / 1000.0;
    // The time HQ had accounted for a share `q` of every resident under order.
    let share = |q: f64| {
        let n = (q * out.residents as f64).ceil() as usize;
        times.get(n.max(1) - 1).copied().map(secs)
    };
    out.half_s = share(0.5);
    out.p90_s = share(0.9);
    out.last_s = times.last().copied().map(secs);
    out.everyone_s = (out.accounted == out.residents)
        .then_some(out.last_s)
        .flatten();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::residents::MemberPlan;
    use evac_broadcaster::stb::answer::AnswerKind as Box;
    use evac_maps::LonLat;

    fn household(id: u32, residents: &[u32]) -> HouseholdPlan {
        HouseholdPlan {
            household: id,
            home: LonLat::new(140.0, 35.0),
            stays: true,
            watches_tv: true,
            stock_tv: false,
            other_shelter: false,
            delay_tv_s: 0.0,
            delay_no_tv_s: 0.0,
            speed_mps: 1.0,
            members: residents
                .iter()
                .map(|&resident| MemberPlan {
                    resident,
                    card: true,
                    check_out_after_s: None,
                })
                .collect(),
        }
    }

    fn at_hq(household: u32, kind: AnswerKind, at_ms: u64) -> HouseholdAnswer {
        HouseholdAnswer {
            household,
            kind,
            people: None,
            at_ms,
            needs_confirmation: false,
            handled: None,
            confirmed: None,
        }
    }

    fn checked_in(resident: u32, received_ms: u64) -> StoredEvent {
        StoredEvent {
            shelter: 1,
            seq: u64::from(resident),
            kind: "check-in".into(),
            resident: Some(resident),
            wall_ms: received_ms,
            received_ms,
        }
    }

    #[test]
    fn those_at_home_count_once_their_household_answered_safe_and_need_help_does_not() {
        // Household 1 tapped in (10 and 11), household 2 answered safe at home, household 3
        // needs help, household 4 said nothing. Order at 1,000 ms.
        let plans = [
            household(1, &[10, 11]),
            household(2, &[20, 21]),
            household(3, &[30]),
            household(4, &[40]),
        ];
        let held = [checked_in(10, 61_000), checked_in(11, 121_000)];
        let answers = [
            at_hq(2, AnswerKind::SafeAtHome, 301_000),
            at_hq(3, AnswerKind::NeedHelp, 5_000),
        ];
        let none = HashSet::new();
        let a = accounted(&plans, &held, &none, &answers, 1_000, 900_000);
        assert_eq!((a.residents, a.accounted, a.by_answer), (6, 4, 2));
        assert_eq!((a.everyone_s, a.last_s), (None, Some(300.0)));
        // 2 of 6 by 120 s, the third (half) with household 2's answer; 90 % (6 of 6) never.
        assert_eq!((a.half_s, a.p90_s), (Some(300.0), None));
        // Once household 4 answered elsewhere and 3 was found at the end, everyone is.
        let mut answers = answers.to_vec();
        answers.push(at_hq(4, AnswerKind::EvacuatedElsewhere, 401_000));
        let found = HashSet::from([30]);
        let a = accounted(&plans, &held, &found, &answers, 1_000, 900_000);
        assert_eq!((a.accounted, a.by_answer), (6, 3));
        assert_eq!(a.everyone_s, Some(899.0));
        assert_eq!(a.p90_s, Some(899.0));
        // A tap before the answer: the tap's time.
        let held = [checked_in(20, 31_000)];
        let a = accounted(&plans, &held, &none, &answers, 1_000, 900_000);
        assert_eq!(a.by_answer, 2, "resident 21 by the answer, 40 too");
    }

    #[test]
    fn handling_is_from_the_answer_to_its_mark_at_hq() {
        let mark = |at_ms| evac_protocol::AnswerMark {
            officer: "drill".parse().unwrap(),
            at_ms,
            reason: "reached".into(),
        };
        let mut a = at_hq(1, AnswerKind::NeedHelp, 10_000);
        a.handled = Some(mark(70_000));
        let mut b = at_hq(2, AnswerKind::NeedHelp, 20_000);
        b.handled = Some(mark(320_000));
        let c = at_hq(3, AnswerKind::NeedHelp, 30_000);
        let d = at_hq(4, AnswerKind::SafeAtHome, 30_000);
        let h = handling(&[(1, true), (2, true), (3, false)], &[a, b, c, d]);
        assert_eq!((h.marked, h.carried_out), (3, 2));
        assert_eq!((h.need_help_at_hq, h.handled_at_hq), (3, 2));
        assert_eq!((h.median_s, h.max_s), (Some(60.0), Some(300.0)));
    }

    #[test]
    fn answers_count_by_kind_and_what_hq_made_of_them() {
        let plans = [
            household(1, &[10, 11]),
            household(2, &[20]),
            household(3, &[30]),
        ];
        let sent = |household, kind: Box, result| SentAnswer {
            household,
            kind: kind.wire(),
            people: if kind == Box::NeedHelp { 2 } else { 0 },
            sim_ms: 0,
            tries: 1,
            result,
            replied_ms: 0,
        };
        let sent = [
            sent(1, Box::SafeAtHome, AnswerResult::Accepted),
            sent(2, Box::NeedHelp, AnswerResult::NeedsConfirmation),
            sent(3, Box::SafeAtHome, AnswerResult::WrongCode),
            sent(
                4,
                Box::EvacuatedElsewhere,
                AnswerResult::Unreachable { error: "x".into() },
            ),
        ];
        // HQ's status lost household 2's answer.
        let hq = [at_hq(1, AnswerKind::SafeAtHome, 0)];
        let a = answered(&plans, 5, &sent, &hq);
        assert_eq!(a.planned, 5);
        let c = |sent, accepted, refused, failed| AnswerCounts {
            sent,
            accepted,
            refused,
            failed,
        };
        assert_eq!(a.safe_at_home, c(2, 1, 1, 0));
        assert_eq!(a.need_help, c(1, 1, 0, 0));
        assert_eq!(a.evacuated_elsewhere, c(1, 0, 0, 1));
        assert_eq!((a.need_help_people, a.tries), (2, 4));
        assert_eq!((a.residents_answered, a.missing_at_hq), (3, 1));
    }
}
