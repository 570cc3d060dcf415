//! The town's data: households and their members, shelters, hazard zones.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hazard::{Hazard, HazardSet};
use crate::registry::BirthDate;

/// Mean Earth radius in metres (IUGG), used for great-circle distances.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Floor area a sheltered person needs, in square metres: the figure used to derive a
/// shelter's capacity from its floor area when the capacity is not given.
pub const FLOOR_AREA_PER_PERSON_M2: f64 = 3.5;

/// A position in WGS 84 degrees, longitude first as in GeoJSON.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LonLat {
    /// Longitude in degrees east, -180 to 180.
    pub lon: f64,
    /// Latitude in degrees north, -90 to 90.
    pub lat: f64,
}

impl LonLat {
    /// A position from longitude and latitude in degrees.
    pub fn new(lon: f64, lat: f64) -> Self {
        LonLat { lon, lat }
    }

    /// Whether both numbers are finite and within the WGS 84 ranges.
    pub fn is_valid(self) -> bool {
        self.lon.is_finite()
            && self.lat.is_finite()
            && (-180.0..=180.0).contains(&self.lon)
            && (-90.0..=90.0).contains(&self.lat)
    }

    /// Great-circle (haversine) distance to `other` in metres on a sphere of
    /// [`EARTH_RADIUS_M`].
    pub fn distance_m(self, other: LonLat) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }

    /// The unit vector from the Earth's centre through this position (x towards
    /// 0°E on the equator, z towards the north pole).
    pub fn unit_vector(self) -> [f64; 3] {
        let (lat, lon) = (self.lat.to_radians(), self.lon.to_radians());
        [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
    }
}

/// A resident's age band, as the registry keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AgeBand {
    /// 0 to 14 years.
    #[serde(rename = "0-14")]
    Child,
    /// 15 to 39 years.
    #[serde(rename = "15-39")]
    Young,
    /// 40 to 64 years.
    #[serde(rename = "40-64")]
    Middle,
    /// 65 to 74 years.
    #[serde(rename = "65-74")]
    Senior,
    /// 75 to 84 years.
    #[serde(rename = "75-84")]
    Elder,
    /// 85 years and over.
    #[serde(rename = "85+")]
    Oldest,
}

impl AgeBand {
    /// All bands, youngest first.
    pub const ALL: [AgeBand; 6] = [
        AgeBand::Child,
        AgeBand::Young,
        AgeBand::Middle,
        AgeBand::Senior,
        AgeBand::Elder,
        AgeBand::Oldest,
    ];

    /// The string form: "0-14", "15-39", "40-64", "65-74", "75-84" or "85+".
    pub fn as_str(self) -> &'static str {
        match self {
            AgeBand::Child => "0-14",
            AgeBand::Young => "15-39",
            AgeBand::Middle => "40-64",
            AgeBand::Senior => "65-74",
            AgeBand::Elder => "75-84",
            AgeBand::Oldest => "85+",
        }
    }

    /// Whether the band is 65 or over.
    pub fn is_aged(self) -> bool {
        self >= AgeBand::Senior
    }
}

impl fmt::Display for AgeBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The language a household's TV overlay is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Language {
    /// Japanese.
    #[default]
    #[serde(rename = "ja")]
    Japanese,
    /// English.
    #[serde(rename = "en")]
    English,
    /// Easy Japanese (やさしい日本語), for residents still learning Japanese.
    #[serde(rename = "ja-easy")]
    EasyJapanese,
}

/// A reference to one JPKI user-authentication certificate linked to a resident:
/// the issuer's key identifier and the certificate serial number. Never the 12-digit
/// My Number.
///
/// In JSON both are lower-case hex strings: `{"issuer_key_id": "…", "serial": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CardRef {
    /// The authority key identifier of the issuing CA (20 bytes for JPKI).
    #[serde(with = "hex_bytes")]
    pub issuer_key_id: Vec<u8>,
    /// The certificate serial number, big-endian, as DER encodes its value.
    #[serde(with = "hex_bytes")]
    pub serial: Vec<u8>,
}

/// A resident, member of one household.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The resident id, unique across the town.
    pub resident: u32,
    /// The name as registered, shown on the shelter kiosk (synthetic data: family name,
    /// a space, given name, in kanji).
    #[serde(default)]
    pub name: String,
    /// The resident's age band.
    pub age_band: AgeBand,
    /// Whether the resident needs help to evacuate (避難行動要支援者).
    #[serde(default)]
    pub needs_help: bool,
    /// The card certificates linked to this resident (none, one, or several).
    #[serde(default)]
    pub cards: Vec<CardRef>,
    /// The name's reading in katakana, family name, a space, given name (サトウ カズコ);
    /// empty when the registry has none. Kept at HQ for families' queries only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kana: String,
    /// The date of birth, if the registry has it. Kept at HQ for families' queries only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth: Option<BirthDate>,
    /// Whether the resident agreed that HQ tell someone who asks by their kana name and date
    /// of birth, or by their family code, where they are (安否情報の提供に同意). Absent
    /// means no.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anpi_consent: bool,
}

/// A household: one dwelling, its members, and what its TV overlay needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    /// The household id, unique among households.
    pub id: u32,
    /// Where the dwelling is.
    pub location: LonLat,
    /// The postal address, if known (never broadcast).
    pub address: Option<String>,
    /// The language of the household's TV overlay.
    pub language: Language,
    /// The residents of the household.
    pub members: Vec<Member>,
}

impl Household {
    /// Whether any member needs help to evacuate.
    pub fn needs_help(&self) -> bool {
        self.members.iter().any(|m| m.needs_help)
    }
}

/// A designated emergency evacuation site (指定緊急避難場所).
#[derive(Debug, Clone, PartialEq)]
pub struct Shelter {
    /// The shelter id, unique among shelters.
    pub id: u32,
    /// The shelter's name.
    pub name: String,
    /// The postal address, if known.
    pub address: Option<String>,
    /// Where the shelter is.
    pub location: LonLat,
    /// How many people it takes.
    pub capacity: u32,
    /// Floor area in square metres, if known.
    pub floor_area_m2: Option<f64>,
    /// The hazards it is designated for.
    pub hazards: HazardSet,
    /// Whether it is accessible to people who need help (step-free, etc.).
    pub accessible: bool,
    /// Whether it is open now.
    pub open: bool,
    /// GSI's common id (共通ID) when the shelter came from GSI's data.
    pub gsi_id: Option<String>,
}

impl Shelter {
    /// Whether the shelter is designated for `hazard`.
    pub fn suits(&self, hazard: Hazard) -> bool {
        self.hazards.contains(hazard)
    }
}

/// The capacity that a floor area gives at [`FLOOR_AREA_PER_PERSON_M2`] a person,
/// rounded down.
pub fn capacity_from_floor_area(floor_area_m2: f64) -> u32 {
    if floor_area_m2.is_finite() && floor_area_m2 > 0.0 {
        // `as` saturates at u32::MAX, which is what we want for absurd areas.
        (floor_area_m2 / FLOOR_AREA_PER_PERSON_M2).floor() as u32
    } else {
        0
    }
}

/// A hazard zone: the area a hazard map marks for one hazard.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// The zone id, unique among zones.
    pub id: u32,
    /// The zone's name.
    pub name: String,
    /// The hazard the zone is marked for.
    pub hazard: Hazard,
    /// The area, as polygons of WGS 84 (longitude, latitude).
    pub area: geo::MultiPolygon<f64>,
}

impl Zone {
    /// Whether `point` lies inside the zone (a point on the boundary does not).
    pub fn contains(&self, point: LonLat) -> bool {
        use geo::Contains;
        self.area.contains(&geo::Point::new(point.lon, point.lat))
    }
}

/// Serde helper: bytes as a lower-case hex string (upper case is accepted on input).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(text.as_ref())
            .map_err(|e| serde::de::Error::custom(format!("bad hex {text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude on this sphere is R * pi / 180.
        let d = LonLat::new(141.95, 39.0).distance_m(LonLat::new(141.95, 40.0));
        assert!((d - EARTH_RADIUS_M.to_radians()).abs() < 1e-6, "{d}");
        // Across the antimeridian: 0.2 degrees of longitude on the equator.
        let d = LonLat::new(179.9, 0.0).distance_m(LonLat::new(-179.9, 0.0));
        assert!((d - 0.2 * EARTH_RADIUS_M.to_radians()).abs() < 1e-3, "{d}");
        assert_eq!(
            LonLat::new(10.0, 20.0).distance_m(LonLat::new(10.0, 20.0)),
            0.0
        );
    }

    #[test]
    fn capacity_from_floor_area_rounds_down_at_three_and_a_half_square_metres() {
        assert_eq!(capacity_from_floor_area(700.0), 200);
        assert_eq!(capacity_from_floor_area(6.9), 1);
        assert_eq!(capacity_from_floor_area(3.4), 0);
        assert_eq!(capacity_from_floor_area(-1.0), 0);
        assert_eq!(capacity_from_floor_area(f64::NAN), 0);
    }

    #[test]
    fn age_band_strings_are_the_agreed_ones() {
        let names: Vec<String> = AgeBand::ALL
            .iter()
            .map(|b| serde_json::to_string(b).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "\"0-14\"",
                "\"15-39\"",
                "\"40-64\"",
                "\"65-74\"",
                "\"75-84\"",
                "\"85+\""
            ]
        );
        assert!(AgeBand::Senior.is_aged() && !AgeBand::Middle.is_aged());
    }

    #[test]
    fn card_ref_hex_is_lower_case_out_and_either_case_in() {
        let card = CardRef {
            issuer_key_id: vec![0xAB, 0x01],
            serial: vec![0x7f],
        };
        let json = serde_json::to_string(&card).unwrap();
        assert_eq!(json, r#"{"issuer_key_id":"ab01","serial":"7f"}"#);
        let back: CardRef =
            serde_json::from_str(r#"{"issuer_key_id":"AB01","serial":"7F"}"#).unwrap();
        assert_eq!(back, card);
        assert!(
            serde_json::from_str::<CardRef>(r#"{"issuer_key_id":"abc","serial":"7f"}"#).is_err()
        );
    }

    #[test]
    fn zone_contains_inside_not_outside() {
        use geo::polygon;
        let square =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)];
        let zone = Zone {
            id: 1,
            name: "z".into(),
            hazard: Hazard::Flood,
            area: square.into(),
        };
        assert!(zone.contains(LonLat::new(0.5, 0.5)));
        assert!(!zone.contains(LonLat::new(1.5, 0.5)));
    }
}
