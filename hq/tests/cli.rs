//! The command line others build on: `plan --json` (hazard TOML and CAP), `keygen`, and one
//! clear line with a non-zero exit on bad input.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::collections::HashSet;
use std::process::Command;

use evac_maps::{GenerateParams, generate};

mod support;

fn hq(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_evac-hq"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn plan_prints_orders_for_a_hazard_file_and_a_cap_file() {
    let dir = tempfile::tempdir().unwrap();
    let town = generate(&GenerateParams {
        households: 800,
        shelters: 12,
        seed: 4,
    });
    let town_path = dir.path().join("town.geojson");
    town.save(&town_path).unwrap();
    let toml = dir.path().join("t.toml");
    std::fs::write(&toml, "hazard = \"tsunami\"\nlevel = 4\nzones = [1]\n").unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        toml.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let orders = v["orders"].as_array().unwrap();
    let unassigned = v["unassigned"].as_array().unwrap();
    let in_zone: HashSet<u64> = town
        .households
        .iter()
        .filter(|h| town.zones[0].contains(h.location))
        .map(|h| u64::from(h.id))
        .collect();
    // Every household in the zone has an order; those without room have shelter 0 (NONE)
    // and are also listed as unassigned.
    let planned: HashSet<u64> = orders
        .iter()
        .map(|o| o["household"].as_u64().unwrap())
        .collect();
    assert_eq!(planned, in_zone);
    let no_shelter: HashSet<u64> = orders
        .iter()
        .filter(|o| o["shelter"].as_u64() == Some(0))
        .map(|o| o["household"].as_u64().unwrap())
        .collect();
    let unassigned: HashSet<u64> = unassigned.iter().map(|h| h.as_u64().unwrap()).collect();
    assert_eq!(no_shelter, unassigned);
    assert_eq!(v["routing"], "walking");
    assert_eq!(v["unreachable"], serde_json::json!([]));
    for o in orders {
        assert_eq!(
            (
                o["level"].as_u64(),
                o["hazard"].as_str(),
                o["version"].as_u64()
            ),
            (Some(4), Some("tsunami"), Some(1))
        );
        let sid = o["shelter"].as_u64().unwrap() as u32;
        if sid != 0 {
            let s = town.shelter(sid).unwrap();
            assert!(s.suits(evac_maps::Hazard::Tsunami));
            // The walk over the town's roads, never shorter than the straight line.
            let h = town
                .household(o["household"].as_u64().unwrap() as u32)
                .unwrap();
            let walk = o["walk_m"]
                .as_f64()
                .expect("walk_m for an order to a shelter");
            assert!(walk + 1.0 >= h.location.distance_m(s.location), "{o}");
        } else {
            assert!(o["walk_m"].is_null(), "{o}");
        }
        let h = town
            .household(o["household"].as_u64().unwrap() as u32)
            .unwrap();
        assert_eq!(o["needs_help"].as_bool(), Some(h.needs_help()));
    }
    let cap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cap/tsunami-alert.xml"
    );
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        cap,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v["orders"].as_array().unwrap().is_empty());
    // The alert's own expiry (2036-11-18T11:00:00+09:00) travels with the plan.
    assert_eq!(v["expires"], 2_110_586_400u64, "{v}");

    // Regression (issue 13, item 7): a CAP whose <expires> passed years ago produced orders.
    let old_cap = dir.path().join("old.xml");
    std::fs::write(
        &old_cap,
        std::fs::read_to_string(cap)
            .unwrap()
            .replace("2036-11-18T11:00:00+09:00", "2019-11-18T11:00:00+09:00"),
    )
    .unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        old_cap.to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("<alert/info/expires>")
            && err.contains("expired at 2019-11-18T02:00:00Z")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // Bad inputs: one line naming the problem, non-zero exit.
    std::fs::write(&toml, "hazard = \"tsunami\"\nlevel = 9\nzones = [1]\n").unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        toml.to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.lines().count() == 1 && err.contains("t.toml"),
        "{err}"
    );
    let bad_cap = dir.path().join("bad.xml");
    std::fs::write(
        &bad_cap,
        std::fs::read_to_string(cap)
            .unwrap()
            .replace("<msgType>Alert</msgType>", "<msgType>Error</msgType>"),
    )
    .unwrap();
    let out = hq(&[
        "plan",
        "--town",
        town_path.to_str().unwrap(),
        "--hazard",
        bad_cap.to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("<alert/msgType>") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn answer_codes_are_written_for_every_household_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let town = generate(&GenerateParams {
        households: 40,
        shelters: 3,
        seed: 2,
    });
    let town_file = dir.path().join("town.geojson");
    town.save(&town_file).unwrap();
    let key = dir.path().join("hq");
    evac_protocol::write_key_pair(&key).unwrap();
    let out = dir.path().join("letters.csv");
    let run = hq(&[
        "answer-codes",
        "--town",
        town_file.to_str().unwrap(),
        "--town-name",
        "minato",
        "--hq-key",
        dir.path().join("hq.key").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("household,code"));
    let codes = evac_hq::answers::AnswerCodeKey::derive(
        &evac_protocol::SecretKey::read(&dir.path().join("hq.key")).unwrap(),
    );
    let minato = "minato".parse().unwrap();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), town.households.len());
    for (row, h) in rows.iter().zip(&town.households) {
        let (number, code) = row.split_once(',').unwrap();
        assert_eq!(number, h.id.to_string());
        assert!(codes.check(&minato, h.id, code), "{row}");
        // 8 digits for a remote's ten-key, printed 1234-5678.
        let digits = code.bytes().filter(u8::is_ascii_digit).count();
        assert!(
            digits == 8 && code.len() == 9 && code.find('-') == Some(4),
            "{row}"
        );
    }
    let distinct: HashSet<&&str> = rows.iter().collect();
    assert_eq!(distinct.len(), rows.len());
}

#[test]
fn keygen_writes_a_private_key_only_the_owner_reads() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("officer-sato");
    let out = hq(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert!(out.status.success());
    let mode = std::fs::metadata(dir.path().join("officer-sato.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    evac_protocol::PublicKey::read(&dir.path().join("officer-sato.pub")).unwrap();
    let again = hq(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert!(!again.status.success(), "overwrote a key");
}

/// Issue 18 item 17: with `cap_dir` set and no `cap_senders`, `check` said "ok" and every CAP
/// file was then refused. `check` says from whom CAP is taken in, or that none will be (a
/// warning, not a failure: the unit runs `check` before HQ starts).
#[test]
fn check_says_from_whom_cap_is_taken_in_or_that_none_will_be() {
    let d = support::HqDir::new(50);
    let check = |cfg: &std::path::Path| {
        let out = hq(&["check", "--config", cfg.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let cfg = d.path("hq.toml");
    let text = check(&cfg);
    assert!(
        text.contains("cap_senders: CAP taken in from \"jma@example.jp\" only"),
        "{text}"
    );
    let config = std::fs::read_to_string(&cfg).unwrap();
    let nobody = d.path("nobody.toml");
    std::fs::write(
        &nobody,
        config.replace("cap_senders = [\"jma@example.jp\"]\n", ""),
    )
    .unwrap();
    let text = check(&nobody);
    assert!(
        text.contains("cap_senders: WARNING none listed: no CAP file in cap_dir will be taken in"),
        "{text}"
    );
    // A file refused for its sender: check names the sender to list.
    std::fs::create_dir_all(d.path("cap/rejected")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/cap/tsunami-alert.xml"
        ),
        d.path("cap/rejected/alert.xml"),
    )
    .unwrap();
    let text = check(&nobody);
    assert!(
        text.contains("from senders not listed: \"jma@example.jp\" (1 files)"),
        "{text}"
    );
}

/// Issue 18 item 11: what of the store would not read at start is listed by `check` (HQ
/// starts without it, and says so to officers in its status).
#[test]
fn check_lists_what_of_the_store_would_not_read() {
    let d = support::HqDir::new(50);
    let store = evac_hq::store::Store::open(&d.store_path()).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(d.store_path()).unwrap();
    conn.execute_batch(
        "INSERT INTO notices (message_id, spec, active) VALUES (7, 'torn', 1);
         INSERT INTO meta (key, value) VALUES ('status_seq', 'x');",
    )
    .unwrap();
    drop(conn);
    let cfg = d.path("hq.toml");
    let out = hq(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARNING unreadable, HQ starts without them: 1 notices (message 7), 1 meta values (status_seq)"),
        "{text}"
    );
}

/// `evac-hq broker` (its embedded broker at the default `max_connections`) under the shell's
/// `ulimit` arguments `limit`: whether it started, and its log.
fn broker_under(d: &support::HqDir, limit: &str) -> (bool, String) {
    let cfg = d.write_config(
        "default.toml",
        &format!(
            "mode = \"embedded\"\nlisten = \"127.0.0.1:{}\"\npasswords = \"passwords\"",
            d.port
        ),
    );
    let log = d.path("broker.log");
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit {limit} && exec \"$0\" broker --config \"$1\""),
        ])
        .arg(env!("CARGO_BIN_EXE_evac-hq"))
        .arg(&cfg)
        .env("RUST_LOG", "info,rumqttd=warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let started = std::io::BufRead::lines(out)
        .map_while(Result::ok)
        .any(|l| l.starts_with("evac-hq: broker listening on"));
    let _ = child.kill();
    let _ = child.wait();
    (started, std::fs::read_to_string(&log).unwrap())
}

/// At the default `max_connections` (4,000: 12,064 open files) under `ulimit -n 512`, hard
/// and soft, HQ cannot raise its limit: it starts anyway and says in the log how many logins
/// fit and what to raise. Under a soft limit of 512 alone it raises the soft limit itself.
#[test]
fn the_broker_starts_under_too_low_an_open_file_limit_and_says_so() {
    let d = support::HqDir::new(20);
    let (started, text) = broker_under(&d, "-n 512");
    assert!(started, "the broker did not start: {text}");
    let warning = text
        .lines()
        .find(|l| l.contains("WARN") && l.contains("open-file limit is below"))
        .unwrap_or_else(|| panic!("no warning: {text}"));
    for said in [
        "max_connections=4000",
        "open_file_limit=512",
        "needed=12064",
        "about 149 logins fit",
        "LimitNOFILE",
    ] {
        assert!(warning.contains(said), "{said:?} not in {warning}");
    }
    // A hard limit with room (systemd's is 524,288): only the soft limit is low.
    let hard = run_sh("ulimit -Hn");
    if hard == "unlimited" || hard.parse::<u64>().is_ok_and(|h| h >= 12_064) {
        let (started, text) = broker_under(&d, "-S -n 512");
        assert!(started, "the broker did not start: {text}");
        assert!(text.contains("open-file limit raised"), "{text}");
        assert!(!text.contains("open-file limit is below"), "{text}");
    }
}

fn run_sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
