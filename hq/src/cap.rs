//! CAP 1.2 intake: an OASIS Common Alerting Protocol message becomes a hazard notice.
//!
//! - `msgType` Alert issues a notice; Update replaces the notice of the message named in
//!   `references`; Cancel lifts it. Ack and Error are refused.
//! - `status` Actual is real; Exercise and Test are drills and are labelled so on every order;
//!   System and Draft are refused.
//! - The hazard comes from an `eventCode` with `valueName` `evac:hazard` (`tsunami`, ...), or
//!   from the `event` text (English or Japanese). The level comes from a `parameter`
//!   `evac:level` (3, 4, 5), or from `event` and `severity` by the table in [`level`]
//!   (an advisory is level 3 whatever its severity).
//! - The area is the union of `polygon`s (`lat,lon` pairs, at least 4, closed), `circle`s
//!   (`lat,lon radius-km`) and `geocode`s `evac:zone` (zone ids of the town).
//!
//! Every refusal names the element at fault (`<alert/info/area/polygon>`) and its line.
//!
//! oasiscap 0.2 reads CAP well, but its errors come from serde and name neither the element
//! nor the line, which officers need when a feed sends something odd; the subset HQ acts on is
//! small, so it is read here with quick-xml.

use evac_protocol::{AlertLevel, Hazard};
use quick_xml::events::Event;

use crate::error::HqError;
use crate::notice::{Area, CapRef, Circle, Notice, check_ring, parse_rfc3339};

/// The CAP 1.2 namespace.
pub const CAP12_NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// What a CAP message asks.
#[derive(Debug, Clone, PartialEq)]
pub enum CapAction {
    /// A new notice.
    Alert(Notice),
    /// A notice replacing the one of the referenced message.
    Update {
        /// The notice.
        notice: Notice,
        /// The messages it references (the active one among them is replaced).
        references: Vec<CapRef>,
    },
    /// Lift the notice of the referenced message.
    Cancel {
        /// The messages it references (the active one among them is lifted).
        references: Vec<CapRef>,
    },
}

/// A CAP message as HQ understands it.
#[derive(Debug, Clone, PartialEq)]
pub struct CapMessage {
    /// `<identifier>` and `<sender>`.
    pub id: CapRef,
    /// `<sent>` (Unix seconds): with the identifier and sender, what makes a message the same.
    pub sent: i64,
    /// Exercise or Test.
    pub drill: bool,
    /// What to do.
    pub action: CapAction,
}

#[derive(Debug, Default)]
struct El {
    name: String,
    xmlns: Option<String>,
    text: String,
    line: usize,
    children: Vec<El>,
}

impl El {
    fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn value(&self) -> &str {
        self.text.trim()
    }
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, element: &str, line: usize, message: impl Into<String>) -> HqError {
        HqError::Cap {
            file: format!("{}:{line}", self.file),
            element: element.to_owned(),
            message: message.into(),
        }
    }

    fn required<'e>(&self, parent: &'e El, path: &str, name: &str) -> Result<&'e El, HqError> {
        parent
            .child(name)
            .filter(|c| !c.value().is_empty())
            .ok_or_else(|| self.err(&format!("{path}/{name}"), parent.line, "missing or empty"))
    }
}

/// The largest CAP file HQ reads (bytes). Real CAP messages are kilobytes; a detailed
/// polygon of a long coast is tens of kilobytes.
pub const MAX_CAP_BYTES: usize = 1 << 20;
/// The deepest element nesting HQ reads (a CAP alert nests five deep:
/// `alert/info/area/geocode/value`).
pub const MAX_DEPTH: usize = 16;
/// The most elements HQ reads in one CAP message.
pub const MAX_ELEMENTS: usize = 10_000;

/// Line numbers of byte positions that only move forward: each byte is counted once, so a
/// whole document costs linear time (a rescan from the start per element was quadratic).
struct Lines<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    /// The 1-based line of byte `pos`; positions before the last one asked give that line.
    fn at(&mut self, pos: usize) -> usize {
        let pos = pos.min(self.text.len());
        if pos > self.pos {
            self.line += self.text[self.pos..pos]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.pos = pos;
        }
        self.line
    }
}

fn parse_xml(text: &str, ctx: &Ctx<'_>) -> Result<El, HqError> {
    if text.len() > MAX_CAP_BYTES {
        return Err(ctx.err(
            "document",
            1,
            format!(
                "{} bytes: larger than the {MAX_CAP_BYTES} bytes HQ reads",
                text.len()
            ),
        ));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut lines = Lines::new(text);
    let mut line_at = |_: &str, pos: usize| lines.at(pos);
    let mut stack: Vec<El> = vec![El::default()];
    let mut elements = 0usize;
    let path = |stack: &[El]| {
        stack
            .iter()
            .skip(1)
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join("/")
    };
    loop {
        let pos = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| {
            let line = line_at(text, reader.error_position() as usize);
            let at = path(&stack);
            ctx.err(
                if at.is_empty() { "document" } else { &at },
                line,
                format!("not well-formed XML: {e}"),
            )
        })?;
        match ev {
            Event::Start(_) | Event::Empty(_) if elements >= MAX_ELEMENTS => {
                return Err(ctx.err(
                    &path(&stack),
                    line_at(text, pos),
                    format!("more than {MAX_ELEMENTS} elements: not a CAP message HQ reads"),
                ));
            }
            Event::Start(_) if stack.len() > MAX_DEPTH => {
                return Err(ctx.err(
                    &path(&stack),
                    line_at(text, pos),
                    format!("nested deeper than {MAX_DEPTH} elements"),
                ));
            }
            Event::Start(s) => {
                elements += 1;
                let xmlns = s
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"xmlns")
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                stack.push(El {
                    name,
                    xmlns,
                    line: line_at(text, pos),
                    ..El::default()
                });
            }
            Event::Empty(s) => {
                elements += 1;
                let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                let el = El {
                    name,
                    line: line_at(text, pos),
                    ..El::default()
                };
                if let Some(top) = stack.last_mut() {
                    top.children.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().unwrap_or_default();
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => {
                        return Err(ctx.err("document", line_at(text, pos), "unbalanced end tag"));
                    }
                }
            }
            Event::Text(t) => {
                let s = t.xml_content().map_err(|e| {
                    ctx.err(&path(&stack), line_at(text, pos), format!("bad text: {e}"))
                })?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().ok().flatten()
                } else {
                    match r.decode().unwrap_or_default().as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    }
                };
                let Some(c) = c else {
                    return Err(ctx.err(
                        &path(&stack),
                        line_at(text, pos),
                        "unknown entity reference",
                    ));
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(ctx.err(
            &path(&stack),
            line_at(text, text.len()),
            "document ends inside this element",
        ));
    }
    let mut doc = stack.pop().unwrap_or_default();
    match doc.children.len() {
        1 => Ok(doc.children.remove(0)),
        0 => Err(ctx.err("document", 1, "no root element")),
        _ => Err(ctx.err("document", 1, "more than one root element")),
    }
}

/// The hazard named by an event text, English or Japanese.
fn hazard_from_text(event: &str) -> Option<Hazard> {
    let e = event.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    Some(if has(&["tsunami", "津波"]) {
        Hazard::Tsunami
    } else if has(&["storm surge", "高潮"]) {
        Hazard::StormSurge
    } else if has(&["inland flood", "内水"]) {
        Hazard::InlandFlood
    } else if has(&["flood", "洪水", "氾濫"]) {
        Hazard::Flood
    } else if has(&["landslide", "debris", "土砂", "崖", "地滑り"]) {
        Hazard::Landslide
    } else if has(&["volcan", "噴火", "火山"]) {
        Hazard::Volcano
    } else if has(&["fire", "火災", "火事"]) {
        Hazard::LargeFire
    } else if has(&["earthquake", "地震"]) {
        Hazard::Earthquake
    } else {
        return None;
    })
}

fn value_pairs<'a>(
    info: &'a El,
    name: &'a str,
) -> impl Iterator<Item = (&'a El, &'a str, &'a str)> + 'a {
    info.all(name)
        .filter_map(|p| Some((p, p.child("valueName")?.value(), p.child("value")?.value())))
}

fn parse_references(ctx: &Ctx<'_>, el: &El) -> Result<Vec<CapRef>, HqError> {
    // "sender,identifier,sent" triples separated by spaces.
    el.value()
        .split_whitespace()
        .map(
            |triple| match triple.split(',').collect::<Vec<_>>().as_slice() {
                [sender, identifier, _sent] if !identifier.is_empty() => Ok(CapRef {
                    sender: (*sender).to_owned(),
                    identifier: (*identifier).to_owned(),
                }),
                _ => Err(ctx.err(
                    "alert/references",
                    el.line,
                    format!("expected sender,identifier,sent; found {triple:?}"),
                )),
            },
        )
        .collect()
}

fn parse_area(ctx: &Ctx<'_>, info: &El) -> Result<Area, HqError> {
    let mut area = Area::default();
    let areas: Vec<&El> = info.all("area").collect();
    if areas.is_empty() {
        return Err(ctx.err(
            "alert/info/area",
            info.line,
            "missing: an order needs an area",
        ));
    }
    for a in areas {
        for p in a.all("polygon") {
            if p.value().is_empty() {
                continue;
            }
            let mut ring = Vec::new();
            for pair in p.value().split_whitespace() {
                let nums: Vec<Option<f64>> = pair
                    .split(',')
                    .map(|n| n.trim().parse::<f64>().ok())
                    .collect();
                let [Some(lat), Some(lon)] = nums.as_slice() else {
                    return Err(ctx.err(
                        "alert/info/area/polygon",
                        p.line,
                        format!("{pair:?} is not a lat,lon pair"),
                    ));
                };
                ring.push([*lon, *lat]);
            }
            if ring.len() < 4 {
                return Err(ctx.err(
                    "alert/info/area/polygon",
                    p.line,
                    format!("needs at least 4 points, found {}", ring.len()),
                ));
            }
            if ring.first() != ring.last() {
                return Err(ctx.err(
                    "alert/info/area/polygon",
                    p.line,
                    "first and last points differ (the polygon is not closed)",
                ));
            }
            check_ring(&ring)
                .map_err(|e| ctx.err("alert/info/area/polygon", p.line, e.to_string()))?;
            area.polygons.push(ring);
        }
        for c in a.all("circle") {
            let bad = || {
                ctx.err(
                    "alert/info/area/circle",
                    c.line,
                    format!("expected \"lat,lon radius-km\", found {:?}", c.value()),
                )
            };
            let mut it = c.value().split_whitespace();
            let (Some(centre), Some(radius), None) = (it.next(), it.next(), it.next()) else {
                return Err(bad());
            };
            let nums: Vec<Option<f64>> = centre.split(',').map(|n| n.parse::<f64>().ok()).collect();
            let ([Some(lat), Some(lon)], Ok(km)) = (nums.as_slice(), radius.parse::<f64>()) else {
                return Err(bad());
            };
            if !(km.is_finite() && km >= 0.0) || check_ring(&[[*lon, *lat]; 3]).is_err() {
                return Err(bad());
            }
            area.circles.push(Circle {
                lon: *lon,
                lat: *lat,
                radius_m: km * 1000.0,
            });
        }
        for (g, name, value) in value_pairs(a, "geocode") {
            if name == "evac:zone" {
                let z = value.parse::<u32>().map_err(|_| {
                    ctx.err(
                        "alert/info/area/geocode/value",
                        g.line,
                        format!("zone id {value:?} is not a number"),
                    )
                })?;
                area.zones.push(z);
            }
        }
    }
    if area.is_empty() {
        return Err(ctx.err(
            "alert/info/area",
            info.line,
            "no polygon, circle or evac:zone geocode that HQ can use",
        ));
    }
    Ok(area)
}

fn parse_time(ctx: &Ctx<'_>, el: &El, path: &str) -> Result<i64, HqError> {
    parse_rfc3339(el.value()).map_err(|e| ctx.err(path, el.line, e.to_string()))
}

/// Parses a CAP 1.2 message; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<CapMessage, HqError> {
    let ctx = Ctx { file };
    let alert = parse_xml(text, &ctx)?;
    if alert.name != "alert" {
        return Err(ctx.err(&alert.name, alert.line, "the root element must be <alert>"));
    }
    match alert.xmlns.as_deref() {
        Some(CAP12_NS) => {}
        Some(other) => {
            return Err(ctx.err(
                "alert",
                alert.line,
                format!("namespace {other:?} is not CAP 1.2 ({CAP12_NS})"),
            ));
        }
        None => {
            return Err(ctx.err(
                "alert",
                alert.line,
                format!("no xmlns: expected {CAP12_NS}"),
            ));
        }
    }
    let identifier = ctx
        .required(&alert, "alert", "identifier")?
        .value()
        .to_owned();
    let sender = ctx.required(&alert, "alert", "sender")?.value().to_owned();
    let sent_el = ctx.required(&alert, "alert", "sent")?;
    let sent = parse_time(&ctx, sent_el, "alert/sent")?;
    let status = ctx.required(&alert, "alert", "status")?;
    let drill = match status.value() {
        "Actual" => false,
        "Exercise" | "Test" => true,
        "System" | "Draft" => {
            return Err(ctx.err(
                "alert/status",
                status.line,
                format!("{} messages carry no order: not taken in", status.value()),
            ));
        }
        other => {
            return Err(ctx.err(
                "alert/status",
                status.line,
                format!("unknown status {other:?}"),
            ));
        }
    };
    let msg_type = ctx.required(&alert, "alert", "msgType")?;
    ctx.required(&alert, "alert", "scope")?;
    let id = CapRef {
        sender: sender.clone(),
        identifier: identifier.clone(),
    };
    let references = || -> Result<Vec<CapRef>, HqError> {
        let r = alert
            .child("references")
            .filter(|r| !r.value().is_empty())
            .ok_or_else(|| {
                ctx.err(
                    "alert/references",
                    msg_type.line,
                    format!("a {} needs references", msg_type.value()),
                )
            })?;
        parse_references(&ctx, r)
    };
    let kind = msg_type.value();
    if kind == "Cancel" {
        return Ok(CapMessage {
            id,
            sent,
            drill,
            action: CapAction::Cancel {
                references: references()?,
            },
        });
    }
    if kind != "Alert" && kind != "Update" {
        let what = if matches!(kind, "Ack" | "Error") {
            "not supported"
        } else {
            "unknown"
        };
        return Err(ctx.err(
            "alert/msgType",
            msg_type.line,
            format!("{kind:?} is {what} (Alert, Update or Cancel)"),
        ));
    }
    let info = alert.child("info").ok_or_else(|| {
        ctx.err(
            "alert/info",
            alert.line,
            "missing: an order needs an info block",
        )
    })?;
    let event = ctx.required(info, "alert/info", "event")?;
    let severity = ctx.required(info, "alert/info", "severity")?;
    let hazard = match value_pairs(info, "eventCode").find(|(_, n, _)| *n == "evac:hazard") {
        Some((el, _, v)) => v.parse::<Hazard>().map_err(|_| {
            ctx.err(
                "alert/info/eventCode/value",
                el.line,
                format!("unknown hazard {v:?}"),
            )
        })?,
        None => hazard_from_text(event.value()).ok_or_else(|| {
            ctx.err(
                "alert/info/event",
                event.line,
                format!("no hazard HQ orders for in {:?}", event.value()),
            )
        })?,
    };
    let level = match value_pairs(info, "parameter").find(|(_, n, _)| *n == "evac:level") {
        Some((el, _, v)) => v
            .parse::<u8>()
            .ok()
            .and_then(|n| AlertLevel::try_from(n).ok())
            .ok_or_else(|| {
                ctx.err(
                    "alert/info/parameter/value",
                    el.line,
                    format!("evac:level {v:?} is not 3, 4 or 5"),
                )
            })?,
        None => level::level_for(event.value(), severity.value()).ok_or_else(|| {
            ctx.err(
                "alert/info/severity",
                severity.line,
                format!(
                    "{:?} gives no evacuation level (and no evac:level parameter)",
                    severity.value()
                ),
            )
        })?,
    };
    // `<effective>` and `<onset>` are facts about the hazard, on the sender's clock: they are
    // kept and shown, never the date of HQ's orders (HQ dates them by its own clock when it
    // issues them; `issued` here is the sender's `<sent>` until then).
    let effective = info
        .child("effective")
        .map(|el| parse_time(&ctx, el, "alert/info/effective"))
        .transpose()?;
    let onset = info
        .child("onset")
        .map(|el| parse_time(&ctx, el, "alert/info/onset"))
        .transpose()?;
    // Without `<expires>`, six hours from what the alert says is its start, as before.
    let expires = match info.child("expires") {
        Some(el) => parse_time(&ctx, el, "alert/info/expires")?,
        None => effective.or(onset).unwrap_or(sent) + 6 * 3600,
    };
    let area = parse_area(&ctx, info)?;
    let name = info
        .child("headline")
        .map(|h| h.value())
        .filter(|h| !h.is_empty())
        .unwrap_or(event.value())
        .to_owned();
    let notice = Notice {
        name,
        hazard,
        level,
        area,
        issued: sent,
        expires,
        onset,
        effective,
        drill,
        source: format!("cap:{sender}"),
        cap: Some(id.clone()),
    };
    let action = if kind == "Update" {
        CapAction::Update {
            notice,
            references: references()?,
        }
    } else {
        CapAction::Alert(notice)
    };
    Ok(CapMessage {
        id,
        sent,
        drill,
        action,
    })
}

pub mod hand_in;

pub mod intake;

pub mod level;

mod take_in;
pub use take_in::{CapRefused, Expired, refuse_expired, take_in, take_in_parsed};

#[cfg(test)]
mod tests;
