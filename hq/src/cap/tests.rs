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
    assert_eq!((n.onset, n.effective), (None, None));
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

/// Issue 18 item 1: `<onset>` and `<effective>` are facts about the hazard, kept as such;
/// the expiry is the alert's `<expires>`.
#[test]
fn onset_and_effective_are_kept_not_taken_for_the_issue_time() {
    let text = read("tsunami-alert.xml").replace(
        "<expires>",
        "<effective>2036-11-18T05:05:00+09:00</effective>\
         <onset>2036-11-18T05:20:00+09:00</onset><expires>",
    );
    let CapAction::Alert(n) = parse(&text, "x").unwrap().action else {
        panic!()
    };
    let sent = parse_rfc3339("2036-11-18T05:00:00+09:00").unwrap();
    assert_eq!(n.onset, Some(sent + 20 * 60));
    assert_eq!(n.effective, Some(sent + 5 * 60));
    assert_eq!(n.expires, sent + 6 * 3600);
    let bad = text.replace("05:20:00+09:00</onset>", "soon</onset>");
    let err = parse(&bad, "x").unwrap_err().to_string();
    assert!(err.contains("<alert/info/onset>"), "{err}");
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

/// The attack of a 1 MB CAP of small elements: refused by count, in linear time.
#[test]
fn many_small_elements_are_refused_by_count() {
    let body = "<a/>".repeat(MAX_ELEMENTS + 1);
    let text = format!("<alert xmlns=\"{CAP12_NS}\">\n{body}\n</alert>");
    let err = parse(&text, "flat.xml").unwrap_err().to_string();
    assert!(err.contains("more than 10000 elements"), "{err}");
    let big = format!(
        "{}{}",
        good_padding(MAX_CAP_BYTES),
        read("tsunami-alert.xml")
    );
    let err = parse(&big, "big.xml").unwrap_err().to_string();
    assert!(err.contains("larger than"), "{err}");
}

fn good_padding(n: usize) -> String {
    format!("<!--{}-->", " ".repeat(n))
}

/// The attack of a CAP nested 100,000 deep: refused at the depth bound, no stack overflow.
#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let text = format!(
        "<alert xmlns=\"{CAP12_NS}\">{}{}</alert>",
        "<x>".repeat(depth),
        "</x>".repeat(depth)
    );
    let err = parse(&text, "deep.xml").unwrap_err().to_string();
    assert!(err.contains("nested deeper than 16"), "{err}");
    // Unclosed nesting too.
    let text = format!("<alert xmlns=\"{CAP12_NS}\">{}", "<x>".repeat(depth));
    assert!(parse(&text, "deep.xml").is_err());
}

mod hq {
    use std::sync::Arc;

    use evac_maps::{GenerateParams, generate};
    use evac_protocol::SecretKey;

    use super::super::*;
    use super::read;
    use crate::core::Hq;
    use crate::keys::KeyRing;
    use crate::store::Store;

    const NOW: u64 = 2_110_000_000_000; // 2036-11-11, before the test files expire

    fn open(dir: &std::path::Path) -> (Hq, String) {
        let town = generate(&GenerateParams {
            households: 60,
            shelters: 3,
            seed: 4,
        });
        let at = town.households[0].location;
        let hq = Hq::open(
            "minato".parse().unwrap(),
            Arc::new(town),
            Store::open(&dir.join("hq.sqlite")).unwrap(),
            KeyRing::default(),
            SecretKey::from_seed(&[2; 32]),
            60_000,
            NOW,
        )
        .unwrap();
        let circle = format!("<circle>{},{} 50</circle>", at.lat, at.lon);
        (hq, circle)
    }

    fn with_area(name: &str, circle: &str) -> String {
        let text = read(name);
        match (text.find("<polygon>"), text.find("</polygon>")) {
            (Some(a), Some(b)) => format!("{}{circle}{}", &text[..a], &text[b + 10..]),
            _ => text,
        }
    }

    fn senders() -> Vec<String> {
        vec!["jma@example.jp".into(), "pref@example.jp".into()]
    }

    #[test]
    fn a_sender_not_allowed_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (mut hq, circle) = open(d.path());
        let alert = with_area("tsunami-alert.xml", &circle);
        let err = take_in(&mut hq, &alert, "a.xml", &["other@example.jp".into()], NOW).unwrap_err();
        assert!(matches!(err, CapRefused::Sender { .. }), "{err}");
        assert!(
            err.to_string().contains("not in the config's cap_senders"),
            "{err}"
        );
        assert!(hq.book().notices().is_empty());
    }

    /// The attack: a Cancel from another sender naming a live alert's identifier; then the same
    /// Alert sent again, also after a restart.
    #[test]
    fn only_the_sender_cancels_and_an_alert_is_issued_once() {
        let d = tempfile::tempdir().unwrap();
        let (mut hq, circle) = open(d.path());
        let alert = with_area("tsunami-alert.xml", &circle);
        let (line, out) = take_in(&mut hq, &alert, "a.xml", &senders(), NOW).unwrap();
        assert!(!out.is_empty(), "{line}");
        let live = hq
            .notice_for_cap("jma@example.jp", "JMA-TSUNAMI-0001")
            .unwrap();
        let foreign = read("tsunami-cancel.xml").replace(
            "<sender>jma@example.jp</sender>",
            "<sender>pref@example.jp</sender>",
        );
        let err = take_in(&mut hq, &foreign, "c.xml", &senders(), NOW).unwrap_err();
        assert!(matches!(err, CapRefused::ForeignReference { .. }), "{err}");
        assert!(err.to_string().contains("own alerts"), "{err}");
        // Naming the identifier under the foreign sender's own name finds nothing either.
        let foreign = foreign.replace("jma@example.jp,JMA", "pref@example.jp,JMA");
        let err = take_in(&mut hq, &foreign, "c.xml", &senders(), NOW).unwrap_err();
        assert!(matches!(err, CapRefused::NoActiveReference { .. }), "{err}");
        assert!(err.to_string().contains("no active message"), "{err}");
        assert_eq!(
            hq.notice_for_cap("jma@example.jp", "JMA-TSUNAMI-0001"),
            Some(live),
            "still in force"
        );
        let err = take_in(&mut hq, &alert, "a2.xml", &senders(), NOW).unwrap_err();
        assert!(matches!(err, CapRefused::Again { .. }), "{err}");
        assert!(err.to_string().contains("already taken in"), "{err}");
        // The sender's own cancel lifts it; the alert sent again is still not issued again,
        // even by an HQ restarted over the same store.
        take_in(
            &mut hq,
            &read("tsunami-cancel.xml"),
            "c.xml",
            &senders(),
            NOW,
        )
        .unwrap();
        assert!(
            hq.notice_for_cap("jma@example.jp", "JMA-TSUNAMI-0001")
                .is_none()
        );
        drop(hq);
        let (mut hq, _) = open(d.path());
        let err = take_in(&mut hq, &alert, "a3.xml", &senders(), NOW).unwrap_err();
        assert!(matches!(err, CapRefused::Again { .. }), "{err}");
        assert!(err.to_string().contains("already taken in"), "{err}");
        let notices = hq.book().notices().len();
        assert_eq!(notices, 1, "no second notice");
    }

    /// Issue 18 item 1: an alert whose sender's clock runs 5 minutes fast and whose wave is
    /// expected in 20 minutes is dated by HQ's clock when HQ takes it in.
    #[test]
    fn the_order_is_dated_by_hqs_clock_not_the_alerts_times() {
        let d = tempfile::tempdir().unwrap();
        let (mut hq, circle) = open(d.path());
        let at = |ms: u64| {
            time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let alert = with_area("tsunami-alert.xml", &circle)
            .replace(
                "<sent>2036-11-18T05:00:00+09:00</sent>",
                &format!("<sent>{}</sent>", at(NOW + 300_000)),
            )
            .replace(
                "<expires>",
                &format!(
                    "<effective>{}</effective><onset>{}</onset><expires>",
                    at(NOW + 300_000),
                    at(NOW + 1_200_000)
                ),
            );
        take_in(&mut hq, &alert, "a.xml", &senders(), NOW).unwrap();
        let id = hq
            .notice_for_cap("jma@example.jp", "JMA-TSUNAMI-0001")
            .unwrap();
        let n = &hq.book().notices()[&id].notice;
        assert_eq!(n.issued, (NOW / 1000) as i64, "HQ's clock");
        assert_eq!(
            n.onset,
            Some((NOW / 1000) as i64 + 1200),
            "the wave, as said"
        );
        assert_eq!(n.effective, Some((NOW / 1000) as i64 + 300));
    }
}
