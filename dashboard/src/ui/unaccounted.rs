//! Unaccounted: residents under order not yet accounted for, needs-help (要支援者) first,
//! then by zone and household, with the assigned shelter and minutes since the order.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{Theme, num, scroll};
use crate::app::{App, View};
use crate::i18n;

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
    let rows: Vec<Row> = list
        .iter()
        .skip(first)
        .take(height)
        .map(|&r| {
            let person = s.registry.as_ref().and_then(|g| g.person(r));
            let household = person.map(|p| p.household);
            let needs_help = person.is_some_and(|p| p.needs_help);
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
            if wide {
                cells.push(Cell::from(i18n::status(s.statuses.get(r), l)));
            }
            let row = Row::new(cells);
            if needs_help {
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
    if wide {
        widths.push(Constraint::Length(12));
        head.push(l.t("Status", "状態"));
    }
    let filter = &app.filter[View::Unaccounted.index()];
    let mut title = format!(
        " {} {} ({} {}) ",
        l.t("Unaccounted", "未確認者"),
        num(list.len() as u64),
        l.t("needs help", "要支援者"),
        num(s.derived.unaccounted_needs_help as u64),
    );
    if !filter.is_empty() {
        title.push_str(&format!("/{filter} "));
    }
    if s.registry.is_none() {
        title.push_str(l.t("(waiting for the registry) ", "(名簿待ち) "));
    }
    let table = Table::new(rows, widths)
        .header(Row::new(head).style(th.head()))
        .row_highlight_style(th.selected())
        .block(Block::bordered().title(title));
    let mut state = TableState::default().with_selected(Some(cursor - first));
    f.render_stateful_widget(table, area, &mut state);
}
