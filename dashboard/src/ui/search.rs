//! Search: residents by name (substring), household id or resident id; the selected one's
//! status, shelter, order and the history of their status changes.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};

use super::{Theme, clock, scroll};
use crate::app::{App, View};
use crate::i18n;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    let q = &app.filter[View::Search.index()];
    let [list_area, detail] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Min(0)]).areas(area);
    let height = list_area.height.saturating_sub(2) as usize;
    let cursor = app.cursor[View::Search.index()].min(app.search_hits.len().saturating_sub(1));
    let first = scroll(cursor, height);
    let items: Vec<ListItem> = app
        .search_hits
        .iter()
        .skip(first)
        .take(height)
        .map(|&r| {
            ListItem::new(format!(
                "{:>7} {}  {}",
                r,
                s.resident_name(r).unwrap_or("?"),
                i18n::status(s.statuses.get(r), l)
            ))
        })
        .collect();
    let title = if q.is_empty() {
        l.t(
            " Search: press / and type a name, household or resident id ",
            " 検索: / を押して氏名・世帯番号・住民番号 ",
        )
        .to_owned()
    } else {
        format!(
            " {} \"{q}\": {} ",
            l.t("Search", "検索"),
            app.search_hits.len()
        )
    };
    let mut state =
        ListState::default().with_selected((!items.is_empty()).then_some(cursor - first));
    f.render_stateful_widget(
        List::new(items)
            .highlight_style(th.selected())
            .block(Block::bordered().title(title)),
        list_area,
        &mut state,
    );

    let mut lines: Vec<Line> = Vec::new();
    if let Some(&r) = app.search_hits.get(cursor) {
        let person = s.registry.as_ref().and_then(|g| g.person(r));
        let status = s.statuses.get(r);
        lines.push(Line::styled(
            format!("{} {}", r, s.resident_name(r).unwrap_or("?")),
            th.head(),
        ));
        if let Some(p) = person {
            lines.push(Line::raw(format!(
                "{} {}",
                l.t("Household", "世帯"),
                p.household
            )));
            // The address only of a household that needs help at home: the dashboard looks
            // up no other (crate::addresses).
            if s.answers
                .get(&p.household)
                .is_some_and(|a| a.kind == evac_protocol::AnswerKind::NeedHelp)
            {
                lines.push(Line::styled(
                    super::unaccounted::address_text(app.addresses.get(p.household), l),
                    th.fg(Color::Red),
                ));
            }
            if p.needs_help {
                lines.push(Line::styled(
                    l.t("★ needs help to evacuate", "★ 避難行動要支援者"),
                    th.fg(Color::Red),
                ));
            }
            if let Some(o) = s.orders.get(&p.household) {
                lines.push(Line::raw(format!(
                    "{}: {} Lv{} → {} ({} {})",
                    l.t("Order", "指示"),
                    i18n::hazard(o.hazard, l),
                    o.level.number(),
                    if o.shelter.is_none() {
                        l.t("none free", "空きなし").to_owned()
                    } else {
                        s.shelter_name(o.shelter)
                    },
                    l.t("issued", "発令"),
                    clock(
                        u64::try_from(o.issued).unwrap_or(0) * 1000,
                        app.utc_offset_min
                    )
                )));
            }
        }
        let place = match status.and_then(|s| s.shelter()) {
            Some(shelter) => format!(" @ {}", s.shelter_name(shelter)),
            None => String::new(),
        };
        lines.push(Line::raw(format!(
            "{}: {}{place}",
            l.t("Status", "状態"),
            i18n::status(status, l)
        )));
        lines.push(Line::raw(""));
        lines.push(Line::styled(l.t("History", "履歴"), th.head()));
        match Some(s.history.of(r)).filter(|h| !h.is_empty()) {
            Some(h) => {
                for (at, st) in h.iter().rev() {
                    let place = match st.shelter() {
                        Some(shelter) => format!(" @ {}", s.shelter_name(shelter)),
                        None => String::new(),
                    };
                    lines.push(Line::raw(format!(
                        "{} {}{place}",
                        clock(*at, app.utc_offset_min),
                        i18n::status(Some(*st), l)
                    )));
                }
            }
            None => lines.push(Line::styled(
                l.t(
                    "no change seen since the dashboard started",
                    "起動後の変化なし",
                ),
                th.fg(Color::DarkGray),
            )),
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(l.t(" Resident ", " 住民 "))),
        detail,
    );
}
