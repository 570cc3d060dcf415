//! The reference receiver's core: packets in, one household's order and the emergency
//! descriptor's state out, with every rejected section counted by reason. No I/O.
//!
//! It follows PAT to the PMT of the program whose private-section stream is registered as
//! "EVAC", reads that PMT's emergency descriptor, reassembles the overlay PID's sections and,
//! for its household's group only, checks in turn: CRC, HQ's signature, expiry, and that the
//! order's version is not older than what it has shown. Identical repeats of a section are
//! looked at once.

use std::collections::{BTreeMap, HashSet};

use dvb_si::demux::SiDemux;
use evac_protocol::overlay::open_section;
use evac_protocol::ticker::{TICKER_TABLE_ID, open_ticker};
use evac_protocol::{
    AlertLevel, Hazard, HouseholdId, MessageKind, OverlayError, PublicKey, ShelterId,
};
use mpeg_ts::pid::Pid;
use mpeg_ts::ts::SectionReassembler;
use serde::Serialize;

use crate::psi::{EmergencyEntry, read_pmt};
use crate::section::{OVERLAY_TABLE_ID, SectionFault, group_of, receive};

/// What the receiver is set up with (all of it local, none of it from the air).
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// The household this box belongs to.
    pub household: HouseholdId,
    /// HQ's public key: orders are shown only under its signature.
    pub hq: PublicKey,
    /// The broadcaster's public key: tickers are shown only under its signature.
    pub broadcaster: Option<PublicKey>,
    /// Only this program, when set; else the first program carrying an evac overlay.
    pub program: Option<u16>,
}

/// Counts of sections not shown, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Sections on the overlay PID whose CRC failed (every reception counts).
    pub crc: u64,
    /// Sections of this household's group whose signature failed.
    pub signature: u64,
    /// Signed orders for this household older than the one already shown.
    pub stale: u64,
    /// Signed orders for this household already expired.
    pub expired: u64,
    /// Sections that are not well-formed overlay or ticker sections.
    pub malformed: u64,
}

/// The order as shown, from a signed section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The level; `None` when the order was lifted.
    pub level: Option<AlertLevel>,
    /// The hazard.
    pub hazard: Hazard,
    /// The shelter.
    pub shelter: ShelterId,
    /// The order's version.
    pub version: u32,
    /// Issue time, Unix seconds.
    pub issued: i64,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// Someone in the household needs help to evacuate.
    pub needs_help: bool,
    /// An exercise.
    pub drill: bool,
    /// The message it came in.
    pub message_id: u32,
    /// Alert, update or cancel.
    pub kind: MessageKind,
}

/// A broadcaster's ticker as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShownTicker {
    /// The alert's id.
    pub id: u32,
    /// The level, when it carries one.
    pub level: Option<u8>,
    /// Regional area codes.
    pub areas: Vec<u16>,
    /// Japanese text.
    pub text_ja: String,
    /// English text, when given.
    pub text_en: Option<String>,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

/// The reference receiver.
pub struct Receiver {
    cfg: ReceiverConfig,
    psi: SiDemux,
    overlay_pid: Option<u16>,
    program: Option<u16>,
    overlay: SectionReassembler,
    seen: HashSet<(u8, u16, u8, u32)>,
    shown: Option<Shown>,
    emergency: Vec<EmergencyEntry>,
    tickers: BTreeMap<u32, ShownTicker>,
    ended_tickers: BTreeMap<u32, i64>,
    rejected: Rejected,
    now: i64,
    packets: u64,
}

/// Most distinct sections remembered for de-duplication before the memory starts over.
const MAX_SEEN: usize = 1 << 20;

impl Receiver {
    /// A receiver for `cfg`, with the wall clock at `now` (Unix seconds).
    pub fn new(cfg: ReceiverConfig, now: i64) -> Self {
        Receiver {
            cfg,
            psi: SiDemux::builder()
                .dvb_si_pids(false)
                .pid(Pid::new(0))
                .build(),
            overlay_pid: None,
            program: None,
            overlay: SectionReassembler::default(),
            seen: HashSet::new(),
            shown: None,
            emergency: Vec::new(),
            tickers: BTreeMap::new(),
            ended_tickers: BTreeMap::new(),
            rejected: Rejected::default(),
            now,
            packets: 0,
        }
    }

    /// Moves the wall clock on.
    pub fn set_now(&mut self, now: i64) {
        self.now = now;
    }

    /// Takes one 188-byte packet (anything else is counted and ignored).
    pub fn feed(&mut self, packet: &[u8]) {
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
                self.section(&s);
            }
            return;
        }
        let events: Vec<_> = self.psi.feed(packet).collect();
        for e in events {
            if e.table_id() == 0x02 {
                self.pmt(e.bytes());
            }
        }
    }

    fn pmt(&mut self, bytes: &[u8]) {
        match read_pmt(bytes) {
            Ok(Some(info)) if self.cfg.program.is_none_or(|p| p == info.program) => {
                if self.program.is_some_and(|p| p != info.program) {
                    return;
                }
                if self.overlay_pid != Some(info.overlay_pid) {
                    self.overlay = SectionReassembler::default();
                }
                self.program = Some(info.program);
                self.overlay_pid = Some(info.overlay_pid);
                self.emergency = info
                    .emergency
                    .into_iter()
                    .filter(|e| e.service_id == info.program)
                    .collect();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "unreadable PMT");
                self.rejected.malformed += 1;
            }
        }
    }

    fn section(&mut self, bytes: &[u8]) {
        let r = match receive(bytes) {
            Ok(r) => r,
            Err(SectionFault::Crc) => {
                self.rejected.crc += 1;
                return;
            }
            Err(SectionFault::Malformed) => {
                self.rejected.malformed += 1;
                return;
            }
        };
        if !self.seen.insert((r.table_id, r.extension, r.number, r.crc)) {
            return;
        }
        if self.seen.len() > MAX_SEEN {
            self.seen.clear();
        }
        match r.table_id {
            OVERLAY_TABLE_ID if r.extension == group_of(self.cfg.household) => self.order(r.body),
            TICKER_TABLE_ID => self.ticker(r.body),
            _ => {}
        }
    }

    fn order(&mut self, body: &[u8]) {
        let batch = match open_section(body, &self.cfg.hq) {
            Ok(b) => b,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "undecodable overlay section");
                self.rejected.malformed += 1;
                return;
            }
        };
        let Ok(i) = batch
            .records
            .binary_search_by_key(&self.cfg.household, |r| r.household)
        else {
            return;
        };
        let rec = &batch.records[i];
        if batch.expires <= self.now {
            self.rejected.expired += 1;
            return;
        }
        if let Some(s) = &self.shown {
            // A lifted order beats an order of the same version.
            let older = rec.version < s.version
                || (rec.version == s.version && s.level.is_none() && rec.level.is_some());
            if older {
                self.rejected.stale += 1;
                return;
            }
        }
        self.shown = Some(Shown {
            level: rec.level,
            hazard: batch.hazard,
            shelter: rec.shelter,
            version: rec.version,
            issued: batch.issued,
            expires: batch.expires,
            needs_help: rec.needs_help,
            drill: batch.drill,
            message_id: batch.message_id,
            kind: batch.kind,
        });
    }

    fn ticker(&mut self, body: &[u8]) {
        let Some(key) = &self.cfg.broadcaster else {
            return;
        };
        let t = match open_ticker(body, key) {
            Ok(t) => t,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                return;
            }
            Err(_) => {
                self.rejected.malformed += 1;
                return;
            }
        };
        if t.expires <= self.now {
            self.rejected.expired += 1;
            return;
        }
        if t.kind == MessageKind::Cancel {
            let id = t.references.unwrap_or(t.id);
            self.tickers.remove(&id);
            self.ended_tickers.insert(id, t.expires);
            return;
        }
        if self.ended_tickers.contains_key(&t.id) {
            self.rejected.stale += 1;
            return;
        }
        self.tickers.insert(
            t.id,
            ShownTicker {
                id: t.id,
                level: t.level.map(|l| l.number()),
                areas: t.areas,
                text_ja: t.text_ja,
                text_en: t.text_en,
                expires: t.expires,
            },
        );
    }

    /// The order to show now: `None` when there is none, or it has expired.
    pub fn order_now(&self) -> Option<&Shown> {
        self.shown.as_ref().filter(|s| s.expires > self.now)
    }

    /// Tickers in force now.
    pub fn tickers_now(&self) -> Vec<&ShownTicker> {
        self.tickers
            .values()
            .filter(|t| t.expires > self.now)
            .collect()
    }

    /// The emergency descriptor entries for our program, as last seen.
    pub fn emergency(&self) -> &[EmergencyEntry] {
        &self.emergency
    }

    /// Rejections so far.
    pub fn rejected(&self) -> Rejected {
        self.rejected
    }

    /// The program and overlay PID found, once found.
    pub fn service(&self) -> Option<(u16, u16)> {
        self.program.zip(self.overlay_pid)
    }

    /// Packets fed.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The machine-readable report (`evac-stb --json`).
    pub fn report(&self) -> Report {
        let order = self.order_now();
        Report {
            household: self.cfg.household,
            order: order.filter(|s| s.level.is_some()).map(|s| ReportOrder {
                level: s.level.map_or(0, |l| l.number()),
                hazard: s.hazard,
                shelter: s.shelter,
                version: s.version,
                expires: rfc3339(s.expires),
                needs_help: s.needs_help,
                drill: s.drill,
            }),
            lifted: order.is_some_and(|s| s.level.is_none()),
            emergency: EmergencyReport {
                active: self.emergency.iter().any(|e| e.start),
                areas: self
                    .emergency
                    .iter()
                    .filter(|e| e.start)
                    .flat_map(|e| e.areas.iter().copied())
                    .collect(),
                signal_level: self
                    .emergency
                    .iter()
                    .find(|e| e.start)
                    .map(|e| e.signal_level),
            },
            tickers: self.tickers_now().into_iter().cloned().collect(),
            rejected: self.rejected,
            service: self.service().map(|(program, overlay_pid)| ServiceReport {
                program,
                overlay_pid,
            }),
            packets: self.packets,
        }
    }
}

/// Unix seconds as RFC 3339 (UTC); out-of-range times as the number.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// `evac-stb --json` output.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The household.
    pub household: HouseholdId,
    /// Its order in force, or `null`.
    pub order: Option<ReportOrder>,
    /// Its order was lifted (then `order` is `null`).
    pub lifted: bool,
    /// The emergency descriptor's state.
    pub emergency: EmergencyReport,
    /// Broadcasters' tickers in force (only with the broadcaster's key).
    pub tickers: Vec<ShownTicker>,
    /// Sections not shown, by reason.
    pub rejected: Rejected,
    /// The program and overlay PID found.
    pub service: Option<ServiceReport>,
    /// Packets read.
    pub packets: u64,
}

/// The order part of [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct ReportOrder {
    /// Alert level 3, 4 or 5.
    pub level: u8,
    /// Hazard name.
    pub hazard: Hazard,
    /// Shelter id.
    pub shelter: ShelterId,
    /// Order version.
    pub version: u32,
    /// Expiry, RFC 3339.
    pub expires: String,
    /// Someone needs help to evacuate.
    pub needs_help: bool,
    /// An exercise.
    pub drill: bool,
}

/// The emergency part of [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct EmergencyReport {
    /// A start signal is on for our program.
    pub active: bool,
    /// Its area codes.
    pub areas: Vec<u16>,
    /// Its signal level (0 first kind, 1 second kind).
    pub signal_level: Option<u8>,
}

/// The service part of [`Report`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ServiceReport {
    /// Program number.
    pub program: u16,
    /// Overlay PID.
    pub overlay_pid: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carousel::Carousel;
    use crate::mux::{Generator, MuxConfig, Packet};
    use crate::psi::ServiceLayout;
    use evac_protocol::{Order, OrderBatch, SecretKey, Slug};
    use proptest::prelude::*;

    const NOW: i64 = 1_000;

    fn stream(n: u32, packets: usize) -> Vec<Packet> {
        let hq = SecretKey::from_seed(&[5; 32]);
        let mut c = Carousel::new(hq);
        c.apply(
            &OrderBatch {
                town: Slug::new("minato").unwrap(),
                message_id: 1,
                kind: MessageKind::Alert,
                references: None,
                hazard: Hazard::Flood,
                issued: NOW,
                expires: NOW + 3600,
                drill: false,
                orders: (1..=n)
                    .map(|h| Order {
                        household: HouseholdId(h),
                        shelter: ShelterId(h % 5 + 1),
                        level: AlertLevel::Level4,
                        hazard: Hazard::Flood,
                        version: 1,
                        needs_help: false,
                    })
                    .collect(),
            },
            NOW,
        );
        let cfg = MuxConfig {
            layout: ServiceLayout::default(),
            bitrate: 1_000_000,
            overlay_bitrate: 800_000,
            transport_stream_id: 1,
            start_unix: NOW,
        };
        let mut g = Generator::new(cfg, c).unwrap();
        (0..packets).map(|_| g.next_packet()).collect()
    }

    fn receiver(household: u32) -> Receiver {
        Receiver::new(
            ReceiverConfig {
                household: HouseholdId(household),
                hq: SecretKey::from_seed(&[5; 32]).public(),
                broadcaster: Some(SecretKey::from_seed(&[6; 32]).public()),
                program: None,
            },
            NOW,
        )
    }

    #[test]
    fn a_clean_stream_shows_the_order() {
        let mut rx = receiver(77);
        for p in stream(300, 200) {
            rx.feed(&p);
        }
        let o = rx.order_now().unwrap();
        assert_eq!(
            (o.shelter, o.level),
            (ShelterId(3), Some(AlertLevel::Level4))
        );
        assert_eq!(rx.rejected(), Rejected::default());
        assert_eq!(rx.service(), Some((0x0EAC, 0x0FE1)));
        rx.set_now(NOW + 3600);
        assert!(rx.order_now().is_none(), "expired while on screen");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000), sync in any::<bool>()) {
            let mut rx = receiver(1);
            for chunk in bytes.chunks(188) {
                let mut p = chunk.to_vec();
                if sync && !p.is_empty() {
                    p[0] = 0x47;
                }
                rx.feed(&p);
            }
            let _ = rx.report();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn a_damaged_stream_shows_the_truth_or_nothing(
            damage in proptest::collection::vec((any::<usize>(), 0usize..188, any::<u8>()), 1..40),
        ) {
            let mut packets = stream(300, 240);
            let n = packets.len();
            for (i, at, byte) in damage {
                packets[i % n][at] = byte;
            }
            let mut rx = receiver(77);
            for p in &packets {
                rx.feed(p);
            }
            if let Some(o) = rx.order_now() {
                prop_assert_eq!(o.shelter, ShelterId(3));
                prop_assert_eq!(o.version, 1);
                prop_assert_eq!(o.level, Some(AlertLevel::Level4));
            }
        }
    }
}
