use super::*;
use crate::roads::{Road, Water};

fn p(lon: f64, lat: f64) -> LonLat {
    LonLat::new(lon, lat)
}

/// A ladder: two parallel streets 0.01° of latitude apart (~1.1 km), joined at both ends
/// and in the middle.
fn ladder() -> Vec<Road> {
    let (w, m, e) = (141.90, 141.91, 141.92);
    let (s, n) = (39.60, 39.61);
    vec![
        Road::new(1, vec![p(w, s), p(m, s), p(e, s)]),
        Road::new(2, vec![p(w, n), p(m, n), p(e, n)]),
        Road::new(3, vec![p(w, s), p(w, n)]),
        Road::new(4, vec![p(m, s), p(m, n)]),
        Road::new(5, vec![p(e, s), p(e, n)]),
    ]
}

#[test]
fn roads_meet_at_shared_positions_and_edges_have_lengths() {
    let net = Network::new(&ladder(), &[]);
    assert_eq!((net.nodes().len(), net.edges().len()), (6, 7));
    let e = net.edges()[0];
    assert!((e.length_m - p(141.90, 39.60).distance_m(p(141.91, 39.60))).abs() < 1e-9);
    assert!(net.edges().iter().all(|e| net.component(0)
        == net.component(net.edges().iter().position(|x| x == e).unwrap() as u32)));
}

#[test]
fn a_point_snaps_to_the_nearest_point_of_the_nearest_edge() {
    let net = Network::new(&ladder(), &[]);
    let s = net.snap(p(141.905, 39.6002)).unwrap();
    assert_eq!(net.edges()[s.edge as usize].road, 0);
    assert!((s.t - 0.5).abs() < 1e-6, "{s:?}");
    assert!((s.access_m - 0.0002 * 111_195.0).abs() < 1.0, "{s:?}");
    assert!(Network::new(&[], &[]).snap(p(0.0, 0.0)).is_none());
}

#[test]
fn route_follows_the_streets_and_field_agrees() {
    let net = Network::new(&ladder(), &[]);
    let (from, to) = (p(141.901, 39.60), p(141.919, 39.61));
    let r = net.route(from, to, None).unwrap();
    // Along the south street to the middle rung, up, along the north street.
    let want = from.distance_m(p(141.91, 39.60))
        + p(141.91, 39.60).distance_m(p(141.91, 39.61))
        + p(141.91, 39.61).distance_m(to);
    assert!((r.length_m - want).abs() < 1e-6, "{} vs {want}", r.length_m);
    assert_eq!(r.points.first(), Some(&from));
    assert_eq!(r.points.last(), Some(&to));
    let cost = net.costs(None);
    let field = Field::new(&net, &cost, [(7, net.snap(to).unwrap())]);
    let reach = field.nearest(&net.snap(from).unwrap()).unwrap();
    assert_eq!(reach.source, 7);
    assert!((reach.walk_m - want).abs() < 1e-6);
}

#[test]
fn a_zone_on_the_middle_rung_sends_the_route_round_by_an_outer_one() {
    use crate::hazard::Hazard;
    let zone = Zone {
        id: 1,
        name: "flood".into(),
        hazard: Hazard::Flood,
        area: geo::MultiPolygon(vec![geo::Polygon::new(
            geo::LineString::from(vec![
                (141.909, 39.601),
                (141.911, 39.601),
                (141.911, 39.609),
                (141.909, 39.609),
                (141.909, 39.601),
            ]),
            vec![],
        )]),
    };
    let net = Network::new(&ladder(), &[zone]);
    let rung = net.edges().iter().position(|e| e.road == 3).unwrap();
    assert!(net.edges()[rung].zones.contains(Hazard::Flood));
    let (from, to) = (p(141.909, 39.60), p(141.911, 39.61));
    let dry = net.route(from, to, Some(Hazard::Flood)).unwrap();
    let wet = net.route(from, to, None).unwrap();
    assert!(
        wet.length_m < 1300.0 && dry.length_m > 2500.0,
        "{wet:?} {dry:?}"
    );
    assert_eq!(dry.zone_m, 0.0);
    assert!(!dry.points.contains(&p(141.91, 39.605)));
}

#[test]
fn removing_a_source_hands_its_nodes_to_the_next_nearest() {
    let net = Network::new(&ladder(), &[]);
    let cost = net.costs(None);
    let west = net.snap(p(141.90, 39.605)).unwrap();
    let east = net.snap(p(141.92, 39.605)).unwrap();
    let mut field = Field::new(&net, &cost, [(1, west), (2, east)]);
    let home = net.snap(p(141.902, 39.60)).unwrap();
    assert_eq!(field.nearest(&home).map(|r| r.source), Some(1));
    assert_eq!(
        field.nearest_where(&home, |id| id == 2).map(|r| r.source),
        Some(2)
    );
    let via_where = field.nearest_where(&home, |id| id == 2).unwrap();
    field.remove(1);
    let next = field.nearest(&home).unwrap();
    assert_eq!(next.source, 2);
    assert!((next.walk_m - via_where.walk_m).abs() < 1e-6);
    assert!((next.cost - via_where.cost).abs() < 1e-6);
    field.remove(2);
    assert!(field.nearest(&home).is_none());
}

#[test]
fn pieces_that_do_not_meet_are_different_components() {
    let mut roads = ladder();
    roads.push(Road::new(6, vec![p(141.95, 39.60), p(141.96, 39.60)]));
    let net = Network::new(&roads, &[]);
    let island = net.snap(p(141.955, 39.6)).unwrap();
    let main = net.snap(p(141.905, 39.6)).unwrap();
    assert_ne!(net.component(island.edge), net.component(main.edge));
    assert!(
        net.route(p(141.955, 39.6), p(141.905, 39.6), None)
            .is_none()
    );
    let cost = net.costs(None);
    let field = Field::new(&net, &cost, [(1, main)]);
    assert!(field.nearest(&island).is_none());
    assert!(field.nearest_where(&island, |_| true).is_none());
}

/// A grid of `n` × `n` streets 100 m apart with a few streets missing, so routes bend.
fn grid(n: usize, gaps: &[usize]) -> Vec<Road> {
    let step = 0.0009;
    let mut roads = Vec::new();
    for i in 0..n {
        let (lat, lon) = (39.60 + i as f64 * step, 141.90 + i as f64 * step);
        if !gaps.contains(&i) {
            roads.push(Road::new(
                roads.len() as u32 + 1,
                (0..n).map(|j| p(141.90 + j as f64 * step, lat)).collect(),
            ));
        }
        roads.push(Road::new(
            roads.len() as u32 + 1,
            (0..n).map(|j| p(lon, 39.60 + j as f64 * step)).collect(),
        ));
    }
    roads
}

proptest::proptest! {
    /// After any removals, the guided search finds the nearest source that passes the
    /// test: the least cost over each passing source's own field.
    #[test]
    fn nearest_where_is_the_cheapest_passing_source(
        sources in proptest::collection::vec((0.0f64..1.0, 0.0f64..1.0), 2..12),
        removed in proptest::collection::vec(0usize..12, 0..6),
        homes in proptest::collection::vec((0.0f64..1.0, 0.0f64..1.0), 1..8),
        passing in proptest::collection::vec(proptest::bool::ANY, 12),
        gaps in proptest::collection::vec(0usize..8, 0..3),
        zone in proptest::bool::ANY,
    ) {
        let at = |(x, y): (f64, f64)| p(141.90 + x * 0.0063, 39.60 + y * 0.0063);
        let zones = if zone {
            vec![Zone {
                id: 1,
                name: "shore".into(),
                hazard: crate::hazard::Hazard::Tsunami,
                area: geo::MultiPolygon(vec![geo::Polygon::new(
                    geo::LineString::from(vec![
                        (141.90, 39.60),
                        (141.903, 39.60),
                        (141.903, 39.607),
                        (141.90, 39.607),
                        (141.90, 39.60),
                    ]),
                    vec![],
                )]),
            }]
        } else {
            vec![]
        };
        let net = Network::new(&grid(8, &gaps), &zones);
        let cost = net.costs(Some(crate::hazard::Hazard::Tsunami));
        let snaps: Vec<(u32, Snap)> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, net.snap(at(*s)).unwrap()))
            .collect();
        let mut field = Field::new(&net, &cost, snaps.clone());
        for r in &removed {
            field.remove(*r as u32 + 1);
        }
        let pass = |id: u32| passing[id as usize - 1] && !removed.contains(&(id as usize - 1));
        for h in &homes {
            let home = net.snap(at(*h)).unwrap();
            let want = snaps
                .iter()
                .filter(|(id, _)| pass(*id))
                .filter_map(|(id, s)| {
                    Field::new(&net, &cost, [(*id, *s)]).nearest(&home).map(|r| r.cost)
                })
                .fold(f64::INFINITY, f64::min);
            let got = field.nearest_where(&home, |id| passing[id as usize - 1]);
            match got {
                None => proptest::prop_assert!(want.is_infinite()),
                Some(r) => {
                    proptest::prop_assert!(pass(r.source));
                    proptest::prop_assert!((r.cost - want).abs() < 1e-6, "{} vs {want}", r.cost);
                }
            }
        }
    }
}

proptest::proptest! {
    /// A field kept for answers only answers as the whole field, after removals too, and
    /// for homes on a source's own edge.
    #[test]
    fn a_field_kept_for_answers_answers_as_the_whole_field(
        sources in proptest::collection::vec((0.0f64..1.0, 0.0f64..1.0), 1..6),
        removed in proptest::collection::vec(0usize..6, 0..3),
        homes in proptest::collection::vec((0.0f64..1.0, 0.0f64..1.0), 1..12),
        gaps in proptest::collection::vec(0usize..8, 0..3),
    ) {
        let at = |(x, y): (f64, f64)| p(141.90 + x * 0.0063, 39.60 + y * 0.0063);
        let net = Network::new(&grid(8, &gaps), &[]);
        let cost = net.costs(None);
        let snaps: Vec<(u32, Snap)> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, net.snap(at(*s)).unwrap()))
            .collect();
        let mut field = Field::new(&net, &cost, snaps.clone());
        for r in &removed {
            field.remove(*r as u32 + 1);
        }
        // Homes anywhere, and on the sources' own edges.
        let mut points: Vec<Snap> = homes.iter().map(|h| net.snap(at(*h)).unwrap()).collect();
        points.extend(snaps.iter().map(|(_, s)| Snap { t: (s.t + 0.3) % 1.0, ..*s }));
        let want: Vec<_> = points.iter().map(|h| field.nearest(h)).collect();
        let kept = field.into_nearest();
        let got: Vec<_> = points.iter().map(|h| kept.nearest(h)).collect();
        proptest::prop_assert_eq!(got, want);
    }
}

#[test]
fn a_house_joins_the_road_on_its_own_bank_not_the_nearer_one_across_the_water() {
    // The ladder's two streets are 1.1 km apart; a river runs between them at 39.6098,
    // 22 m south of the north street. A house on the river's south bank, 6 m from the
    // water, is 28 m from the north street, 430 m from the middle rung on its own bank.
    let river = Water {
        id: 1,
        points: vec![p(141.89, 39.6098), p(141.93, 39.6098)],
        osm_id: None,
    };
    let house = p(141.905, 39.60975);
    let dry = Network::new(&ladder(), &[]);
    let wet = Network::new(&ladder(), &[]).with_water(&[river]);
    let north = |net: &Network| net.edges()[net.snap(house).unwrap().edge as usize].road == 1;
    assert!(
        north(&dry),
        "without water the nearest street is across the river"
    );
    let s = wet.snap(house).unwrap();
    assert!(!north(&wet), "{s:?}");
    assert!(
        s.point.lat < 39.6098 && (s.access_m - 428.0).abs() < 5.0,
        "{s:?}"
    );
    // A house on the north bank still joins the north street.
    let s = wet.snap(p(141.905, 39.6099)).unwrap();
    assert_eq!(wet.edges()[s.edge as usize].road, 1);
    // On the water line itself, with every road across water: the nearest after all.
    let island = Network::new(&ladder(), &[]).with_water(&[Water {
        id: 2,
        points: vec![
            p(141.89, 39.5999),
            p(141.93, 39.5999),
            p(141.93, 39.6101),
            p(141.89, 39.6101),
            p(141.89, 39.5999),
        ],
        osm_id: None,
    }]);
    assert!(island.snap(p(141.905, 39.605)).is_some());
}

#[test]
fn segments_meet_when_they_cross_or_touch_only() {
    assert!(segments_meet(
        [0.0, 0.0],
        [2.0, 2.0],
        [0.0, 2.0],
        [2.0, 0.0]
    ));
    assert!(segments_meet(
        [0.0, 0.0],
        [1.0, 1.0],
        [1.0, 1.0],
        [2.0, 0.0]
    ));
    assert!(!segments_meet(
        [0.0, 0.0],
        [1.0, 1.0],
        [2.0, 2.0],
        [3.0, 0.0]
    ));
    assert!(!segments_meet(
        [0.0, 0.0],
        [1.0, 0.0],
        [0.0, 1.0],
        [1.0, 1.0]
    ));
    assert!(segments_meet(
        [0.0, 0.0],
        [2.0, 0.0],
        [1.0, 0.0],
        [3.0, 0.0]
    ));
}
