//! A household answers from the reference box (issue 21 item 1): the real `evac-stb answer`
//! against the real `evac-hq run` with `[answers]` on, HQ's certificate from a test CA made
//! with rcgen and the box trusting only that CA.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evac_hq::answers::AnswerCodeKey;
use evac_maps::{GenerateParams, generate};
use evac_protocol::SecretKey;
use support::answers::{answers_section, certificates};
use support::town::{HqConfig, hq_key, passwords};
use support::*;

/// The box's configuration for `household`, answering to `url`.
fn stb_config(d: &Path, household: u32, url: &str) -> std::path::PathBuf {
    let path = d.join("stb.toml");
    std::fs::write(
        &path,
        format!(
            "household = {household}\ntown_name = \"minato\"\nlanguage = \"en\"\n\
             [answers]\nurl = \"{url}\"\nca = \"ca.pem\"\n"
        ),
    )
    .unwrap();
    path
}

fn stb(config: &Path, args: &[&str]) -> Output {
    Command::new(bin("evac-stb"))
        .arg("answer")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "evac-stb failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn answers(d: &Path) -> Vec<(i64, String, Option<i64>)> {
    let conn = rusqlite::Connection::open(d.join("hq-data/hq.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT household, kind, people FROM answers ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn a_household_answers_from_the_box_and_hq_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let town = generate(&GenerateParams {
        households: 30,
        shelters: 3,
        seed: 5,
    });
    town.save(d.join("town.geojson")).unwrap();
    let household = town.households[2].id;
    hq_key(d);
    std::fs::create_dir_all(d.join("keys")).unwrap();
    passwords(d, ["hq"], "pw");
    certificates(d);
    let (port, answer_port) = (free_port(), free_port());
    let config = format!(
        "{}{}",
        HqConfig::default().embedded(port),
        answers_section(answer_port, "")
    );
    std::fs::write(d.join("hq.toml"), config).unwrap();
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
    let code = AnswerCodeKey::derive(&SecretKey::read(&d.join("hq.key")).unwrap())
        .code(&"minato".parse().unwrap(), household)
        .to_string();
    let box_config = stb_config(
        d,
        household,
        &format!("https://localhost:{answer_port}/answer"),
    );

    // No code kept yet: the box says how to type it, and sends nothing.
    let o = stb(&box_config, &["--key", "green"]);
    assert!(
        one_line_error(&o).contains("--set-code"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The code typed once (spaces for the hyphen, as a person might), kept mode 0600, then
    // the red key.
    let typed = code.replace('-', " ");
    let out = stdout(&stb(
        &box_config,
        &["--set-code", &typed, "--key", "red", "--people", "3"],
    ));
    assert_eq!(out, "Answer accepted (self-reported).");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("answer-code"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The kept code serves the next answer, by name, in JSON.
    let out = stdout(&stb(&box_config, &["--kind", "safe-at-home", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"], "accepted");
    assert_eq!(v["stored"], true);
    assert_eq!(v["answer"], "safe-at-home");
    assert_eq!(
        answers(d),
        vec![
            (i64::from(household), "need_help".to_owned(), Some(3)),
            (i64::from(household), "safe_at_home".to_owned(), None),
        ]
    );

    // A wrong code: refused with the message, a non-zero exit, nothing stored.
    let wrong = if code.starts_with('1') {
        "2222-2222"
    } else {
        "1111-1111"
    };
    stdout(&stb(&box_config, &["--set-code", wrong]));
    let o = stb(&box_config, &["--kind", "reached-shelter"]);
    assert_eq!(
        one_line_error(&o),
        "evac-stb: Household number or answer code not accepted."
    );
    let o = stb(&box_config, &["--key", "blue", "--lang", "ja"]);
    assert_eq!(
        one_line_error(&o),
        "evac-stb: 世帯番号または回答コードが違います。"
    );
    assert_eq!(answers(d).len(), 2);

    // HQ down: "unreachable", a non-zero exit, no panic.
    hq.kill();
    let o = stb(&box_config, &["--key", "yellow", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"], "unreachable");
    assert_eq!(v["stored"], false);
    let o = stb(&box_config, &["--key", "yellow"]);
    let line = one_line_error(&o);
    assert!(line.starts_with("evac-stb: HQ unreachable: "), "{line}");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

/// What the hostile server does after reading a request.
#[derive(Clone, Copy)]
enum Hostile {
    /// 200 with 10 MB of garbage.
    Huge,
    /// 429 with `Retry-After: 7`.
    Limited,
    /// Never replies.
    Silent,
}

/// A TLS server under the test CA that answers every request as `how` says: what no HQ sends,
/// to show that nothing in a reply stops the box.
fn hostile_server(d: &Path, how: Hostile) -> u16 {
    use rumqttc::tokio_rustls::rustls;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::{Read, Write};
    let (cert, key) = certificates(d);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                // Errors below: the box hung up, as it should.
                match how {
                    Hostile::Huge => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n");
                        for _ in 0..1000 {
                            if s.write_all(&[0xff; 10_000]).is_err() {
                                return;
                            }
                        }
                    }
                    Hostile::Limited => {
                        let _ = s.write_all(
                            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
                        );
                    }
                    Hostile::Silent => std::thread::sleep(Duration::from_secs(40)),
                }
                let _ = s.flush();
            });
        }
    });
    port
}

#[test]
fn no_reply_stops_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Built before the clock starts.
    bin("evac-stb");
    for (how, want) in [
        (
            Hostile::Huge,
            "evac-stb: HQ's reply was not understood (HTTP 200): the answer may not have arrived.",
        ),
        (
            Hostile::Limited,
            "evac-stb: Too many answers: try again in 7 s.",
        ),
        (Hostile::Silent, "evac-stb: HQ unreachable: "),
    ] {
        let port = hostile_server(d, how);
        let config = stb_config(d, 4, &format!("https://localhost:{port}/answer"));
        let start = Instant::now();
        let o = stb(&config, &["--set-code", "1234-5678", "--key", "green"]);
        let line = one_line_error(&o);
        assert!(line.starts_with(want), "{line}");
        assert_eq!(o.status.code(), Some(1));
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "{line} after {:?}",
            start.elapsed()
        );
    }
}
