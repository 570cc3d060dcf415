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
/// whole registry twice on HQ's loop (38 MB of JSON at 100,000 households). The link's reply
/// comes without the registry; the registry message, made off the loop, comes from a tick,
/// and a restart finds the same content (no new version).
#[test]
fn a_card_link_is_answered_at_once_and_its_registry_follows_from_a_tick() {
    use evac_protocol::{CardDigestKey, CardRef, CommandAction, RegistrySnapshot};
    let (mut hq, node, _, s, dir) = setup();
    let officer: evac_protocol::OfficerId = "tanaka".parse().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let mut keys = hq.keys().clone();
    keys.add_officer(officer.clone(), key.public());
    hq.set_keys(keys.clone());
    hq.on_connect(1_000_000).unwrap();
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
    assert!(
        !out.iter().any(|o| o.topic.ends_with("/registry")),
        "the registry was built on HQ's loop"
    );
    let registry = |o: &Publication| -> RegistrySnapshot {
        let json = evac_protocol::packed::unpack(&o.payload, 64 << 20).unwrap();
        Signed::<RegistrySnapshot>::from_json(&json)
            .unwrap()
            .body_unverified()
            .unwrap()
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let published = loop {
        let out = hq.tick(1_000_100, false).unwrap();
        if let Some(o) = out.iter().find(|o| o.topic.ends_with("/registry")) {
            break registry(o);
        }
        assert!(
            std::time::Instant::now() < end,
            "no registry from the ticks"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let digest = CardDigestKey::derive(&SecretKey::from_seed(&[2; 32])).digest(&card);
    let r = published
        .households
        .iter()
        .flat_map(|h| &h.residents)
        .find(|r| r.id == resident)
        .unwrap();
    assert!(r.card_digests.contains(&digest));
    // Nothing more until the next link.
    assert!(
        !hq.tick(1_000_200, false)
            .unwrap()
            .iter()
            .any(|o| o.topic.ends_with("/registry"))
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
    let again = hq
        .on_connect(2_000_000_000)
        .unwrap()
        .into_iter()
        .find(|o| o.topic.ends_with("/registry"))
        .unwrap();
    assert_eq!(
        registry(&again).version,
        published.version,
        "the same content after a restart"
    );
}
