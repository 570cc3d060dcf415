//! Property tests for the two decoders: whatever the input, no panic, and every
//! error names a place; and a town survives a save/load round trip unchanged.

use evac_maps::{
    AgeBand, CardRef, GenerateParams, Hazard, HazardSet, Household, Language, LonLat, MapsError,
    Member, Shelter, Town, Zone, generate, gsi,
};
use proptest::prelude::*;

fn has_location(e: &MapsError) -> bool {
    match e {
        MapsError::Json { line, column, .. } => *line >= 1 && *column >= 1,
        MapsError::Feature { .. } | MapsError::Csv { .. } => true,
        MapsError::Osm { message, .. } => message.starts_with("byte "),
        MapsError::Io { .. } | MapsError::CreateDir { .. } | MapsError::Invalid { .. } => false,
    }
}

/// A small valid town as text, to mutate.
fn seed_text() -> String {
    let mut town = generate(&GenerateParams {
        households: 4,
        shelters: 2,
        seed: 11,
    });
    // A few roads: the whole network would make each case slow, not more varied.
    town.roads.truncate(3);
    town.to_geojson_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_carry_a_location(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Err(e) = Town::from_geojson_slice(&bytes, "fuzz.geojson") {
            prop_assert!(has_location(&e), "{e:?}");
            prop_assert!(e.to_string().starts_with("fuzz.geojson:"), "{e}");
        }
    }

    #[test]
    fn mutated_towns_never_panic_and_errors_carry_a_location(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)
    ) {
        let mut bytes = seed_text().into_bytes();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Err(e) = Town::from_geojson_slice(&bytes, "fuzz.geojson") {
            prop_assert!(has_location(&e), "{e:?}");
        }
    }

    #[test]
    fn arbitrary_csv_never_panics_and_errors_carry_a_line(
        rows in proptest::collection::vec(proptest::collection::vec(csv_field(), 0..18), 0..6),
        header in any::<bool>(),
    ) {
        let mut text = String::new();
        if header {
            text.push_str("NO,共通ID,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考\n");
        }
        for row in rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        match gsi::parse_csv(text.as_bytes(), "fuzz.csv") {
            Ok(shelters) => prop_assert!(shelters.iter().all(|s| s.location.is_valid())),
            Err(e) => {
                prop_assert!(matches!(e, MapsError::Csv { line, .. } if line >= 1), "{e:?}");
                prop_assert!(e.to_string().starts_with("fuzz.csv:"), "{e}");
            }
        }
    }

    #[test]
    fn arbitrary_csv_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = gsi::parse_csv(&bytes, "fuzz.csv") {
            prop_assert!(matches!(e, MapsError::Csv { .. }), "{e:?}");
        }
    }

    #[test]
    fn mutated_gsi_geojson_never_panics_and_errors_carry_a_location(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)
    ) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gsi/shiomihama_2.geojson");
        let mut bytes = std::fs::read(path).unwrap_or_default();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Err(e) = gsi::parse_geojson(&bytes, "fuzz.geojson") {
            prop_assert!(has_location(&e), "{e:?}");
        }
    }

    #[test]
    fn save_then_load_gives_the_same_town(town in town()) {
        let text = town.to_geojson_string();
        let back = Town::from_geojson_str(&text);
        prop_assert!(back.is_ok(), "{:?}", back.err());
        prop_assert_eq!(back.unwrap(), town);
    }
}

#[test]
fn save_then_load_through_a_file() {
    let town = generate(&GenerateParams {
        households: 50,
        shelters: 5,
        seed: 2,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.geojson");
    town.save(&path).unwrap();
    assert_eq!(Town::load(&path).unwrap(), town);
}

fn csv_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("1".to_owned()),
        Just("39.64".to_owned()),
        Just("141.95".to_owned()),
        Just("-999".to_owned()),
        Just("NaN".to_owned()),
        Just("\"a,b\"".to_owned()),
        Just("\"".to_owned()),
        Just("避難所".to_owned()),
        "[a-z0-9.]{0,6}",
    ]
}

fn lonlat() -> impl Strategy<Value = LonLat> {
    (-180.0f64..=180.0, -90.0f64..=90.0).prop_map(|(lon, lat)| LonLat::new(lon, lat))
}

fn hazard() -> impl Strategy<Value = Hazard> {
    prop::sample::select(Hazard::ALL.to_vec())
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 \"\\\\\u{3000}-\u{30ff}\u{4e00}-\u{4e20}]{0,12}"
}

fn town() -> impl Strategy<Value = Town> {
    let card = (
        proptest::collection::vec(any::<u8>(), 1..21),
        proptest::collection::vec(any::<u8>(), 1..9),
    )
        .prop_map(|(issuer_key_id, serial)| CardRef {
            issuer_key_id,
            serial,
        });
    let member = (
        text(),
        prop::sample::select(AgeBand::ALL.to_vec()),
        any::<bool>(),
        proptest::collection::vec(card, 0..3),
    );
    let household = (
        lonlat(),
        proptest::option::of(text()),
        0u8..3,
        proptest::collection::vec(member, 0..5),
    );
    let shelter = (
        text(),
        proptest::option::of(text()),
        lonlat(),
        any::<u32>(),
        proptest::option::of(0.0f64..1e6),
        proptest::collection::vec(hazard(), 0..8),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of("[A-Z0-9]{1,14}"),
    );
    // Three positions or more, not already closed, so the closed ring has at least four.
    let ring = proptest::collection::vec(lonlat(), 3..8)
        .prop_filter("open ring", |r| r.first() != r.last());
    let zone = (
        text(),
        hazard(),
        proptest::collection::vec(proptest::collection::vec(ring, 1..3), 1..3),
    );
    (
        proptest::collection::vec(household, 0..6),
        proptest::collection::vec(shelter, 0..4),
        proptest::collection::vec(zone, 0..3),
    )
        .prop_map(|(hs, ss, zs)| {
            let mut resident = 0u32;
            let mut serial_salt = 0u32;
            let households = hs
                .into_iter()
                .enumerate()
                .map(|(i, (location, address, lang, members))| Household {
                    id: i as u32 + 1,
                    location,
                    address,
                    language: [
                        Language::Japanese,
                        Language::English,
                        Language::EasyJapanese,
                    ][lang as usize],
                    members: members
                        .into_iter()
                        .map(|(name, age_band, needs_help, cards)| {
                            resident += 1;
                            let cards = cards
                                .into_iter()
                                .map(|mut c: CardRef| {
                                    // Keep cards unique across the town, as the rules require.
                                    serial_salt += 1;
                                    c.serial.extend(serial_salt.to_be_bytes());
                                    c
                                })
                                .collect();
                            Member {
                                resident,
                                name,
                                age_band,
                                needs_help,
                                cards,
                                kana: String::new(),
                                birth: None,
                                anpi_consent: false,
                            }
                        })
                        .collect(),
                })
                .collect();
            let shelters = ss
                .into_iter()
                .enumerate()
                .map(
                    |(
                        i,
                        (
                            name,
                            address,
                            location,
                            capacity,
                            floor_area_m2,
                            hz,
                            accessible,
                            open,
                            gsi_id,
                        ),
                    )| Shelter {
                        id: i as u32 + 1,
                        name,
                        address,
                        location,
                        capacity,
                        floor_area_m2,
                        hazards: hz.into_iter().collect::<HazardSet>(),
                        accessible,
                        open,
                        gsi_id,
                    },
                )
                .collect();
            let zones = zs
                .into_iter()
                .enumerate()
                .map(|(i, (name, hazard, polys))| {
                    let area = geo::MultiPolygon(
                        polys
                            .into_iter()
                            .map(|rings| {
                                let mut rings = rings.into_iter().map(|r| {
                                    geo::LineString::new(
                                        r.into_iter()
                                            .map(|p| geo::coord! { x: p.lon, y: p.lat })
                                            .collect(),
                                    )
                                });
                                let exterior =
                                    rings.next().unwrap_or_else(|| geo::LineString::new(vec![]));
                                geo::Polygon::new(exterior, rings.collect())
                            })
                            .collect(),
                    );
                    Zone {
                        id: i as u32 + 1,
                        name,
                        hazard,
                        area,
                    }
                })
                .collect();
            Town {
                households,
                shelters,
                zones,
                roads: Vec::new(),
                water: Vec::new(),
            }
        })
}
