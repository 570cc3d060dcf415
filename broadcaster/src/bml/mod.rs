//! The data-broadcasting (BML) service for the TVs people already own.
//!
//! HQ's signed sections are checked at the head-end ([`verify`]): only a [`CheckedBatch`]
//! reaches the tables. The carousel ([`crate::dsmcc`]) then carries, on component 0x40:
//!
//! | module | what |
//! | --- | --- |
//! | 0x0000 | `startup.bml` ([`page`]) |
//! | 0x0001 | `status.bin`: when the tables stop being current (last confirmed + the freshness bound, as [`table::minute_key`]), the bound, the area size |
//! | 0x0002 | `zips.bin`, `zsh.bin`: what is ordered per postal code ([`postal`]), when the head-end has a postal-code table |
//! | 0x0100 + area | the area's orders, notices and shelters ([`table`]), zlib-compressed |
//!
//! A household's area is its number divided by the area size; a changed order re-airs only its
//! area's module (a new module version, ahead of the cycle).

use std::collections::{BTreeMap, BTreeSet};

use evac_protocol::keyroll::KEY_TABLE_ID;
use evac_protocol::onair::{AirSection, OVERLAY_TABLE_ID};
use evac_protocol::overlay::GROUP_SHIFT;
use time::UtcOffset;

use crate::dsmcc::DataCarousel;
use crate::error::Error;

pub mod answer;
pub mod page;
pub mod postal;
pub mod settings;
pub mod table;
pub mod verify;

pub use settings::{BmlSettings, BmlSetupError};
pub use verify::{BmlRejected, CheckedBatch, Verifier};

use postal::{POSTAL_MODULE, PostalAreas, ZipSummary};
use table::{AREA_MODULE_BASE, Directory, area_size, area_tables, multipart};

/// Where the data carousel goes by default: next to the overlay PID.
pub const DEFAULT_DATA_PID: u16 = 0x0FE3;
/// The carousel's default bitrate budget, bit/s.
pub const DEFAULT_BITRATE: u64 = 1_000_000;
/// The startup module.
pub const STARTUP_MODULE: u16 = 0x0000;
/// The status module.
pub const STATUS_MODULE: u16 = 0x0001;
/// The MIME type of the BinaryTable parts.
const TABLE_TYPE: &str = "application/octet-stream";

/// Settings of the BML service.
#[derive(Clone, Copy, Debug)]
pub struct BmlConfig {
    /// Seconds after which a page says it cannot confirm (tables not confirmed current).
    pub fresh_s: u32,
    /// The town's offset from UTC, for the times the page shows.
    pub utc_offset: UtcOffset,
    /// DSM-CC block size.
    pub block_size: u16,
    /// The DII goes out again after this many bytes of blocks.
    pub dii_every: usize,
    /// The startup and status modules go out again after this many bytes of other blocks.
    pub repeat_every: usize,
}

impl Default for BmlConfig {
    fn default() -> Self {
        BmlConfig {
            fresh_s: 600,
            utc_offset: UtcOffset::from_hms(9, 0, 0).unwrap_or(UtcOffset::UTC),
            block_size: crate::dsmcc::MAX_BLOCK_SIZE,
            dii_every: 40_000,
            repeat_every: 64_000,
        }
    }
}

/// The BML service: checked orders in, a data carousel out.
pub struct BmlService {
    cfg: BmlConfig,
    verifier: Verifier,
    directory: Directory,
    groups: BTreeMap<u16, Vec<CheckedBatch>>,
    unconfirmed: BTreeSet<u16>,
    area_size: u32,
    carousel: DataCarousel,
    as_of: Option<i64>,
    postal: Option<(PostalAreas, BTreeMap<u32, ZipSummary>)>,
}

impl BmlService {
    /// The service for the town of `verifier`, its households and shelters in `directory`
    /// (empty until orders come), its tables confirmed current at `confirmed` (`None`: not
    /// yet: TVs cannot confirm until [`BmlService::confirm`]).
    pub fn new(
        cfg: BmlConfig,
        verifier: Verifier,
        directory: Directory,
        confirmed: Option<i64>,
    ) -> Result<Self, Error> {
        let area_size = area_size(directory.last_household());
        let mut s = BmlService {
            carousel: DataCarousel::new(1, cfg.block_size, cfg.dii_every)?,
            cfg,
            verifier,
            directory,
            groups: BTreeMap::new(),
            unconfirmed: BTreeSet::new(),
            area_size,
            as_of: confirmed,
            postal: None,
        };
        s.carousel.set_module(
            STARTUP_MODULE,
            "multipart/mixed",
            page::startup_module(None),
            true,
        )?;
        s.status()?;
        // A TV tuned in cold needs the page and the status whatever its area: they come round
        // again after every `repeat_every` bytes of area modules.
        s.carousel
            .repeat(vec![STARTUP_MODULE, STATUS_MODULE], cfg.repeat_every);
        for area in 0..=s.directory.last_household() / area_size {
            s.rebuild_area(area)?;
        }
        Ok(s)
    }

    /// Adds module 0x0002, what is ordered per postal code of `areas`, for TVs with no
    /// household number stored; it comes round with the startup and status modules.
    pub fn with_postal(mut self, areas: PostalAreas) -> Result<Self, Error> {
        let zips: Vec<u32> = areas.zips().collect();
        self.postal = Some((areas, BTreeMap::new()));
        self.rebuild_postal(zips)?;
        self.carousel.repeat(
            vec![STARTUP_MODULE, STATUS_MODULE, POSTAL_MODULE],
            self.cfg.repeat_every,
        );
        Ok(self)
    }

    /// Puts the answer mode on the page ([`answer`]): households answer HQ from the TV.
    pub fn with_answers(mut self, page: &answer::AnswerPage) -> Result<Self, Error> {
        self.carousel.set_module(
            STARTUP_MODULE,
            "multipart/mixed",
            page::startup_module(Some(page)),
            true,
        )?;
        Ok(self)
    }

    /// Postal codes module 0x0002 sums up (0 without a postal-code table).
    pub fn postal_codes(&self) -> usize {
        self.postal.as_ref().map_or(0, |(a, _)| a.zips().count())
    }

    /// Household numbers per area module.
    pub fn area_size(&self) -> u32 {
        self.area_size
    }

    /// The module `household`'s order is in.
    pub fn module_of(&self, household: u32) -> u16 {
        table::module_of(household, self.area_size)
    }

    /// Sections kept off the air so far, by reason.
    pub fn rejected(&self) -> BmlRejected {
        self.verifier.rejected
    }

    /// The carousel, to air it.
    pub fn carousel_mut(&mut self) -> &mut DataCarousel {
        &mut self.carousel
    }

    /// The carousel.
    pub fn carousel(&self) -> &DataCarousel {
        &self.carousel
    }

    fn status(&mut self) -> Result<(), Error> {
        let mut row = Vec::new();
        // Never confirmed: stale from the start (key 0 is long past).
        let stale = self
            .as_of
            .map_or(0, |t| table::minute_key(t + i64::from(self.cfg.fresh_s)));
        row.extend_from_slice(&stale.to_be_bytes());
        row.extend_from_slice(&self.cfg.fresh_s.to_be_bytes());
        row.extend_from_slice(&self.area_size.to_be_bytes());
        let m = multipart(&[("status.bin", TABLE_TYPE, &row)]);
        self.carousel
            .set_module(STATUS_MODULE, "multipart/mixed", m, false)?;
        Ok(())
    }

    /// The tables are current as of `now` (HQ's broker is connected, or a `--sections` file
    /// is what is to air): the status module says so at once the first time, then when a
    /// quarter of the freshness bound has passed since it last did.
    pub fn confirm(&mut self, now: i64) -> Result<(), Error> {
        if self
            .as_of
            .is_none_or(|t| now - t >= i64::from(self.cfg.fresh_s / 4).max(1))
        {
            self.as_of = Some(now);
            self.status()?;
        }
        Ok(())
    }

    /// Takes in a section set (a `--sections` file, or all groups HQ has published): each
    /// household group it has orders for is replaced by its checked orders. Returns the
    /// modules that changed (areas, and the postal codes').
    pub fn apply_set(&mut self, set: &[AirSection], now: i64) -> Result<Vec<u16>, Error> {
        let keys: Vec<AirSection> = set
            .iter()
            .filter(|s| s.table_id == KEY_TABLE_ID)
            .cloned()
            .collect();
        self.verifier.check_set(&keys, now);
        let mut by: BTreeMap<u16, Vec<AirSection>> = BTreeMap::new();
        for s in set.iter().filter(|s| s.table_id == OVERLAY_TABLE_ID) {
            by.entry(s.extension).or_default().push(s.clone());
        }
        let mut changed = Vec::new();
        for (group, sections) in by {
            changed.extend(self.apply_group(group, &sections, now)?);
        }
        Ok(changed)
    }

    /// Replaces household group `group`'s orders with `sections` (HQ's retained set for the
    /// group; empty: nothing in force). When any of its order sections fails the check, or
    /// the set is older than the one held (a replay), the group keeps what it had (counted), and a group with nothing checked
    /// in hand reads "cannot confirm" on the TVs, never "no order". Returns the modules that
    /// changed: its areas', then the postal codes' when what a district has changed.
    pub fn apply_group(
        &mut self,
        group: u16,
        sections: &[AirSection],
        now: i64,
    ) -> Result<Vec<u16>, Error> {
        let before = self.verifier.rejected.total();
        let checked = self.verifier.check_set(sections, now);
        if self.verifier.rejected.total() != before {
            if self.groups.contains_key(&group) || !self.unconfirmed.insert(group) {
                return Ok(Vec::new());
            }
        } else {
            self.unconfirmed.remove(&group);
            let checked: Vec<CheckedBatch> = checked
                .into_iter()
                .filter(|b| b.batch().group == group)
                .collect();
            // Versions only grow per household at HQ: a set whose newest is older than the
            // one held is a replay of earlier orders, which no TV could notice.
            let newest = |bs: &[CheckedBatch]| {
                bs.iter()
                    .flat_map(|b| b.batch().records.iter().map(|r| r.version))
                    .max()
            };
            let held = self.groups.get(&group).and_then(|h| newest(h));
            if let (Some(held), Some(new)) = (held, newest(&checked))
                && new < held
            {
                self.verifier.rejected.replayed += 1;
                return Ok(Vec::new());
            }
            if checked.is_empty() {
                self.groups.remove(&group);
            } else {
                self.groups.insert(group, checked);
            }
        }
        let first = u32::from(group) << GROUP_SHIFT;
        let last = first + (1 << GROUP_SHIFT) - 1;
        let areas: BTreeSet<u32> = (first / self.area_size..=last / self.area_size)
            .filter(|a| *a <= self.directory.last_household() / self.area_size)
            .collect();
        let mut changed = Vec::new();
        for a in areas {
            if self.rebuild_area(a)? {
                changed.push(AREA_MODULE_BASE + a as u16);
            }
        }
        let zips = match &self.postal {
            Some((areas, _)) => areas.zips_of(first, last).into_iter().collect(),
            None => Vec::new(),
        };
        if self.rebuild_postal(zips)? {
            changed.push(POSTAL_MODULE);
        }
        Ok(changed)
    }

    /// Takes one of HQ's tables as the live head-end hands them on (a household group's order
    /// sections, or the key announcements): the same check, then the group's area modules.
    pub fn apply_table(
        &mut self,
        table_id: u8,
        extension: u16,
        bodies: &[Vec<u8>],
        now: i64,
    ) -> Result<Vec<u16>, Error> {
        let set: Vec<AirSection> = bodies
            .iter()
            .map(|b| AirSection {
                table_id,
                extension,
                body: b.clone(),
            })
            .collect();
        match table_id {
            OVERLAY_TABLE_ID => self.apply_group(extension, &set, now),
            KEY_TABLE_ID => {
                self.verifier.check_set(&set, now);
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The checked batches in force for household `h`'s group; `None` when it cannot be
    /// confirmed.
    fn in_force(&self, h: u32) -> Option<Vec<&CheckedBatch>> {
        let g = (h >> GROUP_SHIFT) as u16;
        if self.unconfirmed.contains(&g) {
            return None;
        }
        Some(
            self.groups
                .get(&g)
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
        )
    }

    /// Sums up postal codes `zips` again and airs module 0x0002 when it changed.
    fn rebuild_postal(&mut self, zips: Vec<u32>) -> Result<bool, Error> {
        let Some((areas, _)) = &self.postal else {
            return Ok(false);
        };
        let fresh: Vec<(u32, ZipSummary)> = zips
            .into_iter()
            .map(|z| (z, areas.summary(z, |h| self.in_force(h))))
            .collect();
        let Some((areas, summaries)) = &mut self.postal else {
            return Ok(false);
        };
        summaries.extend(fresh);
        let m = areas.module(summaries, &self.directory);
        self.carousel
            .set_module(POSTAL_MODULE, "multipart/mixed", m, true)
    }

    fn rebuild_area(&mut self, area: u32) -> Result<bool, Error> {
        let [orders, notices, shelters] = area_tables(
            area,
            self.area_size,
            &self.directory,
            |h| self.in_force(h),
            self.cfg.utc_offset,
        )?;
        let m = multipart(&[
            ("orders.bin", TABLE_TYPE, &orders),
            ("notices.bin", TABLE_TYPE, &notices),
            ("shelters.bin", TABLE_TYPE, &shelters),
        ]);
        self.carousel
            .set_module(AREA_MODULE_BASE + area as u16, "multipart/mixed", m, true)
    }
}

#[cfg(test)]
mod tests;
