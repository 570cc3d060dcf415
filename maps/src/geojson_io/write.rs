//! Writing `town.geojson`: one feature a line, in a fixed order, with numbers in
//! serde_json's shortest round-trip form, so the same town always gives the same bytes.

use std::io::{self, Write};

use serde::Serialize;

use crate::hazard::{Hazard, HazardSet};
use crate::model::{Language, LonLat, Member};
use crate::town::Town;

/// Writes the town as a FeatureCollection, one feature a line.
///
/// Each feature also gets a top-level `"id"`, its 1-based position in the file:
/// `properties.id` repeats across kinds (household 1, shelter 1, zone 1), and GDAL,
/// hence QGIS, would otherwise take it as the feature id and find duplicates.
pub(crate) fn write<W: Write>(town: &Town, mut w: W) -> io::Result<()> {
    w.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
    let mut n = 0u64;
    for s in &town.shelters {
        let props = ShelterProps {
            kind: "shelter",
            id: s.id,
            name: &s.name,
            address: s.address.as_deref(),
            capacity: s.capacity,
            floor_area_m2: s.floor_area_m2,
            hazards: s.hazards,
            accessible: s.accessible,
            open: s.open,
            gsi_id: s.gsi_id.as_deref(),
        };
        feature(&mut w, &mut n, point(s.location), props)?;
    }
    for z in &town.zones {
        let props = ZoneProps {
            kind: "zone",
            id: z.id,
            hazard: z.hazard,
            name: &z.name,
        };
        feature(&mut w, &mut n, area(&z.area), props)?;
    }
    for r in &town.roads {
        let props = RoadProps {
            kind: "road",
            id: r.id,
            bridge: r.bridge,
            steps: r.steps,
            osm_id: r.osm_id,
        };
        let line = r.points.iter().map(|p| [p.lon, p.lat]).collect();
        feature(&mut w, &mut n, OutGeometry::LineString(line), props)?;
    }
    for x in &town.water {
        let props = WaterProps {
            kind: "water",
            id: x.id,
            osm_id: x.osm_id,
        };
        let line = x.points.iter().map(|p| [p.lon, p.lat]).collect();
        feature(&mut w, &mut n, OutGeometry::LineString(line), props)?;
    }
    for h in &town.households {
        let props = HouseholdProps {
            kind: "household",
            id: h.id,
            address: h.address.as_deref(),
            language: h.language,
            members: &h.members,
        };
        feature(&mut w, &mut n, point(h.location), props)?;
    }
    w.write_all(b"\n]}\n")?;
    w.flush()
}

// ---- output shapes ------------------------------------------------------------

#[derive(Serialize)]
struct OutFeature<P> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
    geometry: OutGeometry,
    properties: P,
}

/// Writes feature number `n + 1` (and the separator before it).
fn feature<W: Write, P: Serialize>(
    w: &mut W,
    n: &mut u64,
    geometry: OutGeometry,
    properties: P,
) -> io::Result<()> {
    w.write_all(if *n == 0 { b"\n" } else { b",\n" })?;
    *n += 1;
    serde_json::to_writer(
        &mut *w,
        &OutFeature {
            kind: "Feature",
            id: *n,
            geometry,
            properties,
        },
    )?;
    Ok(())
}

#[derive(Serialize)]
#[serde(tag = "type", content = "coordinates")]
enum OutGeometry {
    Point([f64; 2]),
    LineString(Vec<[f64; 2]>),
    Polygon(Vec<Vec<[f64; 2]>>),
    MultiPolygon(Vec<Vec<Vec<[f64; 2]>>>),
}

fn point(p: LonLat) -> OutGeometry {
    OutGeometry::Point([p.lon, p.lat])
}

fn area(mp: &geo::MultiPolygon<f64>) -> OutGeometry {
    let rings = |p: &geo::Polygon<f64>| -> Vec<Vec<[f64; 2]>> {
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .map(|r| r.coords().map(|c| [c.x, c.y]).collect())
            .collect()
    };
    match mp.0.as_slice() {
        [one] => OutGeometry::Polygon(rings(one)),
        many => OutGeometry::MultiPolygon(many.iter().map(rings).collect()),
    }
}

#[derive(Serialize)]
struct HouseholdProps<'a> {
    kind: &'static str,
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
    language: Language,
    members: &'a [Member],
}

#[derive(Serialize)]
struct ShelterProps<'a> {
    kind: &'static str,
    id: u32,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
    capacity: u32,
    floor_area_m2: Option<f64>,
    hazards: HazardSet,
    accessible: bool,
    open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ZoneProps<'a> {
    kind: &'static str,
    id: u32,
    hazard: Hazard,
    name: &'a str,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct RoadProps {
    kind: &'static str,
    id: u32,
    #[serde(skip_serializing_if = "is_false")]
    bridge: bool,
    #[serde(skip_serializing_if = "is_false")]
    steps: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    osm_id: Option<i64>,
}

#[derive(Serialize)]
struct WaterProps {
    kind: &'static str,
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    osm_id: Option<i64>,
}
