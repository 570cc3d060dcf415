use std::collections::HashMap;
use std::sync::Arc;

use evac_maps::{GenerateParams, Town, generate};
use evac_protocol::{AlertLevel, Hazard, MessageKind, ShelterId};

use super::*;
use crate::notice::{Area, Notice};

fn notice(hazard: Hazard, level: AlertLevel, area: Area) -> Notice {
    Notice {
        name: "t".into(),
        hazard,
        level,
        area,
        issued: 1_000,
        expires: 100_000,
        onset: None,
        effective: None,
        drill: false,
        source: "test".into(),
        cap: None,
    }
}

fn zone1() -> Area {
    Area {
        zones: vec![1],
        ..Area::default()
    }
}

fn town(households: u32, shelters: u32) -> Town {
    generate(&GenerateParams {
        households,
        shelters,
        seed: 11,
    })
}

fn book(t: &Town) -> OrderBook {
    OrderBook::new(Arc::new(EngineTown::new(t)), "minato".parse().unwrap())
}

fn orders_by_household(out: &BookChange) -> HashMap<u32, (u32, u32)> {
    out.batches
        .iter()
        .flat_map(|b| &b.orders)
        .map(|o| (o.household.0, (o.shelter.0, o.version)))
        .collect()
}

#[test]
fn fast_assignment_equals_the_naive_scan_even_when_shelters_fill() {
    let mut t = town(3000, 40);
    // The straight-line engine (a town without roads); walking has its own tests.
    t.roads.clear();
    // Small shelters so that many fill and households spill to farther ones.
    for s in &mut t.shelters {
        s.capacity = 60;
    }
    let mut b = book(&t);
    let out = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
        .unwrap();
    let et = EngineTown::new(&t);
    let area = CompiledArea::new(&zone1(), &et).unwrap();
    let mut affected: Vec<u32> = (0..et.households() as u32)
        .filter(|h| area.contains(et.hh_loc[*h as usize]))
        .collect();
    affected.sort_by_key(|h| et.priority(*h));
    let mut load = vec![0; et.shelters()];
    let naive = naive::assign(&et, Hazard::Tsunami, &affected, &et.sh_open, &mut load);
    let got = orders_by_household(&out);
    let mut filled = 0;
    for (h, s) in affected.iter().zip(&naive) {
        let id = et.hh_id[*h as usize];
        // A household without room still has an order: shelter NONE (0).
        assert_eq!(
            got.get(&id).map(|o| o.0),
            Some(s.map_or(ShelterId::NONE.0, |s| et.sh_id[s as usize])),
            "household {id}"
        );
        filled += usize::from(s.is_none());
    }
    assert_eq!(
        got.len(),
        affected.len(),
        "every affected household has an order"
    );
    assert_eq!(out.unassigned.len(), filled);
    assert!(filled > 0, "the test needs shelters that fill");
    assert!(
        affected.len() > 200,
        "the test needs a crowd: {}",
        affected.len()
    );
    assert_eq!(
        b.expected(),
        load.as_slice(),
        "expected arrivals match the baseline's load"
    );
}

#[test]
fn orders_respect_hazard_open_room_and_help() {
    let t = town(2000, 30);
    let mut b = book(&t);
    let out = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
        .unwrap();
    assert_eq!(out.batches[0].kind, MessageKind::Alert);
    let mut people: HashMap<u32, u32> = HashMap::new();
    for o in out.batches.iter().flat_map(|b| &b.orders) {
        if o.shelter == ShelterId::NONE {
            assert!(out.unassigned.contains(&o.household));
            continue;
        }
        let s = t.shelter(o.shelter.0).unwrap();
        let h = t.household(o.household.0).unwrap();
        assert!(s.open && s.suits(evac_maps::Hazard::Tsunami));
        assert!(t.zones[0].contains(h.location));
        assert_eq!(o.needs_help, h.needs_help());
        *people.entry(s.id).or_default() += h.members.len() as u32;
        if h.needs_help()
            && t.shelters
                .iter()
                .any(|s| s.accessible && s.suits(evac_maps::Hazard::Tsunami))
        {
            // Help households are served first, so the accessible shelters still had room.
            assert!(
                s.accessible,
                "household {} sent to inaccessible shelter {}",
                h.id, s.id
            );
        }
    }
    for (s, n) in people {
        assert!(n <= t.shelter(s).unwrap().capacity);
    }
}

#[test]
fn level_3_orders_only_the_elderly_and_those_needing_help() {
    let t = town(1500, 20);
    let mut b = book(&t);
    let out = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level3, zone1()), None)
        .unwrap();
    let orders: Vec<_> = out.batches.iter().flat_map(|b| &b.orders).collect();
    assert!(!orders.is_empty());
    for o in &orders {
        let h = t.household(o.household.0).unwrap();
        assert!(h.needs_help() || h.members.iter().any(|m| m.age_band.is_aged()));
    }
    let in_zone = t
        .households
        .iter()
        .filter(|h| t.zones[0].contains(h.location))
        .count();
    // Households without room are ordered too (shelter NONE).
    assert!(
        out.unassigned
            .iter()
            .all(|h| orders.iter().any(|o| o.household == *h))
    );
    assert!(
        orders.len() < in_zone,
        "someone young in the zone was left out"
    );
}

#[test]
fn closing_a_shelter_reroutes_only_its_households_not_yet_arrived() {
    let t = town(2000, 30);
    let mut b = book(&t);
    let first = orders_by_household(
        &b.issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
            .unwrap(),
    );
    // The shelter with the most households; half of them have arrived.
    let mut count: HashMap<u32, Vec<u32>> = HashMap::new();
    for (h, (s, _)) in &first {
        count.entry(*s).or_default().push(*h);
    }
    let (&closed, sent) = count.iter().max_by_key(|(_, v)| v.len()).unwrap();
    let mut sent = sent.clone();
    sent.sort();
    let (_arrived, expect) = arrive_every(&mut b, &sent, 2);
    let out = b.close_shelter(ShelterId(closed)).unwrap();
    let moved = orders_by_household(&out);
    let mut got: Vec<u32> = moved.keys().copied().collect();
    got.sort();
    assert_eq!(
        got, expect,
        "exactly the not-arrived households of the closed shelter change"
    );
    for h in &out.unassigned {
        assert_eq!(
            moved[&h.0].0,
            ShelterId::NONE.0,
            "unassigned means shelter NONE"
        );
    }
    for (h, (s, v)) in &moved {
        assert_ne!(*s, closed);
        assert_eq!(*v, first[h].1 + 1);
    }
    assert!(out.batches.iter().all(|b| b.kind == MessageKind::Update));
    // Everyone else keeps version 1.
    for (h, (_, v)) in &first {
        let i = b.town().hh_index[h] as usize;
        if !moved.contains_key(h) {
            assert_eq!(b.version(i), *v);
        }
    }
    assert!(!b.is_open(b.town().sh_index[&closed] as usize));
}

#[test]
fn update_moves_the_area_and_cancel_lifts() {
    let t = town(2000, 30);
    let mut b = book(&t);
    // Two overlapping boxes across the coast.
    let boxed = |lat0: f64, lat1: f64| Area {
        polygons: vec![vec![
            [141.90, lat0],
            [142.0, lat0],
            [142.0, lat1],
            [141.90, lat1],
            [141.90, lat0],
        ]],
        ..Area::default()
    };
    let a = b
        .issue(
            notice(Hazard::Tsunami, AlertLevel::Level4, boxed(39.60, 39.645)),
            None,
        )
        .unwrap();
    let id = a.message_id.unwrap();
    let before = orders_by_household(&a);
    let u = b
        .issue(
            notice(Hazard::Tsunami, AlertLevel::Level4, boxed(39.63, 39.69)),
            Some(id),
        )
        .unwrap();
    let new_id = u.message_id.unwrap();
    assert_eq!(u.batches[0].kind, MessageKind::Update);
    assert_eq!(u.batches[0].references, Some(id));
    let cancel = u
        .batches
        .iter()
        .find(|b| b.kind == MessageKind::Cancel)
        .unwrap();
    for o in &cancel.orders {
        let h = t.household(o.household.0).unwrap();
        assert!(
            h.location.lat < 39.63,
            "only households left outside are lifted"
        );
    }
    for o in &u.batches[0].orders {
        if let Some((_, v)) = before.get(&o.household.0) {
            assert_eq!(o.version, *v, "households in both areas keep their version");
        }
    }
    let lifted = b.lift(new_id).unwrap();
    assert!(lifted.batches.iter().all(|b| b.kind == MessageKind::Cancel));
    assert!((0..t.households.len()).all(|h| b.assignment(h).is_none()));
    assert!(b.expected().iter().all(|e| *e == 0));
    assert!(
        b.lift(new_id).is_err(),
        "a lifted message cannot be lifted twice"
    );
}

#[test]
fn walk_ins_filling_a_shelter_push_out_households_still_on_their_way() {
    let t = town(2000, 30);
    let mut b = book(&t);
    let first = orders_by_household(
        &b.issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
            .unwrap(),
    );
    let (&s_id, _) = first
        .values()
        .fold(HashMap::new(), |mut m: HashMap<u32, u32>, (s, _)| {
            *m.entry(*s).or_default() += 1;
            m
        })
        .iter()
        .max_by_key(|(_, n)| **n)
        .unwrap();
    let s = b.town().sh_index[&s_id] as usize;
    let mut present = vec![0; t.shelters.len()];
    present[s] = t.shelters[s].capacity; // full of walk-ins
    let out = b.set_present(&present);
    let moved = orders_by_household(&out);
    assert!(!moved.is_empty() || !out.unassigned.is_empty());
    assert!(moved.values().all(|(sh, _)| *sh != s_id));
    assert_eq!(b.expected()[s], 0);
}

#[test]
fn restoring_from_persisted_rows_gives_the_same_book() {
    let t = town(1000, 20);
    let mut b = book(&t);
    b.issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
        .unwrap();
    b.close_shelter(ShelterId(t.shelters[0].id)).unwrap();
    let p = b.take_persist();
    let notices = p
        .notices
        .iter()
        .map(|(id, j, a)| (*id, serde_json::from_str(j).unwrap(), *a))
        .collect();
    let mut r = book(&t);
    r.restore(notices, &p.rows, &p.open, b.next_message());
    for h in 0..t.households.len() {
        assert_eq!(r.assignment(h), b.assignment(h));
        assert_eq!(r.version(h), b.version(h));
    }
    assert_eq!(r.expected(), b.expected());
    assert!(!r.is_open(0));
}

#[test]
fn unknown_zone_and_message_are_errors() {
    let t = town(100, 5);
    let mut b = book(&t);
    let bad = Area {
        zones: vec![99],
        ..Area::default()
    };
    assert_eq!(
        b.issue(notice(Hazard::Flood, AlertLevel::Level4, bad), None)
            .unwrap_err(),
        EngineError::UnknownZones(vec![99])
    );
    assert_eq!(b.lift(7).unwrap_err(), EngineError::UnknownMessage(7));
    assert!(b.close_shelter(ShelterId(999)).is_err());
}

/// A town whose shelters are all closed but `open` (by index), which gets `capacity`.
fn one_shelter_town(capacity: u32) -> (Town, usize) {
    let mut t = town(1500, 20);
    let open = t
        .shelters
        .iter()
        .position(|s| s.suits(evac_maps::Hazard::Tsunami))
        .unwrap();
    for (i, s) in t.shelters.iter_mut().enumerate() {
        s.open = i == open;
        if i == open {
            s.capacity = capacity;
        }
    }
    (t, open)
}

#[test]
fn closing_the_last_shelter_with_room_orders_its_households_to_no_shelter() {
    let (t, s) = one_shelter_town(1_000_000);
    let sid = t.shelters[s].id;
    let mut b = book(&t);
    let first = orders_by_household(
        &b.issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
            .unwrap(),
    );
    assert!(first.len() > 20, "the test needs a crowd: {}", first.len());
    assert!(first.values().all(|(sh, v)| *sh == sid && *v == 1));
    let mut sent: Vec<u32> = first.keys().copied().collect();
    sent.sort();
    let (arrived, on_way) = arrive_every(&mut b, &sent, 3);

    let out = b.close_shelter(ShelterId(sid)).unwrap();
    let moved = orders_by_household(&out);
    let mut got: Vec<u32> = moved.keys().copied().collect();
    got.sort();
    assert_eq!(got, on_way, "every household on its way gets a new order");
    for (h, (sh, v)) in &moved {
        assert_ne!(*sh, sid, "household {h} still sent to the closed shelter");
        assert_eq!(*sh, ShelterId::NONE.0);
        assert_eq!(
            *v, 2,
            "household {h}: the changed order has a higher version"
        );
    }
    for o in out.batches.iter().flat_map(|b| &b.orders) {
        assert_eq!((o.level, o.hazard), (AlertLevel::Level4, Hazard::Tsunami));
    }
    assert!(out.batches.iter().all(|b| b.kind == MessageKind::Update));
    let mut unassigned: Vec<u32> = out.unassigned.iter().map(|h| h.0).collect();
    unassigned.sort();
    assert_eq!(unassigned, on_way, "officers see them as unassigned");
    assert!(
        b.expected().iter().all(|e| *e == 0),
        "NONE is not expected anywhere"
    );
    for h in &arrived {
        let i = b.town().hh_index[h] as usize;
        assert_eq!(b.version(i), 1, "arrived households keep their order");
    }
    // The current orders (re-published after a reconnect) never name the closed shelter.
    let current = b.current_batches();
    for o in current.iter().flat_map(|b| &b.orders) {
        let arrived_there = arrived.contains(&o.household.0);
        assert!(arrived_there || o.shelter == ShelterId::NONE);
    }

    // When the shelter opens again the households without a shelter are sent there.
    let back = b.open_shelter(ShelterId(sid)).unwrap();
    let again = orders_by_household(&back);
    let mut got: Vec<u32> = again.keys().copied().collect();
    got.sort();
    assert_eq!(got, on_way);
    assert!(again.values().all(|(sh, v)| *sh == sid && *v == 3));
    assert!(back.unassigned.is_empty());
}

#[test]
fn a_notice_with_too_little_room_orders_the_overflow_to_no_shelter() {
    let (t, s) = one_shelter_town(40);
    let sid = t.shelters[s].id;
    let mut b = book(&t);
    let out = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
        .unwrap();
    let got = orders_by_household(&out);
    let in_zone: Vec<u32> = t
        .households
        .iter()
        .filter(|h| t.zones[0].contains(h.location))
        .map(|h| h.id)
        .collect();
    assert_eq!(got.len(), in_zone.len(), "everyone in the zone is ordered");
    let mut none: Vec<u32> = got
        .iter()
        .filter(|(_, (sh, _))| *sh == ShelterId::NONE.0)
        .map(|(h, _)| *h)
        .collect();
    none.sort();
    let mut unassigned: Vec<u32> = out.unassigned.iter().map(|h| h.0).collect();
    unassigned.sort();
    assert!(!none.is_empty(), "the test needs an overflow");
    assert_eq!(none, unassigned);
    assert!(
        got.values()
            .all(|(sh, v)| (*sh == sid || *sh == 0) && *v == 1)
    );
    let people: u32 = got
        .iter()
        .filter(|(_, (sh, _))| *sh == sid)
        .map(|(h, _)| t.household(*h).unwrap().members.len() as u32)
        .sum();
    assert!(people <= 40);
    assert_eq!(
        b.expected()[s],
        people,
        "NONE orders are not expected arrivals"
    );

    // An update of the same area finds no more room: the overflow keeps its version.
    let id = out.message_id.unwrap();
    let u = b
        .issue(
            notice(Hazard::Tsunami, AlertLevel::Level4, zone1()),
            Some(id),
        )
        .unwrap();
    let after = orders_by_household(&u);
    for h in &none {
        assert_eq!(after[h], (ShelterId::NONE.0, 1), "household {h}");
    }
    assert_eq!(u.unassigned.len(), none.len());

    // Persisted and restored, a NONE order stays an order without a shelter.
    let p = b.take_persist();
    let notices = p
        .notices
        .iter()
        .map(|(id, j, a)| (*id, serde_json::from_str(j).unwrap(), *a))
        .collect();
    let mut r = book(&t);
    r.restore(notices, &p.rows, &p.open, b.next_message());
    for h in 0..t.households.len() {
        assert_eq!(r.assignment(h), b.assignment(h));
    }
    assert_eq!(r.expected(), b.expected());
}

/// Households (by id) of `orders` sent to shelter `sid`, and those ordered to no shelter.
fn split(orders: &HashMap<u32, (u32, u32)>, sid: u32) -> (Vec<u32>, Vec<u32>) {
    let mut on: Vec<u32> = Vec::new();
    let mut none: Vec<u32> = Vec::new();
    for (h, (sh, _)) in orders {
        if *sh == sid {
            on.push(*h);
        } else {
            assert_eq!(*sh, ShelterId::NONE.0, "household {h}");
            none.push(*h);
        }
    }
    on.sort();
    none.sort();
    (on, none)
}

/// People of households `hs` (ids).
fn people(t: &Town, hs: &[u32]) -> u32 {
    hs.iter()
        .map(|h| t.household(*h).unwrap().members.len() as u32)
        .sum()
}

/// What assigning `waiting` (ids) in priority order to `room` places gives: the ids placed.
/// Marks every `step`-th household of `sent` arrived; returns (arrived, still on their way).
fn arrive_every(b: &mut OrderBook, sent: &[u32], step: usize) -> (Vec<u32>, Vec<u32>) {
    let arrived: Vec<u32> = sent.iter().step_by(step).copied().collect();
    for h in &arrived {
        b.mark_arrived(b.town().hh_index[h] as usize);
    }
    let on_way = sent
        .iter()
        .filter(|h| !arrived.contains(h))
        .copied()
        .collect();
    (arrived, on_way)
}

fn greedy(b: &OrderBook, t: &Town, waiting: &[u32], mut room: u32) -> Vec<u32> {
    let mut w: Vec<u32> = waiting.to_vec();
    w.sort_by_key(|h| b.town().priority(b.town().hh_index[h]));
    let mut placed: Vec<u32> = w
        .into_iter()
        .filter(|h| {
            let size = people(t, &[*h]);
            let fits = size <= room;
            if fits {
                room -= size;
            }
            fits
        })
        .collect();
    placed.sort();
    placed
}

/// Checks the re-try after room was freed at shelter `sid` (index `s`): the households moved
/// are exactly those a priority-order fill of the room gives, each with version + 1; the rest
/// stay without a shelter and are listed; households already on the shelter are not touched.
fn check_retry(
    b: &OrderBook,
    t: &Town,
    (sid, s): (u32, usize),
    out: &BookChange,
    (on, none): (&[u32], &[u32]),
    room: u32,
) -> Vec<u32> {
    let moved = orders_by_household(out);
    let mut got: Vec<u32> = moved.keys().copied().collect();
    got.sort();
    let want = greedy(b, t, none, room);
    assert!(!want.is_empty(), "the test needs room for someone");
    assert_eq!(
        got, want,
        "the freed room goes to the waiting households by priority"
    );
    for h in &got {
        assert_eq!(
            moved[h],
            (sid, 2),
            "household {h}: from shelter 0 with version + 1"
        );
    }
    assert!(out.batches.iter().all(|b| b.kind == MessageKind::Update));
    for h in on {
        assert_eq!(b.version(b.town().hh_index[h] as usize), 1, "household {h}");
    }
    let mut left: Vec<u32> = out.unassigned.iter().map(|h| h.0).collect();
    left.sort();
    let still: Vec<u32> = none.iter().filter(|h| !got.contains(h)).copied().collect();
    assert_eq!(left, still, "the rest are still listed as unassigned");
    for h in &still {
        let i = b.town().hh_index[h] as usize;
        assert_eq!(
            b.version(i),
            1,
            "household {h} still without shelter keeps its version"
        );
        assert_eq!(b.assignment(i).unwrap().shelter, None);
    }
    assert_eq!(b.expected()[s], people(t, on) + people(t, &got));
    got
}

#[test]
fn lifting_another_notice_moves_households_without_a_shelter_to_the_freed_room() {
    let (t, s) = one_shelter_town(60);
    let sid = t.shelters[s].id;
    let mut b = book(&t);
    // The other notice: a small circle around a household outside zone 1, issued first so
    // that its households take room in the one open shelter.
    let c = t
        .households
        .iter()
        .find(|h| !t.zones[0].contains(h.location))
        .unwrap()
        .location;
    let circle = Area {
        circles: vec![crate::notice::Circle {
            lon: c.lon,
            lat: c.lat,
            radius_m: 150.0,
        }],
        ..Area::default()
    };
    let a = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level4, circle), None)
        .unwrap();
    let (on_a, none_a) = split(&orders_by_household(&a), sid);
    assert!(none_a.is_empty() && !on_a.is_empty(), "{on_a:?} {none_a:?}");
    for h in &on_a {
        assert!(!t.zones[0].contains(t.household(*h).unwrap().location));
    }
    let z = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
        .unwrap();
    let (on, none) = split(&orders_by_household(&z), sid);
    assert!(!none.is_empty(), "the test needs an overflow");

    let out = b.lift(a.message_id.unwrap()).unwrap();
    let cancelled: Vec<u32> = out
        .batches
        .iter()
        .filter(|b| b.kind == MessageKind::Cancel)
        .flat_map(|b| b.orders.iter().map(|o| o.household.0))
        .collect();
    assert_eq!(
        cancelled.len(),
        on_a.len(),
        "the lifted orders are cancelled"
    );
    let updates = BookChange {
        batches: out
            .batches
            .iter()
            .filter(|b| b.kind != MessageKind::Cancel)
            .cloned()
            .collect(),
        unassigned: out.unassigned.clone(),
        ..BookChange::default()
    };
    let room = 60 - people(&t, &on);
    check_retry(&b, &t, (sid, s), &updates, (&on, &none), room);
}

#[test]
fn people_leaving_a_shelter_move_households_without_a_shelter_there() {
    let (t, s) = one_shelter_town(60);
    let sid = t.shelters[s].id;
    let mut b = book(&t);
    let mut present = vec![0; t.shelters.len()];
    present[s] = 30;
    assert!(b.set_present(&present).batches.is_empty());
    let z = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
        .unwrap();
    let (on, none) = split(&orders_by_household(&z), sid);
    assert!(!none.is_empty(), "the test needs an overflow");
    let before = b.clone();

    // Nobody left: nothing is tried again, nothing changes.
    let same = b.set_present(&present);
    assert!(same.batches.is_empty() && same.unassigned.is_empty());
    for h in 0..t.households.len() {
        assert_eq!(b.version(h), before.version(h));
    }

    // Everyone walked out: the room goes to the households without a shelter.
    b.take_persist();
    present[s] = 0;
    let out = b.set_present(&present);
    let moved = check_retry(&b, &t, (sid, s), &out, (&on, &none), 60 - people(&t, &on));
    let mut rows: Vec<u32> = b.take_persist().rows.iter().map(|r| r.household).collect();
    rows.sort();
    assert_eq!(rows, moved, "only the changed orders are written again");

    // Again with nothing freed: no second move, versions stay.
    let again = b.set_present(&present);
    assert!(again.batches.is_empty());
    for h in &moved {
        assert_eq!(b.version(b.town().hh_index[h] as usize), 2);
    }
}

#[test]
fn after_a_restart_households_without_a_shelter_are_tried_at_the_first_tick() {
    let (t, s) = one_shelter_town(60);
    let sid = t.shelters[s].id;
    let mut b = book(&t);
    let mut present = vec![0; t.shelters.len()];
    present[s] = 30;
    b.set_present(&present);
    let z = b
        .issue(notice(Hazard::Tsunami, AlertLevel::Level4, zone1()), None)
        .unwrap();
    let (on, none) = split(&orders_by_household(&z), sid);
    assert!(!none.is_empty(), "the test needs an overflow");
    let p = b.take_persist();
    let notices = p
        .notices
        .iter()
        .map(|(id, j, a)| (*id, serde_json::from_str(j).unwrap(), *a))
        .collect();
    let mut r = book(&t);
    r.restore(notices, &p.rows, &p.open, b.next_message());
    // The people left while HQ was down: the first occupancy after the restart frees room.
    present[s] = 0;
    let out = r.set_present(&present);
    check_retry(&r, &t, (sid, s), &out, (&on, &none), 60 - people(&t, &on));
}

/// Issue 18 ("one warning shows as many notices"): every batch of one notice, the re-routes
/// of a closed shelter among them, names that notice, and carries its onset.
#[test]
fn re_route_batches_name_the_notice_they_belong_to() {
    let t = town(2000, 30);
    let mut b = book(&t);
    let n = Notice {
        onset: Some(2_200),
        ..notice(Hazard::Tsunami, AlertLevel::Level4, zone1())
    };
    let out = b.issue(n, None).unwrap();
    let id = out.message_id.unwrap();
    assert_eq!(
        (out.batches[0].notice, out.batches[0].onset),
        (id, Some(2_200))
    );
    let busy = out.batches[0]
        .orders
        .iter()
        .find(|o| o.shelter != ShelterId::NONE)
        .unwrap()
        .shelter;
    let moved = b.close_shelter(busy).unwrap();
    assert!(!moved.batches.is_empty());
    for batch in &moved.batches {
        assert_ne!(batch.message_id, id, "a re-route is a message of its own");
        assert_eq!((batch.notice, batch.onset), (id, Some(2_200)), "{batch:?}");
    }
    assert!(
        b.current_batches()
            .iter()
            .all(|c| c.notice == id && c.onset == Some(2_200))
    );
}
