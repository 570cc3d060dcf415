//! Unaccounted: residents under order not yet accounted for, in three groups: households that
//! answered "needs help at home" from the TV (how many people, how long ago), those with no
//! word, those whose needs-help answer an officer marked handled (`a`), those that answered
//! safe (self-reported, marked "(TV)"); in each, needs-help
//! (要支援者) first, then by zone and household, with the assigned shelter and minutes since
//! the order. A household that needs help at home gets a second line under its first row with
//! its home address, from the town file on this machine ([`crate::addresses`]: the registry
//! HQ sends carries none), or why there is none.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::{Theme, num, scroll};
use crate::addresses::Address;
use crate::app::{App, View};
use crate::i18n::{self, Lang};
use crate::state::Word;
use evac_protocol::{AnswerKind, HouseholdAnswer};

/// What a household answered, as the list shows it: kind, people, how long ago on HQ's clock,
/// and "?" when an officer must confirm it (too many wrong answer codes).
fn answer_cell(a: Option<&HouseholdAnswer>, hq_now: Option<u64>, l: Lang) -> String {
    let Some(a) = a else {
        return "—".to_owned();
    };
    let what = match a.kind {
        // Handled: no longer on top; the officer's reason is in the Log.
        AnswerKind::NeedHelp if a.handled.is_some() => format!(
            "{} {}",
            l.t("handled", "対応済"),
            a.people.map_or("?".to_owned(), |n| n.to_string())
        ),
        AnswerKind::NeedHelp => format!(
            "{} {}",
            l.t("HELP", "要救助"),
            a.people.map_or("?".to_owned(), |n| n.to_string())
        ),
        AnswerKind::SafeAtHome => l.t("home(TV)", "在宅(TV)").to_owned(),
        AnswerKind::EvacuatedElsewhere => l.t("away(TV)", "他所(TV)").to_owned(),
        AnswerKind::AtShelter => l.t("shltr(TV)", "避難所(TV)").to_owned(),
        AnswerKind::Other => return "—".to_owned(),
    };
    // A handled answer's age no longer matters, and its cell has room for no more.
    let ago = hq_now
        .filter(|_| a.handled.is_none())
        .map_or(String::new(), |now| {
            format!(" {}m", now.saturating_sub(a.at_ms) / 60_000)
        });
    let confirm = if a.needs_confirmation { "?" } else { "" };
    format!("{what}{ago}{confirm}")
}

/// A household's home address as the screen says it, or why it cannot.
pub(super) fn address_text(a: Address<'_>, l: Lang) -> String {
    let what = match a {
        Address::Found(a) => a,
        Address::NotInFile => l.t("none in the town file", "町ファイルに記載なし"),
        Address::NoTownFile => l.t(
            "unknown: no town_file in the dashboard's config",
            "不明 (設定に town_file なし)",
        ),
        Address::LookingUp => l.t("looking it up in the town file…", "町ファイルを検索中…"),
        Address::Unreadable => l.t(
            "the town file could not be read (see the log)",
            "町ファイルを読めません (ログ参照)",
        ),
    };
    format!("{} {what}", l.t("home address:", "住所:"))
}

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    let list = app.unaccounted();
    let height = area.height.saturating_sub(3) as usize;
    let cursor = app.cursor[View::Unaccounted.index()].min(list.len().saturating_sub(1));
    let first = scroll(cursor, height);
    let wide = area.width >= 120;
    let hq_now = app.hq_now_ms();
    // The answers' column only once a household has answered.
    let answered = !s.answers.is_empty();
    // The address line goes under the first row shown of each household needing help.
    let mut addressed = None;
    let mut addresses: Vec<Option<String>> = Vec::new();
    let rows: Vec<Row> = list
        .iter()
        .skip(first)
        // Rows with an address line take two: enough rows to fill the table whichever.
        .take(height * 2)
        .map(|&r| {
            let person = s.registry.as_ref().and_then(|g| g.person(r));
            let household = person.map(|p| p.household);
            let needs_help = person.is_some_and(|p| p.needs_help);
            let answer = household.and_then(|h| s.answers.get(&h));
            let help_at_home = Word::of(answer) == Word::NeedsHelpAtHome;
            let order = household.and_then(|h| s.orders.get(&h));
            let zone = household
                .and_then(|h| s.zone_of(h))
                .map_or("—".to_owned(), |z| z.to_string());
            let shelter = order.map_or("—".to_owned(), |o| {
                if o.shelter.is_none() {
                    l.t("(none free)", "(空きなし)").to_owned()
                } else {
                    s.shelter_name(o.shelter)
                }
            });
            // On HQ's clock: the issue time is HQ's.
            let minutes = order.zip(hq_now).map_or("—".to_owned(), |(o, now)| {
                let issued = u64::try_from(o.issued).unwrap_or(0) * 1000;
                format!("{}", now.saturating_sub(issued) / 60_000)
            });
            let mut cells = vec![
                Cell::from(if needs_help { "★" } else { "" }),
                Cell::from(r.to_string()),
                Cell::from(s.resident_name(r).unwrap_or("?").to_owned()),
                Cell::from(zone),
                Cell::from(household.map_or("?".to_owned(), |h| h.to_string())),
                Cell::from(shelter),
                Cell::from(minutes),
            ];
            if answered {
                cells.push(Cell::from(answer_cell(answer, hq_now, l)));
            }
            if wide {
                cells.push(Cell::from(i18n::status(s.statuses.get(r), l)));
            }
            let mut row = Row::new(cells);
            let address = household
                .filter(|&h| help_at_home && addressed != Some(h))
                .map(|h| address_text(app.addresses.get(h), l));
            if address.is_some() {
                addressed = household;
                row = row.height(2);
            }
            addresses.push(address);
            if needs_help || help_at_home {
                row.style(th.fg(Color::Red).add_modifier(Modifier::BOLD))
            } else {
                row
            }
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(2),
        Constraint::Length(8),
        Constraint::Min(10),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Min(10),
        Constraint::Length(5),
    ];
    let mut head = vec![
        "",
        l.t("ID", "住民"),
        l.t("Name", "氏名"),
        l.t("Zone", "区域"),
        l.t("House", "世帯"),
        l.t("Shelter", "指定避難所"),
        l.t("Min", "経過分"),
    ];
    if answered {
        widths.push(Constraint::Length(12));
        head.push(l.t("TV answer", "TV回答"));
    }
    if wide {
        widths.push(Constraint::Length(12));
        head.push(l.t("Status", "状態"));
    }
    let filter = &app.filter[View::Unaccounted.index()];
    let d = &s.derived;
    let mut title = format!(
        " {} {} ({} {}) ",
        l.t("Unaccounted", "未確認者"),
        num(list.len() as u64),
        l.t("needs help", "要支援者"),
        num(d.unaccounted_needs_help as u64),
    );
    if answered {
        title.push_str(&format!(
            "· {} {} ({} {}) · {} {} · {} {} · {} {} ",
            l.t("help at home", "在宅要救助"),
            num(d.needs_help_households.0 as u64),
            num(d.needs_help_households.1),
            l.t("people", "人"),
            l.t("no word", "連絡なし"),
            num(d.no_word as u64),
            l.t("handled", "対応済"),
            num(d.help_handled as u64),
            l.t("safe (TV, self-reported)", "無事(TV・自己申告)"),
            num(d.answered_safe as u64),
        ));
    }
    if !filter.is_empty() {
        title.push_str(&format!("/{filter} "));
    }
    if !s.registry.as_ref().is_some_and(|r| r.complete()) {
        title.push_str(l.t("(waiting for the registry) ", "(名簿待ち) "));
    }
    let table = Table::new(rows, widths)
        .header(Row::new(head).style(th.head()))
        .row_highlight_style(th.selected())
        .block(Block::bordered().title(title));
    let mut state = TableState::default().with_selected(Some(cursor - first));
    f.render_stateful_widget(table, area, &mut state);
    draw_addresses(f, area, &addresses, state.offset());
}

/// Writes each address on the second line of its row, from the ID column to the border
/// (wider than any one column: an address is never cut at 80 columns), for the rows the
/// table showed from `offset` on.
fn draw_addresses(f: &mut Frame, area: Rect, addresses: &[Option<String>], offset: usize) {
    let inner = area.inner(ratatui::layout::Margin::new(1, 1));
    // Past the header; the ID column starts after the ★ column and its spacing.
    let (x, bottom) = (inner.x + 3, inner.bottom());
    let mut y = inner.y + 1;
    for a in addresses.iter().skip(offset) {
        let lines = if a.is_some() { 2 } else { 1 };
        if y + lines > bottom {
            break;
        }
        if let Some(a) = a {
            let at = Rect::new(x, y + 1, inner.right().saturating_sub(x), 1);
            f.render_widget(Paragraph::new(Line::raw(a.as_str())), at);
        }
        y += lines;
    }
}
