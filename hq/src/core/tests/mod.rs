use std::sync::Arc;

use evac_maps::{GenerateParams, generate};
use evac_protocol::{
    Ack, CheckEvent, EventBatch, EventKind, NodeState, PublicKey, ResidentId, SecretKey, ShelterId,
    Signed, shelter_signer,
};

use super::*;

fn setup() -> (Hq, SecretKey, PublicKey, ShelterId, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let town = generate(&GenerateParams {
        households: 100,
        shelters: 4,
        seed: 2,
    });
    let shelter = ShelterId(town.shelters[0].id);
    let node = SecretKey::from_seed(&[1; 32]);
    let mut keys = KeyRing::default();
    keys.add_shelter(shelter, node.public());
    let hq_key = SecretKey::from_seed(&[2; 32]);
    let hq_pub = hq_key.public();
    let store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
    let hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        store,
        keys,
        hq_key,
        60_000,
        1_000_000,
    )
    .unwrap();
    (hq, node, hq_pub, shelter, dir)
}

/// HQ opened again on the store of [`setup`]'s `dir` (the same town and HQ key): a restart.
fn reopen(dir: &tempfile::TempDir, keys: KeyRing, now_ms: u64) -> Hq {
    Hq::open(
        "minato".parse().unwrap(),
        Arc::new(generate(&GenerateParams {
            households: 100,
            shelters: 4,
            seed: 2,
        })),
        Store::open(&dir.path().join("hq.sqlite")).unwrap(),
        keys,
        SecretKey::from_seed(&[2; 32]),
        60_000,
        now_ms,
    )
    .unwrap()
}

fn ev(shelter: ShelterId, seq: u64, wall_ms: u64) -> CheckEvent {
    CheckEvent {
        resident: Some(ResidentId(seq as u32)),
        ..CheckEvent::new(shelter, seq, wall_ms, EventKind::CheckIn)
    }
}

fn send(hq: &mut Hq, key: &SecretKey, shelter: ShelterId, seqs: &[u64], now: u64) -> u64 {
    let events = seqs
        .iter()
        .map(|s| {
            key.sign(&shelter_signer(shelter), &ev(shelter, *s, 900_000 + s))
                .unwrap()
        })
        .collect();
    let payload = serde_json::to_vec(&EventBatch::new(shelter, events)).unwrap();
    let out = hq.on_events(shelter, &payload, now).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].retain);
    let ack: Ack = Signed::<Ack>::from_json(&out[0].payload)
        .unwrap()
        .body_unverified()
        .unwrap();
    ack.through_seq
}

#[test]
fn acks_cover_only_contiguous_events_and_lag_is_measured() {
    let (mut hq, node, _, s, _dir) = setup();
    assert_eq!(
        send(&mut hq, &node, s, &[1, 2, 4], 1_000_000),
        2,
        "4 waits for 3"
    );
    assert_eq!(hq.store().progress(s).missing(), 1);
    assert_eq!(send(&mut hq, &node, s, &[3], 1_000_500), 4);
    assert_eq!(
        send(&mut hq, &node, s, &[1, 2, 3, 4], 1_000_600),
        4,
        "a resend changes nothing"
    );
    assert_eq!(hq.store().event_count().unwrap(), 4);
}

/// Issue 18 item 10: the replication lag is measured on HQ's clock only, from the node's
/// state naming events HQ lacks to HQ storing them; the events' HLC stamps (here from a
/// shelter clock 100 s behind HQ's) play no part.
#[test]
fn lag_is_how_long_hq_lacked_events_the_node_had_on_hqs_clock() {
    let (mut hq, node, _, s, _dir) = setup();
    let state = |seq, acked_through, pending| {
        let st = NodeState {
            shelter: s,
            online: true,
            session: 1,
            seq,
            present: 0,
            pending,
            acked_through,
            at_ms: 0,
        };
        node.sign(&shelter_signer(s), &st)
            .unwrap()
            .to_json()
            .unwrap()
            .into_bytes()
    };
    assert_eq!(send(&mut hq, &node, s, &[1, 2], 1_000_000), 2);
    assert_eq!(hq.board().nodes()[&s].lag_ms, Some(0), "nothing lacking");
    // The node says it recorded 4; HQ has 2: behind from now.
    hq.on_state(s, &state(1, 2, 2), 1_000_100);
    assert_eq!(hq.board().nodes()[&s].lag_ms, Some(0));
    assert_eq!(send(&mut hq, &node, s, &[4], 1_000_300), 2, "4 waits for 3");
    assert_eq!(hq.board().nodes()[&s].lag_ms, Some(200), "still behind");
    assert_eq!(send(&mut hq, &node, s, &[3], 1_000_500), 4);
    assert_eq!(
        hq.board().nodes()[&s].lag_ms,
        Some(400),
        "caught up after 400 ms"
    );
    hq.on_state(s, &state(2, 4, 0), 1_000_600);
    assert_eq!(hq.board().nodes()[&s].lag_ms, Some(0));
}

#[test]
fn node_state_and_stale_wills() {
    let (mut hq, node, _, s, _dir) = setup();
    let state = |session, seq, online, pending| {
        let st = NodeState {
            shelter: s,
            online,
            session,
            seq,
            present: 0,
            pending,
            acked_through: 0,
            at_ms: 0,
        };
        node.sign(&shelter_signer(s), &st)
            .unwrap()
            .to_json()
            .unwrap()
            .into_bytes()
    };
    hq.on_state(s, &state(2, 1, true, 3), 1);
    let p = hq.current_picture(1);
    let st = p.shelters.iter().find(|x| x.shelter == s).unwrap();
    assert!(st.online);
    assert_eq!(st.pending, 3);
    hq.on_state(s, &state(1, 9, false, 0), 2); // the will of an older session
    assert!(
        hq.board().nodes()[&s].online,
        "a stale will took the node offline"
    );
    hq.on_state(s, &state(2, 4, true, 0), 3);
    assert_eq!(hq.board().nodes()[&s].state_gaps, 2);
    hq.on_state(s, &state(2, 4, false, 0), 4); // this session's will
    assert!(!hq.board().nodes()[&s].online);
    // Signed by another key: refused and counted.
    let forged = SecretKey::from_seed(&[9; 32]);
    let st = NodeState {
        shelter: s,
        online: true,
        session: 3,
        seq: 0,
        present: 0,
        pending: 0,
        acked_through: 0,
        at_ms: 0,
    };
    hq.on_state(
        s,
        forged
            .sign(&shelter_signer(s), &st)
            .unwrap()
            .to_json()
            .unwrap()
            .as_bytes(),
        5,
    );
    assert!(!hq.board().nodes()[&s].online);
    assert_eq!(hq.rejected(), 1);
}

#[test]
fn restart_replays_the_store() {
    let (mut hq, node, _, s, dir) = setup();
    send(&mut hq, &node, s, &[1, 2], 1_000_000);
    let picture = hq.current_picture(1_000_000);
    let town = generate(&GenerateParams {
        households: 100,
        shelters: 4,
        seed: 2,
    });
    let mut keys = KeyRing::default();
    keys.add_shelter(s, node.public());
    drop(hq);
    let store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
    let hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        store,
        keys,
        SecretKey::from_seed(&[2; 32]),
        60_000,
        1_000_000,
    )
    .unwrap();
    assert_eq!(hq.current_picture(1_000_000).statuses, picture.statuses);
    assert_eq!(hq.store().progress(s).through, 2);
}

#[test]
fn lifting_orders_publishes_shelter_0_households_moved_to_the_freed_room() {
    use crate::notice::{Area, Circle, Notice};
    use evac_protocol::{AlertLevel, Hazard, OrderBatch};

    let dir = tempfile::tempdir().unwrap();
    let mut town = generate(&GenerateParams {
        households: 400,
        shelters: 6,
        seed: 2,
    });
    // One small tsunami shelter open, so that two notices compete for its room.
    let open = town
        .shelters
        .iter()
        .position(|s| s.suits(evac_maps::Hazard::Tsunami))
        .unwrap();
    for (i, s) in town.shelters.iter_mut().enumerate() {
        s.open = i == open;
        s.capacity = 30;
    }
    let sid = town.shelters[open].id;
    let everyone = town.households.iter().map(|h| h.location);
    let (lon, lat) = everyone.fold((0.0, 0.0), |(a, b), l| (a + l.lon, b + l.lat));
    let n = town.households.len() as f64;
    let (lon, lat) = (lon / n, lat / n);
    // Metres from the centre (equirectangular, good enough across a town).
    let metres = |l: evac_maps::LonLat| {
        let x = (l.lon - lon).to_radians() * lat.to_radians().cos();
        let y = (l.lat - lat).to_radians();
        6_371_000.0 * x.hypot(y)
    };
    let far = town
        .households
        .iter()
        .map(|h| h.location)
        .max_by(|a, b| metres(*a).total_cmp(&metres(*b)))
        .unwrap();
    let reach = metres(far);
    let store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
    let mut hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        store,
        KeyRing::default(),
        SecretKey::from_seed(&[2; 32]),
        60_000,
        1_000_000,
    )
    .unwrap();
    let notice = |(lon, lat): (f64, f64), radius_m: f64| Notice {
        name: "t".into(),
        hazard: Hazard::Tsunami,
        level: AlertLevel::Level4,
        area: Area {
            circles: vec![Circle { lon, lat, radius_m }],
            ..Area::default()
        },
        issued: 1_000,
        expires: 100_000,
        onset: None,
        effective: None,
        drill: false,
        source: "test".into(),
        cap: None,
    };
    let batches = |msgs: &[Publication]| -> Vec<OrderBatch> {
        msgs.iter()
            .filter(|m| m.topic.ends_with("/orders"))
            .map(|m| {
                Signed::<OrderBatch>::from_json(&m.payload)
                    .unwrap()
                    .body_unverified()
                    .unwrap()
            })
            .collect()
    };
    // A small notice at the town's edge takes room in the shelter; a wide one around the
    // centre (not reaching the first's area) issued after it overflows.
    let (small, _) = hq
        .issue(notice((far.lon, far.lat), 150.0), None, 1_000_000)
        .unwrap();
    assert!(small.orders > 0 && small.unassigned == 0, "{small:?}");
    let (wide, msgs) = hq
        .issue(notice((lon, lat), reach - 400.0), None, 1_000_000)
        .unwrap();
    assert!(wide.unassigned > 0, "the test needs an overflow: {wide:?}");
    let waiting: Vec<u32> = batches(&msgs)
        .iter()
        .flat_map(|b| &b.orders)
        .filter(|o| o.shelter == ShelterId::NONE)
        .map(|o| o.household.0)
        .collect();

    let (_, msgs) = hq.lift(small.message_id.unwrap(), 1_000_000).unwrap();
    let moved: Vec<_> = batches(&msgs)
        .into_iter()
        .filter(|b| b.kind == evac_protocol::MessageKind::Update)
        .flat_map(|b| b.orders)
        .collect();
    assert!(!moved.is_empty(), "the freed room is used");
    for o in &moved {
        assert!(waiting.contains(&o.household.0), "{o:?}");
        assert_eq!((o.shelter, o.version), (ShelterId(sid), 2));
    }
    // Persisted: the store holds the new orders.
    let rows = hq.store().orders().unwrap();
    for o in &moved {
        let r = rows.iter().find(|r| r.household == o.household.0).unwrap();
        assert_eq!((r.active.as_ref().unwrap().0, r.version), (sid, 2));
    }
}

/// The attack of one batch of 5,000 events with a wrong signer: counted, a sample stored in one
/// transaction by the tick, nothing stored on the event path.
#[test]
fn a_flood_of_rejections_is_counted_and_sampled_off_the_event_path() {
    let (mut hq, node, _, s, _dir) = setup();
    let events: Vec<_> = (1..=5_000)
        .map(|seq| {
            let mut env = node.sign(&shelter_signer(s), &ev(s, seq, 900_000)).unwrap();
            env.signer = format!(
                "shelter:{}{}",
                s.0 + 1,
                "x".repeat(if seq <= 50 { 1 << 20 } else { 0 })
            );
            env
        })
        .collect();
    let payload = serde_json::to_vec(&EventBatch::new(s, events)).unwrap();
    // One answer, saying why in a few hundred bytes (issue 13, item 9), nothing stored.
    let out = hq.on_events(s, &payload, 1_000_000).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].payload.len() < 1_000, "{}", out[0].payload.len());
    assert_eq!(hq.rejected(), 5_000);
    assert!(
        hq.store().rejections().unwrap().is_empty(),
        "nothing written on the event path"
    );
    hq.tick(1_000_100, false).unwrap();
    let rows = hq.store().rejections().unwrap();
    assert_eq!(rows.len(), crate::rejections::PER_MESSAGE);
    assert!(
        rows.iter().all(|(_, _, r)| r.len() < 500),
        "{:?}",
        rows[0].2.len()
    );
    assert!(rows[4].2.contains("4995 more"), "{}", rows[4].2);
    // The store stays small: no megabyte signers in it.
    let size = std::fs::metadata(hq.store().path()).unwrap().len()
        + std::fs::metadata(hq.store().path().with_extension("sqlite-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(size < 2 << 20, "store grew to {size} bytes");
    // A good event afterwards is stored and acked at once.
    assert_eq!(send(&mut hq, &node, s, &[1], 1_000_200), 1);
}

/// Regression (issue 13, item 8): a household checked in at a tsunami shelter near home was
/// ordered by the next CAP to another shelter farther away. People already at an open
/// shelter suitable for the hazard stay there.
#[test]
fn a_household_already_safe_at_a_suitable_shelter_stays_there() {
    use crate::notice::{Area, Circle, Notice};
    use evac_protocol::{AlertLevel, Hazard};

    let dir = tempfile::tempdir().unwrap();
    let mut town = generate(&GenerateParams {
        households: 200,
        shelters: 8,
        seed: 5,
    });
    for s in town.shelters.iter_mut() {
        s.open = true;
        s.capacity = 10_000;
    }
    let suitable: Vec<u32> = town
        .shelters
        .iter()
        .filter(|s| s.suits(evac_maps::Hazard::Tsunami))
        .map(|s| s.id)
        .collect();
    assert!(suitable.len() >= 2, "the test needs two tsunami shelters");
    let hh = town.households[17].clone();
    let node = SecretKey::from_seed(&[7; 32]);
    let mut keys = KeyRing::default();
    for id in &suitable {
        keys.add_shelter(ShelterId(*id), node.public());
    }
    let store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
    let mut hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        store,
        keys,
        SecretKey::from_seed(&[2; 32]),
        60_000,
        1_000_000,
    )
    .unwrap();
    let notice = || Notice {
        name: "t".into(),
        hazard: Hazard::Tsunami,
        level: AlertLevel::Level4,
        area: Area {
            circles: vec![Circle {
                lon: hh.location.lon,
                lat: hh.location.lat,
                radius_m: 300.0,
            }],
            ..Area::default()
        },
        issued: 1_000,
        expires: 100_000,
        onset: None,
        effective: None,
        drill: false,
        source: "test".into(),
        cap: None,
    };
    let h = hq.book().town().hh_index[&hh.id] as usize;
    let shelter_of = |hq: &Hq| {
        let a = hq.book().assignment(h).unwrap();
        ShelterId(hq.book().town().sh_id[a.shelter.unwrap() as usize])
    };
    // Where the engine sends this household when nobody is anywhere yet.
    let (first, _) = hq.issue(notice(), None, 1_000_000).unwrap();
    let nearest = shelter_of(&hq);
    hq.lift(first.message_id.unwrap(), 1_000_000).unwrap();
    // The household went to another suitable shelter and checked in there.
    let other = suitable
        .iter()
        .map(|id| ShelterId(*id))
        .find(|s| *s != nearest)
        .unwrap();
    let mut e = ev(other, 1, 999_000);
    e.resident = Some(ResidentId(hh.members[0].resident));
    let payload = serde_json::to_vec(&EventBatch::new(
        other,
        vec![node.sign(&shelter_signer(other), &e).unwrap()],
    ))
    .unwrap();
    hq.on_events(other, &payload, 1_000_100).unwrap();
    // The next notice leaves them where they are.
    hq.issue(notice(), None, 1_000_200).unwrap();
    assert_eq!(
        shelter_of(&hq),
        other,
        "a household already safe was sent away"
    );
}

/// Regression (issue 13, item 9): a batch HQ rejected whole got no answer, so the shelter
/// resent it for ever without knowing why. It is answered with the ack as it stands and the
/// reason, at most once a second a shelter.
#[test]
fn a_batch_rejected_whole_is_answered_with_the_reason() {
    let (mut hq, node, hq_pub, s, _dir) = setup();
    assert_eq!(send(&mut hq, &node, s, &[1], 1_000_000), 1);
    let stranger = SecretKey::from_seed(&[66; 32]);
    let forged = |n: u64| {
        let e = stranger
            .sign(&shelter_signer(s), &ev(s, n, 900_000 + n))
            .unwrap();
        serde_json::to_vec(&EventBatch::new(s, vec![e])).unwrap()
    };
    let out = hq.on_events(s, &forged(2), 1_000_100).unwrap();
    assert_eq!(out.len(), 1, "no answer to a rejected batch");
    let ack = Signed::<Ack>::from_json(&out[0].payload)
        .unwrap()
        .open(&hq_pub)
        .unwrap();
    assert_eq!(ack.through_seq, 1, "the ack still says what is stored");
    assert!(
        ack.rejected.as_deref().is_some_and(|r| r.contains("event")),
        "{ack:?}"
    );
    // A flood is answered at most once a second.
    assert!(hq.on_events(s, &forged(3), 1_000_200).unwrap().is_empty());
    assert_eq!(hq.on_events(s, &forged(4), 1_001_200).unwrap().len(), 1);
    // A good batch afterwards is acked plainly.
    assert_eq!(send(&mut hq, &node, s, &[2], 1_001_300), 2);
}

/// Issue 12: an edited town file never reached shelters (the registry kept its version), and
/// a reset store started again at version 1, below what shelters held.
#[test]
fn the_registry_version_moves_on_with_its_content_and_past_a_reset_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hq.sqlite");
    let mut town = generate(&GenerateParams {
        households: 30,
        shelters: 3,
        seed: 4,
    });
    let open = |town: &evac_maps::Town, now_ms: u64| {
        Hq::open(
            "minato".parse().unwrap(),
            Arc::new(town.clone()),
            Store::open(&path).unwrap(),
            KeyRing::default(),
            SecretKey::from_seed(&[2; 32]),
            60_000,
            now_ms,
        )
        .unwrap()
    };
    let version = |hq: &Hq| hq.registry_version();
    let first = version(&open(&town, 1_795_000_000_000));
    assert!(
        first >= 1_795_000_000,
        "at least HQ's clock in seconds: {first}"
    );
    assert_eq!(
        version(&open(&town, 1_795_000_100_000)),
        first,
        "unchanged town"
    );
    town.households[0].members[0].name = "新しい 名前".into();
    let edited = version(&open(&town, 1_795_000_000_500));
    assert!(edited > first, "edited town: {edited} after {first}");
    std::fs::remove_file(&path).unwrap();
    let reset = version(&open(&town, 1_795_000_200_000));
    assert!(reset > edited, "reset store: {reset} after {edited}");
}

/// An officer's signed command for `hq`'s town, as a dashboard sends it.
fn officer_command(
    key: &SecretKey,
    officer: &evac_protocol::OfficerId,
    id: u64,
    at_ms: u64,
    action: evac_protocol::CommandAction,
) -> Vec<u8> {
    let cmd = evac_protocol::OfficerCommand {
        officer: officer.clone(),
        town: "minato".parse().unwrap(),
        id,
        at_ms,
        action,
        reason: "test".into(),
    };
    key.sign(&evac_protocol::officer_signer(officer), &cmd)
        .unwrap()
        .to_json()
        .unwrap()
        .into_bytes()
}

fn reply_of(out: &[Publication]) -> evac_protocol::CommandReply {
    let r = out
        .iter()
        .find(|o| o.topic.ends_with("/reply"))
        .expect("a reply");
    Signed::<evac_protocol::CommandReply>::from_json(&r.payload)
        .unwrap()
        .body_unverified()
        .unwrap()
}

mod answer_marks;
mod answers;
mod commands;
mod restart;
mod shards;
mod status_parts;
