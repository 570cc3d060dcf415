//! Replication end to end: a node process, a real broker (rumqttd, and separately Mosquitto),
//! a link that is cut and restored, broker and node killed and restarted; a consumer standing
//! in for HQ ends with every event exactly once.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod support;

use std::time::Duration;

use support::mqtt::{BrokerProc, Consumer, Proxy, free_port};
use support::node::{NodeProc, ledger_events, node_files, wait_until};

/// rumqttd in a child process: the test binary runs itself with this test selected.
#[test]
#[ignore = "helper: runs rumqttd when started by the replication tests"]
fn rumqttd_child() {
    if let Ok(port) = std::env::var("EVAC_TEST_RUMQTTD_PORT") {
        support::mqtt::run_rumqttd(port.parse().unwrap());
    }
}

enum Kind {
    Rumqttd,
    Mosquitto,
}

fn scenario(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start_broker = || match kind {
        Kind::Rumqttd => BrokerProc::rumqttd(port),
        Kind::Mosquitto => BrokerProc::mosquitto(port, dir.path()),
    };
    let (node_pw, hq_creds) = match kind {
        Kind::Rumqttd => (Some("pw3"), Some(("hq", "hqpw"))),
        Kind::Mosquitto => (None, None),
    };
    let mut broker = start_broker();
    let proxy = Proxy::start(port);
    let consumer = Consumer::start(port, hq_creds);
    let files = node_files(dir.path(), Some(("127.0.0.1", proxy.port, node_pw)), 0);
    let tap = format!("tap {}", files.card.display());
    let mut node = NodeProc::start(&files.config);
    let total = std::cell::Cell::new(0u64);
    let taps = |node: &mut NodeProc, n: usize| {
        for _ in 0..n {
            let v = node.ask(&tap);
            assert_eq!(v["result"], "recorded", "{v}");
            total.set(total.get() + 1);
        }
        total.get()
    };
    let stored = |c: &Consumer| c.store.lock().unwrap().contiguous();

    // Connected: events reach HQ and are acknowledged.
    let n = taps(&mut node, 20);
    wait_until(Duration::from_secs(20), "first events stored", || {
        stored(&consumer) == n
    });
    wait_until(Duration::from_secs(20), "first ack", || {
        node.ask("status")["acked_through"] == n
    });
    // The registry came over MQTT: the card is resident 100's.
    assert_eq!(node.ask("status")["registry_version"], 1);
    assert_eq!(node.ask(&tap)["event"]["resident"], 100);
    total.set(total.get() + 1);

    // Broker killed: taps go on offline; after the restart everything arrives.
    broker.kill();
    let n = taps(&mut node, 20);
    broker = start_broker();
    wait_until(
        Duration::from_secs(30),
        "events after broker restart",
        || stored(&consumer) == n,
    );

    // Network cut and restored.
    proxy.cut();
    let n = taps(&mut node, 20);
    std::thread::sleep(Duration::from_millis(300)); // let the node notice the cut link
    assert!(stored(&consumer) < n, "events crossed a cut link");
    proxy.restore();
    wait_until(Duration::from_secs(30), "events after the cut", || {
        stored(&consumer) == n
    });

    // Liveness: a retained online state with the node's session counter.
    let state = |c: &Consumer| c.store.lock().unwrap().state.clone();
    wait_until(Duration::from_secs(20), "online state", || {
        state(&consumer).is_some_and(|s| s.online)
    });
    let session = state(&consumer).unwrap().session;
    assert!(
        session >= 3,
        "session counter {session} after two reconnects"
    );

    // Node killed mid-stream and restarted; it resends what HQ has not acknowledged.
    let _ = taps(&mut node, 10);
    node.kill();
    wait_until(Duration::from_secs(30), "last will", || {
        state(&consumer).is_some_and(|s| !s.online)
    });
    let mut node = NodeProc::start(&files.config);
    wait_until(Duration::from_secs(20), "online again", || {
        state(&consumer).is_some_and(|s| s.online && s.session > session)
    });
    let n = taps(&mut node, 10);
    wait_until(Duration::from_secs(30), "events after node restart", || {
        stored(&consumer) == n
    });
    wait_until(Duration::from_secs(20), "final ack", || {
        node.ask("status")["acked_through"] == n
    });

    // Exactly once, and exactly what the ledger says.
    let ledger = ledger_events(&files.dir.join("data"));
    let store = consumer.store.lock().unwrap();
    assert_eq!(ledger.len() as u64, n);
    assert_eq!(store.events.len() as u64, n);
    for e in &ledger {
        let seq = e["id"]["seq"].as_u64().unwrap();
        assert_eq!(
            &serde_json::to_value(&store.events[&seq]).unwrap(),
            e,
            "event {seq}"
        );
    }
    eprintln!(
        "duplicates received and ignored by the consumer: {}",
        store.duplicates
    );
    drop(store);
    node.stop();
    drop(broker);
}

#[test]
fn rumqttd_broker_restart_cut_and_node_restart_lose_nothing() {
    scenario(Kind::Rumqttd);
}

#[test]
fn mosquitto_broker_restart_cut_and_node_restart_lose_nothing() {
    scenario(Kind::Mosquitto);
}
