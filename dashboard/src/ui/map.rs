//! Map: the town's zones, shelters coloured by crowding level, households with someone
//! still unaccounted, and (▲) those whose household answered "needs help at home" from the TV
//! and no officer has handled yet, at the dwelling's location from the town file; zoom and
//! pan.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::canvas::{Canvas, Line as CLine, Points};
use ratatui::widgets::{Block, Paragraph};

use super::Theme;
use crate::app::App;
use crate::i18n::Crowding;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let th = Theme::of(app);
    let l = app.lang;
    let s = &app.town;
    let Some(map) = &s.map else {
        f.render_widget(
            Paragraph::new(l.t(
                "No town_file in the configuration: no map.",
                "設定に town_file がないため地図は表示できません。",
            ))
            .block(Block::bordered().title(l.t(" Map ", " 地図 "))),
            area,
        );
        return;
    };
    let b = map.extent();
    let scale = 0.5f64.powi(i32::from(app.map_zoom));
    let (w, h) = (
        ((b[2] - b[0]) * scale).max(1e-6),
        ((b[3] - b[1]) * scale).max(1e-6),
    );
    let cx = (b[0] + b[2]) / 2.0 + f64::from(app.map_pan.0) * w / 4.0;
    let cy = (b[1] + b[3]) / 2.0 + f64::from(app.map_pan.1) * h / 4.0;
    let (x0, x1, y0, y1) = (
        cx - w / 2.0 * 1.05,
        cx + w / 2.0 * 1.05,
        cy - h / 2.0 * 1.05,
        cy + h / 2.0 * 1.05,
    );

    let missing = &s.derived.missing_points;
    let help = &s.derived.help_points;
    let mut shelters: Vec<(Crowding, (f64, f64))> = Vec::new();
    for sh in map.shelters() {
        let level = s
            .shelters
            .get(&evac_protocol::ShelterId(sh.id))
            .map_or(Crowding::Closed, |r| {
                Crowding::of(r.status.open, r.status.present_day, r.status.capacity)
            });
        shelters.push((level, (sh.location.lon, sh.location.lat)));
    }
    let color = app.color;
    let title = format!(
        " {} ×{}  ● {}{}  ■ {} ",
        l.t("Map", "地図"),
        1u32 << app.map_zoom,
        l.t("unaccounted household", "未確認世帯"),
        if help.is_empty() {
            String::new()
        } else {
            format!(
                "  ▲ {} {}",
                l.t("help at home (TV)", "在宅要救助(TV)"),
                help.len()
            )
        },
        l.t("shelter (colour: crowding)", "避難所(色:混雑度)"),
    );
    let canvas = Canvas::default()
        .block(Block::bordered().title(title))
        .x_bounds([x0, x1])
        .y_bounds([y0, y1])
        .paint(move |ctx| {
            let zc = if color { Color::Blue } else { Color::Reset };
            for z in map.zones() {
                for poly in &z.area.0 {
                    let ring: Vec<_> = poly.exterior().coords().collect();
                    for pair in ring.windows(2) {
                        ctx.draw(&CLine {
                            x1: pair[0].x,
                            y1: pair[0].y,
                            x2: pair[1].x,
                            y2: pair[1].y,
                            color: zc,
                        });
                    }
                }
            }
            ctx.layer();
            ctx.draw(&Points {
                coords: missing,
                color: if color { Color::Red } else { Color::Reset },
            });
            ctx.layer();
            // Above the dots: a household that asked for help from its TV is not lost among
            // the unaccounted.
            for at in help {
                ctx.print(
                    at.0,
                    at.1,
                    ratatui::text::Span::styled(
                        "▲",
                        ratatui::style::Style::new()
                            .fg(if color {
                                Color::LightMagenta
                            } else {
                                Color::Reset
                            })
                            .add_modifier(ratatui::style::Modifier::BOLD),
                    ),
                );
            }
            ctx.layer();
            for (level, at) in &shelters {
                let c = if color {
                    match level {
                        Crowding::Empty => Color::Green,
                        Crowding::Busy => Color::Yellow,
                        Crowding::Crowded => Color::LightRed,
                        Crowding::Full => Color::Magenta,
                        Crowding::Closed => Color::DarkGray,
                    }
                } else {
                    Color::Reset
                };
                ctx.print(
                    at.0,
                    at.1,
                    ratatui::text::Span::styled("■", ratatui::style::Style::new().fg(c)),
                );
            }
        });
    let _ = th;
    f.render_widget(canvas, area);
}
