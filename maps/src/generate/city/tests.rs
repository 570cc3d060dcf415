use super::super::GenerateParams;
use super::*;

fn city(households: u32, seed: u64) -> Town {
    generate_city(&GenerateParams {
        households,
        shelters: 0,
        seed,
    })
}

#[test]
fn the_capacity_rule_holds_for_every_zone_hazard() {
    let town = city(20_000, 3);
    town.validate().unwrap();
    let residents = zone_residents(&town.households, &town.zones);
    let capacity = designated_capacity(&town.shelters);
    for (i, hz) in ZONE_HAZARDS.iter().enumerate() {
        assert!(residents[i] > 0, "{hz:?}: nobody in its zones");
        assert!(
            capacity[i] as f64 >= CAPACITY_MARGIN * residents[i] as f64,
            "{hz:?}: capacity {} for {} residents",
            capacity[i],
            residents[i]
        );
    }
    assert!(town.shelters.len() >= 20, "{}", town.shelters.len());
}

#[test]
fn tsunami_buildings_exist_in_the_zone_and_suit_tsunami_only() {
    let town = city(20_000, 3);
    let buildings: Vec<&Shelter> = town
        .shelters
        .iter()
        .filter(|s| s.name.contains("津波避難ビル"))
        .collect();
    assert!(buildings.len() >= 3, "{} buildings", buildings.len());
    let in_buildings: u64 = buildings.iter().map(|b| u64::from(b.capacity)).sum();
    let residents = zone_residents(&town.households, &town.zones)[0];
    assert!(
        in_buildings as f64 >= TSUNAMI_BUILDING_SHARE * residents as f64,
        "{in_buildings} places in buildings for {residents} residents"
    );
    for b in &buildings {
        assert_eq!(b.hazards.iter().collect::<Vec<_>>(), vec![Hazard::Tsunami]);
        assert!(
            in_zone(&town.zones, Hazard::Tsunami, b.location),
            "{}",
            b.id
        );
        let area = b.floor_area_m2.unwrap();
        assert_eq!(b.capacity, (area / TSUNAMI_M2_PER_PERSON) as u32);
    }
    // No other shelter in the tsunami zone is designated for tsunami.
    for s in town
        .shelters
        .iter()
        .filter(|s| !s.name.contains("津波避難ビル"))
    {
        if in_zone(&town.zones, Hazard::Tsunami, s.location) {
            assert!(!s.hazards.contains(Hazard::Tsunami), "{}", s.id);
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_city_another_seed_another() {
    let (a, b) = (city(5_000, 7), city(5_000, 7));
    assert_eq!(a.to_geojson_string(), b.to_geojson_string());
    let c = city(5_000, 8);
    assert_ne!(a.households, c.households);
    assert_ne!(a.shelters, c.shelters);
    assert_ne!(a.roads, c.roads);
}

#[test]
fn hundreds_of_sites_follow_the_households_and_the_roads_are_one_city_grid() {
    let town = city(300_000, 1);
    let sites = town
        .shelters
        .iter()
        .filter(|s| !s.name.contains("津波避難ビル"))
        .count();
    assert!(sites >= 300, "{sites}");
    let buildings = town.shelters.len() - sites;
    assert!(buildings >= 50, "{buildings} tsunami buildings");
    let net = town.network();
    let km2 = geography::land_km2();
    let density = net.edges().len() as f64 / km2;
    assert!((150.0..400.0).contains(&density), "{density} edges/km²");
    // The sample town's grid is about 90 m in its villages: the city's covers all the land.
    assert!(net.edges().len() > 20_000, "{}", net.edges().len());
}
