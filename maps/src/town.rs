//! [`Town`]: the whole registry, with loading, saving, lookups and a summary.

use std::collections::HashSet;
use std::collections::hash_map::Entry;
use std::fmt;
use std::fs;
use std::io::BufWriter;
use std::path::Path;

use crate::error::MapsError;
use crate::geojson_io;
use crate::hazard::Hazard;
use crate::model::{CardRef, Household, LonLat, Member, Shelter, Zone};
use crate::network::Network;
use crate::roads::{Road, Water};

/// A town: its households (with their residents), shelters, hazard zones and roads.
///
/// The vectors are public so a caller may build or edit a town in code; call
/// [`Town::validate`] afterwards. Lookups by id are O(1) when ids are dense from 1
/// in vector order (as the generator makes them) and fall back to a search otherwise.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Town {
    /// Households, each with its members.
    pub households: Vec<Household>,
    /// Designated emergency evacuation sites.
    pub shelters: Vec<Shelter>,
    /// Hazard zones.
    pub zones: Vec<Zone>,
    /// The roads people walk on (none: distances are straight lines).
    pub roads: Vec<Road>,
    /// Rivers and shores: a point does not join a road across them.
    pub water: Vec<Water>,
}

/// A rule broken by a town, with the item's position in its vector.
#[derive(Debug)]
pub(crate) struct Violation {
    pub what: &'static str,
    pub pos: usize,
    pub id: u32,
    pub message: String,
}

/// Lines (roads, water): ids unique, at least two positions, every one within WGS 84; `what`
/// names the kind in the violation, `noun` one line in its message.
fn check_lines<'a>(
    what: &'static str,
    noun: &str,
    lines: impl Iterator<Item = (u32, &'a [LonLat])>,
) -> Result<(), Violation> {
    let fail = |pos, id, message: String| {
        Err(Violation {
            what,
            pos,
            id,
            message,
        })
    };
    let mut seen = HashSet::new();
    for (pos, (id, points)) in lines.enumerate() {
        if !seen.insert(id) {
            return fail(pos, id, format!("duplicate {what} id"));
        }
        if points.len() < 2 {
            return fail(pos, id, format!("a {noun} needs at least 2 positions"));
        }
        if points.iter().any(|p| !p.is_valid()) {
            return fail(pos, id, "position outside WGS 84".into());
        }
    }
    Ok(())
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.what, self.id, self.message)
    }
}

impl Town {
    /// Loads a town from a GeoJSON file (see the crate docs for the format), read through a
    /// buffer: the file is never whole in memory beside the town it makes.
    pub fn load(path: impl AsRef<Path>) -> Result<Town, MapsError> {
        let path = path.as_ref();
        let file = fs::File::open(path).map_err(|cause| MapsError::Io {
            path: path.to_owned(),
            action: "read",
            cause,
        })?;
        geojson_io::parse_reader(file, &path.display().to_string())
    }

    /// Parses a town from GeoJSON text; errors name the source `<input>`.
    pub fn from_geojson_str(text: &str) -> Result<Town, MapsError> {
        geojson_io::parse(text.as_bytes(), "<input>")
    }

    /// Parses a town from GeoJSON bytes; errors name the source `file`.
    pub fn from_geojson_slice(bytes: &[u8], file: &str) -> Result<Town, MapsError> {
        geojson_io::parse(bytes, file)
    }

    /// The town as GeoJSON text, one feature a line; the same town always gives the
    /// same text.
    pub fn to_geojson_string(&self) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail and our types always serialise.
        let _ = geojson_io::write(self, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Saves the town as GeoJSON to `path` (written whole to a temporary file beside
    /// it, then renamed, so a reader never sees half a file).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), MapsError> {
        let path = path.as_ref();
        let io_err = |cause| MapsError::Io {
            path: path.to_owned(),
            action: "write",
            cause,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let file = fs::File::create(&tmp).map_err(io_err)?;
        geojson_io::write(self, BufWriter::with_capacity(1 << 20, file)).map_err(io_err)?;
        fs::rename(&tmp, path).map_err(io_err)
    }

    /// Saves the town as `dir/town.geojson`, creating `dir` if missing; returns the file.
    pub fn save_in(&self, dir: impl AsRef<Path>) -> Result<std::path::PathBuf, MapsError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|source| MapsError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let file = dir.join("town.geojson");
        self.save(&file)?;
        Ok(file)
    }

    /// The household with this id.
    pub fn household(&self, id: u32) -> Option<&Household> {
        find(&self.households, id, |h| h.id)
    }

    /// The shelter with this id.
    pub fn shelter(&self, id: u32) -> Option<&Shelter> {
        find(&self.shelters, id, |s| s.id)
    }

    /// The zone with this id.
    pub fn zone(&self, id: u32) -> Option<&Zone> {
        find(&self.zones, id, |z| z.id)
    }

    /// The road with this id.
    pub fn road(&self, id: u32) -> Option<&Road> {
        find(&self.roads, id, |r| r.id)
    }

    /// The walking network of the town's roads, with the zones measured along each edge.
    pub fn network(&self) -> Network {
        Network::new(&self.roads, &self.zones).with_water(&self.water)
    }

    /// The zones that contain `point`.
    pub fn zones_containing(&self, point: LonLat) -> impl Iterator<Item = &Zone> {
        self.zones.iter().filter(move |z| z.contains(point))
    }

    /// The households inside any zone marked for `hazard`, in household order.
    pub fn households_at_risk(&self, hazard: Hazard) -> impl Iterator<Item = &Household> {
        let zones: Vec<&Zone> = self.zones.iter().filter(|z| z.hazard == hazard).collect();
        self.households
            .iter()
            .filter(move |h| zones.iter().any(|z| z.contains(h.location)))
    }

    /// An index from resident id and from card to household and member; build it once
    /// and keep it while the town does not change.
    pub fn registry(&self) -> ResidentIndex<'_> {
        let mut residents = foldhash::HashMap::default();
        let mut cards = foldhash::HashMap::default();
        for h in &self.households {
            for m in &h.members {
                residents.insert(m.resident, (h, m));
                for c in &m.cards {
                    cards.insert(c, (h, m));
                }
            }
        }
        ResidentIndex { residents, cards }
    }

    /// Counts of what the town holds.
    pub fn summary(&self) -> Summary {
        let members = || self.households.iter().flat_map(|h| &h.members);
        Summary {
            households: self.households.len(),
            residents: members().count(),
            needing_help: members().filter(|m| m.needs_help).count(),
            with_card: members().filter(|m| !m.cards.is_empty()).count(),
            aged_65_plus: members().filter(|m| m.age_band.is_aged()).count(),
            shelters: self.shelters.len(),
            total_capacity: self.shelters.iter().map(|s| u64::from(s.capacity)).sum(),
            zones: self.zones.len(),
            roads: self.roads.len(),
        }
    }

    /// Checks the town's rules: ids unique within their kind (resident ids across the
    /// whole town), positions within WGS 84, a card linked to one resident only,
    /// non-negative floor areas, roads and water lines of at least two positions.
    pub fn validate(&self) -> Result<(), MapsError> {
        self.check().map_err(|v| MapsError::Invalid {
            what: v.what,
            id: v.id,
            message: v.message,
        })
    }

    pub(crate) fn check(&self) -> Result<(), Violation> {
        let fail = |what, pos, id, message: String| {
            Err(Violation {
                what,
                pos,
                id,
                message,
            })
        };
        let ids: Vec<u32> = self.households.iter().map(|h| h.id).collect();
        if let Some(pos) = first_duplicate(&ids) {
            return fail("household", pos, ids[pos], "duplicate household id".into());
        }
        let mut residents = Vec::with_capacity(self.households.len() * 3);
        for (pos, h) in self.households.iter().enumerate() {
            if !h.location.is_valid() {
                return fail("household", pos, h.id, "location outside WGS 84".into());
            }
            residents.extend(h.members.iter().map(|m| (m.resident, pos)));
        }
        let keys: Vec<u32> = residents.iter().map(|r| r.0).collect();
        if let Some(i) = first_duplicate(&keys) {
            let (resident, pos) = residents[i];
            let message = format!("resident id {resident} is used twice");
            return fail("household", pos, self.households[pos].id, message);
        }
        let mut cards = CardSet::with_capacity(residents.len());
        for (pos, h) in self.households.iter().enumerate() {
            for m in &h.members {
                for c in &m.cards {
                    if c.issuer_key_id.is_empty() || c.serial.is_empty() {
                        let message =
                            format!("resident {} has an empty card reference", m.resident);
                        return fail("household", pos, h.id, message);
                    }
                    if let Some(earlier) = cards.insert(c, m.resident) {
                        let message = format!(
                            "resident {} has a card already linked to resident {earlier}",
                            m.resident
                        );
                        return fail("household", pos, h.id, message);
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        for (pos, s) in self.shelters.iter().enumerate() {
            if !seen.insert(s.id) {
                return fail("shelter", pos, s.id, "duplicate shelter id".into());
            }
            if !s.location.is_valid() {
                return fail("shelter", pos, s.id, "location outside WGS 84".into());
            }
            if s.floor_area_m2
                .is_some_and(|a| !(a.is_finite() && a >= 0.0))
            {
                return fail(
                    "shelter",
                    pos,
                    s.id,
                    "floor area is not a non-negative number".into(),
                );
            }
        }
        let mut seen = HashSet::new();
        for (pos, z) in self.zones.iter().enumerate() {
            if !seen.insert(z.id) {
                return fail("zone", pos, z.id, "duplicate zone id".into());
            }
            use geo::CoordsIter;
            if z.area.0.is_empty()
                || z.area
                    .coords_iter()
                    .any(|c| !LonLat::new(c.x, c.y).is_valid())
            {
                return fail("zone", pos, z.id, "area is empty or outside WGS 84".into());
            }
            let short = |r: &geo::LineString<f64>| r.0.len() < 4;
            if z.area
                .0
                .iter()
                .any(|p| short(p.exterior()) || p.interiors().iter().any(short))
            {
                return fail(
                    "zone",
                    pos,
                    z.id,
                    "a ring has fewer than 4 positions".into(),
                );
            }
        }
        check_lines(
            "road",
            "road",
            self.roads.iter().map(|r| (r.id, &r.points[..])),
        )?;
        check_lines(
            "water",
            "water line",
            self.water.iter().map(|w| (w.id, &w.points[..])),
        )?;
        Ok(())
    }
}

/// Cards seen so far, for finding a card linked to two residents. Keyed by serial
/// alone (8 bytes, hashed fast, where the pair would hash 28 and chase two pointers);
/// the rare serial shared by two issuers goes to a second map keyed by both.
/// foldhash rather than std's SipHash: hashing was a third of loading a big town,
/// and foldhash is still seeded per process against crafted collisions.
struct CardSet<'t> {
    by_serial: foldhash::HashMap<&'t [u8], (&'t [u8], u32)>,
    by_pair: foldhash::HashMap<(&'t [u8], &'t [u8]), u32>,
}

impl<'t> CardSet<'t> {
    fn with_capacity(n: usize) -> Self {
        let by_serial = foldhash::HashMap::with_capacity_and_hasher(n, Default::default());
        CardSet {
            by_serial,
            by_pair: foldhash::HashMap::default(),
        }
    }

    /// Records that `card` belongs to `resident`; returns the earlier resident if
    /// another one already has it.
    fn insert(&mut self, card: &'t CardRef, resident: u32) -> Option<u32> {
        let (issuer, serial) = (card.issuer_key_id.as_slice(), card.serial.as_slice());
        match self.by_serial.entry(serial) {
            Entry::Vacant(v) => {
                v.insert((issuer, resident));
                None
            }
            Entry::Occupied(o) if o.get().0 == issuer => Some(o.get().1),
            Entry::Occupied(_) => self.by_pair.insert((issuer, serial), resident),
        }
    }
}

/// The index of the first item whose key an earlier item already has. Linear when
/// the keys are strictly increasing (as a generated or saved town's ids are).
fn first_duplicate<K: Ord>(keys: &[K]) -> Option<usize> {
    if keys.windows(2).all(|w| w[0] < w[1]) {
        return None;
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]).then(a.cmp(&b)));
    order
        .windows(2)
        .filter(|w| keys[w[0]] == keys[w[1]])
        .map(|w| w[1])
        .min()
}

fn find<T>(items: &[T], id: u32, key: impl Fn(&T) -> u32) -> Option<&T> {
    let dense = (id as usize).checked_sub(1).and_then(|i| items.get(i));
    match dense {
        Some(item) if key(item) == id => Some(item),
        _ => items.iter().find(|item| key(item) == id),
    }
}

/// Lookups of residents by id and by card, built by [`Town::registry`].
#[derive(Debug)]
pub struct ResidentIndex<'t> {
    residents: foldhash::HashMap<u32, (&'t Household, &'t Member)>,
    cards: foldhash::HashMap<&'t CardRef, (&'t Household, &'t Member)>,
}

impl<'t> ResidentIndex<'t> {
    /// The resident with this id and their household.
    pub fn resident(&self, resident: u32) -> Option<(&'t Household, &'t Member)> {
        self.residents.get(&resident).copied()
    }

    /// The resident a card is linked to, and their household.
    pub fn by_card(&self, card: &CardRef) -> Option<(&'t Household, &'t Member)> {
        self.cards.get(card).copied()
    }
}

/// Counts of what a town holds; `Display` prints one `name: value` a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of households.
    pub households: usize,
    /// Number of residents.
    pub residents: usize,
    /// Residents who need help to evacuate.
    pub needing_help: usize,
    /// Residents with at least one registered card.
    pub with_card: usize,
    /// Residents aged 65 or over.
    pub aged_65_plus: usize,
    /// Number of shelters.
    pub shelters: usize,
    /// Sum of shelter capacities (people).
    pub total_capacity: u64,
    /// Number of hazard zones.
    pub zones: usize,
    /// Number of roads.
    pub roads: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "households: {}", self.households)?;
        writeln!(f, "residents: {}", self.residents)?;
        writeln!(f, "needing help: {}", self.needing_help)?;
        writeln!(f, "with card: {}", self.with_card)?;
        writeln!(f, "aged 65+: {}", self.aged_65_plus)?;
        writeln!(f, "shelters: {}", self.shelters)?;
        writeln!(f, "total capacity: {}", self.total_capacity)?;
        writeln!(f, "zones: {}", self.zones)?;
        writeln!(f, "roads: {}", self.roads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{GenerateParams, generate};

    #[test]
    fn save_in_creates_the_directory_or_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let town = generate(&GenerateParams {
            households: 3,
            shelters: 1,
            seed: 4,
        });
        let file = town.save_in(dir.path().join("a/b")).unwrap();
        assert_eq!(file, dir.path().join("a/b/town.geojson"));
        assert_eq!(Town::load(&file).unwrap(), town);
        let err = town.save_in(file.join("c")).unwrap_err();
        assert!(matches!(err, MapsError::CreateDir { .. }));
        assert_eq!(
            err.to_string(),
            format!("cannot create {}", file.join("c").display())
        );
    }

    fn small() -> Town {
        generate(&GenerateParams {
            households: 50,
            shelters: 6,
            seed: 3,
        })
    }

    #[test]
    fn lookups_by_id_dense_or_not() {
        let mut town = small();
        assert_eq!(town.household(7).map(|h| h.id), Some(7));
        assert_eq!(town.shelter(6).map(|s| s.id), Some(6));
        assert_eq!(town.zone(2).map(|z| z.hazard), Some(Hazard::Flood));
        assert!(town.household(0).is_none() && town.household(51).is_none());
        town.households.reverse();
        assert_eq!(town.household(7).map(|h| h.id), Some(7));
    }

    #[test]
    fn registry_finds_residents_by_id_and_card() {
        let town = small();
        let registry = town.registry();
        let h = &town.households[4];
        let m = &h.members[0];
        assert_eq!(
            registry
                .resident(m.resident)
                .map(|(h, m)| (h.id, m.resident)),
            Some((h.id, m.resident))
        );
        let with_card = town
            .households
            .iter()
            .flat_map(|h| &h.members)
            .find(|m| !m.cards.is_empty())
            .unwrap();
        let found = registry
            .by_card(&with_card.cards[0])
            .map(|(_, m)| m.resident);
        assert_eq!(found, Some(with_card.resident));
        let stranger = CardRef {
            issuer_key_id: vec![1; 20],
            serial: vec![0x40; 8],
        };
        assert!(registry.by_card(&stranger).is_none());
    }

    #[test]
    fn validate_reports_each_rule() {
        let ok = small();
        ok.validate().unwrap();
        let mut t = ok.clone();
        t.households[3].members[0].resident = t.households[0].members[0].resident;
        assert!(
            t.validate()
                .unwrap_err()
                .to_string()
                .contains("is used twice")
        );
        let mut t = ok.clone();
        t.shelters[2].id = 1;
        assert_eq!(
            t.validate().unwrap_err().to_string(),
            "invalid town: shelter 1: duplicate shelter id"
        );
        let mut t = ok.clone();
        t.households[1].location.lat = 91.0;
        assert!(
            t.validate()
                .unwrap_err()
                .to_string()
                .contains("outside WGS 84")
        );
        let mut t = ok.clone();
        t.shelters[0].floor_area_m2 = Some(f64::NAN);
        assert!(t.validate().unwrap_err().to_string().contains("floor area"));
        let mut t = ok.clone();
        t.zones[0].area = geo::MultiPolygon(vec![geo::Polygon::new(
            geo::LineString::new(vec![]),
            vec![],
        )]);
        assert!(
            t.validate()
                .unwrap_err()
                .to_string()
                .contains("fewer than 4 positions")
        );
    }

    #[test]
    fn summary_prints_name_value_lines() {
        let text = small().summary().to_string();
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.split_once(": ").unwrap().0)
            .collect();
        assert_eq!(
            keys,
            [
                "households",
                "residents",
                "needing help",
                "with card",
                "aged 65+",
                "shelters",
                "total capacity",
                "zones",
                "roads"
            ]
        );
        assert!(text.starts_with("households: 50\n"));
    }
}
