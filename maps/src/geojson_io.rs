//! Reading and writing `town.geojson`: one FeatureCollection whose features carry
//! `properties.kind` = `household`, `shelter`, `zone`, `road` or `water`.
//!
//! Reading goes straight from bytes into the typed model (no generic JSON tree):
//! the `features` array is visited one feature at a time, so a malformed feature is
//! reported with serde_json's line and column plus its index. Rules that span
//! features (unique ids, a card linked to one resident only) are checked after
//! parsing and reported with the feature index.
//!
//! Writing puts one feature on each line, shelters first, then zones, then roads, then
//! water lines, then households, each in the order of the town's vectors; numbers use serde_json's
//! shortest round-trip form, so the same town always gives the same bytes.

use std::fmt;
use std::io::{self, Write};

use std::borrow::Cow;
use std::cell::Cell;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::MapsError;
use crate::hazard::{Hazard, HazardSet};
use crate::model::{Household, Language, LonLat, Member, Shelter, Zone, capacity_from_floor_area};
use crate::roads::{Road, Water};
use crate::town::Town;

/// Parses a town from GeoJSON bytes; `file` names the source in errors.
pub(crate) fn parse(bytes: &[u8], file: &str) -> Result<Town, MapsError> {
    // A UTF-8 byte-order mark is not JSON, but some Windows tools write one.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // One UTF-8 check of the whole file is faster than serde_json's check of each
    // string (about 5 % of a big load).
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let before = &bytes[..offset];
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        MapsError::Json {
            file: file.to_owned(),
            line: 1 + before.iter().filter(|b| **b == b'\n').count(),
            column: 1 + offset - line_start,
            message: format!("invalid UTF-8 at byte {offset}"),
        }
    })?;
    let cursor = Cursor::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = CollectionSeed(&cursor)
        .deserialize(&mut de)
        .and_then(|raw| de.end().map(|()| raw))
        .map_err(|e| {
            let mut err = MapsError::from_json(file, &e);
            if let (MapsError::Json { message, .. }, Some(i)) = (&mut err, cursor.get()) {
                *message = format!("feature {i}: {message}");
            }
            err
        })?;
    if raw.kind != "FeatureCollection" {
        return Err(MapsError::Json {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: format!("expected a FeatureCollection, found type {:?}", raw.kind),
        });
    }
    let f = raw.features;
    let town = Town {
        households: f.households,
        shelters: f.shelters,
        zones: f.zones,
        roads: f.roads,
        water: f.water,
    };
    town.check().map_err(|v| {
        let index = match v.what {
            "shelter" => f.shelter_at[v.pos],
            "zone" => f.zone_at[v.pos],
            "road" => f.road_at[v.pos],
            "water" => f.water_at[v.pos],
            _ => f.household_at[v.pos],
        };
        MapsError::Feature {
            file: file.to_owned(),
            index,
            message: v.to_string(),
        }
    })?;
    Ok(town)
}

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

// ---- input shapes -------------------------------------------------------------

/// The top-level object: `type` and `features` (other members such as `name`, `crs`
/// or `bbox` are skipped).
struct RawCollection {
    kind: String,
    features: Features,
}

/// The converted features, with each item's index in `features` for error reports.
#[derive(Default)]
struct Features {
    households: Vec<Household>,
    shelters: Vec<Shelter>,
    zones: Vec<Zone>,
    roads: Vec<Road>,
    water: Vec<Water>,
    household_at: Vec<usize>,
    shelter_at: Vec<usize>,
    zone_at: Vec<usize>,
    road_at: Vec<usize>,
    water_at: Vec<usize>,
}

/// Where the parser is: `Some(i)` while inside feature `i`, so an error can name it.
type Cursor = Cell<Option<usize>>;

struct CollectionSeed<'c>(&'c Cursor);

impl<'de> DeserializeSeed<'de> for CollectionSeed<'_> {
    type Value = RawCollection;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawCollection, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CollectionSeed<'_> {
    type Value = RawCollection;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCollection, A::Error> {
        let (mut kind, mut features) = (None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => kind = Some(map.next_value::<String>()?),
                "features" => features = Some(map.next_value_seed(FeaturesSeed(self.0))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RawCollection {
            kind: kind.ok_or_else(|| de::Error::missing_field("type"))?,
            features: features.ok_or_else(|| de::Error::missing_field("features"))?,
        })
    }
}

struct FeaturesSeed<'c>(&'c Cursor);

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_> {
    type Value = Features;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Features, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_> {
    type Value = Features;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Features, A::Error> {
        let mut out = Features::default();
        let mut index = 0usize;
        loop {
            self.0.set(Some(index));
            let Some(FeatureItem(item)) = seq.next_element()? else {
                break;
            };
            match item {
                Item::Household(h) => {
                    out.households.push(h);
                    out.household_at.push(index);
                }
                Item::Shelter(s) => {
                    out.shelters.push(s);
                    out.shelter_at.push(index);
                }
                Item::Zone(z) => {
                    out.zones.push(z);
                    out.zone_at.push(index);
                }
                Item::Road(r) => {
                    out.roads.push(r);
                    out.road_at.push(index);
                }
                Item::Water(w) => {
                    out.water.push(w);
                    out.water_at.push(index);
                }
            }
            index += 1;
        }
        self.0.set(None);
        Ok(out)
    }
}

/// One feature, converted to the model while the parser is still at its closing
/// brace, so a conversion error points at the feature's own line.
struct FeatureItem(Item);

enum Item {
    Household(Household),
    Shelter(Shelter),
    Zone(Zone),
    Road(Road),
    Water(Water),
}

impl<'de> Deserialize<'de> for FeatureItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FeatureVisitor)
    }
}

struct FeatureVisitor;

impl<'de> Visitor<'de> for FeatureVisitor {
    type Value = FeatureItem;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoJSON Feature object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FeatureItem, A::Error> {
        let mut raw = RawFeature {
            kind: None,
            geometry: None,
            properties: None,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => raw.kind = Some(map.next_value()?),
                "geometry" => raw.geometry = map.next_value()?,
                "properties" => raw.properties = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        raw.convert().map(FeatureItem).map_err(de::Error::custom)
    }
}

struct RawFeature {
    kind: Option<String>,
    geometry: Option<RawGeometry>,
    properties: Option<RawProps>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Household,
    Shelter,
    Zone,
    Road,
    Water,
}

/// Every property any kind may have; which are required depends on `kind`.
/// Unknown properties (QGIS may add some) are ignored.
#[derive(Deserialize)]
struct RawProps {
    kind: Option<Kind>,
    id: Option<u32>,
    address: Option<String>,
    language: Option<Language>,
    members: Option<Vec<Member>>,
    name: Option<String>,
    capacity: Option<u32>,
    floor_area_m2: Option<f64>,
    hazards: Option<HazardSet>,
    accessible: Option<bool>,
    open: Option<bool>,
    gsi_id: Option<String>,
    hazard: Option<Hazard>,
    bridge: Option<bool>,
    steps: Option<bool>,
    osm_id: Option<i64>,
}

#[derive(Deserialize)]
struct RawGeometry {
    #[serde(rename = "type")]
    kind: String,
    coordinates: Option<Coords>,
}

/// GeoJSON coordinates of any depth: a number or a list of them, nested.
/// `Pair` is a position of exactly two numbers, the common case, kept without
/// allocating.
enum Coords {
    Num(f64),
    Pair(f64, f64),
    List(Vec<Coords>),
}

impl<'de> Deserialize<'de> for Coords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Coords;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or an array of coordinates")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Coords, E> {
                Ok(Coords::Num(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Coords, E> {
                Ok(Coords::Num(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Coords, E> {
                Ok(Coords::Num(v as f64))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Coords, A::Error> {
                let mut items = Vec::new();
                let first: Option<Coords> = seq.next_element()?;
                let second: Option<Coords> = seq.next_element()?;
                match (first, second) {
                    (Some(Coords::Num(a)), Some(Coords::Num(b))) => {
                        let Some(third) = seq.next_element()? else {
                            return Ok(Coords::Pair(a, b));
                        };
                        items.extend([Coords::Num(a), Coords::Num(b), third]);
                    }
                    (first, second) => items.extend(first.into_iter().chain(second)),
                }
                while let Some(c) = seq.next_element()? {
                    items.push(c);
                }
                Ok(Coords::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl Coords {
    fn list(&self, what: &str) -> Result<&[Coords], String> {
        match self {
            Coords::List(l) => Ok(l),
            Coords::Num(_) => Err(format!("{what} must be an array")),
            Coords::Pair(..) => Err(format!("{what} must be an array of arrays")),
        }
    }

    fn position(&self) -> Result<LonLat, String> {
        if let Coords::Pair(lon, lat) = *self {
            return Self::valid(lon, lat);
        }
        match self.list("a position")? {
            // A third number (altitude) is allowed and dropped.
            [Coords::Num(lon), Coords::Num(lat), rest @ ..]
                if rest.iter().all(|c| matches!(c, Coords::Num(_))) =>
            {
                Self::valid(*lon, *lat)
            }
            _ => Err("a position must be [longitude, latitude]".to_owned()),
        }
    }

    fn valid(lon: f64, lat: f64) -> Result<LonLat, String> {
        let p = LonLat::new(lon, lat);
        if p.is_valid() {
            Ok(p)
        } else {
            Err(format!(
                "position [{lon}, {lat}] is outside WGS 84 longitude/latitude"
            ))
        }
    }

    fn polygon(&self) -> Result<geo::Polygon<f64>, String> {
        let mut rings = Vec::new();
        for ring in self.list("a polygon")? {
            let coords = ring
                .list("a linear ring")?
                .iter()
                .map(|c| c.position().map(|p| geo::coord! { x: p.lon, y: p.lat }))
                .collect::<Result<Vec<_>, _>>()?;
            if coords.len() < 4 {
                return Err(format!(
                    "a linear ring needs at least 4 positions, found {}",
                    coords.len()
                ));
            }
            rings.push(geo::LineString::new(coords));
        }
        let mut rings = rings.into_iter();
        let exterior = rings.next().ok_or("a polygon needs an exterior ring")?;
        Ok(geo::Polygon::new(exterior, rings.collect()))
    }
}

impl RawGeometry {
    fn point(&self) -> Result<LonLat, String> {
        match (self.kind.as_str(), &self.coordinates) {
            ("Point", Some(c)) => c.position(),
            ("Point", None) => Err("a Point needs coordinates".to_owned()),
            (other, _) => Err(format!("expected a Point geometry, found {other:?}")),
        }
    }

    fn line(&self, what: &str) -> Result<Vec<LonLat>, String> {
        match (self.kind.as_str(), &self.coordinates) {
            ("LineString", Some(c)) => {
                let points = c
                    .list("a LineString")?
                    .iter()
                    .map(Coords::position)
                    .collect::<Result<Vec<_>, _>>()?;
                if points.len() < 2 {
                    return Err(format!(
                        "a {what} needs at least 2 positions, found {}",
                        points.len()
                    ));
                }
                Ok(points)
            }
            ("LineString", None) => Err("a LineString needs coordinates".to_owned()),
            (other, _) => Err(format!("expected a LineString geometry, found {other:?}")),
        }
    }

    fn area(&self) -> Result<geo::MultiPolygon<f64>, String> {
        let c = self
            .coordinates
            .as_ref()
            .ok_or("a zone geometry needs coordinates")?;
        match self.kind.as_str() {
            "Polygon" => Ok(geo::MultiPolygon(vec![c.polygon()?])),
            "MultiPolygon" => Ok(geo::MultiPolygon(
                c.list("a MultiPolygon")?
                    .iter()
                    .map(Coords::polygon)
                    .collect::<Result<_, _>>()?,
            )),
            other => Err(format!(
                "expected a Polygon or MultiPolygon geometry, found {other:?}"
            )),
        }
    }
}

impl RawFeature {
    fn convert(self) -> Result<Item, String> {
        match self.kind.as_deref() {
            Some("Feature") => {}
            Some(other) => return Err(format!("expected type \"Feature\", found {other:?}")),
            None => return Err("feature has no type".to_owned()),
        }
        let p = self.properties.ok_or("feature has no properties")?;
        let kind = p.kind.ok_or("properties have no kind")?;
        let id = p.id.ok_or("properties have no id")?;
        let geometry = self.geometry.ok_or("feature has no geometry")?;
        match kind {
            Kind::Household => Ok(Item::Household(Household {
                id,
                location: geometry.point()?,
                address: p.address,
                language: p.language.unwrap_or_default(),
                members: p.members.ok_or("household has no members list")?,
            })),
            Kind::Shelter => {
                let floor_area_m2 = p.floor_area_m2;
                if let Some(a) = floor_area_m2
                    && !(a.is_finite() && a >= 0.0)
                {
                    return Err(format!("floor_area_m2 {a} is not a non-negative number"));
                }
                let capacity = match (p.capacity, floor_area_m2) {
                    (Some(c), _) => c,
                    (None, Some(a)) => capacity_from_floor_area(a),
                    (None, None) => {
                        return Err("shelter has neither capacity nor floor_area_m2".to_owned());
                    }
                };
                Ok(Item::Shelter(Shelter {
                    id,
                    name: p.name.ok_or("shelter has no name")?,
                    address: p.address,
                    location: geometry.point()?,
                    capacity,
                    floor_area_m2,
                    hazards: p.hazards.unwrap_or_default(),
                    accessible: p.accessible.unwrap_or(false),
                    open: p.open.unwrap_or(true),
                    gsi_id: p.gsi_id,
                }))
            }
            Kind::Zone => Ok(Item::Zone(Zone {
                id,
                name: p.name.unwrap_or_default(),
                hazard: p.hazard.ok_or("zone has no hazard")?,
                area: geometry.area()?,
            })),
            Kind::Road => Ok(Item::Road(Road {
                id,
                points: geometry.line("road")?,
                bridge: p.bridge.unwrap_or(false),
                steps: p.steps.unwrap_or(false),
                osm_id: p.osm_id,
            })),
            Kind::Water => Ok(Item::Water(Water {
                id,
                points: geometry.line("water line")?,
                osm_id: p.osm_id,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgeBand, CardRef};

    fn parse_str(s: &str) -> Result<Town, MapsError> {
        parse(s.as_bytes(), "t.geojson")
    }

    fn collection(features: &[&str]) -> String {
        format!(
            "{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}",
            features.join(",\n")
        )
    }

    const HOUSEHOLD: &str = r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[141.95,39.64]},"properties":{"kind":"household","id":1,"members":[{"resident":1,"age_band":"85+","needs_help":true,"cards":[{"issuer_key_id":"0a0b","serial":"01"}]}]}}"#;
    const SHELTER: &str = r#"{"type":"Feature","geometry":{"coordinates":[141.9,39.6],"type":"Point"},"properties":{"id":1,"kind":"shelter","name":"s","floor_area_m2":700,"hazards":["tsunami"],"qgis_extra":{"x":[1,2]}}}"#;
    const ZONE: &str = r#"{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]],[[0.1,0.05],[0.2,0.05],[0.2,0.1],[0.1,0.05]]],[[[2,2],[3,2],[3,3],[2,2]]]]},"properties":{"kind":"zone","id":1,"hazard":"flood","name":"z"}}"#;

    const ROAD: &str = r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[141.9,39.6],[141.901,39.6],[141.901,39.601]]},"properties":{"kind":"road","id":1,"bridge":true,"osm_id":4242}}"#;

    #[test]
    fn roads_read_and_write_back() {
        let town = parse_str(&collection(&[HOUSEHOLD, ROAD, SHELTER])).unwrap();
        let r = &town.roads[0];
        assert_eq!(r.points.len(), 3);
        assert_eq!((r.bridge, r.steps, r.osm_id), (true, false, Some(4242)));
        let text = town.to_geojson_string();
        assert_eq!(parse_str(&text).unwrap(), town);
        assert!(text.lines().nth(2).unwrap().contains("\"kind\":\"road\""));
        for (bad, want) in [
            (
                ROAD.replace(",[141.901,39.6],[141.901,39.601]", ""),
                "at least 2 positions",
            ),
            (ROAD.replace("LineString", "Point"), "expected a LineString"),
        ] {
            let e = err(&collection(&[SHELTER, &bad]));
            assert!(e.contains("feature 1:") && e.contains(want), "{e} / {want}");
        }
        let e = err(&collection(&[ROAD, ROAD]));
        assert_eq!(e, "t.geojson: feature 1: road 1: duplicate road id");
    }

    #[test]
    fn reads_each_kind_with_defaults() {
        let town = parse_str(&collection(&[HOUSEHOLD, SHELTER, ZONE])).unwrap();
        let h = &town.households[0];
        assert_eq!(
            (h.id, h.language, h.location),
            (1, Language::Japanese, LonLat::new(141.95, 39.64))
        );
        let m = &h.members[0];
        assert_eq!(
            (m.resident, m.age_band, m.needs_help, m.name.as_str()),
            (1, AgeBand::Oldest, true, "")
        );
        assert_eq!(
            m.cards,
            [CardRef {
                issuer_key_id: vec![10, 11],
                serial: vec![1]
            }]
        );
        let s = &town.shelters[0];
        assert_eq!((s.capacity, s.open, s.accessible), (200, true, false));
        assert_eq!(town.zones[0].area.0.len(), 2);
        assert_eq!(town.zones[0].area.0[0].interiors().len(), 1);
        assert!(
            town.zones[0].contains(LonLat::new(0.9, 0.5))
                || town.zones[0].contains(LonLat::new(0.7, 0.2))
        );
        assert!(
            !town.zones[0].contains(LonLat::new(0.18, 0.07)),
            "inside the hole"
        );
    }

    #[test]
    fn round_trip_is_exact_and_stable() {
        let town = parse_str(&collection(&[HOUSEHOLD, SHELTER, ZONE])).unwrap();
        let text = town.to_geojson_string();
        let again = parse_str(&text).unwrap();
        assert_eq!(again, town);
        assert_eq!(again.to_geojson_string(), text);
        // One feature a line, shelters first.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(
            lines[1].contains("\"kind\":\"shelter\"")
                && lines[3].contains("\"kind\":\"household\"")
        );
    }

    fn err(s: &str) -> String {
        parse_str(s).unwrap_err().to_string()
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let text = collection(&[HOUSEHOLD, SHELTER]).replace("\"name\":\"s\",", "\"name\":\"s\",,");
        let e = err(&text);
        assert!(e.starts_with("t.geojson:3:"), "{e}");
        assert!(e.contains("feature 1"), "{e}");
        assert!(err("{\"type\":\"FeatureCollection\",\"features\":[").starts_with("t.geojson:1:"));
        assert!(err("").starts_with("t.geojson:1:1:"));
    }

    #[test]
    fn bad_features_name_their_index_and_line() {
        let cases = [
            (HOUSEHOLD.replace("\"85+\"", "\"90+\""), "unknown variant"),
            (
                HOUSEHOLD.replace("household", "lane"),
                "unknown variant `lane`",
            ),
            (HOUSEHOLD.replace("\"id\":1,", ""), "no id"),
            (
                HOUSEHOLD.replace("[141.95,39.64]", "[241.95,39.64]"),
                "outside WGS 84",
            ),
            (
                HOUSEHOLD.replace("\"Point\"", "\"LineString\""),
                "expected a Point",
            ),
            (HOUSEHOLD.replace("\"0a0b\"", "\"0a0\""), "bad hex"),
            (
                SHELTER.replace("\"floor_area_m2\":700,", ""),
                "neither capacity nor floor_area_m2",
            ),
            (
                SHELTER.replace("\"tsunami\"", "\"lava\""),
                "unknown variant `lava`",
            ),
            (
                ZONE.replace("[[2,2],[3,2],[3,3],[2,2]]", "[[2,2],[3,2]]"),
                "at least 4 positions",
            ),
            (
                ZONE.replace("\"hazard\":\"flood\",", ""),
                "zone has no hazard",
            ),
            (
                SHELTER.replace("\"type\":\"Feature\"", "\"type\":\"Fea\""),
                "expected type \"Feature\"",
            ),
        ];
        for (feature, want) in cases {
            let e = err(&collection(&[SHELTER, &feature]));
            assert!(e.starts_with("t.geojson:3:"), "{e}");
            assert!(e.contains("feature 1:") && e.contains(want), "{e} / {want}");
        }
    }

    #[test]
    fn rules_across_features_name_the_feature_index() {
        let dup = HOUSEHOLD
            .replace("\"serial\":\"01\"", "\"serial\":\"02\"")
            .replace("\"resident\":1", "\"resident\":2");
        let e = err(&collection(&[ZONE, HOUSEHOLD, &dup]));
        assert_eq!(
            e,
            "t.geojson: feature 2: household 1: duplicate household id"
        );
        let same_card = dup
            .replace("\"id\":1", "\"id\":2")
            .replace("\"02\"", "\"01\"");
        let e = err(&collection(&[HOUSEHOLD, ZONE, &same_card]));
        assert_eq!(
            e,
            "t.geojson: feature 2: household 2: resident 2 has a card already linked to resident 1"
        );
        let e = err(&collection(&[SHELTER, SHELTER]));
        assert_eq!(e, "t.geojson: feature 1: shelter 1: duplicate shelter id");
    }

    #[test]
    fn positions_take_an_altitude_but_need_two_numbers() {
        let with_altitude = HOUSEHOLD.replace("[141.95,39.64]", "[141.95,39.64,12.5]");
        let town = parse_str(&collection(&[&with_altitude])).unwrap();
        assert_eq!(town.households[0].location, LonLat::new(141.95, 39.64));
        for (bad, want) in [
            ("[141.95]", "[longitude, latitude]"),
            ("[141.95,\"39\"]", "invalid type"),
            ("141.95", "must be an array"),
        ] {
            let e = err(&collection(&[&HOUSEHOLD.replace("[141.95,39.64]", bad)]));
            assert!(e.starts_with("t.geojson:2:") && e.contains(want), "{e}");
        }
        let flat = ZONE.replace(
            "[[[[0,0],[1,0],[1,1],[0,0]],[[0.1,0.05],[0.2,0.05],[0.2,0.1],[0.1,0.05]]],[[[2,2],[3,2],[3,3],[2,2]]]]",
            "[[0,0],[1,0]]",
        );
        assert!(err(&collection(&[&flat])).contains("must be an array of arrays"));
    }

    #[test]
    fn invalid_utf8_names_line_column_and_byte() {
        let mut bytes = collection(&[SHELTER, HOUSEHOLD]).into_bytes();
        let pos = bytes.windows(3).position(|w| w == b"\"s\"").unwrap() + 1;
        bytes[pos] = 0xff;
        let e = parse(&bytes, "t.geojson").unwrap_err().to_string();
        let line_start = bytes[..pos].iter().rposition(|b| *b == b'\n').unwrap() + 1;
        let want = format!(
            "t.geojson:2:{}: invalid UTF-8 at byte {pos}",
            pos - line_start + 1
        );
        assert_eq!(e, want);
    }

    #[test]
    fn collection_level_errors() {
        assert!(
            err(r#"{"type":"Feature","features":[]}"#).contains("expected a FeatureCollection")
        );
        assert!(err(r#"{"type":"FeatureCollection"}"#).contains("missing field `features`"));
        assert!(err("[1,2]").contains("expected a GeoJSON FeatureCollection"));
        // A byte-order mark and extra top-level members are fine.
        let ok = format!(
            "\u{feff}{{\"name\":\"x\",\"crs\":null,{}",
            &collection(&[HOUSEHOLD])[1..]
        );
        assert_eq!(parse_str(&ok).unwrap().households.len(), 1);
        assert!(err(&format!("{} x", collection(&[]))).contains("trailing characters"));
    }
}
