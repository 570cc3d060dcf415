//! Households answer from the TV over HTTPS: the real `evac-hq run` with `[answers]`, a test
//! CA and server certificate made with rcgen, and ureq (rustls) as the TV's HTTP client. The
//! flood of 100,000 guessed codes with a real shelter's tap during it is
//! `tests/tests/answer_flood.rs` (real `evac-hq` and `evac-shelter`).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use evac_hq::answers::AnswerCodeKey;
use evac_protocol::SecretKey;
use support::https::{agent, certificates};
use support::*;

struct Answering {
    d: HqDir,
    hq: Proc,
    url: String,
    ca: String,
    key: AnswerCodeKey,
}

/// HQ with `[answers]` (the given limits) on a free port, up and answering.
fn start(households: u32, limits: &str) -> Answering {
    let d = HqDir::new(households);
    let ca = certificates(&d);
    let port = free_port();
    let broker = format!(
        "mode = \"embedded\"\nlisten = \"127.0.0.1:{}\"\npasswords = \"passwords\"\nmax_connections = 50\n\
         [answers]\nlisten = \"127.0.0.1:{port}\"\ncert = \"tls.crt\"\nkey = \"tls.key\"\n{limits}",
        d.port
    );
    let config = d.write_config("hq-answers.toml", &broker);
    let hq = Proc::start(&d, "run", &config, true);
    let url = format!("https://localhost:{port}/answer");
    let a = agent(&ca);
    wait_until(20, "the answer endpoint", || a.get(&url).call().is_ok());
    let key = AnswerCodeKey::derive(&SecretKey::read(&d.path("hq.key")).unwrap());
    Answering {
        d,
        hq,
        url,
        ca,
        key,
    }
}

impl Answering {
    fn code(&self, household: u32) -> String {
        self.key.code(&TOWN.parse().unwrap(), household).to_string()
    }

    fn post(&self, agent: &ureq::Agent, body: &str) -> u16 {
        agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(body)
            .unwrap()
            .status()
            .as_u16()
    }

    fn answer(&self, agent: &ureq::Agent, household: u32, code: &str, answer: &str) -> u16 {
        self.post(
            agent,
            &format!(
                r#"{{"town":"{TOWN}","household":{household},"code":"{code}","answer":"{answer}"}}"#
            ),
        )
    }

    fn rows(&self, sql: &str) -> Vec<(i64, String)> {
        let conn = rusqlite::Connection::open(self.d.store_path()).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}

#[test]
fn answers_over_https_are_checked_counted_and_stored() {
    let s = start(50, "household_burst = 20\nsource_burst = 1000");
    let a = agent(&s.ca);
    let h = s.d.town.households[3].id;
    let other = s.d.town.households[4].id;

    // A right code: 200, stored durably before the reply, self-reported.
    assert_eq!(s.answer(&a, h, &s.code(h), "safe_at_home"), 200);
    let body = a
        .post(&s.url)
        .send(format!(
            r#"{{"town":"{TOWN}","household":{h},"code":"{}","answer":"need_help","people":2}}"#,
            s.code(h).to_lowercase()
        ))
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(
        body,
        r#"{"needs_confirmation":false,"ok":true,"self_reported":true}"#
    );
    assert_eq!(
        s.rows(&format!(
            "SELECT household, kind FROM answers WHERE household = {h} ORDER BY id"
        )),
        [
            (h as i64, "safe_at_home".into()),
            (h as i64, "need_help".into())
        ]
    );

    // Wrong codes: refused; the sixth makes the household's answers need an officer.
    for _ in 0..6 {
        assert_eq!(s.answer(&a, h, &s.code(other), "safe_at_home"), 403);
    }
    assert_eq!(
        s.rows("SELECT household, CAST(failures AS TEXT) FROM answer_flags"),
        [(h as i64, "6".to_owned())]
    );
    assert_eq!(s.answer(&a, h, &s.code(h), "at_shelter"), 200);
    let conn = rusqlite::Connection::open(s.d.store_path()).unwrap();
    let (failures, confirm): (i64, bool) = conn
        .query_row(
            "SELECT f.failures, a.needs_confirmation FROM answer_flags f, answers a
             WHERE a.household = f.household AND a.kind = 'at_shelter'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((failures, confirm), (6, true));

    // Another town's household, a number not in the town: the same refusal.
    let outside = s.d.town.households.iter().map(|h| h.id).max().unwrap() + 1;
    assert_eq!(s.answer(&a, outside, &s.code(outside), "safe_at_home"), 403);
    let elsewhere = format!(
        r#"{{"town":"otherton","household":{other},"code":"{}","answer":"safe_at_home"}}"#,
        s.code(other)
    );
    assert_eq!(s.post(&a, &elsewhere), 403);

    // Not answers: refused without harm, HQ still up.
    assert_eq!(s.post(&a, "{"), 400);
    // Over 4 KiB: 413, or the connection closed before the client has sent it all.
    let big = a
        .post(&s.url)
        .send(&"x".repeat(100_000))
        .map(|r| r.status().as_u16());
    assert!(matches!(big, Ok(413) | Err(_)), "{big:?}");
    assert_eq!(a.get(&s.url).call().unwrap().status().as_u16(), 405);
    assert_eq!(
        s.answer(&a, other, &s.code(other), "evacuated_elsewhere"),
        200
    );

    // No code in HQ's store or log.
    let mut s = s;
    s.hq.kill();
    let log = s.hq.log();
    for file in ["data/hq.sqlite", "data/hq.sqlite-wal"] {
        let bytes = std::fs::read(s.d.path(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for code in [s.code(h), s.code(other)] {
            let bare = code.replace('-', "");
            assert!(!text.contains(&code) && !text.contains(&bare), "{file}");
            assert!(!log.contains(&code) && !log.contains(&bare));
        }
    }
}

#[test]
fn a_flood_from_one_address_is_rate_limited() {
    // The defaults: 20 answers at once per address, one more each 3 s; a wrong code costs 5.
    let s = start(50, "");
    let a = agent(&s.ca);
    let h = s.d.town.households[0].id;
    let wrong = s.code(s.d.town.households[1].id);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..200 {
        *statuses
            .entry(s.answer(&a, h, &wrong, "safe_at_home"))
            .or_insert(0) += 1;
    }
    // 20 tokens, 5 a wrong code: 4 refused, then the limit (one more each 3 s if slow).
    let refused = statuses.get(&403).copied().unwrap_or(0);
    assert!((4..=6).contains(&refused), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&(200 - refused)), "{statuses:?}");
}

/// The signed status's answers, opened with HQ's key; none for anything else.
fn status_answers(m: &Msg, hq: &evac_protocol::PublicKey) -> Vec<evac_protocol::HouseholdAnswer> {
    use evac_protocol::{Signed, StatusMessage};
    match Signed::<StatusMessage>::from_json(&m.payload).map(|s| s.open(hq)) {
        Ok(Ok(StatusMessage::Snapshot(s))) => s.answers,
        Ok(Ok(StatusMessage::Delta(d))) => d.answers,
        _ => Vec::new(),
    }
}

/// An answer posted over HTTPS to the real HQ reaches its signed status (self-reported, with
/// the people who need help); a card tap after a "safe at home" answer puts the resident at
/// the shelter, the answer beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_https_reaches_the_signed_status_and_a_tap_wins() {
    use evac_protocol::{AnswerKind, ResidentId, ResidentStatus, Signed, StatusMessage};
    let s = start(50, "");
    let a = agent(&s.ca);
    let mut viewer =
        Client::connect(s.d.port, "viewer", "viewer", PASSWORD, &[topic("status")]).await;
    viewer.connected(20).await;
    let help = s.d.town.households[2].id;
    let home = &s.d.town.households[0];
    let body = format!(
        r#"{{"town":"{TOWN}","household":{help},"code":"{}","answer":"need_help","people":3}}"#,
        s.code(help)
    );
    assert_eq!(s.post(&a, &body), 200);
    let hq = s.d.hq_public.clone();
    viewer
        .wait_for(20, "the need-help answer in HQ's status", |m| {
            status_answers(m, &hq).iter().any(|x| {
                x.household == help
                    && x.kind == AnswerKind::NeedHelp
                    && x.people == Some(3)
                    && !x.needs_confirmation
            })
        })
        .await;

    assert_eq!(s.answer(&a, home.id, &s.code(home.id), "safe_at_home"), 200);
    viewer
        .wait_for(20, "the safe-at-home answer", |m| {
            status_answers(m, &hq)
                .iter()
                .any(|x| x.household == home.id && x.kind == AnswerKind::SafeAtHome)
        })
        .await;
    let resident = home.members[0].resident;
    let mut shelter = TestShelter::connect(&s.d, 0).await;
    shelter.tap(1, resident - 1);
    shelter.flush().await;
    let sid = shelter.id;
    let arrived = ResidentStatus::Arrived {
        shelter: sid,
        unverified: false,
    };
    viewer
        .wait_for(20, "the tapped resident at the shelter", |m| {
            match Signed::<StatusMessage>::from_json(&m.payload).map(|x| x.open(&hq)) {
                Ok(Ok(StatusMessage::Delta(d))) => d
                    .residents
                    .iter()
                    .any(|c| c.resident == ResidentId(resident) && c.status == arrived),
                Ok(Ok(StatusMessage::Snapshot(sn))) => sn
                    .residents
                    .unpack()
                    .unwrap()
                    .contains(&(ResidentId(resident), arrived)),
                _ => false,
            }
        })
        .await;
}

/// `check` says the endpoint is on, or names the field at fault; HQ with a broken `[answers]`
/// still starts and serves shelters, saying so in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_answers_section_never_stops_hq() {
    let d = HqDir::new(20);
    certificates(&d);
    let port = free_port();
    let broker = |cert: &str| {
        format!(
            "mode = \"embedded\"\nlisten = \"127.0.0.1:{}\"\npasswords = \"passwords\"\nmax_connections = 50\n\
             [answers]\nlisten = \"127.0.0.1:{port}\"\ncert = \"{cert}\"\nkey = \"tls.key\"\n",
            d.port
        )
    };
    let check = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_evac-hq"))
            .args(["check", "--config"])
            .arg(config)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let good = d.write_config("good.toml", &broker("tls.crt"));
    let out = check(&good);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("answers: HTTPS on 127.0.0.1:{port}")),
        "{text}"
    );

    let bad = d.write_config("bad.toml", &broker("missing.crt"));
    let out = check(&bad);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("answers.cert"), "{text}");

    let hq = Proc::start(&d, "run", &bad, true);
    let mut shelter = TestShelter::connect(&d, 0).await;
    shelter.tap(3, 0);
    shelter.flush().await;
    shelter.sync(20).await;
    assert_eq!(d.stored_events(shelter.id), [1, 2, 3]);
    assert!(
        hq.log().contains("answer endpoint not started"),
        "{}",
        hq.log()
    );
}

/// The reply to command `id`, opened with HQ's key.
fn reply(m: &Msg, hq: &evac_protocol::PublicKey, id: u64) -> Option<evac_protocol::CommandReply> {
    use evac_protocol::{CommandReply, Signed};
    let r = Signed::<CommandReply>::from_json(&m.payload)
        .ok()?
        .open(hq)
        .ok()?;
    (r.command_id == id).then_some(r)
}

/// Issue 21 item 3, end to end: a "needs help" answer posted over HTTPS; the officer marks it
/// handled with the real `evac-hq cmd` (signed with the officer's key, through HQ's broker);
/// HQ's signed status then carries it handled, with the officer and the reason. The attacks:
/// a shelter's login cannot give the command, a replayed command is carried out once, and a
/// household with no answer is refused with a reply that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_marks_a_needs_help_answer_handled_through_the_real_hq() {
    use evac_protocol::{AnswerKind, CommandAction};
    let s = start(50, "");
    let a = agent(&s.ca);
    let hq = s.d.hq_public.clone();
    let mut viewer =
        Client::connect(s.d.port, "viewer", "viewer", PASSWORD, &[topic("status")]).await;
    viewer.connected(20).await;
    let (help, other, silent) = (
        s.d.town.households[2].id,
        s.d.town.households[3].id,
        s.d.town.households[4].id,
    );
    for h in [help, other] {
        let body = format!(
            r#"{{"town":"{TOWN}","household":{h},"code":"{}","answer":"need_help","people":2}}"#,
            s.code(h)
        );
        assert_eq!(s.post(&a, &body), 200);
    }
    viewer
        .wait_for(20, "both needs-help answers in HQ's status", |m| {
            status_answers(m, &hq)
                .iter()
                .filter(|x| x.kind == AnswerKind::NeedHelp && x.handled.is_none())
                .count()
                == 2
        })
        .await;

    // The officer's command line, as a script or an officer without the dashboard uses it.
    let key = s.d.path("tanaka.key");
    std::fs::write(&key, s.d.officer_key.to_pem().unwrap()).unwrap();
    std::fs::write(s.d.path("tanaka.pw"), format!("{PASSWORD}\n")).unwrap();
    let cmd = |household: u32| {
        std::process::Command::new(env!("CARGO_BIN_EXE_evac-hq"))
            .arg("cmd")
            .args(["--broker", &format!("127.0.0.1:{}", s.d.port)])
            .args(["--town", TOWN, "--officer", "tanaka"])
            .arg("--key")
            .arg(&key)
            .arg("--hq-key")
            .arg(s.d.path("hq.pub"))
            .arg("--password-file")
            .arg(s.d.path("tanaka.pw"))
            .args(["--reason", "ambulance took both of them", "--timeout", "20"])
            .args(["answer-handled", &household.to_string()])
            .output()
            .unwrap()
    };
    let out = cmd(help);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("marked handled"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    viewer
        .wait_for(20, "the answer handled in HQ's signed status", |m| {
            status_answers(m, &hq).iter().any(|x| {
                x.household == help
                    && x.handled.as_ref().is_some_and(|h| {
                        h.officer.as_str() == "tanaka" && h.reason == "ambulance took both of them"
                    })
            })
        })
        .await;
    // A household that did not answer: refused, and the reply says why.
    let out = cmd(silent);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("has not answered from the TV"),
        "{said}"
    );

    // A shelter's login, signing with the shelter's key, cannot give the command.
    let (sid, skey) = &s.d.shelter_keys[0];
    let forged = command(
        skey,
        "tanaka",
        5,
        CommandAction::AnswerHandled { household: other },
    );
    let shelter_user = format!("shelter-{sid}");
    let shelter = Client::connect(s.d.port, "forger", &shelter_user, PASSWORD, &[]).await;
    shelter.publish(&topic("cmd/tanaka"), forged).await;

    // The officer's own command sent twice (a replay): carried out once, the second answered.
    let mut officer = Client::connect(
        s.d.port,
        "officer-tanaka",
        "officer-tanaka",
        PASSWORD,
        &[topic("cmd/tanaka/reply")],
    )
    .await;
    officer.connected(20).await;
    let signed = command(
        &s.d.officer_key,
        "tanaka",
        7,
        CommandAction::AnswerHandled { household: other },
    );
    officer.publish(&topic("cmd/tanaka"), signed.clone()).await;
    let first = officer
        .wait_for(20, "HQ's reply", |m| reply(m, &hq, 7).is_some())
        .await;
    let first = reply(&first, &hq, 7).unwrap();
    assert!(
        first.ok && first.message.contains("marked handled"),
        "{first:?}"
    );
    officer.publish(&topic("cmd/tanaka"), signed).await;
    officer
        .wait_for(20, "HQ's reply to the replay", |m| {
            reply(m, &hq, 7).is_some_and(|r| r.message.contains("handled already"))
        })
        .await;
    let marks =
        s.rows("SELECT household, officer || ':' || reason FROM answer_marks ORDER BY household");
    assert_eq!(
        marks,
        [
            (
                i64::from(help),
                "tanaka:ambulance took both of them".to_owned()
            ),
            (i64::from(other), "tanaka:test".to_owned()),
        ],
        "one mark a household, none from the shelter"
    );
    assert!(!s.hq.log().contains("panicked"), "{}", s.hq.log());
}
