//! Standing up a town as its IT person would, from the deploy example configs: every keygen
//! prints the same line, `check` says in one line what is missing and how to make it, a
//! shelter added while HQ runs (its key dropped into `keys_dir`, its password set) gets in
//! without an HQ restart, a second process on a node's data directory is refused, a mistyped
//! `export --data` creates nothing, and logs carry no colour codes into a file.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use evac_maps::{GenerateParams, SYNTHETIC_ISSUER_KEY_ID_HEX, generate};
use support::deploy::stored;
use support::example::{example, s};
use support::*;

fn out(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

#[test]
fn a_town_from_the_examples_and_a_shelter_added_while_hq_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |x: &str| d.join(x);
    let hq_bin = bin("evac-hq");
    let shelter_bin = bin("evac-shelter");
    let bc_bin = bin("evac-broadcaster");

    let town = generate(&GenerateParams {
        households: 200,
        shelters: 12,
        seed: 9,
    });
    town.save(p("town.geojson")).unwrap();
    let shelter = town.shelters[0].id;

    // One keygen line across the tools.
    for (tool, name) in [
        (&hq_bin, "hq"),
        (&shelter_bin, &*format!("shelter-{shelter}")),
        (&bc_bin, "broadcaster-catv"),
    ] {
        let line = run(Command::new(tool).args(["keygen", "--out"]).arg(p(name)));
        let fp = evac_protocol::PublicKey::read(&p(&format!("{name}.pub")))
            .unwrap()
            .fingerprint();
        assert_eq!(
            line.trim(),
            format!(
                "wrote {} (private, mode 0600) and {}; fingerprint {fp}",
                p(&format!("{name}.key")).display(),
                p(&format!("{name}.pub")).display()
            )
        );
    }
    let passwd = |user: &str, pw: &str| {
        let mut c = Command::new(&hq_bin)
            .args(["passwd", "--file"])
            .arg(p("passwords"))
            .args(["--user", user])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut c.stdin.take().unwrap(), pw.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success());
    };
    passwd("viewer-desk", "look");

    let port = free_port();
    let hq_toml = p("hq.toml");
    let data = p("state/hq");
    std::fs::write(
        &hq_toml,
        example(
            "hq.example.toml",
            &[
                ("town_file", s(p("town.geojson").display())),
                ("data_dir", s(data.display())),
                ("hq_key", s(p("hq.key").display())),
                ("keys_dir", s(p("keys").display())),
                ("cap_dir", s(p("state/hq/cap").display())),
                ("status_interval_ms", "250".into()),
                ("broker.listen", s(format!("127.0.0.1:{port}"))),
                ("broker.passwords", s(p("passwords").display())),
                ("broker.max_connections", "20".into()),
            ],
        ),
    )
    .unwrap();
    let check = |cfg: &Path| out(Command::new(&hq_bin).args(["check", "--config"]).arg(cfg));

    // check names the missing thing, its field, and how to make it; it creates nothing.
    let err = one_line_error(&check(&hq_toml));
    assert_eq!(
        err,
        format!(
            "evac-hq: keys_dir = {}: no such file or directory; create it and copy each shelter's shelter-{{id}}.pub and officer's officer-{{name}}.pub into it",
            p("keys").display()
        )
    );
    std::fs::create_dir(p("keys")).unwrap();
    std::fs::rename(p("hq.key"), p("hq.key.away")).unwrap();
    let err = one_line_error(&check(&hq_toml));
    assert_eq!(
        err,
        format!(
            "evac-hq: hq_key = {}: no such file or directory; make one with `evac-hq keygen --out {}`",
            p("hq.key").display(),
            p("hq").display()
        )
    );
    std::fs::rename(p("hq.key.away"), p("hq.key")).unwrap();
    let ok = check(&hq_toml);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("keys_dir: 0 shelter keys"), "{text}");
    assert!(text.contains("will be created"), "{text}");
    assert!(!data.exists(), "check created the data directory");

    // HQ runs; its log goes to a file, without colour codes.
    let log = p("hq.log");
    let mut hq = Proc::spawn_with_stderr(
        "hq",
        Command::new(&hq_bin)
            .args(["run", "--config"])
            .arg(&hq_toml),
        std::fs::File::create(&log).unwrap(),
    );
    hq.wait_line(30, "the broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    assert!(p("state/hq/cap").is_dir(), "cap_dir not made");
    // A second HQ on the same data directory stops with one line.
    let err = one_line_error(&out(Command::new(&hq_bin)
        .args(["run", "--config"])
        .arg(&hq_toml)
        .stdin(Stdio::null())));
    assert!(
        err.starts_with(&format!(
            "evac-hq: data_dir = {}: in use by another process (pid {})",
            data.display(),
            hq.child.id()
        )),
        "{err}"
    );

    // The shelter from its example; HQ knows neither its key nor its password yet.
    run(Command::new(&shelter_bin)
        .args(["vcard", "ca", "--dir"])
        .arg(p("ca"))
        .args(["--key-id", SYNTHETIC_ISSUER_KEY_ID_HEX]));
    // Which card is whose: `evac-maps cards` (resident, household, issuer, serial).
    let cards = run(Command::new(bin("evac-maps"))
        .arg("cards")
        .arg(p("town.geojson")));
    let first: Vec<&str> = cards.lines().next().unwrap().split(' ').collect();
    let (resident, serial) = (first[0], first[3]);
    let card = p("card.json");
    run(Command::new(&shelter_bin)
        .args(["vcard", "issue", "--ca"])
        .arg(p("ca"))
        .args(["--serial", serial, "--out"])
        .arg(&card));
    let shelter_toml = p("shelter.toml");
    let shelter_data = p("state/shelter");
    std::fs::write(
        &shelter_toml,
        example(
            "shelter.example.toml",
            &[
                ("shelter", shelter.to_string()),
                ("data_dir", s(shelter_data.display())),
                (
                    "node_key",
                    s(p(&format!("shelter-{shelter}.key")).display()),
                ),
                ("hq_public_key", s(p("hq.pub").display())),
                ("card_digest_key", s(p("card.key").display())),
                ("broker.url", s(format!("mqtt://127.0.0.1:{port}"))),
                ("broker.password", s("door-3")),
                ("broker.ack_timeout_ms", "2000".into()),
                ("broker.reconnect_max_ms", "500".into()),
                ("card.ca", format!("[{}]", s(p("ca/ca.pem").display()))),
            ],
        ),
    )
    .unwrap();
    let shelter_check = || {
        out(Command::new(&shelter_bin)
            .args(["check", "--config"])
            .arg(&shelter_toml))
    };
    // The card digest key comes from HQ's key, as the example says.
    let err = one_line_error(&shelter_check());
    assert!(
        err.starts_with(&format!(
            "evac-shelter: card_digest_key = {}: ",
            p("card.key").display()
        )) && err.contains("evac-hq card-key --hq-key hq.key --out card.key"),
        "{err}"
    );
    let made = run(Command::new(&hq_bin)
        .args(["card-key", "--hq-key"])
        .arg(p("hq.key"))
        .arg("--out")
        .arg(p("card.key")));
    let check_value = made
        .split("check value ")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .unwrap()
        .to_owned();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(p("card.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let err = one_line_error(&shelter_check());
    assert!(
        err.starts_with(&format!(
            "evac-shelter: broker.url = mqtt://127.0.0.1:{port}: the broker refused user shelter-{shelter}"
        )),
        "{err}"
    );

    // Added while HQ runs: the key into keys_dir, the password into the password file.
    std::fs::copy(
        p(&format!("shelter-{shelter}.pub")),
        p(&format!("keys/shelter-{shelter}.pub")),
    )
    .unwrap();
    passwd(&format!("shelter-{shelter}"), "door-3\n");
    wait_until(20, "HQ to take in the new password", || {
        shelter_check().status.success()
    });
    let ok = String::from_utf8_lossy(&shelter_check().stdout).into_owned();
    assert!(
        ok.contains(&format!("card_digest_key: check value {check_value}")),
        "{ok}"
    );
    assert!(!shelter_data.exists(), "check created the data directory");

    let mut node = Proc::spawn(
        "shelter",
        Command::new(&shelter_bin)
            .args(["run", "--config"])
            .arg(&shelter_toml),
    );
    node.wait_line(20, "HQ's registry", |l| {
        l.contains("\"result\":\"registry\"")
    });
    node.send(&format!("tap {}", card.display()));
    let tap = node.wait_line(20, "the tap", |l| l.contains("\"result\":\"recorded\""));
    // Found in the registry by its digest: named, not flagged unregistered.
    assert!(
        tap.contains(&format!("\"resident\":{resident}")) && !tap.contains("unregistered"),
        "{tap}"
    );
    let store = data.join("hq.sqlite");
    wait_until(30, "the tap at HQ under the new key", || {
        stored(&store, shelter).len() == 1
    });

    // A second node process on the same data directory is refused at once.
    let err = one_line_error(&out(Command::new(&shelter_bin)
        .args(["run", "--config"])
        .arg(&shelter_toml)
        .stdin(Stdio::null())));
    assert!(
        err.starts_with(&format!(
            "evac-shelter: data_dir = {}: in use by another process (pid {})",
            shelter_data.display(),
            node.child.id()
        )),
        "{err}"
    );

    // Read-only commands create nothing.
    let typo = p("state/hqq");
    let err = one_line_error(&out(Command::new(&hq_bin)
        .args(["export", "--data"])
        .arg(&typo)
        .arg("--csv")));
    assert!(err.contains("no HQ store"), "{err}");
    assert!(!typo.exists(), "export created {}", typo.display());
    let err = one_line_error(&out(Command::new(&shelter_bin)
        .args(["events", "--data"])
        .arg(p("state/shelterr"))));
    assert!(err.contains("no ledger"), "{err}");
    assert!(!p("state/shelterr").exists());
    let csv = run(Command::new(&hq_bin)
        .args(["export", "--data"])
        .arg(&data)
        .arg("--csv"));
    let row = csv
        .lines()
        .find(|l| l.starts_with(&format!("{resident},")))
        .unwrap();
    let f: Vec<&str> = row.split(',').collect();
    assert_eq!((f[4], f[5]), ("arrived", &*shelter.to_string()), "{row}");

    hq.kill();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("keys reloaded"), "{log}");
    assert!(log.contains("passwords reloaded"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log file");
}
