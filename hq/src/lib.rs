//! HQ service of evac: the town hall's node.
//!
//! - [`broker`]: the embedded MQTT broker (rumqttd) with password authentication and TLS;
//! - [`store`]: the SQLite status store, which takes in every shelter event exactly once;
//! - [`ingest`]: checking event batches against the shelters' keys; [`rejections`]: what
//!   they refuse, counted, sampled and stored in batches;
//! - [`status`]: each resident's status and each shelter's occupancy, as snapshot and deltas;
//! - [`engine`]: the order engine (nearest open, suitable shelter with room);
//! - [`air`]: the orders on air, packed and signed by HQ for the broadcaster;
//! - [`plan`]: the orders for a hazard without a broker (`evac-hq plan`); [`announce`]: HQ's
//!   next key announced to receivers (`evac-hq announce-key`);
//! - [`notice`]: hazard notices from hazard files; [`cap`]: from CAP 1.2 messages;
//! - [`core`]: all of it driven by messages and a clock; [`service`]: the MQTT loop around it;
//! - [`export`]: CSV, PFIF 1.4 and the after-action log;
//! - [`answers`]: households' answers from the TV (HTTPS, off unless configured);
//! - [`check`]: what the config names, loaded with errors that say which field to fix;
//!   [`reload`]: new shelter keys and passwords taken in while HQ runs.
//!
//! ```
//! use std::sync::Arc;
//! use evac_hq::engine::{EngineTown, OrderBook};
//! use evac_hq::notice::Notice;
//! use evac_maps::{GenerateParams, generate};
//!
//! let town = generate(&GenerateParams { households: 300, shelters: 12, seed: 1 });
//! let mut book = OrderBook::new(Arc::new(EngineTown::new(&town)), "minato".parse().unwrap());
//! let notice = Notice::from_toml("hazard = \"tsunami\"\nlevel = 4\nzones = [1]", "t.toml", 0).unwrap();
//! let out = book.issue(notice, None).unwrap();
//! let batch = &out.batches[0];
//! assert!(batch.orders.iter().all(|o| town.shelter(o.shelter.0).unwrap().suits(evac_maps::Hazard::Tsunami)));
//! ```
#![deny(missing_docs)]

pub mod air;
pub mod announce;
pub mod anpi;
pub mod answers;
pub mod auth;
pub mod broker;
pub mod cap;
pub mod check;
pub mod config;
pub mod core;
pub mod engine;
pub mod error;
pub mod export;
pub mod files;
pub mod ingest;
pub mod keys;
pub mod notice;
pub mod officer;
pub mod outbox;
pub mod plan;
pub mod rejections;
pub mod reload;
pub mod service;
pub mod status;
pub mod store;
pub mod verify;

pub use crate::core::{Hq, Publication};
pub use config::Config;
pub use error::{HqError, OrderError};
