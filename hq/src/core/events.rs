//! What the shelters send: event batches (checked, stored once, acknowledged after the
//! commit), node states, and the rejections and answers for what fails.

use evac_protocol::{Ack, NodeState, ShelterId, Signed, Topic, shelter_signer};

use crate::error::HqError;
use crate::ingest;
use crate::store::Stored;

use super::*;

impl Hq {
    pub(super) fn reject(&mut self, now_ms: u64, topic: &str, reason: &str) {
        self.reject_all(now_ms, topic, &[reason.to_owned()]);
    }

    /// Counts the rejections of one message; a sample is logged now and stored by the next
    /// [`Hq::tick`] (see [`crate::rejections`]).
    fn reject_all(&mut self, now_ms: u64, topic: &str, reasons: &[String]) {
        if reasons.is_empty() {
            return;
        }
        let kept = self.rejections.message(now_ms, topic, reasons);
        for reason in kept {
            tracing::warn!(topic = %crate::rejections::cut(topic, 200), reason, "rejected");
        }
    }

    /// Stores the rejections kept since the last call, in one transaction.
    pub fn flush_rejections(&mut self, now_ms: u64) {
        let rows = self.rejections.take(now_ms);
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.store.record_rejections(&rows) {
            tracing::error!(error = %e, rows = rows.len(), "cannot record rejections");
        }
    }

    pub(super) fn ack(&self, shelter: ShelterId, now_ms: u64) -> Result<Publication, HqError> {
        self.ack_saying(shelter, now_ms, None)
    }

    fn ack_saying(
        &self,
        shelter: ShelterId,
        now_ms: u64,
        rejected: Option<String>,
    ) -> Result<Publication, HqError> {
        let ack = Ack {
            shelter,
            through_seq: self.store.progress(shelter).through,
            at_ms: now_ms,
            rejected,
        };
        Ok(Publication {
            topic: Topic::ShelterAck(self.town_id.clone(), shelter).to_string(),
            payload: self.sign(&ack)?,
            retain: true,
        })
    }

    /// An event batch on `.../shelter/{shelter}/events`: checks, stores what passes (once),
    /// and returns the shelter's ack, made after the commit.
    pub fn on_events(
        &mut self,
        shelter: ShelterId,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Vec<Publication>, HqError> {
        let checked = ingest::check_payload(shelter, payload, &self.keys);
        self.on_checked(shelter, checked, now_ms)
    }

    /// An event batch of `shelter` already checked by [`ingest::check_payload`] (perhaps on
    /// another thread, see [`ingest::Checker`]): records the rejections, stores the accepted
    /// events and returns the ack, made after the commit.
    pub fn on_checked(
        &mut self,
        shelter: ShelterId,
        checked: ingest::Checked,
        now_ms: u64,
    ) -> Result<Vec<Publication>, HqError> {
        self.on_checked_many(vec![(shelter, checked)], now_ms)
    }

    /// Several checked batches (of one shelter or many) at once: their events are committed
    /// in one transaction, so batches that arrive together cost one fsync, then each shelter
    /// gets its ack. Rejections and answers to batches refused whole are as for one.
    pub fn on_checked_many(
        &mut self,
        batches: Vec<(ShelterId, ingest::Checked)>,
        now_ms: u64,
    ) -> Result<Vec<Publication>, HqError> {
        let mut out = Vec::new();
        let mut accepted = Vec::new();
        for (shelter, checked) in batches {
            let topic = Topic::ShelterEvents(self.town_id.clone(), shelter).to_string();
            let reasons: Vec<String> = checked.rejected.iter().map(ToString::to_string).collect();
            self.reject_all(now_ms, &topic, &reasons);
            if !checked.accepted.is_empty() {
                accepted.push((shelter, checked.accepted));
                continue;
            }
            // A batch rejected whole is answered too, saying why (the first reason), so the
            // shelter knows rather than resending in silence for ever.
            let why = reasons.first().map(|r| {
                let r = crate::rejections::cut(r, 200);
                match reasons.len() - 1 {
                    0 => r,
                    more => format!("{r} (and {more} more)"),
                }
            });
            // At most one answer a second a shelter: a flood of junk costs no signatures.
            let last = self.rejection_answered.entry(shelter).or_insert(0);
            if *last != 0 && now_ms.saturating_sub(*last) < 1_000 {
                continue;
            }
            *last = now_ms.max(1);
            out.push(self.ack_saying(shelter, now_ms, why)?);
        }
        if accepted.is_empty() {
            return Ok(out);
        }
        let pairs: Vec<_> = accepted
            .iter()
            .flat_map(|(_, a)| a.iter().map(|(s, e)| (s, e)))
            .collect();
        let fresh = self.store.insert_events(&pairs, now_ms)?;
        let mut fresh = fresh.into_iter();
        let mut acked: Vec<ShelterId> = Vec::new();
        for (shelter, events) in &accepted {
            for ((_, e), stored) in events.iter().zip(fresh.by_ref()) {
                if stored == Stored::Conflict {
                    self.board.node_mut(*shelter).conflicts += 1;
                    tracing::error!(
                        event = %e.id,
                        "a different event under a number HQ already holds: kept aside in \
                         `conflicts`, not applied (was the shelter's ledger restored or rebuilt?)"
                    );
                }
                if stored == Stored::New {
                    if self.board.apply_received(e, now_ms) {
                        let _ = self.clock.observe(e.at, now_ms);
                    } else {
                        tracing::warn!(
                            event = %e.id,
                            at_ms = e.at.wall_ms,
                            now_ms,
                            "event dated beyond the clock-skew bound: kept and flagged, decides no presence"
                        );
                    }
                }
            }
            let through = self.store.progress(*shelter).through;
            let node = self.board.node_mut(*shelter);
            catch_up(node, None, through, now_ms);
            node.last_seen_ms = Some(now_ms);
            if !acked.contains(shelter) {
                acked.push(*shelter);
            }
        }
        for shelter in acked {
            let p = self.store.progress(shelter);
            tracing::debug!(
                shelter = shelter.0,
                through = p.through,
                missing = p.missing(),
                "events stored"
            );
            out.push(self.ack(shelter, now_ms)?);
        }
        Ok(out)
    }

    /// A node's state on `.../shelter/{shelter}/state`.
    pub fn on_state(&mut self, shelter: ShelterId, payload: &[u8], now_ms: u64) {
        let topic = Topic::ShelterState(self.town_id.clone(), shelter).to_string();
        let Some(key) = self.keys.shelter(shelter) else {
            self.reject(now_ms, &topic, "no key configured for this shelter");
            return;
        };
        let opened = Signed::<NodeState>::from_json(payload).and_then(|s| {
            if s.signer != shelter_signer(shelter) {
                return Err(evac_protocol::SignError::BadSignature);
            }
            s.open(key)
        });
        match opened {
            Ok(st) if st.shelter == shelter => {
                let node = self.board.node_mut(shelter);
                if st.session == node.last.0 && st.seq > node.last.1 + 1 {
                    node.state_gaps += st.seq - node.last.1 - 1;
                }
                // A will from an older session is stale (Sparkplug's bdSeq rule).
                if (st.session, st.seq) >= node.last || (!st.online && st.session >= node.last.0) {
                    node.online = st.online;
                    node.pending = st.pending;
                    node.last = (st.session, st.seq);
                    let through = self.store.progress(shelter).through;
                    let recorded = st.acked_through.saturating_add(st.pending);
                    catch_up(node, Some(recorded), through, now_ms);
                }
                // A last will is the broker speaking for a node that is gone.
                if st.online {
                    node.last_seen_ms = Some(now_ms);
                }
            }
            Ok(_) => self.reject(now_ms, &topic, "state names another shelter"),
            Err(e) => self.reject(now_ms, &topic, &format!("state: {e}")),
        }
    }
}

/// The node's replication lag on HQ's clock only (DESIGN.md, Time: a shelter's HLC stamp is
/// never held against HQ's wall clock, so a shelter clock minutes off moves nothing here).
/// `recorded` is the highest sequence the node says it has recorded (its state: acked plus
/// pending), `through` what HQ has stored contiguously. HQ is behind from the first state
/// that names events it lacks until it has stored them; the lag is how long that has been.
fn catch_up(node: &mut crate::status::NodeInfo, recorded: Option<u64>, through: u64, now_ms: u64) {
    if let Some(r) = recorded.filter(|&r| r > through) {
        let since = node.behind.map_or(now_ms, |(_, since)| since);
        let target = node.behind.map_or(r, |(t, _)| t.max(r));
        node.behind = Some((target, since));
    }
    match node.behind {
        Some((target, since)) => {
            node.lag_ms = Some(now_ms.saturating_sub(since));
            if through >= target {
                node.behind = None;
            }
        }
        None if recorded.is_some() || node.lag_ms.is_none() => node.lag_ms = Some(0),
        None => {}
    }
}
