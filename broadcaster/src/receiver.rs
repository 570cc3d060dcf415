//! The reference receiver's core: packets in, one household's order and the emergency
//! descriptor's state out, with every rejected section counted by reason. No I/O.
//!
//! It follows PAT to the PMT of the program whose private-section stream is registered as
//! "EVAC", reads that PMT's emergency descriptor and the time table on PID 0x0014, reassembles
//! the overlay PID's sections and, for its household's group only, checks in turn: CRC, that
//! the section names a trusted HQ key (valid when the order was issued) and verifies under
//! it, that it is for this box's town, that it was not issued in the future, and that the
//! household's order is strictly newer than the one it holds, or the identical order again.
//! Expiry is judged whenever the order is looked at, by the box's notion of now: the stream's
//! time table as far as it can be believed ([`clock`]), so an order is never hidden for good
//! by a wrong time, and a time that cannot be believed reads "cannot verify the time", never
//! "no order".
//!
//! HQ's key announcements (signed by a key the box trusts now) add keys to the trusted set.
//! What the box must remember across restarts (the version it holds, keys learnt, the town)
//! is its [`ReceiverState`]: a small file the binary keeps.
//!
//! A section of its group that fails its key, signature or town never reads as "no order":
//! [`Report::status`] is then `cannot-verify`, a fault.

use std::collections::{BTreeMap, HashSet};

use dvb_si::demux::SiDemux;
use evac_protocol::keyroll::{KEY_TABLE_ID, announcement_signer, open_announcement};
use evac_protocol::overlay::{OverlayBatch, open_section, section_key_id};
use evac_protocol::ticker::{TICKER_TABLE_ID, open_ticker};
use evac_protocol::{
    AlertLevel, Hazard, HouseholdId, KeyId, MessageKind, OverlayError, PublicKey, ShelterId, TownId,
};
use mpeg_ts::pid::Pid;
use mpeg_ts::ts::SectionReassembler;
use serde::{Deserialize, Serialize};

use crate::psi::{EmergencyEntry, read_pmt};
use crate::section::{OVERLAY_TABLE_ID, SectionFault, group_of, receive};
use crate::timetable::{TIME_PID, read_time};

pub mod clock;
mod report;

use clock::{DEFAULT_MARGIN_S, StreamClock};
pub use report::{EmergencyReport, Report, ReportOrder, ServiceReport, rfc3339};

/// Seconds an order's `issued` may lie ahead of the receiver's time before it is refused.
pub const DEFAULT_SKEW_S: i64 = 120;

/// An HQ key the box trusts for orders, with the period it may sign them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key.
    pub key: PublicKey,
    /// Orders issued before this (Unix seconds) are not taken under it.
    pub not_before: i64,
    /// Orders issued after this are not taken under it.
    pub not_after: i64,
}

impl TrustedKey {
    /// A key trusted for any time.
    pub fn always(key: PublicKey) -> Self {
        TrustedKey {
            key,
            not_before: i64::MIN,
            not_after: i64::MAX,
        }
    }

    fn valid_at(&self, t: i64) -> bool {
        (self.not_before..=self.not_after).contains(&t)
    }
}

/// What the receiver is set up with (all of it local, none of it from the air).
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// The household this box belongs to.
    pub household: HouseholdId,
    /// The town this box is in; `None`: the town of the first verified section, kept from then
    /// on in the state.
    pub town: Option<TownId>,
    /// HQ's keys: orders are shown only under one of them.
    pub hq: Vec<TrustedKey>,
    /// The broadcaster's public key: tickers are shown only under its signature.
    pub broadcaster: Option<PublicKey>,
    /// Only this program, when set; else the first program carrying an evac overlay.
    pub program: Option<u16>,
    /// Seconds `issued` may be ahead of the receiver's time.
    pub skew_s: i64,
}

/// What a box remembers across restarts (its state file, JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverState {
    /// The household it was kept for.
    pub household: u32,
    /// The town it is bound to.
    #[serde(default)]
    pub town: Option<String>,
    /// The version of the household's order it holds.
    #[serde(default)]
    pub version: Option<u32>,
    /// That order as shown, in a canonical text form (to tell "the same again" from a replay).
    #[serde(default)]
    pub order: Option<String>,
    /// HQ keys learnt from announcements: (key hex, not before, not after).
    #[serde(default)]
    pub keys: Vec<(String, i64, i64)>,
}

/// Counts of sections not shown, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Sections on the overlay PID whose CRC failed (every reception counts).
    pub crc: u64,
    /// Sections of this household's group whose signature failed under the key they name.
    pub signature: u64,
    /// Sections of this household's group naming no trusted HQ key, or one not valid when
    /// the order was issued (every reception counts: an announcement may come later).
    pub key: u64,
    /// Sections of this household's group for another town.
    pub town: u64,
    /// Orders for this household older than the one held, or of the same version but not
    /// identical (a replay).
    pub stale: u64,
    /// Orders for this household issued in the future, beyond the allowed skew.
    pub future: u64,
    /// Orders for this household already expired when they came (by the time then).
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
    /// When the hazard is expected (the alert's onset), Unix seconds.
    pub onset: Option<i64>,
    /// Someone in the household needs help to evacuate.
    pub needs_help: bool,
    /// An exercise.
    pub drill: bool,
    /// The message it came in.
    pub message_id: u32,
    /// Alert, update or cancel.
    pub kind: MessageKind,
}

impl Shown {
    /// The canonical text the state file keeps (the onset only when there is one, so what a
    /// box kept before onsets existed still reads as the same order).
    fn canonical(&self) -> String {
        let onset = self.onset.map(|t| format!(" o{t}")).unwrap_or_default();
        format!(
            "v{} l{} s{} h{} n{} d{} m{} k{:?} i{} e{}{onset}",
            self.version,
            self.level.map_or(0, |l| l.number()),
            self.shelter.0,
            self.hazard.code(),
            u8::from(self.needs_help),
            u8::from(self.drill),
            self.message_id,
            self.kind,
            self.issued,
            self.expires
        )
    }
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

/// What the box can say about its household.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// An order in force is shown.
    Order,
    /// The household's order was lifted.
    Lifted,
    /// Nothing for this household: no verified section names it.
    NoOrder,
    /// Orders for this household's group are on air but cannot be verified (unknown or wrong
    /// key, bad signature, another town, an order from the future): a fault, never "safe".
    CannotVerify,
    /// No order in force can be shown, and the stream's time cannot be believed (it jumped
    /// beyond what the box can vouch for): never "no order".
    CannotVerifyTime,
}

/// Where the receiver's time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    /// The stream's time table (TDT/TOT on PID 0x0014).
    Stream,
    /// The box's own clock (no time table seen).
    Clock,
}

/// The reference receiver.
pub struct Receiver {
    cfg: ReceiverConfig,
    psi: SiDemux,
    time_pid: SectionReassembler,
    overlay_pid: Option<u16>,
    program: Option<u16>,
    overlay: SectionReassembler,
    seen: HashSet<(u8, u16, u8, u32)>,
    shown: Option<Shown>,
    held: Option<(u32, String)>,
    town: Option<TownId>,
    learnt: Vec<TrustedKey>,
    unverified: u64,
    emergency: Vec<EmergencyEntry>,
    tickers: BTreeMap<u32, ShownTicker>,
    ended_tickers: BTreeMap<u32, i64>,
    rejected: Rejected,
    clock: i64,
    time: StreamClock,
    packets: u64,
    dirty: bool,
}

/// Most distinct sections remembered for de-duplication before the memory starts over.
const MAX_SEEN: usize = 1 << 20;

/// What one section of the household's group came to.
enum Outcome {
    /// Settled: the same bytes again will come to the same.
    Final,
    /// May change with time or a key announcement: look at it again when it repeats.
    Retry,
}

impl Receiver {
    /// A receiver for `cfg`, with the box's clock at `now` (Unix seconds) and nothing held.
    pub fn new(cfg: ReceiverConfig, now: i64) -> Self {
        Self::with_state(cfg, ReceiverState::default(), now)
    }

    /// A receiver that goes on from `state` (its state file), if it was kept for the same
    /// household; a state for another household is ignored.
    pub fn with_state(cfg: ReceiverConfig, state: ReceiverState, now: i64) -> Self {
        let same = state.household == cfg.household.0;
        let held = state.version.zip(state.order.clone()).filter(|_| same);
        let learnt = if same {
            state
                .keys
                .iter()
                .filter_map(|(hex_key, nb, na)| {
                    let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
                    Some(TrustedKey {
                        key: PublicKey::from_bytes(&bytes).ok()?,
                        not_before: *nb,
                        not_after: *na,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let town = cfg.town.clone().or_else(|| {
            state
                .town
                .as_deref()
                .filter(|_| same)
                .and_then(|t| TownId::new(t).ok())
        });
        Receiver {
            cfg,
            psi: SiDemux::builder()
                .dvb_si_pids(false)
                .pid(Pid::new(0))
                .build(),
            time_pid: SectionReassembler::default(),
            overlay_pid: None,
            program: None,
            overlay: SectionReassembler::default(),
            seen: HashSet::new(),
            shown: None,
            held,
            town,
            learnt,
            unverified: 0,
            emergency: Vec::new(),
            tickers: BTreeMap::new(),
            ended_tickers: BTreeMap::new(),
            rejected: Rejected::default(),
            clock: now,
            time: StreamClock::default(),
            packets: 0,
            dirty: false,
        }
    }

    /// Moves the box's own clock on (used while the stream carries no time table).
    pub fn set_now(&mut self, now: i64) {
        self.clock = now;
    }

    /// The time the receiver judges by: the stream's as far as it is believed ([`clock`]),
    /// else its own clock.
    pub fn now(&self) -> i64 {
        self.time.now(self.clock, self.cfg.skew_s)
    }

    /// Where [`Receiver::now`] comes from.
    pub fn time_source(&self) -> TimeSource {
        if self.time.from_stream() {
            TimeSource::Stream
        } else {
            TimeSource::Clock
        }
    }

    /// Whether the stream's latest time is believed (or the stream carries none).
    pub fn time_believed(&self) -> bool {
        self.time.believed()
    }

    /// What the box must remember across restarts.
    pub fn state(&self) -> ReceiverState {
        ReceiverState {
            household: self.cfg.household.0,
            town: self.town.as_ref().map(|t| t.as_str().to_owned()),
            version: self.held.as_ref().map(|h| h.0),
            order: self.held.as_ref().map(|h| h.1.clone()),
            keys: self
                .learnt
                .iter()
                .map(|k| (hex::encode(k.key.to_bytes()), k.not_before, k.not_after))
                .collect(),
        }
    }

    /// Whether the state changed since the last call (then the binary writes it).
    pub fn take_state_change(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Takes one 188-byte packet (anything else is counted and ignored).
    pub fn feed(&mut self, packet: &[u8]) {
        self.packets += 1;
        let Ok(ts) = mpeg_ts::TsPacket::parse(packet) else {
            return;
        };
        let pid = ts.header.pid.value();
        if ts.header.tei && (Some(pid) == self.overlay_pid || pid == TIME_PID) {
            return;
        }
        if Some(pid) == self.overlay_pid {
            self.overlay.feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = self.overlay.pop_section() {
                self.section(&s);
            }
            return;
        }
        if pid == TIME_PID {
            self.time_pid
                .feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = self.time_pid.pop_section() {
                if let Some(t) = read_time(&s) {
                    self.time
                        .read(t, self.clock, self.cfg.skew_s, DEFAULT_MARGIN_S);
                }
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
        let id = (r.table_id, r.extension, r.number, r.crc);
        if self.seen.contains(&id) {
            return;
        }
        if self.seen.len() > MAX_SEEN {
            self.seen.clear();
        }
        let outcome = match r.table_id {
            OVERLAY_TABLE_ID if r.extension == group_of(self.cfg.household) => self.order(r.body),
            KEY_TABLE_ID => self.announcement(r.body),
            TICKER_TABLE_ID => {
                self.ticker(r.body);
                Outcome::Final
            }
            _ => Outcome::Final,
        };
        if matches!(outcome, Outcome::Final) {
            self.seen.insert(id);
        }
    }

    /// The trusted key with this id, valid at `t`.
    fn trusted(&self, id: &KeyId, t: i64) -> Option<PublicKey> {
        self.cfg
            .hq
            .iter()
            .chain(&self.learnt)
            .find(|k| k.key.key_id() == *id && k.valid_at(t))
            .map(|k| k.key.clone())
    }

    fn knows(&self, id: &KeyId) -> Option<PublicKey> {
        self.cfg
            .hq
            .iter()
            .chain(&self.learnt)
            .find(|k| k.key.key_id() == *id)
            .map(|k| k.key.clone())
    }

    fn order(&mut self, body: &[u8]) -> Outcome {
        let id = match section_key_id(body) {
            Ok(id) => id,
            Err(_) => {
                self.rejected.malformed += 1;
                return Outcome::Final;
            }
        };
        let Some(key) = self.knows(&id) else {
            self.rejected.key += 1;
            self.unverified += 1;
            return Outcome::Retry;
        };
        let batch = match open_section(body, &key) {
            Ok(b) => b,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                self.unverified += 1;
                return Outcome::Final;
            }
            Err(e) => {
                tracing::debug!(error = %e, "undecodable overlay section");
                self.rejected.malformed += 1;
                return Outcome::Final;
            }
        };
        if self.trusted(&id, batch.issued).is_none() {
            self.rejected.key += 1;
            self.unverified += 1;
            return Outcome::Retry;
        }
        match &self.town {
            Some(t) if *t != batch.town => {
                self.rejected.town += 1;
                self.unverified += 1;
                return Outcome::Final;
            }
            Some(_) => {}
            None => {
                self.town = Some(batch.town.clone());
                self.dirty = true;
            }
        }
        // HQ's signed time bounds how far back the stream's time may go (an order from the
        // future does not: it is refused below).
        if batch.issued <= self.now().saturating_add(self.cfg.skew_s) {
            self.time.signed(batch.issued);
        }
        self.take(&batch)
    }

    fn take(&mut self, batch: &OverlayBatch) -> Outcome {
        let Some(rec) = batch.record(self.cfg.household) else {
            return Outcome::Final;
        };
        let now = self.now();
        if batch.issued > now.saturating_add(self.cfg.skew_s) {
            self.rejected.future += 1;
            self.unverified += 1;
            return Outcome::Retry;
        }
        // Expired by the time now: counted, and still kept as the order held (judged again
        // by the time whenever it is shown: the time may have been wrong).
        if batch.expires <= now {
            self.rejected.expired += 1;
        }
        let shown = Shown {
            level: rec.level,
            hazard: batch.hazard,
            shelter: rec.shelter,
            version: rec.version,
            issued: batch.issued,
            expires: batch.expires,
            onset: batch.onset,
            needs_help: rec.needs_help,
            drill: batch.drill,
            message_id: batch.message_id,
            kind: batch.kind,
        };
        let canonical = shown.canonical();
        if let Some((v, held)) = &self.held
            && (rec.version < *v || (rec.version == *v && *held != canonical))
        {
            self.rejected.stale += 1;
            return Outcome::Final;
        }
        if self.held.as_ref().is_none_or(|(v, _)| *v != rec.version) {
            self.held = Some((rec.version, canonical));
            self.dirty = true;
        }
        self.shown = Some(shown);
        Outcome::Final
    }

    fn announcement(&mut self, body: &[u8]) -> Outcome {
        let now = self.now();
        let Some(key) = announcement_signer(body)
            .ok()
            .and_then(|id| self.trusted(&id, now))
        else {
            self.rejected.key += 1;
            return Outcome::Retry;
        };
        let a = match open_announcement(body, &key) {
            Ok(a) => a,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                return Outcome::Final;
            }
            Err(_) => {
                self.rejected.malformed += 1;
                return Outcome::Final;
            }
        };
        if self.town.as_ref().is_some_and(|t| *t != a.town) {
            self.rejected.town += 1;
            return Outcome::Final;
        }
        if a.valid_until <= now {
            self.rejected.expired += 1;
            return Outcome::Final;
        }
        let known = self
            .cfg
            .hq
            .iter()
            .chain(&self.learnt)
            .any(|k| k.key == a.key);
        if !known {
            self.learnt.push(TrustedKey {
                key: a.key,
                not_before: a.valid_from,
                not_after: a.valid_until,
            });
            self.dirty = true;
            // Sections under the new key already seen are looked at again when they repeat.
            self.seen.clear();
        }
        Outcome::Final
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
        if t.expires <= self.now() {
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
        self.shown.as_ref().filter(|s| s.expires > self.now())
    }

    /// What the box can say about its household now.
    pub fn status(&self) -> Status {
        match self.order_now() {
            Some(s) if s.level.is_some() => Status::Order,
            Some(_) => Status::Lifted,
            None if self.unverified > 0 => Status::CannotVerify,
            None if !self.time.believed() => Status::CannotVerifyTime,
            None => Status::NoOrder,
        }
    }

    /// Tickers in force now.
    pub fn tickers_now(&self) -> Vec<&ShownTicker> {
        self.tickers
            .values()
            .filter(|t| t.expires > self.now())
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
            status: self.status(),
            order: order.filter(|s| s.level.is_some()).map(|s| ReportOrder {
                level: s.level.map_or(0, |l| l.number()),
                hazard: s.hazard,
                shelter: s.shelter,
                version: s.version,
                expires: rfc3339(s.expires),
                onset: s.onset.map(rfc3339),
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
            time_source: self.time_source(),
            time: rfc3339(self.now()),
            time_believed: self.time.believed(),
            stream_time: self.time.doubted().map(rfc3339),
            town: self.town.as_ref().map(|t| t.as_str().to_owned()),
            service: self.service().map(|(program, overlay_pid)| ServiceReport {
                program,
                overlay_pid,
            }),
            packets: self.packets,
        }
    }
}

#[cfg(test)]
mod tests;
