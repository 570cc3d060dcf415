//! End to end: `evac-hq` with its embedded broker, an `evac-shelter` with virtual cards and
//! `evac-dashboard` in tmux. The officer issues an order and closes a shelter from the
//! dashboard (with confirmation and reason); taps at the shelter show up as counts; HQ
//! stopped and started shows STALE then live again without a restart of the dashboard;
//! `report --json` agrees with HQ's CSV export. Residents' names and households come from
//! HQ's registry shards.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use evac_maps::{GenerateParams, generate};
use support::tmux::{Tmux, count_after};
use support::town::{Cards, HqConfig, card_key, hq_key, officer_key, passwords, shelter_key};
use support::*;

const PW: &str = "pw";

#[test]
fn the_dashboard_follows_taps_commands_and_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);
    let hq_bin = bin("evac-hq");
    let shelter_bin = bin("evac-shelter");
    let dash_bin = bin("evac-dashboard");

    let town = generate(&GenerateParams {
        households: 200,
        shelters: 12,
        seed: 9,
    });
    town.save(p("town.geojson")).unwrap();
    let zone = town
        .zones
        .iter()
        .find(|z| z.hazard == evac_maps::Hazard::Tsunami)
        .unwrap()
        .id;
    let at_risk: Vec<&evac_maps::Household> = town
        .households_at_risk(evac_maps::Hazard::Tsunami)
        .collect();
    assert!(at_risk.len() > 10);
    hq_key(d);
    card_key(d);
    let mut shelters: Vec<u32> = town.shelters.iter().map(|s| s.id).collect();
    shelters.sort_unstable();
    let node = shelters[0];
    shelter_key(d, node);
    officer_key(d, "tanaka");
    passwords(
        d,
        [
            format!("shelter-{node}"),
            "hq".into(),
            "officer-tanaka".into(),
        ],
        PW,
    );
    let port = free_port();
    std::fs::write(p("hq.toml"), HqConfig::for_dashboard().embedded(port)).unwrap();

    // Virtual cards of residents in the tsunami zone.
    let issuer = Cards::new(d);
    // The last card is a forgery: a resident's serial under a CA with the issuer's key id
    // but not its key. The shelter lets the person in, flagged; HQ and the dashboard show
    // that their presence rests on a card that failed a check.
    issuer.ca("rogue-ca");
    let mut cards = Vec::new();
    let mut forged = 0;
    for m in at_risk.iter().flat_map(|h| &h.members) {
        let Some(c) = m.cards.first() else { continue };
        let ca = if cards.len() == 5 {
            forged = m.resident;
            "rogue-ca"
        } else {
            "ca"
        };
        let file = issuer.issue(ca, m.resident, &c.serial);
        cards.push(file.display().to_string());
        if cards.len() == 6 {
            break;
        }
    }

    let mut hq = Proc::spawn(
        "hq",
        Command::new(&hq_bin)
            .current_dir(d)
            .args(["run", "--config"])
            .arg(p("hq.toml")),
    );
    hq.wait_line(20, "the embedded broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    let cfg = format!(
        "town = \"minato\"\nshelter = {node}\ndata_dir = \"shelter\"\nnode_key = \"nodes/shelter-{node}.key\"\n\
         hq_public_key = \"hq.pub\"\ncard_digest_key = \"card.key\"\ndebounce_ms = 10000\n[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
         password = \"{PW}\"\nack_timeout_ms = 2000\nreconnect_max_ms = 500\n[card]\nreader = \"virtual\"\n\
         ca = [\"ca/ca.pem\"]\n[kiosk]\nlanguage = \"ja\"\n"
    );
    std::fs::write(p("shelter.toml"), cfg).unwrap();
    let mut shelter = Proc::spawn(
        "shelter",
        Command::new(&shelter_bin)
            .current_dir(d)
            .args(["run", "--config"])
            .arg(p("shelter.toml")),
    );

    let tmux = Tmux::dashboard(d, &dash_bin, port, PW);
    let residents = town
        .households
        .iter()
        .map(|h| h.members.len())
        .sum::<usize>() as u64;
    tmux.wait(30, "the first snapshot", |s| {
        s.contains("CONNECTED") && count_after(s, "Residents") == Some(residents)
    });

    // The officer issues an order from the command line, with a reason.
    tmux.keys(true, &format!(":issue tsunami 4 {zone}"));
    tmux.keys(false, "Enter");
    tmux.wait(10, "the confirmation", |s| {
        s.contains(&format!(
            "Issue tsunami level 4 for zones {zone}: {} households",
            at_risk.len()
        ))
    });
    tmux.keys(true, "drill exercise order");
    tmux.keys(false, "Enter");
    tmux.wait(20, "the order in force, its households under order", |s| {
        s.contains("tsunami Lv4")
            && s.contains("HQ ✔")
            && count_after(s, "Under order").is_some_and(|n| n > 10)
    });

    // The unaccounted list shows residents by the names HQ's registry shards carry (the
    // dashboard reads no whole registry).
    tmux.keys(true, "3");
    let names: Vec<&str> = at_risk
        .iter()
        .flat_map(|h| &h.members)
        .map(|m| m.name.as_str())
        .collect();
    let screen = tmux.wait(20, "names from the registry's shards", |s| {
        names.iter().any(|n| s.contains(n))
    });
    assert!(!screen.contains("waiting for the registry"), "{screen}");
    tmux.keys(true, "1");

    // Taps at the shelter show as arrivals.
    for (i, card) in cards.iter().enumerate() {
        shelter.send(&format!("tap {card}"));
        let line = shelter.wait_line(20, "a recorded tap", |l| {
            l.contains("\"result\":\"recorded\"") || l.contains("\"result\":\"error\"")
        });
        assert!(line.contains("\"recorded\""), "tap {card}: {line}");
        let n = (i + 1) as u64;
        tmux.wait(20, "the new count", |s| {
            count_after(s, "At a shelter") == Some(n)
        });
    }

    // Close the second shelter from the Shelters view: confirmation, reason, HQ's answer.
    let second = town.shelter(shelters[1]).unwrap().name.clone();
    tmux.keys(true, "2");
    tmux.wait(10, "the shelters view", |s| s.contains("Shelters 12"));
    tmux.keys(true, "jc");
    tmux.wait(10, "the close confirmation", |s| {
        s.contains(&format!("Close {second}")) && s.contains("re-routed")
    });
    tmux.keys(false, "Enter");
    tmux.wait(5, "the reason being asked", |s| {
        s.contains("A reason is required")
    });
    tmux.keys(true, "flooded access road");
    tmux.keys(false, "Enter");
    let screen = tmux.wait(20, "the shelter closed", |s| {
        s.contains("HQ ✔")
            && s.lines()
                .any(|l| l.contains(&second) && l.contains("closed"))
    });
    assert!(screen.contains("open 11"), "{screen}");
    tmux.keys(true, "6");
    tmux.wait(10, "the command log", |s| {
        s.contains("tanaka close #") && s.contains("flooded access road") && s.contains("✔")
    });
    tmux.keys(true, "1");

    // HQ and its broker stop: the dashboard keeps the picture, marked STALE; then live again.
    hq.kill();
    tmux.wait(20, "STALE", |s| {
        s.contains("STALE") && s.contains("RECONNECTING")
    });
    let mut hq = Proc::spawn(
        "hq again",
        Command::new(&hq_bin)
            .current_dir(d)
            .args(["run", "--config"])
            .arg(p("hq.toml")),
    );
    hq.wait_line(20, "the embedded broker again", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    tmux.wait(30, "live again", |s| {
        s.contains("CONNECTED")
            && !s.contains("STALE")
            && count_after(s, "At a shelter") == Some(cards.len() as u64)
    });

    // The report agrees with HQ's own export.
    let out = run(Command::new(&dash_bin).current_dir(d).args([
        "--config",
        "dash.toml",
        "report",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    hq.kill();
    let csv = run(Command::new(&hq_bin)
        .args(["export", "--data"])
        .arg(p("hq-data"))
        .arg("--town")
        .arg(p("town.geojson"))
        .arg("--csv"));
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut present: BTreeMap<u64, u64> = BTreeMap::new();
    let mut missing: BTreeMap<u64, (bool, u64)> = BTreeMap::new();
    for rec in csv::Reader::from_reader(csv.as_bytes()).records() {
        let rec = rec.unwrap();
        let f: Vec<&str> = rec.iter().collect();
        *by_status.entry(f[4].to_owned()).or_default() += 1;
        if f[4] == "arrived" || f[4] == "arrived-unverified-card" {
            *present.entry(f[5].parse().unwrap()).or_default() += 1;
        }
        if f[4] == "under-order" || f[4] == "unaccounted" {
            missing.insert(
                f[0].parse().unwrap(),
                (f[3] == "true", f[7].parse().unwrap()),
            );
        }
    }
    let c = &report["counts"];
    let n = |s: &str| by_status.get(s).copied().unwrap_or(0);
    assert_eq!(c["residents"], residents);
    assert_eq!(c["arrived"], n("arrived") + n("arrived-unverified-card"));
    assert_eq!(c["arrived"], cards.len() as u64);
    assert_eq!(n("arrived-unverified-card"), 1, "{by_status:?}");
    assert_eq!(c["unverified"], 1, "{report}");
    assert_eq!(
        report["unverified"],
        serde_json::json!([{"resident": forged, "shelter": node, "status": "arrived"}])
    );
    assert_eq!(c["under_order"], n("under-order"));
    assert_eq!(c["unaccounted"], n("unaccounted"));
    assert_eq!(c["not_ordered"], n("not-ordered"));
    for s in report["shelters"].as_array().unwrap() {
        let id = s["id"].as_u64().unwrap();
        assert_eq!(
            s["present_day"],
            present.get(&id).copied().unwrap_or(0),
            "{s}"
        );
        assert_eq!(s["open"], id != u64::from(shelters[1]), "{s}");
    }
    let listed = report["unaccounted"].as_array().unwrap();
    assert_eq!(listed.len(), missing.len());
    let mut seen_other = false;
    for m in listed {
        let r = m["resident"].as_u64().unwrap();
        let (needs_help, ordered_shelter) = missing[&r];
        assert_eq!(m["needs_help"], needs_help, "{m}");
        // Needs-help residents come first.
        assert!(
            !(needs_help && seen_other),
            "{m} after someone without needs-help"
        );
        seen_other |= !needs_help;
        // The report starts after the orders went out: it learns each household's shelter
        // from HQ's retained sections for the air.
        assert_eq!(m["shelter"], ordered_shelter, "{m}");
    }
    drop(tmux);
    shelter.kill();
}
