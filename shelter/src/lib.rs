//! Shelter node: a card tap at the shelter door becomes a durable, replicated check-in.
//!
//! - [`card`]: one [`card::CardChannel`] trait (send an APDU, get the answer) with PC/SC and
//!   virtual-card backends, and the vpcd card program;
//! - [`jpki`]: reading the JPKI user-authentication certificate, PIN and challenge signature;
//! - [`cert`]: checks against pinned CA certificates, validity, key usage and revocation;
//! - [`testca`]: a JPKI-shaped test CA for tests and drills;
//! - [`door`]: the tap rules (debounce, in/out toggle, registry lookup) with no I/O;
//! - [`ledger`]: the append-only SQLite ledger the events are committed to first;
//! - [`registry`]: the registry replica, kept in SQLite;
//! - [`replica`]: the registry replica in shards, on disk (not used by the node yet);
//! - [`replicate`]: the MQTT outbox that publishes until HQ acknowledges end to end;
//! - [`node`]: a node's tap pipeline (card, checks, door, ledger) and its text commands;
//! - [`config`]: the TOML configuration;
//! - [`kiosk`]: the ratatui door screen.
//!
//! ```
//! use evac_shelter::door::{Door, TapInput};
//! use evac_protocol::{Assurance, CardRef, EventKind};
//!
//! let mut door = Door::new(10_000);
//! let card = CardRef { issuer_key_id: vec![1], serial: vec![2] };
//! let tap = TapInput::card(card, Assurance::CardRead, vec![]);
//! // the second argument is a monotonic time: only the debounce window uses it
//! let first = door.decide(&tap, std::time::Duration::from_secs(1));
//! assert_eq!(first.draft().unwrap().kind, EventKind::CheckIn);
//! ```
#![deny(missing_docs)]

pub mod card;
pub mod cert;
pub mod check;
pub mod command;
pub mod config;
pub mod door;
pub mod jpki;
pub mod kiosk;
pub mod ledger;
pub mod node;
pub mod pinpad;
pub mod registry;
pub mod replica;
pub mod replicate;
pub mod testca;
