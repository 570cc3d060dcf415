use super::*;
use crate::model::FLOOR_AREA_PER_PERSON_M2;

fn sample() -> Town {
    generate(&GenerateParams::default())
}

#[test]
fn same_params_same_town_other_seed_other_town() {
    let p = GenerateParams {
        households: 500,
        shelters: 20,
        seed: 42,
    };
    let (a, b) = (generate(&p), generate(&p));
    assert_eq!(a, b);
    assert_eq!(a.to_geojson_string(), b.to_geojson_string());
    let c = generate(&GenerateParams { seed: 43, ..p });
    assert_ne!(a.households, c.households);
    assert_ne!(a.shelters, c.shelters);
}

#[test]
fn shelter_count_does_not_disturb_households() {
    let a = generate(&GenerateParams {
        households: 300,
        shelters: 5,
        seed: 9,
    });
    let b = generate(&GenerateParams {
        households: 300,
        shelters: 40,
        seed: 9,
    });
    assert_eq!(a.households, b.households);
    assert_eq!(a.shelters[..], b.shelters[..5]);
}

#[test]
fn ids_are_dense_from_one_and_the_town_is_valid() {
    let town = sample();
    town.validate().unwrap();
    assert!(
        town.households
            .iter()
            .enumerate()
            .all(|(i, h)| h.id as usize == i + 1)
    );
    assert!(
        town.shelters
            .iter()
            .enumerate()
            .all(|(i, s)| s.id as usize == i + 1)
    );
    assert!(
        town.zones
            .iter()
            .enumerate()
            .all(|(i, z)| z.id as usize == i + 1)
    );
    let residents: Vec<u32> = town
        .households
        .iter()
        .flat_map(|h| &h.members)
        .map(|m| m.resident)
        .collect();
    assert!(
        residents
            .iter()
            .enumerate()
            .all(|(i, r)| *r as usize == i + 1)
    );
}

#[test]
fn population_follows_a_rural_japanese_pattern() {
    let s = sample().summary();
    let share = |n: usize| n as f64 / s.residents as f64;
    assert_eq!(s.households, 3000);
    assert!((2.0..2.8).contains(&(s.residents as f64 / 3000.0)), "{s:?}");
    assert!(
        (0.35..=0.40).contains(&share(s.aged_65_plus)),
        "aged {}",
        share(s.aged_65_plus)
    );
    assert!(
        (0.02..=0.03).contains(&share(s.needing_help)),
        "help {}",
        share(s.needing_help)
    );
    assert!(
        (0.88..=0.92).contains(&share(s.with_card)),
        "card {}",
        share(s.with_card)
    );
}

#[test]
fn every_age_band_and_language_occurs_and_names_are_family_then_given() {
    let town = sample();
    let members: Vec<&Member> = town.households.iter().flat_map(|h| &h.members).collect();
    for band in AgeBand::ALL {
        assert!(members.iter().any(|m| m.age_band == band), "{band}");
    }
    for lang in [
        Language::Japanese,
        Language::English,
        Language::EasyJapanese,
    ] {
        assert!(town.households.iter().any(|h| h.language == lang));
    }
    for h in &town.households {
        let family = h.members[0].name.split(' ').next().unwrap();
        assert!(
            h.members
                .iter()
                .all(|m| m.name.starts_with(&format!("{family} "))),
            "{h:?}"
        );
        assert!(
            h.address
                .as_deref()
                .unwrap()
                .starts_with(geography::TOWN_NAME)
        );
    }
}

#[test]
fn no_household_has_two_members_of_one_name_or_reading() {
    let town = sample();
    for h in &town.households {
        for (i, a) in h.members.iter().enumerate() {
            for b in &h.members[..i] {
                assert!(a.name != b.name && a.kana != b.kana, "{h:?}");
            }
        }
    }
}

#[test]
fn every_resident_has_kana_a_birth_date_in_their_band_and_most_consent() {
    let town = sample();
    let members: Vec<&Member> = town.households.iter().flat_map(|h| &h.members).collect();
    for m in &members {
        let birth = m.birth.unwrap();
        assert_eq!(
            AgeBand::of_age(birth.age_on(crate::REGISTRY_DATE)),
            m.age_band,
            "{m:?}"
        );
        let (family, given) = m.kana.split_once(' ').unwrap();
        assert!(
            !family.is_empty()
                && !given.is_empty()
                && m.kana
                    .chars()
                    .all(|c| c == ' ' || c == '・' || ('\u{30A0}'..='\u{30FF}').contains(&c)),
            "{m:?}"
        );
    }
    let consent = members.iter().filter(|m| m.anpi_consent).count() as f64 / members.len() as f64;
    assert!((0.82..0.88).contains(&consent), "{consent}");
    let codes = family_codes(&town, SAMPLE_SEED);
    assert_eq!(codes, family_codes(&town, SAMPLE_SEED));
    let share = codes.len() as f64 / (consent * members.len() as f64);
    assert!((0.22..0.28).contains(&share), "{share}");
    for (r, code) in &codes {
        assert!(town.registry().resident(*r).unwrap().1.anpi_consent);
        assert!(code.len() == 11 && code.as_bytes()[5] == b'-', "{code}");
    }
    let distinct: std::collections::HashSet<&String> = codes.iter().map(|c| &c.1).collect();
    assert_eq!(distinct.len(), codes.len());
}

#[test]
fn households_are_on_land_and_some_are_at_risk_of_tsunami() {
    let town = sample();
    assert!(
        town.households
            .iter()
            .all(|h| geography::on_land(h.location))
    );
    let at_risk = town.households_at_risk(Hazard::Tsunami).count();
    assert!(at_risk > 300 && at_risk < 2000, "{at_risk}");
    assert!(town.households_at_risk(Hazard::Flood).count() > 100);
    assert!(town.households_at_risk(Hazard::Landslide).count() > 20);
}

#[test]
fn shelters_vary_and_suitability_follows_the_zones() {
    let town = sample();
    let tsunami_zone = &town.zones[0];
    assert_eq!(tsunami_zone.hazard, Hazard::Tsunami);
    let suits = town
        .shelters
        .iter()
        .filter(|s| s.suits(Hazard::Tsunami))
        .count();
    assert!((4..=10).contains(&suits), "{suits}");
    assert!(
        town.shelters.iter().any(|s| s.accessible) && town.shelters.iter().any(|s| !s.accessible)
    );
    let caps: Vec<u32> = town.shelters.iter().map(|s| s.capacity).collect();
    assert!(
        caps.iter().max() > Some(&(caps.iter().min().unwrap() * 5)),
        "{caps:?}"
    );
    for s in &town.shelters {
        let area = s.floor_area_m2.unwrap();
        assert_eq!(s.capacity, (area / FLOOR_AREA_PER_PERSON_M2).floor() as u32);
        assert!(s.suits(Hazard::Earthquake) && s.open);
        // Inside the tsunami zone only a tsunami evacuation building is designated.
        if tsunami_zone.contains(s.location) && s.suits(Hazard::Tsunami) {
            assert!(s.name.contains("津波避難ビル"), "{}", s.name);
        }
    }
    // Tsunami shelters can take everyone in the tsunami zone.
    let people: usize = town
        .households_at_risk(Hazard::Tsunami)
        .map(|h| h.members.len())
        .sum();
    let room: u32 = town
        .shelters
        .iter()
        .filter(|s| s.suits(Hazard::Tsunami))
        .map(|s| s.capacity)
        .sum();
    assert!(room as usize > people, "{room} < {people}");
}

#[test]
fn issuer_key_id_is_the_documented_hash() {
    let d = Sha256::digest(b"evac synthetic JPKI test CA");
    assert_eq!(SYNTHETIC_ISSUER_KEY_ID[..], d[..20]);
    assert_eq!(
        SYNTHETIC_ISSUER_KEY_ID_HEX,
        hex::encode(SYNTHETIC_ISSUER_KEY_ID)
    );
}

#[test]
fn card_serials_are_positive_eight_byte_integers_unique_per_card() {
    let town = sample();
    let mut serials = Vec::new();
    for m in town.households.iter().flat_map(|h| &h.members) {
        for (i, c) in m.cards.iter().enumerate() {
            assert_eq!(c.issuer_key_id, SYNTHETIC_ISSUER_KEY_ID);
            assert_eq!(c.serial, synthetic_card_serial(m.resident, i as u8));
            assert!((0x40..0x80).contains(&c.serial[0]));
            serials.push(c.serial.clone());
        }
    }
    let n = serials.len();
    assert!(
        town.households
            .iter()
            .flat_map(|h| &h.members)
            .any(|m| m.cards.len() == 2)
    );
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), n);
}

#[test]
fn prng_helpers_stay_in_range() {
    let mut rng = Prng::new(5, "test");
    for _ in 0..10_000 {
        let f = rng.f64();
        assert!((0.0..1.0).contains(&f));
        assert!(rng.below(7) < 7);
        assert!(rng.weighted(&[0, 3, 0, 1]) % 2 == 1);
        assert!(rng.normal().is_finite());
    }
}

/// Walking over straight-line distance from every household to every shelter at least
/// 200 m away: (all pairs on the same bank, pairs across the river under 2 km apart).
fn walking_ratios(town: &Town) -> (Vec<f64>, Vec<f64>) {
    let net = town.network();
    let cost = net.costs(None);
    let snaps: Vec<_> = town
        .households
        .iter()
        .map(|h| net.snap(h.location).unwrap())
        .collect();
    let north = |p: LonLat| p.lat > geography::river_lat(p.lon);
    let (mut same, mut across) = (Vec::new(), Vec::new());
    for s in &town.shelters {
        let field = crate::Field::new(&net, &cost, [(s.id, net.snap(s.location).unwrap())]);
        for (h, at) in town.households.iter().zip(&snaps) {
            let straight = h.location.distance_m(s.location);
            if straight < 200.0 {
                continue;
            }
            let walk = field.nearest(at).unwrap().walk_m;
            assert!(
                walk >= straight * 0.999,
                "{} -> {}: {walk} < {straight}",
                h.id,
                s.id
            );
            if north(h.location) == north(s.location) {
                same.push(walk / straight);
            } else if straight < 2000.0 {
                across.push(walk / straight);
            }
        }
    }
    (same, across)
}

#[test]
fn roads_connect_everyone_cross_the_river_on_few_bridges_and_detour_realistically() {
    let town = sample();
    let net = town.network();
    let first = net.component(0);
    assert!((0..net.edges().len() as u32).all(|e| net.component(e) == first));
    assert_eq!(town.roads.iter().filter(|r| r.bridge).count(), 4);
    // Every bridge, and only a bridge, has its ends on two banks.
    let north = |p: LonLat| p.lat > geography::river_lat(p.lon);
    for e in net.edges() {
        let (a, b) = (net.nodes()[e.a as usize], net.nodes()[e.b as usize]);
        assert_eq!(north(a) != north(b), e.bridge, "{a:?} {b:?}");
    }
    // No one joins the network on the far bank (the network knows no water).
    let wrong: Vec<u32> = town
        .households
        .iter()
        .filter(|h| north(net.snap(h.location).unwrap().point) != north(h.location))
        .map(|h| h.id)
        .collect();
    assert!(
        wrong.is_empty(),
        "households joining the far bank: {wrong:?}"
    );
    let (same, across) = walking_ratios(&town);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (same_mean, across_mean) = (mean(&same), mean(&across));
    assert!((1.2..=1.4).contains(&same_mean), "same bank {same_mean}");
    assert!(across_mean > 1.6, "across the river {across_mean}");
    // Some households are in the tsunami zone's roads: the coastal road runs through it.
    assert!(
        net.edges()
            .iter()
            .any(|e| e.zones.contains(Hazard::Tsunami))
    );
    assert!(
        net.edges()
            .iter()
            .any(|e| !e.zones.contains(Hazard::Tsunami))
    );
}
