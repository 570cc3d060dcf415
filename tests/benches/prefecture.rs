//! What one prefecture Mosquitto carries: TOWNS publishers (standing for the towns' bridges)
//! each send MESSAGES status messages of SIZE bytes, QoS 1, under `pref/36/{town}/…`, all at
//! once, to one prefecture dashboard subscribed to `pref/#` at QoS 1. The figure is messages
//! (and bytes) a second from the first publish until the subscriber has every message, the
//! median of three rounds, for 1, 10 and TOWNS towns, through Debian's Mosquitto on loopback
//! (plain TCP: TLS costs the broker more per byte; persistence off, as the bridge's queue
//! lives in each town's broker).
//!
//! `cargo bench -p evac-tests --bench prefecture` (`TOWNS`, `MESSAGES`, `SIZE` change it).
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark binary: a panic is a failed run

use std::sync::mpsc;
use std::time::{Duration, Instant};

use evac_testkit::{Mosquitto, free_port};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(id: &str, port: u16) -> (Client, rumqttc::Connection) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_inflight(100);
    Client::new(o, 1000)
}

/// One round: seconds from the first publish until the subscriber has them all.
fn round(port: u16, towns: usize, messages: usize, size: usize) -> Duration {
    let total = towns * messages;
    let (sub, mut conn) = client(&format!("viewer-{}", free_port()), port);
    let (ready_tx, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let counter = std::thread::spawn(move || {
        let mut n = 0usize;
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    n += 1;
                    if n == total {
                        let _ = done_tx.send(Instant::now());
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("subscriber: {e}"),
            }
        }
    });
    sub.subscribe("pref/#", QoS::AtLeastOnce).unwrap();
    ready.recv_timeout(Duration::from_secs(10)).unwrap();
    let payload = vec![b'x'; size];
    let start = Instant::now();
    let mut pubs = Vec::new();
    for t in 0..towns {
        let payload = payload.clone();
        pubs.push(std::thread::spawn(move || {
            let (c, mut conn) = client(&format!("town-{t}-{}", free_port()), port);
            let topic = format!("pref/36/town{t}/evac/v1/town{t}/status");
            let sender = std::thread::spawn(move || {
                for _ in 0..messages {
                    c.publish(topic.as_str(), QoS::AtLeastOnce, false, payload.clone())
                        .unwrap();
                }
                c
            });
            let mut acked = 0;
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked += 1;
                        if acked == messages {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("town {t}: {e}"),
                }
            }
            let c = sender.join().unwrap();
            let _ = c.disconnect();
        }));
    }
    for p in pubs {
        p.join().unwrap();
    }
    let end = done.recv_timeout(Duration::from_secs(300)).unwrap();
    counter.join().unwrap();
    let _ = sub.disconnect();
    end - start
}

fn main() {
    let towns = env("TOWNS", 50);
    let messages = env("MESSAGES", 2_000);
    let size = env("SIZE", 1_000);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 100000\nmax_inflight_messages 100\n"
        ),
    )
    .unwrap();
    let _broker = Mosquitto::start(&conf, port, None);
    println!(
        "prefecture broker (Mosquitto {}, loopback, plain TCP, QoS 1 in and out), {size}-byte messages:",
        mosquitto_version()
    );
    let mut sizes = vec![1, 10, towns];
    sizes.dedup();
    for t in sizes {
        let mut runs: Vec<Duration> = (0..3).map(|_| round(port, t, messages, size)).collect();
        runs.sort();
        let m = runs[1];
        let total = (t * messages) as f64;
        println!(
            "  {t:>3} towns x {messages} messages: median {:.2} s, {:.0} messages/s, {:.1} MB/s to one dashboard",
            m.as_secs_f64(),
            total / m.as_secs_f64(),
            total * size as f64 / m.as_secs_f64() / 1e6
        );
    }
}

fn mosquitto_version() -> String {
    std::process::Command::new("mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim_start_matches("mosquitto version ").to_owned())
        })
        .unwrap_or_else(|| "?".into())
}
