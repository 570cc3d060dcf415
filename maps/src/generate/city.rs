//! City mode: the same coast, river and hazard zones as the town, filled as a city is.
//!
//! - Households spread over the whole land: the town's eight districts with four times
//!   their spread (本町 2.6 km), so the centre is densest and no part is empty.
//! - Roads: one street grid 80 m apart over the whole land, a bridge every 480 m (see
//!   `roads::city_roads`).
//! - Shelters: one designated evacuation site (school gym, community hall or park) per
//!   [`HOUSEHOLDS_PER_SITE`] households unless a count is given, each where a household
//!   is (so sites follow the population), designated as the town's are; then the
//!   capacity rule below is made to hold by adding tsunami evacuation buildings (津波避難ビル)
//!   inside the tsunami zone and school gyms outside the other zones.
//!
//! **The capacity rule**: for every hazard that has zones, the capacity of the open
//! shelters designated for it is at least [`CAPACITY_MARGIN`] times the residents living in
//! its zones. A tsunami evacuation building is designated for tsunami only (vertical
//! evacuation for the minutes before the wave; nobody stays there through a flood or a
//! fire) and holds one person per [`TSUNAMI_M2_PER_PERSON`] of its floors' area. The
//! buildings alone hold [`TSUNAMI_BUILDING_SHARE`] of the tsunami zone's residents.

use super::{Kind, Prng, designation, household, registry, roads, scatter};
use crate::hazard::{Hazard, HazardSet};
use crate::model::{Household, LonLat, Shelter, Zone, capacity_from_floor_area};
use crate::town::Town;
use geography::{TOWN_NAME, Village};

use super::geography;

/// Households per designated evacuation site when no shelter count is given.
pub const HOUSEHOLDS_PER_SITE: u32 = 1000;
/// Capacity designated for a hazard over the residents of its zones (20 % spare: people
/// from outside the zones, visitors and workers, come too).
pub const CAPACITY_MARGIN: f64 = 1.2;
/// Floor area per person in a tsunami evacuation building, m²: a refuge for hours, not a
/// place to stay (the city's other sites use the town's 3.5 m²). Assumed: no stored
/// source gives the guideline's figure.
pub const TSUNAMI_M2_PER_PERSON: f64 = 1.0;
/// Tsunami evacuation buildings hold at least this share of the tsunami zone's residents:
/// the wave may come within minutes and the zone is up to 2 km deep, so about half its
/// residents are too far from its edge to leave it in time. Assumed, no stored source.
pub const TSUNAMI_BUILDING_SHARE: f64 = 0.5;
/// The hazards whose zones the capacity rule covers.
pub const ZONE_HAZARDS: [Hazard; 4] = [
    Hazard::Tsunami,
    Hazard::Flood,
    Hazard::Landslide,
    Hazard::StormSurge,
];

/// The town's districts, spread four times as wide: a city.
fn districts() -> Vec<Village> {
    geography::villages()
        .into_iter()
        .map(|v| Village {
            spread_m: v.spread_m * 4.0,
            ..v
        })
        .collect()
}

/// Generates a city (see the module's docs): `params.shelters` designated sites (0: one per
/// [`HOUSEHOLDS_PER_SITE`] households, at least 12) and whatever the capacity rule adds.
/// The same params give the same city; the households do not depend on the shelter count.
pub fn generate_city(params: &super::GenerateParams) -> Town {
    let districts = districts();
    let zones = geography::zones();
    let n = params.households.min(super::MAX_HOUSEHOLDS);
    let mut rng = Prng::new(params.seed, "city households");
    let weights: Vec<u32> = districts.iter().map(|v| v.weight).collect();
    let mut households = Vec::with_capacity(n as usize);
    let mut next_resident = 1u32;
    for id in 1..=n {
        let d = &districts[rng.weighted(&weights)];
        households.push(household(&mut rng, id, d, &mut next_resident));
    }
    registry(params.seed, &mut households);
    let sites = match params.shelters {
        0 => (n / HOUSEHOLDS_PER_SITE).max(12),
        s => s.min(super::MAX_HOUSEHOLDS),
    };
    let shelters = shelters(params.seed, sites, &households, &zones);
    Town {
        households,
        shelters,
        zones,
        roads: roads::city_roads(params.seed),
        water: roads::water(),
    }
}

/// For each hazard of [`ZONE_HAZARDS`], the residents living in its zones.
pub fn zone_residents(households: &[Household], zones: &[Zone]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for h in households {
        for (i, hz) in ZONE_HAZARDS.iter().enumerate() {
            if in_zone(zones, *hz, h.location) {
                out[i] += h.members.len() as u64;
            }
        }
    }
    out
}

/// For each hazard of [`ZONE_HAZARDS`], the capacity of the open shelters designated for it.
pub fn designated_capacity(shelters: &[Shelter]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for s in shelters.iter().filter(|s| s.open) {
        for (i, hz) in ZONE_HAZARDS.iter().enumerate() {
            if s.hazards.contains(*hz) {
                out[i] += u64::from(s.capacity);
            }
        }
    }
    out
}

fn in_zone(zones: &[Zone], hazard: Hazard, p: LonLat) -> bool {
    zones.iter().any(|z| z.hazard == hazard && z.contains(p))
}

/// The designated sites, then what the capacity rule needs, ids dense from 1.
fn shelters(seed: u64, sites: u32, households: &[Household], zones: &[Zone]) -> Vec<Shelter> {
    let mut rng = Prng::new(seed, "city shelters");
    let mut out: Vec<Shelter> = Vec::with_capacity(sites as usize);
    if households.is_empty() {
        return out;
    }
    let at_household = |rng: &mut Prng| {
        let h = &households[rng.below(households.len() as u32) as usize];
        (h.location, scatter(rng, h.location, 60.0))
    };
    for _ in 0..sites {
        let (_, location) = at_household(&mut rng);
        let kind = match rng.below(100) {
            0..=49 => Kind::Gym,
            50..=84 => Kind::Hall,
            _ => Kind::HillPark,
        };
        out.push(site(&mut rng, &out, kind, location, zones));
    }
    let residents = zone_residents(households, zones);
    let need = residents.map(|r| (r as f64 * CAPACITY_MARGIN).ceil() as u64);
    let mut have = designated_capacity(&out);
    // First the buildings' share of the tsunami zone, then the rule for each hazard.
    let share = (residents[0] as f64 * TSUNAMI_BUILDING_SHARE).ceil() as u64;
    let mut in_buildings = 0u64;
    let wanted = |i: usize, have: &[u64; 4], in_buildings: u64| {
        if i == 0 {
            in_buildings < share || have[0] < need[0]
        } else {
            have[i] < need[i]
        }
    };
    for (i, hz) in ZONE_HAZARDS.iter().enumerate() {
        // Tries bounded so a zone nobody can stand outside of cannot loop forever.
        let mut tries = 0u32;
        while wanted(i, &have, in_buildings) && tries < 10_000_000 {
            tries += 1;
            let (home, location) = at_household(&mut rng);
            let inside = in_zone(zones, *hz, home) && in_zone(zones, *hz, location);
            let s = match (*hz, inside) {
                (Hazard::Tsunami, true) => {
                    site(&mut rng, &out, Kind::TsunamiBuilding, location, zones)
                }
                (_, false) if *hz != Hazard::Tsunami && !in_zone(zones, *hz, location) => {
                    site(&mut rng, &out, Kind::Gym, location, zones)
                }
                _ => continue,
            };
            if *hz == Hazard::Tsunami {
                in_buildings += u64::from(s.capacity);
            }
            for (j, other) in ZONE_HAZARDS.iter().enumerate() {
                if s.hazards.contains(*other) {
                    have[j] += u64::from(s.capacity);
                }
            }
            out.push(s);
        }
    }
    out
}

/// One shelter of `kind` at `location`, numbered after `before`.
fn site(
    rng: &mut Prng,
    before: &[Shelter],
    kind: Kind,
    location: LonLat,
    zones: &[Zone],
) -> Shelter {
    let id = before.len() as u32 + 1;
    let (base, floor_area_m2, accessible) = match kind {
        Kind::Gym => (
            ["小学校体育館", "中学校体育館"][rng.below(2) as usize],
            600.0 + 800.0 * rng.f64(),
            rng.chance(0.7),
        ),
        Kind::Hall => (
            ["公民館", "地区集会所"][rng.below(2) as usize],
            120.0 + 280.0 * rng.f64(),
            rng.chance(0.5),
        ),
        Kind::HillPark => ("公園", 2500.0 + 3500.0 * rng.f64(), rng.chance(0.2)),
        // The floors above the expected water of a four- to ten-storey building.
        Kind::TsunamiBuilding => ("津波避難ビル", 400.0 + 1200.0 * rng.f64(), rng.chance(0.6)),
    };
    let floor_area_m2 = floor_area_m2.round();
    let (hazards, capacity) = if kind == Kind::TsunamiBuilding {
        let mut only = HazardSet::EMPTY;
        only.insert(Hazard::Tsunami);
        (only, (floor_area_m2 / TSUNAMI_M2_PER_PERSON).floor() as u32)
    } else {
        (
            designation(kind, location, zones),
            capacity_from_floor_area(floor_area_m2),
        )
    };
    Shelter {
        id,
        name: format!("{TOWN_NAME}{base} {id}"),
        address: Some(format!(
            "{TOWN_NAME} {}-{}",
            1 + rng.below(400),
            1 + rng.below(30)
        )),
        location,
        capacity,
        floor_area_m2: Some(floor_area_m2),
        hazards,
        accessible,
        open: true,
        gsi_id: None,
    }
}

#[cfg(test)]
mod tests;
