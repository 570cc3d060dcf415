//! `evac-stb --route`: the walking route from the household's door to the shelter its order
//! names, over the town's roads, as GeoJSON. The overlay carries only the shelter: the box
//! knows where it is.

use evac_maps::{LonLat, Town};
use evac_protocol::{Hazard, ShelterId};

use super::error::StbError;

/// The walking route from `at` to `shelter` over `town`'s roads, avoiding `hazard`'s zones
/// where another route exists, as a GeoJSON FeatureCollection: the route (LineString) and the
/// shelter (Point).
pub fn route(
    town: &Town,
    household: u32,
    at: LonLat,
    shelter: ShelterId,
    hazard: Hazard,
) -> Result<serde_json::Value, StbError> {
    let s = town
        .shelter(shelter.0)
        .ok_or(StbError::UnknownShelter(shelter))?;
    if town.roads.is_empty() {
        return Err(StbError::NoRoads);
    }
    let avoid = hazard.name().parse::<evac_maps::Hazard>().ok();
    let net = town.network();
    let r = net
        .route(at, s.location, avoid)
        .ok_or(StbError::NoRoute(shelter))?;
    let line: Vec<[f64; 2]> = r.points.iter().map(|p| [p.lon, p.lat]).collect();
    Ok(serde_json::json!({
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": line},
                "properties": {
                    "kind": "route", "household": household, "shelter": shelter.0,
                    "hazard": hazard.name(), "length_m": (r.length_m * 10.0).round() / 10.0,
                    "in_zone_m": (r.zone_m * 10.0).round() / 10.0,
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [s.location.lon, s.location.lat]},
                "properties": {"kind": "shelter", "id": s.id, "name": s.name},
            },
        ],
    }))
}
