use super::*;
use proptest::prelude::*;

fn sample() -> OverlayBatch {
    OverlayBatch {
        group: 7,
        message_id: 17,
        kind: MessageKind::Update,
        references: Some(16),
        notice: 12,
        hazard: Hazard::Tsunami,
        drill: true,
        issued: 1_795_000_000,
        expires: 1_795_021_600,
        onset: Some(1_795_001_200),
        template: 2,
        town: crate::ids::Slug::new("minato").unwrap(),
        key_id: [0xAA; 8],
        records: vec![
            OverlayRecord {
                household: HouseholdId(455),
                level: Some(AlertLevel::Level4),
                shelter: ShelterId(3),
                version: 2,
                needs_help: true,
            },
            OverlayRecord {
                household: HouseholdId(456),
                level: Some(AlertLevel::Level5),
                shelter: ShelterId(12),
                version: 1,
                needs_help: false,
            },
            OverlayRecord {
                household: HouseholdId(600),
                level: None,
                shelter: ShelterId(3),
                version: 300,
                needs_help: false,
            },
        ],
    }
}

/// Bits written as annotated pieces of '0' and '1', padded with zeros to the byte.
fn bits(pieces: &[&str]) -> Vec<u8> {
    let all: String = pieces.concat();
    all.as_bytes()
        .chunks(8)
        .map(|c| {
            c.iter()
                .chain(std::iter::repeat(&b'0'))
                .take(8)
                .fold(0u8, |b, &d| (b << 1) | u8::from(d == b'1'))
        })
        .collect()
}

fn header_len() -> usize {
    OverlayBatch {
        records: vec![],
        ..sample()
    }
    .encode()
    .unwrap()
    .len()
        - 1 // the empty record area's count
}

#[test]
fn golden_bytes() {
    let bytes = sample().encode().unwrap();
    let header = concat!(
        "05",
        "1d", // update, references, drill, onset
        "0007",
        "00000011",
        "00000010",
        "0000000c", // notice 12
        "04",
        "c08df6d706",
        "e0a801",
        "f096f6d706", // onset
        "02",
        "066d696e61746f",
        "aaaaaaaaaaaaaaaa",
    );
    let records = bits(&[
        "00100",                            // 3 households
        "00000000000000000000000111000111", // the first, 455
        "000000010010010",                  // span 145 (to 600)
        "1",
        "00000",
        "1",    // between: 1 of 144 ids, gaps in EG(0): 456
        "1011", // levels: lifted, level 4, level 5
        "010",
        "00010",
        "111",
        "01100", // shelters: 2, EG(2): 3, then 12
        "011",
        "00001",
        "11",
        "10",
        "0000000100101011", // versions: 3, EG(1): 1, 2, 300
        "0",                // no runs: a symbol each
        "010",
        "0",
        "100", // 1 needs help, a bitmap of the 3: the first
        // radix 3 × 2 × 3 = 18; 7 (level 4, shelter 3, version 2), 5 (level 5,
        // shelter 12, version 1), 12 (lifted, shelter 3, version 300): 7 + 18 × 5 +
        // 324 × 12 = 3985 in 13 bits
        "0111110010001",
    ]);
    assert_eq!(
        hex::encode(&bytes),
        format!("{header}{}", hex::encode(&records))
    );
    assert_eq!(OverlayBatch::decode(&bytes).unwrap(), sample());
    // The same batch in format 4, as an HQ before the notice id and onset wrote it: still
    // read, its notice being its message id.
    let v4 = concat!(
        "04",
        "0d",
        "0007",
        "00000011",
        "00000010",
        "04",
        "c08df6d706",
        "e0a801",
        "02",
        "066d696e61746f",
        "aaaaaaaaaaaaaaaa",
    );
    let old = hex::decode(format!("{v4}{}", hex::encode(&records))).unwrap();
    let read = OverlayBatch::decode(&old).unwrap();
    assert_eq!(
        read,
        OverlayBatch {
            notice: 17,
            onset: None,
            ..sample()
        }
    );
    let hq = SecretKey::from_seed(&[7; 32]);
    let body = append_signature(old.clone(), SIGN_DOMAIN, &hq);
    assert_eq!(section_key_id(&body).unwrap(), [0xAA; 8]);
    // A reserved flag bit of format 4 is refused there.
    let mut bad = old.clone();
    bad[1] |= 0x10;
    assert!(OverlayBatch::decode(&bad).is_err());
}

#[test]
fn runs_golden() {
    let mut b = sample();
    b.records = (10..50)
        .map(|h| OverlayRecord {
            household: HouseholdId(h),
            level: Some(AlertLevel::Level4),
            shelter: ShelterId(if h < 40 { 3 } else { 4 }),
            version: 1,
            needs_help: h == 12 || h == 45,
        })
        .collect();
    let bytes = b.encode().unwrap();
    let expected = bits(&[
        "00000101001",                      // 40 households
        "00000000000000000000000000001010", // the first, 10
        "00000101000",                      // span 39: every id, no set
        "0010",                             // level 4
        "010",
        "00000",
        "00100",
        "1", // shelters: 2, EG(0): 3, then 4
        "1",
        "00001",
        "11", // versions: 1, EG(1): 1
        "1",
        "010",
        "1",
        "00101",
        "111101", // runs: 1 change, gaps in EG(5): position 30
        "011",
        "1",
        "00010",
        "110",
        "000100100", // 2 need help, gaps in EG(2): positions 2 and 35
        "10",        // radix 2, 2 symbols: shelter 3, then 4
    ]);
    assert_eq!(hex::encode(&bytes[header_len()..]), hex::encode(expected));
    assert_eq!(OverlayBatch::decode(&bytes).unwrap(), b);
    // 119 bits: the last one is padding, and must be zero.
    let mut padded = bytes.clone();
    let n = padded.len();
    padded[n - 1] |= 1;
    assert!(matches!(
        OverlayBatch::decode(&padded),
        Err(OverlayError::Invalid {
            field: "padding",
            ..
        })
    ));
}

#[test]
fn signed_section_golden_and_checks() {
    let hq = SecretKey::from_seed(&[7; 32]);
    let body = sign_section(&sample(), &hq).unwrap();
    crate::messages::golden::check("overlay_section.hex", &hex::encode(&body));
    let signed = OverlayBatch {
        key_id: hq.public().key_id(),
        ..sample()
    };
    assert_eq!(open_section(&body, &hq.public()).unwrap(), signed);
    let other = SecretKey::from_seed(&[8; 32]);
    assert_eq!(
        open_section(&body, &other.public()),
        Err(OverlayError::BadSignature)
    );
    let mut flipped = body.clone();
    flipped[10] ^= 0x01;
    assert_eq!(
        open_section(&flipped, &hq.public()),
        Err(OverlayError::BadSignature)
    );
    assert!(open_section(&body[..10], &hq.public()).is_err());
}

#[test]
fn errors_name_the_offset() {
    let bytes = sample().encode().unwrap();
    let e = OverlayBatch::decode(&bytes[..bytes.len() - 1]).unwrap_err();
    // The 13 bits of symbols start in the second-last byte.
    assert_eq!(
        e,
        OverlayError::Truncated {
            offset: bytes.len() - 2,
            field: "symbols"
        }
    );
    let mut bad = bytes.clone();
    bad[16] = 99;
    assert!(matches!(
        OverlayBatch::decode(&bad),
        Err(OverlayError::Invalid {
            offset: 16,
            field: "hazard",
            ..
        })
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        OverlayBatch::decode(&long),
        Err(OverlayError::Trailing {
            offset: bytes.len(),
            extra: 1
        })
    );
    assert!(e.to_string().contains(&format!("byte {}", bytes.len() - 2)));
}

/// A header and then `records` as the record area.
fn with_records(records: &[&str]) -> Vec<u8> {
    let mut b = OverlayBatch {
        records: vec![],
        ..sample()
    }
    .encode()
    .unwrap();
    b.truncate(header_len());
    b.extend(bits(records));
    b
}

#[test]
fn record_areas_that_lie_are_refused() {
    let first = "00000000000000000000000000000001";
    let refused = |pieces: &[&str], field: &str| match OverlayBatch::decode(&with_records(pieces)) {
        Err(OverlayError::Invalid { field: f, .. } | OverlayError::Truncated { field: f, .. }) => {
            assert_eq!(f, field, "{pieces:?}")
        }
        other => panic!("{pieces:?}: {other:?}"),
    };
    // 70,000 households: more than a section may hold.
    refused(&["0000000000000000100010001011100001"], "household count");
    // Two households over a span of zero ids, and one over a span of one.
    refused(&["011", first, "1"], "span");
    refused(&["010", first, "010"], "span");
    // The last id beyond 32 bits.
    refused(&["010", "11111111111111111111111111111111", "010"], "span");
    // No level.
    refused(&["010", first, "1", "0000"], "levels");
    // A palette longer than the households: 2 shelters for one household.
    refused(&["010", first, "1", "0010", "010"], "shelters");
    // Three households over 4 ids, the middle ones both claimed by a bitmap of 2.
    refused(&["00100", first, "00100", "0", "11"], "households");
    // A set's member beyond its slots: gaps in EG(0), the first at 5 of 2.
    refused(
        &["00100", first, "00100", "1", "00000", "00110"],
        "households",
    );
    // A symbol beyond the palettes: three households, three levels, one shelter and
    // one version: radix 3, three symbols in 5 bits, which may not reach 27.
    refused(
        &[
            "00100", first, "011", "1011", "1", "00000", "00100", "1", "00000", "010", "0", "1",
            "11111",
        ],
        "symbols",
    );
}

#[test]
fn unsorted_records_are_refused() {
    let mut b = sample();
    b.records.swap(0, 1);
    assert!(b.encode().is_err());
    assert!(b.pack(&b.records, 4000).is_err());
}

#[test]
fn neighbours_with_one_order_cost_bits_not_a_record_each() {
    let mut b = sample();
    b.records = (1..=1000)
        .map(|h| OverlayRecord {
            household: HouseholdId(h),
            level: Some(AlertLevel::Level4),
            shelter: ShelterId(h / 100 + 1),
            version: 1,
            needs_help: h % 17 == 0,
        })
        .collect();
    let per = (b.encode().unwrap().len() - header_len()) as f64 / 1000.0;
    // 10 changes of shelter and 58 who need help, a few bits each.
    assert!(per < 0.1, "{per} bytes a household");
}

#[test]
fn a_lone_household_costs_about_its_index_in_the_palette() {
    let mut b = sample();
    // Every other household, each to one of 200 shelters, no neighbour sharing: 7.64
    // bits of shelter and about 2 bits of "which ids" a household.
    let mut x = 12345u32;
    b.records = (0..3000)
        .map(|i| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            OverlayRecord {
                household: HouseholdId(1000 + 2 * i),
                level: Some(AlertLevel::Level4),
                shelter: ShelterId(100 + 3 * ((x >> 8) % 200)),
                version: 7,
                needs_help: false,
            }
        })
        .collect();
    let bits = 8.0 * (b.encode().unwrap().len() - header_len()) as f64 / 3000.0;
    assert!(
        (200f64.log2()..200f64.log2() + 2.5).contains(&bits),
        "{bits} bits a household"
    );
    assert_eq!(OverlayBatch::decode(&b.encode().unwrap()).unwrap(), b);
}

#[test]
fn key_id_is_read_before_verifying_and_must_match() {
    let hq = SecretKey::from_seed(&[7; 32]);
    let body = sign_section(&sample(), &hq).unwrap();
    assert_eq!(section_key_id(&body).unwrap(), hq.public().key_id());
    assert_eq!(
        open_section(&body, &hq.public()).unwrap().key_id,
        hq.public().key_id()
    );
    assert!(section_key_id(&body[..20]).is_err());
}

fn record() -> impl Strategy<Value = (u32, Option<AlertLevel>, u32, u32, bool)> {
    (
        prop_oneof![Just(1u32), 1u32..5000],
        prop_oneof![
            Just(None),
            Just(Some(AlertLevel::Level3)),
            Just(Some(AlertLevel::Level4)),
            Just(Some(AlertLevel::Level5))
        ],
        prop_oneof![Just(3u32), any::<u32>()],
        prop_oneof![Just(1u32), any::<u32>()],
        any::<bool>(),
    )
}

fn batch() -> impl Strategy<Value = OverlayBatch> {
    (
        any::<u16>(),
        any::<u32>(),
        0u8..3,
        proptest::option::of(any::<u32>()),
        0u8..8,
        any::<bool>(),
        0i64..4_000_000_000,
        0i64..1_000_000,
        any::<u16>(),
        proptest::collection::vec(record(), 0..200),
        any::<[u8; 8]>(),
        (any::<u32>(), proptest::option::of(0i64..4_000_000_000)),
    )
        .prop_map(
            |(
                group,
                message_id,
                k,
                references,
                h,
                drill,
                issued,
                dur,
                template,
                recs,
                key_id,
                (notice, onset),
            )| {
                let mut household = 0u32;
                let records = recs
                    .into_iter()
                    .map(|(step, level, shelter, version, needs_help)| {
                        household += step;
                        OverlayRecord {
                            household: HouseholdId(household),
                            level,
                            shelter: ShelterId(shelter),
                            version,
                            needs_help,
                        }
                    })
                    .collect();
                let kind =
                    [MessageKind::Alert, MessageKind::Update, MessageKind::Cancel][k as usize];
                OverlayBatch {
                    group,
                    message_id,
                    kind,
                    references,
                    notice,
                    hazard: Hazard::ALL[h as usize],
                    drill,
                    issued,
                    expires: issued + dur,
                    onset,
                    template,
                    town: crate::ids::Slug::new("minato").unwrap(),
                    key_id,
                    records,
                }
            },
        )
}

proptest! {
    #[test]
    fn round_trip(b in batch()) {
        let bytes = b.encode().unwrap();
        prop_assert_eq!(OverlayBatch::decode(&bytes).unwrap(), b);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = OverlayBatch::decode(&bytes);
        let _ = open_section(&bytes, &SecretKey::from_seed(&[1; 32]).public());
    }

    #[test]
    fn mutated_encodings_never_panic(b in batch(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = b.encode().unwrap();
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        let _ = OverlayBatch::decode(&bytes);
    }

    #[test]
    fn packing_fits_and_keeps_every_record(b in batch(), budget in 200usize..4084) {
        let parts = b.pack(&b.records, budget).unwrap();
        let mut all = Vec::new();
        for p in &parts {
            let len = p.encode().unwrap().len() + SIGNATURE_LEN;
            prop_assert!(len <= budget, "{len} > {budget}");
            all.extend(p.records.iter().cloned());
        }
        prop_assert_eq!(all, b.records.clone());
    }
}
