//! The broadcast through a real UDP socket on loopback, paced in real time.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

#[test]
fn evac_stb_receives_its_order_over_udp() {
    let w = Work::new();
    let orders = synthetic(5000, 1);
    let plan = w.plan("plan.json", &orders);
    let mut stb = Command::new(STB)
        .args([
            "--input",
            "udp://127.0.0.1:0",
            "--household",
            "4321",
            "--key",
        ])
        .arg(w.path("hq.pub"))
        .args(["--json", "--idle", "1", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The receiver prints the port it bound.
    let mut err = BufReader::new(stb.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !line.contains("listening on udp://") {
        assert!(
            Instant::now() < deadline,
            "evac-stb never said where it listens"
        );
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "evac-stb exited early"
        );
    }
    let addr = line.trim().rsplit("udp://").next().unwrap().to_owned();

    let out = run(Command::new(BROADCASTER)
        .arg("mux")
        .arg("--sections")
        .arg(&plan)
        .args(["--out", &format!("udp://{addr}"), "--duration", "2"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = stb.wait_with_output().unwrap();
    assert!(done.status.success());
    let r: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(r["order"]["shelter"], 4321 % 12 + 1, "{r}");
    assert_eq!(r["order"]["level"], orders[4320].level);
    // Two seconds at the default 1.2 Mbit/s, all of it received.
    let packets = r["packets"].as_u64().unwrap();
    assert!(packets >= 1_200_000 * 2 / 1504 - 7, "{packets} packets");
}
