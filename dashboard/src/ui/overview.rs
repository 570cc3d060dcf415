//! Overview: the accounted-for gauge, totals, the arrivals curve with T50/T90, counts per
//! zone and the warnings pane.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, Gauge, GraphType, Paragraph, Row, Table};

use super::{Theme, age, num, pad};
use crate::app::App;
use crate::state::Warning;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    let c = &s.counts;
    let [gauge, middle, bottom] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Percentage(45),
        Constraint::Min(0),
    ])
    .areas(area);

    let safe = c.arrived + c.checked_out + c.found;
    let ordered = c.residents.saturating_sub(c.not_ordered);
    let ratio = if ordered == 0 {
        0.0
    } else {
        f64::from(safe) / f64::from(ordered)
    };
    f.render_widget(
        Gauge::default()
            .block(Block::bordered().title(l.t(
                " Accounted for (safe or at a shelter ÷ under order) ",
                " 安否確認 (避難済み・所在確認 ÷ 避難指示対象) ",
            )))
            .gauge_style(th.fg(Color::Green))
            .ratio(ratio.clamp(0.0, 1.0))
            .label(format!(
                "{} / {} ({:.1}%)",
                num(safe),
                num(ordered),
                ratio * 100.0
            )),
        gauge,
    );

    let [counts, chart] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(0)]).areas(middle);
    let row = |k: &str, v: u32| Line::raw(format!("{} {:>9}", pad(k, 16), num(v)));
    let lines = vec![
        row(l.t("Residents", "住民"), c.residents),
        row(l.t("Under order", "避難指示中"), c.under_order),
        row(l.t("Overdue", "所在不明"), c.unaccounted),
        row(l.t("At a shelter", "避難所に在所"), c.arrived),
        row(l.t("Checked out", "退所"), c.checked_out),
        row(l.t("Found", "所在確認"), c.found),
        row(l.t("Unregistered", "未登録カード"), c.unregistered),
        row(l.t("Flagged", "要確認"), c.flagged),
    ];
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(l.t(" Totals ", " 集計 "))),
        counts,
    );
    curve(app, f, chart);

    let [zones, warnings] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Min(0)]).areas(bottom);
    let zrows: Vec<Row> = s
        .derived
        .zones
        .iter()
        .map(|z| {
            let name = match z.zone {
                Some(id) if z.name.is_empty() => format!("{id}"),
                Some(id) => format!("{id} {}", z.name),
                None => l.t("outside zones", "ゾーン外").to_owned(),
            };
            Row::new(vec![name, num(z.ordered), num(z.safe), num(z.missing)])
        })
        .collect();
    f.render_widget(
        Table::new(
            zrows,
            [
                Constraint::Min(10),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
            ],
        )
        .header(
            Row::new(vec![
                l.t("Zone", "ゾーン"),
                l.t("Ordered", "対象"),
                l.t("Safe", "確認"),
                l.t("Missing", "未確認"),
            ])
            .style(th.head()),
        )
        .block(Block::bordered().title(l.t(" By zone ", " ゾーン別 "))),
        zones,
    );

    let wl: Vec<Line> = s
        .derived
        .warnings
        .iter()
        .map(|w| warning_line(app, w))
        .collect();
    let title = format!(" {} {} ", l.t("Warnings", "警告"), s.derived.warnings.len());
    let body = if wl.is_empty() {
        vec![Line::styled(l.t("none", "なし"), th.fg(Color::DarkGray))]
    } else {
        wl
    };
    f.render_widget(
        Paragraph::new(body).block(Block::bordered().title(title)),
        warnings,
    );
}

fn warning_line(app: &App, w: &Warning) -> Line<'static> {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    match w {
        Warning::NeedsHelpAtHome {
            household,
            people,
            minutes,
            needs_confirmation,
        } => Line::styled(
            format!(
                "‼ {} {household}: {} {} {minutes}{}{}",
                l.t("house", "世帯"),
                people.map_or("?".to_owned(), |n| n.to_string()),
                l.t("need help at home (TV)", "人 在宅で要救助(TV)"),
                l.t(" min ago", "分前"),
                if *needs_confirmation {
                    l.t(", confirm", "・要確認")
                } else {
                    ""
                },
            ),
            th.fg(Color::Red)
                .add_modifier(ratatui::style::Modifier::BOLD),
        ),
        Warning::NeedsHelpLate { resident, minutes } => Line::styled(
            format!(
                "★ {} {} {} {minutes}{}",
                resident,
                s.resident_name(*resident).unwrap_or(""),
                l.t("needs help, not arrived", "要支援者 未到着"),
                l.t(" min after order", "分経過"),
            ),
            th.fg(Color::Red),
        ),
        Warning::ShelterSilent { shelter, minutes } => Line::styled(
            format!(
                "⚠ {} {} {minutes}{}",
                s.shelter_name(*shelter),
                l.t("silent", "応答なし"),
                l.t(" min", "分")
            ),
            th.fg(Color::Yellow),
        ),
        Warning::ShelterFull { shelter, percent } => Line::styled(
            format!(
                "▲ {} {percent}% {}",
                s.shelter_name(*shelter),
                l.t("full", "満")
            ),
            th.fg(Color::LightRed),
        ),
        Warning::Conflicts { shelter, count } => Line::styled(
            format!(
                "⚠ {} {count} {}",
                s.shelter_name(*shelter),
                l.t(
                    "events conflict with HQ's (ledger restored?)",
                    "件の記録がHQと食い違い(台帳の復元?)"
                )
            ),
            th.fg(Color::LightRed),
        ),
        Warning::Unverified { resident, shelter } => Line::styled(
            format!(
                "⚑ {} {} @ {}: {}",
                resident,
                s.resident_name(*resident).unwrap_or(""),
                s.shelter_name(*shelter),
                l.t(
                    "card failed a check, confirm who it is",
                    "カード確認失敗・本人確認を"
                )
            ),
            th.fg(Color::LightRed),
        ),
        Warning::Flagged { count } => Line::styled(
            format!(
                "⚑ {count} {}",
                l.t("flagged check-ins", "件の要確認チェックイン")
            ),
            th.fg(Color::Yellow),
        ),
    }
}

fn curve(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    let d = &s.derived;
    let start = d
        .start_ms
        .or_else(|| s.curve.first().map(|p| p.0))
        .unwrap_or(0);
    let pts: Vec<(f64, f64)> = s
        .curve
        .iter()
        .filter(|p| p.2 > 0 && p.0 >= start)
        .map(|&(at, safe, ordered)| {
            (
                (at - start) as f64 / 60_000.0,
                f64::from(safe) * 100.0 / f64::from(ordered),
            )
        })
        .collect();
    let end_min = (pts.last().map_or(0.0, |p| p.0))
        .max(app.hq_now_ms().unwrap_or(start).saturating_sub(start) as f64 / 60_000.0)
        .max(10.0);
    let mark = |t: Option<u64>, pct: f64| -> Vec<(f64, f64)> {
        t.map(|t| {
            let x = t.saturating_sub(start) as f64 / 60_000.0;
            vec![(x, 0.0), (x, pct)]
        })
        .unwrap_or_default()
    };
    let t50 = mark(d.t50_ms, 50.0);
    let t90 = mark(d.t90_ms, 90.0);
    let fmt_t = |t: Option<u64>| t.map_or("—".to_owned(), |t| age(t.saturating_sub(start)));
    let title = format!(
        " {}  T50 {}  T90 {} ",
        l.t("Arrivals", "避難完了の推移"),
        fmt_t(d.t50_ms),
        fmt_t(d.t90_ms)
    );
    let sets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(th.fg(Color::Green))
            .data(&pts),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(th.fg(Color::Yellow))
            .data(&t50),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(th.fg(Color::Cyan))
            .data(&t90),
    ];
    f.render_widget(
        Chart::new(sets)
            .block(Block::bordered().title(title))
            .x_axis(Axis::default().bounds([0.0, end_min]).labels(vec![
                Span::raw("0"),
                Span::raw(format!("{:.0}{}", end_min, l.t("m", "分"))),
            ]))
            .y_axis(Axis::default().bounds([0.0, 100.0]).labels(vec![
                Span::raw("0%"),
                Span::raw("50%"),
                Span::raw("100%"),
            ])),
        area,
    );
}
