//! Exports from HQ's store: a CSV of every resident's status, PFIF 1.4 person and note records
//! for person-finder services, and the after-action log of every order, event, command and
//! rejection in time order.

use std::path::Path;
use std::sync::Arc;

use evac_maps::Town;
use evac_protocol::{CheckEvent, ResidentStatus, SecretKey, ShelterId, TownId};

use crate::core::Hq;
use crate::error::{ExportError, HqError};
use crate::keys::KeyRing;
use crate::store::Store;

mod anpi_csv;
mod pfif;
pub use anpi_csv::anpi_csv;
pub use pfif::pfif;

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

/// A free-text field as a spreadsheet must see it: text starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return would be taken for a formula (CSV injection), so it gets a leading
/// apostrophe, which spreadsheets show as text and do not evaluate.
fn neutral(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

fn status_name(s: ResidentStatus) -> (&'static str, Option<u32>) {
    match s {
        ResidentStatus::NotOrdered => ("not-ordered", None),
        ResidentStatus::UnderOrder => ("under-order", None),
        ResidentStatus::Unaccounted => ("unaccounted", None),
        ResidentStatus::Arrived {
            shelter,
            unverified: false,
        } => ("arrived", Some(shelter.0)),
        ResidentStatus::CheckedOut {
            shelter,
            unverified: false,
        } => ("checked-out", Some(shelter.0)),
        ResidentStatus::Arrived {
            shelter,
            unverified: true,
        } => ("arrived-unverified-card", Some(shelter.0)),
        ResidentStatus::CheckedOut {
            shelter,
            unverified: true,
        } => ("checked-out-unverified-card", Some(shelter.0)),
        ResidentStatus::Found => ("found", None),
    }
}

/// Every resident: id, household, name, status, shelter, the order's shelter and version,
/// and the household's latest answer from the TV beside the status it never changes: kind,
/// people, when HQ stored it (RFC 3339, HQ's clock) and what it is worth (always
/// `self-reported`, with `an officer must confirm` after too many wrong codes and `handled`
/// once an officer marked a need-help answer handled).
///
/// Written with the `csv` crate (RFC 4180 quoting of commas, quotes, `\r` and `\n`); names
/// are neutralised against spreadsheet formulas.
pub fn csv(hq: &Hq, town: &Town, now_ms: u64) -> Result<String, HqError> {
    let p = hq.current_picture(now_ms);
    let first = hq.board().first_resident().0;
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let bad = ExportError::Csv;
    w.write_record([
        "resident",
        "household",
        "name",
        "needs_help",
        "status",
        "shelter",
        "shelter_name",
        "ordered_shelter",
        "order_version",
        "tv_answer",
        "tv_answer_people",
        "tv_answer_at",
        "tv_answer_is",
    ])
    .map_err(bad)?;
    let answers: std::collections::HashMap<u32, &evac_protocol::HouseholdAnswer> =
        p.answers.iter().map(|a| (a.household, a)).collect();
    for (hi, h) in town.households.iter().enumerate() {
        let answer = answers.get(&h.id).copied();
        let answer_cells = [
            answer.map(|a| a.kind.name().to_owned()),
            answer.and_then(|a| a.people).map(|n| n.to_string()),
            answer.map(|a| rfc3339(a.at_ms)),
            answer.map(answer_worth),
        ]
        .map(Option::unwrap_or_default);
        let order = hq.book().assignment(hi);
        for m in &h.members {
            let status = p
                .statuses
                .get(m.resident.saturating_sub(first) as usize)
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
            let version = if order.is_some() {
                hq.book().version(hi).to_string()
            } else {
                String::new()
            };
            w.write_record([
                m.resident.to_string().as_str(),
                &h.id.to_string(),
                &neutral(&m.name),
                &m.needs_help.to_string(),
                name,
                &shelter.map(|s| s.to_string()).unwrap_or_default(),
                &neutral(shelter_name),
                &ordered,
                &version,
                &answer_cells[0],
                &answer_cells[1],
                &answer_cells[2],
                &answer_cells[3],
            ])
            .map_err(bad)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ExportError::CsvFlush(e.into_error()))?;
    Ok(
        String::from_utf8(bytes).map_err(|cause| ExportError::NotUtf8 {
            format: "csv",
            cause,
        })?,
    )
}

/// What a household's answer from the TV is worth, for the CSV: never more than
/// self-reported.
fn answer_worth(a: &evac_protocol::HouseholdAnswer) -> String {
    let mut worth = "self-reported".to_owned();
    if a.needs_confirmation && a.confirmed.is_none() {
        worth += "; an officer must confirm";
    }
    if a.handled.is_some() {
        worth += "; handled";
    }
    worth
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
    let describe = |ev: &CheckEvent| {
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
        format!(
            "{} {kind} {who} at={}{flags}",
            ev.id,
            rfc3339_ms(ev.at.wall_ms)
        )
    };
    for e in hq.store().events()? {
        lines.push((e.received_ms, 1, format!("event {}", describe(&e.event))));
    }
    // A different event under a number already held (a restored ledger): both shown.
    for (at, ev) in hq.store().conflicts()? {
        lines.push((
            at,
            1,
            format!(
                "conflict {} (kept aside: HQ holds another event under this number)",
                describe(&ev)
            ),
        ));
    }
    for c in hq.store().commands()? {
        lines.push((
            c.received_ms,
            2,
            format!(
                "command officer={} id={} ok={} {} reason={:?} -> {}",
                c.officer, c.id, c.ok, c.action, c.reason, c.message
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

#[cfg(test)]
mod tests {
    use super::*;
    use evac_maps::{GenerateParams, generate};
    use evac_protocol::{CheckEvent, EventBatch, EventKind, ResidentId, shelter_signer};

    /// A town whose first residents have hostile names, one of them checked in.
    pub(super) fn hq_with_hostile_names(dir: &Path) -> (Hq, Town) {
        let mut town = generate(&GenerateParams {
            households: 30,
            shelters: 3,
            seed: 3,
        });
        let names = [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "山田\r太郎",
            "+1-2, \"quoted\"",
            "@SUM(A1)",
            "Tanaka <b>&amp;</b> Hanako",
        ];
        let mut residents = Vec::new();
        let members = town
            .households
            .iter_mut()
            .flat_map(|h| h.members.iter_mut());
        for (m, n) in members.zip(names) {
            m.name = n.to_owned();
            residents.push(m.resident);
        }
        assert_eq!(residents.len(), names.len());
        let shelter = ShelterId(town.shelters[0].id);
        town.shelters[0].name = "-Hill <school>".into();
        let node = SecretKey::from_seed(&[1; 32]);
        let mut keys = KeyRing::default();
        keys.add_shelter(shelter, node.public());
        let store = Store::open(&dir.join("hq.sqlite")).unwrap();
        let mut hq = Hq::open(
            "minato".parse().unwrap(),
            Arc::new(town.clone()),
            store,
            keys,
            SecretKey::from_seed(&[2; 32]),
            60_000,
            1_000_000,
        )
        .unwrap();
        let events = residents
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut e = CheckEvent::new(shelter, i as u64 + 1, 999_000, EventKind::CheckIn);
                e.at.logical = i as u32;
                e.resident = Some(ResidentId(*r));
                node.sign(&shelter_signer(shelter), &e).unwrap()
            })
            .collect();
        let payload = serde_json::to_vec(&EventBatch::new(shelter, events)).unwrap();
        hq.on_events(shelter, &payload, 1_000_100).unwrap();
        (hq, town)
    }

    /// Regression (issue 13, item 10): the hand-written CSV did not quote `\r` and let a name
    /// starting with `=` become a formula.
    #[test]
    fn csv_quotes_everything_and_neutralises_formulas() {
        let dir = tempfile::tempdir().unwrap();
        let (hq, town) = hq_with_hostile_names(dir.path());
        let text = csv(&hq, &town, 1_000_200).unwrap();
        let mut r = ::csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<::csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        let people: usize = town.households.iter().map(|h| h.members.len()).sum();
        assert_eq!(rows.len(), people, "a name split a record");
        let names: Vec<&str> = rows.iter().map(|r| &r[2]).collect();
        assert!(
            names.contains(&"'=HYPERLINK(\"http://evil.example\",\"x\")"),
            "{names:?}"
        );
        assert!(names.contains(&"山田\r太郎"));
        assert!(names.contains(&"'+1-2, \"quoted\""));
        assert!(names.contains(&"'@SUM(A1)"));
        assert!(names.contains(&"Tanaka <b>&amp;</b> Hanako"));
        assert!(
            rows.iter()
                .any(|r| &r[4] == "arrived" && &r[6] == "'-Hill <school>"),
            "{text}"
        );
        // Nothing a spreadsheet would evaluate starts a field.
        for row in &rows {
            for f in row.iter() {
                assert!(!f.starts_with(['=', '+', '@']), "{f:?}");
            }
        }
    }
}
