//! The sample town (maps/data/town.geojson): sampled households see their own order, in their
//! own language, with their own name from the box's local configuration.

mod support;

use std::process::Command;

use evac_maps::{Language, Town};
use support::*;

#[test]
fn sampled_households_of_the_sample_town_see_their_own_order() {
    let town = Town::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../maps/data/town.geojson"
    ))
    .unwrap();
    assert!(town.households.len() > 100 && !town.shelters.is_empty());
    let w = Work::new();
    let orders: Vec<PlanOrder> = town
        .households
        .iter()
        .map(|h| PlanOrder {
            household: h.id,
            shelter: town.shelters[h.id as usize % town.shelters.len()].id,
            level: [4, 5, 3][h.id as usize % 3],
            hazard: "tsunami",
            version: 1,
            needs_help: h.needs_help(),
        })
        .collect();
    let ts = w.mux(&w.plan("plan.json", &orders), "town.ts", &[]);

    // One household of each language, the first and last, and one that needs help.
    let mut sample: Vec<&evac_maps::Household> = Vec::new();
    for lang in [
        Language::Japanese,
        Language::English,
        Language::EasyJapanese,
    ] {
        sample.extend(town.households.iter().find(|h| h.language == lang));
    }
    sample.extend(town.households.first());
    sample.extend(town.households.last());
    sample.extend(town.households.iter().find(|h| h.needs_help()));
    assert!(sample.len() >= 4);

    for h in sample {
        let order = orders.iter().find(|o| o.household == h.id).unwrap();
        let r = w.stb(&ts, h.id);
        assert_eq!(r["order"]["shelter"], order.shelter, "household {}", h.id);
        assert_eq!(r["order"]["level"], order.level);
        assert_eq!(r["order"]["needs_help"], order.needs_help);

        // The name and the shelters' names come from the box's own configuration.
        let name = h
            .members
            .first()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let shelter = town
            .shelters
            .iter()
            .find(|s| s.id == order.shelter)
            .unwrap();
        let lang = match h.language {
            Language::Japanese => "ja",
            Language::English => "en",
            Language::EasyJapanese => "ja-easy",
        };
        let config = w.path(&format!("stb-{}.toml", h.id));
        let mut shelters = toml::Table::new();
        for s in &town.shelters {
            shelters.insert(s.id.to_string(), s.name.clone().into());
        }
        let mut t = toml::Table::new();
        t.insert("household".into(), i64::from(h.id).into());
        t.insert("name".into(), name.clone().into());
        t.insert("language".into(), lang.into());
        t.insert(
            "hq_key".into(),
            w.path("hq.pub").display().to_string().into(),
        );
        t.insert("shelters".into(), shelters.into());
        std::fs::write(&config, toml::to_string(&t).unwrap()).unwrap();
        let out = run_ok(
            Command::new(STB)
                .arg("--input")
                .arg(&ts)
                .arg("--config")
                .arg(&config),
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with(&name), "household {}: {first}", h.id);
        assert!(first.contains(&shelter.name), "household {}: {first}", h.id);
        match h.language {
            Language::English => assert!(first.contains("tsunami"), "{first}"),
            Language::Japanese => {
                assert!(first.contains("津波") && first.contains("様"), "{first}")
            }
            Language::EasyJapanese => assert!(
                first.contains("つなみ") && first.contains("さん"),
                "{first}"
            ),
        }
    }
}

#[test]
fn the_box_prints_its_walking_route_to_the_ordered_shelter_as_geojson() {
    let town_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
    let town = Town::load(town_path).unwrap();
    let net = town.network();
    // A household on the north bank of the river mouth (本町), ordered to a tsunami shelter
    // on the south bank: the route must cross a bridge.
    let north = |p: evac_maps::LonLat| p.lat > evac_maps::generate::geography::river_lat(p.lon);
    let (h, shelter) = town
        .shelters
        .iter()
        .filter(|s| !north(s.location) && s.suits(evac_maps::Hazard::Tsunami))
        .flat_map(|s| {
            town.households
                .iter()
                .filter(|h| north(h.location))
                .map(move |h| (h, s))
        })
        .min_by(|a, b| {
            let d = |(h, s): &(&evac_maps::Household, &evac_maps::Shelter)| {
                h.location.distance_m(s.location)
            };
            d(a).total_cmp(&d(b))
        })
        .unwrap();
    let w = Work::new();
    let order = PlanOrder {
        household: h.id,
        shelter: shelter.id,
        level: 4,
        hazard: "tsunami",
        version: 1,
        needs_help: false,
    };
    let ts = w.mux(&w.plan("plan.json", &[order]), "route.ts", &[]);
    let location = format!("{},{}", h.location.lon, h.location.lat);
    let out = run_ok(
        Command::new(STB)
            .arg("--input")
            .arg(&ts)
            .args(["--household", &h.id.to_string(), "--key"])
            .arg(w.path("hq.pub"))
            .args(["--route", "--town", town_path, "--location", &location]),
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let features = doc["features"].as_array().unwrap();
    let line = &features[0];
    assert_eq!(line["geometry"]["type"], "LineString");
    assert_eq!(line["properties"]["shelter"], shelter.id);
    let coords: Vec<evac_maps::LonLat> = line["geometry"]["coordinates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| evac_maps::LonLat::new(c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
        .collect();
    assert_eq!(coords.first(), Some(&h.location));
    assert_eq!(coords.last(), Some(&shelter.location));
    // The same route as the network gives, over a bridge, longer than the straight line.
    let want = net
        .route(
            h.location,
            shelter.location,
            Some(evac_maps::Hazard::Tsunami),
        )
        .unwrap();
    let length = line["properties"]["length_m"].as_f64().unwrap();
    assert!(
        (length - want.length_m).abs() < 0.1,
        "{length} vs {}",
        want.length_m
    );
    assert!(length > 1.2 * h.location.distance_m(shelter.location));
    let bridges: Vec<_> = net.edges().iter().filter(|e| e.bridge).collect();
    // Where the route changes bank, both ends of that step lie on a bridge.
    let on = |p: evac_maps::LonLat, e: &&evac_maps::Edge| {
        let (a, b) = (net.nodes()[e.a as usize], net.nodes()[e.b as usize]);
        a.distance_m(p) + p.distance_m(b) - a.distance_m(b) < 0.5
    };
    let crossings: Vec<_> = coords
        .windows(2)
        .filter(|w| north(w[0]) != north(w[1]))
        .collect();
    assert!(!crossings.is_empty(), "the route changes bank");
    for w in crossings {
        assert!(
            bridges.iter().any(|e| on(w[0], e) && on(w[1], e)),
            "the route crosses the river at {w:?}, not on a bridge"
        );
    }
    assert_eq!(features[1]["properties"]["id"], shelter.id);

    // No location: one clear line, exit 1.
    let o = Command::new(STB)
        .arg("--input")
        .arg(&ts)
        .args(["--household", &h.id.to_string(), "--key"])
        .arg(w.path("hq.pub"))
        .args(["--route", "--town", town_path])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("location") && err.lines().count() == 1,
        "{err}"
    );
}
