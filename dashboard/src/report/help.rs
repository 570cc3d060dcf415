//! The report's households that answered "needs help at home", with their home address from
//! the town file on this machine (the report runs once: it reads the file itself, feature by
//! feature, for these households only).

use std::collections::HashSet;
use std::fmt::Write;
use std::path::Path;

use evac_protocol::AnswerKind;
use serde::Serialize;

use crate::i18n::Lang;
use crate::state::TownState;

/// A household that answered from the TV that it needs help at home (self-reported).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HelpAtHome {
    /// The household.
    pub household: u32,
    /// The people it said need help.
    pub people: Option<u32>,
    /// HQ's time of the answer (Unix ms).
    pub at_ms: u64,
    /// An officer marked it handled.
    pub handled: bool,
    /// An officer must confirm the answer (too many wrong answer codes).
    pub needs_confirmation: bool,
    /// Its home address in the town file.
    pub address: Option<String>,
    /// `found`, `none-in-town-file`, `no-town-file` or `town-file-unreadable`.
    pub address_state: &'static str,
}

/// Every household of `s` whose latest answer is "needs help at home", by household; no
/// address yet ([`with_addresses`]).
pub(super) fn of(s: &TownState) -> Vec<HelpAtHome> {
    let mut out: Vec<HelpAtHome> = s
        .answers
        .values()
        .filter(|a| a.kind == AnswerKind::NeedHelp)
        .map(|a| HelpAtHome {
            household: a.household,
            people: a.people,
            at_ms: a.at_ms,
            handled: a.handled.is_some(),
            needs_confirmation: a.needs_confirmation,
            address: None,
            address_state: "no-town-file",
        })
        .collect();
    out.sort_by_key(|h| (h.handled, h.household));
    out
}

/// Looks up the addresses of `help` in `town_file` (none: they stay `no-town-file`).
pub(super) fn with_addresses(help: &mut [HelpAtHome], town_file: Option<&Path>) {
    let Some(path) = town_file else {
        return;
    };
    let wanted: HashSet<u32> = help.iter().map(|h| h.household).collect();
    match crate::addresses::scan(path, &wanted) {
        Ok(found) => {
            for h in help {
                h.address = found.get(&h.household).cloned().flatten();
                h.address_state = if h.address.is_some() {
                    "found"
                } else {
                    "none-in-town-file"
                };
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the town file's addresses could not be read");
            for h in help {
                h.address_state = "town-file-unreadable";
            }
        }
    }
}

/// The section of the text report: one line a household, its address last.
pub(super) fn text(out: &mut String, help: &[HelpAtHome], at_ms: Option<u64>, l: Lang) {
    if help.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{} {}",
        l.t(
            "Needs help at home (TV, self-reported):",
            "在宅要救助 (TV・自己申告):"
        ),
        help.len()
    );
    for h in help {
        let address = match (h.address.as_deref(), h.address_state) {
            (Some(a), _) => a,
            (None, "none-in-town-file") => {
                l.t("no address in the town file", "町ファイルに住所なし")
            }
            (None, "town-file-unreadable") => {
                l.t("the town file could not be read", "町ファイルを読めません")
            }
            (None, _) => l.t("address unknown: no town_file", "住所不明 (town_file なし)"),
        };
        let ago = at_ms.map_or(String::new(), |now| {
            format!(
                " {} {}",
                now.saturating_sub(h.at_ms) / 60_000,
                l.t("min ago", "分前")
            )
        });
        let _ = writeln!(
            out,
            "  {} {} {} {}{ago}{}{} — {address}",
            l.t("household", "世帯"),
            h.household,
            h.people.map_or("?".to_owned(), |n| n.to_string()),
            l.t("people", "人"),
            if h.needs_confirmation {
                l.t(" (to confirm)", " (要確認)")
            } else {
                ""
            },
            if h.handled {
                l.t(" [handled]", " [対応済]")
            } else {
                ""
            },
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    fn help(household: u32, handled: bool) -> HelpAtHome {
        HelpAtHome {
            household,
            people: Some(2),
            at_ms: 1_000_000 - 12 * 60_000,
            handled,
            needs_confirmation: false,
            address: None,
            address_state: "no-town-file",
        }
    }

    #[test]
    fn the_report_gives_each_household_needing_help_its_address_or_why_not() {
        let sample = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../maps/data/town.geojson"
        ));
        let mut h = vec![help(1, false), help(99_999, false), help(3, true)];
        with_addresses(&mut h, None);
        assert!(h.iter().all(|h| h.address_state == "no-town-file"));
        with_addresses(&mut h, Some(sample));
        assert_eq!(h[0].address.as_deref(), Some("潮見浜町汐見台 28-26"));
        assert_eq!(h[0].address_state, "found");
        assert_eq!(
            (h[1].address.as_deref(), h[1].address_state),
            (None, "none-in-town-file")
        );
        let mut text = String::new();
        super::text(&mut text, &h, Some(1_000_000), Lang::En);
        assert!(
            text.contains("household 1 2 people 12 min ago — 潮見浜町汐見台 28-26"),
            "{text}"
        );
        assert!(
            text.contains("household 99999 2 people 12 min ago — no address in the town file"),
            "{text}"
        );
        assert!(text.contains("[handled] — 潮見浜町本町 2-18"), "{text}");
        let json = serde_json::to_value(&h[0]).unwrap();
        assert_eq!(json["address"], "潮見浜町汐見台 28-26");
        let mut h = vec![help(1, false)];
        with_addresses(&mut h, Some(Path::new("/nonexistent/town.geojson")));
        assert_eq!(
            (h[0].address.as_deref(), h[0].address_state),
            (None, "town-file-unreadable")
        );
    }
}
