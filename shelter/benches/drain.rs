//! Outbox drain: 100,000 pending events published to a local broker (rumqttd, in process)
//! and acknowledged by a consumer that verifies each batch, as HQ would.
//!
//! `cargo bench -p evac-shelter --bench drain`

#![allow(clippy::unwrap_used)] // a benchmark may unwrap: a panic is a failed run

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use evac_protocol::{
    Ack, Assurance, EventBatch, EventKind, HQ_SIGNER, SecretKey, ShelterId, Slug, Topic,
};
use evac_shelter::door::EventDraft;
use evac_shelter::ledger::Ledger;
use evac_shelter::replicate::{Replicator, ReplicatorConfig, Shared};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

fn broker(port: u16) {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let server = ServerSettings {
        name: "v4".into(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 16 << 20,
            max_inflight_count: 200,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 256 << 20,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    };
    std::thread::spawn(move || {
        let _ = Broker::new(config).start();
    });
}

fn main() {
    let n: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let shelter = ShelterId(3);
    let town = Slug::new("minato").unwrap();
    let node_key = SecretKey::from_seed(&[3; 32]);
    let hq = SecretKey::from_seed(&[9; 32]);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = dir.path().join("ledger.db");
    {
        let mut l = Ledger::open(&db, shelter, SecretKey::from_seed(&[3; 32])).unwrap();
        // Setup only: fill the backlog without an fsync per event.
        l.conn().pragma_update(None, "synchronous", "OFF").unwrap();
        let d = EventDraft {
            kind: EventKind::CheckIn,
            card: None,
            resident: Some(evac_protocol::ResidentId(1)),
            household: Some(evac_protocol::HouseholdId(1)),
            assurance: Assurance::Staff,
            flags: vec![],
            day_only: false,
        };
        for i in 0..n {
            l.append(&d, 1_795_000_000_000 + i).unwrap();
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    broker(port);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }

    // The consumer standing in for HQ: verify each batch, ack the contiguous prefix.
    let mut opts = MqttOptions::new("bench-hq", "127.0.0.1", port);
    opts.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut conn) = Client::new(opts, 1000);
    let events_topic = Topic::ShelterEvents(town.clone(), shelter).to_string();
    let ack_topic = Topic::ShelterAck(town.clone(), shelter).to_string();
    let node_pub = node_key.public();
    let (sub_tx, sub_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut through = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client
                        .try_subscribe(events_topic.clone(), QoS::AtLeastOnce)
                        .unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = sub_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == events_topic => {
                    let batch: EventBatch = serde_json::from_slice(&p.payload).unwrap();
                    let refs: Vec<_> = batch.events.iter().collect();
                    node_pub.verify_batch(&refs).unwrap();
                    for e in &batch.events {
                        seen.insert(e.body_unverified().unwrap().id.seq);
                    }
                    while seen.remove(&(through + 1)) {
                        through += 1;
                    }
                    let ack = Ack {
                        shelter: ShelterId(3),
                        through_seq: through,
                        at_ms: 0,
                        rejected: None,
                    };
                    let payload = hq.sign(HQ_SIGNER, &ack).unwrap().to_json().unwrap();
                    let _ = client.publish(ack_topic.clone(), QoS::AtLeastOnce, true, payload);
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    sub_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    let shared = Arc::new(Shared::default());
    let cfg = ReplicatorConfig {
        town,
        shelter,
        broker: format!("127.0.0.1:{port}").parse().unwrap(),
        password: None,
        ca_pem: None,
        ack_timeout: Duration::from_secs(30),
        reconnect_max: Duration::from_secs(1),
        batch_events: 200,
    };
    let hq_pub = SecretKey::from_seed(&[9; 32]).public();
    let r = Replicator::new(cfg, &db, node_key, hq_pub, shared.clone()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(r.run(stop_rx))
    });
    while shared.acked_through.load(Ordering::Relaxed) < n {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "drain stalled at {}",
            shared.acked_through.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed();
    let _ = stop_tx.send(true);
    let _ = t.join();
    println!("outbox drain: {n} pending events -> rumqttd -> verifying consumer -> end-to-end ack");
    println!(
        "  {:.2} s, {:.0} events/s, {} batches of up to 200",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        shared.batches_sent.load(Ordering::Relaxed)
    );
}
