//! The disaster officers' terminal dashboard: who is safe, where, who is still missing,
//! and the commands to act.
//!
//! - [`state`]: the picture of a town built from HQ-signed messages only (no I/O, no
//!   ratatui): status snapshot and deltas, registry, orders, command replies; whatever
//!   fails a check is counted, never shown;
//! - [`app`]: what the officer looks at and [`app::App::handle`], which turns an
//!   [`app::Action`] (from [`keymap`]) into a change;
//! - [`ui`]: `render(&App, frame)`, one module per panel;
//! - [`command`]: the `:` command line, the confirmation text, signing;
//! - [`clock`]: the node's clock (`--clock`) and the monotonic one HQ's times are judged by;
//! - [`net`]: the MQTT link; [`run`]: the one `select!` over input, feed and tick, for
//!   either view (a [`run::Screen`]);
//! - [`report`]: the FDMA-style situation report (text or JSON);
//! - [`prefecture`]: several towns side by side, from a prefecture broker (its config, its
//!   state without drawing, its drawing).
//!
//! ```
//! use evac_dashboard::{app::{Action, App, View}, i18n::Lang, state::TownState};
//! use evac_protocol::{SecretKey, Slug};
//! use ratatui::{Terminal, backend::TestBackend};
//!
//! let hq = SecretKey::from_seed(&[1; 32]);
//! let town = TownState::new(Slug::new("minato").unwrap(), hq.public(), None);
//! let mut app = App::new(town, Lang::En, None, 1_795_000_000_000);
//! app.handle(Action::Show(View::Shelters));
//! let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
//! term.draw(|f| evac_dashboard::ui::render(&app, f)).unwrap();
//! assert!(format!("{}", term.backend()).contains("READ-ONLY"));
//! ```
#![deny(missing_docs)]

pub mod addresses;
pub mod app;
pub mod clock;
pub mod command;
pub mod config;
pub mod freeze;
pub mod i18n;
pub mod keymap;
pub mod net;
pub mod prefecture;
pub mod report;
pub mod run;
pub mod sample;
pub mod state;
pub mod ui;
