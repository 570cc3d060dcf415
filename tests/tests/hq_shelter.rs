//! End to end: `evac-hq` and two `evac-shelter` nodes with virtual cards. First the broker
//! and HQ run as separate `evac-hq` processes (so each can restart alone), then HQ with its
//! embedded broker as one. Taps reach HQ's store exactly once through an HQ restart, a broker
//! restart, one shelter's network cut and two restarts of the embedded HQ, and each shelter's
//! outbox empties once HQ has acknowledged. A shelter whose ledger is restored from a backup
//! while HQ holds more of its events loses none of the taps made since.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::Command;

use evac_maps::{GenerateParams, generate};
use support::deploy::stored;
use support::town::{Cards, HqConfig, card_key, hq_key, passwords, shelter_key};
use support::*;

const PW: &str = "pw";

struct Node {
    id: u32,
    proc: Proc,
    cards: Vec<(u32, String)>,
    taps: usize,
}

impl Node {
    /// Taps the next `n` cards; each must be recorded.
    fn tap(&mut self, n: usize) {
        for _ in 0..n {
            let (resident, card) = self.cards[self.taps].clone();
            self.taps += 1;
            self.proc.send(&format!("tap {card}"));
            let line = self.proc.wait_line(20, "a recorded tap", |l| {
                l.contains("\"result\":\"recorded\"") || l.contains("\"result\":\"error\"")
            });
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["result"], "recorded", "{line}");
            assert_eq!(v["seq"], self.taps as u64, "resident {resident}: {line}");
        }
    }

    /// (last_seq, acked_through) from the node's `status` command.
    fn status(&mut self) -> (u64, u64) {
        self.proc.send("status");
        let line = self
            .proc
            .wait_line(10, "status", |l| l.contains("\"result\":\"status\""));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        (
            v["last_seq"].as_u64().unwrap(),
            v["acked_through"].as_u64().unwrap(),
        )
    }
}

/// The town, HQ's key, two shelters' keys, the broker's users, configs for HQ's embedded
/// broker (`broker.toml`) and for HQ on it as an external one (`hq.toml`), and 40 virtual
/// cards of registered residents: (shelters, broker port, cards).
fn setup(d: &Path) -> (Vec<u32>, u16, Vec<(u32, String)>) {
    let town = generate(&GenerateParams {
        households: 200,
        shelters: 12,
        seed: 9,
    });
    town.save(d.join("town.geojson")).unwrap();
    std::fs::create_dir_all(d.join("cap")).unwrap();
    hq_key(d);
    card_key(d);
    let shelters: Vec<u32> = town.shelters.iter().take(2).map(|s| s.id).collect();
    for s in &shelters {
        shelter_key(d, *s);
    }
    let users = shelters.iter().map(|s| format!("shelter-{s}"));
    passwords(d, users.chain(["hq".to_owned()]), PW);
    let port = free_port();
    let hq = HqConfig::for_shelters();
    std::fs::write(d.join("broker.toml"), hq.embedded(port)).unwrap();
    std::fs::write(d.join("hq.toml"), hq.external(port, PW)).unwrap();

    // Virtual cards for residents of the registry, from a test CA with the registry's issuer
    // key id.
    let issuer = Cards::new(d);
    let cards = town
        .households
        .iter()
        .flat_map(|h| &h.members)
        .filter_map(|m| m.cards.first().map(|c| (m.resident, c)))
        .take(40)
        .map(|(resident, c)| {
            let file = issuer.issue("ca", resident, &c.serial);
            (resident, file.display().to_string())
        })
        .collect();

    (shelters, port, cards)
}

#[test]
fn taps_reach_hq_once_through_restarts_and_a_network_cut() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);
    let hq_bin = bin("evac-hq");
    let shelter_bin = bin("evac-shelter");
    let (shelters, port, cards) = setup(d);

    let mut broker = Proc::spawn(
        "broker",
        Command::new(&hq_bin)
            .args(["broker", "--config"])
            .arg(p("broker.toml")),
    );
    broker.wait_line(20, "the broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    let mut hq = Proc::spawn(
        "hq",
        Command::new(&hq_bin)
            .args(["run", "--config"])
            .arg(p("hq.toml")),
    );
    let proxy = Proxy::start(([127, 0, 0, 1], port).into());

    let mut nodes: Vec<Node> = Vec::new();
    for (i, s) in shelters.iter().enumerate() {
        // Shelter 2 reaches the broker through a link the test can cut.
        let broker_port = if i == 1 { proxy.port } else { port };
        let cfg = format!(
            "town = \"minato\"\nshelter = {s}\ndata_dir = \"shelter-{s}\"\nnode_key = \"nodes/shelter-{s}.key\"\nhq_public_key = \"hq.pub\"\ncard_digest_key = \"card.key\"\n\
             debounce_ms = 10000\n[broker]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\npassword = \"{PW}\"\nack_timeout_ms = 2000\n\
             reconnect_max_ms = 500\nbatch_events = 200\n[card]\nreader = \"virtual\"\nca = [\"ca/ca.pem\"]\n[kiosk]\nlanguage = \"ja\"\n"
        );
        let path = p(&format!("shelter-{s}.toml"));
        std::fs::write(&path, cfg).unwrap();
        let proc = Proc::spawn(
            &format!("shelter {s}"),
            Command::new(&shelter_bin)
                .args(["run", "--config"])
                .arg(&path),
        );
        let mine = cards[i * 20..(i + 1) * 20].to_vec();
        nodes.push(Node {
            id: *s,
            proc,
            cards: mine,
            taps: 0,
        });
    }
    let store = p("hq-data/hq.sqlite");
    let all_stored = |nodes: &[Node]| {
        nodes
            .iter()
            .all(|n| stored(&store, n.id) == (1..=n.taps as u64).collect::<Vec<_>>())
    };

    // Normal operation.
    for n in &mut nodes {
        n.tap(4);
    }
    wait_until(30, "the first taps at HQ", || all_stored(&nodes));

    // HQ restarts (the broker stays): taps meanwhile arrive once HQ is back.
    hq.kill();
    for n in &mut nodes {
        n.tap(4);
    }
    let mut hq = Proc::spawn(
        "hq",
        Command::new(&hq_bin)
            .args(["run", "--config"])
            .arg(p("hq.toml")),
    );
    wait_until(40, "taps made while HQ was down", || all_stored(&nodes));

    // The broker restarts: it loses every session and retained message.
    broker.kill();
    for n in &mut nodes {
        n.tap(4);
    }
    let mut broker = Proc::spawn(
        "broker",
        Command::new(&hq_bin)
            .args(["broker", "--config"])
            .arg(p("broker.toml")),
    );
    broker.wait_line(20, "the broker again", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    wait_until(40, "taps made while the broker was down", || {
        all_stored(&nodes)
    });

    // Shelter 2's network is cut; its taps wait in its outbox and arrive after.
    proxy.cut();
    nodes[1].tap(4);
    nodes[0].tap(4);
    wait_until(20, "shelter 1's taps during the cut", || {
        stored(&store, nodes[0].id).len() == nodes[0].taps
    });
    assert_eq!(
        stored(&store, nodes[1].id).len(),
        12,
        "shelter 2 is cut off"
    );
    proxy.restore();
    wait_until(40, "shelter 2's taps after the cut", || all_stored(&nodes));

    // Finally HQ with its embedded broker (the default deployment), restarted as one process.
    hq.kill();
    broker.kill();
    for n in &mut nodes {
        n.tap(2);
    }
    let mut hq = Proc::spawn(
        "hq embedded",
        Command::new(&hq_bin)
            .args(["run", "--config"])
            .arg(p("broker.toml")),
    );
    hq.wait_line(20, "the embedded broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    wait_until(40, "taps made while HQ and its broker were down", || {
        all_stored(&nodes)
    });
    hq.kill();
    for n in &mut nodes {
        n.tap(2);
    }
    let mut hq = Proc::spawn(
        "hq embedded",
        Command::new(&hq_bin)
            .args(["run", "--config"])
            .arg(p("broker.toml")),
    );
    hq.wait_line(20, "the embedded broker again", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    wait_until(40, "taps after the embedded HQ restarted", || {
        all_stored(&nodes)
    });

    // Every tap exactly once, and every outbox empty.
    for n in &mut nodes {
        let expected = n.taps as u64;
        wait_until(30, "the outbox to empty", || {
            let (last, acked) = n.status();
            last == expected && acked == expected
        });
    }
    let conn = rusqlite::Connection::open(&store).unwrap();
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total as usize, nodes.iter().map(|n| n.taps).sum::<usize>());
    let rejected: i64 = conn
        .query_row("SELECT COUNT(*) FROM rejections", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rejected, 0);

    // HQ knows each tapped resident as arrived at the right shelter.
    let csv = run(Command::new(&hq_bin)
        .args(["export", "--data"])
        .arg(p("hq-data"))
        .arg("--csv"));
    for n in &nodes {
        for (resident, _) in &n.cards[..n.taps] {
            let line = csv
                .lines()
                .find(|l| l.starts_with(&format!("{resident},")))
                .unwrap();
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(
                (f[4], f[5]),
                ("arrived", n.id.to_string().as_str()),
                "{line}"
            );
        }
    }
    hq.kill();
}

/// Taps `card` at a node; returns the sequence number the node recorded.
fn tap(node: &mut Proc, card: &str) -> u64 {
    node.send(&format!("tap {card}"));
    let line = node.wait_line(20, "a recorded tap", |l| {
        l.contains("\"result\":\"recorded\"") || l.contains("\"result\":\"error\"")
    });
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["result"], "recorded", "{line}");
    v["seq"].as_u64().unwrap()
}

/// The resident each stored event of `shelter` names, by sequence number.
fn stored_residents(store: &Path, shelter: u32) -> Vec<(u64, Option<u32>)> {
    let conn = rusqlite::Connection::open(store).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, resident FROM events WHERE shelter = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([shelter], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_ledger_restored_from_a_backup_loses_no_tap_made_since() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);
    let (shelters, port, cards) = setup(d);
    let s = shelters[0];
    std::fs::write(
        p(&format!("shelter-{s}.toml")),
        format!(
            "town = \"minato\"\nshelter = {s}\ndata_dir = \"shelter-{s}\"\nnode_key = \"nodes/shelter-{s}.key\"\n\
             hq_public_key = \"hq.pub\"\ncard_digest_key = \"card.key\"\n[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\npassword = \"{PW}\"\n\
             ack_timeout_ms = 2000\nreconnect_max_ms = 500\n[card]\nreader = \"virtual\"\nca = [\"ca/ca.pem\"]\n"
        ),
    )
    .unwrap();
    let start_hq = || {
        let mut hq = Proc::spawn(
            "hq",
            Command::new(bin("evac-hq"))
                .current_dir(d)
                .args(["run", "--config"])
                .arg(p("broker.toml")),
        );
        hq.wait_line(20, "the embedded broker", |l| {
            l.starts_with("evac-hq: broker listening on")
        });
        hq
    };
    let start_node = || {
        Proc::spawn(
            "shelter",
            Command::new(bin("evac-shelter"))
                .current_dir(d)
                .args(["run", "--config"])
                .arg(p(&format!("shelter-{s}.toml"))),
        )
    };
    let status = |node: &mut Proc| -> serde_json::Value {
        node.send("status");
        let line = node.wait_line(10, "status", |l| l.contains("\"result\":\"status\""));
        serde_json::from_str(&line).unwrap()
    };
    let store = p("hq-data/hq.sqlite");
    let data = p(&format!("shelter-{s}"));
    let backup = p("backup");

    let mut hq = start_hq();
    let mut node = start_node();
    // The registry first, so the backup holds it: the taps after the restore, offline, then
    // name their residents (a node without a registry records the card only, which HQ
    // resolves, but the check below reads the resident the node recorded).
    node.wait_line(60, "the registry from HQ", |l| {
        l.contains("\"result\":\"registry\"")
    });
    for (_, card) in &cards[..2] {
        tap(&mut node, card);
    }
    wait_until(30, "the first taps at HQ", || stored(&store, s) == [1, 2]);
    wait_until(10, "HQ's ack", || status(&mut node)["acked_through"] == 2);
    // The night's backup of the node's data directory.
    node.kill();
    run(Command::new("cp").arg("-a").arg(&data).arg(&backup));
    let mut node = start_node();
    for (_, card) in &cards[2..5] {
        tap(&mut node, card);
    }
    wait_until(30, "taps 3-5 at HQ", || {
        stored(&store, s) == [1, 2, 3, 4, 5]
    });

    // The node's disk fails during the evacuation, HQ is unreachable; the node comes back
    // from the backup and records two new residents offline, as 3 and 4 again.
    node.kill();
    hq.kill();
    std::fs::remove_dir_all(&data).unwrap();
    run(Command::new("cp").arg("-a").arg(&backup).arg(&data));
    let mut node = start_node();
    let new: Vec<&(u32, String)> = cards[5..7].iter().collect();
    assert_eq!(tap(&mut node, &new[0].1), 3);
    assert_eq!(tap(&mut node, &new[1].1), 4);

    // HQ comes back: the node learns HQ is ahead, says so, and its new taps reach HQ.
    let _hq = start_hq();
    wait_until(30, "the new residents at HQ", || {
        let at_hq = stored_residents(&store, s);
        new.iter()
            .all(|(r, _)| at_hq.iter().any(|(_, x)| *x == Some(*r)))
    });
    let st = status(&mut node);
    assert!(
        st["behind_hq"]
            .as_str()
            .is_some_and(|m| m.contains("restored or rebuilt")),
        "{st}"
    );
    let next = tap(&mut node, &cards[7].1);
    assert!(next > 5, "a new tap numbered {next}, under HQ's 5");
    wait_until(30, "every event at HQ, numbered without a gap", || {
        stored(&store, s) == (1..=next).collect::<Vec<u64>>()
    });
    wait_until(10, "the outbox empty", || {
        let st = status(&mut node);
        st["acked_through"] == next && st["last_seq"] == next
    });
    // HQ kept its own 3-5 (taps that happened), and whatever of the node's old 3 and 4 it
    // received before the node recovered is kept aside, not over them.
    let at_hq = stored_residents(&store, s);
    for (i, (r, _)) in cards[2..5].iter().enumerate() {
        assert_eq!(at_hq[2 + i], (3 + i as u64, Some(*r)));
    }
}
