//! Orders, CAP intake, officer commands, status and exports through a running `evac-hq` with
//! its embedded broker.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::collections::{BTreeSet, HashMap};

use evac_maps::LonLat;
use evac_protocol::{
    AlertLevel, CardRef, CommandAction, CommandReply, Hazard, MessageKind, OrderBatch,
    RegistryShard, ResidentId, ResidentStatus, Signed, StatusMessage,
};
use support::*;

fn batches(c: &Client, hq: &evac_protocol::PublicKey) -> Vec<OrderBatch> {
    c.seen
        .iter()
        .filter(|m| m.topic.ends_with("/orders"))
        .filter_map(|m| {
            Signed::<OrderBatch>::from_json(&m.payload)
                .ok()?
                .open(hq)
                .ok()
        })
        .collect()
}

fn inside(p: LonLat, lat0: f64, lat1: f64) -> bool {
    (lat0..lat1).contains(&p.lat) && (141.95..141.98).contains(&p.lon)
}

async fn drop_cap(d: &HqDir, name: &str, text: &str) {
    let tmp = d.path(&format!("cap/.{name}"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, d.path(&format!("cap/{name}"))).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_orders_exactly_the_area_update_moves_it_cancel_lifts() {
    let d = HqDir::new(1500);
    let hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    let mut c = Client::connect(d.port, "bc", "viewer", PASSWORD, &[topic("orders")]).await;
    c.connected(20).await;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cap");
    drop_cap(
        &d,
        "a.xml",
        &std::fs::read_to_string(format!("{data}/tsunami-alert.xml")).unwrap(),
    )
    .await;
    let first = c
        .wait_for(20, "the alert batch", |m| m.topic.ends_with("/orders"))
        .await;
    let alert = Signed::<OrderBatch>::from_json(&first.payload)
        .unwrap()
        .open(&d.hq_public)
        .unwrap();
    assert_eq!(
        (alert.kind, alert.hazard, alert.drill),
        (MessageKind::Alert, Hazard::Tsunami, true)
    );
    let expected: BTreeSet<u32> = d
        .town
        .households
        .iter()
        .filter(|h| inside(h.location, 39.63, 39.65))
        .map(|h| h.id)
        .collect();
    assert!(
        expected.len() > 20,
        "the polygon should hold a crowd: {}",
        expected.len()
    );
    // Wait for every chunk of the alert, then compare with the polygon.
    let all = settle(&mut c, 0, &d, |bs| {
        bs.iter().map(|b| b.orders.len()).sum::<usize>() >= expected.len()
    })
    .await;
    let got: BTreeSet<u32> = all
        .iter()
        .flat_map(|b| b.orders.iter().map(|o| o.household.0))
        .collect();
    assert_eq!(got, expected, "exactly the households inside the polygon");
    assert!(
        batches(&c, &d.hq_public)
            .iter()
            .flat_map(|b| &b.orders)
            .all(|o| o.level == AlertLevel::Level4)
    );
    wait_until(10, "a.xml moved to done/", || {
        d.path("cap/done/a.xml").exists()
    });

    // The update moves the area north and raises the level.
    drop_cap(
        &d,
        "u.xml",
        &std::fs::read_to_string(format!("{data}/tsunami-update.xml")).unwrap(),
    )
    .await;
    c.wait_for(20, "the cancel part of the update", |m| {
        Signed::<OrderBatch>::from_json(&m.payload)
            .ok()
            .and_then(|s| s.open(&d.hq_public).ok())
            .is_some_and(|b| b.kind == MessageKind::Cancel)
    })
    .await;
    let all = batches(&c, &d.hq_public);
    let kinds: Vec<_> = all
        .iter()
        .map(|b| (b.kind, b.message_id, b.orders.len()))
        .collect();
    let update = all
        .iter()
        .find(|b| b.kind == MessageKind::Update)
        .unwrap_or_else(|| panic!("{kinds:?}"));
    assert_eq!(update.references, Some(alert.message_id));
    let lifted: BTreeSet<u32> = all
        .iter()
        .filter(|b| b.kind == MessageKind::Cancel)
        .flat_map(|b| b.orders.iter().map(|o| o.household.0))
        .collect();
    let left: BTreeSet<u32> = d
        .town
        .households
        .iter()
        .filter(|h| inside(h.location, 39.63, 39.64) && !inside(h.location, 39.64, 39.66))
        .map(|h| h.id)
        .collect();
    assert_eq!(
        lifted, left,
        "the households left outside the new area are lifted"
    );
    let now_in: BTreeSet<u32> = all
        .iter()
        .filter(|b| b.kind == MessageKind::Update)
        .flat_map(|b| b.orders.iter().map(|o| o.household.0))
        .collect();
    let expect_in: BTreeSet<u32> = d
        .town
        .households
        .iter()
        .filter(|h| inside(h.location, 39.64, 39.66))
        .map(|h| h.id)
        .collect();
    assert_eq!(now_in, expect_in);
    for o in all
        .iter()
        .filter(|b| b.kind == MessageKind::Update)
        .flat_map(|b| &b.orders)
    {
        // The level changed, so households already ordered get version 2; newcomers version 1.
        let was_in = expected.contains(&o.household.0);
        assert_eq!(
            (o.level, o.version),
            (AlertLevel::Level5, if was_in { 2 } else { 1 }),
            "{o:?}"
        );
    }

    // The cancel lifts every order.
    let before = c.seen.len();
    drop_cap(
        &d,
        "c.xml",
        &std::fs::read_to_string(format!("{data}/tsunami-cancel.xml")).unwrap(),
    )
    .await;
    wait_until(10, "c.xml moved to done/", || {
        d.path("cap/done/c.xml").exists()
    });
    let cancelled = settle(&mut c, before, &d, |bs| {
        bs.iter()
            .filter(|b| b.kind == MessageKind::Cancel)
            .flat_map(|b| b.orders.iter().map(|o| o.household.0))
            .collect::<BTreeSet<u32>>()
            == expect_in
    })
    .await;
    assert!(cancelled.iter().all(|b| b.kind == MessageKind::Cancel));

    // Malformed files are refused with a line naming the element.
    let good = std::fs::read_to_string(format!("{data}/tsunami-alert.xml")).unwrap();
    drop_cap(
        &d,
        "bad.xml",
        &good
            .replace("JMA-TSUNAMI-0001", "X-2")
            .replace("39.630,141.950</polygon>", "39.6,141.9</polygon>"),
    )
    .await;
    wait_until(10, "bad.xml rejected", || {
        d.path("cap/rejected/bad.txt").exists()
    });
    let why = std::fs::read_to_string(d.path("cap/rejected/bad.txt")).unwrap();
    assert!(
        why.contains("<alert/info/area/polygon>") && why.contains("bad.xml:"),
        "{why}"
    );
    assert!(hq.log().contains("CAP file rejected"));
}

/// Order batches received from message `from` on, once `done` holds of them (20 s at most).
async fn settle(
    c: &mut Client,
    from: usize,
    d: &HqDir,
    mut done: impl FnMut(&[OrderBatch]) -> bool,
) -> Vec<OrderBatch> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        c.drain();
        let bs: Vec<OrderBatch> = c.seen[from.min(c.seen.len())..]
            .iter()
            .filter(|m| m.topic.ends_with("/orders"))
            .filter_map(|m| {
                Signed::<OrderBatch>::from_json(&m.payload)
                    .ok()?
                    .open(&d.hq_public)
                    .ok()
            })
            .collect();
        if done(&bs) {
            return bs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "orders did not settle: {:?}",
            bs.iter()
                .map(|b| (b.kind, b.message_id, b.orders.len()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_commands_shelter_closure_status_and_exports() {
    let d = HqDir::new(800);
    let _hq = Proc::start(&d, "run", &d.path("hq.toml"), true);
    let mut officer = Client::connect(
        d.port,
        "tanaka",
        "officer-tanaka",
        PASSWORD,
        &[
            topic("orders"),
            topic("cmd/tanaka/reply"),
            topic("status"),
            topic("registry/#"),
        ],
    )
    .await;
    officer
        .wait_for(20, "HQ's retained registry manifest (HQ is up)", |m| {
            m.topic.ends_with("/registry/manifest")
        })
        .await;
    let reply_ok = |m: &Msg, id: u64| {
        Signed::<CommandReply>::from_json(&m.payload)
            .ok()
            .and_then(|s| s.open(&d.hq_public).ok())
            .filter(|r| r.command_id == id)
    };
    let send = |id: u64, action: CommandAction| command(&d.officer_key, "tanaka", id, action);

    // Issue an order for zone 1 (tsunami).
    officer
        .publish(
            &topic("cmd/tanaka"),
            send(
                1,
                CommandAction::IssueOrder {
                    hazard: Hazard::Tsunami,
                    level: AlertLevel::Level4,
                    zones: vec![1],
                    expires: 4_000_000_000,
                },
            ),
        )
        .await;
    let r = officer
        .wait_for(20, "reply 1", |m| reply_ok(m, 1).is_some())
        .await;
    let r = reply_ok(&r, 1).unwrap();
    assert!(r.ok, "{r:?}");
    officer
        .wait_for(20, "orders", |m| m.topic.ends_with("/orders"))
        .await;
    let first: HashMap<u32, (u32, u32)> = batches(&officer, &d.hq_public)
        .iter()
        .flat_map(|b| &b.orders)
        .map(|o| (o.household.0, (o.shelter.0, o.version)))
        .collect();
    assert!(!first.is_empty());

    // The busiest shelter: some of its households arrive (through a shelter node's events),
    // then officers close it.
    let mut per: HashMap<u32, Vec<u32>> = HashMap::new();
    for (h, (s, _)) in &first {
        per.entry(*s).or_default().push(*h);
    }
    let (&closed, sent) = per.iter().max_by_key(|(_, v)| v.len()).unwrap();
    let mut sent = sent.clone();
    sent.sort();
    let arrived: Vec<u32> = sent.iter().take(sent.len() / 2).copied().collect();
    let (sid, skey) = (
        d.shelter_keys[0].0,
        evac_protocol::SecretKey::from_seed(&[10; 32]),
    );
    let events: Vec<_> = arrived
        .iter()
        .enumerate()
        .map(|(i, h)| {
            check_in(
                sid,
                i as u64 + 1,
                d.town.household(*h).unwrap().members[0].resident,
                1_795_000_000_000 + i as u64,
            )
        })
        .collect();
    let mut shelter = Client::connect(
        d.port,
        "s",
        &format!("shelter-{sid}"),
        PASSWORD,
        &[topic(&format!("shelter/{sid}/ack"))],
    )
    .await;
    shelter.connected(20).await;
    shelter
        .publish(
            &topic(&format!("shelter/{sid}/events")),
            batch(&skey, sid, sid, &events),
        )
        .await;
    let n = events.len() as u64;
    shelter
        .wait_for(20, "the ack", |m| {
            ack_through(m, &d.hq_public) == Some((sid, n))
        })
        .await;
    // The status feed shows them arrived (HQ takes arrivals in on its tick).
    let resident0 = d.town.household(arrived[0]).unwrap().members[0].resident;
    officer
        .wait_for(20, "a status message with the arrival", |m| {
            let Some(msg) = Signed::<StatusMessage>::from_json(&m.payload)
                .ok()
                .and_then(|s| s.open(&d.hq_public).ok())
            else {
                return false;
            };
            match msg {
                StatusMessage::Delta(dl) => dl.residents.iter().any(|c| {
                    c.resident == ResidentId(resident0)
                        && c.status
                            == ResidentStatus::Arrived {
                                shelter: sid,
                                unverified: false,
                            }
                }),
                StatusMessage::Snapshot(s) => s.residents.unpack().unwrap().contains(&(
                    ResidentId(resident0),
                    ResidentStatus::Arrived {
                        shelter: sid,
                        unverified: false,
                    },
                )),
            }
        })
        .await;
    // The tick that published the arrival had marked it in the order book first.
    let before = officer.seen.len();
    officer
        .publish(
            &topic("cmd/tanaka"),
            send(
                2,
                CommandAction::CloseShelter {
                    shelter: evac_protocol::ShelterId(closed),
                },
            ),
        )
        .await;
    let r = officer
        .wait_for(20, "reply 2", |m| reply_ok(m, 2).is_some())
        .await;
    assert!(reply_ok(&r, 2).unwrap().ok);
    let expect_moved: BTreeSet<u32> = sent
        .iter()
        .filter(|h| !arrived.contains(h))
        .copied()
        .collect();
    let bs = settle(&mut officer, before, &d, |bs| {
        bs.iter().map(|b| b.orders.len()).sum::<usize>() >= expect_moved.len()
    })
    .await;
    let moved: HashMap<u32, (u32, u32)> = bs
        .iter()
        .flat_map(|b| &b.orders)
        .map(|o| (o.household.0, (o.shelter.0, o.version)))
        .collect();
    let moved_ids: BTreeSet<u32> = moved.keys().copied().collect();
    assert_eq!(
        moved_ids, expect_moved,
        "only the closed shelter's households not yet arrived are re-routed"
    );
    for (h, (s, v)) in &moved {
        assert_ne!(*s, closed);
        assert_eq!(*v, first[h].1 + 1, "household {h}");
    }

    // Mark a resident found; link a visitor's card.
    let someone = d
        .town
        .households
        .iter()
        .find(|h| !first.contains_key(&h.id))
        .unwrap()
        .members[0]
        .resident;
    officer
        .publish(
            &topic("cmd/tanaka"),
            send(
                3,
                CommandAction::MarkFound {
                    resident: ResidentId(someone),
                    note: "at her daughter's, safe".into(),
                },
            ),
        )
        .await;
    assert!(
        reply_ok(
            &officer
                .wait_for(20, "reply 3", |m| reply_ok(m, 3).is_some())
                .await,
            3
        )
        .unwrap()
        .ok
    );
    let card = CardRef {
        issuer_key_id: vec![0xab; 20],
        serial: vec![1, 2, 3],
    };
    officer
        .publish(
            &topic("cmd/tanaka"),
            send(
                4,
                CommandAction::LinkCard {
                    card: card.clone(),
                    resident: ResidentId(someone),
                },
            ),
        )
        .await;
    assert!(
        reply_ok(
            &officer
                .wait_for(20, "reply 4", |m| reply_ok(m, 4).is_some())
                .await,
            4
        )
        .unwrap()
        .ok
    );
    // The registry names the card by its digest under the town's card key, never by serial.
    let digests = evac_protocol::CardDigestKey::derive(
        &evac_protocol::SecretKey::read(&d.path("hq.key")).unwrap(),
    );
    let digest = digests.digest(&card);
    let shard = |m: &Msg| {
        if !m.topic.contains("/registry/shard/") {
            return None;
        }
        evac_protocol::packed::unpack(&m.payload, 1 << 20)
            .ok()
            .and_then(|json| Signed::<RegistryShard>::from_json(&json).ok())
            .and_then(|s| s.open(&d.hq_public).ok())
    };
    let reg = officer
        .wait_for(20, "the registry's shard with the card linked", |m| {
            shard(m).is_some_and(|s| {
                s.households
                    .iter()
                    .flat_map(|h| &h.residents)
                    .any(|r| r.card_digests.contains(&digest))
            })
        })
        .await;
    // HQ publishes the registry's shards gzip-compressed, within 1 MiB.
    assert!(reg.payload.starts_with(&[0x1f, 0x8b]));
    assert!(reg.payload.len() <= evac_protocol::MAX_MESSAGE);
    let json = evac_protocol::packed::unpack(&reg.payload, 1 << 20).unwrap();
    let text = String::from_utf8_lossy(&json);
    assert!(
        !text.contains("serial") && !text.contains("issuer_key_id"),
        "a card reference in the registry"
    );
    let reg = shard(&reg).unwrap();
    assert!(
        reg.households
            .iter()
            .flat_map(|h| &h.residents)
            .any(|r| r.id == ResidentId(someone) && r.card_digests.contains(&digest))
    );
    // A command number used again for another command is refused, said so, not carried out
    // (issue 18 item 3: it was answered with the first command's outcome).
    officer
        .publish(
            &topic("cmd/tanaka"),
            send(
                3,
                CommandAction::MarkFound {
                    resident: ResidentId(1),
                    note: "x".into(),
                },
            ),
        )
        .await;
    let again = reply_ok(
        &officer
            .wait_for(20, "reply 3, refused", |m| {
                reply_ok(m, 3).is_some_and(|r| !r.ok)
            })
            .await,
        3,
    )
    .unwrap();
    assert!(again.message.contains("used already"), "{}", again.message);
    officer
        .wait_for(20, "resident found in status", |m| {
            let Some(StatusMessage::Delta(dl)) = Signed::<StatusMessage>::from_json(&m.payload)
                .ok()
                .and_then(|s| s.open(&d.hq_public).ok())
            else {
                return false;
            };
            dl.residents
                .iter()
                .any(|c| c.resident == ResidentId(someone) && c.status == ResidentStatus::Found)
        })
        .await;

    // Exports.
    let export = |flag: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_evac-hq"))
            .args(["export", "--data"])
            .arg(d.path("data"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = export("--csv");
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("{resident0},")) && l.contains(",arrived,")),
        "{}",
        &csv[..300]
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("{someone},")) && l.contains(",found,"))
    );
    let pfif = export("--pfif");
    assert!(pfif.contains("<pfif:pfif xmlns:pfif=\"http://zesty.ca/pfif/1.4\">"));
    let shelter_name = &d.town.shelter(sid.0).unwrap().name;
    assert!(pfif.contains(&format!("person.{resident0}</pfif:person_record_id>")));
    assert!(pfif.contains(&format!(
        "<pfif:last_known_location>{shelter_name}</pfif:last_known_location>"
    )));
    assert!(pfif.contains("<pfif:status>believed_alive</pfif:status>"));
    assert!(
        pfif.contains("at her daughter&apos;s, safe") || pfif.contains("at her daughter's, safe")
    );
    // Valid by the PFIF 1.4 specification's own schema (RELAX NG, through xmllint).
    let file = d.path("export.pfif.xml");
    std::fs::write(&file, &pfif).unwrap();
    let check = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pfif/validate.sh"
    ))
    .arg(&file)
    .output()
    .expect("rnc2rng and xmllint are installed (deploy/packages.sh test)");
    assert!(
        check.status.success(),
        "{}\n{pfif}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = export("--log");
    let kinds: Vec<&str> = log
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert!(
        kinds.contains(&"order") && kinds.contains(&"event") && kinds.contains(&"command"),
        "{log}"
    );
    let times: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "the log is in time order"
    );
}
