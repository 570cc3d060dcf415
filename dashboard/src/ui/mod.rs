//! Drawing: `render(&App, frame)` and nothing else; one module per panel.

mod chrome;
mod log;
mod map;
mod overview;
mod popup;
mod search;
mod shelters;
mod unaccounted;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};

use crate::app::{App, View};

/// Draws the whole screen.
pub fn render(app: &App, f: &mut Frame) {
    let [header, tabs, body, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    chrome::header(app, f, header);
    chrome::tabs(app, f, tabs);
    match app.view {
        View::Overview => overview::render(app, f, body),
        View::Shelters => shelters::render(app, f, body),
        View::Unaccounted => unaccounted::render(app, f, body),
        View::Map => map::render(app, f, body),
        View::Search => search::render(app, f, body),
        View::Log => log::render(app, f, body),
    }
    chrome::keybar(app, f, keys);
    popup::render(app, f);
}

/// Styles that drop their colours under `NO_COLOR`.
pub(crate) struct Theme {
    color: bool,
}

impl Theme {
    pub(crate) fn of(app: &App) -> Theme {
        Theme { color: app.color }
    }

    /// A foreground colour (plain text without colours).
    pub(crate) fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// Something that must stand out even without colour.
    pub(crate) fn alarm(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    /// The selected row.
    pub(crate) fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Column headers.
    pub(crate) fn head(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Colour of a crowding level.
    pub(crate) fn crowding(&self, c: crate::i18n::Crowding) -> Style {
        use crate::i18n::Crowding::*;
        self.fg(match c {
            Empty => Color::Green,
            Busy => Color::Yellow,
            Crowded => Color::LightRed,
            Full => Color::Red,
            Closed => Color::DarkGray,
        })
    }
}

/// `HH:MM:SS` local time of a Unix ms time.
pub(crate) fn clock(ms: u64, offset_min: i32) -> String {
    let s = (ms / 1000) as i64 + i64::from(offset_min) * 60;
    let d = s.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", d / 3600, d / 60 % 60, d % 60)
}

/// `HH:MM:SS` with the offset, for reports: `14:05:09 (UTC+09:00)`.
pub fn clock_text(ms: u64, offset_min: i32) -> String {
    format!(
        "{} (UTC{}{:02}:{:02})",
        clock(ms, offset_min),
        if offset_min < 0 { '-' } else { '+' },
        offset_min.abs() / 60,
        offset_min.abs() % 60
    )
}

/// A short duration: `45s`, `12m`, `3h05m`.
pub(crate) fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// A number with thousands separators.
pub(crate) fn num(n: impl Into<u64>) -> String {
    let s = n.into().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `s` cut or padded with spaces to `width` terminal cells (CJK characters take two).
pub(crate) fn pad(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut w = 0;
    for ch in s.chars() {
        let cw = ch.width().unwrap_or(0);
        if w + cw > width {
            break;
        }
        w += cw;
        out.push(ch);
    }
    out.extend(std::iter::repeat_n(' ', width - w));
    out
}

/// A bar of `width` cells for `ratio` (0..=1).
pub(crate) fn bar(ratio: f64, width: usize) -> String {
    let full = ((ratio.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

/// The first row to show so that `cursor` is visible in `height` rows.
pub(crate) fn scroll(cursor: usize, height: usize) -> usize {
    if height == 0 {
        return cursor;
    }
    cursor.saturating_sub(height - 1)
}

/// A rectangle of `w`×`h` centred in `r` (clamped to it).
pub(crate) fn centred(r: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(r.width);
    let h = h.min(r.height);
    Rect::new(r.x + (r.width - w) / 2, r.y + (r.height - h) / 2, w, h)
}

#[cfg(test)]
mod address_tests;
#[cfg(test)]
mod tests;
