//! HQ's derived state files: a torn one never keeps HQ down (issue 18 item 7).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use evac_protocol::onair::decode_set;
use support::*;

fn air_sections(d: &HqDir) -> usize {
    std::fs::read(d.path("data/air.evs"))
        .ok()
        .and_then(|b| decode_set(&b).ok())
        .map_or(0, |s| s.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_starts_on_a_torn_air_file_sets_it_aside_and_rebuilds_it() {
    let d = HqDir::new(1500);
    let mut hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cap");
    let text = std::fs::read_to_string(format!("{data}/tsunami-alert.xml")).unwrap();
    std::fs::write(d.path("cap/.a.xml"), text).unwrap();
    std::fs::rename(d.path("cap/.a.xml"), d.path("cap/a.xml")).unwrap();
    wait_until(30, "the orders on air in air.evs", || air_sections(&d) > 0);
    let before = air_sections(&d);
    hq.kill();

    // A power cut mid-write: the file is cut in half.
    let bytes = std::fs::read(d.path("data/air.evs")).unwrap();
    std::fs::write(d.path("data/air.evs"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(decode_set(&std::fs::read(d.path("data/air.evs")).unwrap()).is_err());

    // HQ comes up (Proc::start waits for the broker line), says so, and airs the orders again.
    let hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    wait_until(30, "air.evs rebuilt from the order book", || {
        air_sections(&d) == before
    });
    let aside: Vec<_> = std::fs::read_dir(d.path("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("air.evs.bad-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the torn file is kept aside once: {aside:?}"
    );
    assert_eq!(
        std::fs::read(d.path(&format!("data/{}", aside[0]))).unwrap(),
        bytes[..bytes.len() / 2],
        "kept as it was, for a person to look at"
    );
    assert!(
        hq.log().contains("set aside"),
        "the log says what happened: {}",
        hq.log()
    );
}
