//! The box end to end in one process: a stream file written by the mux, read by [`receive`],
//! answered as the binary answers.

use super::*;
use crate::carousel::Carousel;
use crate::mux::{Generator, MuxConfig};
use crate::psi::ServiceLayout;
use evac_protocol::onair::pack_group;
use evac_protocol::overlay::{OverlayBatch, OverlayRecord};
use evac_protocol::{AlertLevel, Hazard, MessageKind, SecretKey, ShelterId, Slug};

const NOW: i64 = 1_795_000_000;

fn hq() -> SecretKey {
    SecretKey::from_seed(&[5; 32])
}

/// A stream file in `dir` ordering household 42 to shelter 3 (or no order when `order` is
/// false), signed by HQ; returns the file and HQ's public key file.
fn stream_file(dir: &std::path::Path, order: bool) -> (PathBuf, PathBuf) {
    let header = OverlayBatch {
        group: 0,
        message_id: 1,
        kind: MessageKind::Alert,
        references: None,
        notice: 1,
        hazard: Hazard::Tsunami,
        drill: false,
        issued: NOW - 60,
        expires: NOW + 3600,
        onset: None,
        template: 0,
        town: Slug::new("minato").unwrap(),
        key_id: [0; 8],
        records: vec![],
    };
    let record = OverlayRecord {
        household: HouseholdId(if order { 42 } else { 7 }),
        level: Some(AlertLevel::Level4),
        shelter: ShelterId(3),
        version: 1,
        needs_help: false,
    };
    let sections = pack_group(0, &[(header, vec![record])], &hq()).unwrap();
    let mut carousel = Carousel::new();
    carousel.apply_set(&sections, NOW);
    let cfg = MuxConfig {
        layout: ServiceLayout::default(),
        bitrate: 1_000_000,
        overlay_bitrate: 500_000,
        transport_stream_id: 1,
        start_unix: NOW,
    };
    let mut mux = Generator::new(cfg, carousel).unwrap();
    let bytes: Vec<u8> = (0..2_000).flat_map(|_| mux.next_packet()).collect();
    let ts = dir.join("air.ts");
    std::fs::write(&ts, bytes).unwrap();
    let key = dir.join("hq.pub");
    std::fs::write(&key, hq().public().to_pem().unwrap()).unwrap();
    (ts, key)
}

fn settings(ts: &std::path::Path, key: &std::path::Path) -> StbSettings {
    StbSettings {
        input: ts.display().to_string(),
        household: Some(42),
        key: Some(key.to_owned()),
        now: Some(NOW),
        idle: 2.0,
        ..StbSettings::default()
    }
}

#[test]
fn the_household_sees_its_order_on_screen() {
    let dir = tempfile::tempdir().unwrap();
    let (ts, key) = stream_file(dir.path(), true);
    let got = receive(&settings(&ts, &key), |n| panic!("{n}")).unwrap();
    let mut out = Vec::new();
    got.write_screen(Some(Language::English), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("#42"), "{text}");
    assert!(text.contains("(v1 until "), "{text}");
    assert!(text.contains("emergency signal: off\n"), "{text}");
    let mut json = Vec::new();
    got.write_json(&mut json).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(report["status"], "order");
    assert_eq!(report["order"]["shelter"], 3);
}

#[test]
fn no_order_is_said_in_the_households_language() {
    let dir = tempfile::tempdir().unwrap();
    let (ts, key) = stream_file(dir.path(), false);
    let got = receive(&settings(&ts, &key), |_| {}).unwrap();
    let mut out = Vec::new();
    got.write_screen(None, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("この世帯への避難指示はありません。\n"),
        "{text}"
    );
    assert!(matches!(got.route(None, None), Err(StbError::NoOrder(42))));
}

#[test]
fn a_route_needs_a_town_and_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let (ts, key) = stream_file(dir.path(), true);
    let got = receive(&settings(&ts, &key), |_| {}).unwrap();
    assert!(matches!(got.route(None, None), Err(StbError::NoTownFile)));
    let town = dir.path().join("town.geojson");
    assert!(matches!(
        got.route(Some(town.clone()), None),
        Err(StbError::NoLocation)
    ));
    assert!(matches!(
        got.route(Some(town.clone()), Some([200.0, 35.0])),
        Err(StbError::BadLocation(_))
    ));
    let mut generated = evac_maps::generate(&evac_maps::GenerateParams {
        households: 10,
        shelters: 5,
        seed: 1,
    });
    let door = generated.households[0].location;
    generated.save(&town).unwrap();
    let doc = got
        .route(Some(town.clone()), Some([door.lon, door.lat]))
        .unwrap();
    assert_eq!(doc["features"][0]["properties"]["household"], 42);
    assert_eq!(doc["features"][1]["properties"]["id"], 3);
    // The same town without its roads.
    generated.roads.clear();
    generated.save(&town).unwrap();
    let err = got
        .route(Some(town), Some([door.lon, door.lat]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the town file has no roads: import them with `evac-maps roads import`"
    );
}

#[test]
fn a_torn_state_file_is_set_aside_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let (ts, key) = stream_file(dir.path(), true);
    let state = dir.path().join("stb.state");
    std::fs::write(&state, b"{torn").unwrap();
    let mut notices = Vec::new();
    let got = receive(
        &StbSettings {
            state: Some(state.clone()),
            ..settings(&ts, &key)
        },
        |n| notices.push(n),
    )
    .unwrap();
    assert!(got.rx.order_now().is_some());
    assert!(
        matches!(&notices[..], [Notice::StateSetAside { file, .. }] if *file == state),
        "{notices:?}"
    );
    assert!(
        notices[0]
            .to_string()
            .starts_with(&format!("state file {} does not decode (", state.display()))
    );
    // The new state is written and decodes.
    let kept: ReceiverState = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let _ = kept;
}

#[test]
fn what_is_not_a_stream_or_not_set_up_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = stream_file(dir.path(), true);
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"hello").unwrap();
    let Err(err) = receive(&settings(&text, &key), |_| {}) else {
        panic!("a text file read as a stream");
    };
    assert!(matches!(err, StbError::NotTransportStream(_)), "{err}");
    let no_key = StbSettings {
        key: None,
        ..settings(&text, &key)
    };
    assert!(matches!(receive(&no_key, |_| {}), Err(StbError::NoHqKey)));
    let no_household = StbSettings {
        household: None,
        ..settings(&text, &key)
    };
    assert!(matches!(
        receive(&no_household, |_| {}),
        Err(StbError::NoHousehold)
    ));
}
