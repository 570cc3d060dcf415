//! A node's tap pipeline: read the card, check the certificate, let the door decide, commit
//! to the ledger, and describe the result (for the kiosk and the JSON lines of `run`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use evac_protocol::{Assurance, CheckEvent, EventKind, Flag, HouseholdId, ResidentId, SecretKey};
use serde::Serialize;
use time::OffsetDateTime;

use crate::card::CardChannel;
use crate::cert::{TrustStore, verify_challenge};
use crate::door::{Decision, Door, TapInput};
use crate::jpki::{JpkiError, StrongResult, read_card};
use crate::ledger::{Ledger, LedgerError};

/// Result of one tap or staff entry, as printed on stdout by `run` (one JSON line).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TapReport {
    /// `recorded`, `repeat` (same tap inside the debounce window), `refused` (staff entry
    /// naming nobody) or `error` (card pulled, not a JPKI card: nothing recorded).
    pub result: &'static str,
    /// The event recorded (or, for a repeat, the event of the first tap) as committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<CheckEvent>,
    /// Sequence number of the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// check-in / check-out / staff-registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventKind>,
    /// The resident's name as registered (kiosk only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Household members present, after this tap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub household_present: Option<usize>,
    /// Household size per the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub household_total: Option<usize>,
    /// PIN tries left after a wrong PIN, or 0 when locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_tries_left: Option<u8>,
    /// A message for people: why nothing was recorded, or what to tell the officer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl TapReport {
    /// A report of a tap that recorded nothing.
    pub fn error_message(message: String) -> Self {
        Self::error(message)
    }

    fn error(message: String) -> Self {
        TapReport {
            result: "error",
            event: None,
            seq: None,
            kind: None,
            name: None,
            household_present: None,
            household_total: None,
            pin_tries_left: None,
            message: Some(message),
        }
    }
}

/// When a tap happens, as two clocks: the wall clock (the event's HLC time, certificate
/// dates) and a monotonic time (the debounce window only). The wall clock may step back or
/// jump a year; the monotonic time never does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapTime {
    /// The wall clock.
    pub wall: SystemTime,
    /// Time since a fixed instant of this process (or of a drill's clock).
    pub mono: Duration,
}

impl TapTime {
    /// The clocks now; `origin` is the instant monotonic times count from. The wall time is
    /// the process's clock (`evac_protocol::time`: the wall clock, or a drill's).
    pub fn now(origin: Instant) -> Self {
        TapTime {
            wall: evac_protocol::time::now_system(),
            mono: origin.elapsed(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The node: ledger, door, trust store and registry replica.
pub struct Node {
    ledger: Ledger,
    door: Door,
    trust: TrustStore,
    present: Arc<AtomicU32>,
    /// Ledger rows whose body could not be read at start-up (left out of presence; sent to
    /// HQ as flagged placeholders).
    pub unreadable_rows: Vec<u64>,
}

impl Node {
    /// Opens the ledger and the registry replica beside it ([`crate::replica::replica_path`];
    /// one that does not open or read is set aside and made anew, and the node starts without
    /// it when even that fails) and rebuilds presence from the ledger.
    pub fn open(
        ledger_path: &std::path::Path,
        shelter: evac_protocol::ShelterId,
        key: SecretKey,
        trust: TrustStore,
        debounce_ms: u64,
    ) -> Result<Self, LedgerError> {
        let ledger = Ledger::open(ledger_path, shelter, key)?;
        // The whole registry a node of before issue 22 kept in its ledger: not read any more.
        if let Err(e) = ledger
            .conn()
            .execute("DELETE FROM meta WHERE key = 'registry'", [])
        {
            tracing::warn!(error = %e, "the old whole registry is left in the ledger");
        }
        let mut door = Door::new(debounce_ms);
        let replica = crate::replica::replica_path(ledger_path);
        if let Some(r) = crate::replica::Replica::open_or_set_aside(&replica)
            .and_then(|_| crate::replica::Replica::open_reader(&replica).ok())
        {
            door.set_replica(r);
        }
        let mut node = Node {
            ledger,
            door,
            trust,
            present: Arc::new(AtomicU32::new(0)),
            unreadable_rows: Vec::new(),
        };
        node.rebuild_presence()?;
        Ok(node)
    }

    /// Serves `town` only: a stored replica of another town is not read (the replicator
    /// takes only this town's registry and starts it afresh).
    pub fn set_town(&mut self, town: evac_protocol::TownId) {
        self.door.set_town(town.clone());
        if self.door.registry().of_another_town() {
            tracing::warn!(town = %town, "stored registry replica is of another town: not read");
        }
    }

    /// The replica in shards changed (the replicator took a manifest, shards or deltas):
    /// presence is resolved with it again.
    pub fn replica_changed(&mut self) {
        self.door.replica_changed();
        self.present
            .store(self.door.present_count(), Ordering::Relaxed);
        self.warn_if_key_differs();
    }

    /// The town's card digest key: cards are found in the registry with it from now on.
    pub fn set_card_key(&mut self, key: evac_protocol::CardDigestKey) {
        self.door.set_card_key(key);
        self.warn_if_key_differs();
    }

    fn warn_if_key_differs(&self) {
        if self.door.registry().key_matches() == Some(false) {
            tracing::error!(
                "card_digest_key is not the key HQ made the registry with: every card reads as \
                 not registered (still let in, flagged); copy the town's card.key from HQ \
                 (evac-hq card-key)"
            );
        }
    }

    /// Derives presence again from the ledger: every readable event in order, except those a
    /// correction of this shelter voided.
    fn rebuild_presence(&mut self) -> Result<(), LedgerError> {
        let path = self.ledger.path().to_owned();
        let (events, bad) = crate::ledger::read_events_lenient(self.ledger.conn(), &path)?;
        self.unreadable_rows = bad;
        let shelter = self.ledger.shelter();
        let voided: std::collections::HashSet<u64> = events
            .iter()
            .filter(|e| e.kind == EventKind::Correction)
            .filter_map(|e| e.corrects)
            .filter(|c| c.shelter == shelter)
            .map(|c| c.seq)
            .collect();
        self.door.clear_presence();
        for e in events.iter().filter(|e| !voided.contains(&e.id.seq)) {
            self.door.apply(e);
        }
        self.present
            .store(self.door.present_count(), Ordering::Relaxed);
        Ok(())
    }

    /// Staff undo a wrong tap: a correction event naming event `seq` of this shelter, with
    /// their reason, is recorded (and replicated: HQ voids the event too); presence here is
    /// derived again without it.
    pub fn correct(&mut self, seq: u64, reason: &str, now: TapTime) -> TapReport {
        let target = match self.ledger.events_range(seq) {
            Ok(Some(e)) => e,
            _ => return TapReport::error(format!("no event {seq} in this shelter's ledger")),
        };
        if target.kind == EventKind::Correction {
            return TapReport::error(format!("event {seq} is itself a correction"));
        }
        if reason.len() > evac_protocol::MAX_NOTE_BYTES {
            return TapReport::error(format!(
                "the reason is {} bytes, at most {} (about {} characters of Japanese): say it \
                 shorter",
                reason.len(),
                evac_protocol::MAX_NOTE_BYTES,
                evac_protocol::MAX_NOTE_BYTES / 3
            ));
        }
        let already = self.ledger.events().ok().is_some_and(|ev| {
            ev.iter()
                .any(|e| e.kind == EventKind::Correction && e.corrects == Some(target.id))
        });
        if already {
            return TapReport::error(format!("event {seq} is already corrected"));
        }
        let draft = crate::door::EventDraft {
            kind: EventKind::Correction,
            card: None,
            resident: target.resident,
            household: target.household,
            assurance: Assurance::Staff,
            flags: vec![],
            day_only: false,
        };
        let event = match self.ledger.append_with(
            &draft,
            unix_ms(now.wall),
            Some(target.id),
            Some(reason.to_owned()),
        ) {
            Ok(e) => e,
            Err(e) => return TapReport::error(format!("not recorded: {e}")),
        };
        if let Err(e) = self.rebuild_presence() {
            tracing::error!(error = %e, "cannot derive presence again after a correction");
        }
        tracing::info!(seq = event.id.seq, corrects = seq, "correction recorded");
        let presence = target
            .household
            .and_then(|h| self.door.household_presence(h));
        TapReport {
            result: "recorded",
            seq: Some(event.id.seq),
            kind: Some(event.kind),
            name: None,
            household_present: presence.map(|p| p.0),
            household_total: presence.map(|p| p.1),
            pin_tries_left: None,
            message: Some(format!("event {seq} corrected: {reason}")),
            event: Some(event),
        }
    }

    /// The door (presence and registry).
    pub fn door(&self) -> &Door {
        &self.door
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// A shared count of people present, for the state messages.
    pub fn present_counter(&self) -> Arc<AtomicU32> {
        self.present.clone()
    }

    /// One card tap: read (with the PIN if given), check, decide, commit.
    pub fn tap_card<C: CardChannel + ?Sized>(
        &mut self,
        ch: &mut C,
        pin: Option<&str>,
        day_only: bool,
        now: TapTime,
    ) -> TapReport {
        let mut challenge = [0u8; 32];
        if getrandom::fill(&mut challenge).is_err() {
            return TapReport::error("no randomness for the card challenge".into());
        }
        let read = match read_card(ch, pin, &challenge) {
            Ok(r) => r,
            Err(e @ JpkiError::Card(_)) => return TapReport::error(e.to_string()),
            Err(e) => return TapReport::error(format!("card not read: {e}")),
        };
        let at = OffsetDateTime::from(now.wall);
        let report = self.trust.check(&read.certificate, at);
        let mut flags = report.reasons.clone();
        let mut assurance = if report.valid {
            Assurance::CardRead
        } else {
            Assurance::Unverified
        };
        let mut pin_tries_left = None;
        match &read.strong {
            StrongResult::NotAsked => {}
            StrongResult::WrongPin(n) => pin_tries_left = Some(*n),
            StrongResult::Locked => pin_tries_left = Some(0),
            StrongResult::Signed {
                challenge,
                signature,
            } => {
                let ok = report
                    .public_key
                    .as_deref()
                    .is_some_and(|k| verify_challenge(k, challenge, signature));
                if !ok {
                    flags.push(Flag::CardSignatureFailed);
                    assurance = Assurance::Unverified;
                } else if report.valid {
                    assurance = Assurance::CardSigned;
                }
            }
        }
        let Some(card) = report.card.clone() else {
            // Garbage certificate: still a check-in, keyed by a hash of what was read.
            use rsa::sha2::{Digest, Sha256};
            let card = evac_protocol::CardRef {
                issuer_key_id: vec![],
                serial: Sha256::digest(&read.certificate)[..16].to_vec(),
            };
            let mut tap = TapInput::card(card, Assurance::Unverified, flags);
            tap.day_only = day_only;
            return self.record(&tap, now, pin_tries_left);
        };
        let mut tap = TapInput::card(card, assurance, flags);
        tap.day_only = day_only;
        self.record(&tap, now, pin_tries_left)
    }

    /// A staff entry for a walk-in without a card.
    pub fn staff(
        &mut self,
        household: HouseholdId,
        resident: ResidentId,
        day_only: bool,
        now: TapTime,
    ) -> TapReport {
        let mut tap = TapInput::staff(household, resident);
        tap.day_only = day_only;
        self.record(&tap, now, None)
    }

    fn record(&mut self, tap: &TapInput, now: TapTime, pin_tries_left: Option<u8>) -> TapReport {
        let now_ms = unix_ms(now.wall);
        let (event, result) = match self.door.decide(tap, now.mono) {
            Decision::Refused(why) => {
                let mut r = TapReport::error(why);
                r.result = "refused";
                return r;
            }
            Decision::Repeat { seq, .. } => {
                let event = self.ledger.events_range(seq).ok().flatten();
                (event, "repeat")
            }
            Decision::Record(draft) => match self.ledger.append(&draft, now_ms) {
                Ok(e) => {
                    self.door.apply(&e);
                    self.door.tapped(&e, now.mono);
                    self.present
                        .store(self.door.present_count(), Ordering::Relaxed);
                    tracing::info!(seq = e.id.seq, kind = ?e.kind, assurance = ?e.assurance, flags = e.flags.len(), "event recorded");
                    (Some(e), "recorded")
                }
                Err(e) => return TapReport::error(format!("not recorded: {e}")),
            },
        };
        let resident = event.as_ref().and_then(|e| e.resident);
        let household = event.as_ref().and_then(|e| e.household);
        let presence = household.and_then(|h| self.door.household_presence(h));
        TapReport {
            result,
            seq: event.as_ref().map(|e| e.id.seq),
            kind: event.as_ref().map(|e| e.kind),
            name: resident
                .and_then(|r| self.door.registry().member(r))
                .map(|m| m.name),
            household_present: presence.map(|p| p.0),
            household_total: presence.map(|p| p.1),
            pin_tries_left,
            message: None,
            event,
        }
    }
}

impl Ledger {
    /// The event with sequence `seq`, if any.
    pub fn events_range(&self, seq: u64) -> Result<Option<CheckEvent>, LedgerError> {
        let body: Option<String> = self
            .conn()
            .query_row("SELECT body FROM events WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .ok();
        Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
    }
}
