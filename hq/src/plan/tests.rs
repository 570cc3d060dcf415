use std::path::Path;

use evac_maps::{GenerateParams, Town, generate};
use evac_protocol::SecretKey;

use super::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cap");
/// 2030-01-01: before the test alert's expiry (2036).
const NOW: u64 = 1_893_456_000_000;

fn town() -> Town {
    generate(&GenerateParams {
        households: 300,
        shelters: 8,
        seed: 2,
    })
}

fn cap(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{name}")).unwrap()
}

#[test]
fn a_hazard_file_plans_an_order_for_every_household_of_the_zone() {
    let town = town();
    let notice =
        notice_from_text("hazard = \"flood\"\nlevel = 4\nzones = [1]", "f.toml", NOW).unwrap();
    let plan = Plan::new(&town, unbound_slug(), notice, NOW).unwrap();
    let in_zone = town
        .households
        .iter()
        .filter(|h| town.zones[0].contains(h.location))
        .count();
    assert_eq!(plan.orders().count(), in_zone);
    let text = plan.text();
    assert_eq!(text.lines().count(), in_zone + 1);
    assert!(
        text.lines().next().unwrap().starts_with("household "),
        "{text}"
    );
    let json = plan.json();
    assert_eq!(json["orders"].as_array().unwrap().len(), in_zone);
    assert_eq!(json["issued"], (NOW / 1000) as i64, "dated by HQ's clock");
    assert_eq!(json["routing"], plan.routing());
}

#[test]
fn a_cap_alert_plans_and_a_cancel_or_an_expired_alert_does_not() {
    let alert = notice_from_text(&cap("tsunami-alert.xml"), "a.xml", NOW).unwrap();
    assert_eq!(alert.hazard, evac_protocol::Hazard::Tsunami);
    let err = notice_from_text(&cap("tsunami-cancel.xml"), "c.xml", NOW).unwrap_err();
    assert!(matches!(err, PlanError::Cancel { .. }), "{err}");
    assert_eq!(err.to_string(), "c.xml: a Cancel orders nothing");
    let after = 2_200_000_000_000;
    let err = notice_from_text(&cap("tsunami-alert.xml"), "a.xml", after).unwrap_err();
    assert!(matches!(err, PlanError::Expired(_)), "{err}");
    assert!(err.to_string().contains("<alert/info/expires>"), "{err}");
}

#[test]
fn the_sections_are_bound_to_the_town_files_name_unless_one_is_given() {
    let p = Path::new("/x/minato.geojson");
    assert_eq!(town_slug(p, None).unwrap().to_string(), "minato");
    assert_eq!(
        town_slug(p, Some("ofunato")).unwrap().to_string(),
        "ofunato"
    );
    let err = town_slug(Path::new("/x/Bad Town.geojson"), None).unwrap_err();
    assert!(matches!(&err, PlanError::TownName { name, .. } if name == "Bad Town"));
    assert_eq!(
        err.to_string(),
        "town name \"Bad Town\": give --town-name (a-z, 0-9, '-')"
    );
}

#[test]
fn the_sections_give_every_planned_household_its_order() {
    let town = town();
    let notice =
        notice_from_text("hazard = \"flood\"\nlevel = 4\nzones = [1]", "f.toml", NOW).unwrap();
    let plan = Plan::new(&town, "minato".parse().unwrap(), notice, NOW).unwrap();
    let key = SecretKey::generate().unwrap();
    let s = plan.sections(&key).unwrap();
    assert!(s.sections >= 1);
    assert_eq!(s.households, plan.orders().count());
    assert!(!s.bytes.is_empty());
}
