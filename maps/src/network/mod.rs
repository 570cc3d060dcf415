//! [`Network`]: the town's roads as a walking graph, and where a point joins it.
//!
//! Nodes are the roads' positions (two roads meet where they share a position exactly);
//! edges are the segments between consecutive positions of a road, undirected, with their
//! length and flags (bridge, steps, and the hazards whose zones they run through). A point
//! (a household, a shelter) joins the network at the nearest point of the nearest edge
//! that it reaches without crossing water ([`Network::with_water`]): its [`Snap`]. [`Field`] and [`Network::route`] find walking routes over it.
//!
//! Routes avoid a hazard's zones where another route exists: a metre walked inside a
//! zone of the hazard weighs [`ZONE_WEIGHT`] metres, so the cheapest route from a point
//! inside the zone leaves it by about the shortest way, and a route from outside goes
//! round a zone unless the way round is many times longer.

mod search;

use rstar::RTree;
use rstar::primitives::{GeomWithData, Line};

use crate::hazard::{Hazard, HazardSet};
use crate::model::{EARTH_RADIUS_M, LonLat, Zone};
use crate::roads::{Road, Water};

pub use search::{Field, Nearest, Reach, Route};

/// How many of the nearest edges a point tries before it joins the nearest one across
/// water after all (a house with no road on its side of the water within reach).
const SNAP_TRIES: usize = 64;

/// How much a metre walked inside the hazard's zone weighs against a metre outside it.
pub const ZONE_WEIGHT: f64 = 10.0;

/// The longest stretch of an edge judged by one sample point when measuring how much of
/// it lies inside a zone, in metres.
const ZONE_SAMPLE_M: f64 = 20.0;

/// One segment of a road, between two nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// One end (node index).
    pub a: u32,
    /// The other end (node index).
    pub b: u32,
    /// Length in metres.
    pub length_m: f64,
    /// The road it belongs to (index in the roads given to [`Network::new`]).
    pub road: u32,
    /// Part of a bridge.
    pub bridge: bool,
    /// Part of a flight of steps.
    pub steps: bool,
    /// The hazards with a zone that this edge runs through (some of it inside).
    pub zones: HazardSet,
}

/// Where a point joins the network: the nearest point of the nearest edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// The edge (index).
    pub edge: u32,
    /// Where on the edge: 0 at its end `a`, 1 at its end `b`.
    pub t: f64,
    /// The straight walk from the point to the road, in metres.
    pub access_m: f64,
    /// The point on the road.
    pub point: LonLat,
}

/// The town's walking network. Build it once ([`Network::new`]) and keep it while the
/// roads and zones do not change.
#[derive(Debug, Clone)]
pub struct Network {
    nodes: Vec<LonLat>,
    edges: Vec<Edge>,
    /// Adjacency in compressed rows: the arcs of node `n` are `arcs[first[n]..first[n + 1]]`.
    first: Vec<u32>,
    arcs: Vec<(u32, u32)>,
    component: Vec<u32>,
    /// Metres of each edge inside the zones of a hazard, for each hazard that has zones.
    zone_m: Vec<(Hazard, Vec<f32>)>,
    tree: RTree<GeomWithData<Line<[f64; 2]>, u32>>,
    /// The segments of the water lines, in the same local metres as `tree`.
    water: RTree<Line<[f64; 2]>>,
    origin: LonLat,
    m_per_deg_lon: f64,
}

const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

impl Network {
    /// Builds the network of `roads`, with each edge's share of each hazard's `zones`.
    pub fn new(roads: &[Road], zones: &[Zone]) -> Network {
        let mut index: foldhash::HashMap<(u64, u64), u32> = foldhash::HashMap::default();
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for (r, road) in roads.iter().enumerate() {
            let mut prev: Option<(u32, LonLat)> = None;
            for &p in &road.points {
                let key = (p.lon.to_bits(), p.lat.to_bits());
                let n = *index.entry(key).or_insert_with(|| {
                    nodes.push(p);
                    (nodes.len() - 1) as u32
                });
                if let Some((m, q)) = prev
                    && m != n
                {
                    edges.push(Edge {
                        a: m,
                        b: n,
                        length_m: q.distance_m(p),
                        road: r as u32,
                        bridge: road.bridge,
                        steps: road.steps,
                        zones: HazardSet::EMPTY,
                    });
                }
                prev = Some((n, p));
            }
        }
        let (first, arcs) = adjacency(nodes.len(), &edges);
        let component = components(nodes.len(), &first, &arcs);
        let origin = nodes.first().copied().unwrap_or_default();
        let mut net = Network {
            m_per_deg_lon: M_PER_DEG * origin.lat.to_radians().cos(),
            origin,
            nodes,
            edges,
            first,
            arcs,
            component,
            zone_m: Vec::new(),
            tree: RTree::new(),
            water: RTree::new(),
        };
        net.tree = RTree::bulk_load(
            net.edges
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let (a, b) = (
                        net.xy(net.nodes[e.a as usize]),
                        net.xy(net.nodes[e.b as usize]),
                    );
                    GeomWithData::new(Line::new(a, b), i as u32)
                })
                .collect(),
        );
        net.measure_zones(zones);
        net
    }

    fn measure_zones(&mut self, zones: &[Zone]) {
        use geo::{BoundingRect, Contains};
        for hazard in Hazard::ALL {
            let areas: Vec<(geo::Rect<f64>, &geo::Polygon<f64>)> = zones
                .iter()
                .filter(|z| z.hazard == hazard)
                .flat_map(|z| z.area.0.iter())
                .filter_map(|p| p.bounding_rect().map(|r| (r, p)))
                .collect();
            if areas.is_empty() {
                continue;
            }
            let inside = |p: LonLat| {
                areas.iter().any(|(r, poly)| {
                    p.lon >= r.min().x
                        && p.lon <= r.max().x
                        && p.lat >= r.min().y
                        && p.lat <= r.max().y
                        && poly.contains(&geo::Point::new(p.lon, p.lat))
                })
            };
            let mut metres = vec![0f32; self.edges.len()];
            for (i, e) in self.edges.iter_mut().enumerate() {
                let (a, b) = (self.nodes[e.a as usize], self.nodes[e.b as usize]);
                let n = (e.length_m / ZONE_SAMPLE_M).ceil().max(1.0) as usize;
                let hits = (0..n)
                    .filter(|k| inside(lerp(a, b, (*k as f64 + 0.5) / n as f64)))
                    .count();
                if hits > 0 {
                    e.zones.insert(hazard);
                    metres[i] = (e.length_m * hits as f64 / n as f64) as f32;
                }
            }
            self.zone_m.push((hazard, metres));
        }
    }

    /// The nodes' positions.
    pub fn nodes(&self) -> &[LonLat] {
        &self.nodes
    }

    /// The edges.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Whether the network has no edge (a town without roads).
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// The edges at node `n`: (other end, edge index).
    pub fn arcs(&self, n: u32) -> &[(u32, u32)] {
        let n = n as usize;
        &self.arcs[self.first[n] as usize..self.first[n + 1] as usize]
    }

    /// The connected piece of the network an edge belongs to (a number; equal numbers,
    /// same piece).
    pub fn component(&self, edge: u32) -> u32 {
        self.component[self.edges[edge as usize].a as usize]
    }

    /// Metres of edge `edge` inside the zones of `hazard`.
    pub fn zone_m(&self, edge: u32, hazard: Hazard) -> f64 {
        self.zone_m
            .iter()
            .find(|(h, _)| *h == hazard)
            .map_or(0.0, |(_, m)| f64::from(m[edge as usize]))
    }

    /// The cost of walking each edge when avoiding `avoid`'s zones: its length, plus
    /// ([`ZONE_WEIGHT`] − 1) times its metres inside them. Without a hazard, the length.
    pub fn costs(&self, avoid: Option<Hazard>) -> Vec<f64> {
        let zone = avoid.and_then(|h| self.zone_m.iter().find(|(z, _)| *z == h));
        self.edges
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.length_m + zone.map_or(0.0, |(_, m)| (ZONE_WEIGHT - 1.0) * f64::from(m[i]))
            })
            .collect()
    }

    /// The network with `water`: a point joins the nearest road it reaches without
    /// crossing a water line, not the road across the river.
    pub fn with_water(mut self, water: &[Water]) -> Network {
        self.water = RTree::bulk_load(
            water
                .iter()
                .flat_map(|w| w.points.windows(2))
                .map(|s| Line::new(self.xy(s[0]), self.xy(s[1])))
                .collect(),
        );
        self
    }

    /// Where `p` joins the network: the nearest point of the nearest edge whose way from
    /// `p` crosses no water line; when the nearest edges all lie across water, the nearest
    /// of all. None for a network without edges.
    pub fn snap(&self, p: LonLat) -> Option<Snap> {
        let q = self.xy(p);
        let mut first = None;
        for found in self.tree.nearest_neighbor_iter(q).take(SNAP_TRIES) {
            let snap = self.snap_to(found.data, p, q);
            if !self.crosses_water(q, self.xy(snap.point)) {
                return Some(snap);
            }
            first.get_or_insert(snap);
        }
        first
    }

    /// Whether the straight line from `a` to `b` (local metres) crosses or touches water.
    fn crosses_water(&self, a: [f64; 2], b: [f64; 2]) -> bool {
        if self.water.size() == 0 {
            return false;
        }
        let env = rstar::AABB::from_corners(a, b);
        self.water
            .locate_in_envelope_intersecting(env)
            .any(|w| segments_meet(a, b, w.from, w.to))
    }

    /// `p` (at `q` in local metres) joined to edge `edge` at its nearest point.
    fn snap_to(&self, edge: u32, p: LonLat, q: [f64; 2]) -> Snap {
        let e = &self.edges[edge as usize];
        let (a, b) = (self.nodes[e.a as usize], self.nodes[e.b as usize]);
        let (pa, pb) = (self.xy(a), self.xy(b));
        let (dx, dy) = (pb[0] - pa[0], pb[1] - pa[1]);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (((q[0] - pa[0]) * dx + (q[1] - pa[1]) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let point = lerp(a, b, t);
        Snap {
            edge,
            t,
            access_m: p.distance_m(point),
            point,
        }
    }

    /// Local metres east and north of the network's origin (equirectangular: exact
    /// enough within a town to find the nearest edge).
    fn xy(&self, p: LonLat) -> [f64; 2] {
        [
            (p.lon - self.origin.lon) * self.m_per_deg_lon,
            (p.lat - self.origin.lat) * M_PER_DEG,
        ]
    }
}

/// The point a fraction `t` of the way from `a` to `b` (straight in degrees: edges are
/// short).
fn lerp(a: LonLat, b: LonLat, t: f64) -> LonLat {
    LonLat::new(a.lon + (b.lon - a.lon) * t, a.lat + (b.lat - a.lat) * t)
}

/// Whether segments `a`-`b` and `c`-`d` have a point in common (touching counts).
fn segments_meet(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let cross = |o: [f64; 2], p: [f64; 2], q: [f64; 2]| {
        (p[0] - o[0]) * (q[1] - o[1]) - (p[1] - o[1]) * (q[0] - o[0])
    };
    let within = |o: [f64; 2], p: [f64; 2], q: [f64; 2]| {
        q[0] >= o[0].min(p[0])
            && q[0] <= o[0].max(p[0])
            && q[1] >= o[1].min(p[1])
            && q[1] <= o[1].max(p[1])
    };
    let (d1, d2) = (cross(c, d, a), cross(c, d, b));
    let (d3, d4) = (cross(a, b, c), cross(a, b, d));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    (d1 == 0.0 && within(c, d, a))
        || (d2 == 0.0 && within(c, d, b))
        || (d3 == 0.0 && within(a, b, c))
        || (d4 == 0.0 && within(a, b, d))
}

fn adjacency(n: usize, edges: &[Edge]) -> (Vec<u32>, Vec<(u32, u32)>) {
    let mut degree = vec![0u32; n + 1];
    for e in edges {
        degree[e.a as usize + 1] += 1;
        degree[e.b as usize + 1] += 1;
    }
    for i in 1..=n {
        degree[i] += degree[i - 1];
    }
    let first = degree;
    let mut fill = first.clone();
    let mut arcs = vec![(0u32, 0u32); 2 * edges.len()];
    for (i, e) in edges.iter().enumerate() {
        arcs[fill[e.a as usize] as usize] = (e.b, i as u32);
        fill[e.a as usize] += 1;
        arcs[fill[e.b as usize] as usize] = (e.a, i as u32);
        fill[e.b as usize] += 1;
    }
    (first, arcs)
}

fn components(n: usize, first: &[u32], arcs: &[(u32, u32)]) -> Vec<u32> {
    let mut comp = vec![u32::MAX; n];
    let mut stack = Vec::new();
    for start in 0..n {
        if comp[start] != u32::MAX {
            continue;
        }
        comp[start] = start as u32;
        stack.push(start);
        while let Some(u) = stack.pop() {
            for &(v, _) in &arcs[first[u] as usize..first[u + 1] as usize] {
                if comp[v as usize] == u32::MAX {
                    comp[v as usize] = start as u32;
                    stack.push(v as usize);
                }
            }
        }
    }
    comp
}

#[cfg(test)]
mod tests;
