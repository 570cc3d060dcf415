//! The data-broadcasting (BML) service on a stock TV: a stream made from HQ-signed sections
//! for the sample town, run through web-bml (an independent ARIB BML engine, in headless
//! Chromium: `../shared/tools/web-bml`), and its sections read by `dvb-si` and ffprobe.
//! Needs `chromium`, `node` and playwright-core in /opt/webbml-driver (`deploy/test.sh`
//! installs them); a missing tool fails the test.

#![allow(clippy::unwrap_used)] // helpers of the tests: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use evac_broadcaster::bml::stream::{BmlStream, DEFAULT_DATA_PID, StreamConfig};
use evac_broadcaster::bml::table::Directory;
use evac_broadcaster::bml::{BmlConfig, BmlService, Verifier};
use evac_broadcaster::psi::ServiceLayout;
use evac_broadcaster::receiver::TrustedKey;
use evac_maps::Town;
use evac_protocol::onair::decode_set;
use evac_protocol::{PublicKey, Slug};
use support::*;

fn town() -> Town {
    Town::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../maps/data/town.geojson"
    ))
    .unwrap()
}

/// The town's orders: each household to one of the shelters in turn, levels 4, 5, 3.
fn orders(town: &Town, shift: usize) -> Vec<PlanOrder> {
    town.households
        .iter()
        .map(|h| PlanOrder {
            household: h.id,
            shelter: town.shelters[(h.id as usize + shift) % town.shelters.len()].id,
            level: [4, 5, 3][h.id as usize % 3],
            hazard: "tsunami",
            version: 1 + shift as u32,
            needs_help: h.needs_help(),
        })
        .collect()
}

/// The BML service a head-end trusting hq.pub runs for `town`, fed `sections`.
fn service(w: &Work, town: &Town, sections: &Path, now: i64) -> BmlService {
    let hq = PublicKey::read(&w.path("hq.pub")).unwrap();
    let verifier = Verifier::new(
        vec![TrustedKey::always(hq)],
        Slug::new("town").unwrap(),
        120,
    );
    let mut s = BmlService::new(
        BmlConfig::default(),
        verifier,
        Directory::from_town(town),
        now,
    )
    .unwrap();
    let set = decode_set(&std::fs::read(sections).unwrap()).unwrap();
    s.apply_set(&set, now).unwrap();
    s
}

/// `seconds` of the service's stream at 2 Mbit/s, 1 Mbit/s of it for the carousel.
fn write_ts(service: BmlService, out: &Path, seconds: u64, start: i64) {
    let cfg = StreamConfig {
        layout: ServiceLayout::default(),
        data_pid: DEFAULT_DATA_PID,
        bitrate: 2_000_000,
        data_bitrate: 1_000_000,
        transport_stream_id: 1,
        start_unix: start,
    };
    let mut s = BmlStream::new(cfg, service).unwrap();
    let n = seconds * 2_000_000 / (188 * 8);
    let mut bytes = Vec::with_capacity(n as usize * 188);
    for _ in 0..n {
        bytes.extend_from_slice(&s.next_packet());
    }
    std::fs::write(out, &bytes).unwrap();
    if let Ok(keep) = std::env::var("BML_KEEP_TS") {
        std::fs::write(keep, &bytes).unwrap();
    }
}

fn webbml_dir() -> PathBuf {
    if let Ok(d) = std::env::var("WEBBML_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/tools/web-bml"))
        .find(|d| d.join("bmlview.mjs").exists())
        .expect("web-bml not found: set WEBBML_DIR to ../shared/tools/web-bml")
}

/// Runs bmlview.mjs on `ts`; returns (passed, its output).
fn bmlview(ts: &Path, args: &[&str]) -> (bool, String) {
    let dir = webbml_dir();
    let out = run(Command::new("node")
        .arg(dir.join("bmlview.mjs"))
        .arg("--ts")
        .arg(ts)
        .args(["--onid", "null", "--timeout", "15000", "--shot"])
        .arg(ts.with_extension("png"))
        .args(args)
        .env("WEBBML_DIR", &dir)
        .env(
            "WEBBML_DRIVER_DIR",
            std::env::var("WEBBML_DRIVER_DIR").unwrap_or_else(|_| "/opt/webbml-driver".into()),
        ));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "bmlview could not run: {text}");
    (out.status.success() && text.contains("RESULT PASS"), text)
}

#[test]
fn a_stock_tv_shows_the_households_order_in_each_language() {
    let town = town();
    let w = Work::new();
    let now = unix_now();
    let plan = w.plan("plan.evs", &orders(&town, 0));
    let ts = w.path("bml.ts");
    write_ts(service(&w, &town, &plan, now), &ts, 3, now);

    let h = &town.households[1_234];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h.id)
        .unwrap();
    let shelter = town.shelter(order.shelter).unwrap();
    // Its number kept in the TV's NVRAM: the Japanese page, then English with the blue key
    // (ja → easy Japanese → English).
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &format!("避難先: {}", shelter.name),
            "--keys",
            "b,b",
            "--expect-after",
            &format!("Shelter: {}", shelter.name),
        ],
    );
    assert!(ok, "{log}");
    let level = ["", "", "", "警戒レベル3", "警戒レベル4", "警戒レベル5"][order.level as usize];
    assert!(log.contains(level), "{level} not shown: {log}");
    // No resident's name anywhere in the stream.
    let bytes = std::fs::read(&ts).unwrap();
    for m in town.households.iter().flat_map(|h| &h.members).take(200) {
        let name = evac_broadcaster::bml::table::euc_jp(&m.name);
        assert!(
            !bytes.windows(name.len()).any(|w| w == name),
            "a resident's name is in the stream"
        );
    }
}

#[test]
fn a_number_typed_with_the_remote_is_kept_and_a_stranger_is_told_plainly() {
    let town = town();
    let w = Work::new();
    let now = unix_now();
    let plan = w.plan("plan.evs", &orders(&town, 0));
    let ts = w.path("bml.ts");
    write_ts(service(&w, &town, &plan, now), &ts, 3, now);
    let h = &town.households[42];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h.id)
        .unwrap();
    let shelter = town.shelter(order.shelter).unwrap();
    let digits: Vec<String> = h.id.to_string().chars().map(String::from).collect();
    let keys = digits.join(",") + ",Enter";
    let (ok, log) = bmlview(
        &ts,
        &[
            "--expect",
            "世帯番号を入力してください",
            "--keys",
            &keys,
            "--expect-after",
            &shelter.name,
            "--reload-expect",
            &shelter.name,
        ],
    );
    assert!(ok, "{log}");
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            "999999",
            "--expect",
            "この番号の世帯はありません",
        ],
    );
    assert!(ok, "{log}");
}
