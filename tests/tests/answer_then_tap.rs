//! End to end, issue 21: a household under order answers "safe at home" from the reference box
//! (`evac-stb answer`) to the real `evac-hq run`; then one of its two members taps her card at
//! a real `evac-shelter`. HQ's signed status, read by the real `evac-dashboard report --json`,
//! puts her at the shelter (the card tap wins) while the other member stays "answered safe
//! (TV)"; a family at headless Chromium finds her at the shelter on HQ's `/anpi` page and the
//! other member "answered safe at home (self-reported)"; HQ's exports carry both (`--pfif`:
//! the self-reported note and the check-in; `--anpi-csv`; `--csv`). Another household's box with a wrong code is refused each time, HQ
//! counts the failures and, after the sixth, keeps that household's right answer for an
//! officer to confirm.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use evac_hq::answers::AnswerCodeKey;
use evac_maps::{GenerateParams, Hazard, generate};
use evac_protocol::SecretKey;
use support::answers::{box_answer, certificates, hq_answering};
use support::town::{Cards, HqConfig, card_key, hq_key, officer_key, passwords, shelter_key};
use support::*;

const PW: &str = "pw";

fn said(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// `evac-dashboard report --json` once `pred` holds of it (HQ's snapshot follows its deltas
/// after a short quiet while), or the last one after `secs`.
fn report_when(d: &Path, secs: u64, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = run(Command::new(bin("evac-dashboard")).current_dir(d).args([
            "--config",
            "dash.toml",
            "report",
            "--json",
        ]));
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        if pred(&report) {
            return;
        }
        assert!(Instant::now() < end, "{what}: {report}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Whether the report's unaccounted list names `resident`.
fn unaccounted(report: &serde_json::Value, resident: u32) -> bool {
    report["unaccounted"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["resident"] == resident)
}

fn export(d: &Path, what: &str) -> String {
    run(Command::new(bin("evac-hq"))
        .current_dir(d)
        .args(["export", "--data", "hq-data", what]))
}

#[test]
fn a_card_tap_after_a_safe_at_home_answer_wins_and_both_reach_the_exports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);

    // A household of two under a tsunami order, the first with a card; both agreed to be
    // found (the exports for families and person finders follow that agreement).
    let mut town = generate(&GenerateParams {
        households: 200,
        shelters: 12,
        seed: 9,
    });
    let zone = town
        .zones
        .iter()
        .find(|z| z.hazard == Hazard::Tsunami)
        .unwrap()
        .id;
    let at_risk: Vec<u32> = town
        .households_at_risk(Hazard::Tsunami)
        .filter(|h| h.members.len() == 2 && !h.members[0].cards.is_empty())
        .map(|h| h.id)
        .collect();
    assert!(at_risk.len() > 2, "{at_risk:?}");
    let (home, guessed) = (at_risk[0], at_risk[1]);
    let h = town.households.iter_mut().find(|h| h.id == home).unwrap();
    for m in &mut h.members {
        m.anpi_consent = true;
    }
    let (tapper, stayer) = (h.members[0].clone(), h.members[1].clone());
    town.save(p("town.geojson")).unwrap();
    let shelter = &town.shelters[0];

    hq_key(d);
    card_key(d);
    shelter_key(d, shelter.id);
    officer_key(d, "tanaka");
    let shelter_login = format!("shelter-{}", shelter.id);
    passwords(d, ["hq", "officer-tanaka", shelter_login.as_str()], PW);
    std::fs::write(p("officer.pw"), PW).unwrap();
    certificates(d);
    let (port, answer_port) = (free_port(), free_port());
    // The wrong codes below come from one address (127.0.0.1): a burst large enough that the
    // household's count, not the address's rate, decides.
    let mut hq = hq_answering(
        d,
        &HqConfig::for_dashboard(),
        port,
        answer_port,
        "source_burst = 100\n",
        Stdio::inherit(),
    );
    support::tmux::dash_toml(d, port, PW);

    let card = Cards::new(d).issue("ca", tapper.resident, &tapper.cards[0].serial);
    let mut node = support::town::shelter(d, shelter.id, port, PW, "", "\"ca/ca.pem\"");
    // The officer orders the tsunami zone out, with the real command sender.
    run(Command::new(bin("evac-hq"))
        .current_dir(d)
        .args(["cmd", "--broker", &format!("127.0.0.1:{port}")])
        .args(["--town", "minato", "--officer", "tanaka"])
        .args(["--key", "officer-tanaka.key", "--hq-key", "hq.pub"])
        .args(["--password-file", "officer.pw", "--timeout", "60"])
        .args(["--reason", "drill: tsunami warning", "issue-order"])
        .args(["--hazard", "tsunami", "--level", "4", "--zones"])
        .arg(zone.to_string()));

    let key = AnswerCodeKey::derive(&SecretKey::read(&p("hq.key")).unwrap());
    let code = |h: u32| key.code(&"minato".parse().unwrap(), h).to_string();

    // The household answers from its box: safe at home.
    let o = box_answer(d, home, answer_port, &code(home), &["--key", "green"]);
    assert_eq!(said(&o), "Answer accepted (self-reported).", "{o:?}");
    report_when(d, 30, "both members answered safe (TV)", |r| {
        unaccounted(r, tapper.resident)
            && unaccounted(r, stayer.resident)
            && r["answers"]["answered_safe"].as_u64() >= Some(2)
    });

    // One of them walks to the shelter after all and taps her card: the tap wins.
    node.send(&format!("tap {}", card.display()));
    let line = node.wait_line(20, "a recorded tap", |l| {
        l.contains("\"result\":\"recorded\"") || l.contains("\"result\":\"error\"")
    });
    assert!(line.contains("\"result\":\"recorded\""), "{line}");
    report_when(
        d,
        30,
        "the tapper at the shelter, the other still at home",
        |r| {
            !unaccounted(r, tapper.resident)
                && unaccounted(r, stayer.resident)
                && r["answers"]["answered_safe"] == 1
        },
    );

    // A family looks them up on HQ's /anpi page, in a real browser, by kana and birth date.
    let ask = |m: &evac_maps::Member| serde_json::json!({"lang": "en", "kana": m.kana, "birth": m.birth.unwrap().to_string(), "family_code": ""});
    let pages = evac_testkit::anpi_browser(
        d,
        &format!("https://localhost:{answer_port}/anpi"),
        &serde_json::json!([ask(&tapper), ask(&stayer)]).to_string(),
    );
    let page = |i: usize| {
        let v: serde_json::Value = serde_json::from_str(&pages[i]).unwrap();
        assert_eq!(v["status"], 200, "{v}");
        v["result"].as_str().unwrap().to_owned()
    };
    let (found, home) = (page(0), page(1));
    assert!(
        found.contains(&format!("Checked in at shelter {}", shelter.name)),
        "{found}"
    );
    assert!(
        home.starts_with("Answered safe at home") && home.contains("self-reported"),
        "{home}"
    );
    assert!(!home.contains(&shelter.name), "{home}");

    // Another box with a wrong code: refused each time; HQ counts the household's failures
    // and after the sixth its right answer waits for an officer.
    let wrong = {
        let right = code(guessed);
        let last = right.chars().last().unwrap().to_digit(10).unwrap();
        format!("{}{}", &right[..right.len() - 1], (last + 1) % 10)
    };
    for n in 1..=6 {
        let o = box_answer(d, guessed, answer_port, &wrong, &["--key", "green"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("Household number or answer code not accepted."),
            "wrong code {n}: {o:?}"
        );
    }
    let o = box_answer(d, guessed, answer_port, &code(guessed), &["--key", "green"]);
    assert_eq!(
        said(&o),
        "Answer accepted; an officer must confirm it.",
        "{o:?}"
    );

    // The exports: the person finders' and the families' lists carry the answer and the tap.
    let pfif = export(d, "--pfif");
    let note = |r: u32| format!("/person.{r}</pfif:person_record_id>");
    assert!(pfif.contains(&note(tapper.resident)), "{pfif}");
    assert!(pfif.contains(&note(stayer.resident)), "{pfif}");
    assert!(pfif.contains("self-reported"), "{pfif}");
    assert!(
        pfif.contains(&format!(
            "<pfif:last_known_location>{}</pfif:last_known_location>",
            shelter.name
        )),
        "{pfif}"
    );
    // Both CSVs may quote any field: compare without the quotes.
    let anpi = export(d, "--anpi-csv").replace('"', "");
    let row = |name: &str| {
        anpi.lines()
            .find(|l| l.starts_with(&format!("{name},")))
            .unwrap_or_else(|| panic!("{name} not in {anpi}"))
            .to_owned()
    };
    assert!(row(&tapper.name).contains(&shelter.name), "{anpi}");
    assert!(!row(&stayer.name).contains(&shelter.name), "{anpi}");
    let csv = export(d, "--csv").replace('"', "");
    let status = |r: u32| {
        csv.lines()
            .find(|l| l.starts_with(&format!("{r},")))
            .unwrap_or_else(|| panic!("{r} not in {csv}"))
            .to_owned()
    };
    assert!(status(tapper.resident).contains("arrived"), "{csv}");
    assert!(!status(stayer.resident).contains("arrived"), "{csv}");
    for r in [tapper.resident, stayer.resident] {
        assert!(
            status(r).contains(",safe_at_home,") && status(r).ends_with(",self-reported"),
            "{csv}"
        );
    }

    node.kill();
    hq.kill();
}
