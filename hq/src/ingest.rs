//! Checking a shelter's event batch before anything of it is stored: the batch must come on
//! the shelter's own topic, and each event must be signed by that shelter's key, name that
//! shelter as signer and carry an id of that shelter; a correction may only name an event of
//! that shelter (a shelter's key speaks only for that shelter). No I/O here.
//!
//! Checking needs only the keys, so [`Checker`] does it on a thread of its own: the signatures
//! of the next batch are checked while the store commits this one.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use evac_protocol::{
    CheckEvent, EventBatch, EventId, ShelterId, SignError, Signed, shelter_signer,
};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::keys::KeyRing;
use crate::verify;

/// The outcome of checking one batch; owns the accepted events.
#[derive(Debug, Default)]
pub struct Checked {
    /// Events that passed every check, with their envelopes.
    pub accepted: Vec<(Signed<CheckEvent>, CheckEvent)>,
    /// Why each refused event (or the whole batch) was refused.
    pub rejected: Vec<Rejection>,
}

/// Why HQ refused an event batch or one event of it. The text is what the rejection log and
/// the shelter's answer say; what came from outside is cut short in it.
#[derive(Debug, Error)]
pub enum Rejection {
    /// The payload is not an event batch.
    #[error("malformed event batch: {0}")]
    Malformed(serde_json::Error),
    /// A protocol version HQ does not speak.
    #[error("unsupported protocol version {0}")]
    Version(u32),
    /// The batch names another shelter than its topic.
    #[error("batch names shelter {named} on shelter {topic}'s topic")]
    WrongShelter {
        /// The shelter the batch names.
        named: ShelterId,
        /// The shelter of the topic.
        topic: ShelterId,
    },
    /// HQ holds no key for the topic's shelter.
    #[error("no key configured for shelter {0}")]
    NoKey(ShelterId),
    /// An event signed as someone else than the topic's shelter (the name cut to 64 bytes).
    #[error("event signed as {signer:?} on shelter {topic}'s topic")]
    Signer {
        /// Who it says signed it.
        signer: String,
        /// The shelter of the topic.
        topic: ShelterId,
    },
    /// An event with fields too large to store.
    #[error("event {event}: {what}")]
    Oversized {
        /// The event.
        event: EventId,
        /// Which field, how large.
        what: String,
    },
    /// A correction of another shelter's event.
    #[error("event {event} corrects another shelter's event {corrects}")]
    ForeignCorrection {
        /// The correction.
        event: EventId,
        /// The event it names.
        corrects: EventId,
    },
    /// An event whose id names another shelter than its topic.
    #[error("event {event} on shelter {topic}'s topic")]
    ForeignEvent {
        /// The event.
        event: EventId,
        /// The shelter of the topic.
        topic: ShelterId,
    },
    /// A signature that does not verify, or a body that does not decode.
    #[error("event from shelter {topic}: {source}")]
    Signature {
        /// The shelter of the topic.
        topic: ShelterId,
        /// What failed.
        source: SignError,
    },
}

/// The longest staff note HQ stores (bytes): the bound shelters keep when it is typed.
pub const MAX_NOTE: usize = evac_protocol::MAX_NOTE_BYTES;
/// The longest card issuer key id or serial HQ stores (bytes; real ones are 20 or fewer).
pub const MAX_CARD_FIELD: usize = 64;
/// The most flags on one event (there are fewer than 16 kinds).
pub const MAX_FLAGS: usize = 32;

/// Why an event's fields are too large to store, if they are.
pub fn oversized(e: &CheckEvent) -> Option<String> {
    if let Some(n) = e.note.as_ref().filter(|n| n.len() > MAX_NOTE) {
        return Some(format!("note of {} bytes (at most {MAX_NOTE})", n.len()));
    }
    if let Some(c) = e
        .card
        .as_ref()
        .filter(|c| c.serial.len() > MAX_CARD_FIELD || c.issuer_key_id.len() > MAX_CARD_FIELD)
    {
        return Some(format!(
            "card reference of {}+{} bytes (at most {MAX_CARD_FIELD} each)",
            c.issuer_key_id.len(),
            c.serial.len()
        ));
    }
    (e.flags.len() > MAX_FLAGS).then(|| format!("{} flags (at most {MAX_FLAGS})", e.flags.len()))
}

/// Parses a batch from an MQTT payload.
pub fn parse_batch(payload: &[u8]) -> Result<EventBatch, Rejection> {
    let batch: EventBatch = serde_json::from_slice(payload).map_err(Rejection::Malformed)?;
    if batch.v != evac_protocol::PROTOCOL_VERSION {
        return Err(Rejection::Version(batch.v));
    }
    Ok(batch)
}

/// Parses and checks a payload that arrived on `.../shelter/{topic_shelter}/events`; a payload
/// that does not parse is one rejection.
pub fn check_payload(topic_shelter: ShelterId, payload: &[u8], keys: &KeyRing) -> Checked {
    match parse_batch(payload) {
        Ok(batch) => check(topic_shelter, batch, keys),
        Err(reason) => Checked {
            accepted: vec![],
            rejected: vec![reason],
        },
    }
}

/// Checks a batch that arrived on `.../shelter/{topic_shelter}/events`.
pub fn check(topic_shelter: ShelterId, batch: EventBatch, keys: &KeyRing) -> Checked {
    let mut out = Checked::default();
    if batch.shelter != topic_shelter {
        out.rejected.push(Rejection::WrongShelter {
            named: batch.shelter,
            topic: topic_shelter,
        });
        return out;
    }
    let Some(key) = keys.shelter(topic_shelter) else {
        out.rejected.push(Rejection::NoKey(topic_shelter));
        return out;
    };
    let signer = shelter_signer(topic_shelter);
    let mut candidates: Vec<Signed<CheckEvent>> = Vec::with_capacity(batch.events.len());
    for env in batch.events {
        if env.signer == signer {
            candidates.push(env);
        } else {
            out.rejected.push(Rejection::Signer {
                signer: crate::rejections::cut(&env.signer, 64),
                topic: topic_shelter,
            });
        }
    }
    // One batch verification for the common case; one by one only to find the culprits.
    let refs: Vec<&Signed<CheckEvent>> = candidates.iter().collect();
    let all_good = verify::all_signed_by(key, &refs);
    for env in candidates {
        let body = if all_good {
            env.body_unverified()
        } else {
            env.open(key)
        };
        let event = match body {
            Ok(event) => event,
            Err(source) => {
                out.rejected.push(Rejection::Signature {
                    topic: topic_shelter,
                    source,
                });
                continue;
            }
        };
        if let Some(what) = oversized(&event) {
            out.rejected.push(Rejection::Oversized {
                event: event.id,
                what,
            });
        } else if let Some(c) = event.corrects.filter(|c| c.shelter != topic_shelter) {
            out.rejected.push(Rejection::ForeignCorrection {
                event: event.id,
                corrects: c,
            });
        } else if event.id.shelter == topic_shelter {
            out.accepted.push((env, event));
        } else {
            out.rejected.push(Rejection::ForeignEvent {
                event: event.id,
                topic: topic_shelter,
            });
        }
    }
    out
}

/// Checks event payloads on a thread of its own and hands back every item, checked, in the
/// order it was submitted. An item is a tag (what the caller needs afterwards, e.g. the MQTT
/// packet to acknowledge) with an optional payload to check; items without one pass through,
/// so messages of other topics keep their place in the order.
pub struct Checker<T> {
    jobs: Option<std_mpsc::SyncSender<Job<T>>>,
    thread: Option<JoinHandle<()>>,
    keys: Arc<RwLock<KeyRing>>,
}

/// An item submitted to [`Checker`].
type Job<T> = (T, Option<(ShelterId, Vec<u8>)>);

/// An item handed back by [`Checker`]: the tag and, for a payload, its shelter and outcome.
pub type CheckedItem<T> = (T, Option<(ShelterId, Checked)>);

impl<T: Send + 'static> Checker<T> {
    /// Starts the thread; checked items arrive on the returned receiver. At most `capacity`
    /// items wait to be checked and at most `capacity` checked ones wait to be taken: a
    /// caller that keeps no more than `capacity` items in flight (submitted, not yet taken
    /// back) never blocks, and a flood is held back at the broker, not in HQ's memory.
    pub fn start(keys: KeyRing, capacity: usize) -> (Checker<T>, mpsc::Receiver<CheckedItem<T>>) {
        let capacity = capacity.max(1);
        let (jobs, rx) = std_mpsc::sync_channel::<Job<T>>(capacity);
        let (tx, done) = mpsc::channel(capacity);
        let keys = Arc::new(RwLock::new(keys));
        let shared = keys.clone();
        let thread = std::thread::spawn(move || {
            for (tag, job) in rx {
                let checked = job.map(|(s, p)| {
                    let keys = shared.read().unwrap_or_else(|e| e.into_inner());
                    (s, check_payload(s, &p, &keys))
                });
                if tx.blocking_send((tag, checked)).is_err() {
                    return;
                }
            }
        });
        let checker = Checker {
            jobs: Some(jobs),
            thread: Some(thread),
            keys,
        };
        (checker, done)
    }

    /// Replaces the keys; every item submitted after this is checked with them.
    pub fn set_keys(&self, keys: KeyRing) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// Queues an item without waiting; `false` if the queue is full (the caller kept more
    /// than `capacity` in flight) or the thread is gone.
    pub fn submit(&self, tag: T, payload: Option<(ShelterId, Vec<u8>)>) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|j| j.try_send((tag, payload)).is_ok())
    }
}

impl<T> Drop for Checker<T> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::{EventId, EventKind, SecretKey};

    fn ev(shelter: u32, seq: u64) -> CheckEvent {
        CheckEvent::new(ShelterId(shelter), seq, seq, EventKind::CheckIn)
    }

    fn ring() -> (KeyRing, SecretKey, SecretKey) {
        let a = SecretKey::from_seed(&[1; 32]);
        let b = SecretKey::from_seed(&[2; 32]);
        let mut ring = KeyRing::default();
        ring.add_shelter(ShelterId(1), a.public());
        ring.add_shelter(ShelterId(2), b.public());
        (ring, a, b)
    }

    #[test]
    fn good_batch_passes() {
        let (ring, a, _) = ring();
        let batch = EventBatch::new(
            ShelterId(1),
            (1..=3)
                .map(|s| a.sign(&shelter_signer(ShelterId(1)), &ev(1, s)).unwrap())
                .collect(),
        );
        let c = check(ShelterId(1), batch, &ring);
        assert_eq!(c.accepted.len(), 3);
        assert!(c.rejected.is_empty());
    }

    #[test]
    fn shelter_a_cannot_pose_as_b() {
        let (ring, a, _) = ring();
        // A signs events claiming to be B's, with B's signer name, on B's topic.
        let batch = EventBatch::new(
            ShelterId(2),
            vec![a.sign(&shelter_signer(ShelterId(2)), &ev(2, 1)).unwrap()],
        );
        let c = check(ShelterId(2), batch, &ring);
        assert!(c.accepted.is_empty());
        assert_eq!(c.rejected.len(), 1);
        // A's own valid batch, replayed on B's topic.
        let batch = EventBatch::new(
            ShelterId(1),
            vec![a.sign(&shelter_signer(ShelterId(1)), &ev(1, 1)).unwrap()],
        );
        assert!(check(ShelterId(2), batch, &ring).accepted.is_empty());
        // A signs an event of B's numbering on its own topic.
        let batch = EventBatch::new(
            ShelterId(1),
            vec![a.sign(&shelter_signer(ShelterId(1)), &ev(2, 7)).unwrap()],
        );
        let c = check(ShelterId(1), batch, &ring);
        assert!(
            c.accepted.is_empty()
                && matches!(c.rejected[0], Rejection::ForeignEvent { event, .. } if event.to_string() == "2:7"),
            "{:?}",
            c.rejected
        );
    }

    #[test]
    fn a_correction_of_another_shelters_event_is_refused() {
        let (ring, a, _) = ring();
        let mut own = ev(1, 2);
        own.kind = EventKind::Correction;
        own.corrects = Some(EventId {
            shelter: ShelterId(1),
            seq: 1,
        });
        let mut foreign = ev(1, 3);
        foreign.kind = EventKind::Correction;
        foreign.corrects = Some(EventId {
            shelter: ShelterId(2),
            seq: 1,
        });
        let batch = EventBatch::new(
            ShelterId(1),
            [own, foreign]
                .iter()
                .map(|e| a.sign(&shelter_signer(ShelterId(1)), e).unwrap())
                .collect(),
        );
        let c = check(ShelterId(1), batch, &ring);
        assert_eq!(
            c.accepted.iter().map(|(_, e)| e.id.seq).collect::<Vec<_>>(),
            [2]
        );
        assert!(
            c.rejected[0]
                .to_string()
                .contains("another shelter's event 2:1"),
            "{:?}",
            c.rejected
        );
    }

    #[test]
    fn oversized_fields_and_signers_are_refused_briefly() {
        let (ring, a, _) = ring();
        let mut big_note = ev(1, 1);
        big_note.note = Some("x".repeat(MAX_NOTE + 1));
        let mut big_card = ev(1, 2);
        big_card.card = Some(evac_protocol::CardRef {
            issuer_key_id: vec![1; 20],
            serial: vec![7; 1 << 16],
        });
        let mut events: Vec<_> = [big_note, big_card, ev(1, 3)]
            .iter()
            .map(|e| a.sign(&shelter_signer(ShelterId(1)), e).unwrap())
            .collect();
        let mut huge_signer = a.sign(&shelter_signer(ShelterId(1)), &ev(1, 4)).unwrap();
        huge_signer.signer = "s".repeat(1 << 20);
        events.push(huge_signer);
        let c = check(ShelterId(1), EventBatch::new(ShelterId(1), events), &ring);
        assert_eq!(
            c.accepted.iter().map(|(_, e)| e.id.seq).collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(c.rejected.len(), 3, "{:?}", c.rejected);
        assert!(
            c.rejected.iter().all(|r| r.to_string().len() < 400),
            "reasons stay short"
        );
    }

    #[test]
    fn one_forged_event_spoils_only_itself() {
        let (ring, a, b) = ring();
        let mut events: Vec<_> = (1..=3)
            .map(|s| a.sign(&shelter_signer(ShelterId(1)), &ev(1, s)).unwrap())
            .collect();
        events[1] = b.sign(&shelter_signer(ShelterId(1)), &ev(1, 2)).unwrap();
        let batch = EventBatch::new(ShelterId(1), events);
        let c = check(ShelterId(1), batch, &ring);
        assert_eq!(
            c.accepted.iter().map(|(_, e)| e.id.seq).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(c.rejected.len(), 1);
    }

    /// Regression (issue 13, item 9): the checker's channels were unbounded, so a flood on
    /// the shelters' topics grew HQ's memory without limit.
    #[test]
    fn checker_queues_are_bounded() {
        let (ring, _, _) = ring();
        let (checker, mut done) = Checker::start(ring, 4);
        let taken: Vec<u64> = (0..100u64).filter(|i| checker.submit(*i, None)).collect();
        // 4 waiting to be checked, 4 checked waiting to be taken, one in the thread's hands.
        assert!(taken.len() <= 9, "{} items queued", taken.len());
        assert!(taken.len() >= 4);
        for want in &taken {
            assert_eq!(done.blocking_recv().unwrap().0, *want);
        }
        // Room again once drained.
        assert!(checker.submit(100, None));
        assert_eq!(done.blocking_recv().unwrap().0, 100);
    }

    #[test]
    fn checker_keeps_the_order_and_passes_other_items_through() {
        let (ring, a, b) = ring();
        let (checker, mut done) = Checker::start(ring, 20);
        let payload = |key: &SecretKey, seq| {
            let batch = EventBatch::new(
                ShelterId(1),
                vec![
                    key.sign(&shelter_signer(ShelterId(1)), &ev(1, seq))
                        .unwrap(),
                ],
            );
            serde_json::to_vec(&batch).unwrap()
        };
        for i in 0..20u64 {
            let job = match i % 3 {
                0 => None,
                1 => Some((ShelterId(1), payload(&a, i))),
                _ => Some((ShelterId(1), payload(&b, i))),
            };
            assert!(checker.submit(i, job));
        }
        for i in 0..20u64 {
            let (tag, checked) = done.blocking_recv().unwrap();
            assert_eq!(tag, i);
            match (i % 3, checked) {
                (0, None) => {}
                (1, Some((_, c))) => {
                    assert_eq!(c.accepted[0].1.id.seq, i);
                    assert!(c.rejected.is_empty());
                }
                (2, Some((_, c))) => assert!(c.accepted.is_empty() && c.rejected.len() == 1),
                (k, c) => panic!("item {i} ({k}): {c:?}"),
            }
        }
        drop(checker);
        assert!(
            done.blocking_recv().is_none(),
            "the thread ends with the checker"
        );
    }

    proptest::proptest! {
        #[test]
        fn garbage_payloads_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let (ring, _, _) = ring();
            if let Ok(batch) = parse_batch(&bytes) {
                let _ = check(ShelterId(1), batch, &ring);
            }
        }
    }
}
