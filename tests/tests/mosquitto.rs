//! A town on the deployment's Mosquitto: `deploy/mosquitto/mosquitto.conf` (TLS only, one
//! client id per user) with the password file, ACL and certificates that
//! `deploy/town-keys.sh` makes, and every node configured from its `deploy/` example. HQ, a
//! shelter node, an officer's command, the broadcaster and the dashboard's report all go
//! over TLS; a node that speaks plain MQTT or trusts another CA is refused with one line.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use evac_testkit::Mosquitto;

use evac_maps::{GenerateParams, Hazard, SYNTHETIC_ISSUER_KEY_ID_HEX, generate};
use serde_json::Value;
use support::deploy::{hq_conf, mosquitto_conf, officer_cmd, openssl_ca, stored, town_keys};
use support::example::{example, s};
use support::*;

const TOWN: &str = "shiomihama";

fn shelter_conf(d: &Path, keys: &Path, id: u32, url: &str, ca: Option<&Path>) -> PathBuf {
    let own = |x: &str| keys.join(format!("shelter-{id}/{x}"));
    let mut set = vec![
        ("shelter", id.to_string()),
        ("data_dir", s(d.join(format!("shelter-{id}")).display())),
        ("node_key", s(own(&format!("shelter-{id}.key")).display())),
        ("hq_public_key", s(own("hq.pub").display())),
        ("card_digest_key", s(own("card.key").display())),
        ("broker.url", s(url)),
        (
            "broker.password",
            s(std::fs::read_to_string(own("password")).unwrap()),
        ),
        ("broker.ack_timeout_ms", "2000".into()),
        ("broker.reconnect_max_ms", "500".into()),
        ("card.ca", format!("[{}]", s(d.join("ca/ca.pem").display()))),
    ];
    if let Some(ca) = ca {
        set.push(("broker.ca", s(ca.display())));
    }
    let name = format!(
        "shelter-{id}-{}.toml",
        if ca.is_some() { "tls" } else { "plain" }
    );
    let cfg = d.join(name);
    std::fs::write(&cfg, example("shelter.example.toml", &set)).unwrap();
    cfg
}

/// Runs a command that must fail; returns its one line of error.
fn fails(cmd: &mut Command) -> String {
    one_line_error(&cmd.output().unwrap())
}

#[test]
fn a_town_on_the_deployments_mosquitto_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |x: &str| d.join(x);
    let town = generate(&GenerateParams {
        households: 200,
        shelters: 12,
        seed: 9,
    });
    town.save(p("town.geojson")).unwrap();
    let node = town.shelters.iter().map(|s| s.id).min().unwrap();
    let keys = p("keys");
    town_keys(&keys, &[node], "broker.shiomihama.example", "127.0.0.1");
    let k = |x: &str| keys.join(x);

    let port = free_port();
    std::fs::create_dir(p("mosquitto-data")).unwrap();
    std::fs::write(
        p("mosquitto.conf"),
        mosquitto_conf(&keys, &p("mosquitto-data"), &format!("{port} 127.0.0.1")),
    )
    .unwrap();
    let _mosquitto = Mosquitto::start(&p("mosquitto.conf"), port, Some(&p("mosquitto.log")));

    // HQ from its example's external-broker section, its password from the environment.
    std::fs::write(p("hq.toml"), hq_conf(d, &keys, port, TOWN)).unwrap();
    let hq_pw = std::fs::read_to_string(k("hq/mqtt-password")).unwrap();
    let hq_bin = bin("evac-hq");
    let hq_cmd = |sub: &str| {
        let mut c = Command::new(&hq_bin);
        c.env("EVAC_HQ_MQTT_PASSWORD", &hq_pw)
            .args([sub, "--config"])
            .arg(p("hq.toml"));
        c
    };
    wait_until(20, "HQ's check to log in over TLS", || {
        hq_cmd("check").output().unwrap().status.success()
    });
    // The officer orders the tsunami zone from the command line, over TLS, while HQ is still
    // starting: the command is sent again until HQ answers (a command topic is not retained,
    // and HQ's first session does not exist yet), and carried out once.
    let zone = town
        .zones
        .iter()
        .find(|z| z.hazard == Hazard::Tsunami)
        .unwrap();
    let at_risk: Vec<_> = town
        .households
        .iter()
        .filter(|h| zone.contains(h.location))
        .collect();
    assert!(
        at_risk.len() > 5,
        "{} households in zone {}",
        at_risk.len(),
        zone.id
    );
    let officer = |x: &str| k(&format!("officer-tanaka/{x}"));
    let officer_cmd = officer_cmd(
        &mut Command::new(&hq_bin),
        &keys,
        &format!("127.0.0.1:{port}"),
        TOWN,
    )
    .args(["--timeout", "90"])
    .args(["--reason", "tsunami warning for the coast", "issue-order"])
    .args([
        "--hazard",
        "tsunami",
        "--level",
        "4",
        "--zones",
        &zone.id.to_string(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_until(20, "the officer's login at the broker", || {
        std::fs::read_to_string(p("mosquitto.log")).is_ok_and(|l| l.contains("u'officer-tanaka'"))
    });
    let _hq = Proc::spawn("hq", &mut hq_cmd("run"));

    // The shelter node over TLS with the CA from its key folder; plain MQTT and another
    // town's CA are refused, each with one line saying what to change.
    let shelter_bin = bin("evac-shelter");
    let tls_url = format!("mqtts://127.0.0.1:{port}");
    let own_ca = k(&format!("shelter-{node}/ca.crt"));
    openssl_ca(d, "other-ca", "another town CA");
    run(Command::new(&shelter_bin)
        .args(["vcard", "ca", "--dir"])
        .arg(p("ca"))
        .args(["--key-id", SYNTHETIC_ISSUER_KEY_ID_HEX]));
    let plain = shelter_conf(d, &keys, node, &format!("mqtt://127.0.0.1:{port}"), None);
    let err = fails(
        Command::new(&shelter_bin)
            .args(["check", "--config"])
            .arg(&plain),
    );
    assert!(err.contains("TLS-only listener"), "{err}");
    let other = shelter_conf(d, &keys, node, &tls_url, Some(&p("other-ca.crt")));
    let err = fails(
        Command::new(&shelter_bin)
            .args(["check", "--config"])
            .arg(&other),
    );
    assert!(err.contains("TLS with the broker failed"), "{err}");
    let cfg = shelter_conf(d, &keys, node, &tls_url, Some(&own_ca));
    let ok = run(Command::new(&shelter_bin)
        .args(["check", "--config"])
        .arg(&cfg));
    assert!(
        ok.contains(&format!("accepted user shelter-{node}")),
        "{ok}"
    );
    let mut shelter = Proc::spawn(
        "shelter",
        Command::new(&shelter_bin)
            .args(["run", "--config"])
            .arg(&cfg),
    );

    // The officer's command, sent before HQ was up, was carried out once.
    let out = officer_cmd.wait_with_output().unwrap();
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && reply.starts_with("ok:"),
        "evac-hq cmd: {reply}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let commands: i64 = rusqlite::Connection::open(p("hq-data/hq.sqlite"))
        .unwrap()
        .query_row("SELECT count(*) FROM commands", [], |r| r.get(0))
        .unwrap();
    assert_eq!(commands, 1, "the resent command was carried out again");

    // Residents of the zone tap in; HQ stores each event once.
    run(Command::new(&shelter_bin)
        .args(["vcard", "key", "--out"])
        .arg(p("card.key")));
    let residents: Vec<_> = at_risk.iter().flat_map(|h| &h.members).collect();
    let mut taps = 0;
    for m in residents.iter().filter(|m| !m.cards.is_empty()).take(3) {
        let card = p(&format!("card-{}.json", m.resident));
        run(Command::new(&shelter_bin)
            .args(["vcard", "issue", "--ca"])
            .arg(p("ca"))
            .args(["--serial", &hex::encode(&m.cards[0].serial), "--key"])
            .arg(p("card.key"))
            .arg("--out")
            .arg(&card));
        shelter.send(&format!("tap {}", card.display()));
        let line = shelter.wait_line(20, "a recorded tap", |l| {
            l.contains("\"result\":\"recorded\"") || l.contains("\"result\":\"error\"")
        });
        assert!(line.contains("\"result\":\"recorded\""), "{line}");
        taps += 1;
    }
    let store = p("hq-data/hq.sqlite");
    wait_until(30, "the taps at HQ", || {
        stored(&store, node) == (1..=taps).collect::<Vec<u64>>()
    });

    // The broadcaster reads HQ's signed sections (the ACL town-keys.sh wrote lets it) and
    // airs them: a TV of an ordered household not yet at the shelter shows its order.
    let bc = |x: &str| k(&format!("broadcaster-catv/{x}"));
    let o = Command::new(bin("evac-broadcaster"))
        .current_dir(d)
        .args([
            "mux",
            "--broker",
            &format!("127.0.0.1:{port}"),
            "--town",
            TOWN,
        ])
        .args(["--user", "broadcaster-catv", "--password-file"])
        .arg(bc("password"))
        .arg("--ca")
        .arg(bc("ca.crt"))
        .args(["--carousel", "carousel.evs", "--health", "health.json"])
        .args(["--connect-timeout", "10", "--live", "--duration", "3"])
        .arg("--out")
        .arg(p("on-air.ts"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "evac-broadcaster: {err}");
    let health: Value = serde_json::from_slice(&std::fs::read(p("health.json")).unwrap()).unwrap();
    assert_eq!(health["connected"], true, "{health}\n{err}");
    let household = at_risk.last().unwrap().id;
    let tv: Value = serde_json::from_str(&run(Command::new(bin("evac-stb"))
        .arg("--input")
        .arg(p("on-air.ts"))
        .args([
            "--household",
            &household.to_string(),
            "--town-name",
            TOWN,
            "--key",
        ])
        .arg(k("hq/hq.pub"))
        .arg("--state")
        .arg(p("stb.json"))
        .arg("--json")))
    .unwrap();
    assert_eq!(tv["order"]["level"], 4, "household {household}: {tv}");

    // The dashboard's report, logged in as the officer over TLS, from its example.
    std::fs::write(
        p("dashboard.toml"),
        example(
            "dashboard.example.toml",
            &[
                ("broker", s(&tls_url)),
                ("ca", s(officer("ca.crt").display())),
                ("town", s(TOWN)),
                (
                    "password",
                    s(std::fs::read_to_string(officer("password")).unwrap()),
                ),
                ("hq_key", s(officer("hq.pub").display())),
                ("town_file", s(p("town.geojson").display())),
                ("officer_key", s(officer("officer-tanaka.key").display())),
                ("log_file", s(p("dashboard.log").display())),
            ],
        ),
    )
    .unwrap();
    // HQ retains a fresh snapshot once the town is quiet (at most 5 s after the last), so
    // a report taken now shows the taps, though the example's periodic snapshot is 30 s.
    let report = || -> Value {
        serde_json::from_str(&run(Command::new(bin("evac-dashboard"))
            .args(["--config"])
            .arg(p("dashboard.toml"))
            .args(["report", "--json"])))
        .unwrap()
    };
    let mut last = Value::Null;
    wait_until(15, "a report with the taps", || {
        last = report();
        last["counts"]["arrived"] == taps
    });
    let report = last;
    let ordered: u64 = at_risk.iter().map(|h| h.members.len() as u64).sum();
    assert_eq!(
        report["counts"]["under_order"].as_u64().unwrap() + taps,
        ordered,
        "{report}"
    );
    let row = report["shelters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == node)
        .unwrap();
    assert_eq!(row["online"], true, "{row}");
    let unaccounted = report["unaccounted"].as_array().unwrap();
    assert_eq!(unaccounted.len() as u64, ordered - taps);
    assert!(
        unaccounted.iter().all(|r| r["shelter"].is_u64()),
        "an unaccounted resident without the shelter HQ sent them to: {report}"
    );
}

/// The shipped config's size limits (`message_size_limit`, `max_packet_size`) match the
/// embedded broker's gate: HQ's own login publishes a message of exactly 1 MiB on `status`
/// and an officer reads it; 1 MiB + 1 byte is dropped (never forwarded), and the message HQ
/// sends after it still arrives, so the oversized one cost nothing else.
#[test]
fn the_deployments_mosquitto_passes_one_mib_and_drops_one_byte_more() {
    const MIB: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |x: &str| d.join(x);
    let keys = p("keys");
    town_keys(&keys, &[1], "broker.shiomihama.example", "127.0.0.1");
    let k = |x: &str| keys.join(x);
    let port = free_port();
    std::fs::create_dir(p("mosquitto-data")).unwrap();
    std::fs::write(
        p("mosquitto.conf"),
        mosquitto_conf(&keys, &p("mosquitto-data"), &format!("{port} 127.0.0.1")),
    )
    .unwrap();
    let _mosquitto = Mosquitto::start(&p("mosquitto.conf"), port, Some(&p("mosquitto.log")));

    let topic = format!("evac/v1/{TOWN}/status");
    let login = |c: &mut Command, user: &str, password: &Path| {
        c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
            .arg(k("tls/ca.crt"))
            .args(["-u", user, "-P"])
            .arg(std::fs::read_to_string(password).unwrap().trim())
            .args(["-q", "1", "-t", &topic]);
    };
    // The officer reads `status` (its ACL), printing each message's payload length.
    let mut sub = Command::new("mosquitto_sub");
    login(&mut sub, "officer-tanaka", &k("officer-tanaka/password"));
    let mut sub = Proc::spawn("officer", sub.args(["-F", "%l"]));
    let publish = |name: &str, len: usize| {
        let file = p(name);
        std::fs::write(&file, vec![b'x'; len]).unwrap();
        let mut publish = Command::new("mosquitto_pub");
        login(&mut publish, "hq", &k("hq/mqtt-password"));
        run(publish.arg("-f").arg(&file));
    };
    // Until the officer's subscription is in place, a one-byte message now and then.
    let mut ready = false;
    for _ in 0..60 {
        publish("ready", 1);
        if sub
            .try_line(std::time::Duration::from_millis(500))
            .as_deref()
            == Some("1")
        {
            ready = true;
            break;
        }
    }
    assert!(ready, "the officer never read status");
    for (name, len) in [("exact", MIB), ("over", MIB + 1), ("after", 5)] {
        publish(name, len);
    }
    let mut lengths = vec![];
    while lengths.last().map(String::as_str) != Some("5") {
        let line = sub.wait_line(30, "the message after the oversized one", |_| true);
        if line != "1" {
            lengths.push(line);
        }
    }
    assert_eq!(
        lengths,
        [MIB.to_string(), "5".to_owned()],
        "the officer's messages on status (payload lengths)"
    );
}
