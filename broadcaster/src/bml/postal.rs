//! Orders by postal code (module 0x0002), for a TV with no household number stored yet: the
//! page reads the postal code the viewer set up on the TV (`nvram://receiverinfo/zipcode`) and
//! shows what is ordered in that district, with the prompt for the number.
//!
//! Japanese postal codes are per 町域 (district). A municipality derives the table
//! `zipcode,district` from Japan Post's KEN_ALL, the district written as the town file's
//! household addresses begin (e.g. `4560001,潮見浜町本町`); the head-end maps each household
//! to the code of the longest district its address starts with. Addresses stay at the
//! head-end: the module carries, per postal code, only what is ordered there:
//!
//! ```text
//! zips.bin      a row per postal code, ascending: U:4B code (7 digits as a number),
//!               U:1B highest level in force (0 none, 1 all lifted, 3/4/5, 254 cannot confirm),
//!               U:1B hazard code of an order at that level, U:1B drill (all orders drills),
//!               U:4B expires (earliest of the orders in force, [`minute_key`]; 0x7FFFFFFF: none),
//!               U:2B first row in zsh.bin, U:1B shelters, S:1V district (EUC-JP)
//! zsh.bin       S:1V shelter name, the district's shelters by households sent there
//! ```
//!
//! Never a household or a resident: a district is summed up, or says it cannot confirm.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use evac_maps::Town;
use evac_protocol::ShelterId;

use super::table::{Directory, LIFTED, UNCONFIRMED, minute_key, multipart, order_of, string_field};
use super::verify::CheckedBatch;

/// The module of the orders by postal code.
pub const POSTAL_MODULE: u16 = 0x0002;
/// Shelters one postal code lists at most (the page shows the first few).
pub const MAX_SHELTERS: usize = 255;
/// `expires` when nothing is in force: later than any minute key, and clear of the sign bit
/// (an engine may read U:4B as a signed 32-bit integer).
pub const NO_EXPIRY: u32 = i32::MAX as u32;

/// Why a postal-code table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PostalError {
    /// The file cannot be read.
    #[error("reading the postal codes {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `zipcode,district`.
    #[error("postal codes line {line}: {why}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
}

/// The postal-code table: districts (as addresses begin) and their 7-digit codes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostalCodes {
    districts: BTreeMap<String, u32>,
}

impl PostalCodes {
    /// Reads a `zipcode,district` CSV file.
    pub fn read(path: &Path) -> Result<Self, PostalError> {
        let text = std::fs::read_to_string(path).map_err(|source| PostalError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses `zipcode,district` lines (`4560001` or `456-0001`); blank lines, `#` comments
    /// and a `zipcode,district` header are skipped. A district given two codes is refused.
    pub fn parse(text: &str) -> Result<Self, PostalError> {
        let mut districts = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with('#') || line == "zipcode,district" {
                continue;
            }
            let bad = |why: String| PostalError::Line { line: i + 1, why };
            let (zip, district) = line
                .split_once(',')
                .ok_or_else(|| bad("expected zipcode,district".into()))?;
            let digits: String = zip.trim().chars().filter(|c| *c != '-').collect();
            if digits.len() != 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("{zip:?} is not a 7-digit postal code")));
            }
            let zip: u32 = digits.parse().map_err(|_| bad(format!("{zip:?}")))?;
            let district = district.trim().trim_matches('"');
            if district.is_empty() {
                return Err(bad("no district".into()));
            }
            match districts.insert(district.to_owned(), zip) {
                Some(other) if other != zip => {
                    return Err(bad(format!(
                        "{district} has two postal codes ({other:07} and {zip:07})"
                    )));
                }
                _ => {}
            }
        }
        Ok(PostalCodes { districts })
    }

    /// The code of the longest district `address` starts with.
    pub fn zip_of(&self, address: &str) -> Option<u32> {
        self.districts
            .iter()
            .filter(|(d, _)| address.starts_with(d.as_str()))
            .max_by_key(|(d, _)| d.len())
            .map(|(_, z)| *z)
    }
}

/// The town's households by postal code, kept at the head-end (never aired).
#[derive(Clone, Debug, Default)]
pub struct PostalAreas {
    /// Per code: its districts' names (joined) and its households.
    zips: BTreeMap<u32, (String, Vec<u32>)>,
    zip_of: BTreeMap<u32, u32>,
    /// Households whose address starts with no district of the table (or have none).
    pub unmatched: usize,
}

impl PostalAreas {
    /// Households (number, address) by the codes of `codes`; codes no household has are left
    /// out (the page then only asks for the number).
    pub fn new<'a>(
        codes: &PostalCodes,
        households: impl IntoIterator<Item = (u32, Option<&'a str>)>,
    ) -> Self {
        let mut a = PostalAreas::default();
        for (h, address) in households {
            match address.and_then(|s| codes.zip_of(s)) {
                Some(z) => {
                    a.zip_of.insert(h, z);
                    a.zips.entry(z).or_default().1.push(h);
                }
                None => a.unmatched += 1,
            }
        }
        for (zip, (name, hs)) in &mut a.zips {
            hs.sort_unstable();
            let names: Vec<&str> = codes
                .districts
                .iter()
                .filter(|(_, z)| *z == zip)
                .map(|(d, _)| d.as_str())
                .collect();
            *name = names.join("・");
        }
        a
    }

    /// The households of `town` by the codes of `codes`.
    pub fn from_town(codes: &PostalCodes, town: &Town) -> Self {
        Self::new(
            codes,
            town.households.iter().map(|h| (h.id, h.address.as_deref())),
        )
    }

    /// The postal codes, ascending.
    pub fn zips(&self) -> impl Iterator<Item = u32> + '_ {
        self.zips.keys().copied()
    }

    /// The codes of households `first..=last`.
    pub fn zips_of(&self, first: u32, last: u32) -> BTreeSet<u32> {
        self.zip_of.range(first..=last).map(|(_, z)| *z).collect()
    }

    /// What is ordered in postal code `zip`, from each household's orders in force (`None`:
    /// its group cannot be confirmed).
    pub fn summary<'a>(
        &self,
        zip: u32,
        batches: impl Fn(u32) -> Option<Vec<&'a CheckedBatch>>,
    ) -> ZipSummary {
        let mut s = ZipSummary {
            level: 0,
            hazard: 0,
            drill: true,
            expires: NO_EXPIRY,
            shelters: Vec::new(),
        };
        let mut sent: HashMap<u32, usize> = HashMap::new();
        for &h in self.zips.get(&zip).map_or(&[][..], |(_, hs)| &hs[..]) {
            let Some(in_force) = batches(h) else {
                s.level = UNCONFIRMED;
                continue;
            };
            let Some((b, r)) = order_of(in_force, h) else {
                continue;
            };
            let b = b.batch();
            let Some(level) = r.level.map(|l| l.number()) else {
                if s.level == 0 {
                    s.level = LIFTED;
                }
                continue;
            };
            if s.level != UNCONFIRMED && level > s.level.max(LIFTED) {
                s.level = level;
                s.hazard = b.hazard.code();
            }
            s.drill &= b.drill;
            s.expires = s.expires.min(minute_key(b.expires));
            if r.shelter != ShelterId::NONE {
                *sent.entry(r.shelter.0).or_default() += 1;
            }
        }
        if s.level <= LIFTED || s.level == UNCONFIRMED {
            s.drill = false;
            sent.clear();
        }
        let mut shelters: Vec<(u32, usize)> = sent.into_iter().collect();
        shelters.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        s.shelters = shelters.into_iter().map(|(id, _)| id).collect();
        s
    }

    /// Module 0x0002's entity: `zips.bin` and `zsh.bin` from `summaries` (by code), shelter
    /// names from `directory`.
    pub fn module(&self, summaries: &BTreeMap<u32, ZipSummary>, directory: &Directory) -> Vec<u8> {
        let mut zips = Vec::new();
        let mut names = Vec::new();
        let mut rows = 0usize;
        for (zip, (district, _)) in &self.zips {
            let Some(s) = summaries.get(zip) else {
                continue;
            };
            let listed = s
                .shelters
                .len()
                .min(MAX_SHELTERS)
                .min(usize::from(u16::MAX).saturating_sub(rows));
            zips.extend_from_slice(&zip.to_be_bytes());
            zips.extend_from_slice(&[s.level, s.hazard, u8::from(s.drill)]);
            zips.extend_from_slice(&s.expires.to_be_bytes());
            zips.extend_from_slice(&(rows as u16).to_be_bytes());
            zips.push(listed as u8);
            string_field(&mut zips, district);
            for id in &s.shelters[..listed] {
                let name = directory
                    .shelter(*id)
                    .map_or_else(|| format!("No. {id}"), |i| i.name.clone());
                string_field(&mut names, &name);
            }
            rows += listed;
        }
        multipart(&[
            ("zips.bin", super::TABLE_TYPE, &zips),
            ("zsh.bin", super::TABLE_TYPE, &names),
        ])
    }
}

/// What is ordered in one postal code's district.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipSummary {
    /// The highest level in force (0 none, [`LIFTED`] all lifted, 3/4/5, [`UNCONFIRMED`]).
    pub level: u8,
    /// The hazard of an order at that level.
    pub hazard: u8,
    /// Every order in force is a drill.
    pub drill: bool,
    /// The earliest expiry of the orders in force ([`minute_key`]).
    pub expires: u32,
    /// Shelter ids households there are sent to, most households first.
    pub shelters: Vec<u32>,
}

#[cfg(test)]
mod tests;
