//! The door screen: who was recognised, in or out, household members present out of total,
//! and a flag in plain words, in Japanese and English, in large type.
//!
//! [`KioskState`] holds no ratatui types; [`render`] draws it.

use evac_protocol::{EventKind, Flag};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::node::TapReport;

/// What the door screen shows.
#[derive(Clone, Debug, Default)]
pub struct KioskState {
    /// Shelter label for the title.
    pub shelter: String,
    /// The last tap's result.
    pub last: Option<TapReport>,
    /// People present.
    pub present: u32,
    /// Events not yet acknowledged by HQ.
    pub pending: u64,
}

/// A flag in plain words: (Japanese, English).
pub fn flag_words(f: Flag) -> (&'static str, &'static str) {
    match f {
        Flag::Expired => ("カードの証明書の期限切れ", "card certificate expired"),
        Flag::NotYetValid => (
            "カードの証明書がまだ有効ではありません",
            "card certificate not yet valid",
        ),
        Flag::UnknownIssuer => ("発行元を確認できません", "card issuer not recognised"),
        Flag::BadSignature => (
            "証明書の署名が正しくありません",
            "certificate signature is wrong",
        ),
        Flag::Revoked => ("失効したカードです", "card has been revoked"),
        Flag::WrongKeyUsage => (
            "認証用の証明書ではありません",
            "not an authentication certificate",
        ),
        Flag::Malformed => ("証明書を読み取れません", "certificate unreadable"),
        Flag::Unregistered => (
            "名簿にありません（受付へ）",
            "not in the town register: see the desk",
        ),
        Flag::CardSignatureFailed => ("カードの確認に失敗しました", "card could not prove itself"),
        Flag::Other => ("確認が必要です", "needs a check"),
    }
}

/// The headline for a result: (Japanese, English, colour).
fn headline(r: &TapReport) -> (String, String, Color) {
    match (r.result, r.kind) {
        ("error", _) | ("refused", _) => (
            "もう一度タッチしてください".into(),
            "Please tap again".into(),
            Color::Red,
        ),
        (_, Some(EventKind::CheckOut)) => {
            ("退所しました".into(), "Checked OUT".into(), Color::Yellow)
        }
        (_, Some(_)) => ("入所しました".into(), "Checked IN".into(), Color::Green),
        _ => ("".into(), "".into(), Color::White),
    }
}

/// Draws the door screen.
pub fn render(frame: &mut Frame, s: &KioskState) {
    let area = frame.area();
    let rows = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(8),
        Constraint::Length(3),
    ])
    .split(area);
    let title = Paragraph::new(Line::from(vec![Span::styled(
        format!("避難所 Shelter {}", s.shelter),
        Style::default().add_modifier(Modifier::BOLD),
    )]))
    .alignment(Alignment::Center)
    .block(Block::default().borders(Borders::ALL));
    frame.render_widget(title, rows[0]);

    let mut lines: Vec<Line> = Vec::new();
    match &s.last {
        None => {
            lines.push(Line::from(""));
            lines.push(big("カードをタッチしてください", Color::White));
            lines.push(big("Please tap your My Number Card", Color::White));
        }
        Some(r) => {
            let (ja, en, colour) = headline(r);
            lines.push(Line::from(""));
            lines.push(big(&ja, colour));
            lines.push(big(&en, colour));
            lines.push(Line::from(""));
            let who = match (&r.name, r.event.as_ref().and_then(|e| e.resident)) {
                (Some(n), _) => format!("{n} さん"),
                (None, _) if r.result == "error" => String::new(),
                (None, _) => "名簿にない方 / not in the register".into(),
            };
            if !who.is_empty() {
                lines.push(big(&who, Color::Cyan));
            }
            if let (Some(p), Some(t)) = (r.household_present, r.household_total) {
                lines.push(big(
                    &format!("ご家族 {p} / {t} 人 到着   Household {p} of {t} here"),
                    Color::White,
                ));
            }
            if r.event.as_ref().is_some_and(|e| e.day_only) {
                lines.push(Line::from(
                    "車中泊・日中のみ / day only (sleeps in their car)",
                ));
            }
            if r.result == "repeat" {
                lines.push(Line::from("（同じタッチです / same tap）"));
            }
            if let Some(n) = r.pin_tries_left {
                lines.push(Line::from(format!(
                    "暗証番号が違います（残り{n}回） / wrong PIN ({n} tries left): checked in by card"
                )));
            }
            for f in r.event.iter().flat_map(|e| e.flags.iter()) {
                let (ja, en) = flag_words(*f);
                lines.push(Line::from(Span::styled(
                    format!("⚠ {ja} / {en}"),
                    Style::default()
                        .fg(Color::Yellow)
                        .add_modifier(Modifier::BOLD),
                )));
            }
            if let Some(m) = &r.message {
                lines.push(Line::from(m.clone()));
            }
        }
    }
    let body = Paragraph::new(lines)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .block(Block::default().borders(Borders::ALL));
    frame.render_widget(body, rows[1]);

    let footer = Paragraph::new(format!(
        "在所 present {}   未送信 unsent {}   q: 終了 quit",
        s.present, s.pending
    ))
    .alignment(Alignment::Center)
    .block(Block::default().borders(Borders::ALL));
    frame.render_widget(footer, rows[2]);
}

fn big(text: &str, colour: Color) -> Line<'static> {
    Line::from(Span::styled(
        text.to_owned(),
        Style::default()
            .fg(colour)
            .add_modifier(Modifier::BOLD | Modifier::REVERSED),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(s: &KioskState) -> String {
        let mut t = Terminal::new(TestBackend::new(90, 20)).unwrap();
        t.draw(|f| render(f, s)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn shows_who_in_or_out_household_and_flags() {
        let report = TapReport {
            result: "recorded",
            event: Some(evac_protocol::CheckEvent {
                id: evac_protocol::EventId {
                    shelter: evac_protocol::ShelterId(3),
                    seq: 1,
                },
                at: evac_protocol::Timestamp {
                    wall_ms: 0,
                    logical: 0,
                    node: 3,
                },
                kind: EventKind::CheckIn,
                card: None,
                resident: Some(evac_protocol::ResidentId(1)),
                household: Some(evac_protocol::HouseholdId(2)),
                assurance: evac_protocol::Assurance::Unverified,
                flags: vec![Flag::Expired],
                day_only: false,
                corrects: None,
                note: None,
            }),
            seq: Some(1),
            kind: Some(EventKind::CheckIn),
            name: Some("Yamada Hanako".into()),
            household_present: Some(2),
            household_total: Some(4),
            pin_tries_left: None,
            message: None,
        };
        let s = KioskState {
            shelter: "3".into(),
            last: Some(report),
            present: 5,
            pending: 1,
        };
        let text = screen(&s);
        for want in [
            "Checked IN",
            "Yamada Hanako",
            "Household 2 of 4 here",
            "card certificate expired",
            "present 5",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
        let idle = screen(&KioskState::default());
        assert!(idle.contains("Please tap your My Number Card"), "{idle}");
    }
}
