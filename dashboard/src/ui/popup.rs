//! Overlays: help, the command confirmation with its reason, quit, messages.

use ratatui::Frame;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::{Theme, centred};
use crate::app::{App, Mode};

pub(super) fn render(app: &App, f: &mut Frame) {
    let th = Theme::of(app);
    let l = app.lang;
    let area = f.area();
    let (title, lines, w, h): (String, Vec<Line>, u16, u16) = match &app.mode {
        Mode::Help => {
            let keys = [
                ("1-6 Tab", l.t("switch view", "画面の切替")),
                ("j k ↑ ↓ PgUp PgDn g G", l.t("move", "移動")),
                (
                    "/",
                    l.t("filter (Search: query)", "絞り込み (検索画面: 検索語)"),
                ),
                (
                    "h l s",
                    l.t("sort column (Shelters)", "並べ替えの列 (避難所)"),
                ),
                ("i", l.t("invert the sort", "逆順")),
                ("f", l.t("freeze / unfreeze the screen", "画面の停止・再開")),
                (
                    "c o",
                    l.t("close / reopen the shelter", "避難所の閉鎖・再開"),
                ),
                ("m", l.t("mark the resident found", "住民を所在確認済みに")),
                (
                    "a v",
                    l.t(
                        "TV answer: mark \"needs help\" handled / confirm (Unaccounted)",
                        "TV回答: 要救助を対応済みに・回答を確認 (未確認者)",
                    ),
                ),
                (
                    ":",
                    l.t(
                        "command: issue, lift, close, open, found, link, handled, confirm",
                        "指示: issue lift close open found link handled confirm",
                    ),
                ),
                (
                    "+ - ← → 0",
                    l.t("map zoom, pan, reset", "地図の拡大・移動・全体"),
                ),
                ("q", l.t("quit (asks first)", "終了 (確認あり)")),
            ];
            let lines = keys
                .iter()
                .map(|(k, v)| {
                    Line::from(vec![
                        Span::styled(format!("{k:>22} "), th.head()),
                        Span::raw(*v),
                    ])
                })
                .collect();
            (
                l.t(" Help (any key closes) ", " ヘルプ (任意のキーで閉じる) ")
                    .to_owned(),
                lines,
                72,
                15,
            )
        }
        Mode::ConfirmQuit => (
            l.t(" Quit ", " 終了 ").to_owned(),
            vec![Line::raw(l.t(
                "Quit evac-dashboard? y / n",
                "evac-dashboard を終了しますか? y / n",
            ))],
            44,
            3,
        ),
        Mode::Message(m) => {
            let lines: Vec<Line> = m.lines().map(|x| Line::raw(x.to_owned())).collect();
            let h = lines.len() as u16 + 4;
            (
                l.t(" Note (any key) ", " お知らせ (任意のキー) ")
                    .to_owned(),
                lines,
                70,
                h,
            )
        }
        Mode::Confirm { text, reason, .. } => {
            let lines = vec![
                Line::styled(
                    text.clone(),
                    th.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Line::raw(""),
                Line::from(vec![
                    Span::styled(l.t("Reason: ", "理由: "), th.head()),
                    Span::raw(format!("{reason}█")),
                ]),
                Line::raw(""),
                Line::styled(
                    if reason.trim().is_empty() {
                        l.t(
                            "A reason is required. Esc cancels.",
                            "理由は必須です。Esc で取消。",
                        )
                    } else {
                        l.t(
                            "Enter sends to HQ · Esc cancels",
                            "Enter で HQ へ送信 · Esc で取消",
                        )
                    },
                    th.fg(Color::DarkGray),
                ),
            ];
            (
                l.t(" Confirm command ", " 指示の確認 ").to_owned(),
                lines,
                76,
                9,
            )
        }
        _ => return,
    };
    let r = centred(area, w, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(title)
                .border_style(th.fg(Color::Yellow)),
        ),
        r,
    );
}
