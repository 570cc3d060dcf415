//! Against the real embedded broker: a node with shelter A's credentials and key cannot get
//! events accepted as shelter B; forged signatures are counted and refused; a wrong password
//! does not connect; a client without an officer key cannot command.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::time::Duration;

use evac_protocol::{CommandAction, CommandReply, SecretKey, Signed};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_forgery_and_unkeyed_commands_are_refused() {
    let d = HqDir::new(200);
    let hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    let (a_id, a_key) = (d.shelter_keys[0].0, SecretKey::from_seed(&[10; 32]));
    let b_id = d.shelter_keys[1].0;
    let mut a = Client::connect(
        d.port,
        "a",
        &format!("shelter-{a_id}"),
        PASSWORD,
        &[topic("shelter/+/ack")],
    )
    .await;
    // HQ is subscribed once it has published its retained acks.
    a.wait_for(20, "HQ's first ack", |m| {
        ack_through(m, &d.hq_public) == Some((a_id, 0))
    })
    .await;

    // Shelter A's node, signing with A's key, claims to be B in every way it can.
    let b_topic = topic(&format!("shelter/{b_id}/events"));
    let forged_as_b = vec![check_in(b_id, 1, 5, 1_795_000_000_000)];
    a.publish(&b_topic, batch(&a_key, b_id, b_id, &forged_as_b))
        .await; // signer "shelter:B", A's key
    a.publish(
        &b_topic,
        batch(
            &a_key,
            a_id,
            a_id,
            &[check_in(a_id, 1, 5, 1_795_000_000_000)],
        ),
    )
    .await; // A's batch on B's topic
    // A forged signature on A's own topic (a key HQ does not know).
    let stranger = SecretKey::from_seed(&[99; 32]);
    let a_topic = topic(&format!("shelter/{a_id}/events"));
    a.publish(
        &a_topic,
        batch(
            &stranger,
            a_id,
            a_id,
            &[check_in(a_id, 1, 6, 1_795_000_000_000)],
        ),
    )
    .await;
    // Garbage.
    a.publish(&a_topic, b"{not json".to_vec()).await;
    // And one honest event, which must get through.
    a.publish(
        &a_topic,
        batch(
            &a_key,
            a_id,
            a_id,
            &[check_in(a_id, 1, 7, 1_795_000_000_000)],
        ),
    )
    .await;
    a.wait_for(20, "A's ack through 1", |m| {
        ack_through(m, &d.hq_public) == Some((a_id, 1))
    })
    .await;
    wait_until(10, "four rejections", || d.rejections().len() >= 4);
    assert_eq!(
        d.stored_events(b_id),
        Vec::<u64>::new(),
        "nothing stored as B"
    );
    assert_eq!(d.stored_events(a_id), vec![1]);
    let rej = d.rejections();
    assert_eq!(rej.len(), 4, "{rej:?}");
    assert!(
        rej.iter()
            .any(|(t, r)| t == &b_topic && r.contains("bad signature")),
        "{rej:?}"
    );
    assert!(
        rej.iter()
            .any(|(t, r)| t == &b_topic && r.contains(&format!("names shelter {a_id}"))),
        "{rej:?}"
    );
    assert!(
        rej.iter()
            .any(|(t, r)| t == &a_topic && r.contains("bad signature")),
        "{rej:?}"
    );
    assert!(
        rej.iter()
            .any(|(t, r)| t == &a_topic && r.contains("malformed")),
        "{rej:?}"
    );
    assert!(
        !a.seen
            .iter()
            .any(|m| ack_through(m, &d.hq_public).is_some_and(|(s, t)| s == b_id && t > 0)),
        "B acked"
    );

    // A wrong password does not get in.
    let intruder =
        Client::connect(d.port, "intruder", &format!("shelter-{a_id}"), "wrong", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(*intruder.connects.borrow(), 0, "a wrong password connected");

    // A viewer without an officer key cannot command, neither in its own name nor in an
    // officer's; the officer's own signed command works.
    let mut viewer = Client::connect(
        d.port,
        "viewer",
        "viewer",
        PASSWORD,
        &[topic("cmd/+/reply")],
    )
    .await;
    viewer.connected(20).await;
    let close = CommandAction::CloseShelter { shelter: a_id };
    let viewer_key = SecretKey::from_seed(&[77; 32]);
    viewer
        .publish(
            &topic("cmd/viewer"),
            command(&viewer_key, "viewer", 1, close.clone()),
        )
        .await;
    viewer
        .publish(
            &topic("cmd/tanaka"),
            command(&viewer_key, "tanaka", 2, close.clone()),
        )
        .await;
    viewer.publish(&topic("cmd/tanaka"), b"{\"officer\":\"tanaka\",\"id\":3,\"at_ms\":0,\"action\":\"close-shelter\",\"shelter\":1}".to_vec()).await;
    let reply = |m: &Msg| {
        Signed::<CommandReply>::from_json(&m.payload)
            .ok()?
            .open(&d.hq_public)
            .ok()
    };
    for (who, id) in [("viewer", 1), ("tanaka", 2), ("tanaka", 0)] {
        let m = viewer
            .wait_for(10, "a refusal", |m| {
                m.topic.contains(&format!("cmd/{who}/reply"))
                    && reply(m).is_some_and(|r| r.command_id == id)
            })
            .await;
        let r = reply(&m).unwrap();
        assert!(!r.ok, "{r:?}");
    }
    let conn = rusqlite::Connection::open(d.store_path()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM commands", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "a refused command was carried out");
    let mut officer = Client::connect(d.port, "tanaka", "officer-tanaka", PASSWORD, &[]).await;
    officer.connected(20).await;
    officer
        .publish(
            &topic("cmd/tanaka"),
            command(&d.officer_key, "tanaka", 9, close),
        )
        .await;
    let m = viewer
        .wait_for(10, "the officer's reply", |m| {
            reply(m).is_some_and(|r| r.command_id == 9)
        })
        .await;
    assert!(reply(&m).unwrap().ok, "{:?}\n{}", reply(&m), hq.log());
}
