//! The simulation on a stepped clock: no node, no broker, no wall time.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use evac_maps::{HazardSet, Shelter};
use evac_protocol::AlertLevel;

use super::*;
use crate::residents::MemberPlan;

const ORDER: u64 = 1_000_000;
const END: u64 = ORDER + 3_600_000;

fn at(lon: f64) -> LonLat {
    LonLat::new(lon, 35.0)
}

/// Three tsunami shelters on one parallel: 1 next to the homes, 2 about 0.8 km east of them,
/// 3 about 1.9 km west. No roads: walks are straight lines (detour 1).
fn town() -> Town {
    let mut hazards = HazardSet::EMPTY;
    hazards.insert(Hazard::Tsunami);
    let shelter = |id, lon| Shelter {
        id,
        name: format!("shelter {id}"),
        address: None,
        location: at(lon),
        capacity: 100,
        floor_area_m2: None,
        hazards,
        accessible: true,
        open: true,
        gsi_id: None,
    };
    Town {
        households: Vec::new(),
        shelters: vec![
            shelter(1, 140.000),
            shelter(2, 140.010),
            shelter(3, 139.980),
        ],
        zones: Vec::new(),
        roads: Vec::new(),
        water: Vec::new(),
    }
}

/// A household at home 91 m east of shelter 1, walking 1 m/s; members `(resident, card)`.
fn household(
    id: u32,
    watches_tv: bool,
    delay_no_tv_s: f64,
    members: &[(u32, bool)],
) -> HouseholdPlan {
    HouseholdPlan {
        household: id,
        home: at(140.001),
        stays: false,
        watches_tv,
        stock_tv: false,
        other_shelter: false,
        delay_tv_s: 10.0,
        delay_no_tv_s,
        speed_mps: 1.0,
        members: members
            .iter()
            .map(|&(resident, card)| MemberPlan {
                resident,
                card,
                check_out_after_s: None,
            })
            .collect(),
    }
}

fn on(shelter: u32) -> OnScreen {
    OnScreen {
        shelter: ShelterId(shelter),
        level: Some(AlertLevel::Level4),
        version: 1,
        expires: 0,
    }
}

/// Steps `sim` every drill second from `from` to `to`, with every check-in settled.
fn run(sim: &mut Sim, from: u64, to: u64) -> Vec<Step> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= to {
        out.extend(sim.step(now, |_| true));
        now += 1000;
    }
    out
}

fn taps(steps: &[Step]) -> Vec<&TapOrder> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Tap(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// The walks over `town`'s (absent) roads.
fn with_walks<R>(town: &Town, f: impl FnOnce(&Walks) -> R) -> R {
    let net = town.network();
    let cost = net.costs(Some(Hazard::Tsunami));
    let shelters = town.shelters.iter().map(|s| (s.id, s.location));
    let walks = Walks::new(&net, &cost, shelters, 1.0);
    f(&walks)
}

#[test]
fn a_household_re_routed_by_a_changed_order_taps_at_the_new_shelter() {
    let town = town();
    with_walks(&town, |walks| {
        let plans = [household(7, true, 600.0, &[(70, true)])];
        let mut sim = Sim::new(&town, Hazard::Tsunami, walks, &[], plans, ORDER, END);
        // The TV shows shelter 1 at the order: the household leaves 10 s later, 91 s away.
        sim.tv_changed(7, on(1), ORDER);
        let before = run(&mut sim, ORDER, ORDER + 50_000);
        assert!(taps(&before).is_empty());
        // Half way, the order changes to shelter 2: on from where it is.
        sim.tv_changed(7, on(2), ORDER + 50_000);
        let after = run(&mut sim, ORDER + 51_000, END);
        let t = taps(&after);
        assert_eq!(t.len(), 1, "{after:?}");
        assert_eq!((t[0].shelter, t[0].resident, t[0].card), (2, 70, true));
        // About 40 m walked towards shelter 1, then about 860 m to shelter 2.
        let walked_s = (t[0].sim_ms - ORDER - 50_000) / 1000;
        assert!((850..900).contains(&walked_s), "{walked_s} s");
        assert_eq!(sim.rerouted(), 1);
        assert!(!sim.moving());
        let end = sim.finish(END);
        assert_eq!(end.outcome[&7], HouseholdEnd::Arrived(2));
        assert!(end.anomalies.is_empty(), "{:?}", end.anomalies);
    });
}

#[test]
fn a_closed_shelter_sends_those_on_their_way_on_and_nobody_after() {
    let town = town();
    with_walks(&town, |walks| {
        let faults = [Fault::CloseShelter {
            shelter: 1,
            at_s: 30,
        }];
        // Household 1 leaves at 10 s for shelter 1 (the nearest), household 2 at 60 s.
        let plans = [
            household(1, false, 10.0, &[(10, false)]),
            household(2, false, 60.0, &[(20, true)]),
        ];
        let mut sim = Sim::new(&town, Hazard::Tsunami, walks, &faults, plans, ORDER, END);
        let steps = run(&mut sim, ORDER, END);
        assert_eq!(
            steps[0],
            Step::Close {
                fault: 0,
                shelter: 1,
                on_way: 1
            }
        );
        let t = taps(&steps);
        // Both at shelter 2, the nearest open one: household 1 from shelter 1's door,
        // household 2 straight from home.
        assert_eq!(t.len(), 2, "{steps:?}");
        assert!(t.iter().all(|t| t.shelter == 2), "{t:?}");
        assert_eq!(sim.redirected(), 1);
        let first = t.iter().find(|t| t.household == 1).unwrap();
        assert!(
            first.sim_ms > ORDER + 10_000 + 91_000 + 900_000,
            "{first:?}"
        );
        let end = sim.finish(END);
        assert_eq!(end.outcome[&1], HouseholdEnd::Arrived(2));
        assert_eq!(end.outcome[&2], HouseholdEnd::Arrived(2));
    });
}

#[test]
fn a_pulled_card_is_the_next_card_tapped_and_it_is_tapped_again() {
    let town = town();
    with_walks(&town, |walks| {
        let faults = [Fault::CardPulled { at_s: 0 }];
        // A staff entry first: it has no card to pull.
        let plans = [
            household(1, false, 10.0, &[(10, false), (11, true), (12, true)]),
            household(2, false, 20.0, &[(20, true)]),
        ];
        let mut sim = Sim::new(&town, Hazard::Tsunami, walks, &faults, plans, ORDER, END);
        let steps = run(&mut sim, ORDER, END);
        let t: Vec<(u32, bool, Option<usize>)> = taps(&steps)
            .iter()
            .map(|t| (t.resident, t.card, t.pulled))
            .collect();
        assert_eq!(
            t,
            [
                (10, false, None),
                (11, true, Some(0)),
                (11, true, None),
                (12, true, None),
                (20, true, None),
            ]
        );
        // A card-pulled fault has no start or end of its own for the runner.
        assert!(steps.iter().all(|s| matches!(s, Step::Tap(_))));
    });
}

#[test]
fn a_check_out_waits_until_the_check_in_is_settled() {
    let town = town();
    with_walks(&town, |walks| {
        let mut plan = household(1, false, 0.0, &[(10, true)]);
        plan.members[0].check_out_after_s = Some(60.0);
        let mut sim = Sim::new(&town, Hazard::Tsunami, walks, &[], [plan], ORDER, END);
        let arrived = sim.step(ORDER + 100_000, |_| false);
        assert_eq!(taps(&arrived).len(), 1);
        // Due at 151 s: not settled, asked again 30 s later.
        assert!(sim.step(ORDER + 160_000, |_| false).is_empty());
        let out = sim.step(ORDER + 200_000, |r| r == 10);
        let t = taps(&out);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].shelter, 1);
        assert!(
            (ORDER + 181_000..ORDER + 182_000).contains(&t[0].sim_ms),
            "{t:?}"
        );
    });
}

#[test]
fn a_household_on_a_stock_tv_follows_its_page_not_the_overlay() {
    let town = town();
    with_walks(&town, |walks| {
        let mut stock = household(8, true, 600.0, &[(80, true)]);
        stock.stock_tv = true;
        let plans = [household(7, true, 600.0, &[(70, true)]), stock];
        let mut sim = Sim::new(&town, Hazard::Tsunami, walks, &[], plans, ORDER, END);
        // The overlay shows both their orders at once; the stock TV's household has no box.
        sim.tv_changed(7, on(1), ORDER + 1_000);
        sim.tv_changed(8, on(1), ORDER + 1_000);
        // Household 7's page would say shelter 2: it has a box, it never looks at the page.
        sim.stock_tv_changed(7, on(2), ORDER + 2_000);
        // Household 8's page shows shelter 2 three seconds after the order.
        sim.stock_tv_changed(8, on(2), ORDER + 3_000);
        let t = taps(&run(&mut sim, ORDER, END))
            .into_iter()
            .cloned()
            .collect::<Vec<_>>();
        let tap = |r| t.iter().find(|x| x.resident == r).unwrap();
        assert_eq!(tap(70).shelter, 1);
        assert_eq!(tap(80).shelter, 2);
        // Left 10 s after its page showed the order (not 600 s, nor after the overlay's).
        let walk_ms = (sim.walk_s(at(140.001), 2, 1.0) * 1000.0) as u64;
        assert_eq!(tap(80).sim_ms, ORDER + 3_000 + 10_000 + walk_ms);
        let end = sim.finish(END);
        assert_eq!(end.tv_shown[&7], ORDER + 1_000);
        assert_eq!(end.tv_shown[&8], ORDER + 3_000);
    });
}

#[test]
fn those_at_home_answer_their_delay_after_their_own_tv_shows_the_order() {
    use crate::residents::AnswerPlan;
    use evac_broadcaster::stb::answer::AnswerKind;
    let town = town();
    with_walks(&town, |walks| {
        let home = |id, stock| {
            let mut p = household(id, true, 600.0, &[(id * 10, true)]);
            p.stays = true;
            p.stock_tv = stock;
            p
        };
        // 1 on a box, 2 on a stock TV, 3 whose TV never shows an order, 4 answers after the
        // drill's end, 5 goes to the shelter (it has no answer plan: only those at home do).
        let plans = [
            home(1, false),
            home(2, true),
            home(3, false),
            home(4, false),
            household(5, true, 600.0, &[(50, true)]),
        ];
        let mut sim = Sim::new(&town, Hazard::Tsunami, walks, &[], plans, ORDER, END);
        let answer = |household, kind, delay_s| AnswerPlan {
            household,
            kind,
            people: if kind == AnswerKind::NeedHelp { 2 } else { 0 },
            delay_s,
            handled_after_s: (kind == AnswerKind::NeedHelp).then_some(300.0),
        };
        sim.answering([
            answer(1, AnswerKind::SafeAtHome, 120.0),
            answer(2, AnswerKind::NeedHelp, 60.0),
            answer(3, AnswerKind::SafeAtHome, 10.0),
            answer(4, AnswerKind::EvacuatedElsewhere, 3_600.0),
        ]);
        assert!(
            !sim.answers_due(),
            "nothing is due before a TV shows the order"
        );
        for h in [1, 4, 5] {
            sim.tv_changed(h, on(1), ORDER + 2_000);
        }
        // Household 2 has no box: the overlay does not reach it, its page does, later.
        sim.tv_changed(2, on(1), ORDER + 2_000);
        sim.stock_tv_changed(2, on(1), ORDER + 5_000);
        // A changed order on the screen does not answer again.
        sim.tv_changed(1, on(2), ORDER + 30_000);
        assert!(sim.answers_due());
        let steps = run(&mut sim, ORDER, END);
        let answers: Vec<_> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Answer(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert_eq!(answers[0].plan, answer(2, AnswerKind::NeedHelp, 60.0));
        assert_eq!(answers[0].sim_ms, ORDER + 5_000 + 60_000);
        assert_eq!(answers[1].plan.household, 1);
        assert_eq!(answers[1].sim_ms, ORDER + 2_000 + 120_000);
        assert!(!sim.answers_due());
        // An officer marks the need-help answer handled 300 s after it, and only that one.
        let handled: Vec<_> = steps
            .iter()
            .filter(|s| matches!(s, Step::Handled(_)))
            .collect();
        assert_eq!(handled, [&Step::Handled(2)]);
        let at = |want: &Step| steps.iter().position(|s| s == want).unwrap();
        assert!(at(&Step::Handled(2)) > at(&Step::Answer(*answers[1])));
        // Those at home stay home: no tap of theirs.
        assert!(taps(&steps).iter().all(|t| t.household == 5));
    });
}
