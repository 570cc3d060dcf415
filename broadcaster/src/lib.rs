//! Overlay muxing into MPEG-2 transport streams, and the reference receiver `evac-stb`.
//!
//! HQ's orders reach each household's TV through the broadcast: the broadcaster packs them
//! into signed overlay sections (see `evac_protocol::overlay`), repeats them in a carousel
//! under a bitrate budget, and muxes them, with a PAT, a PMT and (while an alert is on)
//! ARIB's emergency-information descriptor, into a constant-bitrate transport stream of its
//! own or into the null packets of a stream already on air.
//!
//! - [`carousel`]: which sections air next (changes first, then new orders by level, then
//!   the steady cycle);
//! - [`mux`]: the packet clock: PSI, PCR, overlay and null packets ([`mux::Generator`]);
//! - [`insert`]: insertion into an existing stream's null packets ([`insert::Inserter`]);
//! - [`psi`], [`section`]: PAT/PMT/descriptors and the private sections;
//! - [`receiver`], [`render`]: the reference receiver and its templates;
//! - [`orders`], [`alerts`]: orders and alerts from files and MQTT;
//! - [`config`]: the service's config file (`run --config`, `check --config`).
//!
//! The cores do no I/O: packets come out for a packet clock that goes in, which keeps them
//! testable and fast; the binaries wrap them with files, stdin/stdout, UDP and MQTT.
//!
//! ```
//! use evac_broadcaster::carousel::Carousel;
//! use evac_broadcaster::mux::{Generator, MuxConfig};
//! use evac_broadcaster::psi::ServiceLayout;
//! use evac_broadcaster::receiver::{Receiver, ReceiverConfig};
//! use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, Order, OrderBatch,
//!     SecretKey, ShelterId, Slug};
//!
//! let hq = SecretKey::from_seed(&[1; 32]);
//! let public = hq.public();
//! let mut carousel = Carousel::new(hq);
//! let order = Order { household: HouseholdId(42), shelter: ShelterId(3),
//!     level: AlertLevel::Level4, hazard: Hazard::Tsunami, version: 1, needs_help: false };
//! carousel.apply(&OrderBatch { town: Slug::new("minato").unwrap(), message_id: 1,
//!     kind: MessageKind::Alert, references: None, hazard: Hazard::Tsunami,
//!     issued: 1_000, expires: 9_000, drill: false, orders: vec![order] }, 1_000);
//! let cfg = MuxConfig { layout: ServiceLayout::default(), bitrate: 1_000_000,
//!     overlay_bitrate: 500_000, transport_stream_id: 1, start_unix: 1_000 };
//! let mut mux = Generator::new(cfg, carousel).unwrap();
//! let mut stb = Receiver::new(ReceiverConfig { household: HouseholdId(42), hq: public,
//!     broadcaster: None, program: None }, 1_000);
//! for _ in 0..1_000 {
//!     stb.feed(&mux.next_packet());
//! }
//! assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));
//! ```
#![deny(missing_docs)]

pub mod alerts;
pub mod carousel;
pub mod config;
pub mod error;
pub mod insert;
pub mod io;
pub mod mux;
pub mod orders;
pub mod psi;
pub mod receiver;
pub mod render;
pub mod section;

pub use error::Error;
