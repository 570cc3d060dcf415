//! How far a resident walks to a shelter: over the town's roads when it has them (the same
//! network, snapping and hazard-zone avoidance as HQ's order engine and `evac-stb --route`),
//! else the great-circle distance × the scenario's detour factor.

use std::collections::HashMap;

use evac_maps::LonLat;
use evac_maps::{Field, Nearest, Network};

/// Walking distances to each shelter of a town.
pub struct Walks<'n> {
    net: &'n Network,
    /// One shortest-walk field per shelter, from that shelter alone, kept for answers only
    /// (a whole field also holds a copy of the network's arcs: at 300,000 households, 352
    /// whole fields took 195 MiB of the runner's memory, these about a sixth).
    fields: HashMap<u32, Nearest<'n>>,
    detour: f64,
}

impl<'n> Walks<'n> {
    /// Distances to `shelters` (id, location) over `net` with edge costs `cost` (from
    /// [`Network::costs`] for the hazard to avoid); `detour` serves where the network does
    /// not reach (no roads, or a piece of road that does not connect).
    pub fn new(
        net: &'n Network,
        cost: &'n [f64],
        shelters: impl IntoIterator<Item = (u32, LonLat)>,
        detour: f64,
    ) -> Walks<'n> {
        let fields = shelters
            .into_iter()
            .filter_map(|(id, at)| {
                let field = Field::new(net, cost, [(id, net.snap(at)?)]);
                Some((id, field.into_nearest()))
            })
            .collect();
        Walks {
            net,
            fields,
            detour,
        }
    }

    /// Whether distances follow roads (else they are all great-circle × detour).
    pub fn on_roads(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Metres from `from` to shelter `to`, which stands at `to_at`.
    pub fn metres(&self, from: LonLat, to: u32, to_at: LonLat) -> f64 {
        self.fields
            .get(&to)
            .zip(self.net.snap(from))
            .and_then(|(field, snap)| field.nearest(&snap))
            .map_or_else(|| from.distance_m(to_at) * self.detour, |r| r.walk_m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_maps::Road;

    fn p(lon: f64, lat: f64) -> LonLat {
        LonLat::new(lon, lat)
    }

    #[test]
    fn a_walk_follows_the_road_round_a_corner() {
        // An L-shaped road: east 0.01° then north 0.01°; the shelter at the far end.
        let road = Road::new(1, vec![p(141.0, 39.0), p(141.01, 39.0), p(141.01, 39.01)]);
        let net = Network::new(&[road], &[]);
        let cost = net.costs(None);
        let shelter = p(141.01, 39.01);
        let walks = Walks::new(&net, &cost, [(7, shelter)], 1.2);
        assert!(walks.on_roads());
        let home = p(141.0, 39.0);
        let along_road = home.distance_m(p(141.01, 39.0)) + p(141.01, 39.0).distance_m(shelter);
        let m = walks.metres(home, 7, shelter);
        assert!((m - along_road).abs() < 1.0, "{m} vs {along_road}");
        assert!(
            m > home.distance_m(shelter) * 1.2,
            "longer than the straight line"
        );
        // A shelter the network does not know: great-circle × detour.
        let m = walks.metres(home, 8, shelter);
        assert!((m - home.distance_m(shelter) * 1.2).abs() < 1e-6);
    }

    #[test]
    fn without_roads_the_detour_factor_serves() {
        let net = Network::new(&[], &[]);
        let cost = net.costs(None);
        let (home, shelter) = (p(141.0, 39.0), p(141.01, 39.0));
        let walks = Walks::new(&net, &cost, [(1, shelter)], 1.2);
        assert!(!walks.on_roads());
        let m = walks.metres(home, 1, shelter);
        assert!((m - home.distance_m(shelter) * 1.2).abs() < 1e-6);
    }
}
