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
