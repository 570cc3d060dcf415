//! Reading the town file for the map without holding it (issue 22): the file is read through
//! a buffer and its `features` visited one at a time, each kept only in the form the map
//! needs. A household becomes its id and location (its members, names, addresses and cards
//! are skipped unparsed); shelters and zones, a few thousand at most, are kept as their JSON
//! text and read at the end by `evac-maps` itself, so they obey the same rules as everywhere;
//! roads and water lines are skipped. At no time is the whole file in memory, nor a whole
//! parsed town: at 1.5 million households the file is several hundred megabytes and the
//! parsed town more than a gigabyte. The same visitor ([`visit`]) serves the lookup of the
//! addresses of the households needing help (`crate::addresses`), which reads nothing else.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use evac_maps::{LonLat, MapsError, Town};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// What the map keeps of a town file: households (id, location), and a town of its shelters
/// and zones only.
pub(super) struct Light {
    pub(super) households: Vec<(u32, LonLat)>,
    pub(super) town: Town,
}

/// Reads `path` as above.
pub(super) fn read(path: &Path) -> Result<Light, MapsError> {
    let mut out = Gathered::default();
    visit(path, &mut |raw, index| take(&mut out, raw, index))?;
    let file = path.display().to_string();
    let mut seen: Vec<u32> = out.households.iter().map(|h| h.0).collect();
    seen.sort_unstable();
    if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
        let index = out
            .household_at
            .get(
                out.households
                    .iter()
                    .rposition(|h| h.0 == w[0])
                    .unwrap_or(0),
            )
            .copied()
            .unwrap_or(0);
        return Err(MapsError::Feature {
            file,
            index,
            message: format!("household {}: duplicate household id", w[0]),
        });
    }
    let text = format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
        out.others.join(",")
    );
    let town = Town::from_geojson_slice(text.as_bytes(), &file)?;
    Ok(Light {
        households: out.households,
        town,
    })
}

/// What a visitor of the features says after one.
pub(crate) enum Next {
    /// Go on to the next feature.
    More,
    /// Stop here: the visitor has all it wanted (the rest of the file is not read).
    Done,
}

/// The error that stops the read once the sink is done (told apart from a real error by a
/// flag, not by this text).
const DONE: &str = "\u{0}visitor done";

/// Reads the town file at `path` through a buffer and hands each of its `features`, as its
/// JSON text, to `sink` with its index; never the whole file at once. A feature the sink
/// refuses (its message) stops the read with that feature's error.
pub(crate) fn visit(path: &Path, sink: &mut Sink<'_>) -> Result<(), MapsError> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|cause| MapsError::Io {
        path: path.to_owned(),
        action: "read",
        cause,
    })?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    // A UTF-8 byte-order mark is not JSON, but some Windows tools write one.
    {
        use std::io::BufRead;
        let head = r.fill_buf().map_err(|cause| MapsError::Io {
            path: path.to_owned(),
            action: "read",
            cause,
        })?;
        if head.starts_with(b"\xEF\xBB\xBF") {
            r.consume(3);
        }
    }
    let mut done = false;
    let mut de = serde_json::Deserializer::from_reader(r);
    let kind = Collection {
        sink,
        done: &mut done,
    }
    .deserialize(&mut de)
    .and_then(|k| de.end().map(|()| k));
    let kind = match kind {
        Ok(k) => k,
        Err(_) if done => return Ok(()),
        Err(e) => {
            return Err(MapsError::Json {
                file,
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            });
        }
    };
    if kind != "FeatureCollection" {
        return Err(MapsError::Json {
            file,
            line: 1,
            column: 1,
            message: format!("expected a FeatureCollection, found type {kind:?}"),
        });
    }
    Ok(())
}

#[derive(Default)]
struct Gathered {
    households: Vec<(u32, LonLat)>,
    household_at: Vec<usize>,
    /// Shelters' and zones' features, as their JSON text.
    others: Vec<String>,
}

type Sink<'a> = dyn FnMut(&RawValue, usize) -> Result<Next, String> + 'a;

struct Collection<'a, 's> {
    sink: &'a mut Sink<'s>,
    done: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Collection<'_, '_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Collection<'_, '_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        let (mut kind, mut features) = (None, false);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => kind = Some(map.next_value::<String>()?),
                "features" => {
                    map.next_value_seed(Features {
                        sink: &mut *self.sink,
                        done: &mut *self.done,
                    })?;
                    features = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !features {
            return Err(de::Error::missing_field("features"));
        }
        kind.ok_or_else(|| de::Error::missing_field("type"))
    }
}

struct Features<'a, 's> {
    sink: &'a mut Sink<'s>,
    done: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Features<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            match (self.sink)(&raw, index) {
                Ok(Next::More) => {}
                Ok(Next::Done) => {
                    *self.done = true;
                    return Err(de::Error::custom(DONE));
                }
                Err(m) => return Err(de::Error::custom(format!("feature {index}: {m}"))),
            }
            index += 1;
        }
        Ok(())
    }
}

/// The members of a feature the map looks at; the rest (a household's members) is skipped.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    properties: Option<Props<'a>>,
    #[serde(borrow)]
    geometry: Option<Geometry<'a>>,
}

#[derive(Deserialize)]
struct Props<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    id: Option<u32>,
}

#[derive(Deserialize)]
struct Geometry<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    coordinates: Option<&'a RawValue>,
}

fn take(out: &mut Gathered, raw: &RawValue, index: usize) -> Result<Next, String> {
    let head: Head<'_> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let props = head.properties.ok_or("feature has no properties")?;
    match props.kind.as_deref() {
        Some("household") => {
            let id = props.id.ok_or("household has no id")?;
            let g = head.geometry.ok_or("household has no geometry")?;
            if g.kind != "Point" {
                return Err(format!(
                    "household geometry must be a Point, not {}",
                    g.kind
                ));
            }
            let c = g.coordinates.ok_or("household has no coordinates")?;
            let [lon, lat]: [f64; 2] = serde_json::from_str(c.get())
                .map_err(|e| format!("household {id}: a Point is [longitude, latitude]: {e}"))?;
            let at = LonLat { lon, lat };
            if !at.is_valid() {
                return Err(format!("household {id}: location outside WGS 84"));
            }
            out.households.push((id, at));
            out.household_at.push(index);
        }
        Some("shelter" | "zone") => out.others.push(raw.get().to_owned()),
        Some("road" | "water") => {}
        Some(k) => return Err(format!("unknown kind {k:?}")),
        None => return Err("feature has no kind".into()),
    }
    Ok(Next::More)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::super::TownMap;
    use std::path::Path;

    #[test]
    fn the_map_read_streaming_is_the_map_of_the_whole_town() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../maps/data/town.geojson"
        ));
        let town = evac_maps::Town::load(path).unwrap();
        let whole = TownMap::new(town.clone());
        let light = TownMap::load(path).unwrap();
        assert_eq!(format!("{whole:?}"), format!("{light:?}"));
        assert!(town.households.len() > 1_000);
        for h in &town.households {
            assert_eq!(light.household_location(h.id), Some(h.location));
        }
    }

    #[test]
    fn a_bad_household_or_a_duplicate_is_refused_with_its_feature() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.geojson");
        let feature = |id: u32, coords: &str| {
            format!(
                "{{\"type\":\"Feature\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":{coords}}},\
                 \"properties\":{{\"kind\":\"household\",\"id\":{id},\"members\":[]}}}}"
            )
        };
        let write = |features: &[String]| {
            let text = format!(
                "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
                features.join(",\n")
            );
            std::fs::write(&p, text).unwrap();
        };
        write(&[feature(1, "[130.5,31.5]"), feature(2, "[130.6,31.6]")]);
        let m = TownMap::load(&p).unwrap();
        assert_eq!(m.household_location(2).map(|l| l.lon), Some(130.6));
        write(&[feature(1, "[130.5,31.5]"), feature(1, "[130.6,31.6]")]);
        let e = TownMap::load(&p).unwrap_err().to_string();
        assert!(e.contains("feature 1") && e.contains("duplicate"), "{e}");
        write(&[feature(1, "[130.5,31.5]"), feature(2, "[530.6,31.6]")]);
        let e = TownMap::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("feature 1") && e.contains("outside WGS 84"),
            "{e}"
        );
        write(&[feature(1, "[130.5]")]);
        assert!(TownMap::load(&p).is_err());
        std::fs::write(&p, "{\"type\":\"FeatureCollection\",\"features\":[").unwrap();
        assert!(TownMap::load(&p).is_err());
    }
}
