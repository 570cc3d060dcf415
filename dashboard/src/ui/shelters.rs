//! Shelters: occupancy as a bar and as Japan's four crowding levels, day and night,
//! expected arrivals, node online, replication lag and backlog; sortable by any column.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{Theme, bar, num, scroll};
use crate::app::{App, ShelterCol, View};
use crate::i18n::Crowding;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let wide = area.width >= 120;
    let rows = app.shelter_rows();
    let height = area.height.saturating_sub(3) as usize;
    let cursor = app.cursor[View::Shelters.index()].min(rows.len().saturating_sub(1));
    let first = scroll(cursor, height);
    let bar_w = if wide { 20 } else { 8 };

    let mut cols: Vec<(ShelterCol, &str, Constraint)> = vec![
        (ShelterCol::Id, "ID", Constraint::Length(4)),
        (ShelterCol::Name, l.t("Name", "名称"), Constraint::Min(10)),
        (
            ShelterCol::Occupancy,
            l.t("Occupancy", "収容率"),
            Constraint::Length(bar_w as u16 + 5),
        ),
    ];
    cols.push((
        ShelterCol::Occupancy,
        l.t("Level", "混雑"),
        Constraint::Length(10),
    ));
    cols.push((ShelterCol::Day, l.t("Day", "昼"), Constraint::Length(6)));
    if wide {
        cols.push((ShelterCol::Night, l.t("Night", "夜"), Constraint::Length(6)));
    }
    cols.push((
        ShelterCol::Capacity,
        l.t("Cap", "定員"),
        Constraint::Length(6),
    ));
    cols.push((
        ShelterCol::Expected,
        l.t("Exp", "到着予定"),
        Constraint::Length(if wide { 8 } else { 5 }),
    ));
    cols.push((
        ShelterCol::Node,
        l.t("Node", "端末"),
        Constraint::Length(if wide { 8 } else { 4 }),
    ));
    if wide {
        cols.push((ShelterCol::Lag, l.t("Lag", "遅延"), Constraint::Length(8)));
        cols.push((
            ShelterCol::Backlog,
            l.t("Backlog", "未送信"),
            Constraint::Length(8),
        ));
        cols.push((
            ShelterCol::Flagged,
            l.t("Flag", "要確認"),
            Constraint::Length(6),
        ));
    }
    let arrow = if app.sort_invert { "▼" } else { "▲" };
    let header = Row::new(cols.iter().enumerate().map(|(i, (c, t, _))| {
        // The level column sorts with occupancy; mark only the first of the two.
        let sorted = *c == app.sort && !(i == 3 && *c == ShelterCol::Occupancy);
        Cell::from(if sorted {
            format!("{t}{arrow}")
        } else {
            (*t).to_owned()
        })
    }))
    .style(th.head());

    let body: Vec<Row> = rows
        .iter()
        .skip(first)
        .take(height)
        .map(|r| {
            let s = &r.status;
            let level = Crowding::of(s.open, s.present_day, s.capacity);
            let ratio = f64::from(s.present_day) / f64::from(s.capacity.max(1));
            let mut cells = vec![
                Cell::from(s.shelter.to_string()),
                Cell::from(r.name.clone().unwrap_or_else(|| format!("#{}", s.shelter))),
                Cell::from(Line::from(vec![
                    Span::styled(bar(ratio, bar_w), th.crowding(level)),
                    Span::raw(format!("{:>4.0}%", ratio * 100.0)),
                ])),
                Cell::from(Span::styled(level.label(l), th.crowding(level))),
                Cell::from(num(s.present_day)),
            ];
            if wide {
                cells.push(Cell::from(num(s.present_night)));
            }
            cells.push(Cell::from(num(s.capacity)));
            cells.push(Cell::from(num(s.expected)));
            cells.push(if s.online {
                Cell::from(Span::styled(l.t("on", "接続"), th.fg(Color::Green)))
            } else {
                Cell::from(Span::styled(l.t("OFF", "断"), th.alarm()))
            });
            if wide {
                cells.push(Cell::from(s.lag_ms.map_or("—".to_owned(), |ms| {
                    format!("{:.1}s", ms as f64 / 1000.0)
                })));
                cells.push(Cell::from(num(s.pending)));
                cells.push(if s.flagged > 0 {
                    Cell::from(Span::styled(num(s.flagged), th.alarm()))
                } else {
                    Cell::from(num(s.flagged))
                });
            }
            let row = Row::new(cells);
            if s.open {
                row
            } else {
                row.style(th.fg(Color::DarkGray))
            }
        })
        .collect();
    let open = rows.iter().filter(|r| r.status.open).count();
    let title = format!(
        " {} {} ({} {}) ",
        l.t("Shelters", "避難所"),
        rows.len(),
        l.t("open", "開設"),
        open
    );
    let filter = &app.filter[View::Shelters.index()];
    let title = if filter.is_empty() {
        title
    } else {
        format!("{title}/{filter} ")
    };
    let table = Table::new(body, cols.iter().map(|c| c.2))
        .header(header)
        .row_highlight_style(th.selected())
        .block(Block::bordered().title(title));
    let mut state = TableState::default().with_selected(Some(cursor - first));
    f.render_stateful_widget(table, area, &mut state);
}
