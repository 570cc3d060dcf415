//! End to end, issue 21: a household answers from the reference box (`evac-stb answer`) to
//! the real `evac-hq run` with `[answers]` on; HQ's signed status carries it to
//! `evac-dashboard` in tmux, whose Unaccounted view puts "needs help at home" first; the
//! officer marks it handled with the `a` key and a reason, HQ keeps the mark, and the
//! dashboard and `report --json` show it handled.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use evac_hq::answers::AnswerCodeKey;
use evac_maps::{GenerateParams, generate};
use evac_protocol::SecretKey;
use support::answers::{box_answer, certificates, hq_answering};
use support::tmux::{Tmux, count_after};
use support::town::{HqConfig, hq_key, officer_key, passwords};
use support::*;

const PW: &str = "pw";

/// `evac-stb answer` for `household`: its box (config, CA and the kept code in a folder of
/// its own), the code typed, then `args`; returns the box's one line.
fn answer(d: &Path, household: u32, answer_port: u16, args: &[&str]) -> String {
    let code = AnswerCodeKey::derive(&SecretKey::read(&d.join("hq.key")).unwrap())
        .code(&"minato".parse().unwrap(), household)
        .to_string();
    let out = box_answer(d, household, answer_port, &code, args);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn an_answer_from_the_box_reaches_the_dashboard_and_the_officer_marks_it_handled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);
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
    let (help, home) = (at_risk[3].id, at_risk[7].id);
    hq_key(d);
    officer_key(d, "tanaka");
    passwords(d, ["hq", "officer-tanaka"], PW);
    certificates(d);
    let (port, answer_port) = (free_port(), free_port());
    let mut hq = hq_answering(
        d,
        &HqConfig::for_dashboard(),
        port,
        answer_port,
        "",
        Stdio::inherit(),
    );
    let tmux = Tmux::dashboard(d, &dash_bin, port, PW);
    tmux.wait(30, "the first snapshot", |s| s.contains("CONNECTED"));
    tmux.keys(true, &format!(":issue tsunami 4 {zone}"));
    tmux.keys(false, "Enter");
    tmux.wait(10, "the confirmation", |s| {
        s.contains("Issue tsunami level 4")
    });
    tmux.keys(true, "drill exercise order");
    tmux.keys(false, "Enter");
    tmux.wait(20, "the order in force", |s| {
        s.contains("tsunami Lv4") && count_after(s, "Under order").is_some_and(|n| n > 10)
    });

    // Two households answer from their boxes: one needs help for two people, one is safe.
    assert_eq!(
        answer(d, help, answer_port, &["--key", "red", "--people", "2"]),
        "Answer accepted (self-reported)."
    );
    assert_eq!(
        answer(d, home, answer_port, &["--key", "green"]),
        "Answer accepted (self-reported)."
    );

    // The Unaccounted view: needs help at home first, the safe one marked as a TV answer.
    tmux.keys(true, "3");
    let screen = tmux.wait(20, "the answers on the Unaccounted view", |s| {
        s.contains("help at home 1 (2 people)") && s.contains("safe (TV, self-reported)")
    });
    let rows: Vec<&str> = screen.lines().filter(|l| l.starts_with('│')).collect();
    let first = rows.iter().find(|l| !l.contains("ID")).unwrap();
    assert!(
        first.contains("HELP 2") && first.contains(&format!(" {help} ")),
        "{screen}"
    );
    // Those who answered safe come last, after those with no word (off this screen).
    assert!(!screen.contains("home(TV)"), "{screen}");
    // Under the household's first row, its home address from the dashboard's town file
    // (looked up off the screen's loop: it may take a frame or two).
    let address = town
        .households
        .iter()
        .find(|h| h.id == help)
        .and_then(|h| h.address.clone())
        .unwrap();
    let line = format!("home address: {address}");
    let screen = tmux.wait(20, "the household's address", |s| s.contains(&line));
    let rows: Vec<&str> = screen.lines().filter(|l| l.starts_with('│')).collect();
    let at = rows.iter().position(|l| l.contains("HELP 2")).unwrap();
    assert!(rows[at + 1].contains(&line), "{screen}");

    // The officer marks it handled: the popup names the household, the reason is required.
    tmux.keys(true, "a");
    tmux.wait(10, "the confirmation", |s| {
        s.contains(&format!("Mark household {help}'s"))
    });
    tmux.keys(true, "neighbour carried them up");
    tmux.keys(false, "Enter");
    let screen = tmux.wait(20, "the household handled", |s| {
        s.contains("help at home 0") && s.contains("· handled ") && !s.contains("handled 0")
    });
    assert!(!screen.contains("HELP 2"), "{screen}");
    tmux.keys(true, "6");
    tmux.wait(10, "the command log", |s| {
        s.contains("neighbour carried them up") && s.contains("✔")
    });

    // The report says the same, from HQ's own counts and the dashboard's picture. It reads
    // HQ's retained snapshot, which catches up with the deltas once HQ is quiet for a while
    // (`CATCH_UP_MS`): asked at once, it may still be the picture of a few seconds ago.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let report: serde_json::Value = loop {
        let out = run(Command::new(&dash_bin).current_dir(d).args([
            "--config",
            "dash.toml",
            "report",
            "--json",
        ]));
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        if report["counts"]["answers"].is_object() || std::time::Instant::now() > end {
            break report;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let hq_counts = &report["counts"]["answers"];
    assert!(hq_counts.is_object(), "{report}");
    assert_eq!(report["answers"]["needs_help_households"], 0, "{report}");
    assert!(
        report["answers"]["help_handled_residents"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{report}"
    );
    assert!(
        report["answers"]["answered_safe"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{report}"
    );
    // The report gives the household's address too (it read the town file itself).
    let h = &report["help_at_home"][0];
    assert_eq!(h["household"], help, "{report}");
    assert_eq!(h["handled"], true, "{report}");
    assert_eq!(h["address"], address.as_str(), "{report}");
    drop(tmux);
    hq.kill();
}
