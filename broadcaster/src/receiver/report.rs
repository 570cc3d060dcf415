//! What the receiver reports (`evac-stb --json`).

use evac_protocol::{Hazard, HouseholdId, ShelterId};
use serde::Serialize;

use super::{Receiver, Rejected, ShownTicker, Status, TimeOrigin};

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
    /// `order`, `lifted`, `no-order`, `cannot-verify` or `cannot-verify-time` (faults: never
    /// "no order").
    pub status: Status,
    /// Its order in force, or `null` (also when nothing may be shown: see `status`).
    pub order: Option<ReportOrder>,
    /// Its order was lifted (then `order` is `null`).
    pub lifted: bool,
    /// The emergency descriptor's state.
    pub emergency: EmergencyReport,
    /// Broadcasters' tickers in force (only with the broadcaster's key).
    pub tickers: Vec<ShownTicker>,
    /// Sections not shown, by reason.
    pub rejected: Rejected,
    /// Where the time judged by comes from: `stream` (TDT/TOT) or `clock`.
    pub time_source: TimeOrigin,
    /// That time, RFC 3339.
    pub time: String,
    /// Whether the stream's latest time is believed; when not, `time` is the last believed
    /// time moved on by the box's clock, and the box says it cannot verify the time.
    pub time_believed: bool,
    /// What the stream's time table says, when it is not believed.
    pub stream_time: Option<String>,
    /// The town the box is bound to, once known.
    pub town: Option<String>,
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
    /// When the hazard is expected (the alert's onset), RFC 3339.
    pub onset: Option<String>,
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

impl Receiver {
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
            time_source: self.time_origin(),
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
