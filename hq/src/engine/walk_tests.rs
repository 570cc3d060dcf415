//! The engine on foot: routes over the roads, round the hazard's zone, and households the
//! roads cannot bring to a shelter.

use std::collections::HashMap;
use std::sync::Arc;

use evac_maps::{
    AgeBand, Field, GenerateParams, HazardSet, Household, Language, LonLat, Member, Road, Shelter,
    Town, Zone, generate,
};
use evac_protocol::{AlertLevel, Hazard, HouseholdId, ShelterId};

use super::*;
use crate::notice::{Area, Notice};

fn p(lon: f64, lat: f64) -> LonLat {
    LonLat::new(lon, lat)
}

fn household(id: u32, at: LonLat) -> Household {
    Household {
        id,
        location: at,
        address: None,
        language: Language::Japanese,
        members: vec![Member {
            resident: id,
            name: String::new(),
            age_band: AgeBand::Middle,
            needs_help: false,
            cards: vec![],
            kana: String::new(),
            birth: None,
            anpi_consent: false,
        }],
    }
}

fn shelter(id: u32, at: LonLat, capacity: u32) -> Shelter {
    let mut hazards = HazardSet::EMPTY;
    for h in [
        evac_maps::Hazard::Flood,
        evac_maps::Hazard::Earthquake,
        evac_maps::Hazard::Tsunami,
    ] {
        hazards.insert(h);
    }
    Shelter {
        id,
        name: format!("s{id}"),
        address: None,
        location: at,
        capacity,
        floor_area_m2: None,
        hazards,
        accessible: true,
        open: true,
        gsi_id: None,
    }
}

fn road(id: u32, points: &[(f64, f64)]) -> Road {
    Road::new(id, points.iter().map(|(x, y)| p(*x, *y)).collect())
}

fn square(hazard: evac_maps::Hazard, (w, s, e, n): (f64, f64, f64, f64)) -> Zone {
    Zone {
        id: 1,
        name: "z".into(),
        hazard,
        area: geo::MultiPolygon(vec![geo::Polygon::new(
            geo::LineString::from(vec![(w, s), (e, s), (e, n), (w, n), (w, s)]),
            vec![],
        )]),
    }
}

fn whole(hazard: Hazard) -> Notice {
    Notice {
        name: "t".into(),
        hazard,
        level: AlertLevel::Level4,
        area: Area {
            polygons: vec![vec![
                [141.0, 39.0],
                [143.0, 39.0],
                [143.0, 40.0],
                [141.0, 40.0],
                [141.0, 39.0],
            ]],
            ..Area::default()
        },
        issued: 1_000,
        expires: 100_000,
        onset: None,
        effective: None,
        drill: false,
        source: "test".into(),
        cap: None,
    }
}

fn plan(t: &Town, hazard: Hazard) -> (OrderBook, BookChange) {
    let mut b = OrderBook::new(Arc::new(EngineTown::new(t)), "minato".parse().unwrap());
    let out = b.issue(whole(hazard), None).unwrap();
    (b, out)
}

/// Household id -> (shelter id, walk in metres).
fn orders(b: &OrderBook, out: &BookChange) -> HashMap<u32, (u32, Option<u32>)> {
    out.batches
        .iter()
        .flat_map(|x| &x.orders)
        .map(|o| {
            let h = b.town().hh_index[&o.household.0] as usize;
            (
                o.household.0,
                (o.shelter.0, b.assignment(h).and_then(|a| a.walk_m)),
            )
        })
        .collect()
}

/// A river along lat 39.640 with one bridge, at lon 141.930; streets along both banks.
/// Household 1 is on the north bank. Shelter 1 is straight across the water from it;
/// shelter 2 is on the south bank by the bridge, farther as the crow flies.
fn river_town() -> Town {
    Town {
        water: vec![],
        households: vec![household(1, p(141.950, 39.6417))],
        shelters: vec![
            shelter(1, p(141.952, 39.6373), 100),
            shelter(2, p(141.930, 39.6350), 100),
        ],
        zones: vec![],
        roads: vec![
            road(
                1,
                &[(141.920, 39.6415), (141.930, 39.6415), (141.960, 39.6415)],
            ),
            road(
                2,
                &[(141.920, 39.6375), (141.930, 39.6375), (141.960, 39.6375)],
            ),
            Road {
                bridge: true,
                ..road(3, &[(141.930, 39.6415), (141.930, 39.6375)])
            },
            road(4, &[(141.930, 39.6375), (141.930, 39.6350)]),
        ],
    }
}

#[test]
fn households_across_the_river_go_over_the_bridge_not_to_the_shelter_across_the_water() {
    let t = river_town();
    let (home, across, bridge) = (
        t.households[0].location,
        t.shelters[0].location,
        t.shelters[1].location,
    );
    assert!(home.distance_m(across) < 0.3 * home.distance_m(bridge));
    let (b, out) = plan(&t, Hazard::Earthquake);
    let got = orders(&b, &out);
    let (shelter, walk) = got[&1];
    assert_eq!(shelter, 2, "over the bridge");
    // West along the north bank to the bridge, over it, down the lane to the shelter.
    let want = home.distance_m(p(141.950, 39.6415))
        + p(141.950, 39.6415).distance_m(p(141.930, 39.6415))
        + p(141.930, 39.6415).distance_m(p(141.930, 39.6350));
    assert_eq!(walk, Some(want.round() as u32));
    // Without roads the engine could only go by the straight line: across the water.
    let mut flat = t.clone();
    flat.roads.clear();
    let (b, out) = plan(&flat, Hazard::Earthquake);
    assert_eq!(orders(&b, &out)[&1], (1, None));
}

#[test]
fn a_walk_survives_the_store_and_a_restart() {
    let t = river_town();
    let (mut b, out) = plan(&t, Hazard::Earthquake);
    let walk = orders(&b, &out)[&1].1;
    assert!(walk.is_some_and(|m| m > 1000), "{walk:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hq.sqlite");
    // A store made before orders kept their walk: the column is added on open.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE orders (household INTEGER PRIMARY KEY, shelter INTEGER, level INTEGER,
             hazard TEXT, message_id INTEGER, version INTEGER NOT NULL, needs_help INTEGER NOT NULL);
             INSERT INTO orders VALUES (99, 1, 4, 'earthquake', 1, 1, 0);",
        )
        .unwrap();
    let mut store = crate::store::Store::open(&path).unwrap();
    let old = store.orders().unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].walk_m, None);
    let p = b.take_persist();
    store
        .save_orders(&p.notices, &p.rows, &p.log, &p.open)
        .unwrap();
    drop(store);
    let store = crate::store::Store::open(&path).unwrap();
    let notices = p
        .notices
        .iter()
        .map(|(id, j, a)| (*id, serde_json::from_str(j).unwrap(), *a))
        .collect();
    let mut r = OrderBook::new(Arc::new(EngineTown::new(&t)), "minato".parse().unwrap());
    r.restore(notices, &store.orders().unwrap(), &p.open, b.next_message());
    assert_eq!(r.assignment(0).and_then(|a| a.walk_m), walk);
    assert_eq!(r.assignment(0), b.assignment(0));
}

/// Household 1 at the west end of a street that the flood zone covers, shelter 1 at its
/// east end (855 m, all in the zone); a dry street north to shelter 2 (1,112 m).
fn flood_town() -> Town {
    Town {
        water: vec![],
        households: vec![household(1, p(141.900, 39.600))],
        shelters: vec![
            shelter(1, p(141.910, 39.600), 100),
            shelter(2, p(141.900, 39.610), 100),
        ],
        zones: vec![square(
            evac_maps::Hazard::Flood,
            (141.9005, 39.599, 141.911, 39.601),
        )],
        roads: vec![
            road(
                1,
                &[(141.900, 39.600), (141.905, 39.600), (141.910, 39.600)],
            ),
            road(
                2,
                &[(141.900, 39.600), (141.900, 39.605), (141.900, 39.610)],
            ),
        ],
    }
}

#[test]
fn a_flood_sends_households_by_the_dry_road_even_when_the_wet_one_is_shorter() {
    let t = flood_town();
    let (b, out) = plan(&t, Hazard::Flood);
    let (shelter, walk) = orders(&b, &out)[&1];
    assert_eq!(shelter, 2, "by the dry road");
    assert_eq!(
        walk,
        Some(p(141.9, 39.6).distance_m(p(141.9, 39.61)).round() as u32)
    );
    // An earthquake has no zone here: the shorter road.
    let (b, out) = plan(&t, Hazard::Earthquake);
    assert_eq!(orders(&b, &out)[&1].0, 1);
}

#[test]
fn a_household_inside_the_zone_leaves_it_by_the_shortest_way() {
    // A street from 141.900 to 141.915; the zone covers 141.9045 to 141.916. The household
    // is at 141.905: the east shelter (141.915) is nearer, but the whole way is in the zone;
    // the west one (141.900) is 430 m off and the zone ends after 40 m.
    let t = Town {
        water: vec![],
        households: vec![household(1, p(141.905, 39.600))],
        shelters: vec![
            shelter(1, p(141.915, 39.600), 100),
            shelter(2, p(141.8995, 39.600), 100),
        ],
        zones: vec![square(
            evac_maps::Hazard::Tsunami,
            (141.9045, 39.599, 141.916, 39.601),
        )],
        roads: vec![road(
            1,
            &[
                (141.8995, 39.600),
                (141.905, 39.600),
                (141.910, 39.600),
                (141.915, 39.600),
            ],
        )],
    };
    let home = t.households[0].location;
    assert!(home.distance_m(t.shelters[0].location) > home.distance_m(t.shelters[1].location));
    let (b, out) = plan(&t, Hazard::Tsunami);
    assert_eq!(orders(&b, &out)[&1].0, 2);
    // Now the west shelter is 1.5 km away, past the zone's edge: still the way out of it.
    let mut far = t.clone();
    far.shelters[1].location = p(141.887, 39.600);
    far.roads[0].points.insert(0, p(141.887, 39.600));
    let (b, out) = plan(&far, Hazard::Tsunami);
    assert_eq!(orders(&b, &out)[&1].0, 2);
    let (b, out) = plan(&far, Hazard::Earthquake);
    assert_eq!(
        orders(&b, &out)[&1].0,
        1,
        "without the zone, the nearer one"
    );
}

#[test]
fn a_household_the_roads_do_not_connect_to_any_shelter_is_reported_not_sent_straight() {
    let mut t = flood_town();
    // Household 2 lives on a lane that meets no other road, 300 m from shelter 1.
    t.households.push(household(2, p(141.913, 39.601)));
    t.roads
        .push(road(3, &[(141.912, 39.601), (141.914, 39.601)]));
    // Household 3 is connected, but no shelter has room for it once 1 takes the last seat.
    t.households.push(household(3, p(141.9001, 39.6001)));
    for s in &mut t.shelters {
        s.capacity = 1;
    }
    t.shelters[1].open = false;
    let (b, out) = plan(&t, Hazard::Earthquake);
    let got = orders(&b, &out);
    assert_eq!(got[&2], (ShelterId::NONE.0, None));
    assert_eq!(out.unreachable, [HouseholdId(2)]);
    assert_eq!(got[&1].0, 1);
    assert_eq!(got[&3], (ShelterId::NONE.0, None));
    let mut unassigned = out.unassigned.clone();
    unassigned.sort();
    assert_eq!(unassigned, [HouseholdId(2), HouseholdId(3)]);
}

/// The generated town (with roads) in a smaller size, small shelters so they fill.
fn crowded() -> Town {
    let mut t = generate(&GenerateParams {
        households: 2500,
        shelters: 30,
        seed: 11,
    });
    for s in &mut t.shelters {
        s.capacity = 70;
    }
    t
}

#[test]
fn every_household_in_the_polygon_gets_an_open_suitable_shelter_within_capacity_or_none() {
    let t = crowded();
    let et = Arc::new(EngineTown::new(&t));
    assert!(et.walk.is_some());
    let mut b = OrderBook::new(et.clone(), "minato".parse().unwrap());
    // A CAP-style polygon over the coast, tsunami.
    let poly = vec![
        [141.93, 39.60],
        [142.00, 39.60],
        [142.00, 39.69],
        [141.93, 39.69],
        [141.93, 39.60],
    ];
    let mut n = whole(Hazard::Tsunami);
    n.area = Area {
        polygons: vec![poly.clone()],
        ..Area::default()
    };
    let out = b.issue(n, None).unwrap();
    let check = |b: &OrderBook, closed: Option<u32>| {
        let ring = geo::Polygon::new(
            geo::LineString::from(poly.iter().map(|[x, y]| (*x, *y)).collect::<Vec<_>>()),
            vec![],
        );
        let mut load: HashMap<u32, u32> = HashMap::new();
        for (i, h) in t.households.iter().enumerate() {
            use geo::Contains;
            let inside = ring.contains(&geo::Point::new(h.location.lon, h.location.lat));
            let a = b.assignment(i);
            assert_eq!(a.is_some(), inside, "household {}", h.id);
            let Some(a) = a else { continue };
            let Some(s) = a.shelter else {
                assert_eq!(a.walk_m, None);
                continue;
            };
            let sh = &t.shelters[s as usize];
            assert!(sh.open && Some(sh.id) != closed && sh.suits(evac_maps::Hazard::Tsunami));
            let walk = f64::from(a.walk_m.expect("a walk for every shelter order"));
            assert!(
                walk + 1.0 >= h.location.distance_m(sh.location),
                "household {}",
                h.id
            );
            *load.entry(sh.id).or_default() += h.members.len() as u32;
        }
        for (s, people) in load {
            assert!(
                people <= t.shelter(s).unwrap().capacity,
                "shelter {s}: {people}"
            );
        }
    };
    check(&b, None);
    assert!(
        !out.unassigned.is_empty(),
        "the test needs shelters that fill"
    );
    assert!(
        out.unreachable.is_empty(),
        "the generated town is connected"
    );
    // Close the busiest shelter: its households go elsewhere, the rules still hold.
    let busiest = (0..et.shelters()).max_by_key(|s| b.expected()[*s]).unwrap();
    let mut closed = b.clone();
    closed.close_shelter(ShelterId(et.sh_id[busiest])).unwrap();
    check(&closed, Some(et.sh_id[busiest]));
}

#[test]
fn fields_give_the_same_orders_as_a_search_per_shelter() {
    // The naive walking baseline: each household, in priority order, takes the shelter
    // with the lowest route cost among those with room, each cost from its own
    // single-shelter field (no removal, no repair).
    let t = crowded();
    let et = EngineTown::new(&t);
    let walk = et.walk.as_ref().unwrap();
    let hazard = Hazard::Tsunami;
    let cost = walk.net.costs(Some(maps_hazard(hazard)));
    let suitable: Vec<usize> = (0..et.shelters())
        .filter(|s| et.suits(*s, hazard))
        .collect();
    let singles: Vec<(usize, Field<'_>)> = suitable
        .iter()
        .map(|&s| {
            (
                s,
                Field::new(&walk.net, &cost, [(s as u32, walk.sh_snap[s])]),
            )
        })
        .collect();
    let mut order: Vec<u32> = (0..et.households() as u32).collect();
    order.sort_by_key(|h| et.priority(*h));
    let mut load = vec![0u32; et.shelters()];
    let mut want: HashMap<u32, u32> = HashMap::new();
    for h in order {
        let (hi, size) = (h as usize, et.hh_size[h as usize]);
        let best = |accessible_only: bool, load: &[u32]| {
            singles
                .iter()
                .filter(|(s, _)| !accessible_only || et.sh_access[*s])
                .filter(|(s, _)| et.sh_cap[*s].saturating_sub(load[*s]) >= size)
                .filter_map(|(s, f)| f.nearest(&walk.hh_snap[hi]).map(|r| (r.cost, *s)))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, s)| s)
        };
        let pick = if et.hh_help[hi] {
            best(true, &load).or_else(|| best(false, &load))
        } else {
            best(false, &load)
        };
        if let Some(s) = pick {
            load[s] += size;
        }
        want.insert(et.hh_id[hi], pick.map_or(0, |s| et.sh_id[s]));
    }
    let (b, out) = plan(&t, hazard);
    let got = orders(&b, &out);
    let differ: Vec<_> = want
        .iter()
        .filter(|(h, s)| got.get(h).map(|g| g.0) != Some(**s))
        .collect();
    assert!(
        differ.is_empty(),
        "{} differ: {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    assert!(
        want.values().filter(|s| **s == 0).count() > 100,
        "shelters must fill"
    );
}
