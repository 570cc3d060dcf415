//! Log: every command given here with who, when, the reason and HQ's answer, then the
//! latest events (status changes, shelters opening, closing, going silent, orders).

use evac_protocol::CommandAction;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{Theme, clock, scroll};
use crate::app::{App, View};
use crate::i18n::{self, Lang};
use crate::state::{CommandOutcome, LogEntry};

/// A command in a few words.
pub(crate) fn action_text(a: &CommandAction, l: Lang) -> String {
    match a {
        CommandAction::IssueOrder {
            hazard,
            level,
            zones,
            ..
        } => format!(
            "{} {} Lv{} {:?}",
            l.t("issue", "発令"),
            i18n::hazard(*hazard, l),
            level.number(),
            zones
        ),
        CommandAction::LiftOrder { message_id } => format!("{} {message_id}", l.t("lift", "解除")),
        CommandAction::CloseShelter { shelter } => format!("{} #{shelter}", l.t("close", "閉鎖")),
        CommandAction::OpenShelter { shelter } => format!("{} #{shelter}", l.t("reopen", "再開")),
        CommandAction::MarkFound { resident, .. } => {
            format!("{} {resident}", l.t("found", "所在確認"))
        }
        CommandAction::LinkCard { resident, .. } => {
            format!("{} → {resident}", l.t("link card", "カード紐付"))
        }
        CommandAction::AnswerHandled { household } => {
            format!("{} {household}", l.t("help handled", "救助対応済"))
        }
        CommandAction::ConfirmAnswer { household } => {
            format!("{} {household}", l.t("confirm answer", "回答確認"))
        }
    }
}

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    let cmd_h = (s.commands.len() as u16 + 2).clamp(3, area.height / 2);
    let [cmds, events] =
        Layout::vertical([Constraint::Length(cmd_h), Constraint::Min(0)]).areas(area);
    let lines: Vec<Line> = s
        .commands
        .iter()
        .rev()
        .take(cmd_h.saturating_sub(2) as usize)
        .map(|c| {
            let (style, outcome) = match &c.outcome {
                CommandOutcome::Pending => {
                    (th.fg(Color::Yellow), l.t("pending", "応答待ち").to_owned())
                }
                CommandOutcome::Done(m) => (th.fg(Color::Green), format!("✔ {m}")),
                CommandOutcome::Refused(m) => (th.fg(Color::Red), format!("✘ {m}")),
            };
            Line::from(vec![
                Span::raw(format!(
                    "{} {} {} — {}: {} — ",
                    clock(c.at_ms, app.utc_offset_min),
                    c.officer,
                    action_text(&c.action, l),
                    l.t("reason", "理由"),
                    c.reason
                )),
                Span::styled(outcome, style),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(l.t(
            " Commands (who, when, why, outcome) ",
            " 指示 (誰が・いつ・理由・結果) ",
        ))),
        cmds,
    );
    let height = events.height.saturating_sub(2) as usize;
    let cursor = app.cursor[View::Log.index()];
    let first = scroll(cursor, height);
    let lines: Vec<Line> = s
        .log
        .iter()
        .rev()
        .skip(first)
        .take(height)
        .map(|e| match e {
            LogEntry::Resident {
                at_ms,
                resident,
                status,
            } => {
                let place = match status.shelter() {
                    Some(shelter) => format!(" @ {}", s.shelter_name(shelter)),
                    None => String::new(),
                };
                Line::raw(format!(
                    "{} {} {} {}{place}",
                    clock(*at_ms, app.utc_offset_min),
                    resident,
                    s.resident_name(*resident).unwrap_or(""),
                    i18n::status(Some(*status), l)
                ))
            }
            LogEntry::Shelter {
                at_ms,
                shelter,
                open,
                online,
            } => Line::styled(
                format!(
                    "{} {} {} {}",
                    clock(*at_ms, app.utc_offset_min),
                    s.shelter_name(*shelter),
                    if *open {
                        l.t("open", "開設")
                    } else {
                        l.t("CLOSED", "閉鎖")
                    },
                    if *online {
                        l.t("online", "接続")
                    } else {
                        l.t("OFFLINE", "断")
                    },
                ),
                th.fg(Color::Yellow),
            ),
            LogEntry::HqStore { at_ms, unreadable } => Line::styled(
                format!(
                    "{} {}: {} {}, {} {}, {} {}, {} {}",
                    clock(*at_ms, app.utc_offset_min),
                    l.t(
                        "HQ started without unreadable store rows",
                        "HQ は読めない記録を除いて起動",
                    ),
                    unreadable.events,
                    l.t("events", "件の記録"),
                    unreadable.notices,
                    l.t("notices", "件の発令"),
                    unreadable.card_links,
                    l.t("card links", "件のカード"),
                    unreadable.meta,
                    l.t("counters (see HQ's log)", "件のカウンタ (HQ のログ参照)"),
                ),
                th.fg(Color::Red),
            ),
            LogEntry::Orders {
                issued,
                message_id,
                kind,
                orders,
            } => Line::styled(
                format!(
                    "{} {} {message_id} {:?} {} {}",
                    clock(
                        u64::try_from(*issued).unwrap_or(0) * 1000,
                        app.utc_offset_min
                    ),
                    l.t("orders", "指示"),
                    kind,
                    orders,
                    l.t("households", "世帯")
                ),
                th.fg(Color::Cyan),
            ),
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(l.t(" Latest events ", " 最新の出来事 "))),
        events,
    );
}
