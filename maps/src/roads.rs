//! [`Road`]: one way people can walk, as the town file keeps it.
//!
//! A road is a polyline (like an OpenStreetMap way) with flags that hold along its whole
//! length. Two roads meet where they share a position exactly (as OSM ways share a node);
//! a road that crosses another without a shared position (a bridge over a street) does
//! not meet it. [`crate::Network`] turns the roads into a graph.

use crate::model::LonLat;

/// A walkable way: a street, a path, a flight of steps, a bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Road {
    /// The road id, unique among roads.
    pub id: u32,
    /// The positions along the road, at least two.
    pub points: Vec<LonLat>,
    /// Whether the road is a bridge (over a river, a railway...).
    pub bridge: bool,
    /// Whether the road is a flight of steps (no wheelchair, slow with a pram).
    pub steps: bool,
    /// The OpenStreetMap way id when the road was imported from OSM.
    pub osm_id: Option<i64>,
}

impl Road {
    /// A plain road (no flags, no OSM id) through `points`.
    pub fn new(id: u32, points: Vec<LonLat>) -> Road {
        Road {
            id,
            points,
            bridge: false,
            steps: false,
            osm_id: None,
        }
    }

    /// The road's length in metres (great-circle, segment by segment).
    pub fn length_m(&self) -> f64 {
        self.points.windows(2).map(|w| w[0].distance_m(w[1])).sum()
    }
}

/// A line people cannot walk across off the roads: a river's, canal's or stream's course, or
/// the shore of a lake or a river's water area. A household or shelter joins the nearest road
/// that it reaches without crossing one (a bridge is a road).
#[derive(Debug, Clone, PartialEq)]
pub struct Water {
    /// The line's id, unique among water lines.
    pub id: u32,
    /// The positions along the line, at least two.
    pub points: Vec<LonLat>,
    /// The OpenStreetMap way id when the line was imported from OSM.
    pub osm_id: Option<i64>,
}
