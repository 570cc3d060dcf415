//! The health the live loop reports: the JSON health file (rewritten once a second) and, when
//! the health turns bad, one warning on stderr for the operator watching the head-end.

use std::path::PathBuf;

use super::Health;

/// Writes the health file and says on stderr when the health changes for the worse.
#[derive(Debug, Default)]
pub struct HealthReporter {
    file: Option<PathBuf>,
    was_ok: Option<bool>,
}

/// What changed in the health between two reports.
#[derive(Debug, PartialEq, Eq)]
pub enum HealthChange {
    /// As before.
    Same,
    /// Orders from HQ (or files) are on air.
    Ok,
    /// The broker is lost: the orders on air may be stale (the warning's text).
    Stale(String),
    /// Not well, with no broker to blame (nothing on air yet).
    NotOk,
}

impl HealthReporter {
    /// A reporter writing `file`, if any.
    pub fn new(file: Option<PathBuf>) -> Self {
        HealthReporter { file, was_ok: None }
    }

    /// Writes the file and logs a change (a warning on stderr when orders may be stale).
    pub fn report(&mut self, h: &Health) {
        if let Some(f) = &self.file
            && let Ok(json) = serde_json::to_vec(h)
            && let Err(e) = evac_protocol::statefile::write(f, &json)
        {
            tracing::warn!(error = %e, "cannot write the health file");
        }
        match self.change(h) {
            HealthChange::Ok => {
                tracing::info!(source = ?h.source, tables = h.tables, "orders from HQ on air")
            }
            HealthChange::Stale(warning) => eprintln!("evac-broadcaster: WARNING: {warning}"),
            HealthChange::Same | HealthChange::NotOk => {}
        }
    }

    /// What changed since the last call (no I/O).
    pub fn change(&mut self, h: &Health) -> HealthChange {
        let ok = h.ok();
        if self.was_ok == Some(ok) {
            return HealthChange::Same;
        }
        self.was_ok = Some(ok);
        if ok {
            HealthChange::Ok
        } else if h.broker {
            HealthChange::Stale(format!(
                "not connected to HQ's broker ({}): airing {} tables as last received",
                h.last_error.as_deref().unwrap_or("no answer"),
                h.tables
            ))
        } else {
            HealthChange::NotOk
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveCore;

    #[test]
    fn a_lost_broker_warns_once_and_a_reconnection_is_news() {
        let mut core = LiveCore::new(None, true);
        let mut r = HealthReporter::new(None);
        core.check(crate::live::Update::Disconnected(
            "connection refused".into(),
        ));
        let HealthChange::Stale(w) = r.change(core.health()) else {
            panic!("no warning")
        };
        assert!(
            w.contains("connection refused") && w.contains("0 tables"),
            "{w}"
        );
        assert_eq!(r.change(core.health()), HealthChange::Same);
        core.check(crate::live::Update::Connected);
        assert_eq!(r.change(core.health()), HealthChange::Ok);
    }

    #[test]
    fn the_file_is_rewritten_with_the_health() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("health.json");
        let core = LiveCore::new(None, false);
        HealthReporter::new(Some(file.clone())).report(core.health());
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(json["source"], "none");
        assert_eq!(json["broker"], false);
    }
}
