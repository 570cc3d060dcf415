//! Import of shelters from GSI's designated emergency evacuation site data
//! (国土地理院「指定緊急避難場所データ」), CSV or GeoJSON.
//!
//! GSI publishes one CSV per municipality with this header:
//!
//! ```text
//! NO,共通ID,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考
//! ```
//!
//! and the nation-wide file puts `市町村コード,都道府県名及び市町村名` in front. A hazard
//! column holds `1` where the site is designated for that hazard and is empty where
//! not. Columns are found by their heading, so both layouts (and extra columns) work.
//! Required: `施設・場所名`, `緯度`, `経度` and the eight hazard columns.
//!
//! GSI's data has no capacity. Two optional columns that municipalities' own lists
//! often carry are read when present: a capacity (`想定収容人数`, `収容人数` or
//! `capacity`) and a floor area in m² (`面積`, `床面積`, `面積(㎡)` or `floor_area_m2`);
//! without a capacity, it is the floor area at 3.5 m² a person; with neither, it is 0
//! (unknown: such a shelter never has room until an officer sets it).
//!
//! Files are read as UTF-8 (a byte-order mark is allowed) or, failing that, as
//! Shift_JIS, the encoding of older downloads. Coordinates are JGD2011, which
//! agrees with WGS 84 to well under a metre. Shelters get ids 1, 2, ... in row order
//! and keep GSI's 共通ID in [`Shelter::gsi_id`]; they are open and not marked
//! accessible (GSI does not say).
//!
//! GSI's GeoJSON has the same headings as property names, with string values, on
//! Point features; [`import_geojson`] reads it with the same rules, naming the
//! feature index in errors.

use std::path::Path;

use crate::error::MapsError;
use crate::hazard::{Hazard, HazardSet};
use crate::model::{LonLat, Shelter, capacity_from_floor_area};

/// Headings accepted for a landslide column: GSI's, and a variant seen in
/// re-published copies.
const LANDSLIDE_ALIASES: [&str; 2] = ["崖崩れ、土石流及び地滑り", "崖崩れ・土石流及び地滑り"];
const CAPACITY_COLUMNS: [&str; 3] = ["想定収容人数", "収容人数", "capacity"];
const AREA_COLUMNS: [&str; 4] = ["面積", "床面積", "面積(㎡)", "floor_area_m2"];

/// Reads shelters from a GSI file: GeoJSON by its `.geojson` or `.json` extension, CSV
/// otherwise.
pub fn import(path: impl AsRef<Path>) -> Result<Vec<Shelter>, MapsError> {
    let path = path.as_ref();
    let geojson = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("geojson") || e.eq_ignore_ascii_case("json"));
    if geojson {
        import_geojson(path)
    } else {
        import_csv(path)
    }
}

/// Reads shelters from a GSI designated-site CSV file.
pub fn import_csv(path: impl AsRef<Path>) -> Result<Vec<Shelter>, MapsError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|cause| MapsError::Io {
        path: path.to_owned(),
        action: "read",
        cause,
    })?;
    parse_csv(&bytes, &path.display().to_string())
}

/// Reads shelters from the bytes of a GSI designated-site CSV; `file` names the
/// source in errors.
pub fn parse_csv(bytes: &[u8], file: &str) -> Result<Vec<Shelter>, MapsError> {
    let err = |line: u64, message: String| MapsError::Csv {
        file: file.to_owned(),
        line,
        message,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(utf8) => encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(bytes)
            .ok_or_else(|| {
                let offset = utf8.valid_up_to();
                let line = 1 + bytes[..offset].iter().filter(|b| **b == b'\n').count() as u64;
                err(line, format!("byte {offset}: neither UTF-8 nor Shift_JIS"))
            })?,
    };

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let csv_err = |e: csv::Error| {
        let line = e.position().map_or(1, |p| p.line());
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("row has {len} fields, the header has {expected_len}")
            }
            _ => e.to_string(),
        };
        err(line, message)
    };
    let header = reader.headers().map_err(csv_err)?.clone();
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.trim()));
    let need = |name: &str, names: &[&str]| {
        find(names).ok_or_else(|| err(1, format!("no column {name:?}")))
    };

    need("施設・場所名", &[NAME])?;
    let lat_col = need("緯度", &["緯度"])?;
    let lon_col = need("経度", &["経度"])?;
    for h in Hazard::ALL {
        need(h.gsi_column(), hazard_names(h))?;
    }

    let mut shelters = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, |p| p.line());
        let get = |names: &[&str]| find(names).map(|i| record.get(i).unwrap_or("").trim());
        let number = |col: usize, what: &str| {
            let v = record.get(col).unwrap_or("").trim();
            v.parse::<f64>()
                .map_err(|_| err(line, format!("{what} {v:?} is not a number")))
        };
        let location = LonLat::new(number(lon_col, "経度")?, number(lat_col, "緯度")?);
        if !location.is_valid() {
            let message = format!(
                "緯度 {} / 経度 {} outside WGS 84",
                location.lat, location.lon
            );
            return Err(err(line, message));
        }
        let id =
            u32::try_from(shelters.len() + 1).map_err(|_| err(line, "too many rows".into()))?;
        shelters.push(site(&get, id, location).map_err(|m| err(line, m))?);
    }
    Ok(shelters)
}

/// Reads shelters from a GSI designated-site GeoJSON file: Point features whose
/// properties carry the same headings as the CSV (`施設・場所名`, `共通ID`, `住所`, the
/// eight hazard flags as `"1"` or `""`, ...). A missing hazard property counts as not
/// designated.
pub fn import_geojson(path: impl AsRef<Path>) -> Result<Vec<Shelter>, MapsError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|cause| MapsError::Io {
        path: path.to_owned(),
        action: "read",
        cause,
    })?;
    parse_geojson(&bytes, &path.display().to_string())
}

/// Reads shelters from the bytes of a GSI designated-site GeoJSON; `file` names the
/// source in errors.
pub fn parse_geojson(bytes: &[u8], file: &str) -> Result<Vec<Shelter>, MapsError> {
    #[derive(serde::Deserialize)]
    struct Collection {
        features: Vec<Feature>,
    }
    #[derive(serde::Deserialize)]
    struct Feature {
        geometry: Option<Geometry>,
        #[serde(default)]
        properties: Option<serde_json::Map<String, serde_json::Value>>,
    }
    #[derive(serde::Deserialize)]
    struct Geometry {
        #[serde(rename = "type")]
        kind: String,
        coordinates: serde_json::Value,
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let collection: Collection =
        serde_json::from_slice(bytes).map_err(|e| MapsError::from_json(file, &e))?;
    let mut shelters = Vec::with_capacity(collection.features.len());
    for (index, f) in collection.features.into_iter().enumerate() {
        let err = |message: String| MapsError::Feature {
            file: file.to_owned(),
            index,
            message,
        };
        let location = match &f.geometry {
            Some(Geometry { kind, coordinates }) if kind == "Point" => {
                match coordinates.as_array().map(Vec::as_slice) {
                    Some([lon, lat, ..]) => match (lon.as_f64(), lat.as_f64()) {
                        (Some(lon), Some(lat)) => LonLat::new(lon, lat),
                        _ => return Err(err("coordinates are not numbers".into())),
                    },
                    _ => return Err(err("a Point needs [longitude, latitude]".into())),
                }
            }
            _ => return Err(err("a site needs a Point geometry".into())),
        };
        if !location.is_valid() {
            return Err(err(format!(
                "position [{}, {}] outside WGS 84",
                location.lon, location.lat
            )));
        }
        let props = f.properties.unwrap_or_default();
        let text: Vec<(&str, String)> = props
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.trim().to_owned(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.trim(), v)
            })
            .collect();
        let get = |names: &[&str]| {
            text.iter()
                .find(|(k, _)| names.contains(k))
                .map(|(_, v)| v.as_str())
        };
        let id = u32::try_from(index + 1).map_err(|_| err("too many features".into()))?;
        shelters.push(site(&get, id, location).map_err(err)?);
    }
    Ok(shelters)
}

const NAME: &str = "施設・場所名";

fn hazard_names(h: Hazard) -> &'static [&'static str] {
    match h {
        Hazard::Landslide => &LANDSLIDE_ALIASES,
        Hazard::Flood => &["洪水"],
        Hazard::StormSurge => &["高潮"],
        Hazard::Earthquake => &["地震"],
        Hazard::Tsunami => &["津波"],
        Hazard::LargeFire => &["大規模な火事"],
        Hazard::InlandFlood => &["内水氾濫"],
        Hazard::Volcano => &["火山現象"],
    }
}

/// One site from its fields, looked up by heading (`None`: no such column).
fn site<'a>(
    get: &dyn Fn(&[&str]) -> Option<&'a str>,
    id: u32,
    location: LonLat,
) -> Result<Shelter, String> {
    let optional = |names: &[&str]| get(names).filter(|v| !v.is_empty());
    let name = optional(&[NAME]).ok_or("施設・場所名 is empty")?;
    let mut hazards = HazardSet::EMPTY;
    for hazard in Hazard::ALL {
        let value = get(hazard_names(hazard)).unwrap_or("");
        let designated = flag(value).ok_or_else(|| {
            format!(
                "{} flag {value:?} is neither 1 nor empty",
                hazard.gsi_column()
            )
        })?;
        if designated {
            hazards.insert(hazard);
        }
    }
    let floor_area_m2 = match optional(&AREA_COLUMNS) {
        Some(v) => match v.parse::<f64>() {
            Ok(a) if a.is_finite() && a >= 0.0 => Some(a),
            _ => return Err(format!("floor area {v:?} is not a non-negative number")),
        },
        None => None,
    };
    let capacity = match optional(&CAPACITY_COLUMNS) {
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| format!("capacity {v:?} is not a whole number"))?,
        None => floor_area_m2.map_or(0, capacity_from_floor_area),
    };
    Ok(Shelter {
        id,
        name: name.to_owned(),
        address: optional(&["住所"]).map(str::to_owned),
        location,
        capacity,
        floor_area_m2,
        hazards,
        accessible: false,
        open: true,
        gsi_id: optional(&["共通ID"]).map(str::to_owned),
    })
}

/// A hazard flag: GSI writes `1` or nothing; some re-published copies use circles.
fn flag(value: &str) -> Option<bool> {
    match value {
        "1" | "○" | "〇" | "◯" | "◎" => Some(true),
        "" | "0" | "-" | "×" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_reads_geojson_by_its_extension_and_csv_otherwise() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gsi");
        let csv = import(fixtures.join("shiomihama_2.csv")).unwrap();
        let geojson = import(fixtures.join("shiomihama_2.geojson")).unwrap();
        assert_eq!(csv, import_csv(fixtures.join("shiomihama_2.csv")).unwrap());
        assert_eq!(
            geojson,
            import_geojson(fixtures.join("shiomihama_2.geojson")).unwrap()
        );
        assert!(!csv.is_empty() && !geojson.is_empty());
        // Read the other way, each file fails: the extension decides.
        assert!(import_csv(fixtures.join("shiomihama_2.geojson")).is_err());
    }

    const HEADER: &str = "NO,共通ID,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考\n";

    #[test]
    fn reads_gsi_layout_flags_and_coordinates() {
        let csv = format!(
            "{HEADER}1,E0000000000101,汐見台公園,架空県汐見町1-1,1,,,1,1,,1,,1,39.641,141.951,\n"
        );
        let s = parse_csv(csv.as_bytes(), "t.csv").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "汐見台公園");
        assert_eq!(s[0].gsi_id.as_deref(), Some("E0000000000101"));
        assert_eq!(s[0].location, LonLat::new(141.951, 39.641));
        let hz: Vec<Hazard> = s[0].hazards.iter().collect();
        assert_eq!(
            hz,
            [
                Hazard::Flood,
                Hazard::Earthquake,
                Hazard::Tsunami,
                Hazard::InlandFlood
            ]
        );
        assert_eq!((s[0].capacity, s[0].floor_area_m2), (0, None));
    }

    #[test]
    fn nationwide_layout_with_floor_area_gives_capacity() {
        let csv = "市町村コード,都道府県名及び市町村名,NO,共通ID,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考,面積\n\
                   99999,架空県汐見町,1,E1,体育館,,,,,1,,,,,,39.6,141.9,,700\n";
        let s = parse_csv(csv.as_bytes(), "t.csv").unwrap();
        assert_eq!((s[0].capacity, s[0].floor_area_m2), (200, Some(700.0)));
    }

    #[test]
    fn shift_jis_is_decoded() {
        let csv = format!("{HEADER}1,E1,汐見台公園,,,,,1,1,,,,,39.6,141.9,\n");
        let (sjis, _, bad) = encoding_rs::SHIFT_JIS.encode(&csv);
        assert!(!bad);
        let s = parse_csv(&sjis, "t.csv").unwrap();
        assert_eq!(s[0].name, "汐見台公園");
    }

    #[test]
    fn errors_name_file_and_line() {
        let csv = format!("{HEADER}1,E1,a,,,,,1,,,,,,39.6,141.9,\n2,E2,b,,,,,x,,,,,,39.6,141.9,\n");
        let e = parse_csv(csv.as_bytes(), "t.csv").unwrap_err().to_string();
        assert!(e.starts_with("t.csv:3: 地震 flag \"x\""), "{e}");
        let e = parse_csv(b"NO,name\n1,a\n", "t.csv")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.csv:1: no column"), "{e}");
    }
}
