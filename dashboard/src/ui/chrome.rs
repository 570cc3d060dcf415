//! The header (town, notices, link, data age, refusals, banners), the tab bar and the
//! context key bar.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};

use super::{Theme, age, clock};
use crate::app::{App, Mode, View};
use crate::i18n;
use crate::state::{CommandOutcome, Link};

pub(super) fn header(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    let mut top: Vec<Span> = vec![
        Span::styled(" evac ", th.head()),
        Span::raw(format!(
            "{} {} │ ",
            s.town,
            clock(app.now_ms, app.utc_offset_min)
        )),
    ];
    match s.link {
        Link::Connected { .. } => top.push(Span::styled(
            format!("● {}", l.t("CONNECTED", "接続中")),
            th.fg(Color::Green),
        )),
        Link::Connecting => top.push(Span::styled(
            format!("○ {}", l.t("CONNECTING", "接続待ち")),
            th.fg(Color::Yellow),
        )),
        Link::Reconnecting { retry_ms, .. } => top.push(Span::styled(
            format!(
                "○ {} {}",
                l.t("RECONNECTING in", "再接続まで"),
                age(retry_ms.saturating_sub(app.mono_ms).max(1000))
            ),
            th.fg(Color::Yellow),
        )),
    }
    if s.stale() && s.has_data() {
        let since = match s.link {
            Link::Reconnecting { since_ms, .. } => app.mono_ms.saturating_sub(since_ms),
            _ => 0,
        };
        top.push(Span::raw(" "));
        top.push(Span::styled(
            format!(" {} {} ", l.t("STALE", "STALE(古い)"), age(since)),
            th.alarm(),
        ));
    }
    if let Some(since) = app.frozen_since {
        top.push(Span::raw(" "));
        top.push(Span::styled(
            format!(
                " {} {} (f) ",
                l.t("FROZEN", "停止中"),
                age(app.mono_ms.saturating_sub(since))
            ),
            th.fg(Color::Black)
                .bg(if app.color { Color::Cyan } else { Color::Reset })
                .add_modifier(Modifier::REVERSED),
        ));
    }
    if app.officer.is_none() {
        top.push(Span::raw(" "));
        top.push(Span::styled(
            l.t("READ-ONLY", "閲覧専用"),
            th.fg(Color::Magenta).add_modifier(Modifier::BOLD),
        ));
    }

    top.push(Span::raw(" │ "));
    // The age of HQ's data on HQ's clock (its newest time plus the monotonic time since),
    // never the dashboard's own: through an outage it grows with the outage.
    match (s.status_at_ms, app.hq_now_ms()) {
        (Some(at), Some(hq_now)) => top.push(Span::raw(format!(
            "{} {}",
            l.t("data", "データ"),
            age(hq_now.saturating_sub(at))
        ))),
        _ => top.push(Span::styled(
            l.t("waiting for HQ's snapshot", "HQ のスナップショット待ち"),
            th.fg(Color::Yellow),
        )),
    }
    if s.waiting_snapshot {
        top.push(Span::raw(" "));
        top.push(Span::styled(
            l.t("gap: waiting for snapshot", "欠落: スナップショット待ち"),
            th.fg(Color::Yellow),
        ));
    }
    top.push(Span::raw(" │ "));
    let rej = s.rejected.total;
    top.push(Span::styled(
        format!("{} {rej}", l.t("refused", "拒否")),
        if rej > 0 {
            th.fg(Color::Red)
        } else {
            th.fg(Color::DarkGray)
        },
    ));
    let mut notices: Vec<Span> = vec![Span::raw(" ")];
    if s.notices.is_empty() {
        notices.push(Span::styled(
            l.t("No order in force", "発令中の避難指示なし"),
            th.fg(Color::DarkGray),
        ));
    }
    // Times in the notices are HQ's (and the alert's): judged on HQ's clock, the dashboard's
    // own only before the first status has come.
    let hq_now = app.hq_now_ms().unwrap_or(app.now_ms);
    for n in s.notices.values() {
        let issued = u64::try_from(n.issued).unwrap_or(0) * 1000;
        let zones = if n.zones.is_empty() {
            String::new()
        } else {
            let z: Vec<String> = n.zones.iter().map(u32::to_string).collect();
            format!(" {}{}", l.t("zones ", "ゾーン"), z.join(","))
        };
        // When the hazard is expected (the alert's onset, a fact about it): the time and what
        // is left, or that the time has come.
        let onset = n.onset.map_or_else(String::new, |t| {
            let at = u64::try_from(t).unwrap_or(0) * 1000;
            let hhmm = &clock(at, app.utc_offset_min)[..5];
            let left = if at > hq_now {
                format!("{} {}", l.t("in", "あと"), age(at - hq_now))
            } else {
                l.t("due", "到達予想時刻を経過").to_owned()
            };
            format!(" · {} {hhmm} ({left})", l.t("expected", "到達予想"))
        });
        notices.push(Span::styled(
            format!(
                "{}{} {} Lv{}{zones}{onset} · {} {} ",
                if n.drill {
                    l.t("[DRILL] ", "[訓練] ")
                } else {
                    ""
                },
                n.id,
                i18n::hazard(n.hazard, l),
                n.level.number(),
                age(hq_now.saturating_sub(issued)),
                l.t("ago", "前"),
            ),
            th.fg(match n.level.number() {
                5 => Color::Magenta,
                4 => Color::Red,
                _ => Color::Yellow,
            })
            .add_modifier(Modifier::BOLD),
        ));
    }
    f.render_widget(
        Paragraph::new(vec![Line::from(top), Line::from(notices)]),
        area,
    );
}

pub(super) fn tabs(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let titles: Vec<String> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title(app.lang)))
        .collect();
    f.render_widget(
        Tabs::new(titles)
            .select(app.view.index())
            .highlight_style(th.head().add_modifier(Modifier::REVERSED))
            .divider("│"),
        area,
    );
}

pub(super) fn keybar(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let line = match &app.mode {
        Mode::Filter(t) => {
            let what = if app.view == View::Search {
                l.t("search", "検索")
            } else {
                l.t("filter", "絞り込み")
            };
            Line::from(vec![
                Span::styled(format!("/{what}: "), th.head()),
                Span::raw(format!("{t}█")),
                Span::styled(l.t("  Enter keep · Esc clear", "  Enter 確定 · Esc 解除"), th.fg(Color::DarkGray)),
            ])
        }
        Mode::Command(t) => Line::from(vec![
            Span::styled(":", th.head()),
            Span::raw(format!("{t}█")),
            Span::styled(
                l.t("  close 3 · open 3 · issue tsunami 4 1,2 · lift 7 · found 12 note · link ISSUER:SERIAL 12",
                    "  close 3 · open 3 · issue tsunami 4 1,2 · lift 7 · found 12 メモ · link 発行者:番号 12"),
                th.fg(Color::DarkGray),
            ),
        ]),
        _ => {
            let mut keys: Vec<(&str, &str)> = vec![
                ("?", l.t("help", "ヘルプ")),
                ("1-6", l.t("views", "画面")),
                ("/", if app.view == View::Search { l.t("search", "検索") } else { l.t("filter", "絞込") }),
                ("f", if app.frozen_since.is_some() { l.t("unfreeze", "再開") } else { l.t("freeze", "停止") }),
            ];
            match app.view {
                View::Shelters => keys.extend([
                    ("h/l", l.t("sort", "並替")),
                    ("i", l.t("invert", "逆順")),
                    ("c", l.t("close", "閉鎖")),
                    ("o", l.t("reopen", "再開")),
                ]),
                View::Unaccounted | View::Search => {
                    keys.push(("m", l.t("found", "所在確認")));
                    // The answers' keys only once a household has answered from the TV.
                    if app.view == View::Unaccounted && !app.town.answers.is_empty() {
                        keys.extend([("a", l.t("handled", "対応済")), ("v", l.t("confirm", "確認"))]);
                    }
                }
                View::Map => keys.extend([("+/-", l.t("zoom", "拡大縮小")), ("←↑↓→", l.t("pan", "移動")), ("0", l.t("reset", "全体"))]),
                _ => {}
            }
            keys.extend([(":", l.t("command", "指示")), ("q", l.t("quit", "終了"))]);
            let mut spans = Vec::new();
            for (k, what) in keys {
                spans.push(Span::styled(format!(" {k}"), th.head()));
                spans.push(Span::raw(format!(" {what}")));
            }
            if let Some(c) = app.town.commands.last() {
                let recent = c.replied_ms.is_none_or(|r| app.mono_ms.saturating_sub(r) < 60_000);
                if recent {
                    let (style, text) = match &c.outcome {
                        CommandOutcome::Pending => (th.fg(Color::Yellow), format!("  #{} {}", c.id % 10_000, l.t("sent, waiting for HQ", "送信済み・HQ 応答待ち"))),
                        CommandOutcome::Done(m) => (th.fg(Color::Green), format!("  HQ ✔ {m}")),
                        CommandOutcome::Refused(m) => (th.alarm(), format!("  HQ ✘ {m}")),
                    };
                    spans.push(Span::styled(text, style));
                }
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}
