//! Against the real embedded broker and its gate, with a shelter's real login and key: what
//! the login may not read it never receives, what it may not write never reaches anyone, its
//! client id cannot take over HQ's session, and what reaches HQ with a forged signature is
//! refused and counted. A wrong password does not connect; a viewer cannot command.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::time::Duration;

use evac_protocol::{
    Ack, CommandAction, CommandReply, OfficerCommand, OrderBatch, RegistryManifest, RegistryShard,
    SecretKey, Signed, Slug, StatusMessage, officer_signer,
};
use support::*;

/// Whether `m` is a message HQ signed (of the kind its topic carries).
fn hq_signed(m: &Msg, d: &HqDir) -> bool {
    let k = &d.hq_public;
    let t = &m.topic;
    if t.ends_with("/registry/manifest") {
        evac_protocol::packed::unpack(&m.payload, 1 << 24).is_ok_and(|json| {
            Signed::<RegistryManifest>::from_json(&json).is_ok_and(|s| s.open(k).is_ok())
        })
    } else if t.contains("/registry/shard/") {
        evac_protocol::packed::unpack(&m.payload, 1 << 24).is_ok_and(|json| {
            Signed::<RegistryShard>::from_json(&json).is_ok_and(|s| s.open(k).is_ok())
        })
    } else if t.ends_with("/status") {
        Signed::<StatusMessage>::from_json(&m.payload).is_ok_and(|s| s.open(k).is_ok())
    } else if t.ends_with("/orders") {
        Signed::<OrderBatch>::from_json(&m.payload).is_ok_and(|s| s.open(k).is_ok())
    } else if t.ends_with("/ack") {
        Signed::<Ack>::from_json(&m.payload).is_ok_and(|s| s.open(k).is_ok())
    } else {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shelter_login_reads_and_writes_only_its_own_lanes() {
    let d = HqDir::new(200);
    let hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    let (a_id, a_key) = (d.shelter_keys[0].0, SecretKey::from_seed(&[10; 32]));
    let b_id = d.shelter_keys[1].0;
    let a_user = format!("shelter-{a_id}");
    // Shelter A's real login, with the filters it is entitled to: its ack and the registry.
    let mut a = Client::connect(
        d.port,
        "a",
        &a_user,
        PASSWORD,
        &[topic(&format!("shelter/{a_id}/ack")), topic("registry/#")],
    )
    .await;
    a.wait_for(20, "HQ's first ack", |m| {
        ack_through(m, &d.hq_public) == Some((a_id, 0))
    })
    .await;
    a.wait_for(20, "the registry's manifest", |m| {
        m.topic.ends_with("/registry/manifest")
    })
    .await;

    // The same login subscribing to everything gets nothing at all (not the retained
    // registry, status, B's ack); nor does a narrower filter beyond its lanes.
    let mut spy = Client::connect(
        d.port,
        "spy",
        &a_user,
        PASSWORD,
        &["#".into(), topic("status"), topic("shelter/+/ack")],
    )
    .await;
    spy.connected(20).await;

    // Retained junk on HQ's topics and on B's ack, and events forged as B on B's topic.
    for t in [
        "registry/manifest",
        "status",
        "orders",
        &format!("shelter/{b_id}/ack"),
    ] {
        a.publish_retained(&topic(t), b"{\"junk\":true}".to_vec())
            .await;
    }
    let b_topic = topic(&format!("shelter/{b_id}/events"));
    a.publish(
        &b_topic,
        batch(
            &a_key,
            b_id,
            b_id,
            &[check_in(b_id, 1, 5, 1_795_000_000_000)],
        ),
    )
    .await;

    // The login connects again with HQ's client id (and with B's): HQ is not kicked.
    let hq_id = Client::connect(d.port, "evac-hq-minato", &a_user, PASSWORD, &[]).await;
    let b_id_taken = Client::connect(
        d.port,
        &format!("evac-shelter-minato-{b_id}"),
        &a_user,
        PASSWORD,
        &[],
    )
    .await;

    // On A's own topic: a forged signature, garbage, then an honest event that gets through.
    let a_topic = topic(&format!("shelter/{a_id}/events"));
    let stranger = SecretKey::from_seed(&[99; 32]);
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
    a.publish(&a_topic, b"{not json".to_vec()).await;
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
    wait_until(10, "two rejections", || d.rejections().len() >= 2);
    tokio::time::sleep(Duration::from_millis(500)).await;

    spy.drain();
    assert!(
        spy.seen.is_empty(),
        "the shelter's login read beyond its lanes: {:?}",
        spy.seen.iter().map(|m| &m.topic).collect::<Vec<_>>()
    );
    assert_eq!(
        d.stored_events(b_id),
        Vec::<u64>::new(),
        "nothing stored as B"
    );
    assert_eq!(d.stored_events(a_id), vec![1]);
    let rej = d.rejections();
    assert_eq!(rej.len(), 2, "{rej:?}");
    assert!(rej.iter().all(|(t, _)| t == &a_topic), "{rej:?}");
    assert!(
        rej.iter().any(|(_, r)| r.contains("bad signature")),
        "{rej:?}"
    );
    assert!(rej.iter().any(|(_, r)| r.contains("malformed")), "{rej:?}");
    assert_eq!(
        hq.log().matches("connected to broker").count(),
        1,
        "HQ was kicked off the broker:\n{}",
        hq.log()
    );
    drop((hq_id, b_id_taken));

    // A newcomer reads only what HQ signed on HQ's topics and on B's ack.
    let mut viewer = Client::connect(
        d.port,
        "viewer-1",
        "viewer",
        PASSWORD,
        &[topic("registry/#"), topic("status"), topic("orders")],
    )
    .await;
    viewer
        .wait_for(20, "the retained registry and status", |m| {
            m.topic.ends_with("/status")
        })
        .await;
    viewer
        .wait_for(20, "the retained registry's manifest", |m| {
            m.topic.ends_with("/registry/manifest")
        })
        .await;
    let b_key = &d.shelter_keys[1].1;
    let mut b = Client::connect(
        d.port,
        "b",
        &format!("shelter-{b_id}"),
        PASSWORD,
        &[topic(&format!("shelter/{b_id}/ack"))],
    )
    .await;
    b.wait_for(20, "B's ack", |m| m.topic.ends_with("/ack"))
        .await;
    b.publish(
        &b_topic,
        batch(
            b_key,
            b_id,
            b_id,
            &[check_in(b_id, 1, 8, 1_795_000_000_000)],
        ),
    )
    .await;
    b.wait_for(20, "B's ack through 1", |m| {
        ack_through(m, &d.hq_public) == Some((b_id, 1))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    viewer.drain();
    b.drain();
    for m in viewer.seen.iter().chain(&b.seen) {
        assert!(hq_signed(m, &d), "junk reached a reader on {}", m.topic);
    }

    // Issue 12: 20 payloads of 60 MB held HQ at 2 GB. A shelter's login now sends at most
    // 1 MiB (four times the largest batch a shelter makes): a 2 MB message on its own topic
    // closes its connection at the header, and nothing of it reaches HQ.
    let big = Client::connect(d.port, "big", &a_user, PASSWORD, &[]).await;
    let mut connects = big.connects.clone();
    connects.wait_for(|n| *n >= 1).await.unwrap();
    big.publish(&a_topic, vec![b'['; 2 << 20]).await;
    tokio::time::timeout(Duration::from_secs(20), connects.wait_for(|n| *n >= 2))
        .await
        .expect("the broker did not close the connection of a 2 MB publish")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.rejections().len(), 2, "the 2 MB message reached HQ");
    drop(big);

    // A wrong password does not get in.
    let intruder = Client::connect(d.port, "intruder", &a_user, "wrong", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(*intruder.connects.borrow(), 0, "a wrong password connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_officer_with_a_key_commands() {
    let d = HqDir::new(100);
    let hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    let a_id = d.shelter_keys[0].0;
    let close = CommandAction::CloseShelter { shelter: a_id };
    let reply = |m: &Msg| {
        Signed::<CommandReply>::from_json(&m.payload)
            .ok()?
            .open(&d.hq_public)
            .ok()
    };
    // A viewer may neither command nor read an officer's replies: the broker drops both
    // (a viewer's command would get a refusal reply from HQ, and the viewer sees none).
    let mut viewer = Client::connect(
        d.port,
        "viewer",
        "viewer",
        PASSWORD,
        &[topic("cmd/+/reply")],
    )
    .await;
    viewer.connected(20).await;
    let viewer_key = SecretKey::from_seed(&[77; 32]);
    viewer
        .publish(
            &topic("cmd/tanaka"),
            command(&viewer_key, "tanaka", 2, close.clone()),
        )
        .await;
    // The officer's login, signing with a key HQ does not have, is refused with a reply.
    let mut officer = Client::connect(
        d.port,
        "tanaka",
        "officer-tanaka",
        PASSWORD,
        &[topic("cmd/tanaka/reply")],
    )
    .await;
    officer.connected(20).await;
    officer
        .publish(
            &topic("cmd/tanaka"),
            command(&viewer_key, "tanaka", 3, close.clone()),
        )
        .await;
    let m = officer
        .wait_for(10, "a refusal", |m| {
            reply(m).is_some_and(|r| r.command_id == 3)
        })
        .await;
    assert!(!reply(&m).unwrap().ok);
    let nine = command(&d.officer_key, "tanaka", 9, close);
    officer.publish(&topic("cmd/tanaka"), nine.clone()).await;
    let m = officer
        .wait_for(10, "the officer's reply", |m| {
            reply(m).is_some_and(|r| r.command_id == 9)
        })
        .await;
    assert!(reply(&m).unwrap().ok, "{:?}\n{}", reply(&m), hq.log());
    // Issue 12: a command for another town, one given long ago (held at a broker, or
    // replayed under a new number) and a reused number are each answered, never carried out.
    let signed = |cmd: &OfficerCommand| {
        d.officer_key
            .sign(&officer_signer(&cmd.officer), cmd)
            .unwrap()
            .to_json()
            .unwrap()
            .into_bytes()
    };
    let now = evac_protocol::time::now_ms();
    let base = OfficerCommand {
        officer: Slug::new("tanaka").unwrap(),
        town: Slug::new(TOWN).unwrap(),
        id: 10,
        at_ms: now,
        action: CommandAction::OpenShelter {
            shelter: d.shelter_keys[0].0,
        },
        reason: "test".into(),
    };
    let other_town = OfficerCommand {
        town: Slug::new("shiomihama").unwrap(),
        ..base.clone()
    };
    let stale = OfficerCommand {
        id: 11,
        at_ms: now - 3_600_000,
        ..base.clone()
    };
    for (cmd, why) in [
        (&other_town, "command for town shiomihama"),
        (&stale, "from HQ's clock"),
    ] {
        officer.publish(&topic("cmd/tanaka"), signed(cmd)).await;
        let m = officer
            .wait_for(10, why, |m| {
                reply(m).is_some_and(|r| r.command_id == cmd.id)
            })
            .await;
        let r = reply(&m).unwrap();
        assert!(!r.ok && r.message.contains(why), "{r:?}");
    }
    officer
        .publish(
            &topic("cmd/tanaka"),
            command(
                &d.officer_key,
                "tanaka",
                9,
                CommandAction::OpenShelter {
                    shelter: d.shelter_keys[0].0,
                },
            ),
        )
        .await;
    // Issue 18: another command under a used number is refused, not answered with the first
    // one's outcome; the same signed command again (a resend) is.
    let m = officer
        .wait_for(10, "the refusal of a reused number", |m| {
            reply(m).is_some_and(|r| r.command_id == 9 && r.message.contains("used already"))
        })
        .await;
    assert!(!reply(&m).unwrap().ok, "another command under number 9");
    officer.publish(&topic("cmd/tanaka"), nine).await;
    let m = officer
        .wait_for(10, "the answer to a repeated command", |m| {
            reply(m).is_some_and(|r| r.command_id == 9 && r.message.contains("handled already"))
        })
        .await;
    assert!(reply(&m).unwrap().ok, "as the first time");
    viewer.drain();
    assert!(viewer.seen.is_empty(), "a viewer read an officer's replies");
    let conn = rusqlite::Connection::open(d.store_path()).unwrap();
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM commands ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ids, [9], "only the keyed command was carried out");
}

/// `evac-hq cmd` with a reason and `extra` arguments; (exit code, stdout, stderr).
fn cmd(d: &HqDir, key: &std::path::Path, password: &str, extra: &[&str]) -> (i32, String, String) {
    cmd_why(d, key, password, "the road to it is under water", extra)
}

fn cmd_why(
    d: &HqDir,
    key: &std::path::Path,
    password: &str,
    reason: &str,
    extra: &[&str],
) -> (i32, String, String) {
    cmd_at(
        d,
        &format!("127.0.0.1:{}", d.port),
        key,
        password,
        reason,
        extra,
    )
}

fn cmd_at(
    d: &HqDir,
    broker: &str,
    key: &std::path::Path,
    password: &str,
    reason: &str,
    extra: &[&str],
) -> (i32, String, String) {
    let pw = d.path(&format!("pw-{password}"));
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evac-hq"))
        .arg("cmd")
        .args(["--broker", broker, "--town", TOWN])
        .args(["--officer", "tanaka", "--timeout", "10"])
        .arg("--key")
        .arg(key)
        .arg("--hq-key")
        .arg(d.path("hq.pub"))
        .arg("--password-file")
        .arg(&pw)
        .args(["--reason", reason])
        .args(extra)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn evac_hq_cmd_signs_sends_and_prints_hqs_reply() {
    let d = HqDir::new(100);
    let _hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    let key = d.path("officer-tanaka.key");
    std::fs::write(&key, d.officer_key.to_pem().unwrap()).unwrap();
    let shelter = d.shelter_keys[0].0.0.to_string();
    // The officer's key: carried out.
    let (code, out, err) = cmd(&d, &key, PASSWORD, &["close-shelter", &shelter]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    let (code, out, err) = cmd(&d, &key, PASSWORD, &["open-shelter", &shelter]);
    assert_eq!(code, 0, "{out}{err}");
    // No reason: HQ refuses (the dashboard asks for one; HQ does not take its word for it).
    let (code, out, err) = cmd_why(&d, &key, PASSWORD, "  ", &["close-shelter", &shelter]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("needs a reason"), "{err}");
    let reasons: Vec<(String, bool)> = rusqlite::Connection::open(d.store_path())
        .unwrap()
        .prepare("SELECT reason, ok FROM commands ORDER BY received_ms")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            ("the road to it is under water".to_owned(), true),
            ("the road to it is under water".to_owned(), true)
        ],
        "HQ keeps the reason of what it carried out"
    );
    // The broker as a URL, as every node takes it (issue 19 item 5: it was read as the host
    // `mqtt://127.0.0.1`).
    let url = format!("mqtt://127.0.0.1:{}", d.port);
    let (code, out, err) = cmd_at(
        &d,
        &url,
        &key,
        PASSWORD,
        "a url",
        &["open-shelter", &shelter],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Another key on the officer's login: HQ refuses, and says so.
    let other = d.path("stranger.key");
    std::fs::write(&other, SecretKey::from_seed(&[77; 32]).to_pem().unwrap()).unwrap();
    let (code, out, err) = cmd(&d, &other, PASSWORD, &["close-shelter", &shelter]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("HQ refused the command"), "{err}");
    // A wrong password: the broker refuses the login, in one line.
    let (code, out, err) = cmd(&d, &key, "wrong", &["close-shelter", &shelter]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("refused the officer's login"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Bad input: one clear line, nothing sent.
    let (code, _, err) = cmd(
        &d,
        &key,
        PASSWORD,
        &[
            "issue-order",
            "--hazard",
            "meteor",
            "--level",
            "4",
            "--zones",
            "1",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--hazard meteor"), "{err}");
}

/// Issue 22: no MQTT message over 1 MiB anywhere, HQ's own login included. The gate closes
/// the connection of any login that publishes over [`evac_protocol::MAX_MESSAGE`] (the packet
/// itself is within the gate's frame bound, so the publish's own size is what is checked),
/// and nothing of it reaches a reader; a message of exactly 1 MiB passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_closes_any_login_hqs_included_at_a_message_over_one_mib() {
    use evac_protocol::MAX_MESSAGE;
    let d = HqDir::new(100);
    let _broker = Proc::start(&d, "broker", &d.path("hq.toml"), true);
    let mut viewer = Client::connect(d.port, "v", "viewer", PASSWORD, &[topic("status")]).await;
    viewer.connected(20).await;
    let hq = Client::connect(d.port, "hq-test", "hq", PASSWORD, &[]).await;
    let mut connects = hq.connects.clone();
    connects.wait_for(|n| *n >= 1).await.unwrap();
    hq.publish(&topic("status"), vec![b'a'; MAX_MESSAGE]).await;
    viewer
        .wait_for(20, "HQ's message of exactly 1 MiB", |m| {
            m.payload.len() == MAX_MESSAGE
        })
        .await;
    hq.publish(&topic("status"), vec![b'b'; MAX_MESSAGE + 1])
        .await;
    tokio::time::timeout(Duration::from_secs(20), connects.wait_for(|n| *n >= 2))
        .await
        .expect("the gate let HQ's login publish over 1 MiB")
        .unwrap();
    // A shelter's login likewise, one byte over on its own topic.
    let (id, _) = d.shelter_keys[0];
    let shelter = Client::connect(d.port, "s", &format!("shelter-{id}"), PASSWORD, &[]).await;
    let mut connects = shelter.connects.clone();
    connects.wait_for(|n| *n >= 1).await.unwrap();
    shelter
        .publish(
            &topic(&format!("shelter/{id}/state")),
            vec![b'c'; MAX_MESSAGE + 1],
        )
        .await;
    tokio::time::timeout(Duration::from_secs(20), connects.wait_for(|n| *n >= 2))
        .await
        .expect("the gate let a shelter's login publish over 1 MiB")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    viewer.drain();
    assert!(
        viewer.seen.iter().all(|m| m.payload.len() <= MAX_MESSAGE),
        "a message over 1 MiB reached a reader"
    );
    drop((hq, shelter));
}
