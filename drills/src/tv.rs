//! The town's TVs: one decoder of the transport stream that keeps every household's order, by
//! the same steps as `evac-stb` (`evac_broadcaster::receiver`): PAT → the PMT of the program
//! registered "EVAC" → the overlay PID's sections → CRC → HQ's signature → expiry → never an
//! older version than the one shown. One decoder for the whole town, because a receiver per
//! household would decode the same packets thousands of times over.

use std::collections::{HashMap, HashSet};

use dvb_si::demux::SiDemux;
use evac_broadcaster::psi::read_pmt;
use evac_broadcaster::section::{OVERLAY_TABLE_ID, SectionFault, receive};
use evac_protocol::overlay::open_section;
use evac_protocol::{AlertLevel, PublicKey, ShelterId};
use mpeg_ts::pid::Pid;
use mpeg_ts::ts::SectionReassembler;

/// A household's order as its TV shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnScreen {
    /// The shelter (`ShelterId::NONE`: no shelter with room yet).
    pub shelter: ShelterId,
    /// The level; `None` when lifted.
    pub level: Option<AlertLevel>,
    /// The order's version.
    pub version: u32,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

/// Sections not shown, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    /// CRC failed.
    pub crc: u64,
    /// HQ's signature failed.
    pub signature: u64,
    /// Older than shown.
    pub stale: u64,
    /// Expired.
    pub expired: u64,
    /// Not a well-formed section.
    pub malformed: u64,
}

/// Every household's TV at once.
pub struct TownTv {
    hq: PublicKey,
    psi: SiDemux,
    overlay_pid: Option<u16>,
    overlay: SectionReassembler,
    seen: HashSet<(u8, u16, u8, u32)>,
    shown: HashMap<u32, OnScreen>,
    now: i64,
    refused: Refused,
    packets: u64,
}

impl TownTv {
    /// TVs that trust `hq`'s key, with the clock at `now` (Unix seconds).
    pub fn new(hq: PublicKey, now: i64) -> Self {
        TownTv {
            hq,
            psi: SiDemux::builder()
                .dvb_si_pids(false)
                .pid(Pid::new(0))
                .build(),
            overlay_pid: None,
            overlay: SectionReassembler::default(),
            seen: HashSet::new(),
            shown: HashMap::new(),
            now,
            refused: Refused::default(),
            packets: 0,
        }
    }

    /// Moves the clock on (Unix seconds).
    pub fn set_now(&mut self, now: i64) {
        self.now = now;
    }

    /// Packets decoded.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Sections refused so far.
    pub fn refused(&self) -> Refused {
        self.refused
    }

    /// How many households' TVs show an order in force now.
    pub fn households_shown(&self) -> usize {
        self.shown.values().filter(|s| s.expires > self.now).count()
    }

    /// What household `h`'s TV shows now.
    pub fn shown(&self, h: u32) -> Option<OnScreen> {
        self.shown.get(&h).copied().filter(|s| s.expires > self.now)
    }

    /// Takes one 188-byte packet; `changed` gets each household whose screen changed.
    pub fn feed(&mut self, packet: &[u8], changed: &mut Vec<(u32, OnScreen)>) {
        self.packets += 1;
        let Ok(ts) = mpeg_ts::TsPacket::parse(packet) else {
            return;
        };
        let pid = ts.header.pid.value();
        if Some(pid) == self.overlay_pid {
            if ts.header.tei {
                return;
            }
            self.overlay.feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = self.overlay.pop_section() {
                self.section(&s, changed);
            }
            return;
        }
        let events: Vec<_> = self.psi.feed(packet).collect();
        for e in events {
            if e.table_id() == 0x02 {
                match read_pmt(e.bytes()) {
                    Ok(Some(info)) => {
                        if self.overlay_pid != Some(info.overlay_pid) {
                            self.overlay = SectionReassembler::default();
                        }
                        self.overlay_pid = Some(info.overlay_pid);
                    }
                    Ok(None) => {}
                    Err(_) => self.refused.malformed += 1,
                }
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
        if r.table_id != OVERLAY_TABLE_ID {
            return;
        }
        if !self.seen.insert((r.table_id, r.extension, r.number, r.crc)) {
            return;
        }
        if self.seen.len() > 1 << 20 {
            self.seen.clear();
        }
        let batch = match open_section(r.body, &self.hq) {
            Ok(b) => b,
            Err(evac_protocol::OverlayError::BadSignature) => {
                self.refused.signature += 1;
                return;
            }
            Err(_) => {
                self.refused.malformed += 1;
                return;
            }
        };
        if batch.expires <= self.now {
            self.refused.expired += batch.records.len() as u64;
            return;
        }
        for rec in &batch.records {
            let h = rec.household.0;
            if let Some(s) = self.shown.get(&h) {
                // As evac-stb: never an older version; a lift beats an order of the same one.
                let older = rec.version < s.version
                    || (rec.version == s.version && (s.level.is_none() || rec.level.is_some()));
                if older {
                    if rec.version < s.version {
                        self.refused.stale += 1;
                    }
                    continue;
                }
            }
            let on = OnScreen {
                shelter: rec.shelter,
                level: rec.level,
                version: rec.version,
                expires: batch.expires,
            };
            self.shown.insert(h, on);
            changed.push((h, on));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_broadcaster::carousel::Carousel;
    use evac_broadcaster::mux::{Generator, MuxConfig};
    use evac_broadcaster::psi::ServiceLayout;
    use evac_protocol::onair::{AirSection, pack_group};
    use evac_protocol::overlay::{OverlayBatch, OverlayRecord, group_of};
    use evac_protocol::{Hazard, HouseholdId, MessageKind, SecretKey, Slug};
    use std::collections::BTreeMap;

    /// HQ's signed sections for `orders` (household, shelter, version), as HQ packs them.
    fn sections(orders: &[(u32, u32, u32)], hq: &SecretKey) -> Vec<AirSection> {
        let header = OverlayBatch {
            group: 0,
            message_id: 1,
            kind: MessageKind::Alert,
            references: None,
            notice: 1,
            hazard: Hazard::Tsunami,
            drill: true,
            issued: 1_000,
            expires: 9_000,
            onset: None,
            template: 0,
            town: Slug::new("minato").unwrap(),
            key_id: [0; 8],
            records: vec![],
        };
        let mut by: BTreeMap<u16, Vec<OverlayRecord>> = BTreeMap::new();
        for &(h, s, v) in orders {
            by.entry(group_of(HouseholdId(h)))
                .or_default()
                .push(OverlayRecord {
                    household: HouseholdId(h),
                    level: Some(AlertLevel::Level4),
                    shelter: ShelterId(s),
                    version: v,
                    needs_help: false,
                });
        }
        by.into_iter()
            .flat_map(|(g, r)| pack_group(g, &[(header.clone(), r)], hq).unwrap())
            .collect()
    }

    #[test]
    fn every_household_sees_its_order_and_a_change() {
        let hq = SecretKey::from_seed(&[1; 32]);
        let mut carousel = Carousel::new();
        let orders: Vec<_> = (1..=5000).map(|h| (h, 1 + h % 7, 1)).collect();
        carousel.apply_set(&sections(&orders, &hq), 1_000);
        let cfg = MuxConfig {
            layout: ServiceLayout::default(),
            bitrate: 1_200_000,
            overlay_bitrate: 1_000_000,
            transport_stream_id: 1,
            start_unix: 1_000,
        };
        let mut mux = Generator::new(cfg, carousel).unwrap();
        let mut tv = TownTv::new(hq.public(), 1_000);
        let mut changed = Vec::new();
        for _ in 0..5_000 {
            tv.feed(&mux.next_packet(), &mut changed);
        }
        for h in 1..=5000 {
            assert_eq!(tv.shown(h).unwrap().shelter, ShelterId(1 + h % 7), "{h}");
        }
        assert_eq!(changed.len(), 5000);
        changed.clear();
        // HQ republishes household 42's group with its new order.
        let group: Vec<_> = orders
            .iter()
            .filter(|o| group_of(HouseholdId(o.0)) == group_of(HouseholdId(42)))
            .map(|&(h, s, v)| if h == 42 { (h, 99, 2) } else { (h, s, v) })
            .collect();
        mux.ours()
            .source_mut()
            .apply_set(&sections(&group, &hq), 1_001);
        for _ in 0..5_000 {
            tv.feed(&mux.next_packet(), &mut changed);
        }
        assert_eq!(changed, vec![(42, tv.shown(42).unwrap())]);
        assert_eq!(tv.shown(42).unwrap().shelter, ShelterId(99));
        assert_eq!(tv.refused().signature, 0);
    }

    #[test]
    fn another_key_shows_nothing() {
        let mut carousel = Carousel::new();
        carousel.apply_set(
            &sections(&[(1, 1, 1)], &SecretKey::from_seed(&[2; 32])),
            1_000,
        );
        let cfg = MuxConfig {
            layout: ServiceLayout::default(),
            bitrate: 1_200_000,
            overlay_bitrate: 1_000_000,
            transport_stream_id: 1,
            start_unix: 1_000,
        };
        let mut mux = Generator::new(cfg, carousel).unwrap();
        let mut tv = TownTv::new(SecretKey::from_seed(&[1; 32]).public(), 1_000);
        let mut changed = Vec::new();
        for _ in 0..2_000 {
            tv.feed(&mux.next_packet(), &mut changed);
        }
        assert!(changed.is_empty() && tv.shown(1).is_none());
        assert!(tv.refused().signature > 0);
    }
}
