//! The service: the head-end's check, the tables it keeps, the muxer and inserter airing it.

use super::*;
use crate::carousel::Carousel;
use crate::mux::{Generator, MuxConfig, PACKET_BITS, pid_of};
use crate::psi::ServiceLayout;
use crate::receiver::TrustedKey;
use evac_maps::LonLat;
use evac_protocol::{AlertLevel, SecretKey, Slug};

fn service(hq: &SecretKey) -> BmlService {
    let dir = Directory::new((1..=100).map(|h| (h, LonLat::new(134.0, 33.0))), []);
    let v = Verifier::new(
        vec![TrustedKey::always(hq.public())],
        Slug::new("minato").unwrap(),
        120,
    );
    BmlService::new(BmlConfig::default(), v, dir, Some(1_000)).unwrap()
}

#[test]
fn a_group_with_a_forged_section_keeps_what_it_had() {
    let hq = SecretKey::from_seed(&[1; 32]);
    let mut s = service(&hq);
    let good = verify::tests::signed(&hq, "minato", 1_000);
    assert_eq!(s.apply_set(&good, 1_000).unwrap(), vec![AREA_MODULE_BASE]);
    let version = s.carousel().module(AREA_MODULE_BASE).unwrap().version;
    let forged = verify::tests::signed(&SecretKey::from_seed(&[9; 32]), "minato", 1_001);
    assert!(s.apply_set(&forged, 1_001).unwrap().is_empty());
    assert_eq!(s.rejected().key, 1);
    assert_eq!(
        s.carousel().module(AREA_MODULE_BASE).unwrap().version,
        version
    );
    // An empty set for the group: nothing in force, the table says so.
    assert_eq!(
        s.apply_group(0, &[], 1_002).unwrap(),
        vec![AREA_MODULE_BASE]
    );
    assert_eq!(row(&s, 42)[0], 0, "no order");
    // Now a forged set with nothing checked in hand: cannot confirm, never "no order".
    assert_eq!(s.apply_set(&forged, 1_003).unwrap(), vec![AREA_MODULE_BASE]);
    assert_eq!(row(&s, 42)[0], table::UNCONFIRMED);
}

#[test]
fn a_replay_of_earlier_orders_never_rolls_a_tv_back() {
    let hq = SecretKey::from_seed(&[1; 32]);
    let mut s = service(&hq);
    let earlier = verify::tests::signed_version(&hq, "minato", 1_000, 1, AlertLevel::Level4);
    let later = verify::tests::signed_version(&hq, "minato", 1_010, 2, AlertLevel::Level5);
    s.apply_set(&earlier, 1_000).unwrap();
    let first = row(&s, 42);
    assert_eq!(s.apply_set(&later, 1_010).unwrap(), vec![AREA_MODULE_BASE]);
    let now = row(&s, 42);
    assert_ne!(now, first, "the raised level is on the table");
    // HQ's own earlier, validly signed sections, sent again: kept off and counted.
    assert!(s.apply_set(&earlier, 1_020).unwrap().is_empty());
    assert_eq!(s.rejected().replayed, 1);
    assert_eq!(row(&s, 42), now);
    // The same set again is no replay.
    assert!(s.apply_set(&later, 1_030).unwrap().is_empty());
    assert_eq!(s.rejected().replayed, 1);
}

#[test]
fn a_notice_expires_in_the_pages_minute_keys() {
    let hq = SecretKey::from_seed(&[1; 32]);
    let mut s = service(&hq);
    // Issued 2026-12-06T09:30Z, for an hour.
    let t = 1_796_549_400;
    s.apply_set(&verify::tests::signed(&hq, "minato", t), t)
        .unwrap();
    let notices = part(&s, 42, "notices.bin");
    let expires = u32::from_be_bytes(notices[2..6].try_into().unwrap());
    assert_eq!(expires, table::minute_key(t + 3_600));
}

/// Part `name` of household `h`'s area module, as aired.
fn part(s: &BmlService, h: u32, name: &str) -> Vec<u8> {
    let m = s.carousel().module(s.module_of(h)).unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&m.data[..]), &mut body)
        .unwrap();
    let at = body
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .unwrap();
    let rest = &body[at..];
    let start = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let end = rest[start..]
        .windows(17)
        .position(|w| w == b"\r\n--evac-bml-part")
        .unwrap();
    rest[start..start + end].to_vec()
}

/// Household `h`'s row of its area's orders table, as aired.
fn row(s: &BmlService, h: u32) -> [u8; 4] {
    part(s, h, "orders.bin")[(h % s.area_size()) as usize * 4..][..4]
        .try_into()
        .unwrap()
}

#[test]
fn the_muxer_airs_the_carousel_within_its_budget_and_announces_it() {
    let hq = SecretKey::from_seed(&[1; 32]);
    let layout = ServiceLayout {
        data_pid: Some(DEFAULT_DATA_PID),
        ..ServiceLayout::default()
    };
    let cfg = MuxConfig {
        layout,
        bitrate: 2_000_000,
        overlay_bitrate: 300_000,
        transport_stream_id: 1,
        start_unix: 1_000,
    };
    let mut g = Generator::new(cfg.clone(), Carousel::new()).unwrap();
    g.ours().set_bml(service(&hq), 600_000).unwrap();
    let per_s = 2_000_000 / PACKET_BITS;
    let data = (0..per_s)
        .filter(|_| pid_of(&g.next_packet()) == DEFAULT_DATA_PID)
        .count() as u64;
    let budget = 600_000 / PACKET_BITS;
    assert!(
        data <= budget + 8 && data + 2 >= budget,
        "{data} vs {budget}"
    );
    let pmt = crate::psi::read_pmt(&layout.pmt(0, &[]).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(pmt.overlay_pid, layout.overlay_pid);
    // Without a data PID, or without a bitrate: refused.
    let mut g = Generator::new(
        MuxConfig {
            layout: ServiceLayout::default(),
            ..cfg.clone()
        },
        Carousel::new(),
    )
    .unwrap();
    assert!(g.ours().set_bml(service(&hq), 600_000).is_err());
    let mut g = Generator::new(cfg, Carousel::new()).unwrap();
    assert!(g.ours().set_bml(service(&hq), 0).is_err());
}

#[test]
fn an_input_must_have_room_for_the_carousel() {
    use crate::error::Error;
    use crate::insert::Inserter;
    let hq = SecretKey::from_seed(&[1; 32]);
    // The input: a 2 Mbit/s programme of its own, mostly null packets.
    let input_cfg = MuxConfig {
        layout: ServiceLayout {
            program: 1,
            pmt_pid: 0x100,
            overlay_pid: 0x101,
            pcr_pid: Some(0x102),
            data_pid: None,
        },
        bitrate: 2_000_000,
        overlay_bitrate: 100_000,
        transport_stream_id: 9,
        start_unix: 1_000,
    };
    let mut src = Generator::new(input_cfg, Carousel::new()).unwrap();
    let input: Vec<_> = (0..3_000).map(|_| src.next_packet()).collect();
    let ours = MuxConfig {
        layout: ServiceLayout {
            data_pid: Some(DEFAULT_DATA_PID),
            ..ServiceLayout::default()
        },
        bitrate: 2_000_000,
        overlay_bitrate: 100_000,
        transport_stream_id: 1,
        start_unix: 1_000,
    };
    let run = |data: u64| {
        let mut ins = Inserter::new(ours.clone(), Carousel::new(), Some(2_000_000)).unwrap();
        ins.ours().set_bml(service(&hq), data).unwrap();
        let mut out = Vec::new();
        let mut data_packets = 0;
        for p in &input {
            ins.push(p, &mut out)?;
            data_packets += out
                .drain(..)
                .filter(|q| pid_of(q) == DEFAULT_DATA_PID)
                .count();
        }
        Ok::<usize, Error>(data_packets)
    };
    assert!(run(500_000).unwrap() > 0);
    assert!(matches!(run(1_900_000), Err(Error::TooFewNulls { .. })));
}
