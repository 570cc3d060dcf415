//! HQ's sections through a real broker (Mosquitto, password login): the broadcaster logs in,
//! takes the retained groups, airs them; a wrong password or no broker at all fails loudly
//! instead of airing an empty carousel. (The whole chain with the real evac-hq is the
//! workspace's e2e test `tests/tests/broadcast.rs`.)

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is a failed test

mod support;

use std::process::Command;

use support::*;

use evac_testkit::{Mosquitto, free_port};

/// Mosquitto with one user `broadcaster-catv` (password "s3cret") and HQ's user `hq`.
fn mosquitto(w: &Work) -> (Mosquitto, u16) {
    let port = free_port();
    let pw = w.path("passwd");
    run_ok(
        Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&pw)
            .args(["broadcaster-catv", "s3cret"]),
    );
    run_ok(
        Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&pw)
            .args(["hq", "hqpass"]),
    );
    let conf = w.path("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            pw.display()
        ),
    )
    .unwrap();
    (Mosquitto::start(&conf, port, None), port)
}

fn mux(w: &Work, port: u16, password: &str, extra: &[&str]) -> std::process::Output {
    std::fs::write(w.path("bc.pw"), format!("{password}\n")).unwrap();
    run(Command::new(BROADCASTER)
        .args([
            "mux",
            "--broker",
            &format!("127.0.0.1:{port}"),
            "--town",
            "town",
        ])
        .args(["--user", "broadcaster-catv", "--password-file"])
        .arg(w.path("bc.pw"))
        .args(["--connect-timeout", "3"])
        .args(extra))
}

#[test]
fn a_wrong_password_or_no_broker_is_loud_and_airs_nothing() {
    let w = Work::new();
    let (_broker, port) = mosquitto(&w);
    let out = mux(
        &w,
        port,
        "wrong",
        &["--out", "/dev/null", "--duration", "1"],
    );
    assert!(!out.status.success(), "ran with a refused login");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused our user name or password"), "{err}");

    let nobody = free_port();
    let out = mux(
        &w,
        nobody,
        "s3cret",
        &["--out", "/dev/null", "--duration", "1"],
    );
    assert!(
        !out.status.success(),
        "aired an empty carousel with no broker"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to air an empty carousel"), "{err}");
}

#[test]
fn retained_groups_reach_a_late_broadcaster_and_are_kept_on_disk() {
    let w = Work::new();
    let (broker, port) = mosquitto(&w);
    // What HQ publishes: one retained message a household group (see evac-hq's air module).
    let set = w.plan("plan.evs", &synthetic(5000, 1));
    let sections = evac_protocol::onair::decode_set(&std::fs::read(&set).unwrap()).unwrap();
    for g in [0u16, 1] {
        let part: Vec<_> = sections
            .iter()
            .filter(|s| s.extension == g)
            .cloned()
            .collect();
        let file = w.path(&format!("group{g}.evs"));
        std::fs::write(&file, evac_protocol::onair::encode_set(&part).unwrap()).unwrap();
        run_ok(
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-r"])
                .args(["-u", "hq", "-P", "hqpass"])
                .args(["-t", &format!("evac/v1/town/air/{g}"), "-f"])
                .arg(&file),
        );
    }
    let carousel = w.path("carousel.evs");
    let health = w.path("health.json");
    let ts = w.path("live.ts");
    let args = |out: &std::path::Path| {
        vec![
            "--out".to_owned(),
            out.display().to_string(),
            "--duration".into(),
            "3".into(),
            "--live".into(),
            "--carousel".into(),
            carousel.display().to_string(),
            "--health".into(),
            health.display().to_string(),
        ]
    };
    let a: Vec<String> = args(&ts);
    let out = mux(
        &w,
        port,
        "s3cret",
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    for h in [7u32, 4500] {
        let r = w.stb(&ts, h);
        assert_eq!(r["order"]["shelter"], h % 12 + 1, "{r}\n{log}");
    }
    let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&health).unwrap()).unwrap();
    assert_eq!(h["connected"], true, "{h}");
    assert_eq!(h["source"], "broker");
    assert_eq!(h["tables"], 2);

    // The broker gone: restarted, the broadcaster airs the carousel it kept, and says so.
    drop(broker);
    let ts2 = w.path("kept.ts");
    let a: Vec<String> = args(&ts2);
    let out = mux(
        &w,
        port,
        "s3cret",
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARNING") && err.contains("kept on disk"),
        "{err}"
    );
    let r = w.stb(&ts2, 4500);
    assert_eq!(
        r["order"]["shelter"], 1,
        "household 4500 (4500 % 12 + 1): {r}"
    );
    let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&health).unwrap()).unwrap();
    assert_eq!(
        (h["connected"].clone(), h["source"].clone()),
        (false.into(), "disk".into())
    );
}
