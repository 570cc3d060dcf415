//! HQ against Mosquitto (Debian's) by configuration alone, with the ACL example of
//! `deploy/mosquitto/acl`: events flow and are acked; the ACL keeps shelter-1 off shelter 2's
//! topic and off every topic it may not read, and HQ's own check would refuse it anyway.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use evac_protocol::{SecretKey, ShelterId};
use support::*;

use evac_testkit::Mosquitto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_works_through_mosquitto_with_the_example_acl() {
    let d = HqDir::new(100);
    assert_eq!(
        d.shelter_keys[0].0,
        ShelterId(1),
        "the example ACL names shelters 1 and 2"
    );
    assert_eq!(d.shelter_keys[1].0, ShelterId(2));
    let pwfile = d.path("mosquitto-passwd");
    for (i, user) in ["hq", "shelter-1", "shelter-2"].iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        cmd.arg("-b");
        if i == 0 {
            cmd.arg("-c");
        }
        assert!(
            cmd.arg(&pwfile)
                .args([user, PASSWORD])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
        );
    }
    let acl = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/mosquitto/acl");
    std::fs::write(
        d.path("mosquitto.conf"),
        format!(
            // `user root`: started as root, Mosquitto would drop to user `mosquitto`, which
            // cannot read the ACL from a checkout under a private directory (/root, mktemp -d).
            "user root\nlistener {} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {acl}\npersistence false\n",
            d.port,
            pwfile.display()
        ),
    )
    .unwrap();
    let _mosq = Mosquitto::start(&d.path("mosquitto.conf"), d.port, None);
    let cfg = d.write_config(
        "hq-mosquitto.toml",
        &format!("mode = \"external\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"hq\"\npassword = \"{PASSWORD}\"", d.port),
    );
    let _hq = Proc::start(&d, "run", &cfg, false);

    let (s1, k1) = (ShelterId(1), SecretKey::from_seed(&[10; 32]));
    let mut a = Client::connect(
        d.port,
        "s1",
        "shelter-1",
        PASSWORD,
        &[topic("shelter/1/ack")],
    )
    .await;
    a.wait_for(30, "HQ's first ack through Mosquitto", |m| {
        ack_through(m, &d.hq_public) == Some((s1, 0))
    })
    .await;
    a.publish(
        &topic("shelter/1/events"),
        batch(&k1, s1, s1, &[check_in(s1, 1, 4, 1_795_000_000_000)]),
    )
    .await;
    a.wait_for(20, "the ack", |m| {
        ack_through(m, &d.hq_public) == Some((s1, 1))
    })
    .await;
    // shelter-1 may not write on shelter 2's topic: Mosquitto drops it before HQ sees it.
    a.publish(
        &topic("shelter/2/events"),
        batch(
            &k1,
            ShelterId(2),
            ShelterId(2),
            &[check_in(ShelterId(2), 1, 5, 1)],
        ),
    )
    .await;
    // Nor read beyond its ack and the registry (the old ACL's `pattern` lines gave every
    // user the status, orders and every shelter's state).
    let mut spy = Client::connect(
        d.port,
        "s1-spy",
        "shelter-1",
        PASSWORD,
        &[
            "#".into(),
            topic("status"),
            topic("orders"),
            topic("shelter/+/state"),
            topic("shelter/2/ack"),
        ],
    )
    .await;
    spy.connected(20).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    spy.drain();
    // Mosquitto takes `#` but delivers through it only what the user may read.
    // The registry is `registry/...` (manifest, shards, deltas).
    let allowed = |t: &str| t == topic("shelter/1/ack") || t.starts_with(&topic("registry/"));
    assert!(
        spy.seen.iter().all(|m| allowed(&m.topic)),
        "shelter-1 read {:?}",
        spy.seen.iter().map(|m| &m.topic).collect::<Vec<_>>()
    );
    assert!(d.stored_events(ShelterId(2)).is_empty());
    assert!(
        d.rejections().is_empty(),
        "Mosquitto let it through: {:?}",
        d.rejections()
    );
    assert_eq!(d.stored_events(s1), vec![1]);
}
