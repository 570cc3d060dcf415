//! The evac wire protocol, version 1: what crosses between shelters, HQ, broadcasters and
//! dashboards (no MQTT client, no network I/O).
//!
//! - [`ids`]: typed ids of shelters, households, residents, events, towns, officers, cards;
//! - [`hlc`]: the hybrid logical clock that orders events from shelters whose clocks disagree;
//! - [`messages`]: every message of the topic table, as serde types;
//! - [`sign`]: keys, and the signed envelope every message travels in;
//! - [`topics`]: topic names built from ids and parsed back;
//! - [`overlay`]: the compact, signed binary form of orders that goes on air;
//! - two things every node does alike on its own host: key files ([`write_key_pair`]) and
//!   holding its data directory and telling systemd it is ready ([`host`]);
//! - [`time`]: where a node takes "now" from (the wall clock, or a drill's accelerated clock);
//! - [`keyroll`]: HQ's announcement of its next key, signed by the key it has now;
//! - [`packed`]: gzip for large retained messages (the town's registry);
//! - [`onair`]: the framing of signed sections as HQ publishes them and files hold them;
//! - [`statefile`]: writing a node's state files atomically and durably, and setting aside one
//!   that does not decode.
//!
//! ```
//! use evac_protocol::{CheckEvent, EventBatch, EventId, EventKind, Assurance, SecretKey,
//!     ShelterId, Slug, Topic, Clock, shelter_signer};
//!
//! let shelter = ShelterId(3);
//! let key = SecretKey::from_seed(&[3; 32]);
//! let mut clock = Clock::new(shelter.0);
//! let event = CheckEvent {
//!     id: EventId { shelter, seq: 1 }, at: clock.now(1_795_000_000_000),
//!     kind: EventKind::CheckIn, card: None, resident: None, household: None,
//!     assurance: Assurance::Staff, flags: vec![], day_only: false, corrects: None, note: None,
//! };
//! let batch = EventBatch::new(shelter, vec![key.sign(&shelter_signer(shelter), &event).unwrap()]);
//! let topic = Topic::ShelterEvents(Slug::new("minato").unwrap(), shelter);
//! assert_eq!(topic.to_string(), "evac/v1/minato/shelter/3/events");
//! let payload = serde_json::to_vec(&batch).unwrap();
//! # let _ = payload;
//! assert_eq!(batch.events[0].open(&key.public()).unwrap(), event);
//! ```
#![deny(missing_docs)]

mod bits;
pub mod card_digest;
pub mod error;
pub mod hazard;
pub mod hlc;
pub mod host;
pub mod ids;
pub mod keyroll;
pub mod messages;
pub mod onair;
pub mod overlay;
pub mod packed;
pub mod sign;
pub mod statefile;
pub mod ticker;
pub mod time;
pub mod topics;
mod varint;

/// The protocol version carried by every message and in every topic (`evac/v1/...`).
pub const PROTOCOL_VERSION: u32 = 1;

pub use card_digest::{CardDigest, CardDigestKey};
pub use error::{ClockError, IdError, KeyError, OverlayError, PackedError, SignError, TopicError};
pub use hazard::{AlertLevel, Hazard};
pub use hlc::{Clock, Timestamp};
pub use host::{DataDirError, DataDirLock, notify_ready};
pub use ids::{CardRef, EventId, HouseholdId, OfficerId, ResidentId, ShelterId, Slug, TownId};
pub use messages::ack::{Ack, HQ_SIGNER};
pub use messages::alert::Alert;
pub use messages::command::{CommandAction, CommandReply, OfficerCommand, officer_signer};
pub use messages::event::{
    Assurance, CheckEvent, EventBatch, EventKind, Flag, MAX_BATCH_BYTES, MAX_NOTE_BYTES,
    shelter_signer,
};
pub use messages::order::{MessageKind, Order, OrderBatch};
pub use messages::registry::{RegistryHousehold, RegistryResident, RegistrySnapshot};
pub use messages::shards::{
    DeltaFit, MAX_MESSAGE, RegistryDelta, RegistryManifest, RegistryShard, ShardDigest, ShardEntry,
    ShardSum,
};
pub use messages::state::NodeState;
pub use messages::status::{
    AnswerCounts, AnswerKind, AnswerMark, HouseholdAnswer, PackedStatuses, ResidentChange,
    ResidentStatus, ShelterStatus, StatusCounts, StatusDelta, StatusMessage, StatusSnapshot,
    StoreUnreadable,
};
pub use messages::status_parts::{Joiner, PartError, StatusPart};
pub use sign::{KeyId, PublicKey, SecretKey, Signable, Signed, keygen_line, write_key_pair};
pub use topics::Topic;
