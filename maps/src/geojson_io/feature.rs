//! One GeoJSON feature as read: its raw properties and geometry (coordinates of any depth),
//! checked and converted into a household, shelter, zone, road or water line. Errors are
//! plain text; the reader adds the file, line, column and feature index.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};

use crate::hazard::{Hazard, HazardSet};
use crate::model::{Household, Language, LonLat, Member, Shelter, Zone, capacity_from_floor_area};
use crate::roads::{Road, Water};

/// A feature converted to the model.
pub(super) enum Item {
    Household(Household),
    Shelter(Shelter),
    Zone(Zone),
    Road(Road),
    Water(Water),
}

/// A feature's members as read: `type`, `geometry` and `properties`.
pub(super) struct RawFeature {
    pub(super) kind: Option<String>,
    pub(super) geometry: Option<RawGeometry>,
    pub(super) properties: Option<RawProps>,
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
pub(super) struct RawProps {
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
pub(super) struct RawGeometry {
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
    pub(super) fn convert(self) -> Result<Item, String> {
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
