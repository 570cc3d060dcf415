//! The orders tables a BML page reads: one module per area of consecutive household numbers,
//! so a TV loads only its own area's few kilobytes and a changed order re-airs only its area.
//!
//! Module `0x0100 + household / area_size` is a zlib-compressed `multipart/mixed` entity of
//! three BinaryTables (STD-B24 part 2, 7.x; `lengthByte` 0, fixed fields):
//!
//! ```text
//! orders.bin    a row per household number of the area from its first, in order:
//!               U:1B level (255 not a household of the town, 254 cannot confirm, 0 no order,
//!               1 lifted, 3/4/5),
//!               U:1B shelter row (255 none: go to high ground or the nearest safe place),
//!               U:1B walking distance in 20 m (255 unknown or farther than 5 km),
//!               U:1B notice row (255 none)
//! notices.bin   U:1B hazard code, U:1B drill, U:4B expires ([`minute_key`]), issued and onset in
//!               the town's local time: U:1B month, day, hour, minute each, U:1B has onset
//! shelters.bin  S:1V name, S:1V address (EUC-JP)
//! ```
//!
//! No resident's name or address is in any of them: a household is its number.

use std::collections::{BTreeMap, HashMap};

use evac_maps::{Field, LonLat, Town};
use evac_protocol::overlay::OverlayRecord;
use evac_protocol::{HouseholdId, ShelterId};
use time::{OffsetDateTime, UtcOffset};

use super::verify::CheckedBatch;
use crate::dsmcc::MAX_MODULES;
use crate::error::Error;

/// The module of the first area; area `a` is module `AREA_MODULE_BASE + a`.
pub const AREA_MODULE_BASE: u16 = 0x0100;
/// Areas one carousel has room for (64 modules less the startup, status and postal-code
/// modules).
pub const MAX_AREAS: u32 = MAX_MODULES as u32 - 3;
/// The smallest area, in household numbers.
pub const MIN_AREA_SIZE: u32 = 1024;
/// Walking distance unit in the table, metres.
pub const DISTANCE_UNIT_M: f64 = 20.0;
/// Roads are longer than the straight line: the factor where no road distance is known.
pub const DETOUR_FACTOR: f64 = 1.3;
/// Level byte: not a household of the town.
pub const NOT_A_HOUSEHOLD: u8 = 255;
/// Level byte: lifted.
pub const LIFTED: u8 = 1;
/// Level byte: HQ's latest sections for the household's group failed the head-end's check
/// and nothing checked is in hand: the page cannot confirm (never "no order").
pub const UNCONFIRMED: u8 = 254;

/// A shelter as the page shows it (public information).
#[derive(Clone, Debug, PartialEq)]
pub struct ShelterInfo {
    /// Its name.
    pub name: String,
    /// Its postal address.
    pub address: String,
    /// Where it is.
    pub location: LonLat,
}

/// What the head-end knows of the town beyond the orders: which household numbers exist and
/// where (for walking distances, never aired), and the shelters' names and addresses.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    households: BTreeMap<u32, LonLat>,
    shelters: BTreeMap<u32, ShelterInfo>,
    /// Walking metres over the town's roads, (household, shelter): where known.
    walks: HashMap<(u32, u32), f32>,
}

/// Most (household, shelter) pairs whose road distance [`Directory::from_town`] works out;
/// a larger town gets great-circle × [`DETOUR_FACTOR`].
pub const MAX_ROAD_PAIRS: usize = 2_000_000;

impl Directory {
    /// A directory of `households` (number, location) and `shelters` (id, info).
    pub fn new(
        households: impl IntoIterator<Item = (u32, LonLat)>,
        shelters: impl IntoIterator<Item = (u32, ShelterInfo)>,
    ) -> Self {
        Directory {
            households: households.into_iter().collect(),
            shelters: shelters.into_iter().collect(),
            walks: HashMap::new(),
        }
    }

    /// The town file's household numbers and locations and its shelters (no resident's name
    /// or address is taken), with walking distances over its roads (the network HQ's engine
    /// and `evac-stb --route` use) when it has roads and at most [`MAX_ROAD_PAIRS`] pairs.
    pub fn from_town(town: &Town) -> Self {
        let mut d = Directory::town_only(town);
        if town.households.len() * town.shelters.len() > MAX_ROAD_PAIRS {
            return d;
        }
        let net = town.network();
        if net.is_empty() {
            return d;
        }
        let cost = net.costs(None);
        let snaps: Vec<_> = town
            .households
            .iter()
            .filter_map(|h| Some((h.id, net.snap(h.location)?)))
            .collect();
        for s in &town.shelters {
            let Some(at) = net.snap(s.location) else {
                continue;
            };
            let field = Field::new(&net, &cost, [(s.id, at)]);
            for (h, snap) in &snaps {
                if let Some(r) = field.nearest(snap) {
                    d.walks.insert((*h, s.id), r.walk_m as f32);
                }
            }
        }
        d
    }

    fn town_only(town: &Town) -> Self {
        Directory::new(
            town.households.iter().map(|h| (h.id, h.location)),
            town.shelters.iter().map(|s| {
                (
                    s.id,
                    ShelterInfo {
                        name: s.name.clone(),
                        address: s.address.clone().unwrap_or_default(),
                        location: s.location,
                    },
                )
            }),
        )
    }

    /// The highest household number.
    pub fn last_household(&self) -> u32 {
        self.households.keys().next_back().copied().unwrap_or(0)
    }

    /// Whether `household` is a household of the town.
    pub fn has(&self, household: u32) -> bool {
        self.households.contains_key(&household)
    }

    /// The shelter `id`.
    pub fn shelter(&self, id: u32) -> Option<&ShelterInfo> {
        self.shelters.get(&id)
    }

    /// Walking metres from `household` to shelter `shelter`: over the roads where known,
    /// else straight line × [`DETOUR_FACTOR`].
    pub fn walk_m(&self, household: u32, shelter: u32) -> Option<f64> {
        if let Some(m) = self.walks.get(&(household, shelter)) {
            return Some(f64::from(*m));
        }
        let from = self.households.get(&household)?;
        let to = self.shelters.get(&shelter)?;
        Some(from.distance_m(to.location) * DETOUR_FACTOR)
    }
}

/// Household numbers per area for a town whose highest number is `last`: a power of two, at
/// least [`MIN_AREA_SIZE`], so that the areas fit [`MAX_AREAS`] modules.
pub fn area_size(last: u32) -> u32 {
    let need = (u64::from(last) + 1).div_ceil(u64::from(MAX_AREAS));
    (need.max(u64::from(MIN_AREA_SIZE)).next_power_of_two()).min(1 << 31) as u32
}

/// The area module a household's order is in.
pub fn module_of(household: u32, area_size: u32) -> u16 {
    AREA_MODULE_BASE + (household / area_size.max(1)) as u16
}

/// The order in force for `household` among `batches` (the highest version).
pub fn order_of<'a>(
    batches: impl IntoIterator<Item = &'a CheckedBatch>,
    household: u32,
) -> Option<(&'a CheckedBatch, &'a OverlayRecord)> {
    batches
        .into_iter()
        .filter_map(|b| b.batch().record(HouseholdId(household)).map(|r| (b, r)))
        .max_by_key(|(_, r)| r.version)
}

/// A time as the page can compare it: minutes in UTC counted as
/// ((((year - 2000) × 12 + month - 1) × 31 + day - 1) × 24 + hour) × 60 + minute. Orders like the
/// time and fits the 32-bit integers of BML's ECMAScript (which has no `Math` and wraps
/// milliseconds since 1970); the page computes it from `new Date()`'s UTC fields.
pub fn minute_key(t: i64) -> u32 {
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => {
            let y = i64::from(d.year() - 2000).clamp(0, 4000);
            let k = (((y * 12 + i64::from(u8::from(d.month())) - 1) * 31 + i64::from(d.day()) - 1)
                * 24
                + i64::from(d.hour()))
                * 60
                + i64::from(d.minute());
            k as u32
        }
        Err(_) => 0,
    }
}

fn local(t: i64, offset: UtcOffset) -> [u8; 4] {
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => {
            let d = d.to_offset(offset);
            [u8::from(d.month()), d.day(), d.hour(), d.minute()]
        }
        Err(_) => [0; 4],
    }
}

/// Encodes `s` in EUC-JP; characters EUC-JP lacks become 〓 (the geta mark broadcasting uses).
pub fn euc_jp(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let (bytes, _, bad) = encoding_rs::EUC_JP.encode(c.encode_utf8(&mut buf));
        if bad {
            out.extend_from_slice(&[0xA2, 0xAE]);
        } else {
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// Appends `s` as an `S:1V` field: a length byte, then EUC-JP cut to 255 bytes.
pub fn string_field(out: &mut Vec<u8>, s: &str) {
    let mut b = euc_jp(s);
    // Cut at 255 bytes on a character boundary (EUC-JP: 2 bytes, 3 for JIS X 0212).
    while b.len() > 255 {
        let cut = b.len()
            - if b.len() >= 3 && b[b.len() - 3] == 0x8F {
                3
            } else {
                2
            };
        b.truncate(cut);
    }
    out.push(b.len() as u8);
    out.extend_from_slice(&b);
}

/// The three tables of area `area` from the orders in force (`batches` of a household: `None`
/// when its group cannot be confirmed): (orders, notices, shelters).
pub fn area_tables<'a>(
    area: u32,
    area_size: u32,
    directory: &Directory,
    batches: impl Fn(u32) -> Option<Vec<&'a CheckedBatch>>,
    offset: UtcOffset,
) -> Result<[Vec<u8>; 3], Error> {
    let first = area * area_size;
    let last = directory
        .last_household()
        .min(first.saturating_add(area_size - 1));
    let mut orders = Vec::new();
    let mut notices: Vec<(u32, i64)> = Vec::new();
    let mut notice_rows = Vec::new();
    let mut shelters: Vec<u32> = Vec::new();
    let mut shelter_rows = Vec::new();
    for h in first..=last {
        let Some(in_force) = batches(h) else {
            let level = if directory.has(h) {
                UNCONFIRMED
            } else {
                NOT_A_HOUSEHOLD
            };
            orders.extend_from_slice(&[level, 255, 255, 255]);
            continue;
        };
        let order = order_of(in_force, h);
        let Some((b, r)) = order else {
            orders.extend_from_slice(&[
                if directory.has(h) { 0 } else { NOT_A_HOUSEHOLD },
                255,
                255,
                255,
            ]);
            continue;
        };
        let b = b.batch();
        let level = r.level.map_or(LIFTED, |l| l.number());
        let shelter = if r.shelter == ShelterId::NONE {
            255
        } else {
            match shelters.iter().position(|s| *s == r.shelter.0) {
                Some(i) => i as u8,
                None if shelters.len() < 255 => {
                    shelters.push(r.shelter.0);
                    let info = directory.shelter(r.shelter.0);
                    let name =
                        info.map_or_else(|| format!("No. {}", r.shelter.0), |s| s.name.clone());
                    string_field(&mut shelter_rows, &name);
                    string_field(&mut shelter_rows, info.map_or("", |s| s.address.as_str()));
                    (shelters.len() - 1) as u8
                }
                None => {
                    return Err(Error::Build(format!(
                        "area {area}: more than 255 shelters named"
                    )));
                }
            }
        };
        let walk = directory
            .walk_m(h, r.shelter.0)
            .map_or(255, |m| (m / DISTANCE_UNIT_M).round().min(255.0) as u8);
        let key = (b.message_id, b.issued);
        let notice = match notices.iter().position(|n| *n == key) {
            Some(i) => i as u8,
            None if notices.len() < 255 => {
                notices.push(key);
                notice_rows.push(b.hazard.code());
                notice_rows.push(u8::from(b.drill));
                // A minute key, as the page's clock is: never seconds.
                notice_rows.extend_from_slice(&minute_key(b.expires).to_be_bytes());
                notice_rows.extend_from_slice(&local(b.issued, offset));
                notice_rows.push(u8::from(b.onset.is_some()));
                notice_rows.extend_from_slice(&b.onset.map_or([0; 4], |t| local(t, offset)));
                (notices.len() - 1) as u8
            }
            None => {
                return Err(Error::Build(format!("area {area}: more than 255 notices")));
            }
        };
        orders.extend_from_slice(&[level, shelter, walk, notice]);
    }
    Ok([orders, notice_rows, shelter_rows])
}

/// A `multipart/mixed` entity of `parts` (Content-Location, Content-Type, body), with a
/// boundary found in none of them.
pub fn multipart(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut boundary = String::from("evac-bml-part");
    let mut n = 0u32;
    while parts
        .iter()
        .any(|(_, _, b)| b.windows(boundary.len()).any(|w| w == boundary.as_bytes()))
    {
        n += 1;
        boundary = format!("evac-bml-part-{n}");
    }
    let mut out =
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n").into_bytes();
    for (location, ty, body) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Location: {location}\r\nContent-Type: {ty}\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_fit_the_module_limit() {
        assert_eq!(area_size(3_458), 1024);
        assert_eq!(area_size(300_000), 8192);
        assert!(300_000 / area_size(300_000) < MAX_AREAS);
        assert_eq!(module_of(3_000, 1024), 0x0102);
    }

    #[test]
    fn walking_distances_follow_the_sample_towns_roads() {
        let town = Town::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../maps/data/town.geojson"
        ))
        .unwrap();
        let d = Directory::from_town(&town);
        let (h, s) = (&town.households[10], &town.shelters[3]);
        let road = d.walk_m(h.id, s.id).unwrap();
        let line = h.location.distance_m(s.location);
        assert!(road >= line * 0.99, "{road} vs {line}");
        assert_ne!(
            road,
            line * DETOUR_FACTOR,
            "a road distance, not the fallback"
        );
        assert!(d.walks.len() > town.households.len() * town.shelters.len() / 2);
    }

    #[test]
    fn minute_keys_order_like_time() {
        // 2026-12-06T09:30:00Z
        let t = 1_796_549_400;
        assert_eq!(
            minute_key(t),
            ((((26 * 12 + 11) * 31 + 5) * 24 + 9) * 60 + 30) as u32
        );
        assert!(minute_key(t + 60) > minute_key(t));
        assert!(minute_key(t + 86_400 * 40) > minute_key(t + 86_400 * 30));
    }

    #[test]
    fn euc_jp_strings_and_missing_characters() {
        assert_eq!(euc_jp("避難"), vec![0xC8, 0xF2, 0xC6, 0xF1]);
        assert_eq!(euc_jp("a😀"), vec![b'a', 0xA2, 0xAE]);
    }

    #[test]
    fn multipart_boundary_avoids_the_bodies() {
        let m = multipart(&[("a.bin", "application/octet-stream", b"x--evac-bml-part")]);
        let text = String::from_utf8_lossy(&m);
        assert!(text.contains("boundary=\"evac-bml-part-1\""));
        assert!(text.ends_with("--evac-bml-part-1--\r\n"));
    }
}
