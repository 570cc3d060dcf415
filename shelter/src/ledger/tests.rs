use super::*;
use evac_protocol::{Assurance, EventKind};

fn draft() -> EventDraft {
    EventDraft {
        kind: EventKind::CheckIn,
        card: None,
        resident: None,
        household: None,
        assurance: Assurance::Staff,
        flags: vec![],
        day_only: false,
    }
}

#[test]
fn the_ledger_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let conn = connect(&path).unwrap();
    drop(conn);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _conn = connect(&path).unwrap();
    assert_eq!(mode(&path), 0o640, "world read taken away");
}

#[test]
fn a_ledger_behind_hq_copies_what_hq_did_not_acknowledge_and_numbers_after_hq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let key = || SecretKey::from_seed(&[1; 32]);
    let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
    for t in 0..4 {
        l.append(&draft(), 1_000 + t).unwrap();
    }
    set_meta(l.conn(), "acked_through", "2").unwrap();
    // A correction of the unacknowledged event 3 is renumbered with it.
    let d = EventDraft {
        kind: EventKind::Correction,
        ..draft()
    };
    l.append_with(
        &d,
        2_000,
        Some(EventId {
            shelter: ShelterId(4),
            seq: 3,
        }),
        None,
    )
    .unwrap();
    let mut conn = connect(&path).unwrap();
    assert_eq!(
        recover_behind(&mut conn, &key(), ShelterId(4), 5).unwrap(),
        None
    );
    let r = recover_behind(&mut conn, &key(), ShelterId(4), 9)
        .unwrap()
        .unwrap();
    assert_eq!((r.last, r.hq_through, r.copied), (5, 9, 3));
    // The node's next tap follows the copies, through its own connection.
    let next = l.append(&draft(), 3_000).unwrap();
    assert_eq!(next.id.seq, 13);
    assert_eq!(l.last_seq(), 13);
    assert_eq!(acked_through_meta(l.conn()), 9);
    let events = l.events().unwrap();
    let copies: Vec<&CheckEvent> = events.iter().filter(|e| e.id.seq > 9).collect();
    assert_eq!(
        copies.iter().map(|e| e.id.seq).collect::<Vec<_>>(),
        [10, 11, 12, 13]
    );
    assert_eq!(copies[0].at, events[2].at, "a copy keeps the tap's time");
    assert!(
        copies[0]
            .note
            .as_deref()
            .unwrap()
            .contains("copy of ledger event 3")
    );
    assert_eq!(copies[2].corrects.map(|c| c.seq), Some(10));
    // The skipped numbers are recorded: the ledger opens again, and sends the copies.
    drop(l);
    let l = Ledger::open(&path, ShelterId(4), key()).unwrap();
    assert_eq!(l.last_seq(), 13);
    let (out, _) = signed_events_from(l.conn(), 10, 10, &key(), ShelterId(4)).unwrap();
    assert_eq!(
        out.iter().map(|o| o.0).collect::<Vec<_>>(),
        [10, 11, 12, 13]
    );
    // HQ ahead again with nothing unacknowledged: only the numbers move on.
    set_meta(l.conn(), "acked_through", "13").unwrap();
    let r = recover_behind(&mut conn, &key(), ShelterId(4), 20)
        .unwrap()
        .unwrap();
    assert_eq!(r.copied, 0);
    drop(l);
    let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
    assert_eq!(l.append(&draft(), 4_000).unwrap().id.seq, 21);
}

fn acked_through_meta(conn: &Connection) -> u64 {
    get_meta(conn, "acked_through")
        .unwrap()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn appends_survive_reopen_and_refuse_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let key = || SecretKey::from_seed(&[1; 32]);
    let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
    let a = l.append(&draft(), 1_000).unwrap();
    let b = l.append(&draft(), 900).unwrap();
    assert_eq!((a.id.seq, b.id.seq), (1, 2));
    assert!(b.at > a.at, "HLC went backwards");
    drop(l);
    let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
    assert_eq!(l.last_seq(), 2);
    let c = l.append(&draft(), 0).unwrap();
    assert_eq!(c.id.seq, 3);
    assert!(
        c.at > b.at,
        "clock did not resume after the ledger's last event"
    );
    assert_eq!(l.events().unwrap(), vec![a, b, c]);
    let err = l
        .conn()
        .execute("UPDATE events SET body = 'x'", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(l.conn().execute("DELETE FROM events", []).is_err());
    let (sig, repaired) = signed_events_from(l.conn(), 2, 10, &key(), ShelterId(4)).unwrap();
    assert!(repaired.is_empty());
    assert_eq!(sig.len(), 2);
    assert_eq!(sig[0].1.open(&key().public()).unwrap().id.seq, 2);
    drop(l);
    assert!(matches!(
        Ledger::open(&path, ShelterId(5), key()),
        Err(LedgerError::WrongShelter { .. })
    ));
}

/// Regression (issue 13, item 4): an unreadable envelope was skipped, so HQ's contiguous
/// ack never passed it and the shelter resent the tail for ever.
#[test]
fn unreadable_rows_are_sent_repaired_never_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let key = || SecretKey::from_seed(&[1; 32]);
    let mut l = Ledger::open(&path, ShelterId(4), key()).unwrap();
    let events: Vec<_> = (0..4)
        .map(|i| l.append(&draft(), 1_000 + i).unwrap())
        .collect();
    // Damage rows 2 (envelope only) and 3 (envelope and body), as a bad disk would.
    l.conn()
        .execute_batch(
            "DROP TRIGGER events_append_only_u;
             UPDATE events SET envelope = '{garbage' WHERE seq = 2;
             UPDATE events SET envelope = 'x', body = 'y' WHERE seq = 3;",
        )
        .unwrap();
    let (sent, repaired) = signed_events_from(l.conn(), 1, 10, &key(), ShelterId(4)).unwrap();
    assert_eq!(
        sent.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3, 4],
        "a gap stalls HQ's ack"
    );
    let opened: Vec<_> = sent
        .iter()
        .map(|(_, s)| s.open(&key().public()).unwrap())
        .collect();
    assert_eq!(opened[1], events[1], "the body of row 2 was readable");
    assert_eq!(opened[2].kind, evac_protocol::EventKind::Correction);
    assert_eq!(opened[2].id.seq, 3);
    assert!(opened[2].note.as_deref().unwrap().contains("unreadable"));
    assert_eq!(opened[3], events[3]);
    assert_eq!(
        repaired.iter().map(|r| (r.seq, r.kind)).collect::<Vec<_>>(),
        vec![(2, RepairKind::Resigned), (3, RepairKind::Placeholder)]
    );
    // The node still opens and counts what it can read.
    drop(l);
    let l = Ledger::open(&path, ShelterId(4), key()).unwrap();
    let (ok, bad) = read_events_lenient(l.conn(), "x").unwrap();
    assert_eq!((ok.len(), bad), (3, vec![3]));
}

#[test]
fn pragmas_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let conn = connect(&dir.path().join("x.db")).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2));
    // The page cache is bounded (a negative size is KiB): SQLite's default is 2,000 KiB.
    let cache: i64 = conn
        .pragma_query_value(None, "cache_size", |r| r.get(0))
        .unwrap();
    assert_eq!(cache, -super::LEDGER_CACHE_KIB);
}
