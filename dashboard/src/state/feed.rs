//! Checking what arrives from the broker: size, envelope, signer, signature, town, sequence.
//! Whatever fails is counted by reason and never reaches the screen.

use std::collections::BTreeMap;

use evac_protocol::{HQ_SIGNER, PublicKey, Signable, Signed};

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reject {
    /// Larger than the limit for its topic.
    TooLarge,
    /// Not a signed envelope of the right family (truncated or malformed JSON included).
    Envelope,
    /// Signed by someone other than HQ.
    Signer,
    /// The signature does not verify with HQ's key.
    Signature,
    /// The body does not decode (or names an impossible value).
    Body,
    /// For another town.
    Town,
    /// A delta that does not follow the last message (a gap): waiting for a snapshot.
    Gap,
    /// Older than, or the same as, what is already shown.
    Replay,
    /// A topic the dashboard does not read.
    Topic,
}

impl Reject {
    /// A short name for the header and the log.
    pub fn name(self) -> &'static str {
        match self {
            Reject::TooLarge => "too-large",
            Reject::Envelope => "envelope",
            Reject::Signer => "signer",
            Reject::Signature => "signature",
            Reject::Body => "body",
            Reject::Town => "town",
            Reject::Gap => "gap",
            Reject::Replay => "replay",
            Reject::Topic => "topic",
        }
    }
}

/// Refused messages, counted by reason.
#[derive(Debug, Clone, Default)]
pub struct Rejections {
    /// All refused messages.
    pub total: u64,
    /// By reason.
    pub by_reason: BTreeMap<Reject, u64>,
}

impl Rejections {
    /// Counts one refusal.
    pub fn count(&mut self, r: Reject) {
        self.total += 1;
        *self.by_reason.entry(r).or_default() += 1;
    }

    /// The count for one reason.
    pub fn of(&self, r: Reject) -> u64 {
        self.by_reason.get(&r).copied().unwrap_or(0)
    }
}

/// Size limits by family (bytes): a snapshot of a million residents is a few megabytes (a
/// larger one comes in parts); the registry comes in shards of a few hundred kilobytes.
pub mod limit {
    /// Status snapshots and deltas.
    pub const STATUS: usize = 32 << 20;
    /// One registry manifest, shard or delta, as JSON once expanded (on the wire each is at
    /// most [`evac_protocol::MAX_MESSAGE`], gzip-packed; the fullest shard of 1.5 million
    /// households is about 570 KB of JSON).
    pub const REGISTRY: usize = 16 << 20;
    /// One order batch (HQ splits at 5,000 orders).
    pub const ORDERS: usize = 16 << 20;
    /// A command reply.
    pub const REPLY: usize = 64 << 10;
    /// One household group's sections for the air (at most 256 sections of 4 KB).
    pub const AIR: usize = 2 << 20;
}

/// Opens an HQ-signed message: size, envelope, signer, signature, body.
pub fn open_hq<T: Signable>(payload: &[u8], max: usize, key: &PublicKey) -> Result<T, Reject> {
    if payload.len() > max {
        return Err(Reject::TooLarge);
    }
    let env = Signed::<T>::from_json(payload).map_err(|_| Reject::Envelope)?;
    if env.signer != HQ_SIGNER {
        return Err(Reject::Signer);
    }
    env.open(key).map_err(|e| match e {
        evac_protocol::SignError::Body(_) => Reject::Body,
        _ => Reject::Signature,
    })
}

/// Opens an HQ-signed registry message, gzip-packed or not: at most
/// [`evac_protocol::MAX_MESSAGE`] on the wire and [`limit::REGISTRY`] expanded.
pub fn open_packed<T: Signable>(payload: &[u8], key: &PublicKey) -> Result<T, Reject> {
    if payload.len() > evac_protocol::MAX_MESSAGE {
        return Err(Reject::TooLarge);
    }
    let json = evac_protocol::packed::unpack(payload, limit::REGISTRY).map_err(|e| match e {
        evac_protocol::PackedError::TooLarge { .. } => Reject::TooLarge,
        evac_protocol::PackedError::Corrupt(_) => Reject::Envelope,
    })?;
    open_hq(&json, limit::REGISTRY, key)
}
