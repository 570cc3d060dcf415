//! The town's map, when the dashboard is given the town file: shelter names, each
//! household's zone and location.

use std::path::Path;

use evac_maps::{LonLat, MapsError, Shelter, Town, Zone};

/// What the views need of the town file: its shelters and zones, and each household's
/// location and zone. Residents' names, addresses and cards, and the roads, are not kept:
/// names come from HQ's signed registry, and at a million residents the whole town would
/// hold several hundred megabytes.
#[derive(Debug)]
pub struct TownMap {
    shelters: Vec<Shelter>,
    zones: Vec<Zone>,
    /// Households by id: (id, location, zone or `NO_ZONE`).
    households: Vec<(u32, LonLat, u32)>,
    /// West, south, east, north over households and shelters.
    extent: [f64; 4],
}

const NO_ZONE: u32 = u32::MAX;

impl TownMap {
    /// Reads the town file at `path` without holding it whole (see `town_file.rs`): what a
    /// large city needs while parsing is little more than what the map keeps.
    pub fn load(path: &Path) -> Result<TownMap, MapsError> {
        let light = super::town_file::read(path)?;
        Ok(TownMap::of(
            light.households,
            light.town.shelters,
            light.town.zones,
        ))
    }

    /// Indexes `town`: each household's zone is the lowest-numbered zone that contains it.
    pub fn new(town: Town) -> TownMap {
        let Town {
            households,
            shelters,
            zones,
            ..
        } = town;
        let hs = households.iter().map(|h| (h.id, h.location)).collect();
        drop(households);
        TownMap::of(hs, shelters, zones)
    }

    fn of(
        households: Vec<(u32, LonLat)>,
        mut shelters: Vec<Shelter>,
        mut zones: Vec<Zone>,
    ) -> TownMap {
        zones.sort_by_key(|z| z.id);
        shelters.sort_by_key(|s| s.id);
        let mut hs: Vec<(u32, LonLat, u32)> = households
            .into_iter()
            .map(|(id, at)| {
                let zone = zones
                    .iter()
                    .find(|z| z.contains(at))
                    .map_or(NO_ZONE, |z| z.id);
                (id, at, zone)
            })
            .collect();
        hs.sort_unstable_by_key(|h| h.0);
        let mut extent = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        let points = hs
            .iter()
            .map(|h| h.1)
            .chain(shelters.iter().map(|s| s.location));
        for p in points {
            extent = [
                extent[0].min(p.lon),
                extent[1].min(p.lat),
                extent[2].max(p.lon),
                extent[3].max(p.lat),
            ];
        }
        if extent[0] > extent[2] {
            extent = [0.0, 0.0, 1.0, 1.0];
        }
        TownMap {
            shelters,
            zones,
            households: hs,
            extent,
        }
    }

    fn find(&self, household: u32) -> Option<&(u32, LonLat, u32)> {
        // Registers number households densely: try the slot the id would have first.
        let first = self.households.first()?.0;
        if let Some(h) = household
            .checked_sub(first)
            .and_then(|i| self.households.get(i as usize))
            .filter(|h| h.0 == household)
        {
            return Some(h);
        }
        self.households
            .binary_search_by_key(&household, |h| h.0)
            .ok()
            .map(|i| &self.households[i])
    }

    /// The zone of a household (none when outside every zone or unknown).
    pub fn zone_of(&self, household: u32) -> Option<u32> {
        self.find(household).map(|h| h.2).filter(|&z| z != NO_ZONE)
    }

    /// Where a household of the map is.
    pub fn household_location(&self, id: u32) -> Option<LonLat> {
        self.find(id).map(|h| h.1)
    }

    /// A shelter's name.
    pub fn shelter_name(&self, id: u32) -> Option<&str> {
        self.shelter(id).map(|s| s.name.as_str())
    }

    /// A shelter of the map.
    pub fn shelter(&self, id: u32) -> Option<&Shelter> {
        self.shelters
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .map(|i| &self.shelters[i])
    }

    /// Every shelter, by id.
    pub fn shelters(&self) -> &[Shelter] {
        &self.shelters
    }

    /// Every zone, by id.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// A zone by id.
    pub fn zone(&self, id: u32) -> Option<&Zone> {
        self.zones
            .binary_search_by_key(&id, |z| z.id)
            .ok()
            .map(|i| &self.zones[i])
    }

    /// The town's extent: west, south, east, north (degrees).
    pub fn extent(&self) -> [f64; 4] {
        self.extent
    }

    /// Households inside any of `zones` (as HQ's order engine counts them).
    pub fn households_in_zones(&self, zones: &[u32]) -> usize {
        let zones: Vec<&Zone> = self
            .zones
            .iter()
            .filter(|z| zones.contains(&z.id))
            .collect();
        self.households
            .iter()
            .filter(|h| zones.iter().any(|z| z.contains(h.1)))
            .count()
    }
}
