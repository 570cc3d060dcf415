//! Broadcasters' own alerts: the tickers on air and the emergency descriptor they raise.
//!
//! An alert is an `evac_protocol::Alert`, signed by the broadcaster. While one is in force
//! the PMT carries the emergency-information descriptor with the start flag and the alerts'
//! areas; after the last is cancelled the end signal stays on for [`END_HOLD`] seconds, then
//! the descriptor goes. Each alert airs as a signed ticker section (table 0xB1) on the
//! overlay PID; a cancel airs as a cancel ticker until the alert would have expired.
//!
//! [`issue`]: an alert drafted by the operator (`evac-broadcaster alert`), signed and
//! written to the spool.

use std::collections::BTreeMap;
use std::path::Path;

use evac_protocol::ticker::{TICKER_TABLE_ID, Ticker, sign_ticker};
use evac_protocol::{Alert, AlertLevel, MessageKind, PublicKey, SecretKey, Signed};

use crate::carousel::SectionBytes;
use crate::error::Error;
use crate::psi::EmergencyEntry;
use crate::section::private_section;

pub mod issue;

/// Seconds the end signal stays in the PMT after the last alert ends.
pub const END_HOLD: i64 = 30;

/// The alerts in force and recently ended.
#[derive(Default)]
pub struct AlertBoard {
    alerts: BTreeMap<u32, Alert>,
    cancels: BTreeMap<u32, Alert>,
    ended_at: Option<(i64, Vec<u16>)>,
}

impl AlertBoard {
    /// Takes an alert, update or cancel (signature already checked).
    pub fn apply(&mut self, alert: Alert, now: i64) {
        match alert.kind {
            MessageKind::Cancel => {
                let target = alert.references.unwrap_or(alert.id);
                if let Some(old) = self.alerts.remove(&target) {
                    if self.live(now).next().is_none() {
                        self.ended_at = Some((now, old.areas.clone()));
                    }
                    let mut cancel = alert;
                    cancel.expires = cancel.expires.max(old.expires);
                    self.cancels.insert(target, cancel);
                } else {
                    self.cancels.insert(target, alert);
                }
            }
            MessageKind::Alert | MessageKind::Update => {
                if let Some(r) = alert.references {
                    self.alerts.remove(&r);
                }
                if !self.cancels.contains_key(&alert.id) {
                    self.alerts.insert(alert.id, alert);
                }
            }
        }
    }

    fn live(&self, now: i64) -> impl Iterator<Item = &Alert> {
        self.alerts
            .values()
            .filter(move |a| a.expires > now && a.issued <= now)
    }

    /// The emergency descriptor's entries for `service_id` at `now`.
    pub fn emergency(&self, service_id: u16, now: i64) -> Vec<EmergencyEntry> {
        let live: Vec<&Alert> = self.live(now).collect();
        if !live.is_empty() {
            let mut areas: Vec<u16> = live.iter().flat_map(|a| a.areas.iter().copied()).collect();
            areas.sort_unstable();
            areas.dedup();
            areas.truncate(crate::psi::MAX_AREAS);
            let urgent = live.iter().any(|a| a.level == Some(AlertLevel::Level5));
            return vec![EmergencyEntry {
                service_id,
                start: true,
                signal_level: if urgent { 0 } else { 1 },
                areas,
            }];
        }
        match &self.ended_at {
            Some((t, areas)) if now < t + END_HOLD => vec![EmergencyEntry {
                service_id,
                start: false,
                signal_level: 1,
                areas: areas.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// The ticker sections to air at `now`: (id, section, expiry).
    pub fn tickers(
        &self,
        key: &SecretKey,
        now: i64,
    ) -> Result<Vec<(u32, SectionBytes, i64)>, Error> {
        let mut out = Vec::new();
        for a in self
            .live(now)
            .chain(self.cancels.values().filter(|c| c.expires > now))
        {
            let body = sign_ticker(&Ticker::from(a), key)?;
            let s = private_section(TICKER_TABLE_ID, a.id as u16, 0, 0, 0, &body)?;
            // Cancels and alerts share the id space of the section key; keep both apart.
            let slot = if a.kind == MessageKind::Cancel {
                a.id | 0x8000_0000
            } else {
                a.id
            };
            out.push((slot, SectionBytes::from(s), a.expires));
        }
        Ok(out)
    }

    /// Loads every signed alert in `dir` (files `*.json`), oldest issue first.
    pub fn load_spool(&mut self, dir: &Path, key: &PublicKey, now: i64) -> Result<usize, Error> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::Config(format!("alert spool {}: {e}", dir.display())))?;
        let mut alerts = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read(&path)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            let alert = Signed::<Alert>::from_json(&text)
                .and_then(|s| s.open(key))
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            alerts.push(alert);
        }
        alerts.sort_by_key(|a| (a.issued, a.kind == MessageKind::Cancel, a.id));
        let n = alerts.len();
        for a in alerts {
            self.apply(a, now);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: u32, kind: MessageKind, level: Option<AlertLevel>) -> Alert {
        Alert {
            id,
            source: "broadcaster:test".into(),
            kind,
            references: if kind == MessageKind::Cancel {
                Some(1)
            } else {
                None
            },
            level,
            areas: vec![0x15A],
            text_ja: "大津波警報".into(),
            text_en: None,
            issued: 100,
            expires: 1_000,
            drill: false,
        }
    }

    #[test]
    fn descriptor_follows_the_alert_and_its_end() {
        let mut b = AlertBoard::default();
        assert!(b.emergency(7, 150).is_empty());
        b.apply(alert(1, MessageKind::Alert, Some(AlertLevel::Level5)), 150);
        let e = b.emergency(7, 150);
        assert_eq!(
            (e[0].start, e[0].signal_level, e[0].areas.clone()),
            (true, 0, vec![0x15A])
        );
        let k = SecretKey::from_seed(&[3; 32]);
        assert_eq!(b.tickers(&k, 150).unwrap().len(), 1);
        b.apply(alert(2, MessageKind::Cancel, None), 200);
        let e = b.emergency(7, 200);
        assert!(!e[0].start);
        assert!(b.emergency(7, 200 + END_HOLD).is_empty());
        // The cancel airs until the alert would have expired.
        let t = b.tickers(&k, 300).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t[0].0 & 0x8000_0000 != 0);
        assert!(b.emergency(7, 2_000).is_empty());
    }
}
