//! Which households a notice's area covers.

use evac_maps::LonLat;
use geo::{BoundingRect, Contains, Rect};

use crate::engine::town::EngineTown;
use crate::notice::Area;

/// An area ready for many point queries: polygons with their bounding boxes, circles.
#[derive(Debug, Clone)]
pub struct CompiledArea {
    polys: Vec<(Rect<f64>, geo::Polygon<f64>)>,
    circles: Vec<(LonLat, f64)>,
}

impl CompiledArea {
    /// Compiles `area`; zone ids the town does not have are returned as the error.
    pub fn new(area: &Area, town: &EngineTown) -> Result<CompiledArea, Vec<u32>> {
        let mut polys = Vec::new();
        let mut unknown = Vec::new();
        for z in &area.zones {
            match town.zones.iter().find(|(id, _)| id == z) {
                Some((_, mp)) => polys.extend(mp.0.iter().cloned()),
                None => unknown.push(*z),
            }
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        for ring in &area.polygons {
            let coords: Vec<geo::Coord<f64>> = ring
                .iter()
                .map(|[x, y]| geo::Coord { x: *x, y: *y })
                .collect();
            polys.push(geo::Polygon::new(geo::LineString::new(coords), vec![]));
        }
        let polys = polys
            .into_iter()
            .filter_map(|p| p.bounding_rect().map(|r| (r, p)))
            .collect();
        let circles = area
            .circles
            .iter()
            .map(|c| (LonLat::new(c.lon, c.lat), c.radius_m))
            .collect();
        Ok(CompiledArea { polys, circles })
    }

    /// Whether `p` is inside (a point on a polygon's boundary is not).
    pub fn contains(&self, p: LonLat) -> bool {
        let pt = geo::Point::new(p.lon, p.lat);
        self.polys.iter().any(|(r, poly)| {
            p.lon >= r.min().x
                && p.lon <= r.max().x
                && p.lat >= r.min().y
                && p.lat <= r.max().y
                && poly.contains(&pt)
        }) || self
            .circles
            .iter()
            .any(|(c, radius)| c.distance_m(p) <= *radius)
    }
}
