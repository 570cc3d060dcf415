//! What HQ does with one answer: limits, the code check, the store. No HTTP here (see
//! `super::server`), so the checks can be driven in-process.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use evac_protocol::TownId;
use serde::{Deserialize, Serialize};

use super::code::AnswerCodeKey;
use super::limits::{Admit, Limits, Peer, Rates};
use crate::store::{AnswerStore, StoredAnswer};

/// The most people one "need help here" answer may name.
pub const MAX_PEOPLE: u32 = 99;

/// What a household answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// Evacuated elsewhere (a relative's, a car, another town).
    EvacuatedElsewhere,
    /// Safe at home.
    SafeAtHome,
    /// Need help here, with how many people.
    NeedHelp,
    /// Reached the shelter.
    AtShelter,
}

impl AnswerKind {
    /// The name kept in the store and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::EvacuatedElsewhere => "evacuated_elsewhere",
            AnswerKind::SafeAtHome => "safe_at_home",
            AnswerKind::NeedHelp => "need_help",
            AnswerKind::AtShelter => "at_shelter",
        }
    }
}

/// The body of `POST /answer` (JSON).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// The town (as on the air).
    pub town: String,
    /// The household number on the registration letter.
    pub household: u32,
    /// The answer code on the registration letter.
    pub code: String,
    /// The answer.
    pub answer: AnswerKind,
    /// How many people need help (only with `need_help`, 1 to [`MAX_PEOPLE`]).
    #[serde(default)]
    pub people: Option<u32>,
}

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerVerdict {
    /// Stored, durably; `needs_confirmation` when its household had too many wrong codes.
    Accepted {
        /// Whether an officer must confirm it.
        needs_confirmation: bool,
    },
    /// A wrong code, or a household not of this town: the same refusal for both.
    Refused,
    /// Its source sent too many answers (or wrong codes).
    SourceLimited,
    /// Its household was sent too many answers.
    HouseholdLimited,
    /// Not an answer (what is wrong, for the reply).
    Malformed(&'static str),
    /// It could not be stored.
    Unavailable,
}

/// Counts since HQ started.
#[derive(Debug, Default)]
pub struct Counts {
    /// Answers stored.
    pub accepted: AtomicU64,
    /// Wrong codes and households not in the town.
    pub refused: AtomicU64,
    /// Refused by a rate limit.
    pub limited: AtomicU64,
    /// Not an answer.
    pub malformed: AtomicU64,
    /// Could not be stored.
    pub unavailable: AtomicU64,
}

/// The answer desk: the town's households, the code key, the limits and the store.
pub struct Desk {
    town: TownId,
    households: HashSet<u32>,
    key: AnswerCodeKey,
    limits: Mutex<Limits>,
    store: Arc<Mutex<AnswerStore>>,
    /// Counts since start.
    pub counts: Counts,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks panics; a poisoned one still holds consistent counts.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Desk {
    /// A desk for `town`'s `households`, flags read back from `store`.
    pub fn new(
        town: TownId,
        households: impl IntoIterator<Item = u32>,
        key: AnswerCodeKey,
        rates: Rates,
        store: AnswerStore,
    ) -> Result<Desk, crate::error::HqError> {
        let flagged = store.flagged()?;
        Ok(Desk {
            town,
            households: households.into_iter().collect(),
            key,
            limits: Mutex::new(Limits::new(rates, flagged)),
            store: Arc::new(Mutex::new(store)),
            counts: Counts::default(),
        })
    }

    /// Wrong codes counted for a household since start (and before, once flagged).
    pub fn household_failures(&self, household: u32) -> u32 {
        lock(&self.limits).household_failures(household)
    }

    /// Wrong codes counted for the source of `ip`.
    pub fn source_failures(&self, ip: IpAddr) -> u64 {
        lock(&self.limits).source_failures(Peer::of(ip))
    }

    /// Takes one answer from `ip`: `body` is the request's JSON.
    pub async fn take(&self, ip: IpAddr, body: &[u8]) -> AnswerVerdict {
        self.take_with(ip, || {
            serde_json::from_slice(body).map_err(|_| "not an answer: see hq/README.md")
        })
        .await
    }

    /// Takes one answer from `ip`, read by `parse` (JSON, a TV's form) once the source is
    /// admitted: the same limits, checks and store whatever the form.
    pub async fn take_with(
        &self,
        ip: IpAddr,
        parse: impl FnOnce() -> Result<AnswerRequest, &'static str>,
    ) -> AnswerVerdict {
        let outcome = self.decide(ip, parse).await;
        let c = &self.counts;
        let counter = match outcome {
            AnswerVerdict::Accepted { .. } => &c.accepted,
            AnswerVerdict::Refused => &c.refused,
            AnswerVerdict::SourceLimited | AnswerVerdict::HouseholdLimited => &c.limited,
            AnswerVerdict::Malformed(_) => &c.malformed,
            AnswerVerdict::Unavailable => &c.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    async fn decide(
        &self,
        ip: IpAddr,
        parse: impl FnOnce() -> Result<AnswerRequest, &'static str>,
    ) -> AnswerVerdict {
        let peer = Peer::of(ip);
        if lock(&self.limits).admit_source(peer, Instant::now()) != Admit::Yes {
            return AnswerVerdict::SourceLimited;
        }
        let req = match parse() {
            Ok(r) => r,
            Err(why) => return AnswerVerdict::Malformed(why),
        };
        let people = match (req.answer, req.people) {
            (AnswerKind::NeedHelp, Some(n)) if (1..=MAX_PEOPLE).contains(&n) => Some(n),
            (AnswerKind::NeedHelp, _) => return AnswerVerdict::Malformed("people: 1 to 99"),
            (_, None) => None,
            (_, Some(_)) => return AnswerVerdict::Malformed("people only with need_help"),
        };
        // The code is checked even for a household not of this town, so both refusals take
        // the same time.
        let right = self.key.check(&self.town, req.household, &req.code);
        if req.town != self.town.as_str() || !self.households.contains(&req.household) {
            lock(&self.limits).source_failed(peer, Instant::now());
            tracing::debug!(source = ?peer, "answer for a household not of this town refused");
            return AnswerVerdict::Refused;
        }
        // A household's own rate counts its answers, not wrong codes sent in its name: an
        // attacker must not silence a household by guessing for it (each wrong code costs
        // its source instead, and counts towards the household's flag).
        let (needs_confirmation, newly_flagged) = {
            let mut l = lock(&self.limits);
            let now = Instant::now();
            if right {
                if l.admit_household(req.household, now) != Admit::Yes {
                    return AnswerVerdict::HouseholdLimited;
                }
                (l.flagged(req.household), None)
            } else {
                l.source_failed(peer, now);
                (false, l.household_failed(req.household, now))
            }
        };
        if !right {
            tracing::debug!(
                household = req.household,
                source = ?peer,
                "answer with a wrong code refused"
            );
            if let Some(failures) = newly_flagged {
                tracing::warn!(
                    household = req.household,
                    failures,
                    "household's answers need an officer's confirmation from now on"
                );
                let (h, at) = (req.household, crate::service::now_ms());
                let _ = self
                    .blocking(move |s| s.flag(h, failures, at))
                    .await
                    .map_err(|e| tracing::error!(error = %e, "cannot keep the household's flag"));
            }
            return AnswerVerdict::Refused;
        }
        let answer = StoredAnswer {
            household: req.household,
            kind: req.answer.as_str().into(),
            people,
            received_ms: crate::service::now_ms(),
            source: peer_text(peer),
            needs_confirmation,
        };
        match self.blocking(move |s| s.record(&answer)).await {
            Ok(()) => AnswerVerdict::Accepted { needs_confirmation },
            Err(e) => {
                tracing::error!(error = %e, "cannot store an answer");
                AnswerVerdict::Unavailable
            }
        }
    }

    /// Runs a store write off the async threads.
    async fn blocking(
        &self,
        f: impl FnOnce(&mut AnswerStore) -> Result<(), crate::error::HqError> + Send + 'static,
    ) -> Result<(), crate::error::HqError> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || f(&mut lock(&store))).await {
            Ok(r) => r,
            Err(e) => Err(crate::error::HqError::Io {
                path: "answers".into(),
                action: "write",
                cause: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

fn peer_text(p: Peer) -> String {
    match p {
        Peer::V4(a) => std::net::Ipv4Addr::from(a).to_string(),
        Peer::V6(prefix) => {
            let mut full = [0u8; 16];
            full[..8].copy_from_slice(&prefix);
            format!("{}/64", std::net::Ipv6Addr::from(full))
        }
        Peer::Overflow => "overflow".into(),
    }
}
