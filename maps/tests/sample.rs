//! The committed sample town is exactly what the generator makes with the
//! documented parameters, so it cannot drift from the code.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of tests: a panic there is a failed test"
)]

use std::path::Path;

use evac_maps::{GenerateParams, SAMPLE_HOUSEHOLDS, SAMPLE_SEED, SAMPLE_SHELTERS, Town, generate};

fn sample_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/town.geojson")
}

#[test]
fn committed_sample_equals_the_generator_output() {
    let params = GenerateParams::default();
    assert_eq!(
        (params.households, params.shelters, params.seed),
        (SAMPLE_HOUSEHOLDS, SAMPLE_SHELTERS, SAMPLE_SEED)
    );
    assert_eq!((SAMPLE_HOUSEHOLDS, SAMPLE_SHELTERS), (3000, 12));
    let generated = generate(&params);
    let loaded = Town::load(sample_path()).unwrap();
    assert!(
        loaded == generated,
        "data/town.geojson differs from generate(): regenerate it with `evac-maps generate --out maps/data`"
    );
    let bytes = std::fs::read(sample_path()).unwrap();
    assert!(
        bytes == generated.to_geojson_string().into_bytes(),
        "data/town.geojson is not byte-identical to the generator's output"
    );
    let codes: String = evac_maps::generate::family_codes(&generated, SAMPLE_SEED)
        .iter()
        .map(|(r, c)| format!("{r},{c}\n"))
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/family-codes.csv");
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        format!("resident,family_code\n{codes}"),
        "data/family-codes.csv differs from the generator: regenerate it"
    );
}

#[test]
fn committed_sample_summary_has_the_expected_keys() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evac-maps"))
        .arg("summary")
        .arg(sample_path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(": ").unwrap().0)
        .collect();
    for key in [
        "households",
        "residents",
        "needing help",
        "with card",
        "shelters",
        "total capacity",
    ] {
        assert!(keys.contains(&key), "{key} missing from {text}");
    }
    assert!(text.starts_with("households: 3000\n"), "{text}");
    assert!(text.contains("\nshelters: 12\n"), "{text}");
}
