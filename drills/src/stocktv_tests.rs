//! The drill's stock TVs against what the web-bml tests (`broadcaster/tests/bml.rs`) expect a
//! stock TV to show for the same stream: the sample town, every household sent to a shelter
//! in turn at levels 4, 5, 3, the broadcaster's BML service fed HQ-signed sections, the
//! muxer's own stream at 2 Mbit/s with 1 Mbit/s for the carousel.

use super::*;
use evac_broadcaster::bml::table::{Directory, multipart};
use evac_broadcaster::bml::{BmlConfig, BmlService, DEFAULT_DATA_PID, Verifier};
use evac_broadcaster::carousel::Carousel;
use evac_broadcaster::mux::{Generator, MuxConfig, PACKET_BITS};
use evac_broadcaster::psi::ServiceLayout;
use evac_broadcaster::receiver::TrustedKey;
use evac_maps::Town;
use evac_protocol::onair::{AirSection, pack_group};
use evac_protocol::overlay::{OverlayBatch, OverlayRecord, group_of};
use evac_protocol::{Hazard, HouseholdId, MessageKind, SecretKey, Slug};

/// 2026-12-06T09:30:00Z.
const NOW: i64 = 1_796_549_400;

fn town() -> Town {
    Town::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../maps/data/town.geojson"
    ))
    .unwrap()
}

/// As the web-bml tests: (household, shelter, level), each household to one of the shelters
/// in turn, levels 4, 5, 3.
fn orders(town: &Town, shift: usize) -> Vec<(u32, u32, u8)> {
    town.households
        .iter()
        .map(|h| {
            let s = town.shelters[(h.id as usize + shift) % town.shelters.len()].id;
            (h.id, s, [4, 5, 3][h.id as usize % 3])
        })
        .collect()
}

/// HQ's signed sections for `orders`, version `version`, issued at `issued`.
fn signed(orders: &[(u32, u32, u8)], hq: &SecretKey, version: u32, issued: i64) -> Vec<AirSection> {
    let header = OverlayBatch {
        group: 0,
        message_id: 1,
        kind: MessageKind::Alert,
        references: None,
        notice: 1,
        hazard: Hazard::Tsunami,
        drill: true,
        issued,
        expires: issued + 24_000,
        onset: None,
        template: 0,
        town: Slug::new("town").unwrap(),
        key_id: [0; 8],
        records: vec![],
    };
    let mut by: BTreeMap<u16, Vec<OverlayRecord>> = BTreeMap::new();
    for &(h, s, l) in orders {
        by.entry(group_of(HouseholdId(h)))
            .or_default()
            .push(OverlayRecord {
                household: HouseholdId(h),
                level: Some(AlertLevel::try_from(l).unwrap()),
                shelter: ShelterId(s),
                version,
                needs_help: false,
            });
    }
    by.into_iter()
        .flat_map(|(g, r)| pack_group(g, &[(header.clone(), r)], hq).unwrap())
        .collect()
}

fn service(town: &Town, hq: &SecretKey, set: &[AirSection], confirmed: i64) -> BmlService {
    let v = Verifier::new(
        vec![TrustedKey::always(hq.public())],
        Slug::new("town").unwrap(),
        120,
    );
    let mut s = BmlService::new(
        BmlConfig::default(),
        v,
        Directory::from_town(town),
        Some(confirmed),
    )
    .unwrap();
    s.apply_set(set, confirmed).unwrap();
    s
}

/// `seconds` of the service's stream (as the web-bml tests make it) through the town's stock
/// TVs, HQ's `change` taken in at its second; each page change with its packet number.
fn watch(
    town: &Town,
    svc: BmlService,
    seconds: u64,
    change: Option<(u64, Vec<AirSection>)>,
) -> (StockTvs, Vec<(u64, u32, OnScreen)>) {
    let cfg = MuxConfig {
        layout: ServiceLayout {
            data_pid: Some(DEFAULT_DATA_PID),
            ..ServiceLayout::default()
        },
        bitrate: 2_000_000,
        overlay_bitrate: 200_000,
        transport_stream_id: 1,
        start_unix: NOW,
    };
    let mut g = Generator::new(cfg, Carousel::new()).unwrap();
    g.ours().set_bml(svc, 1_000_000).unwrap();
    let mut tv = StockTvs::new(town.shelters.iter().map(|s| (s.id, s.name.as_str())), NOW);
    let per_s = 2_000_000 / PACKET_BITS;
    let mut change = change;
    let (mut seen, mut changed) = (Vec::new(), Vec::new());
    for i in 0..seconds * per_s {
        if let Some((at, set)) = change.take_if(|(at, _)| i == *at * per_s) {
            let bml = g.ours().bml_mut().unwrap();
            bml.apply_set(&set, NOW + at as i64).unwrap();
        }
        tv.feed(&g.next_packet(), &mut changed);
        seen.extend(changed.drain(..).map(|(h, on)| (i, h, on)));
    }
    (tv, seen)
}

fn order(on: (u32, u8)) -> Page {
    Page::Order(OnScreen {
        shelter: ShelterId(on.0),
        level: Some(AlertLevel::try_from(on.1).unwrap()),
        version: 0,
        expires: i64::MAX,
    })
}

#[test]
fn every_household_sees_what_web_bml_shows_for_the_same_stream() {
    let town = town();
    let hq = SecretKey::from_seed(&[1; 32]);
    let all = orders(&town, 0);
    // Household 7 has no order in this plan: "あなたの世帯への避難指示等はありません".
    let h7 = town.households[7].id;
    let plan: Vec<_> = all.iter().copied().filter(|o| o.0 != h7).collect();
    let svc = service(&town, &hq, &signed(&plan, &hq, 1, NOW), NOW);
    let (tv, seen) = watch(&town, svc, 3, None);
    // web-bml: "避難先: {shelter}" and "警戒レベル{level}" for households 1234 and 42; here every
    // household, each once.
    for &(h, s, l) in &plan {
        assert_eq!(tv.page(h), order((s, l)), "household {h}");
    }
    assert_eq!(seen.len(), plan.len());
    assert_eq!(tv.households_shown(), plan.len());
    assert_eq!(tv.page(h7), Page::NoOrder);
    // web-bml: "この番号の世帯はありません" for 999999.
    assert_eq!(tv.page(999_999), Page::NotAHousehold);
    assert_eq!(tv.refused(), StockRefused::default());
}

#[test]
fn a_changed_order_reaches_the_tv_and_stale_tables_cannot_confirm() {
    let town = town();
    let hq = SecretKey::from_seed(&[1; 32]);
    let before = orders(&town, 0);
    let after = orders(&town, 1);
    let h = town.households[7].id;
    let pick = |v: &[(u32, u32, u8)]| v.iter().copied().find(|o| o.0 == h).unwrap();
    // The officer closes a shelter: HQ sends household h elsewhere (version 2), 3 s in.
    let mut changed = before.clone();
    for o in &mut changed {
        if o.0 == h {
            *o = pick(&after);
        }
    }
    let set = signed(&before, &hq, 1, NOW);
    // HQ republishes household h's group.
    let group = group_of(HouseholdId(h));
    let mut new = signed(&changed, &hq, 2, NOW + 3);
    new.retain(|s| s.extension == group);
    let svc = service(&town, &hq, &set, NOW);
    let (tv, seen) = watch(&town, svc, 8, Some((3, new)));
    let (_, s1, l1) = pick(&before);
    let (_, s2, l2) = pick(&after);
    let mine: Vec<_> = seen.iter().filter(|(_, x, _)| *x == h).collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(Page::Order(mine[0].2), order((s1, l1)));
    assert_eq!(Page::Order(mine[1].2), order((s2, l2)));
    // On screen within 2 s of the change (web-bml: after ArrowUp, the new shelter).
    let per_s = 2_000_000 / PACKET_BITS;
    assert!(
        mine[1].0 >= 3 * per_s && mine[1].0 <= 5 * per_s,
        "{}",
        mine[1].0
    );
    assert_eq!(tv.page(h), order((s2, l2)));

    // Tables last confirmed an hour ago (the bound is 10 minutes): "確認できません".
    let old = signed(&before, &hq, 1, NOW - 4_000);
    let svc = service(&town, &hq, &old, NOW - 3_600);
    let (tv, seen) = watch(&town, svc, 3, None);
    assert_eq!(tv.page(h), Page::CannotConfirm);
    assert!(seen.is_empty(), "no order shown from stale tables");
}

#[test]
fn a_stream_without_the_service_shows_nothing() {
    let town = town();
    let cfg = MuxConfig {
        layout: ServiceLayout::default(),
        bitrate: 1_000_000,
        overlay_bitrate: 200_000,
        transport_stream_id: 1,
        start_unix: NOW,
    };
    let mut g = Generator::new(cfg, Carousel::new()).unwrap();
    let mut tv = StockTvs::new(town.shelters.iter().map(|s| (s.id, s.name.as_str())), NOW);
    let mut changed = Vec::new();
    for _ in 0..2_000 {
        tv.feed(&g.next_packet(), &mut changed);
    }
    assert!(changed.is_empty());
    assert_eq!(tv.page(town.households[0].id), Page::NothingYet);
}

#[test]
fn multipart_parts_and_string_tables_read_back() {
    let m = multipart(&[
        ("a.bin", "application/octet-stream", b"x\r\n--y"),
        ("b.bin", "application/octet-stream", b""),
    ]);
    let p = parts(&m);
    assert_eq!(
        p,
        vec![(&b"a.bin"[..], &b"x\r\n--y"[..]), (&b"b.bin"[..], &b""[..])]
    );
    assert!(parts(b"garbage").is_empty());
    assert!(parts(&m[..m.len() / 2]).len() <= 1);
    assert_eq!(
        strings(&[2, b'a', b'b', 1, b'c', 1, b'd']),
        vec![b"ab".to_vec(), b"d".to_vec()]
    );
}

/// By hand, against web-bml on a drill's stream (its clock fixed at the same time):
/// `STOCKTV_RUN=OUT/run STOCKTV_AT=UNIX STOCKTV_HOUSEHOLDS=236,12 cargo test -p evac-drills --lib
/// stocktv::tests::pages_of_a_drill_stream -- --ignored --nocapture`.
#[test]
#[ignore = "a drill's stream, by hand"]
fn pages_of_a_drill_stream() {
    let run = std::path::PathBuf::from(std::env::var("STOCKTV_RUN").unwrap());
    let at: i64 = std::env::var("STOCKTV_AT").unwrap().parse().unwrap();
    let town = Town::load(run.join("town.geojson")).unwrap();
    let mut tv = StockTvs::new(town.shelters.iter().map(|s| (s.id, s.name.as_str())), at);
    let ts = std::fs::read(run.join("broadcast.ts")).unwrap();
    let mut changed = Vec::new();
    for p in ts.chunks_exact(188) {
        tv.feed(p, &mut changed);
    }
    for h in std::env::var("STOCKTV_HOUSEHOLDS").unwrap().split(',') {
        let h: u32 = h.parse().unwrap();
        let page = tv.page(h);
        let shelter = match page {
            Page::Order(on) => town.shelter(on.shelter.0).map(|s| s.name.clone()),
            _ => None,
        };
        println!("household {h}: {page:?} {shelter:?}");
    }
}
