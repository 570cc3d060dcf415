//! The drill's simulation, with no I/O: the households under order (their plans), their walks
//! and the orders their TVs show go in; the taps the shelters are to see, the faults to inject
//! and where each household ended come out. A discrete-event queue on the drill clock: the
//! runner steps it with the clock's "now" ([`Sim::step`]) and hands it each changed screen
//! ([`Sim::tv_changed`]); tests step it on a clock of their own.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use evac_maps::{Hazard, LonLat, Town};
use evac_protocol::ShelterId;

use crate::residents::{AnswerPlan, HouseholdPlan, along};
use crate::scenario::Fault;
use crate::tv::OnScreen;
use crate::walks::Walks;

/// Where a household ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HouseholdEnd {
    /// Did not go.
    Stayed,
    /// Still at home or walking when the drill ended.
    StillWalking,
    /// At a shelter.
    Arrived(u32),
}

/// What the simulation asks of the world, in the order it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A member taps a card (or is entered by staff) at a shelter.
    Tap(TapOrder),
    /// Fault `i` of the scenario starts (a cut link, a killed broker or HQ).
    FaultStart(usize),
    /// Fault `i` of the scenario ends (the link back, the process started again).
    FaultEnd(usize),
    /// Fault `fault` closes `shelter` (the officer's command); `on_way` households were walking
    /// there. The simulation already sends nobody there any more.
    Close {
        /// The fault's index in the scenario.
        fault: usize,
        /// The shelter.
        shelter: u32,
        /// Households on their way to it when it closed.
        on_way: u64,
    },
    /// A household at home answers from its TV.
    Answer(AnswerOrder),
    /// An officer marks this household's "need help here" answer handled.
    Handled(u32),
}

/// One household's answer from its TV, due now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerOrder {
    /// What it answers, with the household and the people who need help.
    pub plan: AnswerPlan,
    /// When the simulation made it, drill ms.
    pub sim_ms: u64,
}

/// One tap for a shelter's input.
#[derive(Debug, Clone, PartialEq)]
pub struct TapOrder {
    /// The shelter.
    pub shelter: u32,
    /// The household.
    pub household: u32,
    /// The resident.
    pub resident: u32,
    /// A card tap (else a staff entry).
    pub card: bool,
    /// When the simulation made it, drill ms.
    pub sim_ms: u64,
    /// The card-pulled fault (its index) this tap carries: the card leaves the reader mid-read.
    pub pulled: Option<usize>,
}

/// What the simulation has scheduled for a drill time (in its queue): a household leaving or
/// arriving at a shelter, a resident checking out, a fault starting or ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scheduled {
    Depart(u32),
    Arrive(u32, u32),
    CheckOut(u32, usize),
    FaultStart(usize),
    FaultEnd(usize),
    Answer(u32),
    Handled(u32),
}

#[derive(Debug, Clone, Copy)]
enum Where {
    Home,
    Stayed,
    Walking {
        from: LonLat,
        to: u32,
        start_ms: u64,
        arrive_ms: u64,
    },
    Arrived(u32),
}

struct Walker {
    plan: HouseholdPlan,
    at: Where,
    generation: u32,
    tv: Option<OnScreen>,
    follows_tv: bool,
    /// When its own TV (box or stock) first showed it an order, drill ms.
    shown_ms: Option<u64>,
    /// Its answer from the TV, if it gives one, and whether it is scheduled yet.
    answer: Option<(AnswerPlan, bool)>,
}

/// How a finished simulation ended.
pub struct SimEnd {
    /// The households' plans, by household id.
    pub plans: Vec<HouseholdPlan>,
    /// Each household's final state.
    pub outcome: HashMap<u32, HouseholdEnd>,
    /// Households still walking with an arrival due before the end: a simulator bug.
    pub anomalies: Vec<String>,
    /// When each household's own TV (box or stock) first showed it an order, drill ms.
    pub tv_shown: HashMap<u32, u64>,
}

/// The households under order on their way, on the drill clock.
pub struct Sim<'a> {
    town: &'a Town,
    hazard: Hazard,
    walks: &'a Walks<'a>,
    shelter_loc: HashMap<u32, LonLat>,
    faults: &'a [Fault],
    order_ms: u64,
    end_ms: u64,
    hh: BTreeMap<u32, Walker>,
    heap: BinaryHeap<Reverse<(u64, u64, Scheduled)>>,
    counter: u64,
    closed: BTreeSet<u32>,
    armed_pull: Option<usize>,
    redirected: usize,
    rerouted: usize,
}

impl<'a> Sim<'a> {
    /// The order given at `order_ms` to the households of `plans`; the drill ends at `end_ms`.
    /// Those who go leave after the longer (no-TV) delay unless their TV shows the order first;
    /// the scenario's `faults` fall due at their times.
    pub fn new(
        town: &'a Town,
        hazard: Hazard,
        walks: &'a Walks<'a>,
        faults: &'a [Fault],
        plans: impl IntoIterator<Item = HouseholdPlan>,
        order_ms: u64,
        end_ms: u64,
    ) -> Sim<'a> {
        let hh = plans
            .into_iter()
            .map(|p| {
                let follows_tv = p.watches_tv && !p.other_shelter;
                let id = p.household;
                let w = Walker {
                    plan: p,
                    at: Where::Home,
                    generation: 0,
                    tv: None,
                    follows_tv,
                    shown_ms: None,
                    answer: None,
                };
                (id, w)
            })
            .collect();
        let mut sim = Sim {
            town,
            hazard,
            walks,
            shelter_loc: town.shelters.iter().map(|s| (s.id, s.location)).collect(),
            faults,
            order_ms,
            end_ms,
            hh,
            heap: BinaryHeap::new(),
            counter: 0,
            closed: BTreeSet::new(),
            armed_pull: None,
            redirected: 0,
            rerouted: 0,
        };
        let mut departures = Vec::new();
        for (id, h) in sim.hh.iter_mut() {
            if h.plan.stays {
                h.at = Where::Stayed;
            } else {
                // Without a TV order (or before it airs) residents leave after the longer delay.
                departures.push((order_ms + (h.plan.delay_no_tv_s * 1000.0) as u64, *id));
            }
        }
        for (at, id) in departures {
            sim.push(at, Scheduled::Depart(id));
        }
        for (i, f) in faults.iter().enumerate() {
            sim.push(order_ms + f.at_s() * 1000, Scheduled::FaultStart(i));
        }
        sim
    }

    fn push(&mut self, at: u64, ev: Scheduled) {
        self.counter += 1;
        self.heap.push(Reverse((at, self.counter, ev)));
    }

    fn walk_s(&self, from: LonLat, to: u32, speed_mps: f64) -> f64 {
        self.walks.metres(from, to, self.shelter_loc[&to]) / speed_mps
    }

    /// Household `h`'s box shows `on` since `seen` (drill ms): a first order starts its
    /// (shorter) TV delay; a changed shelter re-routes one that follows its TV from where it is.
    /// A household on a stock TV has no box: this does not reach it.
    pub fn tv_changed(&mut self, h: u32, on: OnScreen, seen: u64) {
        self.screen_changed(h, false, on, seen);
    }

    /// Household `h`'s stock TV (its data-broadcasting page) shows `on` since `seen`: as
    /// [`Sim::tv_changed`], for the households that watch on one.
    pub fn stock_tv_changed(&mut self, h: u32, on: OnScreen, seen: u64) {
        self.screen_changed(h, true, on, seen);
    }

    /// The households that answer from their TV: each answers its plan's delay after its own
    /// TV (box or stock, watched when the order aired or not) first shows it an order, if it
    /// is still at home then.
    pub fn answering(&mut self, plans: impl IntoIterator<Item = AnswerPlan>) {
        for a in plans {
            if let Some(x) = self.hh.get_mut(&a.household) {
                x.answer = Some((a, false));
            }
        }
    }

    fn screen_changed(&mut self, h: u32, stock: bool, on: OnScreen, seen: u64) {
        let Some(x) = self.hh.get_mut(&h) else { return };
        if x.plan.stock_tv != stock {
            return;
        }
        if on.level.is_some()
            && let Some((a, scheduled)) = x.answer.as_mut()
            && !*scheduled
        {
            *scheduled = true;
            let at = seen + (a.delay_s * 1000.0) as u64;
            self.push(at, Scheduled::Answer(h));
        }
        let Some(x) = self.hh.get_mut(&h) else { return };
        let was = x.tv;
        x.tv = Some(on);
        if !x.plan.watches_tv || on.level.is_none() {
            return;
        }
        x.shown_ms.get_or_insert(seen);
        match x.at {
            Where::Home if was.is_none() => {
                let at = seen + (x.plan.delay_tv_s * 1000.0) as u64;
                self.push(at, Scheduled::Depart(h));
            }
            Where::Walking {
                from,
                to,
                start_ms,
                arrive_ms,
            } if x.follows_tv && !on.shelter.is_none() && on.shelter.0 != to => {
                // Re-routed on the way: from where they are now to the new shelter.
                let f = (seen.saturating_sub(start_ms)) as f64
                    / (arrive_ms.saturating_sub(start_ms)).max(1) as f64;
                let to_loc = self.shelter_loc.get(&to).copied().unwrap_or(from);
                let here = along(from, to_loc, f);
                if !self.shelter_loc.contains_key(&on.shelter.0) {
                    return;
                }
                let speed = x.plan.speed_mps;
                let t = self.walk_s(here, on.shelter.0, speed);
                let at = seen.max(start_ms) + (t * 1000.0) as u64;
                let Some(x) = self.hh.get_mut(&h) else { return };
                x.generation += 1;
                x.at = Where::Walking {
                    from: here,
                    to: on.shelter.0,
                    start_ms: seen.max(start_ms),
                    arrive_ms: at,
                };
                let g = x.generation;
                self.rerouted += 1;
                self.push(at, Scheduled::Arrive(h, g));
            }
            _ => {}
        }
    }

    /// Everything due by `now` (drill ms), in time order. `settled(resident)`: the resident's
    /// check-in is answered and far enough behind for the node to take another tap as a new
    /// one (else a check-out waits 30 drill seconds and asks again).
    pub fn step(&mut self, now: u64, settled: impl Fn(u32) -> bool) -> Vec<Step> {
        let mut out = Vec::new();
        while self.heap.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
            let Some(Reverse((t, _, ev))) = self.heap.pop() else {
                break;
            };
            if t > self.end_ms && !matches!(ev, Scheduled::FaultEnd(_)) {
                continue;
            }
            match ev {
                Scheduled::Depart(h) => self.depart(h, t),
                Scheduled::Arrive(h, g) => self.arrive(h, g, t, &mut out),
                Scheduled::CheckOut(h, i) => {
                    let Some(x) = self.hh.get(&h) else { continue };
                    let Where::Arrived(at) = x.at else { continue };
                    let Some(m) = x.plan.members.get(i) else {
                        continue;
                    };
                    if !settled(m.resident) {
                        self.push(t + 30_000, Scheduled::CheckOut(h, i));
                        continue;
                    }
                    out.push(Step::Tap(TapOrder {
                        shelter: at,
                        household: h,
                        resident: m.resident,
                        card: m.card,
                        sim_ms: t,
                        pulled: None,
                    }));
                }
                Scheduled::FaultStart(i) => self.fault_start(i, t, &mut out),
                Scheduled::FaultEnd(i) => out.push(Step::FaultEnd(i)),
                Scheduled::Answer(h) => {
                    let Some(x) = self.hh.get(&h) else { continue };
                    if let (Where::Stayed, Some((plan, _))) = (x.at, x.answer) {
                        out.push(Step::Answer(AnswerOrder { plan, sim_ms: t }));
                        if let Some(after) = plan.handled_after_s {
                            self.push(t + (after * 1000.0) as u64, Scheduled::Handled(h));
                        }
                    }
                }
                Scheduled::Handled(h) => out.push(Step::Handled(h)),
            }
        }
        out
    }

    fn depart(&mut self, h: u32, t: u64) {
        let Some(x) = self.hh.get(&h) else { return };
        if !matches!(x.at, Where::Home) {
            return;
        }
        let ordered = x.tv.filter(|_| x.plan.watches_tv).map(|o| o.shelter);
        let Some(dest) = destination(
            self.town,
            self.hazard,
            x.plan.home,
            &self.closed,
            ordered,
            x.plan.other_shelter,
        ) else {
            return;
        };
        let home = x.plan.home;
        let arrive = t + (self.walk_s(home, dest, x.plan.speed_mps) * 1000.0) as u64;
        let Some(x) = self.hh.get_mut(&h) else { return };
        x.generation += 1;
        x.at = Where::Walking {
            from: home,
            to: dest,
            start_ms: t,
            arrive_ms: arrive,
        };
        let g = x.generation;
        self.push(arrive, Scheduled::Arrive(h, g));
    }

    fn arrive(&mut self, h: u32, g: u32, t: u64, out: &mut Vec<Step>) {
        let Some(x) = self.hh.get(&h) else { return };
        if x.generation != g {
            return;
        }
        let Where::Walking { to, .. } = x.at else {
            return;
        };
        let speed = x.plan.speed_mps;
        if self.closed.contains(&to) {
            // Staff at the closed shelter's door send them to the nearest open one.
            let here = self.shelter_loc[&to];
            let Some(dest) = nearest(self.town, self.hazard, here, &self.closed, None) else {
                return;
            };
            let arrive = t + (self.walk_s(here, dest, speed) * 1000.0) as u64;
            let Some(x) = self.hh.get_mut(&h) else { return };
            x.generation += 1;
            x.at = Where::Walking {
                from: here,
                to: dest,
                start_ms: t,
                arrive_ms: arrive,
            };
            let g = x.generation;
            self.redirected += 1;
            self.push(arrive, Scheduled::Arrive(h, g));
            return;
        }
        let Some(x) = self.hh.get_mut(&h) else { return };
        x.at = Where::Arrived(to);
        let members = x.plan.members.clone();
        for (i, m) in members.iter().enumerate() {
            let pulled = if m.card { self.armed_pull.take() } else { None };
            let tap = |pulled| {
                Step::Tap(TapOrder {
                    shelter: to,
                    household: h,
                    resident: m.resident,
                    card: m.card,
                    sim_ms: t,
                    pulled,
                })
            };
            if let Some(fi) = pulled {
                out.push(tap(Some(fi)));
            }
            out.push(tap(None));
            if let Some(after) = m.check_out_after_s {
                self.push(t + (after * 1000.0) as u64, Scheduled::CheckOut(h, i));
            }
        }
    }

    fn fault_start(&mut self, i: usize, t: u64, out: &mut Vec<Step>) {
        let Some(f) = self.faults.get(i) else { return };
        match *f {
            Fault::NetCut { until_s, .. } => {
                out.push(Step::FaultStart(i));
                self.push(self.order_ms + until_s * 1000, Scheduled::FaultEnd(i));
            }
            Fault::BrokerRestart { down_s, .. } | Fault::HqRestart { down_s, .. } => {
                out.push(Step::FaultStart(i));
                self.push(t + down_s * 1000, Scheduled::FaultEnd(i));
            }
            Fault::CloseShelter { shelter, .. } => {
                self.closed.insert(shelter);
                let on_way = self
                    .hh
                    .values()
                    .filter(|x| matches!(x.at, Where::Walking { to, .. } if to == shelter))
                    .count();
                out.push(Step::Close {
                    fault: i,
                    shelter,
                    on_way: on_way as u64,
                });
            }
            Fault::CardPulled { .. } => self.armed_pull = Some(i),
        }
    }

    /// Whether a household is still to leave, arrive or check out before the drill's end.
    pub fn moving(&self) -> bool {
        self.heap.iter().any(|Reverse((t, _, e))| {
            *t <= self.end_ms
                && matches!(
                    e,
                    Scheduled::Depart(_) | Scheduled::Arrive(..) | Scheduled::CheckOut(..)
                )
        })
    }

    /// Whether a household's answer from its TV, or an officer's "handled", is still due
    /// before the drill's end.
    pub fn answers_due(&self) -> bool {
        self.heap.iter().any(|Reverse((t, _, e))| {
            *t <= self.end_ms && matches!(e, Scheduled::Answer(_) | Scheduled::Handled(_))
        })
    }

    /// Whether every fault that ends has ended.
    pub fn faults_done(&self) -> bool {
        !self
            .heap
            .iter()
            .any(|Reverse((_, _, e))| matches!(e, Scheduled::FaultEnd(_)))
    }

    /// Households under order.
    pub fn households(&self) -> usize {
        self.hh.len()
    }

    /// Households at a shelter.
    pub fn arrived(&self) -> usize {
        self.hh
            .values()
            .filter(|x| matches!(x.at, Where::Arrived(_)))
            .count()
    }

    /// Households re-routed on the way by a changed TV order.
    pub fn rerouted(&self) -> usize {
        self.rerouted
    }

    /// Households that reached a closed shelter and were sent on by the staff at the door.
    pub fn redirected(&self) -> usize {
        self.redirected
    }

    /// Where each household ended, the drill having ended at `end` (drill ms).
    pub fn finish(self, end: u64) -> SimEnd {
        let mut anomalies = Vec::new();
        for (id, x) in &self.hh {
            // Walking with an arrival due inside the drill, yet the drill ended: a simulator bug.
            if matches!(x.at, Where::Walking { arrive_ms, .. } if arrive_ms <= end) {
                anomalies.push(format!(
                    "household {id} ended {:?} before the drill's end (TV {:?})",
                    x.at, x.tv
                ));
            }
        }
        let outcome = self
            .hh
            .iter()
            .map(|(id, x)| {
                (
                    *id,
                    match x.at {
                        Where::Stayed => HouseholdEnd::Stayed,
                        Where::Arrived(s) => HouseholdEnd::Arrived(s),
                        _ => HouseholdEnd::StillWalking,
                    },
                )
            })
            .collect();
        let tv_shown = self
            .hh
            .iter()
            .filter_map(|(id, x)| Some((*id, x.shown_ms?)))
            .collect();
        SimEnd {
            tv_shown,
            plans: self.hh.into_values().map(|x| x.plan).collect(),
            outcome,
            anomalies,
        }
    }
}

/// Where a household leaving `home` heads: the shelter its TV shows (`on_screen`) unless that is
/// closed, else the nearest open shelter suited to the hazard; one that goes elsewhere
/// (`other_shelter`) takes the nearest other than the one it was sent to.
pub(crate) fn destination(
    town: &Town,
    hazard: Hazard,
    home: LonLat,
    closed: &BTreeSet<u32>,
    on_screen: Option<ShelterId>,
    other_shelter: bool,
) -> Option<u32> {
    match on_screen {
        Some(sh) if !sh.is_none() && !other_shelter && !closed.contains(&sh.0) => Some(sh.0),
        Some(sh) if other_shelter => nearest(town, hazard, home, closed, Some(sh.0)),
        _ if other_shelter => {
            let n = nearest(town, hazard, home, closed, None);
            nearest(town, hazard, home, closed, n)
        }
        _ => nearest(town, hazard, home, closed, None),
    }
}

/// The nearest open shelter suited to the hazard, skipping `closed` and `skip`.
pub(crate) fn nearest(
    town: &Town,
    hazard: Hazard,
    from: LonLat,
    closed: &BTreeSet<u32>,
    skip: Option<u32>,
) -> Option<u32> {
    town.shelters
        .iter()
        .filter(|s| s.open && s.suits(hazard) && !closed.contains(&s.id) && Some(s.id) != skip)
        .min_by(|a, b| {
            from.distance_m(a.location)
                .total_cmp(&from.distance_m(b.location))
        })
        .map(|s| s.id)
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
