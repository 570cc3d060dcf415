//! A town on separate hosts: HQ, two shelter nodes and the broadcaster each in a network
//! namespace of their own (198.51.100.0/24 through a virtual switch), keys from
//! `deploy/town-keys.sh`, configs from the deploy examples with only paths and addresses
//! changed. A shelter's link is cut during taps and restored: its events reach HQ exactly once.
//! HQ's link is cut, then HQ is killed and started again: nothing is lost.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::PathBuf;
use std::process::Command;

use evac_maps::{GenerateParams, SYNTHETIC_ISSUER_KEY_ID_HEX, generate};
use support::deploy::{hq_conf, mosquitto_conf, stored, town_keys};
use support::example::{example, s};
use support::netns::Net;
use support::*;

const HQ_IP: &str = "198.51.100.1";

struct Shelter {
    id: u32,
    host: &'static str,
    proc: Proc,
    cards: Vec<PathBuf>,
    taps: usize,
}

impl Shelter {
    fn tap(&mut self, n: usize) {
        for _ in 0..n {
            let card = self.cards[self.taps].clone();
            self.taps += 1;
            self.proc.send(&format!("tap {}", card.display()));
            let line = self.proc.wait_line(20, "a recorded tap", |l| {
                l.contains("\"result\":\"recorded\"") || l.contains("\"result\":\"error\"")
            });
            assert!(line.contains("\"result\":\"recorded\""), "{line}");
            assert!(line.contains(&format!("\"seq\":{}", self.taps)), "{line}");
        }
    }
}

#[test]
fn a_town_on_four_hosts_survives_cut_links_and_an_hq_restart() {
    town_on_four_hosts(false);
}

/// The same town with the deployment's Mosquitto at town hall instead of HQ's embedded broker:
/// TLS only, the ACL and passwords of `deploy/town-keys.sh`. The same cuts and restart lose
/// nothing; the broker refuses a shelter's writes beyond its own topics, and a node that does
/// not trust the town's CA cannot connect.
#[test]
fn the_same_town_on_mosquitto_over_tls() {
    town_on_four_hosts(true);
}

fn town_on_four_hosts(mosquitto: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |x: &str| d.join(x);
    let net = Net::new(
        if mosquitto { "mq" } else { "town" },
        &[
            ("hq", HQ_IP),
            ("s1", "198.51.100.11"),
            ("s2", "198.51.100.12"),
            ("bc", "198.51.100.21"),
        ],
    );

    let town = generate(&GenerateParams {
        households: 200,
        shelters: 12,
        seed: 9,
    });
    town.save(p("town.geojson")).unwrap();
    let ids: Vec<u32> = town.shelters.iter().take(2).map(|s| s.id).collect();
    // With Mosquitto, a third shelter's login that no node uses: the attacker below (a login
    // in use would be kicked by its own node, Mosquitto binding client ids to logins).
    let third = town.shelters[2].id;
    let keys = p("keys");
    let with_keys: Vec<u32> = ids
        .iter()
        .copied()
        .chain(mosquitto.then_some(third))
        .collect();
    town_keys(&keys, &with_keys, "hq.shiomihama.example", HQ_IP);
    let k = |x: &str| keys.join(x);

    // With Mosquitto: the town broker at town hall, on every address of HQ's host; HQ reaches
    // it on loopback, every other node across the network, all over TLS.
    let (scheme, port) = if mosquitto {
        ("mqtts", 8883)
    } else {
        ("mqtt", 1883)
    };
    let _town_broker = mosquitto.then(|| {
        std::fs::create_dir(p("mosquitto-data")).unwrap();
        std::fs::write(
            p("mosquitto.conf"),
            mosquitto_conf(&keys, &p("mosquitto-data"), "8883"),
        )
        .unwrap();
        Proc::spawn(
            "mosquitto",
            net.on("hq", "mosquitto")
                .arg("-c")
                .arg(p("mosquitto.conf"))
                .stdout(std::process::Stdio::null()),
        )
    });
    // HQ from its example: only paths changed (it listens on 0.0.0.0:1883 as the example
    // says), or its external-broker section for Mosquitto.
    let hq_pw = std::fs::read_to_string(k("hq/mqtt-password")).unwrap();
    if mosquitto {
        std::fs::write(p("hq.toml"), hq_conf(d, &keys, 8883, "shiomihama")).unwrap();
        wait_until(20, "HQ's check to log in to Mosquitto", || {
            net.on("hq", bin("evac-hq"))
                .env("EVAC_HQ_MQTT_PASSWORD", &hq_pw)
                .args(["check", "--config"])
                .arg(p("hq.toml"))
                .output()
                .unwrap()
                .status
                .success()
        });
    } else {
        std::fs::write(
            p("hq.toml"),
            example(
                "hq.example.toml",
                &[
                    ("town_file", s(p("town.geojson").display())),
                    ("data_dir", s(p("hq-data").display())),
                    ("hq_key", s(k("hq/hq.key").display())),
                    ("keys_dir", s(k("hq/keys").display())),
                    ("cap_dir", s(p("hq-data/cap").display())),
                    ("status_interval_ms", "250".into()),
                    ("broker.passwords", s(k("hq/mqtt-passwords").display())),
                ],
            ),
        )
        .unwrap();
    }
    let start_hq = || {
        let mut hq = Proc::spawn(
            "hq",
            net.on("hq", bin("evac-hq"))
                .env("EVAC_HQ_MQTT_PASSWORD", &hq_pw)
                .args(["run", "--config"])
                .arg(p("hq.toml")),
        );
        if !mosquitto {
            hq.wait_line(30, "HQ's broker", |l| {
                l.starts_with("evac-hq: broker listening on")
            });
        }
        hq
    };
    let mut hq = start_hq();

    // Cards for residents of the registry, from a JPKI-shaped test CA.
    let shelter_bin = bin("evac-shelter");
    run(Command::new(&shelter_bin)
        .args(["vcard", "ca", "--dir"])
        .arg(p("ca"))
        .args(["--key-id", SYNTHETIC_ISSUER_KEY_ID_HEX]));
    run(Command::new(&shelter_bin)
        .args(["vcard", "key", "--out"])
        .arg(p("card.key")));
    let serials: Vec<String> = town
        .households
        .iter()
        .flat_map(|h| &h.members)
        .filter_map(|m| m.cards.first().map(|c| hex::encode(&c.serial)))
        .take(28)
        .collect();
    let mut cards = Vec::new();
    for (i, serial) in serials.iter().enumerate() {
        let file = p(&format!("card-{i}.json"));
        run(Command::new(&shelter_bin)
            .args(["vcard", "issue", "--ca"])
            .arg(p("ca"))
            .args(["--serial", serial, "--key"])
            .arg(p("card.key"))
            .arg("--out")
            .arg(&file));
        cards.push(file);
    }

    // Two shelter nodes on hosts of their own, each from the example and its key folder.
    let mut nodes = Vec::new();
    for (i, (id, host)) in ids.iter().zip(["s1", "s2"]).enumerate() {
        let own = |x: &str| k(&format!("shelter-{id}/{x}"));
        let cfg = p(&format!("shelter-{id}.toml"));
        let mut set = vec![
            ("shelter", id.to_string()),
            ("data_dir", s(p(&format!("shelter-{id}")).display())),
            ("node_key", s(own(&format!("shelter-{id}.key")).display())),
            ("hq_public_key", s(own("hq.pub").display())),
            ("card_digest_key", s(own("card.key").display())),
            ("broker.url", s(format!("{scheme}://{HQ_IP}:{port}"))),
            (
                "broker.password",
                s(std::fs::read_to_string(own("password")).unwrap()),
            ),
            ("broker.ack_timeout_ms", "2000".into()),
            ("broker.reconnect_max_ms", "500".into()),
            ("card.ca", format!("[{}]", s(p("ca/ca.pem").display()))),
        ];
        if mosquitto {
            set.push(("broker.ca", s(own("ca.crt").display())));
        }
        std::fs::write(&cfg, example("shelter.example.toml", &set)).unwrap();
        if mosquitto && i == 0 {
            // A node that trusts another CA is refused, with one line saying so.
            let other = p("other.toml");
            std::fs::write(
                &other,
                std::fs::read_to_string(&cfg)
                    .unwrap()
                    .replace(&s(own("ca.crt").display()), &s(p("ca/ca.pem").display())),
            )
            .unwrap();
            let o = net
                .on(host, &shelter_bin)
                .args(["check", "--config"])
                .arg(&other)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !o.status.success() && err.contains("TLS with the broker failed"),
                "{err}"
            );
        }
        // `check` from the shelter's host logs in to HQ across the network.
        let ok = run(net
            .on(host, &shelter_bin)
            .args(["check", "--config"])
            .arg(&cfg));
        assert!(ok.contains(&format!("accepted user shelter-{id}")), "{ok}");
        let proc = Proc::spawn(
            &format!("shelter {id}"),
            net.on(host, &shelter_bin)
                .args(["run", "--config"])
                .arg(&cfg),
        );
        nodes.push(Shelter {
            id: *id,
            host,
            proc,
            cards: cards[i * 14..(i + 1) * 14].to_vec(),
            taps: 0,
        });
    }

    // The broadcaster at the head-end, from its example: logs in as broadcaster-catv.
    let bc = p("broadcaster.toml");
    let own = |x: &str| k(&format!("broadcaster-catv/{x}"));
    let mut set = vec![
        ("data_dir", s(p("bc-data").display())),
        ("broadcaster_key", s(own("broadcaster-catv.key").display())),
        ("broker.url", s(format!("{scheme}://{HQ_IP}:{port}"))),
        (
            "broker.password",
            s(std::fs::read_to_string(own("password")).unwrap()),
        ),
        ("stream.out", s(p("on-air.ts").display())),
    ];
    if mosquitto {
        set.push(("broker.ca", s(own("ca.crt").display())));
    }
    std::fs::write(&bc, example("broadcaster.example.toml", &set)).unwrap();
    let bc_bin = bin("evac-broadcaster");
    let ok = run(net.on("bc", &bc_bin).args(["check", "--config"]).arg(&bc));
    assert!(ok.contains("accepted user broadcaster-catv"), "{ok}");
    let _broadcaster = Proc::spawn(
        "broadcaster",
        net.on("bc", &bc_bin).args(["run", "--config"]).arg(&bc),
    );

    let store = p("hq-data/hq.sqlite");
    let all_stored = |nodes: &[Shelter]| {
        nodes
            .iter()
            .all(|n| stored(&store, n.id) == (1..=n.taps as u64).collect::<Vec<_>>())
    };

    for n in &mut nodes {
        n.tap(3);
    }
    wait_until(30, "the first taps at HQ", || all_stored(&nodes));

    if mosquitto {
        // A third shelter's own valid login, from shelter 1's host, writes shelter 2's topic
        // and the orders topic (retained): the broker lets neither through. HQ records a rejection for anything
        // malformed that reaches it, and an officer would read a retained order.
        let (a, b) = (third, nodes[1].id);
        let own = |x: &str| k(&format!("shelter-{a}/{x}"));
        let pw = std::fs::read_to_string(own("password")).unwrap();
        for (topic, retain) in [
            (format!("evac/v1/shiomihama/shelter/{b}/events"), false),
            ("evac/v1/shiomihama/orders".to_owned(), true),
        ] {
            let mut c = net.on(nodes[0].host, "mosquitto_pub");
            c.args(["-h", HQ_IP, "-p", "8883", "--cafile"])
                .arg(own("ca.crt"))
                .args(["-u", &format!("shelter-{a}"), "-P", pw.trim(), "-q", "1"])
                .args(["-t", &topic, "-m", "{\"junk\":true}"]);
            if retain {
                c.arg("-r");
            }
            run(&mut c);
        }
        let officer = |x: &str| k(&format!("officer-tanaka/{x}"));
        let o = net
            .on("hq", "mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", "8883", "--cafile"])
            .arg(officer("ca.crt"))
            .args(["-u", "officer-tanaka", "-P"])
            .arg(std::fs::read_to_string(officer("password")).unwrap().trim())
            .args(["-t", "evac/v1/shiomihama/orders", "-W", "3", "-C", "1"])
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("junk"),
            "a shelter's retained junk on orders reached an officer"
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
        let rejected: i64 = rusqlite::Connection::open(&store)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM rejections", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            rejected, 0,
            "shelter 1's write on shelter 2's topic reached HQ"
        );
        assert_eq!(stored(&store, b).len(), 3);
    }

    // Shelter 2's link goes down during taps; shelter 1 goes on.
    net.link(nodes[1].host, false);
    for _ in 0..4 {
        nodes[1].tap(1);
        nodes[0].tap(1);
    }
    wait_until(20, "shelter 1's taps during the cut", || {
        stored(&store, nodes[0].id).len() == nodes[0].taps
    });
    assert_eq!(stored(&store, nodes[1].id).len(), 3, "shelter 2 is cut off");
    net.link(nodes[1].host, true);
    wait_until(40, "shelter 2's taps after the cut, once each", || {
        all_stored(&nodes)
    });

    // HQ's link goes down, taps go on at both shelters, HQ is killed and started again.
    net.link("hq", false);
    for n in &mut nodes {
        n.tap(3);
    }
    hq.kill();
    let mut hq = start_hq();
    for n in &mut nodes {
        n.tap(1);
    }
    net.link("hq", true);
    wait_until(
        60,
        "every tap after HQ's cut and restart, once each",
        || all_stored(&nodes),
    );

    // Every outbox empties: each node has HQ's ack for everything it recorded.
    for n in &mut nodes {
        let expected = n.taps;
        wait_until(30, "the outbox to empty", || {
            n.proc.send("status");
            let line = n
                .proc
                .wait_line(10, "status", |l| l.contains("\"result\":\"status\""));
            line.contains(&format!("\"acked_through\":{expected}"))
        });
    }
    let conn = rusqlite::Connection::open(&store).unwrap();
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total as usize, nodes.iter().map(|n| n.taps).sum::<usize>());
    // The broadcaster stayed up on its own host, logged in to HQ's broker (again after HQ's
    // restart), writing the stream.
    wait_until(20, "the broadcaster's stream and health", || {
        let health: serde_json::Value = std::fs::read(p("bc-data/health.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        health["connected"] == true && std::fs::metadata(p("on-air.ts")).is_ok_and(|m| m.len() > 0)
    });
    hq.kill();
}
