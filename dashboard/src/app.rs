//! The dashboard as a whole: the town's state plus what the officer is looking at, and
//! `handle` that turns an [`Action`] into a change. Rendering lives in [`crate::ui`].

use evac_protocol::{AnswerKind, CommandAction, ResidentId, ShelterId};

use evac_net::command::{CommandSender, SignedCommand};

use crate::command::{self, Officer};
use crate::i18n::Lang;
use crate::state::{CommandEntry, CommandOutcome, Link, ShelterRow, TownState};

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Totals, curve, zones, warnings.
    Overview,
    /// The shelter table.
    Shelters,
    /// Residents not yet accounted for.
    Unaccounted,
    /// The town map.
    Map,
    /// Find a resident.
    Search,
    /// Events and commands.
    Log,
}

impl View {
    /// Every view, in tab order.
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Shelters,
        View::Unaccounted,
        View::Map,
        View::Search,
        View::Log,
    ];

    /// Its position in [`View::ALL`].
    pub fn index(self) -> usize {
        View::ALL.iter().position(|&v| v == self).unwrap_or(0)
    }

    /// Its tab title.
    pub fn title(self, lang: Lang) -> &'static str {
        match self {
            View::Overview => lang.t("Overview", "概要"),
            View::Shelters => lang.t("Shelters", "避難所"),
            View::Unaccounted => lang.t("Unaccounted", "未確認者"),
            View::Map => lang.t("Map", "地図"),
            View::Search => lang.t("Search", "検索"),
            View::Log => lang.t("Log", "記録"),
        }
    }
}

/// What the keyboard is talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The views.
    Normal,
    /// The help overlay.
    Help,
    /// "Quit?".
    ConfirmQuit,
    /// Typing a filter (or the search query on the Search view).
    Filter(String),
    /// Typing a `:` command.
    Command(String),
    /// A command waiting for its reason and confirmation.
    Confirm {
        /// What will be sent.
        action: CommandAction,
        /// What it will do, in words.
        text: String,
        /// The officer's reason, as typed.
        reason: String,
    },
    /// A message to acknowledge (read-only, a bad command line).
    Message(String),
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask to quit.
    AskQuit,
    /// Quit (after the confirmation).
    Quit,
    /// Show help.
    Help,
    /// Close the overlay or field.
    Close,
    /// Freeze or unfreeze the screen.
    Freeze,
    /// Start typing a filter.
    StartFilter,
    /// Start typing a command.
    StartCommand,
    /// Next tab.
    NextView,
    /// Previous tab.
    PrevView,
    /// A given tab.
    Show(View),
    /// Zoom the map in (true) or out.
    Zoom(bool),
    /// Pan the map by steps (east, north).
    Pan(i8, i8),
    /// Back to the whole town.
    ResetMap,
    /// Move the cursor by rows (`i64::MIN`/`MAX`: first/last).
    Move(i64),
    /// Sort by the previous/next column.
    SortColumn(i8),
    /// Invert the sort.
    InvertSort,
    /// Close the selected shelter.
    CloseShelter,
    /// Reopen the selected shelter.
    OpenShelter,
    /// Mark the selected resident found.
    MarkFound,
    /// Mark the selected resident's household's "needs help at home" answer handled.
    AnswerHandled,
    /// Confirm the selected resident's household's answer that needs an officer's confirmation.
    ConfirmAnswer,
    /// Enter in a field.
    Submit,
    /// Backspace in a field.
    Backspace,
    /// A character typed in a field.
    Type(char),
}

/// Columns of the shelter table, for sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShelterCol {
    /// Id.
    Id,
    /// Name.
    Name,
    /// Occupancy ratio.
    Occupancy,
    /// Present by day.
    Day,
    /// Present at night.
    Night,
    /// Capacity.
    Capacity,
    /// Expected arrivals.
    Expected,
    /// Node online.
    Node,
    /// Replication lag.
    Lag,
    /// Events not yet at HQ.
    Backlog,
    /// Check-ins flagged for attention.
    Flagged,
}

impl ShelterCol {
    /// The columns in order.
    pub const ALL: [ShelterCol; 11] = [
        ShelterCol::Id,
        ShelterCol::Name,
        ShelterCol::Occupancy,
        ShelterCol::Day,
        ShelterCol::Night,
        ShelterCol::Capacity,
        ShelterCol::Expected,
        ShelterCol::Node,
        ShelterCol::Lag,
        ShelterCol::Backlog,
        ShelterCol::Flagged,
    ];
}

/// Bytes of messages held while the screen is frozen, at most, besides the newest registry
/// manifest, shard and status part of each topic and the newest status (kept whatever their
/// size: they are the picture the screen comes back to).
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

/// The dashboard.
#[derive(Debug)]
pub struct App {
    /// The town.
    pub town: TownState,
    /// Screen language.
    pub lang: Lang,
    /// Colours on (off with `NO_COLOR`).
    pub color: bool,
    /// The view shown.
    pub view: View,
    /// What keys go to.
    pub mode: Mode,
    /// Frozen since (monotonic ms).
    pub frozen_since: Option<u64>,
    queued: crate::freeze::Held,
    /// Shelter sort column.
    pub sort: ShelterCol,
    /// Sort descending.
    pub sort_invert: bool,
    /// Cursor row per view.
    pub cursor: [usize; 6],
    /// Filter text per view.
    pub filter: [String; 6],
    /// Unaccounted residents passing the filter (when one is set).
    pub unaccounted_filtered: Option<Vec<ResidentId>>,
    /// Search results.
    pub search_hits: Vec<ResidentId>,
    /// Map zoom (0: whole town; each step halves the span).
    pub map_zoom: u8,
    /// Map pan in steps of a quarter span (east, north).
    pub map_pan: (i32, i32),
    /// The officer's command sender, when commands may be given: it numbers and signs each
    /// command and keeps it until HQ answers.
    pub officer: Option<CommandSender>,
    /// Signed commands waiting to be handed to the link (each at most once).
    pub outbox: Vec<SignedCommand>,
    /// The node's clock (Unix ms, `--clock`): the header's clock and the date of commands.
    pub now_ms: u64,
    /// The monotonic clock (ms): durations, and HQ's clock through
    /// [`TownState::hq_now_ms`].
    pub mono_ms: u64,
    /// Offset of local time, minutes east of UTC.
    pub utc_offset_min: i32,
    /// Set when the officer confirmed quitting.
    pub quit: bool,
    /// When the derived lists were last recomputed (monotonic ms).
    derived_mono: u64,
    /// The home addresses of the households that answered "needs help at home", looked up
    /// in the town file off the loop (none without a town file: the screen says so).
    pub addresses: crate::addresses::AddressBook,
}

/// The derived lists (warnings with their minutes) are recomputed at least this often, so
/// ages keep moving on HQ's clock when no message comes (an outage).
pub const DERIVED_EVERY_MS: u64 = 10_000;

/// How long a command waits for HQ's answer before it is sent again.
pub use evac_net::command::RESEND_MS;

impl App {
    /// A dashboard on `town`.
    pub fn new(town: TownState, lang: Lang, officer: Option<Officer>, now_ms: u64) -> App {
        // Past HQ's freshness bound a command is no longer sent: HQ would refuse it.
        let officer = officer.map(|o| {
            CommandSender::new(o, town.town.clone())
                .resend_within(evac_protocol::messages::command::MAX_COMMAND_SKEW_MS)
        });
        App {
            town,
            lang,
            color: true,
            view: View::Overview,
            mode: Mode::Normal,
            frozen_since: None,
            queued: crate::freeze::Held::new(MAX_QUEUED_BYTES),
            sort: ShelterCol::Id,
            sort_invert: false,
            cursor: [0; 6],
            filter: Default::default(),
            unaccounted_filtered: None,
            search_hits: vec![],
            map_zoom: 0,
            map_pan: (0, 0),
            officer,
            outbox: vec![],
            now_ms,
            mono_ms: 0,
            utc_offset_min: 540,
            quit: false,
            derived_mono: 0,
            addresses: crate::addresses::AddressBook::new(None),
        }
    }

    /// Takes a message from the broker (held while frozen).
    pub fn on_message(&mut self, topic: String, payload: Vec<u8>) {
        if self.frozen_since.is_some() {
            self.queued.push(topic, payload, self.mono_ms);
            return;
        }
        let _ = self.town.on_message(&topic, &payload, self.mono_ms);
    }

    /// Takes the link state from the network task. On a new connection every command HQ has
    /// not answered goes out at once.
    pub fn on_link(&mut self, link: Link) {
        if matches!(link, Link::Connected { .. })
            && !self.connected()
            && let Some(sender) = &mut self.officer
        {
            sender.link_up();
        }
        self.town.set_link(link);
    }

    /// Notes that `out` was handed to the link now: its next re-send is due [`RESEND_MS`]
    /// from now.
    pub fn handed(&mut self, out: &SignedCommand) {
        if let Some(sender) = &mut self.officer {
            sender.sent(out.id, self.mono_ms);
        }
    }

    /// HQ's clock now, as far as this dashboard knows it (HQ's newest time plus the monotonic
    /// time since it arrived): what every HQ time on screen is judged against.
    pub fn hq_now_ms(&self) -> Option<u64> {
        self.town.hq_now_ms(self.mono_ms)
    }

    /// Brings derived lists up to date before drawing, and sends again what HQ has not
    /// answered.
    pub fn refresh(&mut self, force: bool) {
        self.resend_unanswered();
        let force = force || self.mono_ms.saturating_sub(self.derived_mono) >= DERIVED_EVERY_MS;
        if self.town.refresh(self.mono_ms, force) {
            self.derived_mono = self.mono_ms;
            self.filter_unaccounted();
        }
        let wanted = self
            .town
            .answers
            .values()
            .filter(|a| a.kind == AnswerKind::NeedHelp)
            .map(|a| a.household)
            .collect();
        self.addresses.want(&wanted, self.mono_ms);
    }

    /// Every command HQ has not answered goes out again each [`RESEND_MS`] while the link
    /// is up (and at once when it comes back), as the same signed message: HQ carries a
    /// number out once and answers a repeat with its first outcome, so a command given while
    /// HQ was starting (before it had subscribed) or while the link was down is neither lost
    /// nor done twice. While the link is down nothing is handed to it: the command stays
    /// pending here, never piling up in the MQTT client's queue. Past HQ's freshness bound it
    /// stops: HQ would refuse it, and the log keeps it as pending for the officer to give
    /// again.
    fn resend_unanswered(&mut self) {
        let now = self.mono_ms;
        let connected = self.connected();
        let Some(sender) = &mut self.officer else {
            return;
        };
        // HQ's reply reaches the town state (which checks its signature): what it no longer
        // shows pending is answered.
        let commands = &self.town.commands;
        let answered: Vec<u64> = sender
            .unanswered()
            .filter(|&id| {
                !commands
                    .iter()
                    .any(|c| c.id == id && c.outcome == CommandOutcome::Pending)
            })
            .collect();
        for id in answered {
            sender.forget(id);
        }
        if !connected {
            return;
        }
        for out in sender.due(now) {
            if !self.outbox.contains(&out) {
                sender.sent(out.id, now);
                self.outbox.push(out);
            }
        }
    }

    fn filter_unaccounted(&mut self) {
        let f = self.filter[View::Unaccounted.index()].trim().to_owned();
        self.unaccounted_filtered = if f.is_empty() {
            None
        } else {
            Some(
                self.town
                    .derived
                    .unaccounted
                    .iter()
                    .copied()
                    .filter(|r| self.resident_matches(*r, &f))
                    .collect(),
            )
        };
    }

    fn resident_matches(&self, r: ResidentId, f: &str) -> bool {
        if r.0.to_string() == f {
            return true;
        }
        let Some(reg) = &self.town.registry else {
            return false;
        };
        let Some(p) = reg.person(r) else {
            return false;
        };
        p.household.to_string() == f || reg.name(&p).contains(f)
    }

    /// The unaccounted list as shown (filtered or not).
    pub fn unaccounted(&self) -> &[ResidentId] {
        self.unaccounted_filtered
            .as_deref()
            .unwrap_or(&self.town.derived.unaccounted)
    }

    /// Shelters as shown: filtered, sorted.
    pub fn shelter_rows(&self) -> Vec<&ShelterRow> {
        let f = self.filter[View::Shelters.index()].trim();
        let mut rows: Vec<&ShelterRow> = self
            .town
            .shelters
            .values()
            .filter(|r| {
                f.is_empty()
                    || r.status.shelter.to_string() == f
                    || r.name.as_deref().is_some_and(|n| n.contains(f))
            })
            .collect();
        let key = |r: &ShelterRow| -> (u64, String) {
            let s = &r.status;
            let n = match self.sort {
                ShelterCol::Id => u64::from(s.shelter.0),
                ShelterCol::Name => 0,
                ShelterCol::Occupancy => {
                    u64::from(s.present_day) * 10_000 / u64::from(s.capacity.max(1))
                }
                ShelterCol::Day => u64::from(s.present_day),
                ShelterCol::Night => u64::from(s.present_night),
                ShelterCol::Capacity => u64::from(s.capacity),
                ShelterCol::Expected => u64::from(s.expected),
                ShelterCol::Node => u64::from(s.online),
                ShelterCol::Lag => s.lag_ms.unwrap_or(0),
                ShelterCol::Backlog => s.pending,
                ShelterCol::Flagged => s.flagged,
            };
            let name = if self.sort == ShelterCol::Name {
                r.name.clone().unwrap_or_default()
            } else {
                String::new()
            };
            (n, name)
        };
        rows.sort_by_cached_key(|r| (key(r), r.status.shelter));
        if self.sort_invert {
            rows.reverse();
        }
        rows
    }

    fn rows_in_view(&self) -> usize {
        match self.view {
            View::Shelters => self.shelter_rows().len(),
            View::Unaccounted => self.unaccounted().len(),
            View::Search => self.search_hits.len(),
            View::Log => self.town.log.len() + self.town.commands.len(),
            View::Overview | View::Map => 0,
        }
    }

    fn selected_shelter(&self) -> Option<ShelterId> {
        let rows = self.shelter_rows();
        rows.get(self.cursor[View::Shelters.index()])
            .map(|r| r.status.shelter)
    }

    fn selected_resident(&self) -> Option<ResidentId> {
        match self.view {
            View::Unaccounted => self
                .unaccounted()
                .get(self.cursor[View::Unaccounted.index()])
                .copied(),
            View::Search => self
                .search_hits
                .get(self.cursor[View::Search.index()])
                .copied(),
            _ => None,
        }
    }

    fn run_search(&mut self) {
        let q = self.filter[View::Search.index()].trim().to_owned();
        self.search_hits.clear();
        self.cursor[View::Search.index()] = 0;
        if q.is_empty() {
            return;
        }
        let Some(reg) = &self.town.registry else {
            return;
        };
        let id: Option<u32> = q.parse().ok();
        for p in reg.people() {
            let hit = id.is_some_and(|i| i == p.resident.0 || i == p.household)
                || reg.name(&p).contains(q.as_str());
            if hit {
                self.search_hits.push(p.resident);
                if self.search_hits.len() >= 500 {
                    break;
                }
            }
        }
        // The registry is kept shard by shard: hits are shown by resident id.
        self.search_hits.sort_unstable();
    }

    fn ask(&mut self, action: CommandAction) {
        if self.officer.is_none() {
            self.mode = Mode::Message(
                self.lang
                    .t(
                        "Read-only dashboard: no officer key is configured, commands cannot be given.",
                        "閲覧専用: 職員の鍵が設定されていないため、指示は出せません。",
                    )
                    .to_owned(),
            );
            return;
        }
        let text = command::describe(&action, &self.town, self.lang);
        self.mode = Mode::Confirm {
            action,
            text,
            reason: String::new(),
        };
    }

    fn send(&mut self, mut action: CommandAction, reason: String) {
        let Some(sender) = &mut self.officer else {
            return;
        };
        if let CommandAction::MarkFound { note, .. } = &mut action
            && note.is_empty()
        {
            note.clone_from(&reason);
        }
        match sender.give(action.clone(), &reason, self.now_ms, self.mono_ms) {
            Ok(out) => {
                let (officer, id) = (sender.officer().name.clone(), out.id);
                tracing::info!(officer = %officer, id, ?action, reason = %reason, "command sent");
                // Into the outbox at once, link up or not: it waits there once.
                sender.sent(id, self.mono_ms);
                self.outbox.push(out);
                let entry = CommandEntry {
                    officer,
                    id,
                    at_ms: self.now_ms,
                    action,
                    reason,
                    outcome: CommandOutcome::Pending,
                    replied_ms: None,
                };
                self.town.command_sent(entry);
            }
            Err(e) => self.mode = Mode::Message(format!("cannot sign the command: {e}")),
        }
    }

    /// Carries out one action.
    pub fn handle(&mut self, action: Action) {
        let mode = std::mem::replace(&mut self.mode, Mode::Normal);
        match (mode, action) {
            (
                Mode::Confirm {
                    action,
                    text,
                    mut reason,
                },
                a,
            ) => match a {
                Action::Submit if !reason.trim().is_empty() => {
                    self.send(action, reason.trim().to_owned());
                }
                Action::Close => {}
                other => {
                    match other {
                        Action::Type(c) => reason.push(c),
                        Action::Backspace => {
                            reason.pop();
                        }
                        _ => {}
                    }
                    self.mode = Mode::Confirm {
                        action,
                        text,
                        reason,
                    };
                }
            },
            (Mode::Filter(mut text), a) => match a {
                Action::Submit | Action::Close => {
                    if a == Action::Close {
                        text.clear();
                    }
                    self.set_filter(text);
                }
                Action::Type(c) => {
                    text.push(c);
                    self.set_filter(text.clone());
                    self.mode = Mode::Filter(text);
                }
                Action::Backspace => {
                    text.pop();
                    self.set_filter(text.clone());
                    self.mode = Mode::Filter(text);
                }
                _ => self.mode = Mode::Filter(text),
            },
            (Mode::Command(mut text), a) => match a {
                Action::Submit => match command::parse(&text, (self.now_ms / 1000) as i64) {
                    Ok(action) => self.ask(action),
                    Err(e) => {
                        let syntax = command::SYNTAX.join("\n  ");
                        self.mode = Mode::Message(format!("{e}\n\n  {syntax}"));
                    }
                },
                Action::Close => {}
                Action::Type(c) => {
                    text.push(c);
                    self.mode = Mode::Command(text);
                }
                Action::Backspace => {
                    text.pop();
                    self.mode = Mode::Command(text);
                }
                _ => self.mode = Mode::Command(text),
            },
            (Mode::ConfirmQuit, Action::Quit) => self.quit = true,
            (Mode::Help | Mode::ConfirmQuit | Mode::Message(_), _) => {}
            (Mode::Normal, a) => self.normal(a),
        }
    }

    fn set_filter(&mut self, text: String) {
        let v = self.view.index();
        self.filter[v] = text;
        self.cursor[v] = 0;
        match self.view {
            View::Search => self.run_search(),
            View::Unaccounted => self.filter_unaccounted(),
            _ => {}
        }
    }

    fn normal(&mut self, a: Action) {
        let v = self.view.index();
        match a {
            Action::AskQuit => self.mode = Mode::ConfirmQuit,
            Action::Quit => self.quit = true,
            Action::Help => self.mode = Mode::Help,
            Action::Close => {}
            Action::Freeze => {
                if self.frozen_since.take().is_some() {
                    for (t, p, at) in self.queued.take() {
                        let _ = self.town.on_message(&t, &p, at);
                    }
                } else {
                    self.frozen_since = Some(self.mono_ms);
                }
            }
            Action::StartFilter => self.mode = Mode::Filter(self.filter[v].clone()),
            Action::StartCommand => {
                if self.officer.is_some() {
                    self.mode = Mode::Command(String::new());
                } else {
                    self.ask(CommandAction::LiftOrder { message_id: 0 });
                }
            }
            Action::NextView => self.view = View::ALL[(v + 1) % View::ALL.len()],
            Action::PrevView => self.view = View::ALL[(v + View::ALL.len() - 1) % View::ALL.len()],
            Action::Show(view) => self.view = view,
            Action::Zoom(inward) => {
                self.map_zoom = if inward {
                    (self.map_zoom + 1).min(8)
                } else {
                    self.map_zoom.saturating_sub(1)
                };
            }
            Action::Pan(x, y) => {
                self.map_pan.0 += i32::from(x);
                self.map_pan.1 += i32::from(y);
            }
            Action::ResetMap => {
                self.map_zoom = 0;
                self.map_pan = (0, 0);
            }
            Action::Move(d) => {
                let n = self.rows_in_view();
                let c = &mut self.cursor[v];
                *c = match d {
                    i64::MIN => 0,
                    i64::MAX => n.saturating_sub(1),
                    d => (*c as i64 + d).clamp(0, n.saturating_sub(1) as i64) as usize,
                };
            }
            Action::SortColumn(d) => {
                let all = ShelterCol::ALL;
                let i = all.iter().position(|&c| c == self.sort).unwrap_or(0) as i64;
                self.sort = all[(i + i64::from(d)).rem_euclid(all.len() as i64) as usize];
            }
            Action::InvertSort => self.sort_invert = !self.sort_invert,
            Action::CloseShelter | Action::OpenShelter => {
                if self.view != View::Shelters {
                    return;
                }
                if let Some(shelter) = self.selected_shelter() {
                    self.ask(if a == Action::CloseShelter {
                        CommandAction::CloseShelter { shelter }
                    } else {
                        CommandAction::OpenShelter { shelter }
                    });
                }
            }
            Action::MarkFound => {
                if let Some(resident) = self.selected_resident() {
                    self.ask(CommandAction::MarkFound {
                        resident,
                        note: String::new(),
                    });
                }
            }
            Action::AnswerHandled | Action::ConfirmAnswer => self.mark_answer(a),
            Action::Submit | Action::Backspace | Action::Type(_) => {}
        }
    }

    /// The officer's mark on the selected resident's household's answer (Unaccounted view):
    /// handled for a "needs help at home" not handled yet, confirmed for one that needs it;
    /// otherwise a message saying why nothing is sent.
    fn mark_answer(&mut self, a: Action) {
        if self.view != View::Unaccounted {
            return;
        }
        let Some(household) = self
            .selected_resident()
            .and_then(|r| self.town.registry.as_ref()?.person(r))
            .map(|p| p.household)
        else {
            return;
        };
        let answer = self.town.answers.get(&household);
        let l = self.lang;
        let (action, refusal) = if a == Action::AnswerHandled {
            let needs = answer.is_some_and(|x| x.kind == AnswerKind::NeedHelp);
            let open = answer.is_some_and(|x| x.handled.is_none());
            (
                CommandAction::AnswerHandled { household },
                (!needs)
                    .then(|| {
                        l.t(
                            "This household has not answered \"needs help at home\": nothing to mark handled.",
                            "この世帯は在宅要救助と回答していません。",
                        )
                    })
                    .or((!open).then(|| l.t("Already marked handled.", "対応済みです。"))),
            )
        } else {
            let needs = answer.is_some_and(|x| x.needs_confirmation);
            (
                CommandAction::ConfirmAnswer { household },
                (!needs).then(|| {
                    l.t(
                        "This household's answer needs no confirmation.",
                        "この世帯の回答は確認不要です。",
                    )
                }),
            )
        };
        match refusal {
            Some(why) => self.mode = Mode::Message(why.to_owned()),
            None => self.ask(action),
        }
    }

    /// Whether the link is up.
    pub fn connected(&self) -> bool {
        matches!(self.town.link, Link::Connected { .. })
    }
}

#[cfg(test)]
mod tests;
