//! The calibration's figures without the nodes: each household's evacuation time, with and
//! without the TV order, from the same plans, walks and destinations as the drill's runner,
//! so the calibrated pair can be checked on a town it was not fitted on, cheaply (no process,
//! no clock).
//!
//! `calibration.toml`'s two departure delays were fitted on one town and seed (its comments
//! say how) to the seed drill's 11.2 → 9.6 min: that pair is a fit there, not a result. On
//! another town the same delays give another pair, and how far the gain moves is what the
//! calibration predicts; `tests::the_tv_gain_is_a_prediction_on_towns_it_was_not_fitted_on`
//! reports it. Left out, as in a drill without faults: closed shelters, re-routes by a changed
//! TV order, the network; the TV shows every order `tv_after_s` after it is given.

use std::collections::{BTreeSet, HashMap};

use crate::error::{DrillError, StepContext};
use evac_hq::engine::{EngineTown, OrderBook, maps_hazard};
use evac_maps::{LonLat, Town};
use evac_protocol::{ShelterId, Slug};

use crate::prepare::{hazard_notice, keep_nearest};
use crate::residents::plan;
use crate::scenario::Scenario;
use crate::sim::destination;
use crate::walks::Walks;

/// Time from the order to the TV showing it in the calibration drill (HQ, MQTT, carousel at
/// 1 Mbit/s: about 0.3 min, calibration.toml).
pub const TV_AFTER_S: f64 = 18.0;

/// The mean evacuation times of one town and seed, with and without the TV order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Households under order (after `keep_nearest`).
    pub households: usize,
    /// Households the order sends to another shelter than the suited one nearest as the crow
    /// flies (that one is full or not accessible for a member who needs help, or another is
    /// nearer by road); without TV they walk to that nearest one.
    pub sent_elsewhere: usize,
    /// Mean time from the order to a resident's arrival with the TV order, minutes.
    pub with_tv_min: f64,
    /// The same without it, minutes.
    pub without_tv_min: f64,
    /// The same with the TV order's departures but every household walking where it would
    /// without TV: the part of the gain the fitted delays carry.
    pub tv_departures_only_min: f64,
}

impl Prediction {
    /// What the TV order gains, minutes.
    pub fn gain_min(&self) -> f64 {
        self.without_tv_min - self.with_tv_min
    }

    /// What the earlier departures alone gain, minutes.
    pub fn departure_gain_min(&self) -> f64 {
        self.without_tv_min - self.tv_departures_only_min
    }
}

/// The scenario's evacuation figures on `town` with behaviour `seed`, as a drill without
/// faults gives them (arrivals after `duration_min` left out, as the drill ends there).
pub fn predict(
    s: &Scenario,
    town: Town,
    seed: u64,
    tv_after_s: f64,
) -> Result<Prediction, DrillError> {
    let slug = Slug::new(&s.town.slug).step("town.slug")?;
    let (notice, _) = hazard_notice(s, None)?;
    let hazard = maps_hazard(notice.hazard);
    let town = match s.town.keep_nearest {
        Some(n) => keep_nearest(town, &notice, &slug, n, s.town.around_shelter)?,
        None => town,
    };
    let mut book = OrderBook::new(std::sync::Arc::new(EngineTown::new(&town)), slug);
    let first = book
        .issue(notice, None)
        .map_err(|e| DrillError::NothingOrdered(e.to_string()))?;
    let ordered: HashMap<u32, ShelterId> = first
        .batches
        .iter()
        .flat_map(|b| b.orders.iter().map(|o| (o.household.0, o.shelter)))
        .collect();
    let net = town.network();
    let cost = net.costs(Some(hazard));
    let at: HashMap<u32, LonLat> = town.shelters.iter().map(|s| (s.id, s.location)).collect();
    let walks = Walks::new(
        &net,
        &cost,
        at.iter().map(|(id, p)| (*id, *p)),
        s.behaviour.detour,
    );
    let end_s = (s.clock.duration_min * 60) as f64;
    let none = BTreeSet::new();
    let to = |home: LonLat, on_screen: Option<ShelterId>, other: bool| {
        destination(&town, hazard, home, &none, on_screen, other)
    };
    // Residents and the sum of their arrival times (s): with TV, without, TV departures only.
    let mut sums = [(0usize, 0.0); 3];
    let mut sent_elsewhere = 0;
    for h in town.households.iter() {
        let Some(order) = ordered.get(&h.id).copied() else {
            continue;
        };
        sent_elsewhere += usize::from(to(h.location, None, false) != Some(order.0));
        let p = plan(&s.behaviour, seed, h);
        if p.stays {
            continue;
        }
        // With the TV order a household leaves after the shorter of its two delays, for the
        // order's shelter if the screen showed it before it left (the runner's rules).
        let tv_leave_s = match p.watches_tv {
            true => p.delay_no_tv_s.min(tv_after_s + p.delay_tv_s),
            false => p.delay_no_tv_s,
        };
        let on_screen = (p.watches_tv && tv_leave_s >= tv_after_s).then_some(order);
        let no_tv_to = to(p.home, None, p.other_shelter);
        let runs = [
            (tv_leave_s, to(p.home, on_screen, p.other_shelter)),
            (p.delay_no_tv_s, no_tv_to),
            (tv_leave_s, no_tv_to),
        ];
        for ((leave_s, shelter), sum) in runs.into_iter().zip(sums.iter_mut()) {
            let Some((id, shelter_at)) = shelter.and_then(|id| Some((id, *at.get(&id)?))) else {
                continue;
            };
            let arrive_s = leave_s + walks.metres(p.home, id, shelter_at) / p.speed_mps;
            if arrive_s <= end_s {
                sum.0 += p.members.len();
                sum.1 += arrive_s * p.members.len() as f64;
            }
        }
    }
    let mean_min = |(n, total): (usize, f64)| total / n.max(1) as f64 / 60.0;
    Ok(Prediction {
        households: ordered.len(),
        sent_elsewhere,
        with_tv_min: mean_min(sums[0]),
        without_tv_min: mean_min(sums[1]),
        tv_departures_only_min: mean_min(sums[2]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_maps::{GenerateParams, generate};

    fn calibration() -> Scenario {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        Scenario::load(&dir.join("calibration.toml")).unwrap()
    }

    fn town(households: u32, shelters: u32, seed: u64) -> Town {
        generate(&GenerateParams {
            households,
            shelters,
            seed,
        })
    }

    /// Arrival means within a few seconds.
    fn near(a: f64, b: f64, within: f64) -> bool {
        (a - b).abs() <= within
    }

    #[test]
    fn the_tv_gain_is_a_prediction_on_towns_it_was_not_fitted_on() {
        let s = calibration();
        let g = s.town.generate.as_ref().unwrap();
        let fitted = predict(&s, town(g.households, g.shelters, g.seed), 1, TV_AFTER_S).unwrap();
        eprintln!("fitted: {fitted:?}, gain {:.2} min", fitted.gain_min());
        // Where the delays were fitted, this model gives what the drill's processes gave
        // (drills/README.md: 9.7 / 11.1 min with seed 1), so it stands for the drill.
        assert!(
            near(fitted.with_tv_min, 9.7, 0.2) && near(fitted.without_tv_min, 11.1, 0.2),
            "{fitted:?}"
        );
        // Other generated towns and seeds, the fitted delays unchanged (README's table):
        // (households, shelters, generator seed, behaviour seed), and the gain and its
        // departures-only part, minutes.
        for (h, sh, town_seed, seed, gain, departures) in [
            (2500, 40, 14, 5, 0.70, 1.30),
            (1000, 40, 6, 6, 1.28, 1.36),
            (800, 40, 12, 3, -3.13, 1.21),
            (2000, 25, 7, 5, -15.46, 1.40),
        ] {
            let other = predict(&s, town(h, sh, town_seed), seed, TV_AFTER_S).unwrap();
            eprintln!(
                "{h} households, {sh} shelters, generator seed {town_seed}, seed {seed}: \
                 {other:?}; gain {:.2} min ({:+.2} from the fitted town's), departures alone \
                 {:.2} min ({:+.2})",
                other.gain_min(),
                other.gain_min() - fitted.gain_min(),
                other.departure_gain_min(),
                other.departure_gain_min() - fitted.departure_gain_min()
            );
            // What the fitted delays carry transfers: the earlier departures gain about the
            // same everywhere.
            assert!(
                near(
                    other.departure_gain_min(),
                    fitted.departure_gain_min(),
                    0.25
                ),
                "{other:?}"
            );
            // The whole gain does not: it moves with how many households the order sends past
            // the shelter nearest as the crow flies (full, not accessible, or farther by road),
            // where without TV they all walk. Pinned, so the README's figures change with the
            // code.
            assert!(near(other.gain_min(), gain, 0.05), "{other:?}");
            assert!(
                near(other.departure_gain_min(), departures, 0.05),
                "{other:?}"
            );
        }
    }
}
