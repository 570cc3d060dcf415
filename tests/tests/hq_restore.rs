//! HQ's store restored from an older copy, judged by the dashboard's own acceptance rule
//! (`evac_dashboard::state::TownState`): issue 18 item 5. The status sequence resumed from
//! the store, below what dashboards had seen, and every dashboard (the prefecture's too)
//! refused each newer status as a replay while HQ's link was up.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::sync::Arc;

use evac_dashboard::state::{Applied, TownState};
use evac_hq::core::Hq;
use evac_hq::keys::KeyRing;
use evac_hq::store::Store;
use evac_maps::{GenerateParams, generate};
use evac_protocol::SecretKey;

const T0: u64 = 1_795_000_000_000;

#[test]
fn a_dashboard_takes_the_statuses_of_an_hq_restored_from_an_older_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hq.sqlite");
    let town = Arc::new(generate(&GenerateParams {
        households: 40,
        shelters: 3,
        seed: 8,
    }));
    let open = |now_ms: u64| {
        Hq::open(
            "minato".parse().unwrap(),
            town.clone(),
            Store::open(&path).unwrap(),
            KeyRing::default(),
            SecretKey::from_seed(&[2; 32]),
            60_000,
            now_ms,
        )
        .unwrap()
    };
    let mut dashboard = TownState::new(
        "minato".parse().unwrap(),
        SecretKey::from_seed(&[2; 32]).public(),
        None,
    );
    let mut show = |hq: &mut Hq, now_ms: u64| {
        let m = hq.snapshot(now_ms).unwrap().remove(0);
        dashboard.on_message(&m.topic, &m.payload, now_ms)
    };
    let mut hq = open(T0);
    assert_eq!(show(&mut hq, T0), Ok(Applied::Snapshot));
    drop(hq);
    let copy = dir.path().join("copy.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    // HQ runs on; the dashboard sees many more statuses.
    let mut hq = open(T0 + 1_000);
    for i in 0..30 {
        assert_eq!(show(&mut hq, T0 + 1_000 + i * 1_000), Ok(Applied::Snapshot));
    }
    drop(hq);
    // The disk is lost and the older copy restored.
    for ext in ["sqlite-wal", "sqlite-shm"] {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
    std::fs::copy(&copy, &path).unwrap();
    let mut hq = open(T0 + 120_000);
    assert_eq!(
        show(&mut hq, T0 + 120_000),
        Ok(Applied::Snapshot),
        "the dashboard refused the restored HQ's status"
    );
}
