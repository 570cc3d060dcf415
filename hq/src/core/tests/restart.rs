//! What a restart finds: a store restored from an older copy, rows that do not read.

use super::*;

fn status_seq(o: &Publication) -> u64 {
    match Signed::<evac_protocol::StatusMessage>::from_json(&o.payload)
        .unwrap()
        .body_unverified()
        .unwrap()
    {
        evac_protocol::StatusMessage::Snapshot(s) => s.seq,
        evac_protocol::StatusMessage::Delta(d) => d.seq,
    }
}

/// Issue 18 item 5: a store restored from an older copy resumed the status sequence below what
/// dashboards had seen, and they refused every newer status as a replay. The protocol's rule
/// (a dashboard's too): a snapshot whose `seq` is below the last one seen is a replay.
#[test]
fn a_store_restored_from_an_older_copy_still_makes_statuses_dashboards_take() {
    let (mut hq, node, _, s, dir) = setup();
    let path = dir.path().join("hq.sqlite");
    let mut seen = status_seq(&hq.snapshot(1_000_000).unwrap()[0]);
    drop(hq);
    let copy = dir.path().join("copy.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    let open = |now_ms: u64| {
        let mut keys = KeyRing::default();
        keys.add_shelter(s, node.public());
        let town = generate(&GenerateParams {
            households: 100,
            shelters: 4,
            seed: 2,
        });
        Hq::open(
            "minato".parse().unwrap(),
            Arc::new(town),
            Store::open(&path).unwrap(),
            keys,
            SecretKey::from_seed(&[2; 32]),
            60_000,
            now_ms,
        )
        .unwrap()
    };
    // The store lives on: a dashboard sees many statuses.
    let mut hq = open(1_000_100);
    for i in 0..50u64 {
        send(&mut hq, &node, s, &[i + 1], 1_000_200 + i * 1000);
        for o in hq.tick(1_000_200 + i * 1000, i % 10 == 0).unwrap() {
            if o.topic.ends_with("/status") {
                let seq = status_seq(&o);
                assert!(seq > seen, "{seq} after {seen}");
                seen = seq;
            }
        }
    }
    drop(hq);
    // The disk is lost; the older copy comes back.
    for ext in ["sqlite-wal", "sqlite-shm"] {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
    std::fs::copy(&copy, &path).unwrap();
    let mut hq = open(1_120_000);
    let seq = status_seq(&hq.snapshot(1_120_000).unwrap()[0]);
    assert!(
        seq > seen,
        "the restored HQ's snapshot {seq} is not after {seen}: a dashboard refuses it as a replay"
    );
}

/// Issue 18 item 11: notices that did not parse, events that did not decode and bad meta
/// were dropped or defaulted silently at start. Each is counted, logged with its id, and in
/// the status officers get.
#[test]
fn what_the_store_cannot_read_at_start_is_counted_and_sent_to_officers() {
    use crate::notice::{Area, Notice};
    use evac_protocol::{AlertLevel, Hazard, StoreUnreadable};
    let (mut hq, node, _, s, dir) = setup();
    send(&mut hq, &node, s, &[1, 2, 3], 1_000_000);
    let notice = Notice {
        name: "flood".into(),
        hazard: Hazard::Flood,
        level: AlertLevel::Level3,
        area: Area {
            zones: vec![1],
            ..Area::default()
        },
        issued: 1_000,
        expires: 100_000,
        drill: false,
        source: "test".into(),
        cap: None,
        onset: None,
        effective: None,
    };
    hq.issue(notice, None, 1_000_000).unwrap();
    hq.store
        .link_card(
            &evac_protocol::CardRef {
                issuer_key_id: vec![1; 20],
                serial: vec![2],
            },
            hq.board().first_resident(),
            "tanaka",
            1_000_000,
        )
        .unwrap();
    drop(hq);
    let path = dir.path().join("hq.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE events SET body = '{\"not\": \"an event\"}' WHERE seq = 2;
         UPDATE notices SET spec = 'torn';
         UPDATE card_links SET card = 'torn';
         UPDATE meta SET value = 'x' WHERE key = 'next_message';",
    )
    .unwrap();
    drop(conn);
    let mut keys = KeyRing::default();
    keys.add_shelter(s, node.public());
    let town = generate(&GenerateParams {
        households: 100,
        shelters: 4,
        seed: 2,
    });
    let mut hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town),
        Store::open(&path).unwrap(),
        keys,
        SecretKey::from_seed(&[2; 32]),
        60_000,
        1_100_000,
    )
    .unwrap();
    let want = StoreUnreadable {
        events: 1,
        notices: 1,
        card_links: 1,
        meta: 1,
    };
    assert_eq!(hq.unreadable().events, [(s, 2)]);
    assert_eq!(hq.unreadable().meta, ["next_message"]);
    let snap = hq.snapshot(1_100_000).unwrap().remove(0);
    let Ok(evac_protocol::StatusMessage::Snapshot(snap)) =
        Signed::<evac_protocol::StatusMessage>::from_json(&snap.payload)
            .unwrap()
            .body_unverified()
    else {
        panic!("not a snapshot")
    };
    assert_eq!(snap.counts.unreadable_at_start, Some(want.clone()));
    // `evac-hq check` finds the same without changing the store.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let scanned = crate::store::scan_unreadable(&conn).unwrap();
    assert_eq!(scanned.counts(), Some(want));
    assert!(
        scanned.describe().contains("shelter 1 seq 2") || scanned.describe().contains("seq 2"),
        "{}",
        scanned.describe()
    );
}
