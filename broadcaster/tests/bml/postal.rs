//! A stock TV with no household number stored: the district's orders by the postal code the
//! viewer set up on the TV, with the prompt; only the prompt without a code or an entry.
//! Driven by `tests/support/tv.mjs` (web-bml in headless Chromium with the TV's zipcode set).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::*;

const POSTAL_CODES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/postal-codes.csv");
const PROMPT: &str = "世帯番号を入力してください";

/// Runs tv.mjs on `ts`; returns (passed, its output).
fn tv(ts: &Path, args: &[&str]) -> (bool, String) {
    let out = run(Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/tv.mjs"))
        .arg("--ts")
        .arg(ts)
        .args(args)
        .env("WEBBML_DIR", webbml_dir())
        .env(
            "WEBBML_DRIVER_DIR",
            std::env::var("WEBBML_DRIVER_DIR").unwrap_or_else(|_| "/opt/webbml-driver".into()),
        ));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "tv.mjs could not run: {text}");
    (out.status.success() && text.contains("RESULT PASS"), text)
}

fn in_district<'a>(town: &'a Town, district: &'a str) -> impl Iterator<Item = u32> + 'a {
    town.households
        .iter()
        .filter(move |h| {
            h.address
                .as_deref()
                .is_some_and(|a| a.starts_with(district))
        })
        .map(|h| h.id)
}

#[test]
fn without_a_number_the_tv_shows_its_postal_codes_orders_and_asks() {
    let town = town();
    let w = Work::new();
    // 潮見浜町本町 (000-0001): level 4, most households to the first shelter, every fourth
    // to the second; 潮見浜町北浜 (000-0003): level 5 to the sixth; nothing elsewhere.
    let (first, second, north) = (&town.shelters[0], &town.shelters[1], &town.shelters[5]);
    let mut orders: Vec<PlanOrder> = in_district(&town, "潮見浜町本町")
        .map(|h| PlanOrder {
            household: h,
            shelter: if h % 4 == 0 { second.id } else { first.id },
            level: 4,
            hazard: "tsunami",
            version: 1,
            needs_help: false,
        })
        .collect();
    let sent: BTreeMap<u32, usize> = orders.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o.shelter).or_default() += 1;
        m
    });
    assert!(sent[&first.id] > sent[&second.id]);
    let northern = in_district(&town, "潮見浜町北浜").next().unwrap();
    orders.extend(in_district(&town, "潮見浜町北浜").map(|h| PlanOrder {
        household: h,
        shelter: north.id,
        level: 5,
        hazard: "tsunami",
        version: 1,
        needs_help: false,
    }));
    let plan = w.plan("plan.evs", &orders);
    let town_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
    let hq_pub = w.path("hq.pub");
    let ts = w.mux(
        &plan,
        "postal.ts",
        &[
            "--bml",
            "--town-file",
            town_file,
            "--hq-key",
            hq_pub.to_str().unwrap(),
            "--postal-codes",
            POSTAL_CODES,
            "--duration",
            "3",
        ],
    );
    if let Ok(keep) = std::env::var("BML_KEEP_TS") {
        std::fs::copy(&ts, keep).unwrap();
    }

    // 000-0001: the district's highest level and its shelters, most households first, with
    // the prompt; in easy Japanese and English with the blue key.
    let (ok, log) = tv(
        &ts,
        &[
            "--zipcode",
            "0000001",
            "--expect",
            "〒000-0001 潮見浜町本町",
            "--expect",
            "警戒レベル4 避難指示",
            "--expect",
            &format!("避難先: {}、{}", first.name, second.name),
            "--expect",
            PROMPT,
            "--absent",
            "警戒レベル5",
            "--keys",
            "b",
            "--after",
            "レベル4 みんな にげて ください",
            "--after",
            "いえの ばんごうを いれて ください",
            "--keys",
            "b",
            "--after",
            "Level 4: Evacuation order",
            "--after",
            &format!("Shelters: {}, {}", first.name, second.name),
            "--after",
            "Enter your household number",
        ],
    );
    assert!(ok, "{log}");
    // 000-0003: its own level and shelter.
    let (ok, log) = tv(
        &ts,
        &[
            "--zipcode",
            "0000003",
            "--expect",
            "警戒レベル5",
            "--expect",
            &north.name,
            "--expect",
            PROMPT,
            "--absent",
            "警戒レベル4",
        ],
    );
    assert!(ok, "{log}");
    // 000-0002: nothing ordered there, said so, with the prompt.
    let (ok, log) = tv(
        &ts,
        &[
            "--zipcode",
            "0000002",
            "--expect",
            "この地区への避難指示等はありません",
            "--expect",
            PROMPT,
            "--absent",
            "警戒レベル",
        ],
    );
    assert!(ok, "{log}");
    // A code not in the table, or none set up: only the prompt.
    for zip in [&["--zipcode", "1234567"][..], &[]] {
        let mut args = zip.to_vec();
        args.extend([
            "--expect",
            PROMPT,
            "--absent",
            "〒",
            "--absent",
            "警戒レベル",
        ]);
        args.extend(["--absent", "地区"]);
        let (ok, log) = tv(&ts, &args);
        assert!(ok, "{log}");
    }
    // A number stored: the household's own order, whatever the postal code.
    let (ok, log) = tv(
        &ts,
        &[
            "--zipcode",
            "0000001",
            "--local0",
            &northern.to_string(),
            "--expect",
            &format!("世帯番号 {northern}"),
            "--expect",
            "警戒レベル5",
            "--absent",
            "〒",
        ],
    );
    assert!(ok, "{log}");
}
