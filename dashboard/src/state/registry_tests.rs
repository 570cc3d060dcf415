//! The registry from HQ's shards: any order, deltas, gaps, forgeries, other towns.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use super::tests::{RegistrySnapshot, shards};
use super::*;
use evac_protocol::messages::shards::shard_of;
use evac_protocol::{
    CardDigest, HQ_SIGNER, HouseholdId, RegistryHousehold, RegistryResident, SecretKey, ShardSum,
    Slug,
};

const NOW: u64 = 1_795_000_000_000;
const DELTA: &str = "evac/v1/minato/registry/delta";

fn hq() -> SecretKey {
    SecretKey::from_seed(&[1; 32])
}

fn town() -> TownId {
    Slug::new("minato").unwrap()
}

fn household(id: u32) -> RegistryHousehold {
    RegistryHousehold {
        id: HouseholdId(id),
        residents: (0..2)
            .map(|k| RegistryResident {
                id: ResidentId(id * 2 + k),
                name: format!("住民 {id}-{k}"),
                needs_help: k == 1,
                card_digests: vec![CardDigest([id as u8; 16])],
            })
            .collect(),
    }
}

/// 3,000 households: four shards.
fn big(version: u64) -> RegistrySnapshot {
    RegistrySnapshot {
        town: town(),
        card_check: CardDigest([0; 16]),
        version,
        households: (1..=3_000).map(household).collect(),
    }
}

/// The signed delta that takes `reg` (as it is before) to it with `changed` put in, as
/// shard change `base` → `version`; and `reg` after.
fn delta(
    reg: &mut RegistrySnapshot,
    changed: RegistryHousehold,
    base: u64,
    version: u64,
) -> Vec<u8> {
    let n = evac_protocol::messages::shards::shard_count(reg.households.len());
    let shard = shard_of(changed.id, n);
    if let Some(h) = reg.households.iter_mut().find(|h| h.id == changed.id) {
        *h = changed.clone();
    }
    let digest =
        ShardSum::of(reg.households.iter().filter(|h| shard_of(h.id, n) == shard)).digest(shard, n);
    let d = evac_protocol::RegistryDelta {
        town: town(),
        shards: n,
        shard,
        base,
        version,
        households: vec![changed],
        digest,
    };
    let json = hq().sign(HQ_SIGNER, &d).unwrap().to_json().unwrap();
    evac_protocol::packed::pack(json.as_bytes())
}

fn renamed(id: u32, name: &str) -> RegistryHousehold {
    let mut h = household(id);
    h.residents[0].name = name.into();
    h
}

fn state() -> TownState {
    TownState::new(town(), hq().public(), None)
}

#[test]
fn shards_in_any_order_make_the_registry_whole_once_the_manifest_lists_them_all() {
    let mut s = state();
    let mut feed = shards(&big(1));
    assert_eq!(feed.len(), 5, "four shards and the manifest");
    let manifest = feed.pop().unwrap();
    feed.reverse();
    let (first, rest) = feed.split_at(2);
    for (t, p) in first {
        assert_eq!(s.on_message(t, p, NOW), Ok(Applied::Registry));
    }
    assert_eq!(
        s.on_message(&manifest.0, &manifest.1, NOW),
        Ok(Applied::Registry)
    );
    let reg = s.registry.as_ref().unwrap();
    assert!(!reg.complete(), "two shards missing");
    assert_eq!(reg.household_count(), 1_500);
    for (t, p) in rest {
        assert_eq!(s.on_message(t, p, NOW), Ok(Applied::Registry));
    }
    // The same shard again changes nothing.
    assert_eq!(s.on_message(&rest[0].0, &rest[0].1, NOW), Ok(Applied::Same));
    let reg = s.registry.as_ref().unwrap();
    assert!(reg.complete());
    assert_eq!(reg.household_count(), 3_000);
    assert_eq!(reg.people().count(), 6_000);
    let p = reg.person(ResidentId(2_001)).unwrap();
    assert_eq!(
        (reg.name(&p), p.household, p.needs_help),
        ("住民 1000-1", 1_000, true)
    );
    assert!(reg.person(ResidentId(1)).is_none());
    // Each person's household, needs-help flag and name, read back from the packed shards.
    for p in reg.people() {
        assert_eq!(reg.person(p.resident), Some(p));
        assert_eq!(p.household, p.resident.0 / 2);
        assert_eq!(p.needs_help, p.resident.0 % 2 == 1);
        let name = format!("住民 {}-{}", p.household, p.resident.0 % 2);
        assert_eq!(reg.name(&p), name);
    }
    assert_eq!(s.rejected.total, 0);
}

#[test]
fn a_delta_that_follows_is_applied_a_gap_or_a_wrong_digest_makes_its_shard_stale() {
    let mut s = state();
    let mut reg = big(1);
    for (t, p) in shards(&reg) {
        s.on_message(&t, &p, NOW).unwrap();
    }
    // Household 5 (shard 1) renamed: version 1 → 2.
    let d = delta(&mut reg, renamed(5, "改名 五郎"), 1, 2);
    assert_eq!(s.on_message(DELTA, &d, NOW), Ok(Applied::Registry));
    assert_eq!(s.resident_name(ResidentId(10)), Some("改名 五郎"));
    assert_eq!(s.resident_name(ResidentId(11)), Some("住民 5-1"));
    assert!(s.registry.as_ref().unwrap().complete());
    // The same delta again: already in.
    assert_eq!(s.on_message(DELTA, &d, NOW), Ok(Applied::Same));

    // Version 3 of shard 1 is missed; version 4 does not follow.
    let _missed = delta(&mut reg, renamed(9, "見逃し"), 2, 3);
    let gap = delta(&mut reg, renamed(13, "十三"), 3, 4);
    assert_eq!(s.on_message(DELTA, &gap, NOW), Err(Reject::Gap));
    let r = s.registry.as_ref().unwrap();
    assert!(r.is_stale(1) && !r.complete());
    assert_eq!(
        s.resident_name(ResidentId(26)),
        Some("住民 13-0"),
        "names stay shown"
    );
    // Its retained shard comes again, at version 4: current.
    let again = shards(&RegistrySnapshot {
        households: reg.households.clone(),
        ..big(4)
    });
    let (t, p) = &again[1];
    assert!(t.ends_with("/shard/1"));
    assert_eq!(s.on_message(t, p, NOW), Ok(Applied::Registry));
    let r = s.registry.as_ref().unwrap();
    assert!(!r.is_stale(1));
    assert_eq!(s.resident_name(ResidentId(18)), Some("見逃し"));
    assert_eq!(s.resident_name(ResidentId(26)), Some("十三"));
    // An older retained shard (version 1) after it is ignored.
    let old = &shards(&big(1))[1];
    assert_eq!(s.on_message(&old.0, &old.1, NOW), Ok(Applied::Same));
    assert_eq!(s.resident_name(ResidentId(26)), Some("十三"));

    // A delta that follows but whose digest does not come out (HQ and the dashboard
    // disagree on the shard): stale, not taken.
    let mut tampered = RegistrySnapshot {
        households: reg.households.clone(),
        ..big(1)
    };
    tampered.households[0] = renamed(1, "別人");
    let bad = delta(&mut tampered, renamed(17, "十七"), 4, 5);
    assert_eq!(s.on_message(DELTA, &bad, NOW), Err(Reject::Gap));
    assert!(s.registry.as_ref().unwrap().is_stale(1));
    assert_eq!(s.resident_name(ResidentId(34)), Some("住民 17-0"));
}

#[test]
fn a_forged_or_inconsistent_shard_is_refused_and_changes_nothing() {
    let mut s = state();
    let reg = big(1);
    for (t, p) in shards(&reg) {
        s.on_message(&t, &p, NOW).unwrap();
    }
    let mut evil = big(2);
    evil.households[4] = renamed(5, "偽物");
    // Signed by another key.
    let forged = crate::sample::registry_shards(
        &town(),
        &SecretKey::from_seed(&[9; 32]),
        2,
        CardDigest([0; 16]),
        evil.households.clone(),
    )
    .unwrap();
    assert_eq!(
        s.on_message(&forged[1].0, &forged[1].1, NOW),
        Err(Reject::Signature)
    );
    // HQ's key, but on another shard's topic.
    let real = shards(&evil);
    assert_eq!(
        s.on_message("evac/v1/minato/registry/shard/2", &real[1].1, NOW),
        Err(Reject::Body)
    );
    // HQ's key, but its content does not give its digest.
    let mut shard = evac_protocol::RegistryShard {
        town: town(),
        shards: 4,
        shard: 1,
        version: 2,
        households: evil
            .households
            .iter()
            .filter(|h| shard_of(h.id, 4) == 1)
            .cloned()
            .collect(),
        digest: evac_protocol::ShardDigest::default(),
    };
    shard.digest = ShardSum::of(&reg.households[..0]).digest(1, 4);
    let json = hq().sign(HQ_SIGNER, &shard).unwrap().to_json().unwrap();
    assert_eq!(
        s.on_message("evac/v1/minato/registry/shard/1", json.as_bytes(), NOW),
        Err(Reject::Body)
    );
    // Another town's shard on our topic.
    let kita = shards(&RegistrySnapshot {
        town: Slug::new("kita").unwrap(),
        ..big(2)
    });
    assert_eq!(
        s.on_message("evac/v1/minato/registry/shard/1", &kita[1].1, NOW),
        Err(Reject::Town)
    );
    assert_eq!(s.resident_name(ResidentId(10)), Some("住民 5-0"));
    assert!(s.registry.as_ref().unwrap().complete());
}

#[test]
fn an_older_manifest_is_ignored_and_one_that_disagrees_makes_the_shard_stale() {
    let mut s = state();
    for (t, p) in shards(&big(3)) {
        s.on_message(&t, &p, NOW).unwrap();
    }
    let older = shards(&big(2)).pop().unwrap();
    assert_eq!(s.on_message(&older.0, &older.1, NOW), Ok(Applied::Same));
    assert_eq!(s.registry.as_ref().unwrap().version, 3);
    // A newer manifest whose shard 1 is newer than ours: stale until it comes.
    let mut newer = big(4);
    newer.households[4] = renamed(5, "新しい");
    let feed = shards(&newer);
    let (t, p) = feed.last().unwrap();
    assert_eq!(s.on_message(t, p, NOW), Ok(Applied::Registry));
    let r = s.registry.as_ref().unwrap();
    assert!(r.is_stale(0) && r.is_stale(1) && !r.complete());
    for (t, p) in &feed[..4] {
        s.on_message(t, p, NOW).unwrap();
    }
    assert!(s.registry.as_ref().unwrap().complete());
    assert_eq!(s.resident_name(ResidentId(10)), Some("新しい"));
}

#[test]
fn a_resident_id_beyond_the_dense_index_is_found_and_moves_with_its_shard() {
    let mut s = state();
    let mut reg = big(1);
    reg.households[4].residents[0].id = ResidentId(9_000_000);
    for (t, p) in shards(&reg) {
        s.on_message(&t, &p, NOW).unwrap();
    }
    assert_eq!(s.resident_name(ResidentId(9_000_000)), Some("住民 5-0"));
    assert_eq!(s.resident_name(ResidentId(11)), Some("住民 5-1"));
    let mut gone = renamed(5, "転居");
    gone.residents.remove(0);
    let d = delta(&mut reg, gone, 1, 2);
    assert_eq!(s.on_message(DELTA, &d, NOW), Ok(Applied::Registry));
    assert_eq!(s.resident_name(ResidentId(9_000_000)), None);
    assert_eq!(s.resident_name(ResidentId(11)), Some("住民 5-1"));
}

/// Reads every shard `s` asks for as a broker would: each subscription delivers its retained
/// shard from `retained` at once. The most subscriptions outstanding and the shards read.
fn read_asked(
    s: &mut TownState,
    retained: &HashMap<String, Vec<u8>>,
    outstanding: &mut std::collections::BTreeSet<String>,
) -> (usize, Vec<String>) {
    let mut most = outstanding.len();
    let mut read = Vec::new();
    loop {
        let subs = s.shard_subs(NOW);
        if subs.is_empty() {
            return (most, read);
        }
        let mut come = Vec::new();
        for sub in subs {
            match sub {
                Sub::Subscribe(t) => {
                    assert!(outstanding.insert(t.clone()), "{t} subscribed twice");
                    come.push(t);
                }
                Sub::Unsubscribe(t) => assert!(outstanding.remove(&t), "{t} not subscribed"),
            }
        }
        most = most.max(outstanding.len());
        for t in come {
            if let Some(p) = retained.get(&t) {
                s.on_message(&t, p, NOW).unwrap();
            }
            read.push(t);
        }
    }
}

#[test]
fn shards_are_read_a_few_at_a_time_and_a_new_version_or_a_gap_is_read_again() {
    let mut s = state();
    s.reads = ShardReads::new(2);
    s.set_link(Link::Connected { since_ms: 0 });
    let mut reg = big(1);
    let mut feed = shards(&reg);
    let manifest = feed.pop().unwrap();
    let mut retained: HashMap<String, Vec<u8>> = feed.into_iter().collect();
    let mut outstanding = std::collections::BTreeSet::new();
    assert!(
        s.shard_subs(NOW).is_empty(),
        "no manifest yet: no shard read"
    );

    s.on_message(&manifest.0, &manifest.1, NOW).unwrap();
    let (most, read) = read_asked(&mut s, &retained, &mut outstanding);
    assert_eq!(
        (most, read.len()),
        (2, 4),
        "four shards, two at a time: {read:?}"
    );
    assert!(outstanding.is_empty(), "{outstanding:?}");
    assert!(s.registry.as_ref().unwrap().complete());
    assert_eq!(s.resident_name(ResidentId(10)), Some("住民 5-0"));

    // HQ makes the registry again at version 2 (household 5 renamed): the manifest says so,
    // and each shard is read again from its new retained message.
    if let Some(h) = reg.households.iter_mut().find(|h| h.id.0 == 5) {
        *h = renamed(5, "改名 五郎");
    }
    reg.version = 2;
    let mut feed = shards(&reg);
    let manifest = feed.pop().unwrap();
    retained = feed.into_iter().collect();
    s.on_message(&manifest.0, &manifest.1, NOW).unwrap();
    let (most, read) = read_asked(&mut s, &retained, &mut outstanding);
    assert_eq!((most, read.len()), (2, 4), "{read:?}");
    assert_eq!(s.resident_name(ResidentId(10)), Some("改名 五郎"));
    assert!(s.registry.as_ref().unwrap().complete());

    // A delta that follows needs no read; one after a missed delta reads its shard (only).
    let d = delta(&mut reg, renamed(5, "五郎 三"), 2, 3);
    s.on_message(DELTA, &d, NOW).unwrap();
    assert!(read_asked(&mut s, &retained, &mut outstanding).1.is_empty());
    let _missed = delta(&mut reg, renamed(9, "見逃し"), 3, 4);
    let gap = delta(&mut reg, renamed(13, "十三"), 4, 5);
    assert_eq!(s.on_message(DELTA, &gap, NOW), Err(Reject::Gap));
    reg.version = 5;
    let shard1 = Topic::RegistryShard(town(), 1).to_string();
    let republished: HashMap<String, Vec<u8>> = shards(&reg)
        .into_iter()
        .filter(|(t, _)| *t == shard1)
        .collect();
    let (_, read) = read_asked(&mut s, &republished, &mut outstanding);
    assert_eq!(read, vec![shard1]);
    assert_eq!(s.resident_name(ResidentId(26)), Some("十三"));
    assert!(s.registry.as_ref().unwrap().complete());
    assert!(outstanding.is_empty());
}
