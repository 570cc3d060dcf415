//! Test fixtures of the prefecture view: two towns with HQ keys on disk, and their signed
//! status snapshots.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::path::Path;

use evac_protocol::{
    HQ_SIGNER, PackedStatuses, ResidentId, ResidentStatus, SecretKey, ShelterId, Slug,
    StatusCounts, StatusMessage, StatusSnapshot,
};

use super::{Prefecture, PrefectureConfig};
use crate::clock::Now;

/// HQ's time of the first snapshot.
pub const NOW: u64 = 1_795_000_000_000;

/// Town `town`'s first snapshot, signed with `key`: 10 residents, `ordered` under order.
pub fn snapshot(town: &str, key: &SecretKey, ordered: usize) -> Vec<u8> {
    snapshot_seq(town, key, ordered, 1)
}

/// Snapshot number `seq`, 62 s of HQ time after the one before.
pub fn snapshot_seq(town: &str, key: &SecretKey, ordered: usize, seq: u64) -> Vec<u8> {
    snapshot_arrived(town, key, ordered, 0, seq)
}

/// Snapshot number `seq` in which the first `arrived` of the `ordered` residents have
/// arrived at a shelter.
pub fn snapshot_arrived(
    town: &str,
    key: &SecretKey,
    ordered: usize,
    arrived: usize,
    seq: u64,
) -> Vec<u8> {
    snapshot_answered(town, key, ordered, arrived, seq, None)
}

/// As [`snapshot_arrived`], with HQ's counts of households' answers from the TV.
pub fn snapshot_answered(
    town: &str,
    key: &SecretKey,
    ordered: usize,
    arrived: usize,
    seq: u64,
    answers: Option<evac_protocol::AnswerCounts>,
) -> Vec<u8> {
    let mut statuses = vec![ResidentStatus::NotOrdered; 10];
    for (i, s) in statuses.iter_mut().take(ordered).enumerate() {
        *s = if i < arrived {
            ResidentStatus::Arrived {
                shelter: ShelterId(1),
                unverified: false,
            }
        } else {
            ResidentStatus::UnderOrder
        };
    }
    let m = StatusMessage::Snapshot(StatusSnapshot {
        town: Slug::new(town).unwrap(),
        seq,
        at_ms: NOW + (seq - 1) * 62_000,
        counts: StatusCounts {
            residents: 10,
            not_ordered: 10 - ordered as u32,
            under_order: (ordered - arrived) as u32,
            arrived: arrived as u32,
            answers,
            ..Default::default()
        },
        shelters: vec![],
        residents: PackedStatuses::pack(ResidentId(1), &statuses),
        answers: Vec::new(),
    });
    key.sign(HQ_SIGNER, &m)
        .unwrap()
        .to_json()
        .unwrap()
        .into_bytes()
}

/// Both clocks at `ms`.
pub fn at(ms: u64) -> Now {
    Now {
        wall_ms: ms,
        mono_ms: ms,
    }
}

/// The prefecture of `pref/36` with minato (shown as 港町, key seed 1) and shiomihama (key
/// seed 2), STALE after 60 s; its config is `dir/pref.toml`.
pub fn prefecture(dir: &Path) -> (Prefecture, SecretKey, SecretKey) {
    let (a, b) = (
        SecretKey::from_seed(&[1; 32]),
        SecretKey::from_seed(&[2; 32]),
    );
    std::fs::write(dir.join("a.pub"), a.public().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("b.pub"), b.public().to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join("pref.toml"),
        "broker = \"mqtt://127.0.0.1:1883\"\nprefix = \"pref/36\"\nstale_after_s = 60\n\
         [[towns]]\ntown = \"minato\"\nname = \"港町\"\nhq_key = \"a.pub\"\n\
         [[towns]]\ntown = \"shiomihama\"\nhq_key = \"b.pub\"\n",
    )
    .unwrap();
    let cfg = PrefectureConfig::read(&dir.join("pref.toml")).unwrap();
    (Prefecture::new(&cfg).unwrap(), a, b)
}

/// Town `town`'s snapshot number `seq` of `statuses` (residents from 1, one shelter online),
/// signed with `key` and cut as HQ cuts a large one ([`split`] at `budget`): each part's
/// topic under the prefecture's prefix and its signed bytes, in order.
///
/// [`split`]: evac_protocol::messages::status_parts::split
pub fn parts(
    town: &str,
    key: &SecretKey,
    seq: u64,
    statuses: &[ResidentStatus],
    budget: usize,
) -> Vec<(String, Vec<u8>)> {
    let count = |f: fn(&ResidentStatus) -> bool| statuses.iter().filter(|s| f(s)).count() as u32;
    let snap = StatusSnapshot {
        town: Slug::new(town).unwrap(),
        seq,
        at_ms: NOW + (seq - 1) * 62_000,
        counts: StatusCounts {
            residents: statuses.len() as u32,
            not_ordered: count(|s| *s == ResidentStatus::NotOrdered),
            under_order: count(|s| *s == ResidentStatus::UnderOrder),
            arrived: count(|s| matches!(s, ResidentStatus::Arrived { .. })),
            ..Default::default()
        },
        shelters: vec![evac_protocol::ShelterStatus {
            shelter: ShelterId(1),
            open: true,
            capacity: 1_000_000,
            present_day: 0,
            present_night: 0,
            expected: 0,
            online: true,
            lag_ms: None,
            pending: 0,
            flagged: 0,
            quiet_since_ms: None,
            conflicts: 0,
        }],
        residents: PackedStatuses::pack(ResidentId(1), statuses),
        answers: Vec::new(),
    };
    evac_protocol::messages::status_parts::split(&snap, budget)
        .unwrap()
        .iter()
        .map(|p| {
            let t = Slug::new(town).unwrap();
            let inner = evac_protocol::Topic::StatusPart(t, p.part as u16);
            let wire = key.sign(HQ_SIGNER, p).unwrap().to_json().unwrap();
            (format!("pref/36/{town}/{inner}"), wire.into_bytes())
        })
        .collect()
}
