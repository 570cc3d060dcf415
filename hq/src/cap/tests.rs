use super::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cap");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{name}")).unwrap()
}

#[test]
fn alert_update_and_cancel_parse() {
    let a = parse(&read("tsunami-alert.xml"), "a.xml").unwrap();
    assert!(a.drill);
    let CapAction::Alert(n) = &a.action else {
        panic!("{a:?}")
    };
    assert_eq!((n.hazard, n.level), (Hazard::Tsunami, AlertLevel::Level4));
    assert_eq!(
        n.area.polygons[0][0],
        [141.950, 39.630],
        "CAP is lat,lon; areas are lon,lat"
    );
    assert_eq!(n.expires - n.issued, 6 * 3600);
    assert_eq!(n.cap.as_ref().unwrap().identifier, "JMA-TSUNAMI-0001");
    let u = parse(&read("tsunami-update.xml"), "u.xml").unwrap();
    let CapAction::Update { notice, references } = &u.action else {
        panic!()
    };
    assert_eq!(notice.level, AlertLevel::Level5);
    assert_eq!(references[0].identifier, "JMA-TSUNAMI-0001");
    let c = parse(&read("tsunami-cancel.xml"), "c.xml").unwrap();
    let CapAction::Cancel { references } = &c.action else {
        panic!()
    };
    assert_eq!(references.len(), 2);
}

#[test]
fn circles_and_zone_geocodes_make_areas() {
    let text = read("tsunami-alert.xml").replace(
        "<polygon>39.630,141.950 39.630,141.980 39.650,141.980 39.650,141.950 39.630,141.950</polygon>",
        "<circle>39.64,141.97 1.5</circle><geocode><valueName>evac:zone</valueName><value>1</value></geocode>",
    );
    let CapAction::Alert(n) = parse(&text, "x").unwrap().action else {
        panic!()
    };
    assert_eq!(n.area.circles[0].radius_m, 1500.0);
    assert_eq!(n.area.zones, [1]);
}

/// Each malformed or unsupported message is refused with a line naming the element.
#[test]
fn malformed_messages_name_the_element() {
    let good = read("tsunami-alert.xml");
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace(
                "<polygon>39.630,141.950 39.630",
                "<polygon>39.630;141.950 39.630",
            ),
            "<alert/info/area/polygon>",
        ),
        (
            good.replace(" 39.630,141.950</polygon>", " 39.631,141.950</polygon>"),
            "<alert/info/area/polygon>",
        ),
        (
            good.replace("<status>Exercise</status>", "<status>Draft</status>"),
            "<alert/status>",
        ),
        (
            good.replace("<status>Exercise</status>", "<status>Maybe</status>"),
            "<alert/status>",
        ),
        (
            good.replace("<msgType>Alert</msgType>", "<msgType>Ack</msgType>"),
            "<alert/msgType>",
        ),
        (
            good.replace("<msgType>Alert</msgType>", "<msgType>Update</msgType>"),
            "<alert/references>",
        ),
        (
            good.replace("<identifier>JMA-TSUNAMI-0001</identifier>", ""),
            "<alert/identifier>",
        ),
        (
            good.replace("2036-11-18T05:00:00+09:00", "yesterday"),
            "<alert/sent>",
        ),
        (
            good.replace("<severity>Severe</severity>", "<severity>Minor</severity>"),
            "<alert/info/severity>",
        ),
        (
            good.replace("津波警報 (Tsunami Warning)", "Air quality"),
            "<alert/info/event>",
        ),
        (good.replace("cap:1.2", "cap:1.1"), "<alert>"),
        (good.replace("</info>", ""), "<alert"),
        (
            good.replace("<area>", "<area><circle>x</circle>"),
            "<alert/info/area/circle>",
        ),
        (
            good.replace(
                "<expires>2036-11-18T11:00:00+09:00</expires>",
                "<expires>soon</expires>",
            ),
            "<alert/info/expires>",
        ),
        ("not xml at all".into(), "<"),
        ("<alert/>".into(), "<alert>"),
    ];
    for (text, element) in cases {
        let err = parse(&text, "bad.xml").unwrap_err().to_string();
        assert!(err.starts_with("cap bad.xml:"), "{err}");
        assert!(err.contains(element), "expected {element} in {err:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,300}") {
        let _ = parse(&s, "p.xml");
    }

    #[test]
    fn mutated_alerts_never_panic(cut in 0usize..900, junk in "[<>&;/a-z0-9 ,.]{0,12}") {
        let good = read("tsunami-alert.xml");
        let at = good.char_indices().map(|(i, _)| i).nth(cut.min(good.chars().count() - 1)).unwrap_or(0);
        let text = format!("{}{}{}", &good[..at], junk, &good[at..]);
        let _ = parse(&text, "p.xml");
    }
}
