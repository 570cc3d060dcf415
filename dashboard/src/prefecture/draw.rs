//! Drawing the prefecture view: a header line with the link and the refused count, then a
//! table of one row a town (STALE rows in bold yellow, with why). Once a town's HQ counts
//! answers from the TV, a "Help(TV)" column gives its households that asked for help at home
//! and no officer has handled yet, with the people they said. Reads [`TownRow`]s only;
//! what they say is decided in [`super::state`].

use evac_protocol::StatusCounts;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use super::TownRow;
use crate::i18n::Lang;
use crate::state::Link;

/// Draws the prefecture view: the link, then one row a town.
pub fn render(f: &mut Frame, rows: &[TownRow], link: &Link, lang: Lang, refused: u64) {
    let l = lang;
    let [head, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(f.area());
    let link_text = match link {
        Link::Connected { .. } => l.t("CONNECTED", "接続中").to_owned(),
        _ => l.t("RECONNECTING", "再接続中").to_owned(),
    };
    f.render_widget(
        Paragraph::new(format!(
            "{}  {link_text}  {} {refused}",
            l.t("Prefecture", "県全体"),
            l.t("refused", "拒否")
        )),
        head,
    );
    let n = |c: &Option<StatusCounts>, f: fn(&StatusCounts) -> u32| {
        c.as_ref().map_or("—".to_owned(), |c| f(c).to_string())
    };
    // The column only once an HQ counts answers (older HQs, or no answer yet: none).
    let answered = rows
        .iter()
        .any(|r| r.counts.as_ref().is_some_and(|c| c.answers.is_some()));
    let table_rows: Vec<Row> = rows
        .iter()
        .map(|r| {
            let accounted = r.counts.as_ref().map_or("—".to_owned(), |c| {
                let ordered = c.residents.saturating_sub(c.not_ordered);
                let safe = c.arrived + c.found + c.checked_out;
                if ordered == 0 {
                    "—".to_owned()
                } else {
                    format!("{}%", u64::from(safe) * 100 / u64::from(ordered))
                }
            });
            let state = match &r.why {
                Some(why) => format!("STALE ({why})"),
                None => l.t("live", "最新").to_owned(),
            };
            let style = if r.stale {
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            let mut cells = vec![
                Cell::from(r.name.clone()),
                Cell::from(n(&r.counts, |c| c.residents)),
                Cell::from(n(&r.counts, |c| c.residents.saturating_sub(c.not_ordered))),
                Cell::from(n(&r.counts, |c| c.arrived)),
                Cell::from(n(&r.counts, |c| c.under_order + c.unaccounted)),
            ];
            if answered {
                let help = r.counts.as_ref().and_then(|c| c.answers.as_ref());
                cells.push(Cell::from(help.map_or("—".to_owned(), |a| {
                    format!(
                        "{} ({})",
                        a.need_help_unhandled, a.need_help_people_unhandled
                    )
                })));
            }
            cells.extend([
                Cell::from(accounted),
                Cell::from(format!("{}/{}", r.shelters_online.0, r.shelters_online.1)),
                Cell::from(state),
            ]);
            Row::new(cells).style(style)
        })
        .collect();
    let mut head = vec![
        l.t("Town", "市町村"),
        l.t("Residents", "住民"),
        l.t("Ordered", "指示対象"),
        l.t("At shelter", "避難所"),
        l.t("Missing", "未確認"),
    ];
    let mut widths = vec![
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Length(9),
    ];
    if answered {
        head.push(l.t("Help(TV)", "要救助TV"));
        widths.push(Constraint::Length(9));
    }
    head.extend([
        l.t("Safe", "確認率"),
        l.t("Nodes", "端末"),
        l.t("State", "状態"),
    ]);
    widths.extend([
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Min(10),
    ]);
    let header = Row::new(head).style(Style::default().add_modifier(Modifier::BOLD));
    let table = Table::new(table_rows, widths)
        .header(header)
        .block(Block::bordered().title(l.t(" Towns ", " 市町村 ")));
    f.render_widget(table, body);
}

#[cfg(test)]
mod tests {
    //! Whole-screen snapshots of the prefecture view (`snapshots/`): minato live, shiomihama
    //! STALE with its uplink down and its last counts kept, at 120×8 and 80×24, in English
    //! and Japanese, connected and reconnecting.
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::prefecture::fixture::{NOW, at, prefecture, snapshot, snapshot_arrived};

    /// The rows and the refused count: minato's second snapshot 62 s after its first (six of
    /// its nine ordered arrived), shiomihama's uplink down since, one message refused.
    fn rows() -> (Vec<TownRow>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, b) = prefecture(dir.path());
        p.on_message(
            "pref/36/minato/evac/v1/minato/status",
            &snapshot("minato", &a, 3),
            at(NOW),
        );
        p.on_message(
            "pref/36/shiomihama/evac/v1/shiomihama/status",
            &snapshot("shiomihama", &b, 7),
            at(NOW),
        );
        p.on_message("pref/36/shiomihama/bridge/state", b"0", at(NOW + 2_000));
        p.on_message(
            "pref/36/minato/evac/v1/minato/status",
            &snapshot_arrived("minato", &a, 9, 6, 2),
            at(NOW + 62_000),
        );
        p.on_message("elsewhere/status", b"x", at(NOW + 62_000));
        (p.rows(at(NOW + 62_500)), p.refused)
    }

    fn draw(
        rows: &[TownRow],
        refused: u64,
        link: &Link,
        lang: Lang,
        w: u16,
        h: u16,
    ) -> Terminal<TestBackend> {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| render(f, rows, link, lang, refused)).unwrap();
        term
    }

    #[test]
    fn the_screen_at_both_sizes_in_both_languages_connected_and_not() {
        let (rows, refused) = rows();
        let links = [
            (Link::Connected { since_ms: 0 }, "connected"),
            (
                Link::Reconnecting {
                    since_ms: 0,
                    retry_ms: 2_000,
                },
                "reconnecting",
            ),
        ];
        for (lang, ln) in [(Lang::En, "en"), (Lang::Ja, "ja")] {
            for (link, ls) in &links {
                for (w, h) in [(120, 8), (80, 24)] {
                    let term = draw(&rows, refused, link, lang, w, h);
                    let screen = format!("{}", term.backend());
                    insta::assert_snapshot!(format!("prefecture_{w}x{h}_{ln}_{ls}"), screen);
                }
            }
        }
    }

    /// Issue 21 item 3: HQ's answer counts reach the prefecture: minato's households that
    /// asked for help at home and no officer has handled (people in brackets); shiomihama's
    /// older HQ counts none and shows "—".
    #[test]
    fn the_prefecture_sees_each_towns_unhandled_needs_help_answers() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, b) = prefecture(dir.path());
        let answers = evac_protocol::AnswerCounts {
            safe_at_home: 4,
            need_help: 3,
            need_help_unhandled: 2,
            need_help_people_unhandled: 5,
            ..Default::default()
        };
        p.on_message(
            "pref/36/minato/evac/v1/minato/status",
            &crate::prefecture::fixture::snapshot_answered("minato", &a, 9, 6, 1, Some(answers)),
            at(NOW),
        );
        p.on_message(
            "pref/36/shiomihama/evac/v1/shiomihama/status",
            &snapshot("shiomihama", &b, 7),
            at(NOW),
        );
        let rows = p.rows(at(NOW + 1_000));
        let term = draw(&rows, 0, &Link::Connected { since_ms: 0 }, Lang::En, 120, 8);
        let screen = format!("{}", term.backend());
        let lines: Vec<&str> = screen.lines().collect();
        assert!(lines[2].contains("Help(TV)"), "{screen}");
        assert!(lines[3].contains("2 (5)"), "{screen}");
        insta::assert_snapshot!("prefecture_answers_120x8_en", screen);
        let v = serde_json::to_value(p.summary(at(NOW + 1_000))).unwrap();
        assert_eq!(v["towns"][0]["counts"]["answers"]["need_help_unhandled"], 2);
    }

    #[test]
    fn a_stale_town_is_bold_yellow_with_why_and_a_live_one_is_plain() {
        let (rows, refused) = rows();
        let term = draw(
            &rows,
            refused,
            &Link::Connected { since_ms: 0 },
            Lang::En,
            120,
            8,
        );
        let screen = format!("{}", term.backend());
        assert!(
            screen.contains("shiomihama") && screen.contains("STALE (uplink down)"),
            "{screen}"
        );
        let buf = term.backend().buffer();
        // Rows: header line, border, table header, minato, shiomihama.
        let (live, stale) = (&buf[(2, 3)], &buf[(2, 4)]);
        assert_eq!(live.fg, Color::Reset);
        assert!(!live.modifier.contains(Modifier::BOLD));
        assert_eq!(stale.fg, Color::Yellow);
        assert!(stale.modifier.contains(Modifier::BOLD));
    }
}
