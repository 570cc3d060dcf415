//! A household answers from the stock-TV page (issue 21 item 1, the TV's side): the real
//! `evac-hq plan` signs a warning's orders, the real `evac-broadcaster mux --bml --answer-url`
//! airs them with the page, web-bml (an independent BML engine, unmodified, in headless
//! Chromium, driven by `broadcaster/tests/support/tv.mjs`) runs the page, and the remote's keys
//! send the answer with `transmitTextDataOverIP` over real HTTPS (the TV's IP stack is the
//! driver's, trusting the test CA only) to the real `evac-hq run` with `[answers]` on.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test
#![allow(clippy::disallowed_methods)] // the CAP fixture is dated by the wall clock, as a sender dates it

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evac_hq::answers::AnswerCodeKey;
use evac_maps::{GenerateParams, Town, generate};
use evac_protocol::{AnswerKind, HouseholdAnswer, SecretKey, Signed, StatusMessage};
use support::deploy::town_keys;
use support::town::{HqConfig, hq_key, passwords};
use support::*;

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A CAP 1.2 tsunami warning (level 4, an exercise) over every household of `town`, sent now.
fn warning(town: &Town) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (mut s, mut n, mut w, mut e) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
    for h in &town.households {
        (s, n) = (s.min(h.location.lat), n.max(h.location.lat));
        (w, e) = (w.min(h.location.lon), e.max(h.location.lon));
    }
    let (s, n, w, e) = (s - 0.01, n + 0.01, w - 0.01, e + 0.01);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>TV-ANSWER-{now}</identifier>
  <sender>jma@example.jp</sender>
  <sent>{}</sent>
  <status>Exercise</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Geo</category>
    <event>Tsunami Warning</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <eventCode><valueName>evac:hazard</valueName><value>tsunami</value></eventCode>
    <parameter><valueName>evac:level</valueName><value>4</value></parameter>
    <expires>{}</expires>
    <area>
      <areaDesc>the whole town</areaDesc>
      <polygon>{s},{w} {s},{e} {n},{e} {n},{w} {s},{w}</polygon>
    </area>
  </info>
</alert>
"#,
        rfc3339(now - 5),
        rfc3339(now + 6 * 3600)
    )
}

fn webbml_dir() -> PathBuf {
    if let Ok(d) = std::env::var("WEBBML_DIR") {
        return PathBuf::from(d);
    }
    workspace()
        .ancestors()
        .map(|a| a.join("shared/tools/web-bml"))
        .find(|d| d.join("bmlview.mjs").exists())
        .expect("web-bml not found: set WEBBML_DIR to ../shared/tools/web-bml")
}

/// The TV tuned to `ts` with `household` kept in its NVRAM, its return channel trusting
/// `ca`: each step is remote keys, then texts the page must show. Returns (passed, output).
fn tv(ts: &Path, ca: &Path, household: u32, steps: &[(String, Vec<&str>)]) -> (bool, String) {
    let mut cmd = Command::new("node");
    cmd.arg(workspace().join("broadcaster/tests/support/tv.mjs"))
        .arg("--ts")
        .arg(ts)
        .arg("--answer-ca")
        .arg(ca)
        .args(["--local0", &household.to_string(), "--timeout", "15000"])
        .env("WEBBML_DIR", webbml_dir())
        .env(
            "WEBBML_DRIVER_DIR",
            std::env::var("WEBBML_DRIVER_DIR").unwrap_or_else(|_| "/opt/webbml-driver".into()),
        );
    for (keys, after) in steps {
        cmd.args(["--keys", keys]);
        for a in after {
            cmd.args(["--after", a]);
        }
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "tv.mjs could not run: {text}");
    (out.status.success() && text.contains("RESULT PASS"), text)
}

/// The remote's keys for a code as printed: its digits, then Enter.
fn typed(code: &str) -> String {
    let digits: Vec<String> = code
        .chars()
        .filter(char::is_ascii_digit)
        .map(String::from)
        .collect();
    digits.join(",") + ",Enter"
}

/// Rows of HQ's `answers`: household, kind, people, needs_confirmation.
fn answers(d: &Path) -> Vec<(i64, String, Option<i64>, bool)> {
    let conn = rusqlite::Connection::open(d.join("hq-data/hq.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT household, kind, people, needs_confirmation FROM answers ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Every answer in HQ's signed status (checked under HQ's key), as a viewer of the broker sees
/// them.
fn watch_status(d: &Path, port: u16) -> Arc<Mutex<Vec<HouseholdAnswer>>> {
    let hq = SecretKey::read(&d.join("hq.key")).unwrap().public();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let mut opts = rumqttc::MqttOptions::new("tv-answer-viewer", "127.0.0.1", port);
    opts.set_credentials("viewer", "pw");
    opts.set_max_packet_size(64 << 20, 64 << 20);
    let (client, mut conn) = rumqttc::Client::new(opts, 64);
    client
        .subscribe("evac/v1/minato/status", rumqttc::QoS::AtLeastOnce)
        .unwrap();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let answers =
                        match Signed::<StatusMessage>::from_json(&p.payload).map(|s| s.open(&hq)) {
                            Ok(Ok(StatusMessage::Snapshot(s))) => s.answers,
                            Ok(Ok(StatusMessage::Delta(d))) => d.answers,
                            _ => Vec::new(),
                        };
                    out.lock().unwrap().extend(answers);
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        drop(client);
    });
    seen
}

#[test]
fn a_household_answers_from_the_tv_page_with_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let town = generate(&GenerateParams {
        households: 30,
        shelters: 3,
        seed: 5,
    });
    town.save(d.join("town.geojson")).unwrap();
    hq_key(d);
    std::fs::create_dir_all(d.join("keys")).unwrap();
    passwords(d, ["hq", "viewer"], "pw");
    // HQ's certificate for answers as deploy/town-keys.sh makes it (the town CA; this TV's
    // return channel trusts that CA only).
    town_keys(&d.join("town"), &[1], "localhost", "127.0.0.1");
    let (port, answer_port) = (free_port(), free_port());
    // Room at the address for six wrong codes from one TV (each costs 5 tokens of 20 by
    // default: the TV would be told "too many" at the fifth, as the flood test shows).
    std::fs::write(
        d.join("hq.toml"),
        HqConfig::for_dashboard().embedded(port)
            + &format!(
                "[answers]\nlisten = \"127.0.0.1:{answer_port}\"\ncert = \"town/tls/answers.crt\"\n\
                 key = \"town/tls/answers.key\"\nsource_burst = 100\n"
            ),
    )
    .unwrap();

    // The order on the air: HQ plans a warning over the whole town and signs its sections;
    // the head-end airs them with the page, whose answer mode sends to HQ's endpoint.
    std::fs::write(d.join("warning.xml"), warning(&town)).unwrap();
    run(Command::new(bin("evac-hq")).current_dir(d).args([
        "plan",
        "--town",
        "town.geojson",
        "--hazard",
        "warning.xml",
        "--town-name",
        "minato",
        "--key",
        "hq.key",
        "--sections",
        "plan.evs",
    ]));
    let url = format!("https://localhost:{answer_port}/answer/tv");
    run(Command::new(bin("evac-broadcaster")).current_dir(d).args([
        "mux",
        "--sections",
        "plan.evs",
        "--out",
        "tv.ts",
        "--duration",
        "3",
        "--town",
        "minato",
        "--bml",
        "--town-file",
        "town.geojson",
        "--hq-key",
        "hq.pub",
        "--answer-url",
        &url,
    ]));
    let (ts, ca) = (d.join("tv.ts"), d.join("town/tls/ca.crt"));

    let mut hq = Proc::spawn(
        "hq",
        Command::new(bin("evac-hq"))
            .current_dir(d)
            .args(["run", "--config"])
            .arg(d.join("hq.toml")),
    );
    hq.wait_line(30, "the answer endpoint", |l| {
        l.starts_with("evac-hq: answers listening on")
    });
    let status = watch_status(d, port);
    let key = AnswerCodeKey::derive(&SecretKey::read(&d.join("hq.key")).unwrap());
    let code = |h: u32| key.code(&"minato".parse().unwrap(), h).to_string();

    // English (blue twice), Enter opens the answer screen, the code typed once, red, three
    // people, Enter: HQ has it, the page says so under the order.
    let help = town.households[2].id;
    let steps = |typed_code: &str, colour: &str, last: Vec<&'static str>| {
        let mut s = vec![
            (
                "b,b".to_owned(),
                vec!["Enter: tell the town you are safe or need help"],
            ),
            ("Enter".to_owned(), vec!["Enter your answer code"]),
            (
                typed(typed_code),
                vec!["Red: Need help here", "Blue: Reached the shelter"],
            ),
        ];
        if colour == "r" {
            s.push(("r".into(), vec!["How many people need help?"]));
            s.push((
                "3,Enter".into(),
                vec!["Send this answer?", "Need help here: 3"],
            ));
        } else {
            s.push((colour.into(), vec!["Send this answer?"]));
        }
        s.push(("Enter".into(), last));
        s
    };
    let (ok, log) = tv(
        &ts,
        &ca,
        help,
        &steps(
            &code(help),
            "r",
            vec!["Answer received (self-reported)", "Level 4", "Shelter: "],
        ),
    );
    assert!(ok, "{log}");
    let sent = format!(
        "POST {url} Denbun=v1%20minato%20{help}%20{}%20need_help%203",
        code(help).replace('-', "")
    );
    assert!(log.contains(&sent), "{sent} not in {log}");
    assert!(log.contains("REPLY 1 200 \"accepted\\r\\n\""), "{log}");
    assert_eq!(
        answers(d),
        vec![(i64::from(help), "need_help".into(), Some(3), false)]
    );
    wait_until(20, "the TV's answer in HQ's signed status", || {
        status.lock().unwrap().iter().any(|a| {
            a.household == help
                && a.kind == AnswerKind::NeedHelp
                && a.people == Some(3)
                && !a.needs_confirmation
        })
    });

    // Another household's TV with a wrong code, six times: refused, the page says so and asks
    // for the code again (a refused code is forgotten); HQ counts them against the household,
    // so its next answer with the right code must be confirmed by an officer.
    let other = town.households[3].id;
    let wrong = code(help);
    let mut steps_wrong = vec![(
        "b,b".to_owned(),
        vec!["Enter: tell the town you are safe or need help"],
    )];
    for _ in 0..6 {
        steps_wrong.push(("Enter".into(), vec!["Enter your answer code"]));
        steps_wrong.push((typed(&wrong) + ",g", vec!["Send this answer?"]));
        steps_wrong.push((
            "Enter".into(),
            vec!["Wrong household number or answer code", "Level 4"],
        ));
    }
    steps_wrong.push(("Enter".into(), vec!["Enter your answer code"]));
    steps_wrong.push((typed(&code(other)) + ",g", vec!["Send this answer?"]));
    steps_wrong.push((
        "Enter".into(),
        vec!["Answer received: an officer must confirm it"],
    ));
    let (ok, log) = tv(&ts, &ca, other, &steps_wrong);
    assert!(ok, "{log}");
    assert_eq!(
        log.matches("REPLY 1 200 \"refused\\r\\n\"").count(),
        6,
        "{log}"
    );
    let flags: Vec<(i64, i64)> = {
        let conn = rusqlite::Connection::open(d.join("hq-data/hq.sqlite")).unwrap();
        let mut stmt = conn
            .prepare("SELECT household, failures FROM answer_flags")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(flags, vec![(i64::from(other), 6)]);
    assert_eq!(
        answers(d).last(),
        Some(&(i64::from(other), "safe_at_home".into(), None, true))
    );

    // HQ down: the page says it could not reach HQ, and the order stays on screen.
    hq.kill();
    let (ok, log) = tv(
        &ts,
        &ca,
        help,
        &steps(
            &code(help),
            "y",
            vec!["Could not reach HQ", "Level 4", "Shelter: "],
        ),
    );
    assert!(ok, "{log}");
    assert!(log.contains("REPLY NaN"), "{log}");
}
