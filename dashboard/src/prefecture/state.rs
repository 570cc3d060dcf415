//! The prefecture's picture of its towns, with no I/O and no drawing: each town's status
//! checked with that town's HQ key, exactly as the town dashboard checks it, its bridge's
//! word on the uplink, and one [`TownRow`] a town with the STALE judgement.
//!
//! "Has not come for" is judged as DESIGN.md (Time) says a screen judges HQ's data: on the
//! town's HQ clock, its newest time plus the monotonic time since it arrived, never by the
//! prefecture's own clock. One bounded exception, in [`Prefecture::rows`]: a retained status
//! of a town gone quiet arrives fresh at every new subscriber, and only the prefecture's own
//! clock can tell at once that it is old; it is taken as stale on that clock only when it is
//! older than `stale_after_s` plus [`CLOCK_TOLERANCE_MS`], more than NTP-kept clocks ever
//! drift, so a clock off by less can never make a live town STALE.

use std::path::PathBuf;

use evac_protocol::{IdError, KeyError, PublicKey, Slug, StatusCounts};
use serde::Serialize;

use crate::clock::Now;
use crate::prefecture::PrefectureConfig;
use crate::state::{Link, TownState};

/// A town of the configuration that cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum TownError {
    /// Its id is not a town id.
    #[error("town {town}")]
    Id {
        /// The id given.
        town: String,
        /// Why.
        #[source]
        source: IdError,
    },
    /// Its HQ key cannot be read.
    #[error("hq_key of {town}: {}", path.display())]
    HqKey {
        /// The town.
        town: String,
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KeyError,
    },
}

/// What a town's bridge says of its link (Mosquitto's bridge notification: `1` up, `0`
/// down, retained; the prefecture broker publishes `0` itself when the bridge drops).
fn bridge_state(payload: &[u8]) -> Option<bool> {
    match payload {
        b"1" => Some(true),
        b"0" => Some(false),
        _ => None,
    }
}

/// One town the prefecture watches.
#[derive(Debug)]
pub struct WatchedTown {
    /// Its name on screen.
    pub name: String,
    /// Its picture, from its HQ-signed status only.
    pub state: TownState,
    /// What its bridge last said of the uplink.
    pub bridge_up: Option<bool>,
}

/// How far the prefecture's own clock may disagree with a town's HQ (an unsynchronised
/// laptop is minutes off, never half an hour) before a status that
/// arrives already older than `stale_after_s` by more than this is taken as stale at once
/// (a retained status of a town gone quiet). The one place the prefecture's clock is held
/// against HQ's (see the module doc).
pub const CLOCK_TOLERANCE_MS: u64 = 30 * 60_000;

/// Every town of the prefecture.
#[derive(Debug)]
pub struct Prefecture {
    prefix: String,
    stale_after_ms: u64,
    /// The towns, in the configuration's order.
    pub towns: Vec<WatchedTown>,
    /// Messages on no watched town's topics, or refused by a town's checks.
    pub refused: u64,
}

/// One row of the prefecture view (also the JSON of `evac-dashboard prefecture --json`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TownRow {
    /// The town's id.
    pub town: String,
    /// Its name.
    pub name: String,
    /// Its counts, as of `at_ms` (none before its first status).
    pub counts: Option<StatusCounts>,
    /// HQ's time of the counts (Unix ms).
    pub at_ms: Option<u64>,
    /// Shelter nodes online / shelters.
    pub shelters_online: (usize, usize),
    /// The counts may be out of date.
    pub stale: bool,
    /// Why, when stale: `uplink down`, `no status for N s`, `no status yet`.
    pub why: Option<String>,
}

impl Prefecture {
    /// The prefecture of `cfg`, the towns' HQ keys read.
    pub fn new(cfg: &PrefectureConfig) -> Result<Prefecture, TownError> {
        let mut towns = Vec::new();
        for t in &cfg.towns {
            let id = Slug::new(&t.town).map_err(|source| TownError::Id {
                town: t.town.clone(),
                source,
            })?;
            let key = PublicKey::read(&t.hq_key).map_err(|source| TownError::HqKey {
                town: t.town.clone(),
                path: t.hq_key.clone(),
                source,
            })?;
            let mut state = TownState::new(id, key, None);
            state.link = Link::Connected { since_ms: 0 };
            towns.push(WatchedTown {
                name: t.name.clone().unwrap_or_else(|| t.town.clone()),
                state,
                bridge_up: None,
            });
        }
        Ok(Prefecture {
            prefix: cfg.prefix.clone(),
            stale_after_ms: cfg.stale_after_s.saturating_mul(1000),
            towns,
            refused: 0,
        })
    }

    /// What to subscribe to on the prefecture broker.
    pub fn subscriptions(&self) -> Vec<String> {
        self.towns
            .iter()
            .flat_map(|w| {
                let t = &w.state.town;
                [
                    format!(
                        "{}/{t}/{}",
                        self.prefix,
                        evac_protocol::Topic::Status(t.clone())
                    ),
                    // A large town's snapshot, in retained signed parts (issue 22): its
                    // `TownState` joins them as the town dashboard does.
                    format!(
                        "{}/{t}/{}",
                        self.prefix,
                        evac_protocol::topics::filter::status_parts(t)
                    ),
                    format!("{}/{t}/bridge/state", self.prefix),
                ]
            })
            .collect()
    }

    /// Takes one message from the prefecture broker, received at `now`.
    pub fn on_message(&mut self, topic: &str, payload: &[u8], now: Now) {
        let Some(rest) = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            self.refused += 1;
            return;
        };
        let Some((town, inner)) = rest.split_once('/') else {
            self.refused += 1;
            return;
        };
        let Some(w) = self
            .towns
            .iter_mut()
            .find(|w| w.state.town.as_str() == town)
        else {
            self.refused += 1;
            return;
        };
        if inner == "bridge/state" {
            match bridge_state(payload) {
                Some(up) => w.bridge_up = Some(up),
                None => self.refused += 1,
            }
            return;
        }
        // The inner topic must be this town's own: a town's bridge cannot speak for another
        // (and the town's HQ key decides what is believed).
        if w.state.on_message(inner, payload, now.mono_ms).is_err() {
            self.refused += 1;
        }
    }

    /// One row a town, at `now`.
    pub fn rows(&self, now: Now) -> Vec<TownRow> {
        self.towns
            .iter()
            .map(|w| {
                let s = &w.state;
                let why = if w.bridge_up == Some(false) {
                    Some("uplink down".to_owned())
                } else {
                    // The age on the town's HQ clock; then the bounded exception (module doc):
                    // a retained status already far older than our own clock allows.
                    let hq_age = s
                        .status_at_ms
                        .zip(s.hq_now_ms(now.mono_ms))
                        .map(|(t, hq_now)| hq_now.saturating_sub(t));
                    let own_age = s.status_at_ms.map(|t| now.wall_ms.saturating_sub(t));
                    match (hq_age, own_age) {
                        (Some(a), _) if a > self.stale_after_ms => {
                            Some(format!("no status for {} s", a / 1000))
                        }
                        (Some(_), Some(a))
                            if a > self.stale_after_ms.saturating_add(CLOCK_TOLERANCE_MS) =>
                        {
                            Some(format!("no status for {} s", a / 1000))
                        }
                        (Some(_), _) => None,
                        (None, _) => Some("no status yet".to_owned()),
                    }
                };
                TownRow {
                    town: s.town.to_string(),
                    name: w.name.clone(),
                    counts: s.has_data().then(|| s.counts.clone()),
                    at_ms: s.status_at_ms,
                    shelters_online: (
                        s.shelters.values().filter(|r| r.status.online).count(),
                        s.shelters.len(),
                    ),
                    stale: why.is_some(),
                    why,
                }
            })
            .collect()
    }

    /// Whether every town has sent a status.
    pub fn complete(&self) -> bool {
        self.towns.iter().all(|w| w.state.has_data())
    }

    /// The rows at `now` and the refused count, as `evac-dashboard prefecture --json` prints
    /// them.
    pub fn summary(&self, now: Now) -> PrefectureRows {
        PrefectureRows {
            refused: self.refused,
            towns: self.rows(now),
        }
    }
}

/// What `evac-dashboard prefecture --json` prints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PrefectureRows {
    /// Messages on no watched town's topics, or refused by a town's checks.
    pub refused: u64,
    /// One row a town, in the configuration's order.
    pub towns: Vec<TownRow>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use crate::prefecture::fixture::{NOW, at, prefecture, snapshot, snapshot_seq};

    #[test]
    fn each_town_is_believed_only_with_its_own_key_and_goes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, b) = prefecture(dir.path());
        assert_eq!(
            p.subscriptions(),
            [
                "pref/36/minato/evac/v1/minato/status",
                "pref/36/minato/evac/v1/minato/status/part/+",
                "pref/36/minato/bridge/state",
                "pref/36/shiomihama/evac/v1/shiomihama/status",
                "pref/36/shiomihama/evac/v1/shiomihama/status/part/+",
                "pref/36/shiomihama/bridge/state",
            ]
        );
        let a_topic = "pref/36/minato/evac/v1/minato/status";
        let b_topic = "pref/36/shiomihama/evac/v1/shiomihama/status";
        // Town B's key on town A's status, town B's status under A's prefix, junk: refused.
        p.on_message(a_topic, &snapshot("minato", &b, 3), at(NOW));
        p.on_message(
            "pref/36/minato/evac/v1/shiomihama/status",
            &snapshot("shiomihama", &b, 3),
            at(NOW),
        );
        p.on_message("pref/36/minato/bridge/state", b"maybe", at(NOW));
        p.on_message("elsewhere/status", b"x", at(NOW));
        assert_eq!(p.refused, 4);
        assert!(!p.complete());
        p.on_message(a_topic, &snapshot("minato", &a, 3), at(NOW));
        p.on_message(b_topic, &snapshot("shiomihama", &b, 7), at(NOW));
        p.on_message("pref/36/shiomihama/bridge/state", b"1", at(NOW));
        assert!(p.complete());
        let rows = p.rows(at(NOW + 1_000));
        assert_eq!(rows[0].name, "港町");
        assert_eq!(rows[0].counts.as_ref().unwrap().under_order, 3);
        assert_eq!(rows[1].counts.as_ref().unwrap().under_order, 7);
        assert!(rows.iter().all(|r| !r.stale), "{rows:?}");
        // B's uplink drops: STALE at once, its last counts kept. A goes quiet: STALE later.
        p.on_message("pref/36/shiomihama/bridge/state", b"0", at(NOW + 2_000));
        let rows = p.rows(at(NOW + 61_000));
        assert_eq!(rows[1].why.as_deref(), Some("uplink down"));
        assert_eq!(rows[1].counts.as_ref().unwrap().under_order, 7);
        assert_eq!(rows[0].why.as_deref(), Some("no status for 61 s"));
        // B comes back with new counts.
        p.on_message("pref/36/shiomihama/bridge/state", b"1", at(NOW + 62_000));
        p.on_message(
            b_topic,
            &snapshot_seq("shiomihama", &b, 9, 2),
            at(NOW + 62_000),
        );
        let rows = p.rows(at(NOW + 62_500));
        assert!(!rows[1].stale);
        assert_eq!(rows[1].counts.as_ref().unwrap().under_order, 9);
        assert_eq!(rows[0].why.as_deref(), Some("no status for 62 s"));
    }

    /// Issue 18 item 10: a prefecture clock 10 minutes off (either way) judges every town
    /// as a right one does: by HQ's newest time plus the monotonic time since.
    #[test]
    fn a_prefecture_clock_ten_minutes_off_judges_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let topic = "pref/36/minato/evac/v1/minato/status";
        for off in [-600_000i64, 0, 600_000] {
            let (mut p, a, _) = prefecture(dir.path());
            let clock = |ms: u64| Now {
                wall_ms: ms.saturating_add_signed(off),
                mono_ms: ms - NOW,
            };
            p.on_message(topic, &snapshot("minato", &a, 3), clock(NOW));
            let rows = p.rows(clock(NOW + 30_000));
            assert!(!rows[0].stale, "{off}: {rows:?}");
            let rows = p.rows(clock(NOW + 61_000));
            assert_eq!(rows[0].why.as_deref(), Some("no status for 61 s"), "{off}");
        }
    }

    /// The bounded exception: a retained status of a town gone quiet an hour ago is STALE as
    /// soon as it arrives.
    #[test]
    fn a_status_retained_from_an_hour_ago_is_stale_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, _) = prefecture(dir.path());
        let late = Now {
            wall_ms: NOW + 3_600_000,
            mono_ms: 5,
        };
        p.on_message(
            "pref/36/minato/evac/v1/minato/status",
            &snapshot("minato", &a, 3),
            late,
        );
        let rows = p.rows(late);
        assert_eq!(rows[0].why.as_deref(), Some("no status for 3600 s"));
    }

    /// The JSON of `prefecture --json`: `refused` and `towns`, keys in that order (as the
    /// `json!` object it replaces printed them).
    #[test]
    fn the_summary_is_the_rows_and_the_refused_count() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, _) = prefecture(dir.path());
        p.on_message("elsewhere", b"x", at(NOW));
        p.on_message(
            "pref/36/minato/evac/v1/minato/status",
            &snapshot("minato", &a, 3),
            at(NOW),
        );
        let v = serde_json::to_value(p.summary(at(NOW + 1_000))).unwrap();
        assert_eq!(v["refused"], 1);
        assert_eq!(v["towns"][0]["counts"]["under_order"], 3);
        assert_eq!(v["towns"][1]["why"], "no status yet");
        let text = serde_json::to_string(&p.summary(at(NOW))).unwrap();
        assert!(text.starts_with("{\"refused\":1,\"towns\":["), "{text}");
    }

    #[test]
    fn a_town_whose_key_cannot_be_read_names_the_town_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, _) = prefecture(dir.path());
        let mut cfg = PrefectureConfig::read(&dir.path().join("pref.toml")).unwrap();
        cfg.towns[1].hq_key = dir.path().join("missing.pub");
        let e = Prefecture::new(&cfg).unwrap_err();
        assert!(matches!(e, TownError::HqKey { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("hq_key of shiomihama: ")
                && e.to_string().ends_with("missing.pub"),
            "{e}"
        );
    }
}
