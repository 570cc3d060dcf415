//! The embedded broker with TLS: a shelter connects over TLS (checking the broker's
//! certificate) and its events reach HQ, which uses its own plain loopback listener.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::process::Command;
use std::time::Duration;

use evac_protocol::SecretKey;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS, Transport};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shelter_reaches_hq_over_tls() {
    let d = HqDir::new(100);
    // A test CA and a server certificate for 127.0.0.1 / localhost (openssl from Debian).
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(d.path(""))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=evac test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        d.path("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "tls.crt",
    ]);
    let cfg = d.write_config(
        "tls.toml",
        &format!(
            "mode = \"embedded\"\nlisten = \"127.0.0.1:{}\"\npasswords = \"passwords\"\n[broker.tls]\ncert = \"tls.crt\"\nkey = \"tls.key\"",
            d.port
        ),
    );
    let hq = Proc::start(&d, "run", &cfg, true);

    let (sid, key) = (d.shelter_keys[0].0, SecretKey::from_seed(&[10; 32]));
    let mut o = MqttOptions::new("tls-shelter", "localhost", d.port);
    o.set_credentials(format!("shelter-{sid}"), PASSWORD);
    o.set_transport(Transport::tls(
        std::fs::read(d.path("ca.crt")).unwrap(),
        None,
        None,
    ));
    let (client, mut el) = AsyncClient::new(o, 10);
    let ack_topic = topic(&format!("shelter/{sid}/ack"));
    let events = batch(
        &key,
        sid,
        sid,
        &[
            check_in(sid, 1, 3, 1_795_000_000_000),
            check_in(sid, 2, 4, 1_795_000_000_001),
        ],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last_err = String::new();
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ack over TLS; last error {last_err}\n{}",
            hq.log()
        );
        match tokio::time::timeout(Duration::from_secs(5), el.poll()).await {
            Ok(Ok(Event::Incoming(Incoming::ConnAck(_)))) => {
                client
                    .subscribe(&ack_topic, QoS::AtLeastOnce)
                    .await
                    .unwrap();
            }
            Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                let m = Msg {
                    topic: p.topic.clone(),
                    payload: p.payload.to_vec(),
                    retain: p.retain,
                };
                match ack_through(&m, &d.hq_public) {
                    Some((_, 2)) => break,
                    // HQ's first ack (through 0) says it is listening: send now.
                    Some(_) => client
                        .publish(
                            topic(&format!("shelter/{sid}/events")),
                            QoS::AtLeastOnce,
                            false,
                            events.clone(),
                        )
                        .await
                        .unwrap(),
                    None => {}
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                last_err = e.to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => {}
        }
    }
    assert_eq!(d.stored_events(sid), vec![1, 2]);

    // A plain-TCP client is not served on the TLS port.
    let mut plain =
        Client::connect(d.port, "plain", &format!("shelter-{sid}"), PASSWORD, &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    plain.drain();
    assert_eq!(*plain.connects.borrow(), 0);
}
