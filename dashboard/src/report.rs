//! The situation report an FDMA 第4号様式 first report asks for within 30 minutes: per
//! shelter open, present by day and night, capacity; town totals; residents unaccounted,
//! needs-help first. What is not known is marked 未確認 (unconfirmed), never guessed.

use std::fmt::Write;
use std::time::Duration;

use evac_protocol::StatusCounts;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::clock::Now;
use crate::i18n::Lang;
use rumqttc::AsyncClient;

use crate::net::FeedEvent;
use crate::state::TownState;

mod help;
pub use help::HelpAtHome;

/// One shelter of the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ShelterLine {
    /// Shelter id.
    pub id: u32,
    /// Name (the town file's), when known.
    pub name: Option<String>,
    /// Open.
    pub open: bool,
    /// Present by day.
    pub present_day: u32,
    /// Present for the night.
    pub present_night: u32,
    /// Capacity.
    pub capacity: u32,
    /// Node online: when false, its counts are as last reported (未確認).
    pub online: bool,
}

/// One resident not yet accounted for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Missing {
    /// Resident id.
    pub resident: u32,
    /// Household id (none before the registry arrived).
    pub household: Option<u32>,
    /// Needs help to evacuate.
    pub needs_help: bool,
    /// The shelter the order names, when this dashboard has seen the order.
    pub shelter: Option<u32>,
    /// `under-order` or `unaccounted` (overdue).
    pub status: &'static str,
}

/// A resident counted at (or as having left) a shelter on the word of a card that failed a
/// check (it may be a copy).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Unverified {
    /// Resident id.
    pub resident: u32,
    /// The shelter.
    pub shelter: u32,
    /// `arrived` or `checked-out`.
    pub status: &'static str,
}

/// The unaccounted by what their household answered from the TV (self-reported: none of
/// them is accounted for by it).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AnswerCounts {
    /// Households with someone unaccounted that answered "needs help at home".
    pub needs_help_households: u64,
    /// The people those households said need help.
    pub needs_help_people: u64,
    /// Unaccounted residents of those households.
    pub needs_help_residents: u64,
    /// Unaccounted residents whose household answered safe (at home, elsewhere, at a shelter).
    pub answered_safe: u64,
    /// Unaccounted residents whose household gave no word.
    pub no_word: u64,
    /// Unaccounted residents whose household's "needs help at home" an officer marked
    /// handled (HQ's own counts over every household are in `counts.answers`).
    pub help_handled_residents: u64,
    /// Households whose answer an officer must confirm (too many wrong answer codes).
    pub needs_confirmation: u64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The town.
    pub town: String,
    /// HQ's time of the status (Unix ms).
    pub at_ms: Option<u64>,
    /// Whether the link was down when the report was made.
    pub stale: bool,
    /// Town totals.
    pub counts: StatusCounts,
    /// Every shelter.
    pub shelters: Vec<ShelterLine>,
    /// Everyone under order not yet accounted for, needs-help first.
    pub unaccounted: Vec<Missing>,
    /// The unaccounted by their household's answer from the TV.
    pub answers: AnswerCounts,
    /// The households that answered "needs help at home", not yet handled first, with their
    /// home address when [`Report::with_addresses`] found it.
    pub help_at_home: Vec<HelpAtHome>,
    /// Everyone whose presence rests on a card that failed a check, by resident id.
    pub unverified: Vec<Unverified>,
    /// Messages refused while collecting (bad signature, wrong town, ...).
    pub refused: u64,
}

impl Report {
    /// The report of `s` (derived lists must be fresh: call `refresh` first).
    pub fn of(s: &TownState) -> Report {
        let reg = s.registry.as_ref();
        Report {
            town: s.town.to_string(),
            at_ms: s.status_at_ms,
            stale: s.stale(),
            counts: s.counts.clone(),
            shelters: s
                .shelters
                .values()
                .map(|r| ShelterLine {
                    id: r.status.shelter.0,
                    name: r.name.clone(),
                    open: r.status.open,
                    present_day: r.status.present_day,
                    present_night: r.status.present_night,
                    capacity: r.status.capacity,
                    online: r.status.online,
                })
                .collect(),
            unaccounted: s
                .derived
                .unaccounted
                .iter()
                .map(|&r| {
                    let p = reg.and_then(|g| g.person(r));
                    let household = p.map(|p| p.household);
                    Missing {
                        resident: r.0,
                        household,
                        needs_help: p.is_some_and(|p| p.needs_help),
                        shelter: household
                            .and_then(|h| s.orders.get(&h))
                            .map(|o| o.shelter.0),
                        status: if s.statuses.code(r) == crate::state::code::UNACCOUNTED {
                            "unaccounted"
                        } else {
                            "under-order"
                        },
                    }
                })
                .collect(),
            answers: AnswerCounts {
                needs_help_households: s.derived.needs_help_households.0 as u64,
                needs_help_people: s.derived.needs_help_households.1,
                needs_help_residents: s.derived.needs_help_at_home as u64,
                answered_safe: s.derived.answered_safe as u64,
                no_word: s.derived.no_word as u64,
                help_handled_residents: s.derived.help_handled as u64,
                needs_confirmation: s.answers.values().filter(|a| a.needs_confirmation).count()
                    as u64,
            },
            help_at_home: help::of(s),
            unverified: s
                .statuses
                .iter()
                .filter(|&(_, c, _)| crate::state::is_unverified(c))
                .map(|(r, c, shelter)| Unverified {
                    resident: r.0,
                    shelter,
                    status: if c == crate::state::code::ARRIVED_UNVERIFIED {
                        "arrived"
                    } else {
                        "checked-out"
                    },
                })
                .collect(),
            refused: s.rejected.total,
        }
    }

    /// Looks up the home address of each household needing help in `town_file` (read once,
    /// feature by feature; the addresses stay in the report printed on this machine).
    pub fn with_addresses(mut self, town_file: Option<&std::path::Path>) -> Report {
        help::with_addresses(&mut self.help_at_home, town_file);
        self
    }

    /// The report as text for people.
    pub fn text(&self, s: &TownState, lang: Lang, utc_offset_min: i32) -> String {
        let l = lang;
        let unconfirmed = l.t("unconfirmed", "未確認");
        let mut out = String::new();
        let when = self.at_ms.map_or(unconfirmed.to_owned(), |ms| {
            crate::ui::clock_text(ms, utc_offset_min)
        });
        let _ = writeln!(
            out,
            "{} — {} {} ({} {when}){}",
            l.t("Situation report", "災害状況報告 (第4号様式 様式準拠)"),
            l.t("town", "市町村"),
            self.town,
            l.t("as of", "時点"),
            if self.stale {
                l.t("  [STALE: link down]", "  [STALE: 回線断]")
            } else {
                ""
            }
        );
        let c = &self.counts;
        let _ = writeln!(
            out,
            "{}: {} {} / {} {} / {} {} / {} {} / {} {} / {} {}",
            l.t("Totals", "集計"),
            l.t("residents", "住民"),
            c.residents,
            l.t("under order", "避難指示対象"),
            c.residents.saturating_sub(c.not_ordered),
            l.t("at shelters", "避難所在所"),
            c.arrived,
            l.t("checked out", "退所"),
            c.checked_out,
            l.t("found", "所在確認"),
            c.found,
            l.t("not accounted", "未確認"),
            c.under_order + c.unaccounted
        );
        if !self.unverified.is_empty() {
            let _ = writeln!(
                out,
                "{} {}:",
                self.unverified.len(),
                l.t(
                    "of these counted on a card that failed a check (confirm who)",
                    "名はカード確認失敗のまま計上 (本人確認を)"
                )
            );
            for u in &self.unverified {
                let r = evac_protocol::ResidentId(u.resident);
                let _ = writeln!(
                    out,
                    "  {:>8} {} {} {}",
                    u.resident,
                    s.resident_name(r).unwrap_or(unconfirmed),
                    if u.status == "arrived" {
                        l.t("at", "在所")
                    } else {
                        l.t("left", "退所")
                    },
                    s.shelter_name(evac_protocol::ShelterId(u.shelter))
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{}",
            l.t(
                "Shelters (id, name, open, day, night, capacity)",
                "避難所 (番号・名称・開設・昼・夜・定員)"
            )
        );
        for sh in &self.shelters {
            let counts = if sh.online {
                format!("{} {} {}", sh.present_day, sh.present_night, sh.capacity)
            } else {
                format!(
                    "{} {} {} ({unconfirmed}: {})",
                    sh.present_day,
                    sh.present_night,
                    sh.capacity,
                    l.t("node offline", "端末断")
                )
            };
            let _ = writeln!(
                out,
                "  {:>4} {} {} {counts}",
                sh.id,
                sh.name.as_deref().unwrap_or(unconfirmed),
                if sh.open {
                    l.t("open", "開設")
                } else {
                    l.t("closed", "閉鎖")
                },
            );
        }
        help::text(&mut out, &self.help_at_home, self.at_ms, l);
        let _ = writeln!(
            out,
            "\n{} {} ({} {})",
            l.t("Unaccounted", "所在未確認者"),
            self.unaccounted.len(),
            l.t("needs help", "要支援者"),
            self.unaccounted.iter().filter(|m| m.needs_help).count()
        );
        for m in &self.unaccounted {
            let name = s
                .resident_name(evac_protocol::ResidentId(m.resident))
                .unwrap_or(unconfirmed);
            let _ = writeln!(
                out,
                "  {}{:>8} {name} {} {} {} {}",
                if m.needs_help { "★" } else { " " },
                m.resident,
                l.t("household", "世帯"),
                m.household
                    .map_or(unconfirmed.to_owned(), |h| h.to_string()),
                l.t("shelter", "指定避難所"),
                m.shelter.map_or(unconfirmed.to_owned(), |id| s
                    .shelter_name(evac_protocol::ShelterId(id))),
            );
        }
        out
    }
}

/// Why [`gather`] has no current picture to report.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// The network task stopped.
    #[error("the network task ended")]
    FeedEnded,
    /// No current snapshot and registry came in time.
    #[error(
        "no current status snapshot and registry from HQ within {timeout_s} s ({refused} messages refused)"
    )]
    NoSnapshot {
        /// How long was waited (s).
        timeout_s: u64,
        /// Messages refused meanwhile.
        refused: u64,
    },
}

/// Takes the feed into `town` until it holds HQ's current snapshot and the registry (or
/// `timeout_s` has passed), then what else is already waiting, and refreshes what is derived:
/// `town` is then ready for [`Report::of`].
pub async fn gather(
    town: &mut TownState,
    feed: &mut mpsc::Receiver<FeedEvent>,
    client: Option<&AsyncClient>,
    timeout_s: u64,
    now: impl Fn() -> Now,
) -> Result<(), GatherError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    loop {
        while !(town.has_data()
            && town.registry.as_ref().is_some_and(|r| r.complete())
            && !town.waiting_snapshot)
        {
            // The registry's shards are read a few at a time; a quiet second moves on from a
            // shard that does not come.
            if let Some(c) = client {
                crate::net::hand_subs(town, c, now().mono_ms);
            }
            let wake = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            match tokio::time::timeout_at(wake, feed.recv()).await {
                Ok(Some(FeedEvent::Message(t, p))) => {
                    let _ = town.on_message(&t, &p, now().mono_ms);
                }
                Ok(Some(FeedEvent::Link(l))) => town.set_link(l),
                Ok(None) => return Err(GatherError::FeedEnded),
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(_) => {
                    return Err(GatherError::NoSnapshot {
                        timeout_s,
                        refused: town.rejected.total,
                    });
                }
            }
        }
        // Whatever else is already waiting (orders sent at connection, deltas) is taken in
        // too; a delta that shows the retained snapshot was behind means waiting for the next.
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), feed.recv()).await
        {
            if let FeedEvent::Message(t, p) = ev {
                let _ = town.on_message(&t, &p, now().mono_ms);
            }
        }
        if !town.waiting_snapshot {
            break;
        }
    }
    town.refresh(now().mono_ms, true);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use evac_protocol::{SecretKey, Slug};

    const NOW: u64 = 1_795_412_400_000;

    fn town() -> TownState {
        TownState::new(
            Slug::new("minato").unwrap(),
            SecretKey::from_seed(&[1; 32]).public(),
            None,
        )
    }

    #[tokio::test]
    async fn gather_takes_the_snapshot_and_the_registry_then_reports() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
        let map = evac_maps::Town::load(path).unwrap();
        let hq = SecretKey::from_seed(&[1; 32]);
        let feed =
            crate::sample::mid_evacuation(&map, &Slug::new("minato").unwrap(), &hq, NOW).unwrap();
        let (tx, mut rx) = mpsc::channel(feed.len() + 1);
        for (t, p) in feed {
            tx.send(FeedEvent::Message(t, p)).await.unwrap();
        }
        let mut s = town();
        let now = || Now {
            wall_ms: NOW,
            mono_ms: NOW,
        };
        gather(&mut s, &mut rx, None, 5, now).await.unwrap();
        let r = Report::of(&s);
        assert!(!r.unaccounted.is_empty() && !r.shelters.is_empty(), "{r:?}");
        assert_eq!(s.rejected.total, 0);
        drop(tx);
    }

    #[tokio::test]
    async fn gather_says_what_did_not_come() {
        let (tx, mut rx) = mpsc::channel(4);
        tx.send(FeedEvent::Message(
            "evac/v1/minato/status".into(),
            b"{".to_vec(),
        ))
        .await
        .unwrap();
        let mut s = town();
        let e = gather(&mut s, &mut rx, None, 0, Now::default)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no current status snapshot and registry from HQ within 0 s (1 messages refused)"
        );
        drop(tx);
        let e = gather(&mut s, &mut rx, None, 5, Now::default)
            .await
            .unwrap_err();
        assert!(matches!(e, GatherError::FeedEnded), "{e:?}");
        assert_eq!(s.rejected.total, 1);
    }
}
