//! Shelter events reach HQ's store exactly once through an HQ restart and a broker restart,
//! with real processes: `evac-hq broker` (the embedded broker on its own) and `evac-hq run`
//! against it, and MQTT clients that sign like shelters.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_stored_once_through_hq_and_broker_restarts() {
    let d = HqDir::new(300);
    let broker_cfg = d.path("hq.toml");
    let hq_cfg = d.write_config(
        "hq-external.toml",
        &format!("mode = \"external\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"hq\"\npassword = \"{PASSWORD}\"", d.port),
    );
    let mut broker = Proc::start(&d, "broker", &broker_cfg, true);
    let mut hq = Proc::start(&d, "run", &hq_cfg, false);
    let mut viewer = Client::connect(
        d.port,
        "viewer-1",
        "viewer",
        PASSWORD,
        &[topic("registry/#")],
    )
    .await;
    viewer
        .wait_for(20, "the retained registry manifest", |m| {
            m.topic.ends_with("/registry/manifest")
        })
        .await;

    let mut a = TestShelter::connect(&d, 0).await;
    let mut b = TestShelter::connect(&d, 1).await;
    a.tap(20, 0);
    b.tap(20, 100);
    a.sync(20).await;
    b.sync(20).await;
    assert_eq!(d.stored_events(a.id), (1..=20).collect::<Vec<_>>());
    assert_eq!(d.stored_events(b.id), (1..=20).collect::<Vec<_>>());

    // A resend of everything (a shelter that missed the ack) stores nothing twice.
    let all = a.events.clone();
    a.client
        .publish(
            &topic(&format!("shelter/{}/events", a.id)),
            batch_of(&d, 0, &all),
        )
        .await;
    a.client
        .wait_for(10, "an ack after the duplicate", |m| {
            ack_through(m, &d.hq_public) == Some((a.id, 20))
        })
        .await;

    // HQ restarts while the broker stays up: what shelters send meanwhile waits in HQ's
    // persistent session and is stored when HQ is back. No resend here.
    hq.kill();
    a.tap(10, 0);
    a.flush().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.stored_events(a.id).len(), 20, "HQ is down");
    a.client.drain();
    a.client.seen.clear();
    let hq2 = Proc::start(&d, "run", &hq_cfg, false);
    a.client
        .wait_for(30, "the ack of events sent while HQ was down", |m| {
            ack_through(m, &d.hq_public) == Some((a.id, 30))
        })
        .await;
    a.acked = 30;
    assert_eq!(d.stored_events(a.id), (1..=30).collect::<Vec<_>>());

    // The broker restarts: rumqttd loses every session and retained message. Shelters
    // reconnect and resend what is unacked; HQ reconnects and republishes its acks.
    broker.kill();
    b.tap(15, 100);
    b.flush().await; // into a dead connection: lost unless resent
    let _broker2 = Proc::start(&d, "broker", &broker_cfg, true);
    b.sync(40).await;
    a.tap(5, 0);
    a.sync(30).await;
    assert_eq!(d.stored_events(a.id), (1..=35).collect::<Vec<_>>());
    assert_eq!(d.stored_events(b.id), (1..=35).collect::<Vec<_>>());
    assert!(
        d.rejections().is_empty(),
        "{:?}\n{}",
        d.rejections(),
        hq2.log()
    );
}

fn batch_of(d: &HqDir, n: usize, events: &[evac_protocol::CheckEvent]) -> Vec<u8> {
    let (id, key) = &d.shelter_keys[n];
    batch(key, *id, *id, events)
}
