//! The door screen: who was recognised, in or out, household members present out of total,
//! and a flag in plain words, in Japanese and English.
//!
//! The headline ("IN", "OUT", "TAP AGAIN", "TAP CARD") is drawn in block letters with
//! `tui-big-text` so a resident can read it from a few metres; Japanese stays normal size
//! (a terminal cell cannot enlarge kanji) but bold, right under it. On a small terminal the
//! headline shrinks to the largest size at which it and the lines under it fit whole, down
//! to normal-size text; no size, down to 0x0, panics.
//!
//! [`KioskState`] holds no ratatui types; [`render`] draws it.

use crate::node::TapReport;
use crate::pinpad::{PIN_DIGITS, PadView};
use evac_protocol::{Assurance, EventKind, Flag};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use tui_big_text::{BigText, PixelSize};

/// Which language the door screen shows first (both are always shown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Language {
    /// Japanese first.
    #[default]
    Ja,
    /// English first.
    En,
}

impl Language {
    /// From the config's `kiosk.language` (`ja`, `en`; anything else is an error).
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("ja") => Ok(Language::Ja),
            Some("en") => Ok(Language::En),
            Some(other) => Err(format!(
                "kiosk.language = {other:?}: expected \"ja\" or \"en\""
            )),
        }
    }

    /// `ja` and `en` joined with " / ", in this language's order.
    fn both(self, ja: &str, en: &str) -> String {
        match self {
            Language::Ja => format!("{ja} / {en}"),
            Language::En => format!("{en} / {ja}"),
        }
    }
}

/// What the door screen shows.
#[derive(Clone, Debug, Default)]
pub struct KioskState {
    /// The shelter's name for the title (the configured name, else "Shelter N").
    pub shelter: String,
    /// The language shown first.
    pub language: Language,
    /// The last tap's result.
    pub last: Option<TapReport>,
    /// People present.
    pub present: u32,
    /// Events not yet acknowledged by HQ.
    pub pending: u64,
    /// HQ was found ahead of this ledger (restored or rebuilt) and it recovered: staff
    /// should tell HQ and read the node's log.
    pub ledger_recovered: bool,
    /// What the PIN pad holds (digits are never shown).
    pub pad: PadView,
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

/// The headline of a screen: the big English word, the Japanese sentence under it, the
/// same sentence in English, and the colour.
type Headline = (&'static str, &'static str, &'static str, Color);

const IDLE: Headline = (
    "TAP CARD",
    "カードをタッチしてください",
    "Please tap your My Number Card",
    Color::White,
);

fn headline(r: Option<&TapReport>) -> Headline {
    match r.map(|r| (r.result, r.kind)) {
        Some(("error" | "refused", _)) => (
            "TAP AGAIN",
            "もう一度タッチしてください",
            "Please tap again",
            Color::Red,
        ),
        Some((_, Some(EventKind::CheckOut))) => {
            ("OUT", "退所しました", "You are checked out", Color::Yellow)
        }
        Some((_, Some(_))) => ("IN", "入所しました", "You are checked in", Color::Green),
        None | Some((_, None)) => IDLE,
    }
}

/// How big a piece of text is drawn: block letters of some pixel size, or normal text.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Size {
    Big(PixelSize),
    Normal,
}

/// Sizes of the headline and of the household figure, largest first; each is tried until
/// one fits.
const SIZES: [Size; 4] = [
    Size::Big(PixelSize::Full),
    Size::Big(PixelSize::HalfHeight),
    Size::Big(PixelSize::Quadrant),
    Size::Normal,
];

impl Size {
    /// (columns, rows) that `text` takes at this size.
    fn extent(self, text: &str) -> (usize, usize) {
        let n = text.chars().count();
        match self {
            Size::Big(PixelSize::Full) => (n * 8, 8),
            Size::Big(PixelSize::HalfHeight) => (n * 8, 4),
            Size::Big(_) => (n * 4, 4),
            Size::Normal => (n + 2, 1),
        }
    }
}

/// Draws `text` at `size` in `colour`, centred in `area`.
fn draw_text(frame: &mut Frame, area: Rect, text: &str, size: Size, colour: Color) {
    let style = Style::default().fg(colour).add_modifier(Modifier::BOLD);
    match size {
        Size::Big(pixel_size) => frame.render_widget(
            BigText::builder()
                .pixel_size(pixel_size)
                .style(style)
                .lines(vec![Line::from(text.to_owned())])
                .centered()
                .build(),
            area,
        ),
        Size::Normal => frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!(" {text} "),
                style.add_modifier(Modifier::REVERSED),
            )))
            .centered(),
            area,
        ),
    }
}

/// The text apart from the headline and the household: (above the household: Japanese
/// headline and who; below it: day only, repeat, wrong PIN, flags, message).
fn body(s: &KioskState, (_, ja, en, colour): Headline) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let lang = s.language;
    let (first, second) = match lang {
        Language::Ja => (ja, en),
        Language::En => (en, ja),
    };
    let mut upper = vec![
        Line::from(Span::styled(first, bold.fg(colour))),
        Line::from(second),
    ];
    let mut lower = Vec::new();
    let Some(r) = &s.last else {
        return (upper, lower);
    };
    upper.push(Line::from(""));
    let who = match &r.name {
        Some(n) => format!("{n} さん"),
        None if r.result == "error" => String::new(),
        None => lang.both("名簿にない方", "not in the register"),
    };
    if !who.is_empty() {
        upper.push(Line::from(Span::styled(who, bold.fg(Color::Cyan))));
    }
    if r.event.as_ref().is_some_and(|e| e.day_only) {
        lower.push(Line::from(
            lang.both("車中泊・日中のみ", "day only (sleeps in their car)"),
        ));
    }
    if r.result == "repeat" {
        lower.push(Line::from(lang.both("（同じタッチです）", "(same tap)")));
    }
    if r.event
        .as_ref()
        .is_some_and(|e| e.assurance == Assurance::CardSigned)
    {
        lower.push(Line::from(Span::styled(
            lang.both("暗証番号で本人確認済み", "identity confirmed with the PIN"),
            bold.fg(Color::Green),
        )));
    }
    if let Some(n) = r.pin_tries_left {
        lower.push(Line::from(lang.both(
            &format!("暗証番号が違います（残り{n}回）"),
            &format!("wrong PIN ({n} tries left): checked in by card"),
        )));
    }
    for f in r.event.iter().flat_map(|e| e.flags.iter()) {
        let (ja, en) = flag_words(*f);
        lower.push(Line::from(Span::styled(
            format!("⚠ {}", lang.both(ja, en)),
            bold.fg(Color::Yellow),
        )));
    }
    lower.extend(r.message.clone().map(Line::from));
    (upper, lower)
}

fn para(lines: Vec<Line<'static>>) -> Paragraph<'static> {
    Paragraph::new(lines).centered().wrap(Wrap { trim: true })
}

/// Draws the door screen.
pub fn render(frame: &mut Frame, s: &KioskState) {
    let area = frame.area();
    // Borders cost six rows; a small screen keeps them for the body text instead.
    let roomy = area.height >= 16 && area.width >= 20;
    let bar = if roomy { 3 } else { 1 };
    let framed = |b: Block<'static>| if roomy { b.borders(Borders::ALL) } else { b };
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(bar),
        Constraint::Fill(1),
        Constraint::Length(bar),
    ])
    .areas(area);
    let title = Paragraph::new(Line::from(Span::styled(
        match s.language {
            Language::Ja => format!("避難所 {}", s.shelter),
            Language::En => format!("{} 避難所", s.shelter),
        },
        Style::default().add_modifier(Modifier::BOLD),
    )))
    .centered()
    .block(framed(Block::default()));
    frame.render_widget(title, top);
    // No key stops the node: a resident could press it. Staff stop it through the service
    // manager (SIGTERM).
    let mut footer = vec![Span::raw(format!(
        "{}   {}",
        s.language.both(
            &format!("在所 {}", s.present),
            &format!("present {}", s.present)
        ),
        s.language.both(
            &format!("未送信 {}", s.pending),
            &format!("unsent {}", s.pending)
        ),
    ))];
    match s.pad {
        PadView::Idle => {}
        PadView::Typing(n) => footer.push(Span::styled(
            format!(
                "   {} {}{}",
                s.language.both("暗証番号", "PIN"),
                "●".repeat(n),
                "○".repeat(PIN_DIGITS.saturating_sub(n))
            ),
            Style::default().add_modifier(Modifier::BOLD),
        )),
        PadView::Ready => footer.push(Span::styled(
            format!(
                "   {}",
                s.language.both(
                    "暗証番号 ●●●● 確定: カードをかざしてください",
                    "PIN entered: tap your card"
                )
            ),
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD),
        )),
    }
    if s.ledger_recovered {
        footer.push(Span::styled(
            format!(
                "   ⚠ {}",
                s.language.both(
                    "台帳をHQに合わせて復旧しました(係員へ)",
                    "ledger recovered to HQ's count: staff, see the log"
                )
            ),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    let footer = Paragraph::new(Line::from(footer))
        .centered()
        .block(framed(Block::default()));
    frame.render_widget(footer, bottom);

    let outer = framed(Block::default());
    let inner = outer.inner(middle);
    frame.render_widget(outer, middle);
    let h @ (big, _, _, colour) = headline(s.last.as_ref());
    let (upper, lower) = body(s, h);
    let household = s
        .last
        .as_ref()
        .and_then(|r| r.household_present.zip(r.household_total));
    let figure = household.map(|(p, t)| format!("{p}/{t}"));
    let label = |big: bool| -> Vec<Line<'static>> {
        let text = match household {
            Some(_) if big => s.language.both("ご家族 到着", "household members present"),
            Some((p, t)) => s.language.both(
                &format!("ご家族 {p} / {t} 人 到着"),
                &format!("household members present {p} / {t}"),
            ),
            None => return vec![],
        };
        vec![Line::from(Span::styled(
            text,
            Style::default().add_modifier(Modifier::BOLD),
        ))]
    };
    let (upper, lower) = (para(upper), para(lower));
    let rows = |p: &Paragraph| p.line_count(inner.width);
    let text_rows = rows(&upper) + rows(&lower);
    let label_rows = [rows(&para(label(false))), rows(&para(label(true)))];
    // The largest headline at which everything fits whole, then the largest figure.
    let mut pick = None;
    'pick: for hs in SIZES {
        for fs in SIZES {
            let (hw, hr) = hs.extent(big);
            let (fw, fr) = match &figure {
                Some(f) if fs != Size::Normal => fs.extent(f),
                _ => (0, 0),
            };
            let text = text_rows + label_rows[usize::from(fr > 0)];
            if hw.max(fw) <= usize::from(inner.width) && hr + fr + text <= usize::from(inner.height)
            {
                pick = Some((hs, fs, fr));
                break 'pick;
            }
        }
    }
    // Nothing fits whole (a tiny screen): normal text, cut at the bottom.
    let (hs, fs, fr) = pick.unwrap_or((Size::Normal, Size::Normal, 0));
    let label = para(label(fr > 0));
    let len = |n: usize| Constraint::Length(u16::try_from(n).unwrap_or(u16::MAX));
    let [head_area, upper_area, label_area, figure_area, lower_area] = Layout::vertical([
        len(hs.extent(big).1),
        len(rows(&upper)),
        len(rows(&label)),
        len(fr),
        len(rows(&lower)),
    ])
    .flex(Flex::Center)
    .areas(inner);
    draw_text(frame, head_area, big, hs, colour);
    frame.render_widget(upper, upper_area);
    frame.render_widget(label, label_area);
    if let Some(f) = &figure
        && fr > 0
    {
        draw_text(frame, figure_area, f, fs, Color::White);
    }
    frame.render_widget(lower, lower_area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::{Assurance, CheckEvent, EventId, HouseholdId, ResidentId, ShelterId};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    fn draw(s: &KioskState, w: u16, h: u16) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| render(f, s)).unwrap();
        t.backend().buffer().clone()
    }

    fn tap(result: &'static str, kind: EventKind, present: usize) -> KioskState {
        let event = CheckEvent {
            id: EventId {
                shelter: ShelterId(3),
                seq: 1,
            },
            at: evac_protocol::Timestamp {
                wall_ms: 0,
                logical: 0,
                node: 3,
            },
            kind,
            card: None,
            resident: Some(ResidentId(1)),
            household: Some(HouseholdId(2)),
            assurance: Assurance::CardRead,
            flags: vec![],
            day_only: false,
            corrects: None,
            note: None,
        };
        state(Some(TapReport {
            result,
            event: Some(event),
            seq: Some(1),
            kind: Some(kind),
            name: Some("山田 花子".into()),
            household_present: Some(present),
            household_total: Some(3),
            pin_tries_left: None,
            message: None,
        }))
    }

    fn state(last: Option<TapReport>) -> KioskState {
        KioskState {
            shelter: "港小学校 Minato Elementary".into(),
            language: Language::Ja,
            last,
            present: 5,
            pending: 1,
            ledger_recovered: false,
            pad: PadView::Idle,
        }
    }

    fn error() -> KioskState {
        state(Some(TapReport::error_message(
            "the card was removed from the reader during the read; tap again".into(),
        )))
    }

    /// An unverified check-in: expired certificate, card not in the registry.
    fn flagged() -> KioskState {
        let mut r = tap("recorded", EventKind::CheckIn, 1).last.unwrap();
        let e = r.event.as_mut().unwrap();
        (e.resident, e.household, e.assurance) = (None, None, Assurance::Unverified);
        e.flags = vec![Flag::Expired, Flag::Unregistered];
        (r.name, r.household_present, r.household_total) = (None, None, None);
        state(Some(r))
    }

    fn all() -> Vec<(&'static str, KioskState)> {
        vec![
            ("idle", state(None)),
            ("check_in", tap("recorded", EventKind::CheckIn, 2)),
            ("check_out", tap("recorded", EventKind::CheckOut, 1)),
            ("repeat", tap("repeat", EventKind::CheckIn, 2)),
            ("error", error()),
            ("flagged", flagged()),
        ]
    }

    #[test]
    fn whole_screen_snapshots_at_100x30() {
        for (name, s) in all() {
            insta::assert_debug_snapshot!(name, draw(&s, 100, 30));
        }
    }

    /// Regression (issue 13, item 6): `language = "en"` still put Japanese first and left
    /// 入所しました untranslated, and no key may be offered to quit the node.
    #[test]
    fn english_first_translates_every_line_and_offers_no_quit_key() {
        for (name, mut s) in all() {
            s.language = Language::En;
            let screen = format!("{:?}", draw(&s, 100, 30));
            let (_, ja, en, _) = headline(s.last.as_ref());
            let (j, e) = (screen.find(ja), screen.find(en));
            assert!(
                matches!((e, j), (Some(e), Some(j)) if e < j),
                "{name}: {en:?} not before {ja:?}\n{screen}"
            );
            assert!(screen.contains("present 5"), "{name}\n{screen}");
            assert!(!screen.contains("quit"), "{name}\n{screen}");
        }
        let s = tap("recorded", EventKind::CheckIn, 2);
        let screen = format!("{:?}", draw(&s, 100, 30));
        assert!(screen.contains("You are checked in"), "{screen}");
        assert!(screen.contains("Minato Elementary"), "{screen}");
    }

    #[test]
    fn small_screens_fall_back_to_smaller_type() {
        for (name, s) in all() {
            insta::assert_debug_snapshot!(format!("small_40x12_{name}"), draw(&s, 40, 12));
        }
        insta::assert_debug_snapshot!("small_24x8_check_in", draw(&all()[1].1, 24, 8));
    }

    #[test]
    fn never_panics_and_keeps_the_japanese_headline_whole() {
        for (name, s) in all() {
            let ja = headline(s.last.as_ref()).1;
            for (w, h) in [(0, 0), (1, 1), (0, 30), (100, 0), (2, 3), (u16::MAX, 1)] {
                let b = draw(&s, w, h);
                assert_eq!((b.area.width, b.area.height), (w, h), "{name}");
            }
            for w in [
                0, 1, 2, 3, 5, 8, 13, 20, 27, 30, 33, 40, 52, 64, 73, 80, 101, 160,
            ] {
                for h in [0, 1, 2, 3, 5, 8, 10, 11, 12, 13, 15, 16, 20, 24, 30, 34, 50] {
                    // Debug shows each wide character once.
                    let screen = format!("{:?}", draw(&s, w, h));
                    let whole = screen.contains(ja);
                    assert!(
                        w < 30 || h < 10 || whole,
                        "{name} {w}x{h}: {ja} cut\n{screen}"
                    );
                }
            }
        }
    }

    #[test]
    fn headline_in_the_colour_of_the_result() {
        use Color::{Green, Red, White, Yellow};
        for ((name, s), colour) in all()
            .into_iter()
            .zip([White, Green, Yellow, Green, Red, Green])
        {
            let buf = draw(&s, 100, 30);
            let b = &buf;
            let block = |y: u16| {
                (0..100)
                    .map(move |x| &b[(x, y)])
                    .filter(|c| c.symbol() == "█")
            };
            // The headline is the top 8 rows of block letters (the household figure is below).
            let top = (0..30).find(|y| block(*y).count() > 0).unwrap();
            let cells: Vec<_> = (top..top + 8).flat_map(block).collect();
            assert!(cells.len() > 20, "{name}: no block letters");
            assert!(
                cells.iter().all(|c| c.fg == colour),
                "{name}: not {colour:?}"
            );
        }
    }
}
