//! The postal-code table, the districts' summaries and module 0x0002's encoding.

use super::*;
use crate::bml::table::ShelterInfo;
use crate::bml::{BmlConfig, BmlService, Verifier, verify};
use crate::receiver::TrustedKey;
use evac_maps::LonLat;
use evac_protocol::{Hazard, SecretKey, Slug};

const CSV: &str = "\u{feff}zipcode,district\n# synthetic\n456-0001,港町本町\n4560002,港町北浜\n\n4560002,港町北浜\n4560003,港町\n";

#[test]
fn the_table_parses_and_addresses_take_the_longest_district() {
    let codes = PostalCodes::parse(CSV).unwrap();
    assert_eq!(codes.zip_of("港町本町 1-2"), Some(4_560_001));
    assert_eq!(codes.zip_of("港町北浜 9-19"), Some(4_560_002));
    assert_eq!(
        codes.zip_of("港町南浦 3-3"),
        Some(4_560_003),
        "the town's catch-all"
    );
    assert_eq!(codes.zip_of("山町 1"), None);
    for bad in [
        "12345,港町",
        "4560001",
        "abcdefg,港町",
        "4560001,",
        "1,a\n2,b",
    ] {
        assert!(PostalCodes::parse(bad).is_err(), "{bad:?}");
    }
    let two = PostalCodes::parse("4560001,港町\n4560009,港町\n").unwrap_err();
    assert!(two.to_string().contains("line 2"), "{two}");
}

/// Households 40..=45 in 港町本町 (0000001, with 港町中里), 50..=51 in 港町北浜 (4560002),
/// 60 in no district; HQ orders household 42 to shelter 3 at level 4 (tsunami).
fn service(hq: &SecretKey) -> BmlService {
    let codes =
        PostalCodes::parse("0000001,港町本町\n0000001,港町中里\n4560002,港町北浜\n").unwrap();
    let mut homes: Vec<(u32, String)> = (40..=45).map(|h| (h, format!("港町本町 {h}"))).collect();
    homes.extend((50..=51).map(|h| (h, format!("港町北浜 {h}"))));
    homes.push((60, "山町 1".into()));
    let areas = PostalAreas::new(&codes, homes.iter().map(|(h, a)| (*h, Some(a.as_str()))));
    assert_eq!(areas.unmatched, 1);
    let shelter = ShelterInfo {
        name: "本町小学校".into(),
        address: "港町本町 1".into(),
        location: LonLat::new(134.0, 33.0),
    };
    let dir = Directory::new(
        homes.iter().map(|(h, _)| (*h, LonLat::new(134.0, 33.0))),
        [(3, shelter)],
    );
    let v = Verifier::new(
        vec![TrustedKey::always(hq.public())],
        Slug::new("minato").unwrap(),
        120,
    );
    BmlService::new(BmlConfig::default(), v, dir, Some(1_000))
        .unwrap()
        .with_postal(areas)
        .unwrap()
}

/// Module 0x0002 as aired: (zips.bin rows, zsh.bin names).
#[allow(clippy::type_complexity)]
fn aired(s: &BmlService) -> (Vec<(u32, [u8; 3], u32, u16, u8, String)>, Vec<String>) {
    let m = s.carousel().module(POSTAL_MODULE).unwrap();
    assert!(m.original_size.is_some(), "zlib");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&m.data[..]), &mut body)
        .unwrap();
    let part = |name: &str| {
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
    };
    let text = |b: &[u8]| encoding_rs::EUC_JP.decode(b).0.into_owned();
    let (zips, zsh) = (part("zips.bin"), part("zsh.bin"));
    let mut rows = Vec::new();
    let mut at = 0;
    while at < zips.len() {
        let r = &zips[at..];
        let len = usize::from(r[14]);
        rows.push((
            u32::from_be_bytes(r[..4].try_into().unwrap()),
            [r[4], r[5], r[6]],
            u32::from_be_bytes(r[7..11].try_into().unwrap()),
            u16::from_be_bytes(r[11..13].try_into().unwrap()),
            r[13],
            text(&r[15..15 + len]),
        ));
        at += 15 + len;
    }
    let mut names = Vec::new();
    let mut at = 0;
    while at < zsh.len() {
        let len = usize::from(zsh[at]);
        names.push(text(&zsh[at + 1..at + 1 + len]));
        at += 1 + len;
    }
    (rows, names)
}

#[test]
fn the_module_says_per_postal_code_what_is_ordered_there() {
    let hq = SecretKey::from_seed(&[1; 32]);
    let mut s = service(&hq);
    // Nothing ordered yet: both codes, level 0, no shelters; the districts by name.
    let (rows, names) = aired(&s);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 1);
    assert_eq!(rows[0].1, [0, 0, 0]);
    assert_eq!(rows[0].2, NO_EXPIRY);
    assert_eq!(rows[0].5, "港町中里・港町本町");
    assert_eq!(rows[1].0, 4_560_002);
    assert!(names.is_empty());

    // Household 42 (港町本町) at level 4 to shelter 3: its district says so, with the shelter.
    let set = verify::tests::signed(&hq, "minato", 1_000);
    let changed = s.apply_set(&set, 1_000).unwrap();
    assert!(changed.contains(&POSTAL_MODULE), "{changed:?}");
    let (rows, names) = aired(&s);
    assert_eq!(rows[0].1, [4, Hazard::Tsunami.code(), 0]);
    assert_eq!(rows[0].2, minute_key(1_000 + 3_600));
    assert_eq!((rows[0].3, rows[0].4), (0, 1));
    assert_eq!(names, vec!["本町小学校".to_owned()]);
    assert_eq!(rows[1].1, [0, 0, 0], "港町北浜 has no order");
    // The same set again: the module does not change.
    assert!(!s.apply_set(&set, 1_001).unwrap().contains(&POSTAL_MODULE));

    // A forged set with nothing checked in hand: cannot confirm, never "no order".
    s.apply_group(0, &[], 1_002).unwrap();
    let forged = verify::tests::signed(&SecretKey::from_seed(&[9; 32]), "minato", 1_003);
    s.apply_set(&forged, 1_003).unwrap();
    let (rows, names) = aired(&s);
    assert_eq!(rows[0].1[0], UNCONFIRMED);
    assert_eq!(rows[1].1[0], UNCONFIRMED);
    assert!(names.is_empty());
    // No household number or resident's address on air.
    let m = s.carousel().module(POSTAL_MODULE).unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&m.data[..]), &mut body)
        .unwrap();
    let addr = crate::bml::table::euc_jp("港町本町 42");
    assert!(!body.windows(addr.len()).any(|w| w == addr));
}

#[test]
fn a_district_sums_up_its_households() {
    use evac_protocol::onair::pack_group;
    use evac_protocol::overlay::{OverlayBatch, OverlayRecord};
    use evac_protocol::{AlertLevel, HouseholdId, MessageKind, ShelterId};
    let hq = SecretKey::from_seed(&[1; 32]);
    let mut s = service(&hq);
    let header = OverlayBatch {
        group: 0,
        message_id: 1,
        kind: MessageKind::Alert,
        references: None,
        notice: 1,
        hazard: Hazard::Tsunami,
        drill: true,
        issued: 1_000,
        expires: 5_000,
        onset: None,
        template: 0,
        town: Slug::new("minato").unwrap(),
        key_id: [0; 8],
        records: vec![],
    };
    let r = |h: u32, level: Option<AlertLevel>, shelter: u32| OverlayRecord {
        household: HouseholdId(h),
        level,
        shelter: ShelterId(shelter),
        version: 1,
        needs_help: false,
    };
    let first = vec![
        r(40, Some(AlertLevel::Level3), 7),
        r(41, Some(AlertLevel::Level3), 3),
        r(42, Some(AlertLevel::Level3), 3),
        r(50, None, 0),
    ];
    let mut second = header.clone();
    second.message_id = 2;
    second.hazard = Hazard::Flood;
    second.drill = false;
    second.expires = 4_000;
    let set = pack_group(
        0,
        &[
            (header, first),
            (
                second,
                vec![r(43, Some(AlertLevel::Level4), ShelterId::NONE.0)],
            ),
        ],
        &hq,
    )
    .unwrap();
    s.apply_set(&set, 1_000).unwrap();
    let (rows, names) = aired(&s);
    // Level 4 from the flood order, not all drills, the earliest expiry; shelter 3 (two
    // households) before shelter 7 (one, no name in the directory).
    assert_eq!(rows[0].1, [4, Hazard::Flood.code(), 0]);
    assert_eq!(rows[0].2, minute_key(4_000));
    assert_eq!(rows[0].4, 2);
    assert_eq!(names, vec!["本町小学校".to_owned(), "No. 7".to_owned()]);
    // 港町北浜: its one order lifted.
    assert_eq!(rows[1].1[0], LIFTED);
    assert_eq!(rows[1].4, 0);
}
