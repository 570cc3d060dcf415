#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use super::*;
use evac_maps::{GenerateParams, generate};
use evac_protocol::{Assurance, CheckEvent, EventKind, ResidentId, SecretKey, ShelterId};

fn town() -> Town {
    generate(&GenerateParams {
        households: 60,
        shelters: 3,
        seed: 1,
    })
}

/// A consenting and a non-consenting resident, both checked in at shelter 1.
fn desk_with_taps() -> (AnpiDesk, Town, evac_maps::Member, evac_maps::Member) {
    let town = town();
    let members: Vec<&evac_maps::Member> =
        town.households.iter().flat_map(|h| &h.members).collect();
    let yes = (*members.iter().find(|m| m.anpi_consent).unwrap()).clone();
    let no = (*members.iter().find(|m| !m.anpi_consent).unwrap()).clone();
    let key = FamilyCodeKey::derive(&SecretKey::from_seed(&[1; 32]));
    let slug: TownId = "minato".parse().unwrap();
    let codes = [
        (key.hash(&slug, "11111-22222"), yes.resident),
        (key.hash(&slug, "33333-44444"), no.resident),
    ]
    .into_iter()
    .collect();
    let desk = AnpiDesk::new(
        slug,
        &town,
        FamilyCodeKey::derive(&SecretKey::from_seed(&[1; 32])),
        codes,
    );
    let tap = |seq, r: u32| {
        let e = CheckEvent {
            resident: Some(ResidentId(r)),
            assurance: Assurance::CardRead,
            ..CheckEvent::new(ShelterId(1), seq, 1_000, EventKind::CheckIn)
        };
        (e, 1_000)
    };
    desk.take(facts::Rows::of_events(vec![
        tap(1, yes.resident),
        tap(2, no.resident),
    ]));
    (desk, town, yes, no)
}

fn ask(kana: &str, birth: &str, code: &str) -> Ask {
    Ask {
        kana: kana.into(),
        birth: birth.into(),
        family_code: code.into(),
        lang: "en".into(),
    }
}

#[test]
fn a_consenting_resident_is_found_by_name_and_birth_or_by_code_and_nobody_else_is() {
    let (desk, town, yes, no) = desk_with_taps();
    let shelter = town.shelters[0].name.clone();
    let inside = Finding::CheckedIn {
        shelter,
        at_ms: 1_000,
    };
    let birth = yes.birth.unwrap().to_string();
    assert_eq!(desk.answer(&ask(&yes.kana, &birth, "")), inside);
    // In hiragana, without the space: the same person.
    let hira: String = yes
        .kana
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| match c {
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap(),
            c => c,
        })
        .collect();
    assert_eq!(desk.answer(&ask(&hira, &birth, "")), inside);
    assert_eq!(desk.answer(&ask("", "", "1111122222")), inside);
    // Not consenting, unknown, a wrong birth date, a wrong code: nothing.
    let no_birth = no.birth.unwrap().to_string();
    assert_eq!(desk.answer(&ask(&no.kana, &no_birth, "")), Finding::Nothing);
    assert_eq!(desk.answer(&ask("", "", "33333-44444")), Finding::Nothing);
    assert_eq!(
        desk.answer(&ask("ダレモ イナイ", "1950-01-01", "")),
        Finding::Nothing
    );
    assert_eq!(
        desk.answer(&ask(&yes.kana, "1900-01-01", "")),
        Finding::Nothing
    );
    assert_eq!(desk.answer(&ask("", "", "11111-22223")), Finding::Nothing);
    assert_eq!(
        desk.answer(&ask(&yes.kana, "not a date", "")),
        Finding::Nothing
    );
}

#[tokio::test]
async fn the_same_page_for_unknown_and_not_consenting_and_the_21st_query_is_refused() {
    use axum::body::Body;
    use std::net::Ipv4Addr;
    use tower::ServiceExt;
    let (desk, _, _, no) = desk_with_taps();
    let desk = Arc::new(desk);
    let post = |ip: u32, body: String| {
        let mut req = axum::http::Request::builder()
            .method("POST")
            .uri("/anpi")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut()
            .insert(crate::answers::server::Source(IpAddr::V4(Ipv4Addr::from(
                ip,
            ))));
        router(Arc::clone(&desk)).oneshot(req)
    };
    let read = |r: Result<Response, std::convert::Infallible>| async move {
        let r = match r {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = r.status().as_u16();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    };
    let form = |kana: &str, birth: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("kana", kana)
            .append_pair("birth", birth)
            .append_pair("family_code", "")
            .append_pair("lang", "en")
            .finish()
    };
    let birth = no.birth.unwrap().to_string();
    let (s1, not_consenting) = read(post(1, form(&no.kana, &birth)).await).await;
    // Another name of the same length, so the echoed bytes are alike.
    let other: String = no
        .kana
        .chars()
        .map(|c| if c == ' ' { ' ' } else { 'ア' })
        .collect();
    let (s2, unknown) = read(post(1, form(&other, &birth)).await).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        not_consenting.replace(&no.kana, "NAME"),
        unknown.replace(&other, "NAME")
    );
    assert!(unknown.contains("No information."));
    for _ in 2..QUERIES_PER_MINUTE {
        assert_eq!(read(post(1, form("ア", "2000-01-01")).await).await.0, 200);
    }
    let (s, page) = read(post(1, form("ア", "2000-01-01")).await).await;
    assert_eq!(s, 429, "{page}");
    assert!(page.contains("Try again after"), "{page}");
    // Another address is not held back.
    assert_eq!(read(post(2, form("ア", "2000-01-01")).await).await.0, 200);
}

/// A measurement, not a timed assertion: the median time of a query for a consenting
/// resident who tapped and for a name nobody has (`cargo test -p evac-hq --lib
/// anpi::tests::timing -- --nocapture`).
#[test]
fn timing_of_known_and_unknown_names_is_measured() {
    let (desk, _, yes, _) = desk_with_taps();
    let birth = yes.birth.unwrap().to_string();
    let known = ask(&yes.kana, &birth, "");
    let unknown = ask(&nobody(&yes.kana), &birth, "");
    let (mut k, mut u) = (Vec::new(), Vec::new());
    for _ in 0..5000 {
        for (q, out) in [(&known, &mut k), (&unknown, &mut u)] {
            let t = std::time::Instant::now();
            std::hint::black_box(desk.answer(std::hint::black_box(q)));
            out.push(t.elapsed().as_nanos());
        }
    }
    k.sort_unstable();
    u.sort_unstable();
    eprintln!(
        "anpi query, median of 5000: known consenting name {} ns, unknown name {} ns",
        k[k.len() / 2],
        u[u.len() / 2]
    );
    assert_ne!(desk.answer(&known), Finding::Nothing);
}

fn nobody(like: &str) -> String {
    like.chars()
        .map(|c| if c == ' ' { ' ' } else { 'ヲ' })
        .collect()
}
