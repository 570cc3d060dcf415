use std::collections::BTreeMap;

use super::*;
use crate::ids::{ResidentId, Slug};
use crate::messages::registry::RegistryResident;
use crate::messages::{ack::HQ_SIGNER, golden};
use crate::sign::{SecretKey, Signed};
use crate::{CardDigestKey, CardRef};

fn town() -> TownId {
    Slug::new("minato").unwrap()
}

/// A household as large as a real one gets: `n` residents with a 10-character name and two
/// cards each.
fn household(id: u32, n: u32, cards: &CardDigestKey) -> RegistryHousehold {
    RegistryHousehold {
        id: HouseholdId(id),
        residents: (0..n)
            .map(|i| RegistryResident {
                id: ResidentId(id * 8 + i),
                name: format!("山田花子{:06}", id * 8 + i),
                needs_help: i == 0,
                card_digests: (0..2u8)
                    .map(|k| {
                        cards.digest(&CardRef {
                            issuer_key_id: vec![k; 20],
                            serial: (id * 8 + i).to_be_bytes().to_vec(),
                        })
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn shard_message(
    shards: u16,
    shard: u16,
    version: u64,
    hs: Vec<RegistryHousehold>,
) -> RegistryShard {
    let digest = ShardSum::of(&hs).digest(shard, shards);
    RegistryShard {
        town: town(),
        shards,
        shard,
        version,
        households: hs,
        digest,
    }
}

/// The wire size of `body` signed by HQ, plain and gzip-packed.
fn wire<T: Signable>(k: &SecretKey, body: &T) -> (usize, usize) {
    let json = k.sign(HQ_SIGNER, body).unwrap().to_json().unwrap();
    (json.len(), crate::packed::pack(json.as_bytes()).len())
}

#[test]
fn shard_counts_are_powers_of_two_within_bounds() {
    assert_eq!(shard_count(0), 1);
    assert_eq!(shard_count(3_458), 4);
    assert_eq!(shard_count(275_287), 512);
    assert_eq!(shard_count(1_469_718), 2048);
    assert_eq!(shard_count(1_500_000), 2048);
    assert_eq!(shard_count(100_000_000), MAX_SHARDS);
    assert_eq!(shard_of(HouseholdId(4100), 4096), 4);
    assert_eq!(shard_of(HouseholdId(7), 0), 0);
}

#[test]
fn golden_and_round_trip() {
    let k = golden::key();
    let cards = CardDigestKey::derive(&k);
    let h = household(455, 2, &cards);
    let shard = shard_message(4, 3, 1_795_000_001, vec![h.clone()]);
    let delta = RegistryDelta {
        town: town(),
        shards: 4,
        shard: 3,
        base: 1_795_000_001,
        version: 1_795_000_002,
        households: vec![h],
        digest: shard.digest,
    };
    let wire = k.sign(HQ_SIGNER, &delta).unwrap().to_json().unwrap();
    golden::check("registry_delta.json", &wire);
    let open = |w: &str| Signed::<RegistryDelta>::from_json(w.as_bytes())?.open(&k.public());
    assert_eq!(open(&wire).unwrap(), delta);
    // Another key's signature, or another family's envelope, is refused.
    let other = SecretKey::from_seed(&[8; 32]);
    let forged = other.sign(HQ_SIGNER, &delta).unwrap().to_json().unwrap();
    assert!(open(&forged).is_err());
    let as_shard = k.sign(HQ_SIGNER, &shard).unwrap().to_json().unwrap();
    assert!(open(&as_shard).is_err());

    let manifest = RegistryManifest {
        town: town(),
        version: 1_795_000_002,
        card_check: cards.check_value(),
        shards: (0..4)
            .map(|i| ShardEntry {
                version: 1_795_000_000 + i,
                digest: ShardSum::default().digest(i as u16, 4),
            })
            .collect(),
    };
    let wire = k.sign(HQ_SIGNER, &manifest).unwrap().to_json().unwrap();
    golden::check("registry_manifest.json", &wire);
    let back = Signed::<RegistryManifest>::from_json(wire.as_bytes())
        .unwrap()
        .open(&k.public())
        .unwrap();
    assert_eq!(back, manifest);
    assert_eq!(back.digest(), manifest.digest());
    let wire = k.sign(HQ_SIGNER, &shard).unwrap().to_json().unwrap();
    let back = Signed::<RegistryShard>::from_json(wire.as_bytes())
        .unwrap()
        .open(&k.public())
        .unwrap();
    assert!(back.is_consistent());
    assert_eq!(back, shard);
}

#[test]
fn an_inconsistent_shard_is_seen() {
    let cards = CardDigestKey::derive(&golden::key());
    let mut s = shard_message(
        4,
        1,
        1,
        vec![household(1, 3, &cards), household(5, 1, &cards)],
    );
    assert!(s.is_consistent());
    s.households[1].residents[0].name.push('x');
    assert!(!s.is_consistent(), "content changed under its digest");
    let mut s = shard_message(4, 1, 1, vec![household(2, 1, &cards)]);
    assert!(!s.is_consistent(), "household 2 is not in shard 1");
    s.shard = 4;
    assert!(!s.is_consistent(), "no shard 4 of 4");
}

/// At Osaka's size (and past it) every registry message stays under 1 MiB: the fullest shard
/// (five residents, two cards each, in every household), the manifest at the most shards,
/// and a delta.
#[test]
fn no_message_passes_one_mib_at_one_and_a_half_million_households() {
    let k = golden::key();
    let cards = CardDigestKey::derive(&k);
    let households = 1_500_000u32;
    let shards = shard_count(households as usize);
    let hs: Vec<_> = (0..households)
        .filter(|h| shard_of(HouseholdId(*h), shards) == 0)
        .map(|h| household(h, 5, &cards))
        .collect();
    assert!(hs.len() <= SHARD_HOUSEHOLDS, "{} households", hs.len());
    let n = hs.len();
    let (plain, packed) = wire(&k, &shard_message(shards, 0, u64::MAX, hs));
    eprintln!("{shards} shards; shard 0: {n} households, {plain} B signed JSON, {packed} B packed");
    assert!(plain <= MAX_MESSAGE, "shard: {plain} bytes");
    assert!(packed <= MAX_MESSAGE / 2, "packed shard: {packed} bytes");

    let manifest = RegistryManifest {
        town: town(),
        version: u64::MAX,
        card_check: cards.check_value(),
        shards: (0..MAX_SHARDS)
            .map(|i| ShardEntry {
                version: u64::MAX - u64::from(i),
                digest: ShardSum::default().digest(i, MAX_SHARDS),
            })
            .collect(),
    };
    let (plain, packed) = wire(&k, &manifest);
    eprintln!("manifest of {MAX_SHARDS} shards: {plain} B signed JSON, {packed} B packed");
    assert!(plain <= MAX_MESSAGE / 2, "manifest: {plain} bytes");

    let delta = RegistryDelta {
        town: town(),
        shards,
        shard: 0,
        base: u64::MAX - 1,
        version: u64::MAX,
        households: vec![household(0, 5, &cards)],
        digest: ShardDigest::default(),
    };
    assert!(wire(&k, &delta).0 <= 4096);
}

/// HQ's side of the test below: households by id, each shard's sum and version.
struct Source {
    shards: u16,
    households: BTreeMap<u32, RegistryHousehold>,
    sums: Vec<ShardSum>,
    versions: Vec<u64>,
}

impl Source {
    fn new(households: Vec<RegistryHousehold>, version: u64) -> Source {
        let shards = shard_count(households.len());
        let mut sums = vec![ShardSum::default(); usize::from(shards)];
        for h in &households {
            sums[usize::from(shard_of(h.id, shards))].add(&household_hash(h));
        }
        Source {
            shards,
            households: households.into_iter().map(|h| (h.id.0, h)).collect(),
            sums,
            versions: vec![version; usize::from(shards)],
        }
    }

    fn shard(&self, n: u16) -> RegistryShard {
        let hs = self
            .households
            .values()
            .filter(|h| shard_of(h.id, self.shards) == n)
            .cloned()
            .collect();
        shard_message(self.shards, n, self.versions[usize::from(n)], hs)
    }

    fn manifest(&self, card_check: CardDigest) -> RegistryManifest {
        RegistryManifest {
            town: town(),
            version: *self.versions.iter().max().unwrap(),
            card_check,
            shards: (0..self.shards)
                .map(|n| ShardEntry {
                    version: self.versions[usize::from(n)],
                    digest: self.sums[usize::from(n)].digest(n, self.shards),
                })
                .collect(),
        }
    }

    /// Links `card` to the first resident of household `h` at `version`: one delta.
    fn link(&mut self, h: u32, card: CardDigest, version: u64) -> RegistryDelta {
        let n = shard_of(HouseholdId(h), self.shards);
        let sum = &mut self.sums[usize::from(n)];
        let house = self.households.get_mut(&h).unwrap();
        sum.remove(&household_hash(house));
        house.residents[0].card_digests.push(card);
        sum.add(&household_hash(house));
        let base = std::mem::replace(&mut self.versions[usize::from(n)], version);
        RegistryDelta {
            town: town(),
            shards: self.shards,
            shard: n,
            base,
            version,
            households: vec![house.clone()],
            digest: sum.digest(n, self.shards),
        }
    }
}

/// A shelter's side: each shard's version, households and sum.
#[derive(Default)]
struct Replica {
    shards: BTreeMap<u16, (u64, BTreeMap<u32, RegistryHousehold>, ShardSum)>,
}

impl Replica {
    fn take_shard(&mut self, s: RegistryShard) {
        assert!(s.is_consistent());
        let sum = ShardSum::of(&s.households);
        let hs = s.households.into_iter().map(|h| (h.id.0, h)).collect();
        self.shards.insert(s.shard, (s.version, hs, sum));
    }

    fn offer(&mut self, shards: u16, d: &RegistryDelta) -> DeltaFit {
        let held = self.shards.get(&d.shard).map(|s| s.0);
        let fit = d.fit(shards, held);
        if fit == DeltaFit::Apply {
            let (v, hs, sum) = self.shards.get_mut(&d.shard).unwrap();
            for h in &d.households {
                if let Some(old) = hs.insert(h.id.0, h.clone()) {
                    sum.remove(&household_hash(&old));
                }
                sum.add(&household_hash(h));
            }
            *v = d.version;
            assert_eq!(sum.digest(d.shard, shards), d.digest);
        }
        fit
    }

    fn digest(&self, town: &TownId, card_check: &CardDigest, shards: u16) -> String {
        let ds: Vec<_> = self
            .shards
            .iter()
            .map(|(n, (_, _, sum))| sum.digest(*n, shards))
            .collect();
        registry_digest(town, card_check, &ds)
    }
}

#[test]
fn a_replica_reaches_hq_digest_by_deltas_and_recovers_a_missed_one() {
    let cards = CardDigestKey::derive(&golden::key());
    let mut hq = Source::new(
        (0..5_000)
            .map(|h| household(h, 1 + h % 4, &cards))
            .collect(),
        100,
    );
    let mut shelter = Replica::default();
    for n in 0..hq.shards {
        shelter.take_shard(hq.shard(n));
    }
    let check = cards.check_value();
    assert_eq!(
        shelter.digest(&town(), &check, hq.shards),
        hq.manifest(check).digest()
    );
    for v in 101..1_101u64 {
        let card = cards.digest(&CardRef {
            issuer_key_id: vec![9; 20],
            serial: v.to_be_bytes().to_vec(),
        });
        let d = hq.link((v * 7919 % 5_000) as u32, card, v);
        if v == 600 {
            // Missed (a broker restart): the next delta of that shard shows the gap.
            continue;
        }
        match shelter.offer(hq.shards, &d) {
            DeltaFit::Apply => {}
            DeltaFit::Gap => shelter.take_shard(hq.shard(d.shard)),
            DeltaFit::Old => panic!("delta {v} taken as old"),
        }
        // A delta offered twice (QoS 1 redelivery) changes nothing.
        assert_eq!(shelter.offer(hq.shards, &d), DeltaFit::Old);
    }
    let m = hq.manifest(check);
    // The manifest names the one shard still behind (if the gap was not yet seen).
    for (n, e) in m.shards.iter().enumerate() {
        if shelter.shards[&(n as u16)].2.digest(n as u16, hq.shards) != e.digest {
            shelter.take_shard(hq.shard(n as u16));
        }
    }
    assert_eq!(shelter.digest(&town(), &check, hq.shards), m.digest());
    assert_ne!(m.digest(), Source::new(vec![], 1).manifest(check).digest());
}

#[test]
fn deltas_fit_by_version() {
    let d = RegistryDelta {
        town: town(),
        shards: 8,
        shard: 1,
        base: 10,
        version: 12,
        households: vec![],
        digest: ShardDigest::default(),
    };
    assert_eq!(d.fit(8, Some(10)), DeltaFit::Apply);
    assert_eq!(d.fit(8, Some(12)), DeltaFit::Old);
    assert_eq!(d.fit(8, Some(13)), DeltaFit::Old);
    assert_eq!(d.fit(8, Some(9)), DeltaFit::Gap);
    assert_eq!(d.fit(8, Some(11)), DeltaFit::Gap);
    assert_eq!(d.fit(8, None), DeltaFit::Gap);
    assert_eq!(d.fit(16, Some(10)), DeltaFit::Gap);
}
