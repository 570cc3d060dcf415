//! `evac-maps roads import`: the hand-written OSM fixture, as XML and as PBF, becomes the
//! same roads in the town file, and households and shelters join the network.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of tests: a panic there is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use evac_maps::{GenerateParams, LonLat, Town, generate};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/osm")
        .join(name)
}

/// A small town in the fixture's area, without roads.
fn town_file(dir: &Path) -> PathBuf {
    let mut town = generate(&GenerateParams {
        households: 20,
        shelters: 2,
        seed: 5,
    });
    town.roads.clear();
    for (i, h) in town.households.iter_mut().enumerate() {
        h.location = LonLat::new(141.946 + 0.0004 * i as f64, 39.6352);
    }
    town.shelters[0].location = LonLat::new(141.9552, 39.6462);
    town.shelters[1].location = LonLat::new(141.9501, 39.6321);
    let path = dir.join("in.geojson");
    town.save(&path).unwrap();
    path
}

fn import(map: &Path, town: &Path, out: &Path) -> (Town, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_evac-maps"))
        .args(["roads", "import"])
        .arg(map)
        .arg("--town")
        .arg(town)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        Town::load(out.join("town.geojson")).unwrap(),
        String::from_utf8(o.stdout).unwrap(),
    )
}

#[test]
fn xml_and_pbf_give_the_same_walkable_roads() {
    let dir = tempfile::tempdir().unwrap();
    let town = town_file(dir.path());
    let (a, report) = import(&fixture("tiny.osm"), &town, &dir.path().join("xml"));
    let (b, _) = import(&fixture("tiny.osm.pbf"), &town, &dir.path().join("pbf"));
    assert_eq!(a, b);
    let ways: Vec<(Option<i64>, usize, bool, bool)> = a
        .roads
        .iter()
        .map(|r| (r.osm_id, r.points.len(), r.bridge, r.steps))
        .collect();
    // Not the motorway (1006), the private drive (1007), the building (1009), nor the
    // path whose middle node is missing from the extract (1008: two one-node pieces).
    assert_eq!(
        ways,
        [
            (Some(1001), 3, false, false),
            (Some(1002), 3, false, false),
            (Some(1003), 2, true, false),
            (Some(1004), 5, false, false),
            (Some(1005), 2, false, true),
        ]
    );
    assert_eq!(a.roads[2].points[0], LonLat::new(141.95, 39.638));
    assert!(
        report.contains("roads: 5\n") && report.contains("bridges: 1\n"),
        "{report}"
    );
    assert!(report.contains("connected pieces: 1\n"), "{report}");
    // The rest of the town is kept.
    let before = Town::load(&town).unwrap();
    assert_eq!(
        (a.households, a.shelters, a.zones),
        (before.households, before.shelters, before.zones)
    );
}

#[test]
fn the_imported_network_routes_over_the_footbridge_and_up_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let town = town_file(dir.path());
    let (t, _) = import(&fixture("tiny.osm"), &town, &dir.path().join("out"));
    let net = t.network();
    // 12 nodes in the file: 301 and 302 (the motorway's) are not in the network.
    assert_eq!((net.nodes().len(), net.edges().len()), (10, 10));
    let home = t.households[0].location;
    let s = t.shelters[0].location;
    let snap = net.snap(home).unwrap();
    assert!(snap.access_m < 25.0, "{snap:?}");
    let route = net.route(home, s, None).unwrap();
    assert!(
        route.points.contains(&LonLat::new(141.95, 39.638)),
        "over the footbridge"
    );
    assert!(
        route.points.contains(&LonLat::new(141.955, 39.646)),
        "up the steps"
    );
    let along: f64 = route.points.windows(2).map(|w| w[0].distance_m(w[1])).sum();
    assert!((along - route.length_m).abs() < 1e-6, "{along} {route:?}");
    assert!(route.length_m > 1.15 * home.distance_m(s));
}

#[test]
fn a_bad_osm_file_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let town = town_file(dir.path());
    let bad = dir.path().join("bad.osm");
    std::fs::write(&bad, "<osm><node id=\"1\" lat=\"north\" lon=\"1\"/></osm>").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_evac-maps"))
        .args(["roads", "import"])
        .arg(&bad)
        .arg("--town")
        .arg(&town)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("bad.osm: byte ") && err.contains("is not a coordinate"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let not_pbf = dir.path().join("bad.osm.pbf");
    std::fs::write(&not_pbf, b"not a pbf at all").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_evac-maps"))
        .args(["roads", "import"])
        .arg(&not_pbf)
        .arg("--town")
        .arg(&town)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.osm.pbf"));
}
