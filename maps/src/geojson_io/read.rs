//! Reading `town.geojson`: the collection and its `features` array visited one feature at
//! a time (each converted by [`super::feature`] while the parser is still inside it), then
//! the rules across features checked and reported with the feature's index.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::feature::{Item, RawFeature};
use crate::error::MapsError;
use crate::model::{Household, Shelter, Zone};
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
    collection(serde_json::Deserializer::from_str(text), file)
}

/// Parses a town from a reader, through a buffer: the file is never whole in memory (at
/// 300,000 households it is 237 MB, beside the parsed town). Strings are checked as UTF-8 one
/// by one, so an invalid byte is reported with serde_json's line and column only.
pub(crate) fn parse_reader<R: std::io::Read>(r: R, file: &str) -> Result<Town, MapsError> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::with_capacity(1 << 20, r);
    // A UTF-8 byte-order mark is not JSON, but some Windows tools write one.
    let head = r.fill_buf().map_err(|cause| MapsError::Io {
        path: file.into(),
        action: "read",
        cause,
    })?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
    }
    collection(serde_json::Deserializer::from_reader(r), file)
}

/// The collection from `de`, its features converted and the town's rules checked.
fn collection<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    file: &str,
) -> Result<Town, MapsError> {
    let cursor = Cursor::new(None);
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
