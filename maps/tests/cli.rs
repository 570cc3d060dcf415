//! Runs the built `evac-maps` binary as a user would.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of tests: a panic there is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_evac-maps"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gsi")
        .join(name)
}

fn generate(dir: &Path, households: &str, shelters: &str, seed: &str) -> Vec<u8> {
    let out = run(&[
        "generate",
        "--households",
        households,
        "--shelters",
        shelters,
        "--seed",
        seed,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("town.geojson")).unwrap()
}

/// A failed run: non-zero exit, exactly one line on stderr, no panic.
fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(
        !out.status.success(),
        "expected failure, got success: {stderr}"
    );
    assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    stderr
}

#[test]
fn same_seed_gives_the_same_bytes_in_two_directories() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = generate(a.path(), "2000", "30", "77");
    let second = generate(b.path(), "2000", "30", "77");
    assert!(first.len() > 100_000);
    assert!(first == second, "two runs with seed 77 differ");
    let other = generate(c.path(), "2000", "30", "78");
    assert!(first != other, "seed 78 gave the same town as seed 77");
}

#[test]
fn python_reads_a_feature_collection_with_geometry_and_kind_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "500", "12", "3");
    let script = r#"
import json, sys
fc = json.load(open(sys.argv[1], encoding="utf-8"))
assert fc["type"] == "FeatureCollection", fc["type"]
kinds = {}
for i, f in enumerate(fc["features"]):
    assert f["type"] == "Feature", i
    # A file-wide feature id, so GDAL/QGIS do not take the per-kind properties.id.
    assert f["id"] == i + 1, (i, f.get("id"))
    g = f["geometry"]
    assert isinstance(g, dict) and g["type"] in ("Point", "Polygon", "MultiPolygon", "LineString"), i
    p = f["properties"]
    kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
    assert isinstance(p["id"], int), i
    if p["kind"] == "household":
        lon, lat = g["coordinates"]
        assert 141.8 < lon < 142.0 and 39.5 < lat < 39.7, (lon, lat)
        for m in p["members"]:
            assert isinstance(m["resident"], int) and isinstance(m["needs_help"], bool)
            assert m["age_band"] in ("0-14", "15-39", "40-64", "65-74", "75-84", "85+")
            assert isinstance(m["name"], str) and m["name"]
            for c in m["cards"]:
                assert c["issuer_key_id"] == c["issuer_key_id"].lower() and len(c["issuer_key_id"]) == 40
                int(c["serial"], 16)
    elif p["kind"] == "shelter":
        for key in ("name", "capacity", "floor_area_m2", "hazards", "accessible", "open"):
            assert key in p, (i, key)
        assert set(p["hazards"]) <= {"flood", "landslide", "storm-surge", "earthquake", "tsunami", "large-fire", "inland-flood", "volcano"}
    elif p["kind"] == "zone":
        assert p["hazard"] and "name" in p
    elif p["kind"] in ("road", "water"):
        assert g["type"] == "LineString" and len(g["coordinates"]) >= 2, i
        assert all(141.8 < lon < 142.0 and 39.5 < lat < 39.7 for lon, lat in g["coordinates"]), i
    else:
        raise AssertionError(p["kind"])
print(kinds.get("household", 0), kinds.get("shelter", 0), kinds.get("zone", 0), kinds.get("road", 0) > 100, kinds.get("water", 0))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("town.geojson"))
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "500 12 4 True 1"
    );
}

#[test]
fn summary_prints_one_name_value_a_line() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "400", "12", "5");
    let path = dir.path().join("town.geojson");
    let out = run(&["summary", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let want = evac_maps::Town::load(&path).unwrap().summary();
    let pairs: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("name: value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|p| p.0 == k)
            .map(|p| p.1.clone())
            .unwrap_or_else(|| panic!("no {k}"))
    };
    assert_eq!(get("households"), "400");
    assert_eq!(get("residents"), want.residents.to_string());
    assert_eq!(get("needing help"), want.needing_help.to_string());
    assert_eq!(get("with card"), want.with_card.to_string());
    assert_eq!(get("shelters"), "12");
    assert_eq!(get("total capacity"), want.total_capacity.to_string());
}

#[test]
fn malformed_geojson_fails_with_one_line_naming_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.geojson");
    std::fs::write(&bad, "{\"type\":\"FeatureCollection\",\"features\":[\n{\"type\":\"Feature\",\"geometry\":null,\"properties\":{\"kind\":\"zone\",\"id\":1}}\n]}").unwrap();
    let e = one_line_error(&run(&["summary", bad.to_str().unwrap()]));
    assert!(
        e.contains("bad.geojson:2:") && e.contains("feature 0: feature has no geometry"),
        "{e}"
    );

    std::fs::write(&bad, [b'{', 0xff, b'}']).unwrap();
    let e = one_line_error(&run(&["summary", bad.to_str().unwrap()]));
    assert!(e.contains("bad.geojson:1:2:"), "{e}");

    let missing = dir.path().join("missing.geojson");
    let e = one_line_error(&run(&["summary", missing.to_str().unwrap()]));
    assert!(e.contains("missing.geojson: cannot read"), "{e}");
}

#[test]
fn gsi_import_then_nearest_tsunami_shelter() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("gsi.geojson");
    let out = run(&[
        "import-gsi",
        fixture("shiomihama_2.csv").to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "shelters: 6\n");
    // From the river mouth, the nearest tsunami site is the evacuation building (id 4):
    // the school (id 1) is nearer but not designated for tsunami.
    let out = run(&[
        "nearest",
        out_path.to_str().unwrap(),
        "--lon",
        "141.957",
        "--lat",
        "39.640",
        "--hazard",
        "tsunami",
        "-k",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, ["4", "2"]);
}

#[test]
fn an_absurd_town_size_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "generate",
        "--households",
        "4000000000",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let e = one_line_error(&out);
    assert!(
        e.contains("--households 4000000000 is more than 10000000"),
        "{e}"
    );
    assert!(!dir.path().join("town.geojson").exists());
}

#[test]
fn gsi_geojson_import_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("gsi.geojson");
    let input = fixture("shiomihama_2.geojson");
    let out = run(&[
        "import-gsi",
        input.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "shelters: 3\n");
    assert_eq!(evac_maps::Town::load(&out_path).unwrap().shelters.len(), 3);
}

#[test]
fn malformed_gsi_csv_fails_with_one_line_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("x.geojson");
    for (file, line, words) in [
        ("short_row.csv", 3, "15 fields"),
        ("bad_latitude.csv", 4, "緯度"),
        ("bad_flag.csv", 3, "地震 flag"),
        ("missing_column.csv", 1, "no column"),
        ("bad_encoding.csv", 3, "neither UTF-8 nor Shift_JIS"),
        ("unterminated_quote.csv", 2, "fields"),
    ] {
        let out = run(&[
            "import-gsi",
            fixture(file).to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ]);
        let e = one_line_error(&out);
        assert!(
            e.contains(&format!("{file}:{line}: ")) && e.contains(words),
            "{file}: {e}"
        );
        assert!(!out_path.exists(), "{file}: wrote output despite the error");
    }
}

#[test]
fn cards_says_which_card_belongs_to_which_resident() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "200", "6", "3");
    let path = dir.path().join("town.geojson");
    let town = evac_maps::Town::load(&path).unwrap();
    let out = run(&["cards", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let cards: usize = town
        .households
        .iter()
        .flat_map(|h| &h.members)
        .map(|m| m.cards.len())
        .sum();
    assert_eq!(text.lines().count(), cards);
    // One resident: exactly their cards, with their household.
    let (h, m) = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(move |m| (h, m)))
        .find(|(_, m)| !m.cards.is_empty())
        .unwrap();
    let out = run(&[
        "cards",
        path.to_str().unwrap(),
        "--resident",
        &m.resident.to_string(),
    ]);
    let want: Vec<String> = m
        .cards
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                m.resident,
                h.id,
                hex::encode(&c.issuer_key_id),
                hex::encode(&c.serial)
            )
        })
        .collect();
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        want
    );
    // Nobody with that id: one line saying so, exit 1.
    let out = run(&["cards", path.to_str().unwrap(), "--resident", "4000000000"]);
    assert!(one_line_error(&out).contains("no card for resident 4000000000"));
}
