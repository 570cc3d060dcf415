//! `evac-maps roads import`: a town's roads and water lines replaced by those of an
//! OpenStreetMap file around it, and the counts of the walking network they make.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use geo::CoordsIter;

use crate::error::MapsError;
use crate::model::LonLat;
use crate::network::Network;
use crate::osm;
use crate::town::Town;

/// How far around the town's households, shelters and zones roads are imported, metres.
pub const IMPORT_MARGIN_M: f64 = 2000.0;

/// Counts of a town's roads and of the walking network they make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoadCounts {
    /// Roads.
    pub roads: usize,
    /// Water lines.
    pub water_lines: usize,
    /// Network nodes.
    pub nodes: usize,
    /// Network edges.
    pub edges: usize,
    /// Roads that are bridges.
    pub bridges: usize,
    /// Roads that are steps.
    pub steps: usize,
    /// Pieces of the network not joined to each other.
    pub connected_pieces: usize,
}

impl RoadCounts {
    /// The counts of `town`'s roads and of `net`, its network.
    pub fn of(town: &Town, net: &Network) -> RoadCounts {
        let pieces: HashSet<u32> = (0..net.edges().len() as u32)
            .map(|e| net.component(e))
            .collect();
        RoadCounts {
            roads: town.roads.len(),
            water_lines: town.water.len(),
            nodes: net.nodes().len(),
            edges: net.edges().len(),
            bridges: town.roads.iter().filter(|r| r.bridge).count(),
            steps: town.roads.iter().filter(|r| r.steps).count(),
            connected_pieces: pieces.len(),
        }
    }
}

/// One `name: value` a line, as `evac-maps roads import` prints them.
impl fmt::Display for RoadCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "roads: {}\nwater lines: {}\nnodes: {}\nedges: {}\nbridges: {}\nsteps: {}\nconnected pieces: {}",
            self.roads,
            self.water_lines,
            self.nodes,
            self.edges,
            self.bridges,
            self.steps,
            self.connected_pieces
        )
    }
}

impl Town {
    /// Replaces the town's roads and water lines with those of the OSM file `map` that have
    /// a node within [`IMPORT_MARGIN_M`] of its households, shelters and zones; returns the
    /// counts of the walking network they make.
    pub fn import_roads(&mut self, map: &Path) -> Result<RoadCounts, MapsError> {
        let bounds = osm::Bounds::around(
            self.households
                .iter()
                .map(|h| h.location)
                .chain(self.shelters.iter().map(|s| s.location))
                .chain(
                    self.zones
                        .iter()
                        .flat_map(|z| z.area.coords_iter().map(|c| LonLat::new(c.x, c.y))),
                ),
            IMPORT_MARGIN_M,
        );
        let data = osm::import(map, bounds)?;
        self.roads = data.roads;
        self.water = data.water;
        Ok(RoadCounts::of(self, &self.network()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenerateParams, generate};

    #[test]
    fn counts_of_a_generated_town_read_as_lines() {
        let town = generate(&GenerateParams {
            households: 30,
            shelters: 4,
            seed: 2,
        });
        let counts = RoadCounts::of(&town, &town.network());
        assert_eq!(counts.roads, town.roads.len());
        assert!(counts.edges > 0 && counts.connected_pieces >= 1);
        let text = counts.to_string();
        assert!(text.starts_with(&format!("roads: {}\nwater lines: ", town.roads.len())));
        assert!(text.ends_with(&format!("connected pieces: {}", counts.connected_pieces)));
        assert_eq!(text.lines().count(), 7);
    }

    #[test]
    fn a_missing_map_is_an_error_and_leaves_the_roads() {
        let mut town = generate(&GenerateParams {
            households: 5,
            shelters: 2,
            seed: 3,
        });
        let roads = town.roads.clone();
        let err = town.import_roads(Path::new("/nonexistent/map.osm"));
        assert!(err.is_err());
        assert_eq!(town.roads, roads);
    }
}
