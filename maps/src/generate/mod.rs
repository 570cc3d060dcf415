//! The deterministic synthetic-town generator.
//!
//! [`generate`] lays households and shelters over the fixed geography of
//! [`geography`]: households cluster in eight villages; household sizes and ages
//! follow a rural Japanese pattern (about 38 % of residents 65 or over); about 2.4 %
//! of residents need help to evacuate; 90 % have a registered card (4 % of those a
//! second one, e.g. a smartphone certificate). Shelters are school gyms, community
//! halls, hill parks and tsunami evacuation buildings; which hazards each is
//! designated for follows from the hazard zones it stands in.
//!
//! The same [`GenerateParams`] always give the same town, byte for byte once saved:
//! the random numbers come from ChaCha8 (a fixed algorithm) keyed by SHA-256 of the
//! seed and a purpose label, and are turned into values by this module's own
//! arithmetic, not by a library's distributions that may change between versions.
//! Households and shelters draw from separate streams, so changing the number of
//! shelters leaves the households as they were.

mod city;
pub mod geography;
pub use city::{
    CAPACITY_MARGIN, HOUSEHOLDS_PER_SITE, TSUNAMI_BUILDING_SHARE, TSUNAMI_M2_PER_PERSON,
    ZONE_HAZARDS, designated_capacity, generate_city, zone_residents,
};
mod names;
mod roads;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::hazard::{Hazard, HazardSet};
use crate::model::{
    AgeBand, CardRef, Household, Language, LonLat, Member, Shelter, capacity_from_floor_area,
};
use crate::registry::{BirthDate, REGISTRY_DATE};
use crate::town::Town;
use geography::{M_PER_DEG_LAT, M_PER_DEG_LON, TOWN_NAME, Village};

/// The issuer key identifier of the synthetic JPKI test CA that every generated card
/// reference names: the first 20 bytes of SHA-256("evac synthetic JPKI test CA").
/// A drill issues virtual cards under a CA with this key identifier.
pub const SYNTHETIC_ISSUER_KEY_ID: [u8; 20] = [
    0x57, 0x2b, 0x71, 0xa8, 0xdb, 0x1c, 0x22, 0x9b, 0x54, 0xc8, 0xaf, 0x2c, 0x56, 0xde, 0x74, 0x85,
    0x60, 0x05, 0xc6, 0x62,
];

/// [`SYNTHETIC_ISSUER_KEY_ID`] as it appears in `town.geojson` (lower-case hex).
pub const SYNTHETIC_ISSUER_KEY_ID_HEX: &str = "572b71a8db1c229b54c8af2c56de74856005c662";

/// The seed of the committed sample `maps/data/town.geojson`.
pub const SAMPLE_SEED: u64 = 1;
/// The number of households in the committed sample.
pub const SAMPLE_HOUSEHOLDS: u32 = 3000;
/// The number of shelters in the committed sample.
pub const SAMPLE_SHELTERS: u32 = 12;

/// The most households [`generate`] makes: ten times the benchmark's million,
/// about 9 GiB of memory.
pub const MAX_HOUSEHOLDS: u32 = 10_000_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateParams {
    /// Number of households.
    pub households: u32,
    /// Number of shelters.
    pub shelters: u32,
    /// The seed: the same seed and counts give the same town.
    pub seed: u64,
}

impl Default for GenerateParams {
    /// The committed sample's parameters.
    fn default() -> Self {
        GenerateParams {
            households: SAMPLE_HOUSEHOLDS,
            shelters: SAMPLE_SHELTERS,
            seed: SAMPLE_SEED,
        }
    }
}

/// The serial of a generated card: 8 bytes, unique by construction. The first byte
/// is 0x40 + `ordinal` (so the serial is a positive INTEGER whose DER content is
/// exactly these 8 bytes), then the resident id masked by a constant, then three
/// bytes of SHA-256 so serials do not look sequential.
pub fn synthetic_card_serial(resident: u32, ordinal: u8) -> [u8; 8] {
    let masked = (resident ^ 0x5a3c_96e1).to_be_bytes();
    let mut h = Sha256::new();
    h.update(b"evac synthetic card serial");
    h.update(resident.to_be_bytes());
    h.update([ordinal]);
    let d = h.finalize();
    [
        0x40 | (ordinal & 0x3f),
        masked[0],
        masked[1],
        masked[2],
        masked[3],
        d[0],
        d[1],
        d[2],
    ]
}

/// Generates a town. Ids are dense from 1: households, residents (across the whole
/// town, in household order), shelters and zones. More households than
/// [`MAX_HOUSEHOLDS`], or shelters than that, are cut to it.
pub fn generate(params: &GenerateParams) -> Town {
    let villages = geography::villages();
    let zones = geography::zones();
    let mut rng = Prng::new(params.seed, "households");
    let mut households = Vec::with_capacity(params.households.min(MAX_HOUSEHOLDS) as usize);
    let mut next_resident = 1u32;
    let weights: Vec<u32> = villages.iter().map(|v| v.weight).collect();
    for id in 1..=params.households.min(MAX_HOUSEHOLDS) {
        let village = &villages[rng.weighted(&weights)];
        households.push(household(&mut rng, id, village, &mut next_resident));
    }
    registry(params.seed, &mut households);
    let mut rng = Prng::new(params.seed, "shelters");
    let shelters = (0..params.shelters.min(MAX_HOUSEHOLDS))
        .map(|i| shelter(&mut rng, i, &villages, &zones))
        .collect();
    Town {
        households,
        shelters,
        zones,
        roads: roads::roads(params.seed, params.households, &villages),
        water: roads::water(),
    }
}

fn household(rng: &mut Prng, id: u32, village: &Village, next_resident: &mut u32) -> Household {
    let location = scatter(rng, village.centre, village.spread_m);
    let language = match rng.below(100) {
        0..=93 => Language::Japanese,
        94..=96 => Language::EasyJapanese,
        _ => Language::English,
    };
    let (family, family_kana) = names::family(language, rng.f64());
    let bands = ages(rng);
    let mut given_names: Vec<(&str, &str)> = Vec::with_capacity(bands.len());
    let members = bands
        .into_iter()
        .map(|band| {
            let resident = *next_resident;
            *next_resident += 1;
            let needs_help = rng.chance(match band {
                AgeBand::Oldest => 0.15,
                AgeBand::Elder => 0.05,
                AgeBand::Senior => 0.015,
                _ => 0.005,
            });
            let mut cards = Vec::new();
            if rng.chance(0.90) {
                let n = if rng.chance(0.04) { 2 } else { 1 };
                for ordinal in 0..n {
                    cards.push(CardRef {
                        issuer_key_id: SYNTHETIC_ISSUER_KEY_ID.to_vec(),
                        serial: synthetic_card_serial(resident, ordinal).to_vec(),
                    });
                }
            }
            // No two members of a household share a name (or its reading): a family asking
            // for one of them must not be told about the other.
            let (given, given_kana) = names::given(language, band, rng.f64(), |(n, k)| {
                given_names.iter().any(|(g, gk)| *g == n || *gk == k)
            });
            given_names.push((given, given_kana));
            Member {
                resident,
                name: format!("{family} {given}"),
                age_band: band,
                needs_help,
                cards,
                kana: format!("{family_kana} {given_kana}"),
                birth: None,
                anpi_consent: false,
            }
        })
        .collect();
    let address = format!(
        "{TOWN_NAME}{} {}-{}",
        village.name,
        1 + rng.below(40),
        1 + rng.below(30)
    );
    Household {
        id,
        location,
        address: Some(address),
        language,
        members,
    }
}

/// The share of residents who agree that HQ tell families where they are.
pub const CONSENT_SHARE: f64 = 0.85;
/// The share of consenting residents who chose a family code.
pub const FAMILY_CODE_SHARE: f64 = 0.25;

/// Dates of birth (the age on [`REGISTRY_DATE`] within the member's band) and consent, from
/// a stream of their own so the rest of the town is as it was before the registry had them.
fn registry(seed: u64, households: &mut [Household]) {
    let mut rng = Prng::new(seed, "registry");
    // Days since 1970 of the day `years` before the registry's date.
    let before = |years: u32| {
        REGISTRY_DATE
            .years_before(years)
            .map_or(i64::MIN / 2, BirthDate::days_since_epoch)
    };
    for m in households.iter_mut().flat_map(|h| h.members.iter_mut()) {
        let (young, old) = m.age_band.ages();
        // Born after the day `old + 1` years before, at the latest `young` years before.
        let (earliest, latest) = (before(old + 1) + 1, before(young));
        let span = (latest - earliest + 1).max(1) as u32;
        m.birth = BirthDate::from_days_since_epoch(earliest + i64::from(rng.below(span)));
        m.anpi_consent = rng.chance(CONSENT_SHARE);
    }
}

/// The family codes residents of a town generated with `seed` chose: `(resident, code)`,
/// about [`FAMILY_CODE_SHARE`] of the consenting residents, ten digits printed
/// `12345-67890`. Residents tell them to their family; the registry office gives them to HQ,
/// which keeps only a keyed hash (see HQ's `family-codes` command). They are not in the town
/// file.
pub fn family_codes(town: &Town, seed: u64) -> Vec<(u32, String)> {
    let mut rng = Prng::new(seed, "family codes");
    let mut out = Vec::new();
    for m in town.households.iter().flat_map(|h| &h.members) {
        let chose = rng.chance(FAMILY_CODE_SHARE);
        let digits =
            (u64::from(rng.0.next_u32()) << 32 | u64::from(rng.0.next_u32())) % 10_000_000_000;
        if chose && m.anpi_consent {
            let d = format!("{digits:010}");
            out.push((m.resident, format!("{}-{}", &d[..5], &d[5..])));
        }
    }
    out
}

/// A position near `centre`, normally spread, on land (tries a few times, then
/// falls back to the centre).
fn scatter(rng: &mut Prng, centre: LonLat, spread_m: f64) -> LonLat {
    for _ in 0..16 {
        let p = LonLat::new(
            centre.lon + rng.normal() * spread_m / M_PER_DEG_LON,
            centre.lat + rng.normal() * spread_m / M_PER_DEG_LAT,
        );
        if geography::on_land(p) {
            return round6(p);
        }
    }
    round6(centre)
}

fn round6(p: LonLat) -> LonLat {
    LonLat::new((p.lon * 1e6).round() / 1e6, (p.lat * 1e6).round() / 1e6)
}

/// Age bands of one household's members, by household type.
fn ages(rng: &mut Prng) -> Vec<AgeBand> {
    use AgeBand::*;
    let size = 1 + rng.weighted(&[29, 33, 18, 12, 5, 3]);
    let pick = |rng: &mut Prng, bands: &[(AgeBand, u32)]| {
        let w: Vec<u32> = bands.iter().map(|b| b.1).collect();
        bands[rng.weighted(&w)].0
    };
    match size {
        1 => vec![pick(
            rng,
            &[
                (Young, 10),
                (Middle, 24),
                (Senior, 25),
                (Elder, 26),
                (Oldest, 15),
            ],
        )],
        2 => {
            let head = pick(
                rng,
                &[
                    (Young, 8),
                    (Middle, 28),
                    (Senior, 34),
                    (Elder, 23),
                    (Oldest, 7),
                ],
            );
            // A couple, or a parent with a grown child.
            let other = match (head, rng.below(10)) {
                (Elder | Oldest, 0..=2) => Middle,
                (Middle, 0..=2) => Young,
                (h, _) => h,
            };
            vec![head, other]
        }
        n if rng.chance(0.5) => {
            // Parents and children.
            let parents = pick(rng, &[(Young, 45), (Middle, 55)]);
            // Young parents have young children; older ones, half the time, grown ones.
            let kids = if parents == Young || rng.chance(0.5) {
                Child
            } else {
                Young
            };
            let mut v = vec![parents, parents];
            v.resize(n, kids);
            v
        }
        n => {
            // Three generations: grandparent(s), parents, grandchildren.
            let old = pick(rng, &[(Senior, 40), (Elder, 42), (Oldest, 18)]);
            let mut v = vec![old];
            if n >= 4 {
                v.push(if rng.chance(0.6) {
                    old
                } else {
                    Oldest.min(old)
                });
            }
            v.extend([Middle, Middle]);
            let kids = if rng.chance(0.55) { Child } else { Young };
            v.resize(n, kids);
            v
        }
    }
}

/// The kinds of shelter the town has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gym,
    Hall,
    HillPark,
    TsunamiBuilding,
}

/// The first shelters follow a fixed plan, so even a small town has each kind:
/// (village index, kind, accessible).
const PLAN: [(usize, Kind, bool); 12] = [
    (0, Kind::Gym, true),
    (3, Kind::HillPark, false),
    (1, Kind::HillPark, true),
    (2, Kind::HillPark, false),
    (0, Kind::TsunamiBuilding, true),
    (4, Kind::Hall, true),
    (6, Kind::Gym, true),
    (5, Kind::Hall, false),
    (1, Kind::Hall, false),
    (2, Kind::Gym, true),
    (7, Kind::Hall, false),
    (0, Kind::HillPark, true),
];

/// The hazards a shelter of `kind` at `location` is designated for: every shelter for an
/// earthquake; not for the hazard of a zone it stands in, except a tsunami evacuation
/// building (its upper floors are above the water) for tsunami and storm surge; hill parks
/// not for landslides; gyms and parks (open space) for a large fire.
fn designation(kind: Kind, location: LonLat, zones: &[crate::model::Zone]) -> HazardSet {
    let within = |h: Hazard| zones.iter().any(|z| z.hazard == h && z.contains(location));
    let (in_tsunami, in_flood, in_slide) = (
        within(Hazard::Tsunami),
        within(Hazard::Flood),
        within(Hazard::Landslide),
    );
    let building = kind == Kind::TsunamiBuilding;
    let mut hazards = HazardSet::EMPTY;
    let mut mark = |h: Hazard, yes: bool| {
        if yes {
            hazards.insert(h);
        }
    };
    mark(Hazard::Earthquake, true);
    mark(Hazard::Tsunami, building || !in_tsunami);
    mark(Hazard::StormSurge, building || !in_tsunami);
    mark(Hazard::Flood, !in_flood);
    mark(Hazard::InlandFlood, !in_flood && (building || !in_tsunami));
    mark(Hazard::Landslide, !in_slide && kind != Kind::HillPark);
    mark(
        Hazard::LargeFire,
        matches!(kind, Kind::Gym | Kind::HillPark),
    );
    hazards
}

fn shelter(rng: &mut Prng, i: u32, villages: &[Village], zones: &[crate::model::Zone]) -> Shelter {
    let (vi, kind, accessible) = match PLAN.get(i as usize) {
        Some(p) => *p,
        None => {
            let weights: Vec<u32> = villages.iter().map(|v| v.weight).collect();
            let vi = rng.weighted(&weights);
            let kind = match rng.below(100) {
                0..=34 => Kind::Gym,
                35..=59 => Kind::Hall,
                60..=89 => Kind::HillPark,
                _ if villages[vi].coastal => Kind::TsunamiBuilding,
                _ => Kind::Gym,
            };
            let accessible = rng.chance(match kind {
                Kind::Gym => 0.7,
                Kind::Hall => 0.5,
                Kind::HillPark => 0.2,
                Kind::TsunamiBuilding => 0.6,
            });
            (vi, kind, accessible)
        }
    };
    let village = &villages[vi];
    let location = match kind {
        // High ground: for a coastal village just beyond the tsunami zone's inland
        // edge, otherwise a little inland of the village.
        Kind::HillPark => {
            let mut c = village.centre;
            c.lat += (rng.f64() - 0.5) * 0.006;
            c.lon = if village.coastal {
                geography::coast_lon(c.lat)
                    - geography::tsunami_reach(c.lat)
                    - 0.003
                    - 0.004 * rng.f64()
            } else {
                c.lon - 0.004 - 0.006 * rng.f64()
            };
            scatter(rng, c, 100.0)
        }
        _ => scatter(rng, village.centre, village.spread_m * 0.3),
    };
    let hazards = designation(kind, location, zones);
    let floor_area_m2 = match kind {
        Kind::Gym => 600.0 + 800.0 * rng.f64(),
        Kind::Hall => 120.0 + 280.0 * rng.f64(),
        Kind::HillPark => 2500.0 + 3500.0 * rng.f64(),
        Kind::TsunamiBuilding => 300.0 + 500.0 * rng.f64(),
    }
    .round();
    let base = match kind {
        Kind::Gym => ["小学校体育館", "中学校体育館"][rng.below(2) as usize],
        Kind::Hall => ["公民館", "地区集会所"][rng.below(2) as usize],
        Kind::HillPark => ["高台公園", "八幡神社境内", "高台広場"][rng.below(3) as usize],
        Kind::TsunamiBuilding => "津波避難ビル",
    };
    let id = i + 1;
    Shelter {
        id,
        // The id keeps names unique when a large town repeats a village and kind.
        name: if i < PLAN.len() as u32 {
            format!("{}{base}", village.name)
        } else {
            format!("{}{base} {id}", village.name)
        },
        address: Some(format!(
            "{TOWN_NAME}{} {}-{}",
            village.name,
            1 + rng.below(40),
            1 + rng.below(30)
        )),
        location,
        capacity: capacity_from_floor_area(floor_area_m2),
        floor_area_m2: Some(floor_area_m2),
        hazards,
        accessible,
        open: true,
        gsi_id: None,
    }
}

/// The generator's random numbers: ChaCha8 keyed by SHA-256 of a label and the seed,
/// turned into values by plain arithmetic that this crate controls.
struct Prng(ChaCha8Rng);

impl Prng {
    fn new(seed: u64, purpose: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"evac-maps generator v1\0");
        h.update(purpose.as_bytes());
        h.update(seed.to_be_bytes());
        Prng(ChaCha8Rng::from_seed(h.finalize().into()))
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0), by multiply-shift; the bias is below 2^-32 · n.
    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.0.next_u32()) * u64::from(n)) >> 32) as u32
    }

    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// An index drawn with the given relative weights (at least one non-zero).
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut r = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }

    /// Standard normal, by Box-Muller.
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * libm::log(u1)).sqrt() * libm::cos(std::f64::consts::TAU * u2)
    }
}

#[cfg(test)]
mod tests;
