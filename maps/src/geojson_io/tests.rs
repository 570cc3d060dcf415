use super::*;
use crate::error::MapsError;
use crate::model::{AgeBand, CardRef, Language, LonLat};
use crate::town::Town;

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
    // A town file from before the registry kept kana, birth and consent still loads: no
    // kana, no birth date, no consent (no one is told anything about this resident).
    assert_eq!(
        (m.kana.as_str(), m.birth, m.anpi_consent),
        ("", None, false)
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
        lines[1].contains("\"kind\":\"shelter\"") && lines[3].contains("\"kind\":\"household\"")
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
    assert!(err(r#"{"type":"Feature","features":[]}"#).contains("expected a FeatureCollection"));
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

#[test]
fn a_file_loads_through_a_buffer_as_its_bytes_parse() {
    // Features past the reader's first buffer, and a byte-order mark at the start.
    let mut features = vec![SHELTER.to_owned()];
    for i in 1..=30_000u32 {
        features.push(
            HOUSEHOLD
                .replace("\"id\":1", &format!("\"id\":{i}"))
                .replace("\"resident\":1", &format!("\"resident\":{i}"))
                .replace("\"serial\":\"01\"", &format!("\"serial\":\"{i:08x}\"")),
        );
    }
    let refs: Vec<&str> = features.iter().map(String::as_str).collect();
    let text = format!("\u{feff}{}", collection(&refs));
    assert!(text.len() > 2 << 20, "past the 1 MiB buffer");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.geojson");
    std::fs::write(&path, &text).unwrap();
    let loaded = Town::load(&path).unwrap();
    assert_eq!(loaded, parse(text.as_bytes(), "t.geojson").unwrap());
    assert_eq!(loaded.households.len(), 30_000);
    // An error names the file, line and column as before.
    std::fs::write(
        &path,
        text.replace("\"kind\":\"household\",\"id\":29999", "\"id\":x"),
    )
    .unwrap();
    let e = Town::load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:", path.display())), "{e}");
}
