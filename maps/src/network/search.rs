//! Shortest walks over a [`Network`]: [`Field`] (every point's nearest source, for the
//! order engine) and [`Network::route`] (one route with its geometry, for a TV or a drill).

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::{Network, Snap};
use crate::hazard::Hazard;
use crate::model::LonLat;

/// A source found from a point: which, at what cost, and how far on foot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// The source's id as given to [`Field::new`].
    pub source: u32,
    /// The route's cost (metres, with metres inside the avoided zone weighted).
    pub cost: f64,
    /// The route's length in metres, both access walks included.
    pub walk_m: f64,
}

/// A walking route between two points.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Length in metres, from the start to the end (access walks to and from the road
    /// included).
    pub length_m: f64,
    /// Metres of it inside the avoided hazard's zones.
    pub zone_m: f64,
    /// The route as positions: the start, where it joins the road, the road's nodes,
    /// where it leaves the road, the end.
    pub points: Vec<LonLat>,
}

/// A min-heap entry: cost, then node.
#[derive(Clone, Copy, PartialEq)]
struct Item(f64, u32);

impl Eq for Item {}

impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

const NONE: u32 = u32::MAX;

/// A field's heap entry: the cost as its IEEE bits (the same order for costs ≥ 0, and an
/// integer compare), then the node; the least first.
type Key = Reverse<(u64, u32)>;

fn key(cost: f64, node: u32) -> Key {
    Reverse((if cost > 0.0 { cost.to_bits() } else { 0 }, node))
}

/// What [`Field::nearest_where`] searches with, kept between calls: a search touches a few
/// thousand of the town's nodes, and clearing only those is what makes it cheap.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// Cost and walk from the point, per node (infinite: not reached).
    dist: Vec<(f64, f64)>,
    touched: Vec<u32>,
    heap: BinaryHeap<Key>,
}

/// Each node's nearest source (by route cost) among a set of sources that can be
/// removed one at a time: a multi-source Dijkstra, repaired locally when a source goes
/// (only the nodes that were nearest to it are searched again). For the order engine,
/// the sources are the shelters with room; one that fills is removed.
#[derive(Debug, Clone)]
pub struct Field<'n> {
    net: &'n Network,
    cost: &'n [f64],
    ids: Vec<u32>,
    snaps: Vec<Snap>,
    active: Vec<bool>,
    by_id: foldhash::HashMap<u32, u32>,
    /// Sources joining each edge: (edge, source), sorted by edge.
    on_edge: Vec<(u32, u32)>,
    /// Seeds at each node in compressed rows: (source, cost, walk).
    seed_first: Vec<u32>,
    seeds: Vec<(u32, f64, f64)>,
    best: Vec<f64>,
    walk: Vec<f64>,
    label: Vec<u32>,
    /// Each arc's far end, cost and length, in the network's arc order: the search reads
    /// one row per node instead of three arrays by edge.
    adj: Vec<(u32, f64, f64)>,
    scratch: RefCell<Scratch>,
}

impl<'n> Field<'n> {
    /// The field of `sources` (id, where it joins the network) over `net` with edge
    /// costs `cost` (from [`Network::costs`]).
    pub fn new(
        net: &'n Network,
        cost: &'n [f64],
        sources: impl IntoIterator<Item = (u32, Snap)>,
    ) -> Field<'n> {
        let (ids, snaps): (Vec<u32>, Vec<Snap>) = sources.into_iter().unzip();
        let n = net.nodes.len();
        let mut per_node: Vec<(u32, u32, f64, f64)> = Vec::with_capacity(2 * snaps.len());
        let mut on_edge = Vec::with_capacity(snaps.len());
        for (s, snap) in snaps.iter().enumerate() {
            let e = &net.edges[snap.edge as usize];
            let (c, l) = (cost[snap.edge as usize], e.length_m);
            per_node.push((
                e.a,
                s as u32,
                snap.access_m + snap.t * c,
                snap.access_m + snap.t * l,
            ));
            per_node.push((
                e.b,
                s as u32,
                snap.access_m + (1.0 - snap.t) * c,
                snap.access_m + (1.0 - snap.t) * l,
            ));
            on_edge.push((snap.edge, s as u32));
        }
        on_edge.sort_unstable();
        per_node.sort_unstable_by_key(|p| p.0);
        let mut seed_first = vec![0u32; n + 1];
        for p in &per_node {
            seed_first[p.0 as usize + 1] += 1;
        }
        for i in 1..=n {
            seed_first[i] += seed_first[i - 1];
        }
        let seeds = per_node.iter().map(|p| (p.1, p.2, p.3)).collect();
        let by_id = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect();
        let mut field = Field {
            net,
            cost,
            active: vec![true; ids.len()],
            ids,
            snaps,
            by_id,
            on_edge,
            seed_first,
            seeds,
            best: vec![f64::INFINITY; n],
            walk: vec![f64::INFINITY; n],
            label: vec![NONE; n],
            adj: net
                .arcs
                .iter()
                .map(|&(v, e)| (v, cost[e as usize], net.edges[e as usize].length_m))
                .collect(),
            scratch: RefCell::default(),
        };
        let mut heap = BinaryHeap::new();
        for u in 0..n as u32 {
            field.seed_node(u, &mut heap);
        }
        field.run(heap);
        field
    }

    fn node_seeds(&self, u: u32) -> &[(u32, f64, f64)] {
        let u = u as usize;
        &self.seeds[self.seed_first[u] as usize..self.seed_first[u + 1] as usize]
    }

    fn seed_node(&mut self, u: u32, heap: &mut BinaryHeap<Key>) {
        for i in self.seed_first[u as usize]..self.seed_first[u as usize + 1] {
            let (s, c, w) = self.seeds[i as usize];
            if self.active[s as usize] {
                self.relax(u, c, w, s, heap);
            }
        }
    }

    fn relax(&mut self, u: u32, c: f64, w: f64, s: u32, heap: &mut BinaryHeap<Key>) {
        let i = u as usize;
        if c < self.best[i] {
            self.best[i] = c;
            self.walk[i] = w;
            self.label[i] = s;
            heap.push(key(c, u));
        }
    }

    fn run(&mut self, mut heap: BinaryHeap<Key>) {
        while let Some(Reverse((k, u))) = heap.pop() {
            let i = u as usize;
            let c = self.best[i];
            if key(c, u).0.0 < k {
                continue;
            }
            let (w, s) = (self.walk[i], self.label[i]);
            let (lo, hi) = (self.net.first[i] as usize, self.net.first[i + 1] as usize);
            for a in lo..hi {
                let (v, ac, al) = self.adj[a];
                self.relax(v, c + ac, w + al, s, &mut heap);
            }
        }
    }

    /// Removes the source `id` (a shelter that filled): the nodes nearest to it find
    /// their next nearest. Removing an unknown or removed source does nothing.
    pub fn remove(&mut self, id: u32) {
        let Some(&s) = self.by_id.get(&id) else {
            return;
        };
        if !std::mem::replace(&mut self.active[s as usize], false) {
            return;
        }
        // The nodes nearest to s form a connected piece around its seeds: collect it.
        let e = &self.net.edges[self.snaps[s as usize].edge as usize];
        let mut stack = vec![e.a, e.b];
        let mut cell = Vec::new();
        while let Some(u) = stack.pop() {
            if self.label[u as usize] != s {
                continue;
            }
            self.label[u as usize] = NONE;
            self.best[u as usize] = f64::INFINITY;
            self.walk[u as usize] = f64::INFINITY;
            cell.push(u);
            stack.extend(
                self.net
                    .arcs(u)
                    .iter()
                    .filter(|(v, _)| self.label[*v as usize] == s)
                    .map(|(v, _)| *v),
            );
        }
        // Search it again from its border and from the other sources' seeds inside it.
        let mut heap = BinaryHeap::new();
        for &u in &cell {
            self.seed_node(u, &mut heap);
            for &(v, e) in self.net.arcs(u) {
                let lv = self.label[v as usize];
                if lv != NONE {
                    let e = e as usize;
                    let c = self.best[v as usize] + self.cost[e];
                    let w = self.walk[v as usize] + self.net.edges[e].length_m;
                    self.relax(u, c, w, lv, &mut heap);
                }
            }
        }
        self.run(heap);
    }

    /// The nearest source still in the field from a point that joins the network at
    /// `at`; None when none is connected to it. The point's own access walk is included
    /// in `walk_m` (not in `cost`: it is the same whichever source).
    pub fn nearest(&self, at: &Snap) -> Option<Reach> {
        self.view().nearest(at)
    }

    /// What [`Field::nearest`] reads, borrowed.
    fn view(&self) -> View<'_> {
        View {
            net: self.net,
            cost: self.cost,
            ids: &self.ids,
            snaps: &self.snaps,
            active: &self.active,
            on_edge: &self.on_edge,
            best: &self.best,
            walk: &self.walk,
            label: &self.label,
        }
    }

    /// The field with only what [`Nearest::nearest`] reads: no source can be removed from it
    /// and no search made in it, and it takes about a sixth of the memory (a field holds a
    /// copy of the network's arcs with their costs). For many fields kept side by side, one
    /// per shelter (the drill's walks).
    pub fn into_nearest(self) -> Nearest<'n> {
        Nearest {
            net: self.net,
            cost: self.cost,
            ids: self.ids,
            snaps: self.snaps,
            active: self.active,
            on_edge: self.on_edge,
            best: self.best,
            walk: self.walk,
            label: self.label,
        }
    }

    fn on_same_edge(&self, edge: u32) -> impl Iterator<Item = u32> + '_ {
        self.view().on_same_edge(edge)
    }

    /// From `at` straight along the shared edge to source `s` (internal index).
    fn direct(&self, at: &Snap, s: u32) -> Reach {
        self.view().direct(at, s)
    }

    /// The nearest source still in the field for which `pred(id)` holds, from `at`: a
    /// search outward from the point that stops at the first such source. For the rare
    /// household too large for its nearest shelter's last seats.
    pub fn nearest_where(&self, at: &Snap, mut pred: impl FnMut(u32) -> bool) -> Option<Reach> {
        let e = &self.net.edges[at.edge as usize];
        let (c, l) = (self.cost[at.edge as usize], e.length_m);
        let mut best: Option<Reach> = None;
        for s in self.on_same_edge(at.edge) {
            if pred(self.ids[s as usize]) {
                let r = self.direct(at, s);
                if best.is_none_or(|b| r.cost < b.cost) {
                    best = Some(r);
                }
            }
        }
        let mut scratch = self.scratch.borrow_mut();
        let Scratch {
            dist,
            touched,
            heap,
        } = &mut *scratch;
        if dist.len() != self.best.len() {
            *dist = vec![(f64::INFINITY, f64::INFINITY); self.best.len()];
        }
        // A* towards the sources: no fitting source is nearer to a node than the nearest
        // source of all, which the field holds (`best`), so `best` is a lower bound of what
        // is left to walk, and a consistent one. Nodes no source reaches lead nowhere.
        let lower = &self.best;
        let reach = |dist: &mut [(f64, f64)],
                     touched: &mut Vec<u32>,
                     heap: &mut BinaryHeap<Key>,
                     v: u32,
                     c: f64,
                     w: f64| {
            let h = lower[v as usize];
            let d = &mut dist[v as usize];
            if c < d.0 && h.is_finite() {
                if d.0 == f64::INFINITY {
                    touched.push(v);
                }
                *d = (c, w);
                heap.push(key(c + h, v));
            }
        };
        for (node, frac) in [(e.a, at.t), (e.b, 1.0 - at.t)] {
            reach(dist, touched, heap, node, frac * c, frac * l);
        }
        while let Some(Reverse((k, u))) = heap.pop() {
            let (du, wu) = dist[u as usize];
            let f = du + lower[u as usize];
            if key(f, u).0.0 < k {
                continue;
            }
            if best.is_some_and(|b| f >= b.cost) {
                break;
            }
            for &(s, sc, sw) in self.node_seeds(u) {
                if self.active[s as usize]
                    && best.is_none_or(|b| du + sc < b.cost)
                    && pred(self.ids[s as usize])
                {
                    best = Some(Reach {
                        source: s,
                        cost: du + sc,
                        walk_m: wu + sw,
                    });
                }
            }
            let i = u as usize;
            for a in self.net.first[i] as usize..self.net.first[i + 1] as usize {
                let (v, ac, al) = self.adj[a];
                reach(dist, touched, heap, v, du + ac, wu + al);
            }
        }
        for &v in touched.iter() {
            dist[v as usize] = (f64::INFINITY, f64::INFINITY);
        }
        touched.clear();
        heap.clear();
        best.map(|r| Reach {
            source: self.ids[r.source as usize],
            walk_m: r.walk_m + at.access_m,
            ..r
        })
    }
}

impl Network {
    /// The cheapest walking route from `from` to `to`, avoiding `avoid`'s zones where
    /// another route exists; None when the two points join pieces of the network that
    /// do not connect, or the network is empty.
    pub fn route(&self, from: LonLat, to: LonLat, avoid: Option<Hazard>) -> Option<Route> {
        let (a, b) = (self.snap(from)?, self.snap(to)?);
        let cost = self.costs(avoid);
        let zone = |e: usize| avoid.map_or(0.0, |h| self.zone_m(e as u32, h));
        let ea = self.edges[a.edge as usize];
        let eb = self.edges[b.edge as usize];
        let ends = |p: LonLat, snap: Snap| -> Vec<LonLat> {
            if snap.access_m > 0.0 {
                vec![p, snap.point]
            } else {
                vec![p]
            }
        };
        // Along the one edge both points join.
        let mut best: Option<(f64, Route)> = None;
        if a.edge == b.edge {
            let d = (a.t - b.t).abs();
            let mut points = ends(from, a);
            let mut tail = ends(to, b);
            tail.reverse();
            points.extend(tail);
            let e = a.edge as usize;
            best = Some((
                d * cost[e],
                Route {
                    length_m: a.access_m + d * ea.length_m + b.access_m,
                    zone_m: d * zone(e),
                    points,
                },
            ));
        }
        // Dijkstra from a's two ends to b's two ends.
        let n = self.nodes.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut prev: Vec<(u32, u32)> = vec![(NONE, NONE); n];
        let mut heap = BinaryHeap::new();
        for (node, frac) in [(ea.a, a.t), (ea.b, 1.0 - a.t)] {
            let c = frac * cost[a.edge as usize];
            if c < dist[node as usize] {
                dist[node as usize] = c;
                heap.push(Item(c, node));
            }
        }
        let target = [(eb.a, b.t), (eb.b, 1.0 - b.t)];
        let mut found: Option<(f64, u32, f64)> = None;
        while let Some(Item(d, u)) = heap.pop() {
            if d > dist[u as usize] {
                continue;
            }
            if found.is_some_and(|f| d >= f.0) || best.as_ref().is_some_and(|(c, _)| d >= *c) {
                break;
            }
            for (node, frac) in target {
                if node == u {
                    let total = d + frac * cost[b.edge as usize];
                    if found.is_none_or(|f| total < f.0) {
                        found = Some((total, u, frac));
                    }
                }
            }
            for &(v, e) in self.arcs(u) {
                let c = d + cost[e as usize];
                if c < dist[v as usize] {
                    dist[v as usize] = c;
                    prev[v as usize] = (u, e);
                    heap.push(Item(c, v));
                }
            }
        }
        if let Some((total, last, frac)) = found
            && best.as_ref().is_none_or(|(c, _)| total < *c)
        {
            let mut chain = vec![last];
            let (mut length, mut in_zone) = (0.0, 0.0);
            let mut u = last;
            while prev[u as usize].0 != NONE {
                let (p, e) = prev[u as usize];
                length += self.edges[e as usize].length_m;
                in_zone += zone(e as usize);
                chain.push(p);
                u = p;
            }
            chain.reverse();
            let first = chain[0];
            let fa = if first == ea.a { a.t } else { 1.0 - a.t };
            length += fa * ea.length_m + frac * eb.length_m;
            in_zone += fa * zone(a.edge as usize) + frac * zone(b.edge as usize);
            let mut points = ends(from, a);
            points.extend(chain.iter().map(|n| self.nodes[*n as usize]));
            let mut tail = ends(to, b);
            tail.reverse();
            points.extend(tail);
            points.dedup();
            best = Some((
                total,
                Route {
                    length_m: a.access_m + length + b.access_m,
                    zone_m: in_zone,
                    points,
                },
            ));
        }
        best.map(|(_, r)| r)
    }
}

/// A [`Field`] that answers [`Nearest::nearest`] only (see [`Field::into_nearest`]).
#[derive(Debug, Clone)]
pub struct Nearest<'n> {
    net: &'n Network,
    cost: &'n [f64],
    ids: Vec<u32>,
    snaps: Vec<Snap>,
    active: Vec<bool>,
    on_edge: Vec<(u32, u32)>,
    best: Vec<f64>,
    walk: Vec<f64>,
    label: Vec<u32>,
}

impl Nearest<'_> {
    /// As [`Field::nearest`], with the same answer.
    pub fn nearest(&self, at: &Snap) -> Option<Reach> {
        View {
            net: self.net,
            cost: self.cost,
            ids: &self.ids,
            snaps: &self.snaps,
            active: &self.active,
            on_edge: &self.on_edge,
            best: &self.best,
            walk: &self.walk,
            label: &self.label,
        }
        .nearest(at)
    }
}

/// What a nearest-source answer reads of a field, whole or kept for answers only.
#[derive(Clone, Copy)]
struct View<'a> {
    net: &'a Network,
    cost: &'a [f64],
    ids: &'a [u32],
    snaps: &'a [Snap],
    active: &'a [bool],
    on_edge: &'a [(u32, u32)],
    best: &'a [f64],
    walk: &'a [f64],
    label: &'a [u32],
}

impl<'a> View<'a> {
    fn nearest(self, at: &Snap) -> Option<Reach> {
        let e = &self.net.edges[at.edge as usize];
        let (c, l) = (self.cost[at.edge as usize], e.length_m);
        let mut best: Option<Reach> = None;
        let mut offer = |r: Reach| {
            if r.cost.is_finite() && best.is_none_or(|b| (r.cost, r.source) < (b.cost, b.source)) {
                best = Some(r);
            }
        };
        for (node, frac) in [(e.a, at.t), (e.b, 1.0 - at.t)] {
            let s = self.label[node as usize];
            if s != NONE {
                offer(Reach {
                    source: s,
                    cost: frac * c + self.best[node as usize],
                    walk_m: at.access_m + frac * l + self.walk[node as usize],
                });
            }
        }
        for s in self.on_same_edge(at.edge) {
            offer(self.direct(at, s));
        }
        best.map(|r| Reach {
            source: self.ids[r.source as usize],
            ..r
        })
    }

    fn on_same_edge(self, edge: u32) -> impl Iterator<Item = u32> + 'a {
        let from = self.on_edge.partition_point(|(e, _)| *e < edge);
        self.on_edge[from..]
            .iter()
            .take_while(move |(e, _)| *e == edge)
            .map(|(_, s)| *s)
            .filter(move |s| self.active[*s as usize])
    }

    fn direct(self, at: &Snap, s: u32) -> Reach {
        let snap = &self.snaps[s as usize];
        let d = (at.t - snap.t).abs();
        let e = at.edge as usize;
        Reach {
            source: s,
            cost: d * self.cost[e] + snap.access_m,
            walk_m: at.access_m + d * self.net.edges[e].length_m + snap.access_m,
        }
    }
}
