//! The simulated residents' behaviour, drawn once per household from the drill's seed. No I/O
//! and no clock: the runner asks where a household is going and when it gets there.
//!
//! Every household draws the same random numbers whether or not the drill shows TV orders
//! (the departure delays with and without TV use the same Rayleigh quantile), so a drill and
//! its `--no-tv` twin differ only in whether residents got the TV order.

use evac_broadcaster::stb::answer::AnswerKind;
use evac_maps::{AgeBand, Household, LonLat};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::scenario::Behaviour;

/// A deterministic random stream for one purpose and one household.
pub struct Draws(ChaCha8Rng);

impl Draws {
    /// The stream of `household` under `seed`.
    pub fn new(seed: u64, household: u32) -> Self {
        Draws::stream(b"evac-drills residents v1\0", seed, household)
    }

    /// Another stream of `household` under `seed`, for the purpose `label` names: its draws
    /// leave every other stream's as they are (a new behaviour changes no figure of the old).
    pub fn stream(label: &[u8], seed: u64, household: u32) -> Self {
        let mut h = Sha256::new();
        h.update(label);
        h.update(seed.to_be_bytes());
        h.update(household.to_be_bytes());
        Draws(ChaCha8Rng::from_seed(h.finalize().into()))
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

/// Rayleigh quantile with the given mean (TUNAMI-EVAC's form): σ = mean·√(2/π),
/// t = σ·√(−2 ln(1 − F)).
pub fn rayleigh(mean: f64, f: f64) -> f64 {
    let sigma = mean * (2.0 / std::f64::consts::PI).sqrt();
    sigma * (-2.0 * (1.0 - f.clamp(0.0, 1.0 - 1e-12)).ln()).sqrt()
}

/// One resident's part.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberPlan {
    /// The resident.
    pub resident: u32,
    /// Taps a card (else staff enter them).
    pub card: bool,
    /// Checks out this many seconds after arriving.
    pub check_out_after_s: Option<f64>,
}

/// What a household will do.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdPlan {
    /// The household.
    pub household: u32,
    /// Where it starts.
    pub home: LonLat,
    /// Does not evacuate.
    pub stays: bool,
    /// Watches TV (sees its order on air), unless the drill runs without TV.
    pub watches_tv: bool,
    /// Its TV is a stock one (no box): it learns its order from the data-broadcasting page
    /// (BML, the `d` button), not from the overlay.
    pub stock_tv: bool,
    /// Goes to another shelter than the one it is sent to.
    pub other_shelter: bool,
    /// Departure delay after seeing the TV order (s).
    pub delay_tv_s: f64,
    /// Departure delay after the order without TV (s).
    pub delay_no_tv_s: f64,
    /// Walking speed of the household: its slowest member's (m/s).
    pub speed_mps: f64,
    /// Its members.
    pub members: Vec<MemberPlan>,
}

/// A member's walking speed (TUNAMI-EVAC's factors on an adult's speed).
pub fn member_speed(b: &Behaviour, age: AgeBand, needs_help: bool) -> f64 {
    let mut f: f64 = 1.0;
    if age == AgeBand::Child {
        f = f.min(b.factor_child);
    }
    if age.is_aged() {
        f = f.min(b.factor_elderly);
    }
    if needs_help {
        f = f.min(b.factor_needs_help);
    }
    b.walk_speed_mps * f
}

/// Draws a household's plan.
pub fn plan(b: &Behaviour, seed: u64, h: &Household) -> HouseholdPlan {
    let mut d = Draws::new(seed, h.id);
    let stays = d.chance(b.share_stay);
    let watches_tv = d.chance(b.share_tv);
    let other_shelter = d.chance(b.share_other_shelter);
    let f = d.f64();
    let speed_mps = h
        .members
        .iter()
        .map(|m| member_speed(b, m.age_band, m.needs_help))
        .fold(b.walk_speed_mps, f64::min);
    let members = h
        .members
        .iter()
        .map(|m| {
            let card = d.chance(b.share_card) && !m.cards.is_empty();
            let leaves = d.chance(b.share_check_out);
            let after = -(1.0 - d.f64()).ln() * b.check_out_after_min * 60.0;
            MemberPlan {
                resident: m.resident,
                card,
                check_out_after_s: leaves.then_some(after.max(60.0)),
            }
        })
        .collect();
    // Drawn last, so that every other draw is the same whatever the share of stock TVs.
    let stock_tv = d.chance(b.share_bml) && watches_tv;
    HouseholdPlan {
        household: h.id,
        home: h.location,
        stays,
        watches_tv,
        stock_tv,
        other_shelter,
        delay_tv_s: rayleigh(b.delay_tv_mean_s, f),
        delay_no_tv_s: rayleigh(b.delay_no_tv_mean_s, f),
        speed_mps,
        members,
    }
}

/// A household's answer from its TV (issue 21), as it will give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerPlan {
    /// The household.
    pub household: u32,
    /// What it answers.
    pub kind: AnswerKind,
    /// How many people need help (for "need help here"), else 0.
    pub people: u32,
    /// Drill seconds from the order reaching its TV to the answer.
    pub delay_s: f64,
    /// Drill seconds from a "need help here" answer until an officer marks it handled; none
    /// when nobody does.
    pub handled_after_s: Option<f64>,
}

/// Draws whether a household that stays home (`plan.stays`) answers from its TV, and what and
/// when, from a stream of its own (the plan's draws stay as they are whatever the shares).
pub fn answer_plan(
    b: &Behaviour,
    seed: u64,
    h: &Household,
    plan: &HouseholdPlan,
) -> Option<AnswerPlan> {
    if !plan.stays {
        return None;
    }
    let mut d = Draws::stream(b"evac-drills answers v1\0", seed, h.id);
    let answers = d.chance(b.share_answer);
    let need_help = d.chance(b.share_answer_need_help);
    let elsewhere = d.chance(b.share_answer_elsewhere);
    // 1 to 3 people, never more than live there.
    let people = (1 + (d.f64() * 3.0) as u32).min(h.members.len().max(1) as u32);
    let delay_s = -(1.0 - d.f64()).ln() * b.answer_delay_mean_s;
    let handled = -(1.0 - d.f64()).ln();
    let kind = if need_help {
        AnswerKind::NeedHelp
    } else if elsewhere {
        AnswerKind::EvacuatedElsewhere
    } else {
        AnswerKind::SafeAtHome
    };
    answers.then_some(AnswerPlan {
        household: h.id,
        kind,
        people: if need_help { people } else { 0 },
        delay_s,
        handled_after_s: b
            .answer_handled_after_mean_s
            .filter(|_| need_help)
            .map(|m| handled * m),
    })
}

/// The point a fraction `f` of the way from `a` to `b` (short distances: linear is enough).
pub fn along(a: LonLat, b: LonLat, f: f64) -> LonLat {
    let f = f.clamp(0.0, 1.0);
    LonLat::new(a.lon + (b.lon - a.lon) * f, a.lat + (b.lat - a.lat) * f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_maps::{GenerateParams, generate};

    fn behaviour() -> Behaviour {
        Behaviour {
            delay_tv_mean_s: 100.0,
            delay_no_tv_mean_s: 200.0,
            walk_speed_mps: 1.33,
            factor_child: 0.8,
            factor_elderly: 0.7,
            factor_needs_help: 0.5,
            detour: 1.2,
            share_stay: 0.1,
            share_other_shelter: 0.1,
            share_check_out: 0.1,
            check_out_after_min: 20.0,
            share_card: 0.9,
            share_tv: 1.0,
            share_bml: 0.0,
            share_answer: 0.0,
            answer_delay_mean_s: 0.0,
            share_answer_need_help: 0.0,
            share_answer_elsewhere: 0.0,
            answer_handled_after_mean_s: None,
            anpi_queries: 0,
            share_anpi_unknown: 0.0,
        }
    }

    #[test]
    fn rayleigh_has_the_mean_it_is_given() {
        let n = 100_000;
        let mean: f64 = (0..n)
            .map(|i| rayleigh(300.0, (i as f64 + 0.5) / n as f64))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 300.0).abs() < 1.0, "{mean}");
        // Median of a Rayleigh is σ·√(2 ln 2).
        let sigma = 300.0 * (2.0 / std::f64::consts::PI).sqrt();
        let median = rayleigh(300.0, 0.5);
        assert!((median - sigma * (2.0 * 2f64.ln()).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn same_seed_same_plans_and_tv_twins_share_the_quantile() {
        let town = generate(&GenerateParams {
            households: 200,
            shelters: 4,
            seed: 3,
        });
        let b = behaviour();
        let a: Vec<_> = town.households.iter().map(|h| plan(&b, 7, h)).collect();
        let again: Vec<_> = town.households.iter().map(|h| plan(&b, 7, h)).collect();
        assert_eq!(a, again);
        let other: Vec<_> = town.households.iter().map(|h| plan(&b, 8, h)).collect();
        assert_ne!(a, other);
        for p in &a {
            // Same quantile: the no-TV delay is the TV delay scaled by the ratio of means.
            assert!((p.delay_no_tv_s - 2.0 * p.delay_tv_s).abs() < 1e-6);
            assert!(p.speed_mps <= 1.33 && p.speed_mps >= 1.33 * 0.5 - 1e-9);
        }
        let stays = a.iter().filter(|p| p.stays).count();
        assert!((5..=40).contains(&stays), "{stays}");
    }

    #[test]
    fn answers_are_drawn_apart_and_only_by_those_who_stay() {
        let town = generate(&GenerateParams {
            households: 2000,
            shelters: 4,
            seed: 3,
        });
        let mut b = behaviour();
        b.share_stay = 0.5;
        let before: Vec<_> = town.households.iter().map(|h| plan(&b, 7, h)).collect();
        b.share_answer = 0.8;
        b.answer_delay_mean_s = 600.0;
        b.share_answer_need_help = 0.25;
        b.share_answer_elsewhere = 0.5;
        let after: Vec<_> = town.households.iter().map(|h| plan(&b, 7, h)).collect();
        // The answers take no draw of the plans' stream.
        assert_eq!(before, after);
        let answers: Vec<_> = town
            .households
            .iter()
            .zip(&after)
            .filter_map(|(h, p)| answer_plan(&b, 7, h, p))
            .collect();
        let stays = after.iter().filter(|p| p.stays).count();
        assert!(
            answers
                .iter()
                .all(|a| after.iter().any(|p| p.household == a.household && p.stays))
        );
        let share = answers.len() as f64 / stays as f64;
        assert!((share - 0.8).abs() < 0.05, "{share}");
        let help: Vec<_> = answers
            .iter()
            .filter(|a| a.kind == AnswerKind::NeedHelp)
            .collect();
        let share = help.len() as f64 / answers.len() as f64;
        assert!((share - 0.25).abs() < 0.05, "{share}");
        assert!(help.iter().all(|a| (1..=3).contains(&a.people)));
        // No officer marks any unless the scenario says when.
        assert!(answers.iter().all(|a| a.handled_after_s.is_none()));
        assert!(
            answers
                .iter()
                .filter(|a| a.kind != AnswerKind::NeedHelp)
                .all(|a| a.people == 0)
        );
        let elsewhere = answers
            .iter()
            .filter(|a| a.kind == AnswerKind::EvacuatedElsewhere)
            .count();
        let share = elsewhere as f64 / (answers.len() - help.len()) as f64;
        assert!((share - 0.5).abs() < 0.06, "{share}");
        let mean = answers.iter().map(|a| a.delay_s).sum::<f64>() / answers.len() as f64;
        assert!((mean - 600.0).abs() < 60.0, "{mean}");
        // Share 0: nobody answers.
        b.share_answer = 0.0;
        assert!(
            town.households
                .iter()
                .zip(&after)
                .all(|(h, p)| answer_plan(&b, 7, h, p).is_none())
        );
    }

    #[test]
    fn slowest_member_sets_the_pace() {
        let b = behaviour();
        assert_eq!(member_speed(&b, AgeBand::Middle, false), 1.33);
        assert!((member_speed(&b, AgeBand::Elder, false) - 0.931).abs() < 1e-9);
        assert!((member_speed(&b, AgeBand::Elder, true) - 0.665).abs() < 1e-9);
    }
}
