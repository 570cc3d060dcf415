//! The town's stock TVs: what the data-broadcasting page (`startup.bml`, BML, the `d` button)
//! shows each household, read from the stream as a TV reads it. PAT → PMT → the data stream
//! (stream_type 0x0D, component tag 0x40, data_component_id 0x000C) → DSM-CC sections (CRC) →
//! the DII's modules and their DDB blocks (`dvb-si`'s DSM-CC parser and module reassembler) →
//! zlib where the DII says so → the `multipart/mixed` entity → the BinaryTables. A module counts
//! only once all its blocks of the version the DII announces are in: that is when the page gets
//! ModuleUpdated and reads it again.
//!
//! [`StockTvs::page`] decides what a household's page shows by the rules of the page's own
//! `show()` (`evac_broadcaster::bml::page`): no page before the startup module, nothing before
//! the status module, its area's row, "cannot confirm" when the tables are older than their
//! bound or the group failed the head-end's check, the notice's expiry. One reader for the
//! whole town, as [`crate::tv::TownTv`] for the boxes.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use broadcast_common::Parse;
use dvb_si::carousel::ModuleReassembler;
use dvb_si::carousel::messages::{DownloadDataBlock, UnMessage};
use dvb_si::demux::SiDemux;
use dvb_si::tables::pmt::PmtSection;
use evac_broadcaster::bml::table::{
    AREA_MODULE_BASE, LIFTED, NOT_A_HOUSEHOLD, UNCONFIRMED, euc_jp, minute_key,
};
use evac_broadcaster::bml::{STARTUP_MODULE, STATUS_MODULE};
use evac_broadcaster::dsmcc::{COMPRESSION_DESCRIPTOR, DDB_TABLE_ID, DII_TABLE_ID};
use evac_broadcaster::section::{SectionFault, receive};
use evac_protocol::{AlertLevel, ShelterId};
use mpeg_ts::pid::Pid;
use mpeg_ts::ts::SectionReassembler;

use crate::tv::OnScreen;

/// The entry component's tag (ARIB TR-B14): the carousel a TV starts the page from.
const ENTRY_COMPONENT: u8 = 0x40;
/// stream_identifier_descriptor.
const STREAM_IDENTIFIER: u8 = 0x52;
/// data_component_descriptor.
const DATA_COMPONENT: u8 = 0xFD;
/// ARIB's data_component_id for terrestrial data broadcasting (BML).
const DATA_COMPONENT_ID: [u8; 2] = [0x00, 0x0C];
/// stream_type of a DSM-CC data carousel.
const STREAM_TYPE_DSMCC: u8 = 0x0D;
/// Most bytes a module inflates to before the reader gives up on it.
const MAX_INFLATED: u64 = 4 << 20;
/// A row of notices.bin: hazard, drill, expires (U:4B), issued (4), has onset, onset (4).
const NOTICE_ROW: usize = 15;

/// What a household's page shows, as the page's `show()` decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// No page yet (the startup module has not come in), or no status module: "情報がまだ
    /// 届いていません".
    NothingYet,
    /// "この番号の世帯はありません": not a household of the town, or its area's module has
    /// not come in yet (the page cannot tell the two apart).
    NotAHousehold,
    /// "確認できません": the group failed the head-end's check, the tables are older than
    /// their bound, or the notice is missing or expired.
    CannotConfirm,
    /// "あなたの世帯への避難指示等はありません".
    NoOrder,
    /// "避難指示等は解除されました".
    Lifted,
    /// The order: level and shelter (`ShelterId::NONE`: high ground, or a shelter name the
    /// town does not know). The page has no order version: `version` is 0, and `expires` is
    /// `i64::MAX` (the page checks the notice's expiry itself).
    Order(OnScreen),
}

/// Sections and modules the stock TVs could not use, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StockRefused {
    /// CRC failed.
    pub crc: u64,
    /// A section, message, module or table that does not parse.
    pub malformed: u64,
}

/// An area module's three tables.
#[derive(Debug, Clone, Default)]
struct Area {
    orders: Vec<u8>,
    notices: Vec<u8>,
    /// Shelter names (EUC-JP), by row.
    shelters: Vec<Vec<u8>>,
}

/// The status module: when the tables stop being current (a minute key) and the area size.
#[derive(Debug, Clone, Copy)]
struct Status {
    stale: u32,
    area_size: u32,
}

/// Every household's stock TV at once.
pub struct StockTvs {
    /// Shelter names as aired (EUC-JP) → the shelter: where a resident who reads it walks.
    names: HashMap<Vec<u8>, ShelterId>,
    psi: SiDemux,
    data_pid: Option<u16>,
    sections: SectionReassembler,
    modules: ModuleReassembler,
    /// The latest DII's modules: version and, when zlib-compressed, the original size.
    announced: HashMap<u16, (u8, Option<u32>)>,
    page: bool,
    status: Option<Status>,
    areas: BTreeMap<u32, Area>,
    /// What each household's TV last showed of an order (level, shelter).
    shown: HashMap<u32, (Option<AlertLevel>, ShelterId)>,
    now: i64,
    refused: StockRefused,
    modules_in: u64,
}

impl StockTvs {
    /// TVs of a town whose shelters are `shelters` (id, name), with the TVs' clock at `now`
    /// (Unix seconds).
    pub fn new<'a>(shelters: impl IntoIterator<Item = (u32, &'a str)>, now: i64) -> Self {
        StockTvs {
            names: shelters
                .into_iter()
                .map(|(id, name)| (euc_jp(name), ShelterId(id)))
                .collect(),
            psi: SiDemux::builder()
                .dvb_si_pids(false)
                .pid(Pid::new(0))
                .build(),
            data_pid: None,
            sections: SectionReassembler::default(),
            modules: ModuleReassembler::new(),
            announced: HashMap::new(),
            page: false,
            status: None,
            areas: BTreeMap::new(),
            shown: HashMap::new(),
            now,
            refused: StockRefused::default(),
            modules_in: 0,
        }
    }

    /// Moves the TVs' clock on (Unix seconds).
    pub fn set_now(&mut self, now: i64) {
        self.now = now;
    }

    /// Sections and modules refused so far.
    pub fn refused(&self) -> StockRefused {
        self.refused
    }

    /// Modules taken in whole so far (each version once).
    pub fn modules_in(&self) -> u64 {
        self.modules_in
    }

    /// How many households' pages show an order now.
    pub fn households_shown(&self) -> usize {
        self.shown
            .keys()
            .filter(|h| matches!(self.page(**h), Page::Order(_)))
            .count()
    }

    /// Takes one 188-byte packet; `changed` gets each household whose page came to show a new
    /// order (level or shelter) or a lift.
    pub fn feed(&mut self, packet: &[u8], changed: &mut Vec<(u32, OnScreen)>) {
        let Ok(ts) = mpeg_ts::TsPacket::parse(packet) else {
            return;
        };
        let pid = ts.header.pid.value();
        if Some(pid) == self.data_pid {
            if ts.header.tei {
                return;
            }
            self.sections
                .feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = self.sections.pop_section() {
                self.section(&s, changed);
            }
            return;
        }
        let events: Vec<_> = self.psi.feed(packet).collect();
        for e in events {
            if e.table_id() != 0x02 {
                continue;
            }
            match PmtSection::parse(e.bytes()) {
                Ok(pmt) => {
                    let data = pmt
                        .streams
                        .iter()
                        .find(|s| {
                            s.stream_type.to_u8() == STREAM_TYPE_DSMCC
                                && entry_component(s.es_info.raw())
                        })
                        .map(|s| s.elementary_pid.value());
                    if data.is_some() && data != self.data_pid {
                        self.sections = SectionReassembler::default();
                        self.data_pid = data;
                    }
                }
                Err(_) => self.refused.malformed += 1,
            }
        }
    }

    fn section(&mut self, bytes: &[u8], changed: &mut Vec<(u32, OnScreen)>) {
        let r = match receive(bytes) {
            Ok(r) => r,
            Err(SectionFault::Crc) => {
                self.refused.crc += 1;
                return;
            }
            Err(SectionFault::Malformed) => {
                self.refused.malformed += 1;
                return;
            }
        };
        match r.table_id {
            DII_TABLE_ID => match UnMessage::parse(r.body) {
                Ok(UnMessage::Dii(dii)) => {
                    self.announced = dii
                        .modules
                        .iter()
                        .map(|m| (m.module_id, (m.module_version, zlib_size(m.module_info))))
                        .collect();
                    self.modules.note_dii(&dii);
                }
                Ok(_) => {}
                Err(_) => self.refused.malformed += 1,
            },
            DDB_TABLE_ID => match DownloadDataBlock::parse(r.body) {
                Ok(ddb) => {
                    if let Some(m) = self.modules.feed_ddb(&ddb) {
                        self.module(m.key.module_id, m.key.module_version, m.data, changed);
                    }
                }
                Err(_) => self.refused.malformed += 1,
            },
            _ => {}
        }
    }

    /// A whole module of the version the DII announced: the page reads it again.
    fn module(&mut self, id: u16, version: u8, data: Vec<u8>, changed: &mut Vec<(u32, OnScreen)>) {
        let Some(&(v, zlib)) = self.announced.get(&id) else {
            return;
        };
        if v != version {
            return;
        }
        let Some(entity) = inflate(data, zlib) else {
            self.refused.malformed += 1;
            return;
        };
        let parts = parts(&entity);
        let part = |name: &[u8]| parts.iter().find(|(l, _)| *l == name).map(|(_, b)| *b);
        self.modules_in += 1;
        match id {
            STARTUP_MODULE => {
                if part(b"startup.bml").is_none() {
                    self.refused.malformed += 1;
                    return;
                }
                self.page = true;
            }
            STATUS_MODULE => {
                let Some(row) = part(b"status.bin").and_then(|b| b.get(..12)) else {
                    self.refused.malformed += 1;
                    return;
                };
                let word =
                    |i: usize| u32::from_be_bytes([row[i], row[i + 1], row[i + 2], row[i + 3]]);
                self.status = Some(Status {
                    stale: word(0),
                    area_size: word(8),
                });
            }
            id if id >= AREA_MODULE_BASE => {
                let area = Area {
                    orders: part(b"orders.bin").unwrap_or_default().to_vec(),
                    notices: part(b"notices.bin").unwrap_or_default().to_vec(),
                    shelters: strings(part(b"shelters.bin").unwrap_or_default()),
                };
                let a = u32::from(id - AREA_MODULE_BASE);
                self.areas.insert(a, area);
                self.look(Some(a), changed);
                return;
            }
            _ => return,
        }
        self.look(None, changed);
    }

    /// Every household of area `only` (all areas in hand with `None`) looks at its page again.
    fn look(&mut self, only: Option<u32>, changed: &mut Vec<(u32, OnScreen)>) {
        let Some(st) = self.status.filter(|s| s.area_size > 0) else {
            return;
        };
        let areas: Vec<(u32, usize)> = self
            .areas
            .iter()
            .filter(|(a, _)| only.is_none_or(|o| o == **a))
            .map(|(a, t)| (*a, t.orders.len() / 4))
            .collect();
        for (a, rows) in areas {
            for row in 0..rows as u32 {
                let Some(h) = a.checked_mul(st.area_size).and_then(|f| f.checked_add(row)) else {
                    continue;
                };
                let now = match self.page(h) {
                    Page::Order(on) => (on.level, on.shelter),
                    Page::Lifted => (None, ShelterId::NONE),
                    _ => continue,
                };
                if self.shown.insert(h, now) != Some(now) {
                    changed.push((
                        h,
                        OnScreen {
                            shelter: now.1,
                            level: now.0,
                            version: 0,
                            expires: i64::MAX,
                        },
                    ));
                }
            }
        }
    }

    /// What household `h`'s page shows now (its number stored in the TV).
    pub fn page(&self, h: u32) -> Page {
        let Some(st) = self.status.filter(|s| self.page && s.area_size > 0) else {
            return Page::NothingYet;
        };
        let now = minute_key(self.now);
        let a = h / st.area_size;
        let row = (h % st.area_size) as usize * 4;
        let area = self.areas.get(&a);
        let Some(r) = area.and_then(|t| t.orders.get(row..row + 4)) else {
            return Page::NotAHousehold;
        };
        let Some(area) = area else {
            return Page::NotAHousehold;
        };
        match r[0] {
            NOT_A_HOUSEHOLD => return Page::NotAHousehold,
            UNCONFIRMED => return Page::CannotConfirm,
            _ if now >= st.stale => return Page::CannotConfirm,
            0 => return Page::NoOrder,
            LIFTED => return Page::Lifted,
            _ => {}
        }
        let n = usize::from(r[3]) * NOTICE_ROW;
        let Some(notice) = area.notices.get(n..n + NOTICE_ROW) else {
            return Page::CannotConfirm;
        };
        let expires = u32::from_be_bytes([notice[2], notice[3], notice[4], notice[5]]);
        if now >= expires {
            return Page::CannotConfirm;
        }
        let Ok(level) = AlertLevel::try_from(r[0]) else {
            return Page::CannotConfirm;
        };
        let shelter = area
            .shelters
            .get(usize::from(r[1]))
            .filter(|_| r[1] != 255)
            .and_then(|name| self.names.get(name).copied())
            .unwrap_or(ShelterId::NONE);
        Page::Order(OnScreen {
            shelter,
            level: Some(level),
            version: 0,
            expires: i64::MAX,
        })
    }
}

/// Whether a PMT entry's descriptors make it the entry component of a BML service.
fn entry_component(es_info: &[u8]) -> bool {
    let (mut tag, mut bml) = (false, false);
    let mut at = 0;
    while let (Some(&t), Some(&len)) = (es_info.get(at), es_info.get(at + 1)) {
        let body = es_info
            .get(at + 2..at + 2 + usize::from(len))
            .unwrap_or(&[]);
        tag |= t == STREAM_IDENTIFIER && body.first() == Some(&ENTRY_COMPONENT);
        bml |= t == DATA_COMPONENT && body.get(..2) == Some(&DATA_COMPONENT_ID[..]);
        at += 2 + usize::from(len);
    }
    tag && bml
}

/// The original size a module's info announces in a Compression Type descriptor (zlib).
fn zlib_size(info: &[u8]) -> Option<u32> {
    let mut at = 0;
    while let (Some(&t), Some(&len)) = (info.get(at), info.get(at + 1)) {
        let body = info.get(at + 2..at + 2 + usize::from(len)).unwrap_or(&[]);
        if t == COMPRESSION_DESCRIPTOR && body.len() >= 5 && body[0] == 0 {
            return Some(u32::from_be_bytes([body[1], body[2], body[3], body[4]]));
        }
        at += 2 + usize::from(len);
    }
    None
}

/// A module's entity: inflated when the DII announced zlib, which must give the announced size.
fn inflate(data: Vec<u8>, zlib: Option<u32>) -> Option<Vec<u8>> {
    let Some(size) = zlib else {
        return Some(data);
    };
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(&data[..])
        .take(MAX_INFLATED)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 == u64::from(size)).then_some(out)
}

/// The parts of a `multipart/mixed` entity: (Content-Location, body).
fn parts(entity: &[u8]) -> Vec<(&[u8], &[u8])> {
    let Some(b) = find(entity, b"boundary=\"").map(|i| i + 10) else {
        return Vec::new();
    };
    let Some(len) = entity
        .get(b..)
        .and_then(|r| r.iter().position(|c| *c == b'"'))
    else {
        return Vec::new();
    };
    let mut delim = b"\r\n--".to_vec();
    delim.extend_from_slice(&entity[b..b + len]);
    let mut out = Vec::new();
    // The first delimiter follows the entity's header (its blank line ends with the CRLF).
    let Some(mut at) = find(entity, &delim[2..]).map(|i| i + delim.len() - 2) else {
        return out;
    };
    while let Some(rest) = entity.get(at..) {
        if rest.starts_with(b"--") {
            break;
        }
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let body_at = head_end + 4;
        let Some(end) = rest.get(body_at..).and_then(|r| find(r, &delim)) else {
            break;
        };
        let head = &rest[..head_end];
        let location = head
            .split(|c| *c == b'\n')
            .find_map(|l| l.trim_ascii().strip_prefix(b"Content-Location:"))
            .map(<[u8]>::trim_ascii)
            .unwrap_or_default();
        out.push((location, &rest[body_at..body_at + end]));
        at += body_at + end + delim.len();
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The rows of a table of two `S:1V` fields (name, address): the names.
fn strings(table: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut field = 0;
    while let Some(&len) = table.get(at) {
        let Some(s) = table.get(at + 1..at + 1 + usize::from(len)) else {
            break;
        };
        if field % 2 == 0 {
            out.push(s.to_vec());
        }
        field += 1;
        at += 1 + usize::from(len);
    }
    out
}

#[cfg(test)]
#[path = "stocktv_tests.rs"]
mod tests;
