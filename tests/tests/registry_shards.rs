//! Issue 22 item 1, end to end: the registry in shards between the real `evac-hq` (embedded
//! broker) and real `evac-shelter` nodes. An officer links 10,000 cards over MQTT (10,000
//! registry changes, one delta each). A shelter connected from the start follows the deltas,
//! misses those made while its link is cut, and catches up from the manifest once the link is
//! back; a shelter that joins after all 10,000 reads the shards the manifest names. Both reach
//! the registry digest computed here from the town file and the links made (with the
//! protocol's own functions), which is HQ's registry.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use evac_maps::{GenerateParams, Town, generate};
use evac_protocol::messages::shards::{registry_digest, shard_count, shard_of};
use evac_protocol::{
    CardDigestKey, CardRef, CommandAction, CommandReply, OfficerCommand, RegistryHousehold,
    RegistryResident, ResidentId, SecretKey, ShardSum, Signed,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::town::{HqConfig, card_key, hq_key, officer_key, passwords, shelter_key};
use support::*;

const PW: &str = "pw";
const LINKS: u32 = 10_000;

fn card(i: u32) -> CardRef {
    CardRef {
        issuer_key_id: vec![0xab; 20],
        serial: i.to_be_bytes().to_vec(),
    }
}

/// The registry's digest with the first `links` links made: the town's households with their
/// cards, then each link's card on its resident, in the order made.
fn expected_digest(town: &Town, hq: &SecretKey, residents: &[u32], links: u32) -> String {
    let cards = CardDigestKey::derive(hq);
    let mut linked: std::collections::HashMap<u32, Vec<_>> = Default::default();
    for i in 0..links {
        linked
            .entry(residents[i as usize % residents.len()])
            .or_default()
            .push(cards.digest(&card(i)));
    }
    let shards = shard_count(town.households.len());
    let mut sums = vec![ShardSum::default(); usize::from(shards)];
    for h in &town.households {
        let house = RegistryHousehold {
            id: evac_protocol::HouseholdId(h.id),
            residents: h
                .members
                .iter()
                .map(|m| RegistryResident {
                    id: ResidentId(m.resident),
                    name: m.name.clone(),
                    needs_help: m.needs_help,
                    card_digests: m
                        .cards
                        .iter()
                        .map(|c| {
                            cards.digest(&CardRef {
                                issuer_key_id: c.issuer_key_id.clone(),
                                serial: c.serial.clone(),
                            })
                        })
                        .chain(linked.get(&m.resident).into_iter().flatten().copied())
                        .collect(),
                })
                .collect(),
        };
        sums[usize::from(shard_of(house.id, shards))]
            .add(&evac_protocol::messages::shards::household_hash(&house));
    }
    let digests: Vec<_> = (0..shards)
        .map(|n| sums[usize::from(n)].digest(n, shards))
        .collect();
    registry_digest(&"minato".parse().unwrap(), &cards.check_value(), &digests)
}

/// Officer tanaka links cards `from..to` (card `i` to resident `residents[i % len]`) and waits
/// until HQ has answered every one with success.
async fn link(port: u16, d: &Path, residents: &[u32], from: u32, to: u32) {
    let key = SecretKey::read(&d.join("officer-tanaka.key")).unwrap();
    let officer: evac_protocol::OfficerId = "tanaka".parse().unwrap();
    let mut opts = MqttOptions::new(format!("links-{from}"), "127.0.0.1", port);
    opts.set_credentials("officer-tanaka", PW)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(opts, 256);
    client
        .subscribe("evac/v1/minato/cmd/tanaka/reply", QoS::AtLeastOnce)
        .await
        .unwrap();
    let sender = client.clone();
    let residents = residents.to_vec();
    let sending = tokio::spawn(async move {
        for i in from..to {
            let cmd = OfficerCommand {
                officer: officer.clone(),
                town: "minato".parse().unwrap(),
                id: u64::from(i) + 1,
                at_ms: evac_protocol::time::now_ms(),
                action: CommandAction::LinkCard {
                    card: card(i),
                    resident: ResidentId(residents[i as usize % residents.len()]),
                },
                reason: "registration desk".into(),
            };
            let body = key
                .sign(&evac_protocol::officer_signer(&officer), &cmd)
                .unwrap()
                .to_json()
                .unwrap();
            sender
                .publish("evac/v1/minato/cmd/tanaka", QoS::AtLeastOnce, false, body)
                .await
                .unwrap();
        }
    });
    let mut answered = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while answered.len() < (to - from) as usize {
        let ev = tokio::time::timeout_at(deadline, events.poll())
            .await
            .expect("HQ answered every link in time");
        if let Ok(Event::Incoming(Packet::Publish(p))) = ev {
            let r: CommandReply = Signed::from_json(&p.payload)
                .unwrap()
                .body_unverified()
                .unwrap();
            assert!(r.ok, "link {}: {}", r.command_id, r.message);
            answered.insert(r.command_id);
        }
    }
    sending.await.unwrap();
    let _ = client.disconnect().await;
}

fn shelter(d: &Path, s: u32, port: u16) -> Proc {
    support::town::shelter(d, s, port, PW, "", "")
}

/// Waits for the node to say its shards are in step with `digest`.
fn wait_digest(node: &mut Proc, secs: u64, what: &str, digest: &str) {
    node.wait_line(secs, what, |l| {
        l.contains("\"result\":\"registry-shards\"") && l.contains(digest)
    });
}

#[test]
fn shelters_reach_hqs_registry_after_ten_thousand_changes_and_a_cut_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let town = generate(&GenerateParams {
        households: 2_500,
        shelters: 12,
        seed: 9,
    });
    assert_eq!(shard_count(town.households.len()), 4);
    town.save(d.join("town.geojson")).unwrap();
    std::fs::create_dir_all(d.join("cap")).unwrap();
    hq_key(d);
    card_key(d);
    officer_key(d, "tanaka");
    let shelters: Vec<u32> = town.shelters.iter().take(2).map(|s| s.id).collect();
    for s in &shelters {
        shelter_key(d, *s);
    }
    let users = shelters.iter().map(|s| format!("shelter-{s}"));
    passwords(d, users.chain(["officer-tanaka".to_owned()]), PW);
    let port = free_port();
    std::fs::write(d.join("hq.toml"), HqConfig::for_shelters().embedded(port)).unwrap();
    let hq_secret = SecretKey::read(&d.join("hq.key")).unwrap();
    let residents: Vec<u32> = town
        .households
        .iter()
        .flat_map(|h| &h.members)
        .map(|m| m.resident)
        .collect();

    let mut hq = Proc::spawn(
        "hq",
        Command::new(bin("evac-hq"))
            .current_dir(d)
            .args(["run", "--config"])
            .arg(d.join("hq.toml")),
    );
    hq.wait_line(30, "the embedded broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    let proxy = Proxy::start(([127, 0, 0, 1], port).into());
    let mut early = shelter(d, shelters[0], proxy.port);
    wait_digest(
        &mut early,
        60,
        "the registry before any link",
        &expected_digest(&town, &hq_secret, &residents, 0),
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(link(port, d, &residents, 0, LINKS / 2));
    wait_digest(
        &mut early,
        120,
        "the registry by deltas",
        &expected_digest(&town, &hq_secret, &residents, LINKS / 2),
    );
    // Deltas made while the link is cut are lost to the shelter; the manifest it reads on
    // reconnecting names the shards behind.
    proxy.cut();
    rt.block_on(link(port, d, &residents, LINKS / 2, LINKS));
    proxy.restore();
    let full = expected_digest(&town, &hq_secret, &residents, LINKS);
    wait_digest(&mut early, 120, "the registry after the cut", &full);

    // A shelter that joins after 10,000 changes.
    let mut late = shelter(d, shelters[1], port);
    wait_digest(&mut late, 120, "the registry, read shard by shard", &full);
    hq.kill();
}
