//! A prefecture above two towns, on separate hosts (network namespaces, 198.51.100.0/24):
//! each town runs HQ on its own Mosquitto (`deploy/mosquitto/mosquitto.conf`, TLS, the ACL of
//! `deploy/town-keys.sh`), which bridges its status up to the prefecture's Mosquitto
//! (`deploy/mosquitto/prefecture.conf`) by `deploy/mosquitto/bridge-prefecture.conf`, only
//! names, addresses and paths changed. The prefecture dashboard shows both towns' counts; one
//! town's uplink cut shows that town STALE while the other stays live; an order given in the
//! cut town meanwhile reaches the prefecture when the link returns.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use evac_maps::{GenerateParams, Hazard, generate};
use serde_json::Value;
use support::deploy::{
    hq_conf, mosquitto_conf, mosquitto_file, officer_cmd, openssl_ca, town_keys,
};
use support::example::s;
use support::netns::Net;
use support::*;

const PREF_IP: &str = "198.51.100.30";
const PREF_PORT: u16 = 8883;
const TOWN_PORT: u16 = 8883;

/// `deploy/mosquitto/{name}` with each line starting with a key of `set` replaced, then
/// `extra`.
fn conf(name: &str, set: &[(&str, String)], extra: &str) -> String {
    mosquitto_file(name, set) + extra
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn passwd(file: &Path, user: &str, pw: &str) {
    let mut c = Command::new("mosquitto_passwd");
    if !file.exists() {
        c.arg("-c");
    }
    run(c.arg("-b").arg(file).args([user, pw]));
}

struct Town {
    id: &'static str,
    host: &'static str,
    dir: PathBuf,
    keys: PathBuf,
    zone: u32,
    ordered: u64,
    residents: u64,
}

#[test]
fn a_prefecture_sees_both_towns_and_a_cut_town_stale_until_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |x: &str| d.join(x);
    let net = Net::new(
        "pref",
        &[
            ("pref", PREF_IP),
            ("t1", "198.51.100.31"),
            ("t2", "198.51.100.32"),
        ],
    );

    // The prefecture broker: its own CA and certificate, a login per town and a viewer.
    std::fs::create_dir(p("pref")).unwrap();
    let pd = p("pref");
    openssl_ca(&pd, "ca", "prefecture CA");
    openssl(
        &pd,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=prefecture broker",
            "-keyout",
            "broker.key",
            "-out",
            "broker.csr",
        ],
    );
    std::fs::write(pd.join("san.ext"), format!("subjectAltName=IP:{PREF_IP}\n")).unwrap();
    openssl(
        &pd,
        &[
            "x509",
            "-req",
            "-in",
            "broker.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "broker.crt",
        ],
    );
    let pw = |user: &str| format!("pw-{user}");
    let mut acl = String::new();
    for user in ["town-shiomihama", "town-minato", "viewer-prefecture"] {
        passwd(&pd.join("passwd"), user, &pw(user));
    }
    // The ACL prefecture.conf describes, one block a town and one for the viewer.
    for t in ["shiomihama", "minato"] {
        acl += &format!("user town-{t}\ntopic write pref/36/{t}/#\n\n");
    }
    acl += "user viewer-prefecture\ntopic read pref/#\n";
    std::fs::write(pd.join("acl"), acl).unwrap();
    std::fs::create_dir(pd.join("data")).unwrap();
    std::fs::write(
        pd.join("mosquitto.conf"),
        conf(
            "prefecture.conf",
            &[
                (
                    "persistence_location",
                    format!("{}/", pd.join("data").display()),
                ),
                ("listener", format!("{PREF_PORT} {PREF_IP}")),
                ("certfile", s_(pd.join("broker.crt"))),
                ("keyfile", s_(pd.join("broker.key"))),
                ("password_file", s_(pd.join("passwd"))),
                ("acl_file", s_(pd.join("acl"))),
            ],
            "",
        ),
    )
    .unwrap();
    let _pref = Proc::spawn(
        "prefecture broker",
        net.on("pref", "mosquitto")
            .arg("-c")
            .arg(pd.join("mosquitto.conf"))
            .stdout(Stdio::null()),
    );

    // Two towns, each HQ on its own Mosquitto, which bridges up to the prefecture.
    let mut towns = Vec::new();
    let mut hqs = Vec::new();
    let mut brokers = Vec::new();
    for (i, (id, host)) in [("shiomihama", "t1"), ("minato", "t2")]
        .into_iter()
        .enumerate()
    {
        let td = p(id);
        std::fs::create_dir(&td).unwrap();
        let town = generate(&GenerateParams {
            households: 120 + 60 * i as u32,
            shelters: 6,
            seed: 20 + i as u64,
        });
        town.save(td.join("town.geojson")).unwrap();
        let zone = town
            .zones
            .iter()
            .find(|z| z.hazard == Hazard::Tsunami)
            .unwrap();
        let ordered = town
            .households
            .iter()
            .filter(|h| zone.contains(h.location))
            .map(|h| h.members.len() as u64)
            .sum();
        let residents = town.households.iter().map(|h| h.members.len() as u64).sum();
        let keys = td.join("keys");
        town_keys(
            &keys,
            &[town.shelters[0].id],
            &format!("hq.{id}.example"),
            "127.0.0.1",
        );
        std::fs::create_dir(td.join("mosquitto-data")).unwrap();
        let bridge = conf(
            "bridge-prefecture.conf",
            &[
                ("address", format!("{PREF_IP}:{PREF_PORT}")),
                ("bridge_cafile", s_(pd.join("ca.crt"))),
                ("remote_username", format!("town-{id}")),
                ("remote_password", pw(&format!("town-{id}"))),
                ("remote_clientid", format!("town-{id}")),
                ("notification_topic", format!("pref/36/{id}/bridge/state")),
                // A cut link is noticed within seconds here (the example keeps Mosquitto's 60).
                ("restart_timeout", "1 3".into()),
            ],
            "keepalive_interval 5\n",
        )
        .replace("evac/v1/shiomihama/", &format!("evac/v1/{id}/"))
        .replace("pref/36/shiomihama/", &format!("pref/36/{id}/"))
        .replace("user root\n", "");
        std::fs::write(
            td.join("mosquitto.conf"),
            mosquitto_conf(
                &keys,
                &td.join("mosquitto-data"),
                &format!("{TOWN_PORT} 127.0.0.1"),
            ) + &bridge,
        )
        .unwrap();
        brokers.push(Proc::spawn(
            &format!("{id} broker"),
            net.on(host, "mosquitto")
                .arg("-c")
                .arg(td.join("mosquitto.conf"))
                .stdout(Stdio::null()),
        ));
        std::fs::write(td.join("hq.toml"), hq_conf(&td, &keys, TOWN_PORT, id)).unwrap();
        let hq_pw = std::fs::read_to_string(keys.join("hq/mqtt-password")).unwrap();
        hqs.push(Proc::spawn(
            &format!("{id} hq"),
            net.on(host, bin("evac-hq"))
                .env("EVAC_HQ_MQTT_PASSWORD", &hq_pw)
                .args(["run", "--config"])
                .arg(td.join("hq.toml")),
        ));
        towns.push(Town {
            id,
            host,
            dir: td,
            keys,
            zone: zone.id,
            ordered,
            residents,
        });
    }

    // The prefecture dashboard, from its example: the viewer login and each town's HQ key.
    let mut dash =
        std::fs::read_to_string(workspace().join("deploy/dashboard-prefecture.example.toml"))
            .unwrap()
            .replace(
                "mqtts://prefecture.example.jp:8883",
                &format!("mqtts://{PREF_IP}:{PREF_PORT}"),
            )
            .replace("\"prefecture-ca.crt\"", &s(pd.join("ca.crt").display()))
            .replace(
                "password = \"change-me\"",
                &format!("password = \"{}\"", pw("viewer-prefecture")),
            )
            .replace(
                "/var/log/evac/prefecture-dashboard.log",
                &p("dash.log").display().to_string(),
            )
            .replace("stale_after_s = 120", "stale_after_s = 60");
    for t in &towns {
        dash = dash.replace(
            &format!("\"towns/{}-hq.pub\"", t.id),
            &s(t.keys.join("hq/hq.pub").display()),
        );
    }
    std::fs::write(p("pref.toml"), dash).unwrap();
    let rows = || -> Value {
        let o = net
            .on("pref", bin("evac-dashboard"))
            .arg("--config")
            .arg(p("pref.toml"))
            .args(["prefecture", "--json", "--timeout-s", "20"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let row = |v: &Value, town: &str| -> Value {
        v["towns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["town"] == town)
            .unwrap()
            .clone()
    };
    let mut last = Value::Null;
    wait_until(90, "both towns live at the prefecture", || {
        last = rows();
        towns.iter().all(|t| {
            let r = row(&last, t.id);
            r["stale"] == false && r["counts"]["residents"] == t.residents
        })
    });
    assert_eq!(last["refused"], 0, "{last}");

    // Town 2's uplink is cut: STALE there, town 1 stays live.
    net.link("t2", false);
    wait_until(60, "town 2 STALE", || {
        last = rows();
        row(&last, "minato")["why"] == "uplink down"
    });
    assert_eq!(row(&last, "shiomihama")["stale"], false, "{last}");
    assert_eq!(row(&last, "minato")["counts"]["under_order"], 0, "{last}");

    // Meanwhile town 2's officer orders its tsunami zone (on town 2's own network).
    let t2 = &towns[1];
    let reply = run(officer_cmd(
        &mut net.on(t2.host, bin("evac-hq")),
        &t2.keys,
        &format!("127.0.0.1:{TOWN_PORT}"),
        t2.id,
    )
    .args(["--reason", "tsunami warning", "issue-order"])
    .args([
        "--hazard",
        "tsunami",
        "--level",
        "4",
        "--zones",
        &t2.zone.to_string(),
    ]));
    assert!(reply.starts_with("ok:"), "{reply}");
    assert!(rows()["towns"][1]["counts"]["under_order"] == 0);

    // The link returns: town 2 is live again with the order's counts.
    net.link("t2", true);
    wait_until(90, "town 2 live with its new counts", || {
        last = rows();
        let r = row(&last, "minato");
        r["stale"] == false && r["counts"]["under_order"].as_u64() == Some(t2.ordered)
    });
    assert_eq!(
        row(&last, "shiomihama")["counts"]["under_order"],
        0,
        "{last}"
    );
    drop((hqs, brokers));
    let _ = &towns[0].dir;
}

/// A path as a TOML string.
fn s_(p: impl AsRef<Path>) -> String {
    p.as_ref().display().to_string()
}
