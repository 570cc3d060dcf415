//! Exports from HQ's store: a CSV of every resident's status, PFIF 1.4 person and note records
//! for person-finder services, and the after-action log of every order, event, command and
//! rejection in time order.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use evac_maps::Town;
use evac_protocol::{EventKind, ResidentStatus, SecretKey, ShelterId, TownId};

use crate::core::Hq;
use crate::error::HqError;
use crate::keys::KeyRing;
use crate::store::Store;

/// Opens a data directory's store read-only in spirit (nothing is written but the schema).
pub fn open(data_dir: &Path, town_file: Option<&Path>, now_ms: u64) -> Result<Hq, HqError> {
    let path = data_dir.join("hq.sqlite");
    // An export reads: a mistyped --data must not leave an empty store behind.
    if !path.is_file() {
        return Err(HqError::Field {
            field: "--data".into(),
            path: data_dir.to_owned(),
            message: "no HQ store (hq.sqlite) here; give HQ's data_dir".into(),
        });
    }
    let store = Store::open(&path)?;
    let town_path = match town_file {
        Some(p) => p.to_owned(),
        None => store
            .meta("town_file")?
            .map(Into::into)
            .ok_or_else(|| HqError::Config {
                path: data_dir.to_owned(),
                message: "the store does not say which town file it served; pass --town".into(),
            })?,
    };
    let slug = store
        .meta("town")?
        .and_then(|t| TownId::new(&t).ok())
        .ok_or_else(|| HqError::Config {
            path: data_dir.to_owned(),
            message: "the store does not say which town it served".into(),
        })?;
    let town = Town::load(&town_path)?;
    // The export signs nothing; a throwaway key satisfies the constructor.
    let key = SecretKey::generate()?;
    Hq::open(
        slug,
        Arc::new(town),
        store,
        KeyRing::default(),
        key,
        u64::MAX / 2,
        now_ms,
    )
}

/// RFC 3339 UTC with seconds (PFIF's format).
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(ms / 1000).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn rfc3339_ms(ms: u64) -> String {
    let s = rfc3339(ms);
    format!("{}.{:03}Z", s.trim_end_matches('Z'), ms % 1000)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn status_name(s: ResidentStatus) -> (&'static str, Option<u32>) {
    match s {
        ResidentStatus::NotOrdered => ("not-ordered", None),
        ResidentStatus::UnderOrder => ("under-order", None),
        ResidentStatus::Unaccounted => ("unaccounted", None),
        ResidentStatus::Arrived { shelter } => ("arrived", Some(shelter.0)),
        ResidentStatus::CheckedOut { shelter } => ("checked-out", Some(shelter.0)),
        ResidentStatus::Found => ("found", None),
    }
}

/// Every resident: id, household, name, status, shelter, the order's shelter and version.
pub fn csv(hq: &Hq, town: &Town, now_ms: u64) -> String {
    let p = hq.current_picture(now_ms);
    let first = hq.board().first_resident().0;
    let mut out = String::from(
        "resident,household,name,needs_help,status,shelter,shelter_name,ordered_shelter,order_version\n",
    );
    for (hi, h) in town.households.iter().enumerate() {
        let order = hq.book().assignment(hi);
        for m in &h.members {
            let status = p
                .statuses
                .get((m.resident - first) as usize)
                .copied()
                .unwrap_or(ResidentStatus::NotOrdered);
            let (name, shelter) = status_name(status);
            let shelter_name = shelter
                .and_then(|s| town.shelter(s))
                .map(|s| s.name.as_str())
                .unwrap_or("");
            let ordered = order
                .map(|a| {
                    // No shelter with room yet: the order says evacuate, with shelter 0.
                    a.shelter
                        .map_or(ShelterId::NONE.0, |s| hq.book().town().sh_id[s as usize])
                })
                .map(|s| s.to_string())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                m.resident,
                h.id,
                csv_field(&m.name),
                m.needs_help,
                name,
                shelter.map(|s| s.to_string()).unwrap_or_default(),
                csv_field(shelter_name),
                ordered,
                if order.is_some() {
                    hq.book().version(hi).to_string()
                } else {
                    String::new()
                },
            );
        }
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// PFIF 1.4: a person record for every resident with news (a check-in or out, or a found
/// mark), with a note for each: a check-in is `believed_alive` with the shelter as last known
/// location.
pub fn pfif(hq: &Hq, town: &Town, now_ms: u64) -> Result<String, HqError> {
    let domain = format!("evac.{}.example", hq.town_id());
    let registry = town.registry();
    let mut notes: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for e in hq.store().events()? {
        let ev = e.event;
        let resident = ev
            .resident
            .filter(|r| hq.board().knows(*r))
            .or_else(|| ev.card.as_ref().and_then(|c| hq.board().resident_of(c)));
        let Some(r) = resident else { continue };
        let shelter = town
            .shelter(ev.id.shelter.0)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("shelter {}", ev.id.shelter));
        let (status, text) = match ev.kind {
            EventKind::CheckIn | EventKind::StaffRegistration => {
                ("believed_alive", format!("Checked in at {shelter}."))
            }
            EventKind::CheckOut => ("", format!("Checked out of {shelter}.")),
            EventKind::Correction => continue,
        };
        let mut n = String::new();
        let _ = writeln!(n, "    <pfif:note>");
        let _ = writeln!(
            n,
            "      <pfif:note_record_id>{domain}/note.{}-{}</pfif:note_record_id>",
            ev.id.shelter, ev.id.seq
        );
        let _ = writeln!(
            n,
            "      <pfif:person_record_id>{domain}/person.{}</pfif:person_record_id>",
            r.0
        );
        let _ = writeln!(
            n,
            "      <pfif:entry_date>{}</pfif:entry_date>",
            rfc3339(e.received_ms)
        );
        let _ = writeln!(
            n,
            "      <pfif:author_name>{}</pfif:author_name>",
            xml(&shelter)
        );
        let _ = writeln!(
            n,
            "      <pfif:source_date>{}</pfif:source_date>",
            rfc3339(ev.at.wall_ms)
        );
        if !status.is_empty() {
            let _ = writeln!(n, "      <pfif:status>{status}</pfif:status>");
        }
        let _ = writeln!(
            n,
            "      <pfif:last_known_location>{}</pfif:last_known_location>",
            xml(&shelter)
        );
        let _ = writeln!(n, "      <pfif:text>{}</pfif:text>", xml(&text));
        let _ = writeln!(n, "    </pfif:note>");
        notes.entry(r.0).or_default().push(n);
    }
    for (r, at, officer, note) in hq.store().found()? {
        let mut n = String::new();
        let _ = writeln!(n, "    <pfif:note>");
        let _ = writeln!(
            n,
            "      <pfif:note_record_id>{domain}/note.found-{}</pfif:note_record_id>",
            r.0
        );
        let _ = writeln!(
            n,
            "      <pfif:person_record_id>{domain}/person.{}</pfif:person_record_id>",
            r.0
        );
        let _ = writeln!(
            n,
            "      <pfif:entry_date>{}</pfif:entry_date>",
            rfc3339(at.wall_ms)
        );
        let _ = writeln!(
            n,
            "      <pfif:author_name>officer {}</pfif:author_name>",
            xml(&officer)
        );
        let _ = writeln!(
            n,
            "      <pfif:source_date>{}</pfif:source_date>",
            rfc3339(at.wall_ms)
        );
        let _ = writeln!(
            n,
            "      <pfif:author_made_contact>true</pfif:author_made_contact>"
        );
        let _ = writeln!(n, "      <pfif:status>believed_alive</pfif:status>");
        let _ = writeln!(n, "      <pfif:text>{}</pfif:text>", xml(&note));
        let _ = writeln!(n, "    </pfif:note>");
        notes.entry(r.0).or_default().push(n);
    }
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pfif:pfif xmlns:pfif=\"http://zesty.ca/pfif/1.4\">\n",
    );
    let source = format!("evac HQ {}", hq.town_id());
    for (r, ns) in notes {
        let Some((h, m)) = registry.resident(r) else {
            continue;
        };
        let (family, given) = m
            .name
            .split_once([' ', '\u{3000}'])
            .unwrap_or((m.name.as_str(), ""));
        let _ = writeln!(out, "  <pfif:person>");
        let _ = writeln!(
            out,
            "    <pfif:person_record_id>{domain}/person.{r}</pfif:person_record_id>"
        );
        let _ = writeln!(
            out,
            "    <pfif:entry_date>{}</pfif:entry_date>",
            rfc3339(now_ms)
        );
        let _ = writeln!(
            out,
            "    <pfif:author_name>{}</pfif:author_name>",
            xml(&source)
        );
        let _ = writeln!(
            out,
            "    <pfif:source_name>{}</pfif:source_name>",
            xml(&source)
        );
        let _ = writeln!(
            out,
            "    <pfif:source_date>{}</pfif:source_date>",
            rfc3339(now_ms)
        );
        let _ = writeln!(out, "    <pfif:full_name>{}</pfif:full_name>", xml(&m.name));
        let _ = writeln!(out, "    <pfif:given_name>{}</pfif:given_name>", xml(given));
        let _ = writeln!(
            out,
            "    <pfif:family_name>{}</pfif:family_name>",
            xml(family)
        );
        let _ = writeln!(out, "    <pfif:age>{}</pfif:age>", age_range(m.age_band));
        let _ = writeln!(out, "    <pfif:home_country>JP</pfif:home_country>");
        let _ = h;
        for n in ns {
            out.push_str(&n);
        }
        let _ = writeln!(out, "  </pfif:person>");
    }
    out.push_str("</pfif:pfif>\n");
    Ok(out)
}

fn age_range(b: evac_maps::AgeBand) -> &'static str {
    // PFIF's age is a number or a range "min-max".
    match b {
        evac_maps::AgeBand::Oldest => "85-120",
        other => other.as_str(),
    }
}

/// Every order, event, command and rejection, one line each, in time order.
pub fn after_action_log(hq: &Hq) -> Result<String, HqError> {
    let mut lines: Vec<(u64, u8, String)> = Vec::new();
    for o in hq.store().order_log()? {
        lines.push((
            o.at_ms,
            0,
            format!(
                "order message={} {} household={} shelter={} level={} hazard={} version={}",
                o.message_id, o.kind, o.household, o.shelter, o.level, o.hazard, o.version
            ),
        ));
    }
    for e in hq.store().events()? {
        let ev = e.event;
        let kind = serde_json::to_value(ev.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let who = match (ev.resident, &ev.card) {
            (Some(r), _) => format!("resident={r}"),
            (None, Some(_)) => "card=unregistered".to_owned(),
            (None, None) => "walk-in".to_owned(),
        };
        let flags = if ev.flags.is_empty() {
            String::new()
        } else {
            format!(" flags={:?}", ev.flags)
        };
        lines.push((
            e.received_ms,
            1,
            format!(
                "event {} {kind} {who} at={}{flags}",
                ev.id,
                rfc3339_ms(ev.at.wall_ms)
            ),
        ));
    }
    for c in hq.store().commands()? {
        lines.push((
            c.received_ms,
            2,
            format!(
                "command officer={} id={} ok={} {} -> {}",
                c.officer, c.id, c.ok, c.action, c.message
            ),
        ));
    }
    for (at, topic, reason) in hq.store().rejections()? {
        lines.push((at, 3, format!("rejected topic={topic} reason={reason}")));
    }
    lines.sort_by_key(|l| (l.0, l.1));
    Ok(lines
        .into_iter()
        .map(|(t, _, l)| format!("{} {l}\n", rfc3339_ms(t)))
        .collect())
}
