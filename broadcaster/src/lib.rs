//! Overlay muxing into MPEG-2 transport streams, and the reference receiver `evac-stb`.
//!
//! HQ's orders reach each household's TV through the broadcast: HQ packs them into overlay
//! sections and signs them (see `evac_protocol::onair`); the broadcaster, which holds no key
//! that TVs trust for orders, repeats them in a carousel under a bitrate budget and muxes
//! them, with a PAT, a PMT, a time table and (while an alert is on) ARIB's
//! emergency-information descriptor, into a constant-bitrate transport stream of its own or
//! into the null packets of a stream already on air.
//!
//! - [`carousel`]: which sections air next (key announcements and changes first, then new
//!   orders by level, then the steady cycle);
//! - [`mux`]: the packet clock: PSI, time table, PCR, overlay and null packets
//!   ([`mux::Generator`]);
//! - [`insert`]: insertion into an existing stream's null packets ([`insert::Inserter`]);
//! - [`psi`], [`section`], [`timetable`]: PAT/PMT/descriptors, private sections, TDT/TOT;
//! - [`live`], [`mqtt`]: the live loop (HQ's sections from the broker, the carousel on disk,
//!   health, `mux` as a whole in [`live::run`]) and its MQTT side; [`alerts`]: the
//!   broadcaster's own alerts, and issuing one;
//! - [`dsmcc`], [`bml`]: the data-broadcasting (BML) carousel for stock TVs, built from
//!   orders whose HQ signature the head-end has checked;
//! - [`receiver`], [`render`]: the reference receiver and its templates; [`stb`]: the
//!   reference box `evac-stb` around them (its configuration, read loop and answers);
//! - [`config`], [`service`]: the service's config file, and the service run and checked from
//!   it (`run --config`, `check --config`).
//!
//! The cores do no I/O: packets come out for a packet clock that goes in, which keeps them
//! testable and fast; the binaries wrap them with files, stdin/stdout, UDP and MQTT.
//!
//! ```
//! use evac_broadcaster::carousel::Carousel;
//! use evac_broadcaster::mux::{Generator, MuxConfig};
//! use evac_broadcaster::psi::ServiceLayout;
//! use evac_broadcaster::receiver::{Receiver, ReceiverConfig, TrustedKey};
//! use evac_protocol::onair::pack_group;
//! use evac_protocol::overlay::{OverlayBatch, OverlayRecord};
//! use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId, Slug};
//!
//! // At HQ: the orders packed and signed.
//! let hq = SecretKey::from_seed(&[1; 32]);
//! let header = OverlayBatch { group: 0, message_id: 1, kind: MessageKind::Alert,
//!     references: None, notice: 1, hazard: Hazard::Tsunami, drill: false, issued: 1_000,
//!     expires: 9_000, onset: Some(1_600), template: 0, town: Slug::new("minato").unwrap(), key_id: [0; 8],
//!     records: vec![] };
//! let record = OverlayRecord { household: HouseholdId(42), level: Some(AlertLevel::Level4),
//!     shelter: ShelterId(3), version: 1, needs_help: false };
//! let sections = pack_group(0, &[(header, vec![record])], &hq).unwrap();
//! // At the head-end: no key, only scheduling and muxing.
//! let mut carousel = Carousel::new();
//! carousel.apply_set(&sections, 1_000);
//! let cfg = MuxConfig { layout: ServiceLayout::default(), bitrate: 1_000_000,
//!     overlay_bitrate: 500_000, transport_stream_id: 1, start_unix: 1_000 };
//! let mut mux = Generator::new(cfg, carousel).unwrap();
//! // At home: the box trusts HQ's public key.
//! let mut stb = Receiver::new(ReceiverConfig { household: HouseholdId(42),
//!     town: Some(Slug::new("minato").unwrap()), hq: vec![TrustedKey::always(hq.public())],
//!     broadcaster: None, program: None, skew_s: 120 }, 1_000);
//! for _ in 0..1_000 {
//!     stb.feed(&mux.next_packet());
//! }
//! assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));
//! ```
#![deny(missing_docs)]

pub mod alerts;
pub mod bml;
pub mod carousel;
pub mod config;
pub mod dsmcc;
pub mod error;
pub mod insert;
pub mod io;
pub mod live;
pub mod mqtt;
pub mod mux;
pub mod psi;
pub mod receiver;
pub mod render;
pub mod section;
pub mod service;
pub mod stb;
pub mod timetable;

pub use error::Error;
