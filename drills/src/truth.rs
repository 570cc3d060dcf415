//! The simulator's ground truth: every tap it made and what the shelter recorded, and the
//! comparison with HQ's store, tap for tap.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{DrillError, StepContext};
use serde::Serialize;

/// One recorded tap, as the simulator made it and the shelter answered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tap {
    /// The shelter.
    pub shelter: u32,
    /// The shelter's sequence number for the event.
    pub seq: u64,
    /// The resident the simulator tapped for.
    pub resident: u32,
    /// The household.
    pub household: u32,
    /// `check-in` or `check-out`.
    pub kind: String,
    /// The resident the shelter recorded (from the card or the staff entry).
    pub recorded_resident: Option<u32>,
    /// A card (else a staff entry).
    pub card: bool,
    /// When the simulator tapped, drill ms (the resident's arrival, as scheduled).
    pub sim_ms: u64,
    /// When the drill wrote the tap to the shelter's input, read on the drill's clock.
    pub sent_ms: u64,
    /// The event's time as the shelter stamped it (HLC wall part), drill ms.
    pub event_ms: u64,
}

/// One event row of HQ's store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Shelter.
    pub shelter: u32,
    /// Sequence.
    pub seq: u64,
    /// Kind.
    pub kind: String,
    /// Resident.
    pub resident: Option<u32>,
    /// Event time (drill ms).
    pub wall_ms: u64,
    /// When HQ stored it (drill ms).
    pub received_ms: u64,
}

/// Reads HQ's events (read-only; HQ may be running). A missing store reads as empty.
pub fn hq_events(store: &Path) -> Result<Vec<StoredEvent>, DrillError> {
    if !store.exists() {
        return Ok(vec![]);
    }
    let conn = rusqlite::Connection::open_with_flags(
        store,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_step(|| format!("opening {}", store.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .with_step(|| format!("opening {}", store.display()))?;
    let mut stmt = match conn
        .prepare("SELECT shelter, seq, kind, resident, wall_ms, received_ms FROM events")
    {
        Ok(s) => s,
        // HQ has not made its tables yet.
        Err(_) => return Ok(vec![]),
    };
    let rows = stmt
        .query_map([], |r| {
            Ok(StoredEvent {
                shelter: r.get::<_, i64>(0)? as u32,
                seq: r.get::<_, i64>(1)? as u64,
                kind: r.get(2)?,
                resident: r.get::<_, Option<i64>>(3)?.map(|v| v as u32),
                wall_ms: r.get::<_, i64>(4)? as u64,
                received_ms: r.get::<_, i64>(5)? as u64,
            })
        })
        .with_step(|| format!("reading HQ's events in {}", store.display()))?;
    rows.collect::<Result<Vec<_>, _>>()
        .with_step(|| format!("reading HQ's events in {}", store.display()))
}

/// How many events HQ's store holds (0 before HQ made its tables).
pub fn hq_count(store: &Path) -> usize {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        store,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return 0;
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
        .map(|n| n as usize)
        .unwrap_or(0)
}

/// HQ against the ground truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// Taps the simulator made that HQ does not hold (or holds as something else).
    pub lost: usize,
    /// Events HQ holds that no tap made, or holds more than once.
    pub duplicated: usize,
    /// Taps HQ holds exactly as made.
    pub matched: usize,
    /// Up to 20 differences, for the report.
    pub examples: Vec<String>,
}

/// Compares HQ's events with the taps, keyed by (shelter, seq).
pub fn compare(truth: &[Tap], hq: &[StoredEvent]) -> Comparison {
    let mut c = Comparison::default();
    let mut at_hq: HashMap<(u32, u64), Vec<&StoredEvent>> = HashMap::new();
    for e in hq {
        at_hq.entry((e.shelter, e.seq)).or_default().push(e);
    }
    let mut made: BTreeMap<(u32, u64), &Tap> = BTreeMap::new();
    for t in truth {
        if made.insert((t.shelter, t.seq), t).is_some() {
            c.examples.push(format!(
                "shelter {} seq {} answered twice",
                t.shelter, t.seq
            ));
        }
    }
    for (k, t) in &made {
        match at_hq.get(k).map(Vec::as_slice) {
            Some([e]) if e.kind == t.kind && e.resident == t.recorded_resident => c.matched += 1,
            Some([e, ..]) if e.kind == t.kind && e.resident == t.recorded_resident => {
                c.matched += 1;
            }
            other => {
                c.lost += 1;
                if c.examples.len() < 20 {
                    c.examples.push(format!(
                        "shelter {} seq {} ({} of resident {}): HQ has {:?}",
                        k.0,
                        k.1,
                        t.kind,
                        t.resident,
                        other.map(|v| v.iter().map(|e| (&e.kind, e.resident)).collect::<Vec<_>>())
                    ));
                }
            }
        }
    }
    for (k, v) in &at_hq {
        let extra = if made.contains_key(k) {
            v.len() - 1
        } else {
            v.len()
        };
        if extra > 0 {
            c.duplicated += extra;
            if c.examples.len() < 20 {
                c.examples.push(format!(
                    "shelter {} seq {}: {extra} event(s) no tap made",
                    k.0, k.1
                ));
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(shelter: u32, seq: u64, resident: u32, kind: &str) -> Tap {
        Tap {
            shelter,
            seq,
            resident,
            household: 1,
            kind: kind.into(),
            recorded_resident: Some(resident),
            card: true,
            sim_ms: seq,
            sent_ms: seq,
            event_ms: seq,
        }
    }

    fn ev(t: &Tap) -> StoredEvent {
        StoredEvent {
            shelter: t.shelter,
            seq: t.seq,
            kind: t.kind.clone(),
            resident: t.recorded_resident,
            wall_ms: t.event_ms,
            received_ms: t.event_ms + 5,
        }
    }

    #[test]
    fn equal_sets_match_and_differences_count() {
        let truth = vec![
            tap(1, 1, 10, "check-in"),
            tap(1, 2, 11, "check-in"),
            tap(2, 1, 12, "check-in"),
        ];
        let hq: Vec<_> = truth.iter().map(ev).collect();
        let c = compare(&truth, &hq);
        assert_eq!((c.lost, c.duplicated, c.matched), (0, 0, 3));

        let c = compare(&truth, &hq[..2]);
        assert_eq!((c.lost, c.duplicated), (1, 0));

        let mut more = hq.clone();
        more.push(StoredEvent {
            seq: 3,
            ..hq[0].clone()
        });
        let c = compare(&truth, &more);
        assert_eq!(c.lost, 0);
        assert!(c.duplicated >= 1, "{c:?}");

        let mut wrong = hq.clone();
        wrong[1].resident = Some(99);
        let c = compare(&truth, &wrong);
        assert_eq!(c.lost, 1);
    }
}
