//! Drills: one command runs a whole town on one machine and reports how the evacuation went.
//!
//! `evac-drill run SCENARIO --out DIR` starts the real nodes on loopback, each as its own
//! process on one accelerated drill clock ([`evac_protocol::time`]): the embedded broker
//! (`evac-hq broker`), HQ (`evac-hq run`, over real MQTT and its real SQLite store) and one
//! `evac-shelter run` per shelter (virtual JPKI cards through the same door and ledger code as
//! a PC/SC reader). The broadcaster muxes HQ's signed orders into a real transport stream in
//! process, and the simulated residents learn their orders by decoding that stream
//! ([`tv`]). Faults hit the real thing: killed processes, links cut by a TCP proxy, a signed
//! officer command. The simulator keeps its own ground truth of every tap and the report
//! compares HQ's store with it tap for tap.
//!
//! - [`scenario`]: the TOML scenario (`drills/scenarios/`);
//! - [`residents`]: behaviour drawn from the seed (Rayleigh departure, walking speeds);
//! - [`walks`]: how far a resident walks to a shelter, over the town's roads;
//! - [`sim`]: the simulation, no I/O: households, walks and TV orders in, taps, faults due and
//!   where each household ended out, stepped by the drill clock (unit-tested without a node);
//! - [`calibration`]: the with/without-TV figures without the nodes, on any town;
//! - [`tv`], [`broadcast`]: the broadcast and the town's TVs;
//! - [`nodes`], [`setup`]: the child processes, proxies, keys, configs and cards;
//! - `prepare`: the run folder, the town, the hazard and the plans before any node starts, and
//!   the nodes' files; `processes`: the running nodes (start, kill, restart, cut, the lines
//!   they print); `officer`: the officer's signed commands and HQ's replies;
//! - [`runner`]: the story of a drill: set up, start, give the order, step the simulation on
//!   the drill clock until HQ holds every tap, judge; `doors`: the taps sent to the shelters
//!   and their answers, paired by id ([`answers`]); [`faults`]: each fault against the real
//!   nodes, and whether it was survived; `accounting`: HQ's store watched while it runs;
//!   [`truth`]: ground truth against HQ;
//! - [`report`], [`plot`]: `report.json`, `arrivals.csv`, the summary and the SVG curve.
//!
//! ```
//! use evac_drills::residents::rayleigh;
//! // TUNAMI-EVAC's Rayleigh departure: the median of a 10-minute mean is about 9.4 minutes.
//! let median = rayleigh(600.0, 0.5);
//! assert!((median - 563.6).abs() < 1.0);
//! ```
#![deny(missing_docs)]

mod accounting;
pub mod answered;
pub mod answers;
pub mod broadcast;
pub mod calibration;
mod doors;
pub mod error;
pub mod families;
pub mod faults;
pub mod homeanswers;
pub mod memory;
pub mod nodes;
mod officer;
pub mod plot;
mod prepare;
mod processes;
pub mod report;
pub mod residents;
pub mod runner;
pub mod scenario;
pub mod setup;
pub mod sim;
pub mod stocktv;
pub mod truth;
pub mod tv;
pub mod walks;

#[cfg(test)]
mod rss_tests;

pub use error::DrillError;
pub use scenario::Scenario;
