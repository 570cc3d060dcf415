//! Orders from HQ over a real broker (Mosquitto): signature checked before airing.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is a failed test

mod support;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evac_protocol::{
    AlertLevel, HQ_SIGNER, Hazard, HouseholdId, MessageKind, Order, OrderBatch, SecretKey,
    ShelterId, Slug,
};
use support::*;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn batch(household: u32, shelter: u32) -> OrderBatch {
    OrderBatch {
        town: Slug::new("minato").unwrap(),
        message_id: household,
        kind: MessageKind::Alert,
        references: None,
        hazard: Hazard::Flood,
        issued: unix_now(),
        expires: unix_now() + 3600,
        drill: true,
        orders: vec![Order {
            household: HouseholdId(household),
            shelter: ShelterId(shelter),
            level: AlertLevel::Level4,
            hazard: Hazard::Flood,
            version: 1,
            needs_help: false,
        }],
    }
}

#[test]
fn orders_from_mqtt_are_aired_only_under_hqs_signature() {
    let w = Work::new();
    w.keygen("hqmsg");
    // Mosquitto cannot report an ephemeral port: take one the kernel hands out, then free it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = w.path("mosquitto.conf");
    std::fs::write(
        &conf,
        // `user root`: as root, Mosquitto drops to user `mosquitto`, which cannot enter a
        // private temp or clone directory.
        format!("user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let _broker = Kill(
        Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // HQ's batch for household 11, retained so the broadcaster gets it when it subscribes;
    // a forged one for household 12 is sent live once the broadcaster has aired the first.
    let hq = SecretKey::read(&w.path("hqmsg.key")).unwrap();
    let forger = SecretKey::from_seed(&[66; 32]);
    let publish = |name: &str, retain: bool| {
        run_ok(
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
                .args(if retain { &["-r"][..] } else { &[] })
                .args(["-t", "evac/v1/minato/orders", "-f"])
                .arg(w.path(&format!("{name}.json"))),
        );
    };
    for (name, key, b) in [
        ("good", &hq, batch(11, 4)),
        ("forged", &forger, batch(12, 5)),
    ] {
        std::fs::write(
            w.path(&format!("{name}.json")),
            key.sign(HQ_SIGNER, &b).unwrap().to_json().unwrap(),
        )
        .unwrap();
    }
    publish("good", true);

    let run_stb = |household: u32| {
        let mut stb = Command::new(STB)
            .args([
                "--input",
                "udp://127.0.0.1:0",
                "--household",
                &household.to_string(),
                "--key",
            ])
            .arg(w.path("hq.pub"))
            .args(["--json", "--idle", "1", "--timeout", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(stb.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on udp://") {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "evac-stb exited early"
            );
        }
        (stb, line.trim().rsplit("udp://").next().unwrap().to_owned())
    };
    let (stb11, addr11) = run_stb(11);

    let mut mux = Command::new(BROADCASTER)
        .arg("mux")
        .arg("--key")
        .arg(w.path("hq.key"))
        .arg("--hq-key")
        .arg(w.path("hqmsg.pub"))
        .args(["--broker", &format!("127.0.0.1:{port}"), "--town", "minato"])
        .args(["--out", &format!("udp://{addr11}"), "--duration", "5"])
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(mux.stderr.take().unwrap());
    let mut text = String::new();
    let mut line = String::new();
    while !line.contains("orders from HQ") {
        line.clear();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "the broadcaster never aired HQ's orders: {text}"
        );
        text.push_str(&line);
    }
    publish("forged", false);
    while !line.contains("order message refused") {
        line.clear();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "the forged batch was not refused: {text}"
        );
        text.push_str(&line);
    }
    assert!(mux.wait().unwrap().success());

    let out = stb11.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["order"]["shelter"], 4, "{r}");
    assert_eq!(r["order"]["drill"], true);
}
