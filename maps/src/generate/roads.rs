//! The synthetic town's roads: a street grid in each village, a coastal road, roads
//! inland between the villages, a road along the river's south bank, a path along each
//! bank by the water, and a river that only four bridges cross (the coastal road's at the
//! mouth, one in 本町, one in 川井, one on the inland road). The river's course is a
//! water line, so no house joins the road on the far bank.
//!
//! Streets are a jittered grid about 90 m apart: walking between two points of a
//! village is about 4/π ≈ 1.27 times the straight line, and much more when the river
//! is between them. A town of more than 3,000 households gets denser streets (spacing
//! shrinking with the square root of the households, down to 15 m), so a big town has a
//! network of a big town's size. Roads share a position wherever they meet, as OSM ways
//! share a node.

use super::{Prng, geography};
use crate::model::LonLat;
use crate::roads::{Road, Water};
use geography::{M_PER_DEG_LAT, M_PER_DEG_LON, Village, coast_lon, river_lat};

/// Grid spacing of village streets, metres, up to [`DENSE_FROM`] households.
const STREET_M: f64 = 90.0;
/// The number of households above which streets get denser.
const DENSE_FROM: f64 = 3000.0;
/// The closest street spacing, metres.
const STREET_MIN_M: f64 = 15.0;
/// Sample spacing along the roads between villages, metres.
const ROAD_STEP_M: f64 = 100.0;
/// No street node closer to the river than this, metres.
const RIVER_CLEAR_M: f64 = 25.0;

/// Sample spacing along the river's course, metres.
const RIVER_STEP_M: f64 = 50.0;

/// The river's course from the town's western edge to the sea, as one water line.
pub(super) fn water() -> Vec<Water> {
    let (west, mouth) = (geography::LON_MIN, coast_lon(39.640));
    let n = ((mouth - west) * M_PER_DEG_LON / RIVER_STEP_M)
        .ceil()
        .max(1.0) as usize;
    let points = (0..=n)
        .map(|i| {
            let lon = west + (mouth - west) * i as f64 / n as f64;
            round6(LonLat::new(lon, river_lat(lon)))
        })
        .collect();
    vec![Water {
        id: 1,
        points,
        osm_id: None,
    }]
}

fn round6(p: LonLat) -> LonLat {
    LonLat::new((p.lon * 1e6).round() / 1e6, (p.lat * 1e6).round() / 1e6)
}

/// Which bank of the river a point is on (true: north).
fn north_bank(p: LonLat) -> bool {
    p.lat > river_lat(p.lon)
}

fn near_river(p: LonLat) -> bool {
    (p.lat - river_lat(p.lon)).abs() * M_PER_DEG_LAT < RIVER_CLEAR_M
}

/// One village's street grid: nodes by (column, row), `None` where there is none.
struct Grid {
    k: i32,
    centre: LonLat,
    spacing: f64,
    nodes: Vec<Option<LonLat>>,
    /// The column whose crossing of the river is a bridge, if the grid has one.
    bridge_col: Option<i32>,
    /// Every this many columns from `bridge_col` is a bridge too (a city's grid).
    bridge_every: i32,
    /// The nodes moved back from the water, on the bank paths: (north bank, position).
    bank: Vec<(bool, LonLat)>,
}

impl Grid {
    fn at(&self, i: i32, j: i32) -> Option<LonLat> {
        if i.abs() > self.k || j.abs() > self.k {
            return None;
        }
        let w = 2 * self.k + 1;
        self.nodes[((j + self.k) * w + i + self.k) as usize]
    }
}

fn grid(rng: &mut Prng, v: &Village, bridge: bool, spacing: f64) -> Grid {
    let reach = 2.0 * v.spread_m;
    let k = (reach / spacing).ceil() as i32;
    let mut nodes = Vec::new();
    let mut bank = Vec::new();
    for j in -k..=k {
        for i in -k..=k {
            let jitter = 20.0 * spacing / STREET_M;
            let (jx, jy) = ((rng.f64() - 0.5) * jitter, (rng.f64() - 0.5) * jitter);
            let (x, y) = (f64::from(i) * spacing, f64::from(j) * spacing);
            let mut p = LonLat::new(
                v.centre.lon + (x + jx) / M_PER_DEG_LON,
                v.centre.lat + (y + jy) / M_PER_DEG_LAT,
            );
            // A node by the river moves back from the water onto its bank's path.
            let by_river = near_river(p);
            if by_river {
                p = bank_point(p.lon, north_bank(p));
            }
            let p = round6(p);
            let keep = x * x + y * y <= reach * reach && geography::on_land(p);
            if keep && by_river {
                bank.push((north_bank(p), p));
            }
            nodes.push(keep.then_some(p));
        }
    }
    Grid {
        k,
        centre: v.centre,
        spacing,
        nodes,
        bridge_col: bridge.then_some(0),
        bridge_every: i32::MAX,
        bank,
    }
}

/// The point of a bank's path at `lon`: [`RIVER_CLEAR_M`] from the river's centre line.
fn bank_point(lon: f64, north: bool) -> LonLat {
    let side = if north { 1.0 } else { -1.0 };
    LonLat::new(lon, river_lat(lon) + side * RIVER_CLEAR_M / M_PER_DEG_LAT)
}

/// Cuts a run of grid positions into roads: a street stops where a node is missing or
/// the river is in the way; the one crossing a bridge column makes gets its own road.
fn streets(g: &Grid, vertical: bool, out: &mut Vec<Road>) {
    for a in -g.k..=g.k {
        let mut run: Vec<LonLat> = Vec::new();
        let flush = |run: &mut Vec<LonLat>, out: &mut Vec<Road>| {
            if run.len() >= 2 {
                out.push(Road::new(0, std::mem::take(run)));
            }
            run.clear();
        };
        for b in -g.k..=g.k {
            let (i, j) = if vertical { (a, b) } else { (b, a) };
            let Some(p) = g.at(i, j) else {
                flush(&mut run, out);
                continue;
            };
            if let Some(&q) = run.last()
                && north_bank(q) != north_bank(p)
            {
                flush(&mut run, out);
                if vertical && g.bridge_col.is_some_and(|c| (a - c) % g.bridge_every == 0) {
                    out.push(Road {
                        bridge: true,
                        ..Road::new(0, vec![q, p])
                    });
                }
            }
            run.push(p);
        }
        flush(&mut run, out);
    }
}

/// Positions every [`ROAD_STEP_M`] along the polyline through `waypoints` (each waypoint
/// kept exactly).
fn sample(waypoints: &[LonLat]) -> Vec<LonLat> {
    let mut out = vec![round6(waypoints[0])];
    for w in waypoints.windows(2) {
        let n = (w[0].distance_m(w[1]) / ROAD_STEP_M).ceil().max(1.0) as usize;
        for s in 1..=n {
            let t = s as f64 / n as f64;
            out.push(round6(LonLat::new(
                w[0].lon + (w[1].lon - w[0].lon) * t,
                w[0].lat + (w[1].lat - w[0].lat) * t,
            )));
        }
    }
    out
}

/// Where segments `p1 p2` and `q1 q2` cross, if they do.
fn crossing(p1: LonLat, p2: LonLat, q1: LonLat, q2: LonLat) -> Option<(LonLat, f64, f64)> {
    let (rx, ry) = (p2.lon - p1.lon, p2.lat - p1.lat);
    let (sx, sy) = (q2.lon - q1.lon, q2.lat - q1.lat);
    let den = rx * sy - ry * sx;
    if den.abs() < 1e-18 {
        return None;
    }
    let (qx, qy) = (q1.lon - p1.lon, q1.lat - p1.lat);
    let t = (qx * sy - qy * sx) / den;
    let u = (qx * ry - qy * rx) / den;
    ((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u))
        .then(|| (round6(LonLat::new(p1.lon + rx * t, p1.lat + ry * t)), t, u))
}

/// Makes two roads meet where they cross: each crossing point goes into both.
fn join(a: &mut Vec<LonLat>, b: &mut Vec<LonLat>) {
    let mut xa: Vec<(usize, f64, LonLat)> = Vec::new();
    let mut xb: Vec<(usize, f64, LonLat)> = Vec::new();
    for i in 0..a.len().saturating_sub(1) {
        for j in 0..b.len().saturating_sub(1) {
            if let Some((x, t, u)) = crossing(a[i], a[i + 1], b[j], b[j + 1]) {
                xa.push((i, t, x));
                xb.push((j, u, x));
            }
        }
    }
    for (line, mut xs) in [(a, xa), (b, xb)] {
        xs.sort_by(|p, q| q.0.cmp(&p.0).then(q.1.total_cmp(&p.1)));
        for (i, _, x) in xs {
            if !line.contains(&x) {
                line.insert(i + 1, x);
            }
        }
    }
}

/// Moves a road's positions that fall near a village street node onto it (same bank
/// only), so the road meets the streets it runs through.
fn meet_streets(line: &mut Vec<LonLat>, grids: &[Grid]) {
    for p in line.iter_mut() {
        let mut best: Option<(f64, LonLat)> = None;
        for g in grids {
            let tol = 0.75 * g.spacing;
            // The nearest node is next to the grid position nearest to p (jitter is small).
            let i0 = ((p.lon - g.centre.lon) * M_PER_DEG_LON / g.spacing).round() as i32;
            let j0 = ((p.lat - g.centre.lat) * M_PER_DEG_LAT / g.spacing).round() as i32;
            let near = (-1..=1).flat_map(|di| (-1..=1).map(move |dj| (i0 + di, j0 + dj)));
            for q in near.filter_map(|(i, j)| g.at(i, j)) {
                let d = p.distance_m(q);
                if d < tol && north_bank(*p) == north_bank(q) && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, q));
                }
            }
        }
        if let Some((_, q)) = best {
            *p = q;
        }
    }
    line.dedup();
}

/// Splits a road where it crosses the river: the crossing segment becomes a bridge.
fn with_bridges(line: Vec<LonLat>, out: &mut Vec<Road>) {
    let mut run: Vec<LonLat> = Vec::new();
    for p in line {
        if let Some(&q) = run.last()
            && north_bank(q) != north_bank(p)
        {
            if run.len() >= 2 {
                out.push(Road::new(0, std::mem::take(&mut run)));
            }
            out.push(Road {
                bridge: true,
                ..Road::new(0, vec![q, p])
            });
            run.clear();
        }
        run.push(p);
    }
    if run.len() >= 2 {
        out.push(Road::new(0, run));
    }
}

/// A path along each bank, [`RIVER_CLEAR_M`] from the water, through the street nodes the
/// grids moved back from it (so it meets their streets), from the mouth to the town's edge.
fn bank_paths(grids: &[Grid]) -> Vec<Vec<LonLat>> {
    let mouth = coast_lon(39.640) - 0.0008;
    let mut banks = Vec::new();
    for north in [true, false] {
        let mut path: Vec<LonLat> = (0..=100)
            .map(|k| {
                let lon = mouth + (geography::LON_MIN + 0.001 - mouth) * f64::from(k) / 100.0;
                round6(bank_point(lon, north))
            })
            .chain(
                grids
                    .iter()
                    .flat_map(|g| g.bank.iter())
                    .filter(|(n, _)| *n == north)
                    .map(|(_, p)| *p),
            )
            .collect();
        path.sort_by(|a, b| b.lon.total_cmp(&a.lon));
        path.dedup_by(|a, b| a.lon == b.lon);
        banks.push(path);
    }
    banks
}

/// The town's roads, numbered from 1.
pub fn roads(seed: u64, households: u32, villages: &[Village]) -> Vec<Road> {
    let mut rng = Prng::new(seed, "roads");
    let spacing = (STREET_M * (DENSE_FROM / f64::from(households.max(1))).sqrt())
        .clamp(STREET_MIN_M, STREET_M);
    // Villages on the river (本町, 川井) get one bridge each, in their middle column.
    let grids: Vec<Grid> = villages
        .iter()
        .map(|v| {
            let straddles =
                (v.centre.lat - river_lat(v.centre.lon)).abs() * M_PER_DEG_LAT < v.spread_m;
            grid(&mut rng, v, straddles, spacing)
        })
        .collect();
    let mut out = Vec::new();
    for g in &grids {
        streets(g, false, &mut out);
        streets(g, true, &mut out);
    }

    let coast_road = |lat: f64| LonLat::new(coast_lon(lat) - 0.0025, lat);
    let centre = |i: usize| villages[i].centre;
    let lats = |from: f64, to: f64, n: usize| -> Vec<f64> {
        (0..=n)
            .map(|k| from + (to - from) * k as f64 / n as f64)
            .collect()
    };
    let mut lines: Vec<Vec<LonLat>> = Vec::new();
    // The coastal road, following the shore about 200 m inland.
    lines.push(sample(
        &lats(geography::LAT_MIN + 0.001, geography::LAT_MAX - 0.001, 100)
            .into_iter()
            .map(coast_road)
            .collect::<Vec<_>>(),
    ));
    // Roads inland start just seaward of the coastal road, so that they cross it.
    let seaward = |lat: f64| LonLat::new(coast_lon(lat) - 0.0018, lat);
    // South: 南浦 - 中里 - 上野 - the hills.
    lines.push(sample(&[
        seaward(centre(2).lat),
        centre(2),
        centre(5),
        centre(6),
        LonLat::new(geography::LON_MIN + 0.002, centre(6).lat + 0.002),
    ]));
    // North: 北浜 - 汐見台 - 奥沢 - the hills.
    lines.push(sample(&[
        seaward(centre(1).lat),
        centre(1),
        centre(3),
        centre(7),
        LonLat::new(geography::LON_MIN + 0.002, centre(7).lat),
    ]));
    // Along the south bank, 250 m from the river: 本町 - 川井 - the inland road.
    let bank: Vec<LonLat> = (0..=30)
        .map(|k| {
            let lon = centre(0).lon + (141.903 - centre(0).lon) * f64::from(k) / 30.0;
            LonLat::new(lon, river_lat(lon) - 250.0 / M_PER_DEG_LAT)
        })
        .collect();
    lines.push(sample(&bank));
    // A path along each bank, 25 m from the water: people by the river walk on their own
    // bank (the network knows no water, so a house by the river must have a road on its
    // side nearer than the one across).
    // It runs through the street nodes moved back from the water, so it meets the streets.
    let banks = bank_paths(&grids);
    // Inland, north to south, crossing the river once.
    lines.push(sample(&[
        LonLat::new(141.905, geography::LAT_MIN + 0.002),
        LonLat::new(141.903, geography::LAT_MAX - 0.002),
    ]));
    // 中里 up to 本町's bank road, 汐見台 down to the river at 川井.
    lines.push(sample(&[
        centre(5),
        LonLat::new(141.948, river_lat(141.948) - 150.0 / M_PER_DEG_LAT),
    ]));
    lines.push(sample(&[
        centre(3),
        LonLat::new(141.930, river_lat(141.930) + 0.004),
    ]));
    // The bank paths already meet the streets; the other roads are moved onto them.
    let roads_from = lines.len();
    lines.extend(banks);
    for a in 0..lines.len() {
        for b in a + 1..lines.len() {
            let (left, right) = lines.split_at_mut(b);
            join(&mut left[a], &mut right[0]);
        }
    }
    for (i, mut line) in lines.into_iter().enumerate() {
        if i < roads_from {
            meet_streets(&mut line, &grids);
        }
        with_bridges(line, &mut out);
    }
    largest_piece(out)
}

/// The roads of the largest connected piece, numbered from 1.
fn largest_piece(out: Vec<Road>) -> Vec<Road> {
    // Keep the largest connected piece: a street cut off by the shore or the river
    // would leave its households with no way out.
    let net = crate::network::Network::new(&out, &[]);
    let mut size: foldhash::HashMap<u32, usize> = foldhash::HashMap::default();
    for e in 0..net.edges().len() as u32 {
        *size.entry(net.component(e)).or_default() += 1;
    }
    let main = size
        .iter()
        .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
        .map(|(c, _)| *c);
    let mut kept = Vec::with_capacity(out.len());
    let mut edge = 0u32;
    for r in out {
        let segments = r.points.windows(2).filter(|w| w[0] != w[1]).count() as u32;
        let in_main = segments > 0 && Some(net.component(edge)) == main;
        edge += segments;
        if in_main {
            kept.push(r);
        }
    }
    for (i, r) in kept.iter_mut().enumerate() {
        r.id = i as u32 + 1;
    }
    kept
}

/// Street spacing of the city's grid, metres.
pub(super) const CITY_STREET_M: f64 = 80.0;
/// A bridge every this many streets across the river in the city (every 480 m).
const CITY_BRIDGE_EVERY: i32 = 6;

/// The city's roads, numbered from 1: one jittered street grid [`CITY_STREET_M`] apart over
/// the whole land, cut by the river except at a bridge every [`CITY_BRIDGE_EVERY`] streets,
/// with a path along each bank.
pub(super) fn city_roads(seed: u64) -> Vec<Road> {
    let mut rng = Prng::new(seed, "city roads");
    let (lat_mid, lon_mid) = (
        (geography::LAT_MIN + geography::LAT_MAX) / 2.0,
        (geography::LON_MIN + coast_lon(geography::LAT_MIN)) / 2.0,
    );
    let half_w = (coast_lon(geography::LAT_MIN) + 0.01 - lon_mid) * M_PER_DEG_LON;
    let half_h = (geography::LAT_MAX - lat_mid) * M_PER_DEG_LAT;
    // `grid` keeps the nodes within twice the spread of the centre: the whole rectangle.
    let whole = Village {
        name: "",
        centre: LonLat::new(lon_mid, lat_mid),
        spread_m: half_w.hypot(half_h) / 2.0,
        weight: 1,
        coastal: false,
    };
    let mut g = grid(&mut rng, &whole, true, CITY_STREET_M);
    g.bridge_every = CITY_BRIDGE_EVERY;
    let mut out = Vec::new();
    streets(&g, false, &mut out);
    streets(&g, true, &mut out);
    let grids = [g];
    for line in bank_paths(&grids) {
        with_bridges(line, &mut out);
    }
    largest_piece(out)
}
