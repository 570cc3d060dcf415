use std::collections::BTreeMap;

use evac_protocol::messages::shards::shard_count;
use evac_protocol::{CardDigestKey, CardRef, RegistryResident, SecretKey, ShardEntry};

use super::*;

pub(super) fn town() -> TownId {
    "minato".parse().unwrap()
}

pub(super) fn cards() -> CardDigestKey {
    CardDigestKey::derive(&SecretKey::from_seed(&[2; 32]))
}

pub(super) fn card(serial: u64) -> CardDigest {
    cards().digest(&CardRef {
        issuer_key_id: vec![0x1a; 20],
        serial: serial.to_be_bytes().to_vec(),
    })
}

/// HQ's side: households by id, each shard's sum and version (as `hq/src/core/shards.rs`).
pub(super) struct Hq {
    pub(super) shards: u16,
    households: BTreeMap<u32, RegistryHousehold>,
    versions: Vec<u64>,
}

impl Hq {
    pub(super) fn new(n: u32, version: u64) -> Hq {
        let households: BTreeMap<u32, RegistryHousehold> = (0..n)
            .map(|h| {
                let house = RegistryHousehold {
                    id: HouseholdId(h),
                    residents: (0..1 + h % 3)
                        .map(|i| RegistryResident {
                            id: ResidentId(h * 4 + i),
                            name: format!("住民{}", h * 4 + i),
                            needs_help: i == 2,
                            card_digests: vec![card(u64::from(h * 4 + i))],
                        })
                        .collect(),
                };
                (h, house)
            })
            .collect();
        let shards = shard_count(households.len());
        Hq {
            shards,
            households,
            versions: vec![version; usize::from(shards)],
        }
    }

    pub(super) fn shard(&self, n: u16) -> RegistryShard {
        let hs: Vec<_> = self
            .households
            .values()
            .filter(|h| shard_of(h.id, self.shards) == n)
            .cloned()
            .collect();
        RegistryShard {
            town: town(),
            shards: self.shards,
            shard: n,
            version: self.versions[usize::from(n)],
            digest: ShardSum::of(&hs).digest(n, self.shards),
            households: hs,
        }
    }

    pub(super) fn manifest(&self) -> RegistryManifest {
        RegistryManifest {
            town: town(),
            version: *self.versions.iter().max().unwrap(),
            card_check: cards().check_value(),
            shards: (0..self.shards)
                .map(|n| ShardEntry {
                    version: self.versions[usize::from(n)],
                    digest: self.shard(n).digest,
                })
                .collect(),
        }
    }

    pub(super) fn link(&mut self, h: u32, c: CardDigest, version: u64) -> RegistryDelta {
        let house = self.households.get_mut(&h).unwrap();
        house.residents[0].card_digests.push(c);
        let house = house.clone();
        let n = shard_of(house.id, self.shards);
        let base = std::mem::replace(&mut self.versions[usize::from(n)], version);
        RegistryDelta {
            town: town(),
            shards: self.shards,
            shard: n,
            base,
            version,
            households: vec![house],
            digest: self.shard(n).digest,
        }
    }
}

fn replica(dir: &tempfile::TempDir) -> Replica {
    Replica::open(&dir.path().join("registry.sqlite")).unwrap()
}

/// Reads every shard the manifest names as behind, as a shelter does (one at a time).
fn catch_up(r: &mut Replica, hq: &Hq) -> usize {
    let behind = r.take_manifest(&hq.manifest()).unwrap();
    for n in &behind {
        assert!(r.take_shard(&hq.shard(*n)).unwrap());
    }
    behind.len()
}

#[test]
fn a_late_replica_catches_up_shard_by_shard_and_follows_deltas_through_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = replica(&dir);
    let mut hq = Hq::new(3_000, 100);
    assert_eq!(hq.shards, 4);
    assert_eq!(r.digest().unwrap(), None);
    // Joins after 500 changes: the manifest names every shard, read one at a time.
    for v in 101..601u64 {
        hq.link((v * 7 % 3_000) as u32, card(1_000_000 + v), v);
    }
    assert_eq!(catch_up(&mut r, &hq), 4);
    assert_eq!(r.digest().unwrap(), Some(hq.manifest().digest()));
    assert_eq!(r.version().unwrap(), 600);
    // A tap's lookups.
    assert_eq!(
        r.by_card(&card(4 * 17 + 1)).unwrap(),
        Some((ResidentId(4 * 17 + 1), HouseholdId(17)))
    );
    assert_eq!(
        r.by_card(&card(1_000_000 + 101)).unwrap(),
        Some((ResidentId(707 * 4), HouseholdId(707))),
        "household 707 (101 × 7) got card 1,000,101 at change 101"
    );
    assert_eq!(r.by_card(&card(9_999_999)).unwrap(), None);
    assert_eq!(
        r.household_of(ResidentId(4 * 17 + 1)).unwrap(),
        Some(HouseholdId(17))
    );
    let members = r.members(HouseholdId(17)).unwrap().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members[2].name, "住民70");
    assert!(members[2].needs_help);

    // Deltas, one of them missed: the next of its shard shows the gap; the shard is read again.
    let mut gaps = 0;
    for v in 601..801u64 {
        let d = hq.link((v * 13 % 3_000) as u32, card(2_000_000 + v), v);
        if v == 650 {
            continue;
        }
        match r.offer_delta(&d).unwrap() {
            DeltaFit::Apply => {}
            DeltaFit::Gap => {
                gaps += 1;
                assert!(r.take_shard(&hq.shard(d.shard)).unwrap());
            }
            DeltaFit::Old => panic!("delta {v} taken as held"),
        }
        assert_eq!(r.offer_delta(&d).unwrap(), DeltaFit::Old, "a redelivery");
    }
    assert_eq!(gaps, 1);
    assert_eq!(r.digest().unwrap(), Some(hq.manifest().digest()));
    assert_eq!(catch_up(&mut r, &hq), 0, "nothing behind");
    // The replica is on disk: reopened, it is the same.
    drop(r);
    let r = replica(&dir);
    assert_eq!(r.digest().unwrap(), Some(hq.manifest().digest()));
}

#[test]
fn a_delta_on_a_shard_not_what_hq_had_is_a_gap_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = replica(&dir);
    let mut hq = Hq::new(100, 5);
    catch_up(&mut r, &hq);
    // Our copy of household 3 differs from HQ's (as if damaged): the delta's digest says so.
    let mut odd = hq.shard(0);
    odd.households[3].residents[0].name = "別人".into();
    odd.digest = ShardSum::of(&odd.households).digest(0, hq.shards);
    assert!(r.take_shard(&odd).unwrap());
    let before = r.digest().unwrap();
    let d = hq.link(7, card(77), 6);
    assert_eq!(r.offer_delta(&d).unwrap(), DeltaFit::Gap);
    assert_eq!(r.digest().unwrap(), before, "nothing applied");
    assert!(r.take_shard(&hq.shard(0)).unwrap());
    assert_eq!(r.digest().unwrap(), Some(hq.manifest().digest()));
}

#[test]
fn a_shard_of_the_same_digest_is_not_read_again_and_another_frame_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = replica(&dir);
    let hq = Hq::new(3_000, 5);
    catch_up(&mut r, &hq);
    // HQ restarted: every shard at a new version, the same content.
    let mut again = Hq::new(3_000, 9);
    assert_eq!(catch_up(&mut r, &again), 0);
    let d = again.link(1, card(11), 10);
    assert_eq!(r.offer_delta(&d).unwrap(), DeltaFit::Apply);
    // An older shard, or one of another shard count, is refused.
    assert!(!r.take_shard(&Hq::new(3_000, 1).shard(1)).unwrap());
    assert!(!r.take_shard(&Hq::new(5_000, 99).shard(1)).unwrap());
    // A town grown past the shard count: everything is read again.
    let big = Hq::new(5_000, 20);
    assert_eq!(catch_up(&mut r, &big), 8);
    assert_eq!(r.digest().unwrap(), Some(big.manifest().digest()));
    assert_eq!(
        r.by_card(&card(4 * 4_500)).unwrap(),
        Some((ResidentId(4 * 4_500), HouseholdId(4_500)))
    );
}

/// The files set aside beside `path`.
fn set_aside(dir: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".bad-"))
        .collect()
}

#[test]
fn a_replica_that_does_not_read_is_set_aside_and_made_anew_and_the_node_starts() {
    // Not SQLite at all.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let r = Replica::open_or_set_aside(&path).expect("a new replica");
    assert_eq!((r.version().unwrap(), r.town().unwrap()), (0, None));
    assert_eq!(set_aside(&dir).len(), 1, "{:?}", set_aside(&dir));
    drop(r);

    // SQLite, but a shard's row damaged: set aside too, then read again from HQ.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let hq = Hq::new(3_000, 1);
    let mut r = Replica::open(&path).unwrap();
    catch_up(&mut r, &hq);
    r.conn
        .execute("UPDATE registry_shards SET xor = x'00' WHERE shard = 1", [])
        .unwrap();
    drop(r);
    let mut r = Replica::open_or_set_aside(&path).expect("a new replica");
    assert_eq!(r.digest().unwrap(), None);
    assert_eq!(set_aside(&dir).len(), 1, "{:?}", set_aside(&dir));
    catch_up(&mut r, &hq);
    assert_eq!(r.digest().unwrap(), Some(hq.manifest().digest()));
    drop(r);

    // The node starts on a replica that does not read; every card is then not known.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.db"), vec![0x5a; 8192]).unwrap();
    let node = crate::node::Node::open(
        &dir.path().join("ledger.db"),
        evac_protocol::ShelterId(1),
        SecretKey::from_seed(&[1; 32]),
        crate::cert::TrustStore::new(),
        0,
    )
    .expect("the node starts");
    assert_eq!(node.door().registry().version(), 0);
    assert_eq!(set_aside(&dir).len(), 1);
}

#[test]
fn every_replica_connection_has_the_bounded_page_cache() {
    // A city's replica is over 100 MB: with SQLite's default cache (2,000 KiB a connection)
    // the door's connection filled it during a drill.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.sqlite");
    let writer = Replica::open(&path).unwrap();
    let reader = Replica::open_reader(&path).unwrap();
    let cache = |r: &Replica| -> i64 {
        r.conn
            .pragma_query_value(None, "cache_size", |row| row.get(0))
            .unwrap()
    };
    assert_eq!(cache(&writer), -super::WRITER_CACHE_KIB);
    assert_eq!(cache(&reader), -super::DOOR_CACHE_KIB);
}
