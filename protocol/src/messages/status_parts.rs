//! A status snapshot too large for one message, in parts (issue 22: no MQTT message over
//! [`crate::MAX_MESSAGE`]).
//!
//! # Design
//!
//! A snapshot whose signed message would pass [`SINGLE_MAX`] is split by [`split`] into parts
//! of about [`PART_BUDGET`] bytes each: first the residents, in consecutive ranges (each part
//! names its range in its packed statuses, and the whole range in `first`/`residents`), then
//! the households' answers, in runs. Every part carries the snapshot's `seq`, `at_ms`, its
//! index and the count of parts, and the town totals; part 0 also carries every shelter. HQ
//! signs each part and retains part `i` on `evac/v1/{town}/status/part/{i}`; deltas stay on
//! `status` and apply to the joined snapshot as to a single one.
//!
//! A reader gathers parts in a [`Joiner`]: only parts of one `seq` (the newest it has seen)
//! are kept, a part of an older `seq` (a retained part left from an earlier snapshot) is
//! dropped, and the snapshot is given once every part of that `seq` is in and agrees with the
//! others (same time, range and count, contiguous ranges). Parts of two snapshots never join.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::OverlayError;
use crate::ids::{ResidentId, TownId};
use crate::messages::status::{
    HouseholdAnswer, PackedStatuses, ShelterStatus, StatusCounts, StatusSnapshot,
};
use crate::sign::Signable;

/// A snapshot whose signed message is larger than this goes out in parts (512 KiB).
pub const SINGLE_MAX: usize = 512 << 10;

/// About how many bytes of residents or answers a part carries (300 KiB: with part 0's
/// shelters and the envelope's base64 a signed part stays near 512 KiB, far under 1 MiB).
pub const PART_BUDGET: usize = 300 << 10;

/// The most parts a snapshot may have (a reader refuses more).
pub const MAX_PARTS: u32 = 1024;

/// One part of a status snapshot, retained on `evac/v1/{town}/status/part/{part}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPart {
    /// The town.
    pub town: TownId,
    /// The snapshot's sequence (as [`StatusSnapshot::seq`]).
    pub seq: u64,
    /// When HQ made the snapshot (Unix ms).
    pub at_ms: u64,
    /// This part's index, from 0.
    pub part: u32,
    /// How many parts the snapshot has.
    pub parts: u32,
    /// The first resident of the whole snapshot.
    pub first: ResidentId,
    /// How many residents the whole snapshot has.
    pub residents: u32,
    /// Town totals.
    pub counts: StatusCounts,
    /// Every shelter (in part 0 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shelters: Vec<ShelterStatus>,
    /// This part's range of residents (possibly none).
    pub statuses: PackedStatuses,
    /// A run of the households' answers (possibly none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<HouseholdAnswer>,
}

impl Signable for StatusPart {
    const KIND: &'static str = "status-part";
}

/// Why parts do not make a snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartError {
    /// The part's index or count is out of bounds.
    #[error("part {part} of {parts}: out of bounds")]
    Bounds {
        /// The index.
        part: u32,
        /// The count.
        parts: u32,
    },
    /// Parts of one sequence disagree (count, time, range, town or contiguity).
    #[error("parts of snapshot {seq} disagree: {what}")]
    Mismatch {
        /// The snapshot's sequence.
        seq: u64,
        /// What disagrees.
        what: &'static str,
    },
    /// A part's statuses do not decode.
    #[error(transparent)]
    Statuses(#[from] OverlayError),
}

fn decode(p: &PackedStatuses) -> Result<Vec<u8>, OverlayError> {
    base64::engine::general_purpose::STANDARD
        .decode(&p.data)
        .map_err(|e| OverlayError::Invalid {
            offset: 0,
            field: "status data",
            detail: format!("not base64: {e}"),
        })
}

/// The byte offsets where each resident's entry starts in packed status bytes, and the end.
fn boundaries(bytes: &[u8], count: u32) -> Result<Vec<usize>, OverlayError> {
    let mut at = Vec::with_capacity(count as usize + 1);
    let mut i = 0;
    for _ in 0..count {
        at.push(i);
        let code = *bytes.get(i).ok_or(OverlayError::Truncated {
            offset: i,
            field: "status code",
        })?;
        i += 1;
        if matches!(code, 3 | 4 | 6 | 7) {
            while bytes.get(i).ok_or(OverlayError::Truncated {
                offset: i,
                field: "shelter",
            })? & 0x80
                != 0
            {
                i += 1;
            }
            i += 1;
        }
    }
    at.push(i);
    Ok(at)
}

/// Splits `snap` into parts of about `budget` bytes of residents or answers each (see the
/// module doc); always at least one part.
pub fn split(snap: &StatusSnapshot, budget: usize) -> Result<Vec<StatusPart>, OverlayError> {
    let budget = budget.max(64);
    let bytes = decode(&snap.residents)?;
    let at = boundaries(&bytes, snap.residents.count)?;
    let raw = budget / 4 * 3; // base64 grows by 4/3
    let mut ranges = Vec::new(); // (first index, count, byte start, byte end)
    let mut start = 0usize;
    for i in 0..snap.residents.count as usize {
        if at[i + 1] - at[start] > raw && i > start {
            ranges.push((start, i - start));
            start = i;
        }
    }
    if start < snap.residents.count as usize || ranges.is_empty() {
        ranges.push((start, snap.residents.count as usize - start));
    }
    let mut runs: Vec<&[HouseholdAnswer]> = Vec::new();
    let (mut from, mut size) = (0usize, 0usize);
    for (i, a) in snap.answers.iter().enumerate() {
        let n = serde_json::to_vec(a).map_or(0, |v| v.len() + 1);
        if size + n > budget && i > from {
            runs.push(&snap.answers[from..i]);
            (from, size) = (i, 0);
        }
        size += n;
    }
    if from < snap.answers.len() {
        runs.push(&snap.answers[from..]);
    }
    let parts = u32::try_from(ranges.len() + runs.len()).unwrap_or(u32::MAX);
    let end = snap.residents.first.0.saturating_add(snap.residents.count);
    let part = |i: usize, statuses, answers: &[HouseholdAnswer]| StatusPart {
        town: snap.town.clone(),
        seq: snap.seq,
        at_ms: snap.at_ms,
        part: i as u32,
        parts,
        first: snap.residents.first,
        residents: snap.residents.count,
        counts: snap.counts.clone(),
        shelters: if i == 0 {
            snap.shelters.clone()
        } else {
            vec![]
        },
        statuses,
        answers: answers.to_vec(),
    };
    let mut out = Vec::with_capacity(parts as usize);
    for &(s, n) in &ranges {
        let statuses = PackedStatuses {
            first: ResidentId(snap.residents.first.0 + s as u32),
            count: n as u32,
            data: base64::engine::general_purpose::STANDARD.encode(&bytes[at[s]..at[s + n]]),
        };
        out.push(part(out.len(), statuses, &[]));
    }
    for run in runs {
        let none = PackedStatuses::pack(ResidentId(end), &[]);
        out.push(part(out.len(), none, run));
    }
    Ok(out)
}

/// Gathers the parts of the newest snapshot seen until every one is in.
#[derive(Clone, Debug, Default)]
pub struct Joiner {
    seq: Option<u64>,
    parts: BTreeMap<u32, StatusPart>,
    /// The last snapshot given: its parts, seen again, are not gathered anew.
    done: Option<u64>,
}

impl Joiner {
    /// A joiner that has seen nothing.
    pub fn new() -> Joiner {
        Joiner::default()
    }

    /// Parts of the snapshot being gathered, and how many it needs.
    pub fn progress(&self) -> (usize, Option<u32>) {
        (
            self.parts.len(),
            self.parts.values().next().map(|p| p.parts),
        )
    }

    /// Takes one part (its signature already checked): the whole snapshot once its set is
    /// complete, `None` while parts are missing or for a part of an older snapshot. A part
    /// that disagrees with the others of its sequence is refused and that sequence dropped.
    pub fn take(&mut self, p: StatusPart) -> Result<Option<StatusSnapshot>, PartError> {
        if p.parts == 0 || p.parts > MAX_PARTS || p.part >= p.parts {
            return Err(PartError::Bounds {
                part: p.part,
                parts: p.parts,
            });
        }
        if self.done.is_some_and(|d| p.seq <= d) || self.seq.is_some_and(|s| p.seq < s) {
            return Ok(None);
        }
        if self.seq != Some(p.seq) {
            self.seq = Some(p.seq);
            self.parts.clear();
        }
        if let Some(other) = self.parts.values().next() {
            let what = if other.parts != p.parts {
                Some("count of parts")
            } else if other.at_ms != p.at_ms {
                Some("time")
            } else if (other.first, other.residents) != (p.first, p.residents) {
                Some("residents' range")
            } else if other.town != p.town {
                Some("town")
            } else {
                None
            };
            if let Some(what) = what {
                let seq = p.seq;
                self.parts.clear();
                return Err(PartError::Mismatch { seq, what });
            }
        }
        let parts = p.parts;
        self.parts.insert(p.part, p);
        if self.parts.len() < parts as usize {
            return Ok(None);
        }
        let taken = std::mem::take(&mut self.parts);
        let joined = join(taken.into_values().collect());
        if joined.is_ok() {
            self.done = self.seq;
        }
        joined.map(Some)
    }
}

/// Joins a complete set of parts of one sequence, in order.
fn join(parts: Vec<StatusPart>) -> Result<StatusSnapshot, PartError> {
    let head = parts
        .first()
        .ok_or(PartError::Bounds { part: 0, parts: 0 })?;
    let seq = head.seq;
    let mismatch = |what| PartError::Mismatch { seq, what };
    let mut bytes = Vec::new();
    let mut next = head.first.0;
    let mut answers = Vec::new();
    for p in &parts {
        if p.statuses.first.0 != next {
            return Err(mismatch("residents not contiguous"));
        }
        let b = decode(&p.statuses)?;
        let at = boundaries(&b, p.statuses.count)?;
        if at.last() != Some(&b.len()) {
            return Err(mismatch("statuses' length"));
        }
        bytes.extend_from_slice(&b);
        next = next
            .checked_add(p.statuses.count)
            .ok_or(mismatch("residents' range"))?;
        answers.extend(p.answers.iter().cloned());
    }
    if u64::from(next) != u64::from(head.first.0) + u64::from(head.residents) {
        return Err(mismatch("residents' count"));
    }
    Ok(StatusSnapshot {
        town: head.town.clone(),
        seq,
        at_ms: head.at_ms,
        counts: head.counts.clone(),
        shelters: head.shelters.clone(),
        residents: PackedStatuses {
            first: head.first,
            count: head.residents,
            data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        },
        answers,
    })
}

#[cfg(test)]
mod tests;
