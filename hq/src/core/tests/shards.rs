//! The registry in shards: a card link is one delta; the tick makes that shard and the
//! manifest again, and nothing else.

use std::collections::HashMap;

use evac_protocol::messages::shards::household_hash;
use evac_protocol::{
    CardRef, CommandAction, RegistryDelta, RegistryHousehold, RegistryManifest, RegistryShard,
    ShardSum, Signable,
};

use super::*;

fn open<T: Signable>(o: &Publication, hq: &PublicKey) -> T {
    let json = evac_protocol::packed::unpack(&o.payload, 1 << 20).unwrap();
    Signed::<T>::from_json(&json).unwrap().open(hq).unwrap()
}

fn hq_of(households: u32, dir: &std::path::Path) -> (Hq, PublicKey) {
    let town = generate(&GenerateParams {
        households,
        shelters: 4,
        seed: 2,
    });
    let key = SecretKey::from_seed(&[2; 32]);
    let public = key.public();
    let hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        Store::open(&dir.join("hq.sqlite")).unwrap(),
        KeyRing::default(),
        key,
        60_000,
        1_000_000,
    )
    .unwrap();
    (hq, public)
}

#[test]
fn a_card_link_is_one_delta_and_the_tick_makes_one_shard_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hq, hq_pub) = hq_of(2_500, dir.path());
    let officer: evac_protocol::OfficerId = "tanaka".parse().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let mut keys = hq.keys().clone();
    keys.add_officer(officer.clone(), key.public());
    hq.set_keys(keys);

    // What a shelter joining now reads: every shard, then the manifest, none over 1 MiB.
    let out = hq.on_connect(1_000_000).unwrap();
    let shards: Vec<RegistryShard> = out
        .iter()
        .filter(|o| o.topic.contains("/registry/shard/"))
        .inspect(|o| assert!(o.retain && o.payload.len() <= evac_protocol::MAX_MESSAGE))
        .map(|o| open(o, &hq_pub))
        .collect();
    let manifest_at = out
        .iter()
        .position(|o| o.topic.ends_with("/registry/manifest"))
        .unwrap();
    assert!(out[manifest_at].retain);
    assert!(
        out[..manifest_at]
            .iter()
            .filter(|o| o.topic.contains("/registry/shard/"))
            .count()
            == shards.len(),
        "every shard goes before the manifest"
    );
    let manifest: RegistryManifest = open(&out[manifest_at], &hq_pub);
    assert_eq!(shards.len(), 4);
    assert_eq!(manifest.shards.len(), 4);
    assert!(shards.iter().all(|s| s.is_consistent()));
    let mut replica: Vec<HashMap<u32, RegistryHousehold>> = shards
        .iter()
        .map(|s| s.households.iter().map(|h| (h.id.0, h.clone())).collect())
        .collect();

    let resident = hq.board().first_resident();
    let link = officer_command(
        &key,
        &officer,
        1,
        1_000_000,
        CommandAction::LinkCard {
            card: CardRef {
                issuer_key_id: vec![0xab; 20],
                serial: vec![9, 9],
            },
            resident,
        },
    );
    let out = hq.on_command(&officer, &link, 1_000_000).unwrap();
    assert!(reply_of(&out).ok);
    let registry: Vec<&Publication> = out
        .iter()
        .filter(|o| o.topic.contains("/registry"))
        .collect();
    assert_eq!(registry.len(), 1, "one message for the link");
    assert!(registry[0].topic.ends_with("/registry/delta") && !registry[0].retain);
    let delta: RegistryDelta = open(registry[0], &hq_pub);
    let n = usize::from(delta.shard);
    assert_eq!(delta.base, manifest.shards[n].version);
    assert_eq!(delta.version, hq.registry_version());
    assert_eq!(delta.households.len(), 1);
    for h in &delta.households {
        replica[n].insert(h.id.0, h.clone());
    }
    let sum = ShardSum::of(replica[n].values());
    assert_eq!(sum.digest(delta.shard, 4), delta.digest);
    let now = hq.registry_manifest();
    assert_eq!(now.shards[n].digest, delta.digest);
    let digests: Vec<_> = replica
        .iter()
        .enumerate()
        .map(|(i, hs)| ShardSum::of(hs.values()).digest(i as u16, 4))
        .collect();
    assert_eq!(
        evac_protocol::messages::shards::registry_digest(&now.town, &now.card_check, &digests),
        now.digest(),
        "the replica with the delta is HQ's registry"
    );
    assert_ne!(now.digest(), manifest.digest());

    // The tick makes the changed shard and the manifest again; the next makes nothing.
    let out = hq.tick(1_000_100, false).unwrap();
    let topics: Vec<&str> = out
        .iter()
        .filter(|o| o.topic.contains("/registry/"))
        .map(|o| o.topic.as_str())
        .collect();
    assert_eq!(
        topics,
        [
            format!("evac/v1/minato/registry/shard/{n}").as_str(),
            "evac/v1/minato/registry/manifest"
        ]
    );
    let shard: RegistryShard = open(
        &out[out
            .iter()
            .position(|o| o.topic.contains("/shard/"))
            .unwrap()],
        &hq_pub,
    );
    assert_eq!((shard.version, shard.digest), (delta.version, delta.digest));
    assert!(shard.households.iter().all(|h| {
        replica[n]
            .get(&h.id.0)
            .is_some_and(|r| household_hash(r) == household_hash(h))
    }));
    assert!(
        !hq.tick(1_000_200, false)
            .unwrap()
            .iter()
            .any(|o| o.topic.contains("/registry/"))
    );
    // The same link again changes nothing.
    let again = officer_command(
        &key,
        &officer,
        2,
        1_000_300,
        CommandAction::LinkCard {
            card: CardRef {
                issuer_key_id: vec![0xab; 20],
                serial: vec![9, 9],
            },
            resident,
        },
    );
    let out = hq.on_command(&officer, &again, 1_000_300).unwrap();
    assert!(!out.iter().any(|o| o.topic.contains("/registry")));

    // After a restart the content, so the digest, is the same.
    let digest = now.digest();
    drop(hq);
    let (hq, _) = hq_of(2_500, dir.path());
    assert_eq!(hq.registry_manifest().digest(), digest);
}
