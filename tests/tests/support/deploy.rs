//! A town set up as `deploy/` says: keys from `deploy/town-keys.sh`, and what HQ stored.

use std::path::Path;
use std::process::Command;

use super::example::{example, s};
use super::{bin, run, workspace};

/// Every tool the town's scripts call, from this build.
pub fn tools(cmd: &mut Command) -> &mut Command {
    cmd.env("EVAC_HQ", bin("evac-hq"))
        .env("EVAC_SHELTER", bin("evac-shelter"))
        .env("EVAC_BROADCASTER", bin("evac-broadcaster"))
}

/// `deploy/town-keys.sh` into `out`: the shelters given, officer tanaka, broadcaster catv,
/// the broker's certificate for `host` and `ip` (and localhost, 127.0.0.1).
pub fn town_keys(out: &Path, shelters: &[u32], host: &str, ip: &str) {
    let list: Vec<String> = shelters.iter().map(u32::to_string).collect();
    run(tools(
        Command::new("bash")
            .arg(workspace().join("deploy/town-keys.sh"))
            .arg(out)
            .args(["--shelters", &list.join(",")])
            .args(["--broadcasters", "catv", "--officers", "tanaka"])
            .args(["--broker-host", host, "--broker-ip", ip]),
    ));
}

/// The sequence numbers HQ stored for a shelter, in order (none while the store is not there).
pub fn stored(store: &Path, shelter: u32) -> Vec<u64> {
    let Ok(conn) = rusqlite::Connection::open(store) else {
        return vec![];
    };
    let Ok(mut stmt) = conn.prepare("SELECT seq FROM events WHERE shelter = ?1 ORDER BY seq")
    else {
        return vec![];
    };
    stmt.query_map([shelter], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|r| r.unwrap() as u64)
        .collect()
}

/// `deploy/mosquitto/mosquitto.conf` with only its paths and listener (`PORT ADDRESS`) changed (and `user root`:
/// started as root, Mosquitto would drop to user `mosquitto`, which cannot read the files
/// of a checkout under a private directory).
pub fn mosquitto_conf(keys: &Path, data: &Path, listener: &str) -> String {
    let set: [(&str, String); 6] = [
        ("listener", listener.to_owned()),
        (
            "certfile",
            keys.join("tls/broker.crt").display().to_string(),
        ),
        ("keyfile", keys.join("tls/broker.key").display().to_string()),
        (
            "password_file",
            keys.join("mosquitto/passwd").display().to_string(),
        ),
        ("acl_file", keys.join("mosquitto/acl").display().to_string()),
        ("persistence_location", format!("{}/", data.display())),
    ];
    mosquitto_file("mosquitto.conf", &set)
}

/// `deploy/mosquitto/{name}` with each line whose first word is a key of `set` given that
/// key's value, and `user root` first (see [`mosquitto_conf`]). A key the file lacks is a
/// test failure (the file changed: change the test too).
pub fn mosquitto_file(name: &str, set: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(workspace().join("deploy/mosquitto").join(name)).unwrap();
    let mut out = vec!["user root".to_owned()];
    let mut done = 0;
    for line in text.lines() {
        match set
            .iter()
            .find(|(k, _)| line.split_whitespace().next() == Some(k))
        {
            Some((k, v)) => {
                out.push(format!("{k} {v}"));
                done += 1;
            }
            None => out.push(line.to_owned()),
        }
    }
    assert_eq!(
        done,
        set.len(),
        "deploy/mosquitto/{name} changed: change the test too"
    );
    out.join("\n") + "\n"
}

/// `deploy/hq.example.toml` with its paths set and its commented external-broker section
/// taken instead of the embedded broker, for `town` (its files in `d`, keys in `keys`).
pub fn hq_conf(d: &Path, keys: &Path, port: u16, town: &str) -> String {
    let top = example(
        "hq.example.toml",
        &[
            ("town", s(town)),
            ("town_file", s(d.join("town.geojson").display())),
            ("data_dir", s(d.join("hq-data").display())),
            ("hq_key", s(keys.join("hq/hq.key").display())),
            ("keys_dir", s(keys.join("hq/keys").display())),
            ("cap_dir", s(d.join("hq-data/cap").display())),
            ("status_interval_ms", "250".into()),
        ],
    );
    let (head, broker) = top.split_once("\n[broker]\n").unwrap();
    let external: Vec<String> = broker
        .lines()
        .skip_while(|l| *l != "# [broker]")
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches("# ").to_owned())
        .collect();
    assert!(
        external.len() > 3,
        "no external broker section in the example"
    );
    let mut section = external.join("\n") + "\n";
    for (k, v) in [
        ("host", s("127.0.0.1")),
        ("port", port.to_string()),
        ("ca", s(keys.join("hq/ca.crt").display())),
    ] {
        let line = section
            .lines()
            .find(|l| l.starts_with(&format!("{k} =")))
            .unwrap_or_else(|| panic!("the external section has no {k}"))
            .to_owned();
        section = section.replace(&line, &format!("{k} = {v}"));
    }
    format!("{head}\n{section}")
}

/// A self-signed EC P-256 CA made with openssl: `dir/{name}.key` and `dir/{name}.crt`.
pub fn openssl_ca(dir: &Path, name: &str, common_name: &str) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={common_name}"),
        ])
        .args([
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ]));
}

/// `evac-hq cmd` (on `c`, the evac-hq binary) as officer tanaka with the files
/// `deploy/town-keys.sh` made in `keys`, to the broker at `broker` (HOST:PORT, TLS with the
/// town's CA) for `town`; the caller adds `--reason` and the action.
pub fn officer_cmd<'a>(
    c: &'a mut Command,
    keys: &Path,
    broker: &str,
    town: &str,
) -> &'a mut Command {
    let officer = |x: &str| keys.join(format!("officer-tanaka/{x}"));
    c.args(["cmd", "--broker", broker, "--town", town])
        .args(["--officer", "tanaka", "--key"])
        .arg(officer("officer-tanaka.key"))
        .arg("--hq-key")
        .arg(officer("hq.pub"))
        .arg("--password-file")
        .arg(officer("password"))
        .arg("--ca")
        .arg(officer("ca.crt"))
}
