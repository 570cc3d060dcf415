use std::sync::Arc;

use evac_maps::{GenerateParams, generate};
use evac_protocol::{
    Assurance, CheckEvent, EventBatch, EventId, EventKind, NodeState, PublicKey, ResidentId,
    SecretKey, ShelterId, Signed, Timestamp, shelter_signer,
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

fn ev(shelter: ShelterId, seq: u64, wall_ms: u64) -> CheckEvent {
    CheckEvent {
        id: EventId { shelter, seq },
        at: Timestamp {
            wall_ms,
            logical: 0,
            node: shelter.0,
        },
        kind: EventKind::CheckIn,
        card: None,
        resident: Some(ResidentId(seq as u32)),
        household: None,
        assurance: Assurance::Staff,
        flags: vec![],
        day_only: false,
        corrects: None,
        note: None,
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
    assert_eq!(hq.board().nodes()[&s].lag_ms, Some(1_000_500 - 900_003));
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
