//! The registry replica on disk at a city's size: filling it shard by shard (as a shelter that
//! joins late catches up), applying deltas, a tap's lookup (card digest → resident and
//! household, then the household's members) and the process's memory.
//!
//! `HOUSEHOLDS=1500000 cargo bench -p evac-shelter --bench replica` (release), or the same
//! with `cargo test -p evac-shelter --bench replica` (the dev profile, SQLite optimised).
//! `BATCH` shards are taken in one transaction (unless given, as many as a node's sync takes at
//! once, [`evac_shelter::replica::sync::READING`]; 1 is a shard at a time).

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
    rss_of("self")
}

/// VmRSS and VmHWM of process `pid` (or `self`), in MB.
fn rss_of(pid: &str) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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
        .unwrap_or(evac_shelter::replica::sync::READING as u16);
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
    drop(replica);
    node_rss(dir.path(), &path, households, &cards);
}

/// The real `evac-shelter run` on the filled replica (its `data/registry.db`, no broker): its
/// door reads the replica through its own connection; 20,000 `lookup`s of households (one
/// indexed read each, then the members) go through its stdin, then its VmRSS and VmHWM are
/// read from /proc. Without a broker the replicator does not run: its fill is the in-process
/// figure above (the same `Replica` code).
fn node_rss(
    dir: &std::path::Path,
    filled: &std::path::Path,
    households: u32,
    cards: &CardDigestKey,
) {
    use std::io::{BufRead, Write};
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::rename(filled, data.join("registry.db")).unwrap();
    std::fs::write(
        dir.join("node.key"),
        SecretKey::from_seed(&[1; 32]).to_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("card.key"), cards.to_hex()).unwrap();
    let config = dir.join("shelter.toml");
    std::fs::write(
        &config,
        "town = \"osaka\"\nshelter = 1\ndata_dir = \"data\"\nnode_key = \"node.key\"\n\
         card_digest_key = \"card.key\"\n[card]\nreader = \"virtual\"\nca = []\n",
    )
    .unwrap();
    let t = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_evac-shelter"))
        .args(["run", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    writeln!(stdin, "status").unwrap();
    let status = lines.next().unwrap().unwrap();
    let started = t.elapsed();
    let mut members = 0usize;
    let lookups = 20_000u32;
    for i in 0..lookups {
        writeln!(stdin, "lookup {}", (i.wrapping_mul(40_503)) % households).unwrap();
        let l = lines.next().unwrap().unwrap();
        members += l.matches("\"id\"").count();
    }
    let (rss, hwm) = rss_of(&child.id().to_string());
    drop(stdin);
    let _ = child.wait();
    println!(
        "node process (evac-shelter run, {} build, no broker) on the filled replica: answered \
         `status` {:.2} s after start ({status}); {lookups} lookups found {members} members; \
         VmRSS {rss:.1} MB, VmHWM {hwm:.1} MB",
        if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
        started.as_secs_f64()
    );
}
