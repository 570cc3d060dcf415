//! The GSI CSV fixture, read through the library.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of tests: a panic there is a failed test"
)]

use std::path::Path;

use evac_maps::{Hazard, LonLat, MapsError, gsi};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gsi")
        .join(name)
}

#[test]
fn the_fixture_reads_as_six_shelters_with_gsi_flags() {
    let shelters = gsi::import_csv(fixture("shiomihama_2.csv")).unwrap();
    assert_eq!(shelters.len(), 6);
    let ids: Vec<u32> = shelters.iter().map(|s| s.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    let school = &shelters[0];
    assert_eq!(school.name, "潮見浜町立本町小学校");
    assert_eq!(school.gsi_id.as_deref(), Some("E9990100000101"));
    assert_eq!(school.address.as_deref(), Some("架空県潮見浜町本町1-1"));
    assert_eq!(school.location, LonLat::new(141.9553, 39.6412));
    let flags: Vec<Hazard> = school.hazards.iter().collect();
    assert_eq!(
        flags,
        [
            Hazard::Flood,
            Hazard::Landslide,
            Hazard::Earthquake,
            Hazard::LargeFire,
            Hazard::InlandFlood
        ]
    );
    // A quoted name, and a quoted remark with a comma that must not shift the columns.
    assert_eq!(shelters[3].name, "本町津波避難ビル（潮見浜町役場庁舎）");
    assert!(shelters[3].suits(Hazard::Tsunami) && !shelters[3].suits(Hazard::Flood));
    assert_eq!(shelters[3].location, LonLat::new(141.96, 39.6393));
    assert!(shelters[5].suits(Hazard::Volcano));
    assert!(
        shelters
            .iter()
            .all(|s| s.open && !s.accessible && s.capacity == 0 && s.floor_area_m2.is_none())
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let e = gsi::import_csv(fixture("no_such.csv")).unwrap_err();
    assert!(matches!(e, MapsError::Io { .. }));
    assert!(e.to_string().contains("no_such.csv: cannot read"), "{e}");
}

#[test]
fn the_geojson_fixture_gives_the_same_sites_as_the_csv() {
    let from_json = gsi::import_geojson(fixture("shiomihama_2.geojson")).unwrap();
    let from_csv = gsi::import_csv(fixture("shiomihama_2.csv")).unwrap();
    assert_eq!(from_json.len(), 3);
    for (j, want) in from_json
        .iter()
        .zip([&from_csv[0], &from_csv[1], &from_csv[3]])
    {
        assert_eq!(
            (&j.name, &j.gsi_id, &j.address, j.location, j.hazards),
            (
                &want.name,
                &want.gsi_id,
                &want.address,
                want.location,
                want.hazards
            )
        );
    }
}

#[test]
fn gsi_geojson_errors_name_the_feature() {
    let text = std::fs::read_to_string(fixture("shiomihama_2.geojson")).unwrap();
    let cases = [
        (
            text.replacen("\"津波\": \"1\"", "\"津波\": \"yes\"", 1),
            "feature 1: 津波 flag \"yes\"",
        ),
        (
            text.replacen("\"Point\"", "\"Polygon\"", 1),
            "feature 0: a site needs a Point geometry",
        ),
        (
            text.replacen("\"汐見台高台公園\"", "\"\"", 1),
            "feature 1: 施設・場所名 is empty",
        ),
        (
            text.replacen("141.9345", "341.9345", 1),
            "feature 1: position [341.9345, 39.655] outside WGS 84",
        ),
    ];
    for (bad, want) in cases {
        let e = gsi::parse_geojson(bad.as_bytes(), "g.geojson")
            .unwrap_err()
            .to_string();
        assert_eq!(e.split_once(": ").unwrap().0, "g.geojson", "{e}");
        assert!(e.contains(want), "{e} / {want}");
    }
    let e = gsi::parse_geojson(&text.as_bytes()[..100], "g.geojson")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("g.geojson:"), "{e}");
}
