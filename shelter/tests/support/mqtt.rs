//! Brokers (rumqttd in a child process, Mosquitto), a TCP proxy whose link can be cut, and a
//! test consumer that stands in for HQ: it stores events idempotently and acknowledges.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evac_protocol::{
    Ack, CheckEvent, EventBatch, HQ_SIGNER, NodeState, ShelterId, Signed, Slug, Topic,
};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

use super::node::{hq_key, node_key, wait_until};

#[allow(unused_imports)] // each test uses a part of it
pub use evac_testkit::free_port;

fn wait_listening(port: u16) {
    wait_until(Duration::from_secs(20), "broker to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// A broker in a child process, killed on drop.
pub struct BrokerProc {
    child: Broker,
    pub port: u16,
}

enum Broker {
    Rumqttd(Child),
    Mosquitto(evac_testkit::Mosquitto),
}

impl BrokerProc {
    /// rumqttd, run by this test binary itself (see `rumqttd_child` in the test file), with
    /// users `shelter-3`/`pw3` and `hq`/`hqpw`.
    pub fn rumqttd(port: u16) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "rumqttd_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("EVAC_TEST_RUMQTTD_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port);
        BrokerProc {
            child: Broker::Rumqttd(child),
            port,
        }
    }

    /// Mosquitto with its own config (never the system service), anonymous on loopback.
    pub fn mosquitto(port: u16, dir: &Path) -> Self {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            // `user root`: as root, Mosquitto drops to user `mosquitto`, which cannot enter a
            // private temp or clone directory.
            format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            ),
        )
        .unwrap();
        BrokerProc {
            child: Broker::Mosquitto(evac_testkit::Mosquitto::start(&conf, port, None)),
            port,
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        match &mut self.child {
            Broker::Rumqttd(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Broker::Mosquitto(m) => m.kill(),
        }
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs rumqttd on `port` forever (called in the child process).
pub fn run_rumqttd(port: u16) {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let auth: HashMap<String, String> = [("shelter-3", "pw3"), ("hq", "hqpw")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let server = ServerSettings {
        name: "v4".into(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 16 << 20,
            max_inflight_count: 200,
            auth: Some(auth),
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 64 << 20,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    };
    let _ = Broker::new(config).start();
}

/// A TCP proxy on loopback whose link can be cut (every connection closed, new ones refused)
/// and restored.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, s) = (cut.clone(), streams.clone());
        std::thread::spawn(move || {
            for down in listener.incoming() {
                let Ok(down) = down else { continue };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut list = s.lock().unwrap();
                list.push(down.try_clone().unwrap());
                list.push(up.try_clone().unwrap());
                drop(list);
                pipe(down.try_clone().unwrap(), up.try_clone().unwrap());
                pipe(up, down);
            }
        });
        Proxy { port, cut, streams }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// What the stand-in HQ stored.
#[derive(Default)]
pub struct Store {
    /// Events by sequence number, stored once each.
    pub events: BTreeMap<u64, CheckEvent>,
    /// Events received again that were already stored (ignored, idempotent).
    pub duplicates: u64,
    /// The last node state seen on `.../state` (verified with the node's key).
    pub state: Option<NodeState>,
}

impl Store {
    /// Highest sequence with every event up to it stored.
    pub fn contiguous(&self) -> u64 {
        let mut n = 0;
        while self.events.contains_key(&(n + 1)) {
            n += 1;
        }
        n
    }
}

/// The stand-in HQ: subscribes to shelter 3's events, verifies and stores them, and publishes
/// a signed, retained ack (again after every reconnect, as the owner of a retained topic
/// must); it also publishes the registry's shards and manifest (retained), as HQ does.
pub struct Consumer {
    pub store: Arc<Mutex<Store>>,
    pub connects: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Consumer {
    pub fn start(port: u16, credentials: Option<(&str, &str)>) -> Self {
        let store: Arc<Mutex<Store>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let connects = Arc::new(AtomicU64::new(0));
        let mut opts = MqttOptions::new("test-hq", "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(16 << 20, 16 << 20);
        if let Some((u, p)) = credentials {
            opts.set_credentials(u, p);
        }
        let (client, mut conn) = Client::new(opts, 100);
        let town = Slug::new("minato").unwrap();
        let events_topic = Topic::ShelterEvents(town.clone(), ShelterId(3)).to_string();
        let ack_topic = Topic::ShelterAck(town.clone(), ShelterId(3)).to_string();
        let state_topic = Topic::ShelterState(town.clone(), ShelterId(3)).to_string();
        // The registry as HQ publishes it: shards and manifest, retained.
        let registry = super::registry_messages(&super::registry(1), &hq_key());
        let (st, sp, cn) = (store.clone(), stop.clone(), connects.clone());
        std::thread::spawn(move || {
            let shelter_key = node_key().public();
            let ack = |client: &Client, through: u64| {
                let a = Ack {
                    shelter: ShelterId(3),
                    through_seq: through,
                    at_ms: 0,
                    rejected: None,
                };
                let payload = hq_key().sign(HQ_SIGNER, &a).unwrap().to_json().unwrap();
                let _ = client.try_publish(ack_topic.clone(), QoS::AtLeastOnce, true, payload);
            };
            for ev in conn.iter() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        cn.fetch_add(1, Ordering::SeqCst);
                        let _ = client.try_subscribe(events_topic.clone(), QoS::AtLeastOnce);
                        let _ = client.try_subscribe(state_topic.clone(), QoS::AtLeastOnce);
                        for (topic, payload) in &registry {
                            let _ = client.try_publish(
                                topic.clone(),
                                QoS::AtLeastOnce,
                                true,
                                payload.clone(),
                            );
                        }
                        let through = st.lock().unwrap().contiguous();
                        if through > 0 {
                            ack(&client, through);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic == state_topic => {
                        let state = Signed::<NodeState>::from_json(&p.payload)
                            .and_then(|s| s.open(&shelter_key))
                            .expect("state signature");
                        // As HQ does: a state of an earlier session (a late will of a
                        // connection that lingered) does not replace the current one.
                        let mut s = st.lock().unwrap();
                        if s.state
                            .as_ref()
                            .is_none_or(|old| state.session >= old.session)
                        {
                            s.state = Some(state);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic == events_topic => {
                        let batch: EventBatch = serde_json::from_slice(&p.payload).unwrap();
                        let mut s = st.lock().unwrap();
                        for e in &batch.events {
                            let e = e.open(&shelter_key).expect("event signature");
                            match s.events.entry(e.id.seq) {
                                std::collections::btree_map::Entry::Occupied(_) => {
                                    s.duplicates += 1
                                }
                                std::collections::btree_map::Entry::Vacant(v) => {
                                    v.insert(e);
                                }
                            }
                        }
                        let through = s.contiguous();
                        drop(s);
                        ack(&client, through);
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Consumer {
            store,
            connects,
            stop,
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
