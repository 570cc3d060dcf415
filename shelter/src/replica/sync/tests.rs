use evac_protocol::{SecretKey, Signable};

use super::*;
use crate::replica::tests::{Hq, card, town};

fn hq_key() -> SecretKey {
    SecretKey::from_seed(&[2; 32])
}

fn wire<T: Signable>(body: &T) -> Vec<u8> {
    let json = hq_key().sign("hq", body).unwrap().to_json().unwrap();
    evac_protocol::packed::pack(json.as_bytes())
}

fn sync(dir: &tempfile::TempDir) -> Sync {
    let replica = Replica::open(&dir.path().join("registry.sqlite")).unwrap();
    Sync::new(town(), hq_key().public(), replica)
}

fn shard_topic(n: u16) -> String {
    format!("evac/v1/minato/registry/shard/{n}")
}

const MANIFEST: &str = "evac/v1/minato/registry/manifest";
const DELTA: &str = "evac/v1/minato/registry/delta";

#[test]
fn a_late_shelter_reads_the_shards_the_manifest_names_and_rereads_after_a_missed_delta() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sync(&dir);
    let mut hq = Hq::new(20_000, 1);
    assert_eq!(hq.shards, 32);
    for v in 2..302u64 {
        hq.link((v * 31 % 20_000) as u32, card(5_000_000 + v), v);
    }
    assert_eq!(
        s.connected(),
        [
            Action::Subscribe(MANIFEST.into()),
            Action::Subscribe(DELTA.into())
        ]
    );
    // The manifest: the first eight shards are read, then each shard read makes room.
    let out = s.on_message(MANIFEST, &wire(&hq.manifest()));
    assert_eq!(
        out,
        (0..READING as u16)
            .map(|n| Action::Subscribe(shard_topic(n)))
            .collect::<Vec<_>>()
    );
    // Shards are taken a batch at a time: once every shard being read has come.
    let mut last = Vec::new();
    for n in 0..hq.shards {
        last = s.on_message(&shard_topic(n), &wire(&hq.shard(n)));
        let batch_end = (n as usize + 1).is_multiple_of(READING);
        if !batch_end {
            assert!(last.is_empty(), "{n}: {last:?}");
            continue;
        }
        let first = n + 1 - READING as u16;
        for (i, m) in (first..=n).enumerate() {
            assert_eq!(last[i], Action::Unsubscribe(shard_topic(m)));
        }
        let next = n + 1;
        if next < hq.shards {
            assert_eq!(last[READING], Action::Subscribe(shard_topic(next)));
        }
    }
    let digest = hq.manifest().digest();
    assert_eq!(
        last.last(),
        Some(&Action::Synced {
            version: 301,
            digest: digest.clone()
        })
    );

    // Deltas follow; a missed one shows at the next delta of its shard.
    let mut reread = None;
    for v in 302..402u64 {
        let d = hq.link((v * 37 % 20_000) as u32, card(6_000_000 + v), v);
        if v == 350 {
            continue;
        }
        let out = s.on_message(DELTA, &wire(&d));
        if out.contains(&Action::Subscribe(shard_topic(d.shard))) {
            assert!(reread.is_none());
            reread = Some(d.shard);
            // A shard older than ours (HQ has not made it again yet): still subscribed.
            let mut stale = hq.shard(d.shard);
            stale.version = 1;
            let out = s.on_message(&shard_topic(d.shard), &wire(&stale));
            assert!(!out.contains(&Action::Unsubscribe(shard_topic(d.shard))));
            let out = s.on_message(&shard_topic(d.shard), &wire(&hq.shard(d.shard)));
            assert_eq!(out[0], Action::Unsubscribe(shard_topic(d.shard)));
        } else {
            assert!(
                out.iter().all(|a| matches!(a, Action::Synced { .. })),
                "{v}: {out:?}"
            );
        }
    }
    assert!(reread.is_some(), "the gap was seen");
    assert_eq!(s.replica().digest().unwrap(), Some(hq.manifest().digest()));
    // What HQ did not sign is not taken.
    let forged = SecretKey::from_seed(&[9; 32])
        .sign("hq", &hq.manifest())
        .unwrap()
        .to_json()
        .unwrap();
    assert!(s.on_message(MANIFEST, forged.as_bytes()).is_empty());
    assert_eq!(s.rejected, 1);
}

#[test]
fn a_reconnection_reads_again_the_shards_it_was_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sync(&dir);
    let hq = Hq::new(20_000, 1);
    s.connected();
    s.on_message(MANIFEST, &wire(&hq.manifest()));
    s.on_message(&shard_topic(0), &wire(&hq.shard(0)));
    s.not_subscribed(&shard_topic(8));
    let out = s.connected();
    assert_eq!(out.len(), 2 + READING);
    assert!(out.contains(&Action::Subscribe(shard_topic(1))));
    assert!(!out.contains(&Action::Subscribe(shard_topic(0))));
}

#[test]
fn a_shard_whose_subscription_failed_is_read_at_the_next_idle_and_come_shards_are_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sync(&dir);
    let hq = Hq::new(3_000, 1);
    assert_eq!(hq.shards, 4);
    s.connected();
    s.on_message(MANIFEST, &wire(&hq.manifest()));
    // Shard 0 has come, the others being read have not: it waits for them, or for idle.
    assert!(
        s.on_message(&shard_topic(0), &wire(&hq.shard(0)))
            .is_empty()
    );
    // Then no message comes: a shard whose subscription failed is read again all the same.
    s.not_subscribed(&shard_topic(3));
    let out = s.idle();
    assert!(
        out.contains(&Action::Unsubscribe(shard_topic(0))),
        "{out:?}"
    );
    assert!(out.contains(&Action::Subscribe(shard_topic(3))), "{out:?}");
    assert_eq!(
        s.replica().shard_digests().unwrap()[0],
        Some(hq.shard(0).digest)
    );
    // Nothing come, a subscription failed again: idle reads it.
    s.not_subscribed(&shard_topic(3));
    assert_eq!(s.idle(), vec![Action::Subscribe(shard_topic(3))]);
    assert!(s.idle().is_empty());
}
