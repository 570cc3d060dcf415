//! The town as the order engine sees it: flat vectors indexed by position, positions as unit
//! vectors so that nearest-by-chord is nearest-by-great-circle, and, when the town has roads,
//! its walking network with every household and shelter joined to it.

use std::collections::HashMap;

use evac_maps::{HazardSet, LonLat, Network, Snap, Town};
use evac_protocol::Hazard;

/// The maps crate's twin of a protocol hazard (the same eight, the same names).
pub fn maps_hazard(h: Hazard) -> evac_maps::Hazard {
    use evac_maps::Hazard as M;
    match h {
        Hazard::Flood => M::Flood,
        Hazard::Landslide => M::Landslide,
        Hazard::StormSurge => M::StormSurge,
        Hazard::Earthquake => M::Earthquake,
        Hazard::Tsunami => M::Tsunami,
        Hazard::LargeFire => M::LargeFire,
        Hazard::InlandFlood => M::InlandFlood,
        Hazard::Volcano => M::Volcano,
    }
}

/// Households and shelters in flat arrays (index = position in the town's vectors).
#[derive(Debug, Clone)]
pub struct EngineTown {
    /// Household ids.
    pub hh_id: Vec<u32>,
    /// Household positions.
    pub hh_loc: Vec<LonLat>,
    /// Household positions as unit vectors.
    pub hh_pos: Vec<[f64; 3]>,
    /// Members per household.
    pub hh_size: Vec<u32>,
    /// Someone needs help to evacuate.
    pub hh_help: Vec<bool>,
    /// Someone is 65 or over.
    pub hh_aged: Vec<bool>,
    /// Household index by id.
    pub hh_index: HashMap<u32, u32>,
    /// Shelter ids.
    pub sh_id: Vec<u32>,
    /// Shelter positions as unit vectors.
    pub sh_pos: Vec<[f64; 3]>,
    /// Capacities.
    pub sh_cap: Vec<u32>,
    /// Hazards each shelter is designated for.
    pub sh_hazards: Vec<HazardSet>,
    /// Accessible to people who need help.
    pub sh_access: Vec<bool>,
    /// Open according to the town file.
    pub sh_open: Vec<bool>,
    /// Shelter index by id.
    pub sh_index: HashMap<u32, u32>,
    /// Zones: id and area.
    pub zones: Vec<(u32, geo::MultiPolygon<f64>)>,
    /// The walking network, when the town has roads (without, distances are straight lines).
    pub walk: Option<Walk>,
}

/// The town's walking network with each household and shelter joined to it.
#[derive(Debug, Clone)]
pub struct Walk {
    /// The network.
    pub net: Network,
    /// Where each household joins it (by household index).
    pub hh_snap: Vec<Snap>,
    /// Where each shelter joins it (by shelter index).
    pub sh_snap: Vec<Snap>,
}

impl Walk {
    /// The network of `town`'s roads, None when it has none.
    pub fn new(town: &Town) -> Option<Walk> {
        let net = town.network();
        let snap = |p: LonLat| net.snap(p);
        let hh_snap = town
            .households
            .iter()
            .map(|h| snap(h.location))
            .collect::<Option<Vec<_>>>()?;
        let sh_snap = town
            .shelters
            .iter()
            .map(|s| snap(s.location))
            .collect::<Option<Vec<_>>>()?;
        Some(Walk {
            net,
            hh_snap,
            sh_snap,
        })
    }
}

impl EngineTown {
    /// Flattens a town, and joins its households and shelters to its roads (if any).
    pub fn new(town: &Town) -> EngineTown {
        let n = town.households.len();
        let mut t = EngineTown {
            hh_id: Vec::with_capacity(n),
            hh_loc: Vec::with_capacity(n),
            hh_pos: Vec::with_capacity(n),
            hh_size: Vec::with_capacity(n),
            hh_help: Vec::with_capacity(n),
            hh_aged: Vec::with_capacity(n),
            hh_index: HashMap::with_capacity(n),
            sh_id: vec![],
            sh_pos: vec![],
            sh_cap: vec![],
            sh_hazards: vec![],
            sh_access: vec![],
            sh_open: vec![],
            sh_index: HashMap::new(),
            zones: town.zones.iter().map(|z| (z.id, z.area.clone())).collect(),
            walk: Walk::new(town),
        };
        for (i, h) in town.households.iter().enumerate() {
            t.hh_index.insert(h.id, i as u32);
            t.hh_id.push(h.id);
            t.hh_loc.push(h.location);
            t.hh_pos.push(h.location.unit_vector());
            t.hh_size
                .push(u32::try_from(h.members.len()).unwrap_or(u32::MAX).max(1));
            t.hh_help.push(h.needs_help());
            t.hh_aged
                .push(h.members.iter().any(|m| m.age_band.is_aged()));
        }
        for (i, s) in town.shelters.iter().enumerate() {
            t.sh_index.insert(s.id, i as u32);
            t.sh_id.push(s.id);
            t.sh_pos.push(s.location.unit_vector());
            t.sh_cap.push(s.capacity);
            t.sh_hazards.push(s.hazards);
            t.sh_access.push(s.accessible);
            t.sh_open.push(s.open);
        }
        t
    }

    /// Number of households.
    pub fn households(&self) -> usize {
        self.hh_id.len()
    }

    /// Number of shelters.
    pub fn shelters(&self) -> usize {
        self.sh_id.len()
    }

    /// The order households are served in: someone needing help first, then someone aged
    /// 65+, then by position.
    pub fn priority(&self, h: u32) -> (bool, bool, u32) {
        let i = h as usize;
        (!self.hh_help[i], !self.hh_aged[i], h)
    }

    /// Whether shelter `s` is designated for `hazard`.
    pub fn suits(&self, s: usize, hazard: Hazard) -> bool {
        self.sh_hazards[s].contains(maps_hazard(hazard))
    }
}

/// Squared chord distance between unit vectors: increases with great-circle distance.
pub fn chord2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (x, y, z) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    x * x + y * y + z * z
}
