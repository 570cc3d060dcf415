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
//!
//! This file holds the receiver's set-up, state and dispatch; by concern:
//! `psi` (packets, PAT/PMT, the time table), `seen` (de-duplication), `keys` (trusted keys and
//! announcements), `orders` (the household's order and status), `tickers` (the broadcaster's
//! tickers), [`clock`] (the stream's time, bounded) and `report` (`evac-stb --json`).

use std::collections::BTreeMap;

use dvb_si::demux::SiDemux;
use evac_protocol::keyroll::KEY_TABLE_ID;
use evac_protocol::ticker::TICKER_TABLE_ID;
use evac_protocol::{HouseholdId, PublicKey, TownId};
use mpeg_ts::pid::Pid;
use mpeg_ts::ts::SectionReassembler;
use serde::{Deserialize, Serialize};

use crate::psi::EmergencyEntry;
use crate::section::{OVERLAY_TABLE_ID, SectionFault, group_of, receive};

pub mod clock;
mod keys;
mod orders;
mod psi;
mod report;
mod seen;
mod tickers;

use clock::StreamClock;
pub use keys::TrustedKey;
pub use orders::Shown;
pub use report::{EmergencyReport, Report, ReportOrder, ServiceReport, rfc3339};
use seen::{Seen, Verdict};
pub use tickers::ShownTicker;

/// Seconds an order's `issued` may lie ahead of the receiver's time before it is refused.
pub const DEFAULT_SKEW_S: i64 = 120;

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

/// Where the receiver's time comes from (not the process's clock input,
/// `evac_protocol::time::TimeSource`: this is what the box judges expiry by).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeOrigin {
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
    seen: Seen,
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
            seen: Seen::default(),
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
    pub fn time_origin(&self) -> TimeOrigin {
        if self.time.from_stream() {
            TimeOrigin::Stream
        } else {
            TimeOrigin::Clock
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
        if !self.seen.is_new(&id) {
            return;
        }
        let verdict = match r.table_id {
            OVERLAY_TABLE_ID if r.extension == group_of(self.cfg.household) => self.order(r.body),
            KEY_TABLE_ID => self.announcement(r.body),
            TICKER_TABLE_ID => {
                self.ticker(r.body);
                Verdict::Final
            }
            _ => Verdict::Final,
        };
        self.seen.settle(id, verdict);
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
}

#[cfg(test)]
mod tests;
