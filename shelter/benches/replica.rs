//! The registry replica on disk at a city's size: filling it shard by shard (as a shelter that
//! joins late catches up), applying deltas, a tap's lookup (card digest → resident and
//! household, then the household's members) and the process's memory.
//!
//! `HOUSEHOLDS=1500000 cargo bench -p evac-shelter --bench replica` (release), or the same
//! with `cargo test -p evac-shelter --bench replica` (the dev profile, SQLite optimised).
//! `BATCH` shards are taken in one transaction (64 unless given; 1 is a shard at a time).

#![allow(clippy::unwrap_used)] // a benchmark may unwrap: a panic is a failed run

use std::time::{Duration, Instant};

use evac_protocol::messages::shards::{household_hash, shard_count, shard_of};
use evac_protocol::{
    CardDigest, CardDigestKey, CardRef, DeltaFit, HouseholdId, RegistryDelta, RegistryHousehold,
    RegistryManifest, RegistryResident, RegistryShard, ResidentId, SecretKey, ShardDigest,
    ShardEntry, ShardSum, TownId,
};
use evac_shelter::replica::Replica;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Household `h` as the synthetic city has it: 1 to 3 residents (1.77 on average), a card
/// each, `extra` more cards on the first.
fn household(h: u32, cards: &CardDigestKey, extra: u32) -> RegistryHousehold {
    let n = 1 + u32::from((1..=4).contains(&(h % 6))) + u32::from(h.is_multiple_of(10));
    RegistryHousehold {
        id: HouseholdId(h),
        residents: (0..n)
            .map(|i| {
                let r = h * 4 + i;
                let k = if i == 0 { 1 + extra } else { 1 };
                RegistryResident {
                    id: ResidentId(r),
                    name: format!("市民 {r:08}"),
                    needs_help: r.is_multiple_of(17),
                    card_digests: (0..k).map(|c| card(cards, r, c)).collect(),
                }
            })
            .collect(),
    }
}

fn card(cards: &CardDigestKey, resident: u32, n: u32) -> CardDigest {
    cards.digest(&CardRef {
        issuer_key_id: vec![0x1a; 20],
        serial: [resident.to_be_bytes(), n.to_be_bytes()].concat(),
    })
}

/// VmRSS and VmHWM of this process, in MB.
fn rss() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn main() {
    let households: u32 = std::env::var("HOUSEHOLDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_500_000);
    let town: TownId = "osaka".parse().unwrap();
    let cards = CardDigestKey::derive(&SecretKey::from_seed(&[2; 32]));
    let shards = shard_count(households as usize);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("registry.sqlite");
    let mut replica = Replica::open(&path).unwrap();

    // The manifest first (every shard behind), then each shard as HQ publishes it.
    let manifest = RegistryManifest {
        town: town.clone(),
        version: 1,
        card_check: cards.check_value(),
        shards: (0..shards)
            .map(|_| ShardEntry {
                version: 1,
                digest: ShardDigest::default(),
            })
            .collect(),
    };
    assert_eq!(
        replica.take_manifest(&manifest).unwrap().len(),
        usize::from(shards)
    );
    // A shelter catching up takes the shards it has read in one transaction ([`BATCH`]).
    let batch: u16 = std::env::var("BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let t = Instant::now();
    let mut sums = vec![ShardSum::default(); usize::from(shards)];
    let mut biggest = 0usize;
    let mut pending = Vec::with_capacity(usize::from(batch));
    for n in 0..shards {
        let hs: Vec<_> = (u32::from(n)..households)
            .step_by(usize::from(shards))
            .map(|h| household(h, &cards, 0))
            .collect();
        sums[usize::from(n)] = ShardSum::of(&hs);
        let s = RegistryShard {
            town: town.clone(),
            shards,
            shard: n,
            version: 1,
            digest: sums[usize::from(n)].digest(n, shards),
            households: hs,
        };
        biggest = biggest.max(serde_json::to_vec(&s).unwrap().len());
        pending.push(s);
        if pending.len() >= usize::from(batch.max(1)) || n + 1 == shards {
            let taken = replica.take_shards(&pending).unwrap();
            assert!(taken.iter().all(|t| *t));
            pending.clear();
        }
    }
    let fill = t.elapsed();
    let (rss_fill, hwm_fill) = rss();
    let file_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;

    // Deltas: a card linked to the first resident of a household, as HQ sends them.
    let mut delta_times = Vec::new();
    let mut versions = vec![1u64; usize::from(shards)];
    let mut extra = std::collections::HashMap::<u32, u32>::new();
    for i in 0..2_000u32 {
        let h = (i.wrapping_mul(2_654_435_761)) % households;
        let k = extra.entry(h).or_insert(0);
        let old = household(h, &cards, *k);
        *k += 1;
        let new = household(h, &cards, *k);
        let n = shard_of(HouseholdId(h), shards);
        let sum = &mut sums[usize::from(n)];
        sum.remove(&household_hash(&old));
        sum.add(&household_hash(&new));
        let d = RegistryDelta {
            town: town.clone(),
            shards,
            shard: n,
            base: std::mem::replace(&mut versions[usize::from(n)], 2 + u64::from(i)),
            version: 2 + u64::from(i),
            households: vec![new],
            digest: sum.digest(n, shards),
        };
        let t = Instant::now();
        assert_eq!(replica.offer_delta(&d).unwrap(), DeltaFit::Apply);
        delta_times.push(t.elapsed());
    }

    // A tap: the card's owner, then the household's members (the kiosk's count).
    let mut taps = Vec::with_capacity(100_000);
    let mut found = 0;
    for i in 0..100_000u32 {
        let h = (i.wrapping_mul(40_503)) % households;
        let c = if i % 10 == 0 {
            card(&cards, u32::MAX - i, 0)
        } else {
            card(&cards, h * 4, 0)
        };
        let t = Instant::now();
        if let Some((_, hh)) = replica.by_card(&c).unwrap() {
            found += usize::from(replica.members(hh).unwrap().is_some());
        }
        taps.push(t.elapsed());
    }
    let (rss_end, hwm_end) = rss();
    println!(
        "replica at {households} households in {shards} shards (largest shard {:.0} KB of JSON): \
         filled {batch} shards a transaction in {:.1} s ({:.1} ms a shard), file {file_mb:.0} MB; RSS after fill {rss_fill:.0} MB \
         (peak {hwm_fill:.0} MB)",
        biggest as f64 / 1e3,
        fill.as_secs_f64(),
        fill.as_secs_f64() * 1e3 / f64::from(shards),
    );
    println!(
        "delta apply: p50 {:?} p99 {:?}",
        pct(&mut delta_times, 0.5),
        pct(&mut delta_times, 0.99)
    );
    println!(
        "tap lookup (card, then members; {found} of 100000 found): p50 {:?} p99 {:?} max {:?}; \
         RSS {rss_end:.0} MB (peak {hwm_end:.0} MB)",
        pct(&mut taps, 0.5),
        pct(&mut taps, 0.99),
        pct(&mut taps, 1.0)
    );
}
