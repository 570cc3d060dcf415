//! The command line others build on: `plan --json` (hazard TOML and CAP), `keygen`, and one
//! clear line with a non-zero exit on bad input.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::collections::HashSet;
use std::process::Command;

use evac_maps::{GenerateParams, generate};

fn hq(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_evac-hq"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn plan_prints_orders_for_a_hazard_file_and_a_cap_file() {
    let dir = tempfile::tempdir().unwrap();
    let town = generate(&GenerateParams {
        households: 800,
        shelters: 12,
        seed: 4,
    });
    let town_path = dir.path().join("town.geojson");
    town.save(&town_path).unwrap();
    let toml = dir.path().join("t.toml");
    std::fs::write(&toml, "hazard = \"tsunami\"\nlevel = 4\nzones = [1]\n").unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        toml.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let orders = v["orders"].as_array().unwrap();
    let unassigned = v["unassigned"].as_array().unwrap();
    let in_zone: HashSet<u64> = town
        .households
        .iter()
        .filter(|h| town.zones[0].contains(h.location))
        .map(|h| u64::from(h.id))
        .collect();
    // Every household in the zone has an order; those without room have shelter 0 (NONE)
    // and are also listed as unassigned.
    let planned: HashSet<u64> = orders
        .iter()
        .map(|o| o["household"].as_u64().unwrap())
        .collect();
    assert_eq!(planned, in_zone);
    let no_shelter: HashSet<u64> = orders
        .iter()
        .filter(|o| o["shelter"].as_u64() == Some(0))
        .map(|o| o["household"].as_u64().unwrap())
        .collect();
    let unassigned: HashSet<u64> = unassigned.iter().map(|h| h.as_u64().unwrap()).collect();
    assert_eq!(no_shelter, unassigned);
    for o in orders {
        assert_eq!(
            (
                o["level"].as_u64(),
                o["hazard"].as_str(),
                o["version"].as_u64()
            ),
            (Some(4), Some("tsunami"), Some(1))
        );
        let sid = o["shelter"].as_u64().unwrap() as u32;
        if sid != 0 {
            let s = town.shelter(sid).unwrap();
            assert!(s.suits(evac_maps::Hazard::Tsunami));
        }
        let h = town
            .household(o["household"].as_u64().unwrap() as u32)
            .unwrap();
        assert_eq!(o["needs_help"].as_bool(), Some(h.needs_help()));
    }
    let cap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cap/tsunami-alert.xml"
    );
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        cap,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v["orders"].as_array().unwrap().is_empty());
    // The alert's own expiry (2036-11-18T11:00:00+09:00) travels with the plan.
    assert_eq!(v["expires"], 2_110_586_400u64, "{v}");

    // Regression (issue 13, item 7): a CAP whose <expires> passed years ago produced orders.
    let old_cap = dir.path().join("old.xml");
    std::fs::write(
        &old_cap,
        std::fs::read_to_string(cap)
            .unwrap()
            .replace("2036-11-18T11:00:00+09:00", "2019-11-18T11:00:00+09:00"),
    )
    .unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        old_cap.to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("<alert/info/expires>")
            && err.contains("expired at 2019-11-18T02:00:00Z")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // Bad inputs: one line naming the problem, non-zero exit.
    std::fs::write(&toml, "hazard = \"tsunami\"\nlevel = 9\nzones = [1]\n").unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        toml.to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.lines().count() == 1 && err.contains("t.toml"),
        "{err}"
    );
    let bad_cap = dir.path().join("bad.xml");
    std::fs::write(
        &bad_cap,
        std::fs::read_to_string(cap)
            .unwrap()
            .replace("<msgType>Alert</msgType>", "<msgType>Error</msgType>"),
    )
    .unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        bad_cap.to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("<alert/msgType>") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn keygen_writes_a_private_key_only_the_owner_reads() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("officer-sato");
    let out = hq(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert!(out.status.success());
    let mode = std::fs::metadata(dir.path().join("officer-sato.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    evac_protocol::PublicKey::read(&dir.path().join("officer-sato.pub")).unwrap();
    let again = hq(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert!(!again.status.success(), "overwrote a key");
}
