//! The town's map, when the dashboard is given the town file: shelter names, each
//! household's zone and location.

use std::collections::HashMap;

use evac_maps::Town;

/// The town file, with the look-ups the views need.
#[derive(Debug)]
pub struct TownMap {
    /// The town as loaded.
    pub town: Town,
    zone_of: HashMap<u32, u32>,
    household_at: HashMap<u32, usize>,
}

impl TownMap {
    /// Indexes `town`: each household's zone is the lowest-numbered zone that contains it.
    pub fn new(town: Town) -> TownMap {
        let mut zones: Vec<&evac_maps::Zone> = town.zones.iter().collect();
        zones.sort_by_key(|z| z.id);
        let mut zone_of = HashMap::with_capacity(town.households.len());
        let mut household_at = HashMap::with_capacity(town.households.len());
        for (i, h) in town.households.iter().enumerate() {
            household_at.insert(h.id, i);
            if let Some(z) = zones.iter().find(|z| z.contains(h.location)) {
                zone_of.insert(h.id, z.id);
            }
        }
        TownMap {
            town,
            zone_of,
            household_at,
        }
    }

    /// The zone of a household (none when outside every zone or unknown).
    pub fn zone_of(&self, household: u32) -> Option<u32> {
        self.zone_of.get(&household).copied()
    }

    /// A household of the map.
    pub fn household(&self, id: u32) -> Option<&evac_maps::Household> {
        self.household_at
            .get(&id)
            .and_then(|&i| self.town.households.get(i))
    }

    /// A shelter's name.
    pub fn shelter_name(&self, id: u32) -> Option<&str> {
        self.town.shelter(id).map(|s| s.name.as_str())
    }

    /// Households inside any of `zones` (as HQ's order engine counts them).
    pub fn households_in_zones(&self, zones: &[u32]) -> usize {
        let zones: Vec<&evac_maps::Zone> = self
            .town
            .zones
            .iter()
            .filter(|z| zones.contains(&z.id))
            .collect();
        self.town
            .households
            .iter()
            .filter(|h| zones.iter().any(|z| z.contains(h.location)))
            .count()
    }
}
