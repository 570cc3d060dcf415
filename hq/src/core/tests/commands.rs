//! Officers' commands: a reused number, a card link.

use super::*;

/// Issue 18 item 3: HQ answered a repeated (officer, id) with the first outcome before looking
/// at the body, so a dashboard whose clock stepped back (ids are its `now_ms`) showed Done for
/// a close-shelter that never happened.
#[test]
fn a_reused_command_number_with_another_body_is_refused_not_answered_done() {
    use evac_protocol::CommandAction;
    let (mut hq, _, _, s, _dir) = setup();
    let officer: evac_protocol::OfficerId = "tanaka".parse().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let mut keys = hq.keys().clone();
    keys.add_officer(officer.clone(), key.public());
    hq.set_keys(keys);
    let resident = hq.board().first_resident();
    let found = officer_command(
        &key,
        &officer,
        42,
        1_000_000,
        CommandAction::MarkFound {
            resident,
            note: "safe".into(),
        },
    );
    let first = reply_of(&hq.on_command(&officer, &found, 1_000_000).unwrap());
    assert!(first.ok, "{first:?}");
    // The same signed body again (a resend): the first outcome, not carried out again.
    let again = reply_of(&hq.on_command(&officer, &found, 1_000_500).unwrap());
    assert!(
        again.ok && again.message.contains("handled already"),
        "{again:?}"
    );
    assert_eq!(hq.store().commands().unwrap().len(), 1);
    // Another command under the same number: refused, said so, and not carried out.
    let close = officer_command(
        &key,
        &officer,
        42,
        1_000_900,
        CommandAction::CloseShelter { shelter: s },
    );
    let refused = reply_of(&hq.on_command(&officer, &close, 1_001_000).unwrap());
    assert!(!refused.ok, "{refused:?}");
    assert!(
        refused.message.contains("used already"),
        "{}",
        refused.message
    );
    let idx = hq.book().shelter_idx(s).unwrap();
    assert!(hq.book().is_open(idx), "the shelter was closed");
    assert_eq!(hq.store().commands().unwrap().len(), 1);
    assert_eq!(hq.rejected(), 1);
}

/// Issue 18 item 8: a card link rescanned every link for every resident and serialised the
/// whole registry twice on HQ's loop (38 MB of JSON at 100,000 households). Issue 22: the
/// link's reply comes with one delta, its shard and the manifest come from a tick, no
/// message ever carries the whole registry, and a restart finds the same content (no new
/// version).
#[test]
fn a_card_link_is_answered_at_once_and_its_registry_follows_from_a_tick() {
    use evac_protocol::{CardDigestKey, CardRef, CommandAction, RegistryManifest, Topic};
    let (mut hq, node, _, s, dir) = setup();
    let officer: evac_protocol::OfficerId = "tanaka".parse().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let mut keys = hq.keys().clone();
    keys.add_officer(officer.clone(), key.public());
    hq.set_keys(keys.clone());
    let whole = |o: &Publication| matches!(o.topic.parse(), Ok(Topic::Registry(_)));
    assert!(!hq.on_connect(1_000_000).unwrap().iter().any(whole));
    let resident = hq.board().first_resident();
    let card = CardRef {
        issuer_key_id: vec![0xab; 20],
        serial: vec![9, 9],
    };
    let link = officer_command(
        &key,
        &officer,
        1,
        1_000_000,
        CommandAction::LinkCard {
            card: card.clone(),
            resident,
        },
    );
    let out = hq.on_command(&officer, &link, 1_000_000).unwrap();
    assert!(reply_of(&out).ok, "{:?}", reply_of(&out));
    assert!(!out.iter().any(whole), "the whole registry was made");
    let manifest = |o: &Publication| -> RegistryManifest {
        let json = evac_protocol::packed::unpack(&o.payload, 1 << 20).unwrap();
        Signed::<RegistryManifest>::from_json(&json)
            .unwrap()
            .body_unverified()
            .unwrap()
    };
    let out = hq.tick(1_000_100, false).unwrap();
    assert!(!out.iter().any(whole));
    let published = manifest(
        out.iter()
            .find(|o| o.topic.ends_with("/registry/manifest"))
            .expect("the manifest from the tick"),
    );
    assert_eq!(published.digest(), hq.registry_manifest().digest());
    let digest = CardDigestKey::derive(&SecretKey::from_seed(&[2; 32])).digest(&card);
    let shards = published.shard_count();
    let house = hq
        .household_ids()
        .into_iter()
        .map(|h| {
            hq.registry_shard(evac_protocol::messages::shards::shard_of(
                evac_protocol::HouseholdId(h),
                shards,
            ))
        })
        .find_map(|s| {
            s.households
                .into_iter()
                .find(|h| h.residents.iter().any(|r| r.id == resident))
        })
        .unwrap();
    let r = house.residents.iter().find(|r| r.id == resident).unwrap();
    assert!(r.card_digests.contains(&digest));
    // Nothing more until the next link.
    assert!(
        !hq.tick(1_000_200, false)
            .unwrap()
            .iter()
            .any(|o| o.topic.contains("/registry"))
    );
    drop(hq);
    let town = generate(&GenerateParams {
        households: 100,
        shelters: 4,
        seed: 2,
    });
    let _ = (node, s);
    let mut hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        Store::open(&dir.path().join("hq.sqlite")).unwrap(),
        keys,
        SecretKey::from_seed(&[2; 32]),
        60_000,
        2_000_000_000,
    )
    .unwrap();
    let out = hq.on_connect(2_000_000_000).unwrap();
    assert!(!out.iter().any(whole));
    let again = out
        .iter()
        .find(|o| o.topic.ends_with("/registry/manifest"))
        .unwrap();
    assert_eq!(
        (manifest(again).version, manifest(again).digest()),
        (published.version, published.digest()),
        "the same content after a restart"
    );
}
