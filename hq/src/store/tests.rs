use evac_protocol::{CheckEvent, EventKind, ResidentId, SecretKey, ShelterId, shelter_signer};

use super::{MAX_CONFLICTS_PER_NUMBER, Progress, Store, Stored};

fn ev(shelter: u32, seq: u64) -> CheckEvent {
    CheckEvent {
        resident: Some(ResidentId(seq as u32)),
        ..CheckEvent::new(ShelterId(shelter), seq, 1000 + seq, EventKind::CheckIn)
    }
}

#[test]
fn the_store_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("hq.sqlite");
    let _s = Store::open(&path).unwrap();
    for p in [path.clone(), path.with_extension("sqlite-wal")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

#[test]
fn events_are_stored_once_and_progress_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hq.sqlite");
    let key = SecretKey::from_seed(&[1; 32]);
    let mut store = Store::open(&path).unwrap();
    let evs: Vec<CheckEvent> = [1, 2, 4, 5].iter().map(|s| ev(1, *s)).collect();
    let signed: Vec<_> = evs
        .iter()
        .map(|e| key.sign(&shelter_signer(ShelterId(1)), e).unwrap())
        .collect();
    let pairs: Vec<_> = signed.iter().zip(&evs).collect();
    assert_eq!(store.insert_events(&pairs, 5).unwrap(), [Stored::New; 4]);
    assert_eq!(
        store.insert_events(&pairs[..2], 6).unwrap(),
        [Stored::Repeat; 2]
    );
    let p = store.progress(ShelterId(1));
    assert_eq!((p.through, p.missing()), (2, 1));
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.progress(ShelterId(1)).through, 2);
    assert_eq!(store.event_count().unwrap(), 4);
    assert_eq!(store.events().unwrap()[3].event, evs[3]);
}

#[test]
fn a_different_event_under_a_held_number_is_kept_aside_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
    let key = SecretKey::from_seed(&[1; 32]);
    let held = ev(1, 3);
    let mut other = ev(1, 3);
    other.resident = Some(ResidentId(99));
    let sign = |e: &CheckEvent| key.sign(&shelter_signer(ShelterId(1)), e).unwrap();
    let (a, b) = (sign(&held), sign(&other));
    assert_eq!(
        store.insert_events(&[(&a, &held)], 1).unwrap(),
        [Stored::New]
    );
    assert_eq!(
        store.insert_events(&[(&b, &other)], 2).unwrap(),
        [Stored::Conflict]
    );
    assert_eq!(
        store
            .insert_events(&[(&b, &other), (&a, &held)], 3)
            .unwrap(),
        [Stored::Repeat, Stored::Repeat]
    );
    assert_eq!(store.conflicts_by_shelter().unwrap(), [(ShelterId(1), 1)]);
    assert_eq!(store.conflicts().unwrap(), [(2, other.clone())]);
    assert_eq!(
        store.events().unwrap()[0].event,
        held,
        "the first one stays"
    );
    // A key sending new bodies under the number without end fills no disk.
    for n in 0..50 {
        let mut e = ev(1, 3);
        e.resident = Some(ResidentId(1000 + n));
        store.insert_events(&[(&sign(&e), &e)], 4).unwrap();
    }
    assert_eq!(
        store.conflicts_by_shelter().unwrap(),
        [(ShelterId(1), MAX_CONFLICTS_PER_NUMBER)]
    );
}

#[test]
fn progress_fills_gaps() {
    let mut p = Progress::default();
    for s in [3, 1, 5, 2] {
        p.add(s);
    }
    assert_eq!((p.through, p.missing()), (3, 1));
    p.add(4);
    assert_eq!((p.through, p.missing(), p.above.len()), (5, 0, 0));
}
