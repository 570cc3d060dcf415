//! Taking a parsed CAP message into a running HQ, and why one is refused: a sender not
//! listed, a message already taken in, an expired message, a reference to another sender's
//! alert or to no active message.

use super::intake::ClaimError;
use super::{CapAction, CapMessage, parse};
use crate::core::{Hq, Publication};
use crate::error::{HqError, OrderError};
use crate::notice::CapRef;

/// An Alert or Update whose `<expires>` has passed: it never produces orders.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cap {file}: <alert/info/expires>: the message expired at {when}: not taken in")]
pub struct Expired {
    /// The file (or `<input>`).
    pub file: String,
    /// When it expired: RFC 3339, or Unix seconds when that cannot be written so.
    pub when: String,
}

/// Why a CAP message was not taken in; each message names the element at fault.
#[derive(Debug, thiserror::Error)]
pub enum CapRefused {
    /// The file could not be read, or is not a CAP message HQ acts on.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The message does not parse (see [`parse`]), or the store could not say whether it
    /// was taken in before.
    #[error(transparent)]
    Hq(#[from] HqError),
    /// Its `<sender>` is not in the config's `cap_senders`.
    #[error(
        "cap {file}: <alert/sender>: {sender:?} is not in the config's cap_senders: not taken in"
    )]
    Sender {
        /// The file.
        file: String,
        /// The sender.
        sender: String,
    },
    /// The same message (sender, identifier, sent) was taken in before.
    #[error("cap {file}: <alert/identifier>: {identifier} from {sender} already taken in")]
    Again {
        /// The file.
        file: String,
        /// The message's identifier.
        identifier: String,
        /// The sender.
        sender: String,
    },
    /// It has expired.
    #[error(transparent)]
    Expired(#[from] Expired),
    /// An Update or Cancel references only other senders' alerts.
    #[error(
        "cap {file}: <alert/references>: an Update or Cancel from {sender:?} may only \
         reference that sender's own alerts"
    )]
    ForeignReference {
        /// The file.
        file: String,
        /// The sender.
        sender: String,
    },
    /// None of the sender's referenced alerts is in force.
    #[error("cap {file}: <alert/references>: no active message among {identifiers:?}")]
    NoActiveReference {
        /// The file.
        file: String,
        /// The identifiers referenced.
        identifiers: Vec<String>,
    },
    /// The orders could not be changed.
    #[error(transparent)]
    Orders(#[from] OrderError),
}

/// Refuses an Alert or Update whose `<expires>` is not after `now_ms`, with a line naming
/// the element and the time (an expired alert must never produce orders, on any path: the
/// running HQ, `evac-hq cap` and `evac-hq plan`).
pub fn refuse_expired(msg: &CapMessage, file: &str, now_ms: u64) -> Result<(), Expired> {
    if let CapAction::Alert(n) | CapAction::Update { notice: n, .. } = &msg.action
        && n.expires.saturating_mul(1000) <= i64::try_from(now_ms).unwrap_or(i64::MAX)
    {
        let when = time::OffsetDateTime::from_unix_timestamp(n.expires)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| n.expires.to_string());
        return Err(Expired {
            file: file.to_owned(),
            when,
        });
    }
    Ok(())
}

/// Takes a CAP message into a running HQ (parsing it first: see [`take_in_parsed`]).
pub fn take_in(
    hq: &mut Hq,
    text: &str,
    file: &str,
    senders: &[String],
    now_ms: u64,
) -> Result<(String, Vec<Publication>), CapRefused> {
    let msg = parse(text, file)?;
    take_in_parsed(hq, msg, file, senders, now_ms)
}

/// Takes a parsed CAP message into a running HQ; returns a line saying what was done and the
/// messages to publish, or why it was refused.
///
/// - The sender must be in `senders` (the config's `cap_senders`).
/// - A message already taken in (same sender, identifier and sent time) is refused, across
///   restarts (the store remembers).
/// - An Update or Cancel acts only on an alert of its own sender.
pub fn take_in_parsed(
    hq: &mut Hq,
    msg: CapMessage,
    file: &str,
    senders: &[String],
    now_ms: u64,
) -> Result<(String, Vec<Publication>), CapRefused> {
    let drill = if msg.drill { " (drill)" } else { "" };
    if !senders.iter().any(|s| s == &msg.id.sender) {
        return Err(CapRefused::Sender {
            file: file.to_owned(),
            sender: msg.id.sender.clone(),
        });
    }
    let seen = hq
        .store()
        .cap_seen(&msg.id.sender, &msg.id.identifier, msg.sent)?;
    if seen
        || hq
            .notice_for_cap(&msg.id.sender, &msg.id.identifier)
            .is_some()
    {
        return Err(CapRefused::Again {
            file: file.to_owned(),
            identifier: msg.id.identifier.clone(),
            sender: msg.id.sender.clone(),
        });
    }
    refuse_expired(&msg, file, now_ms)?;
    let sender = msg.id.sender.clone();
    let find = |hq: &Hq, refs: &[CapRef]| {
        let own: Vec<&CapRef> = refs.iter().filter(|r| r.sender == sender).collect();
        if own.is_empty() {
            return Err(CapRefused::ForeignReference {
                file: file.to_owned(),
                sender: sender.clone(),
            });
        }
        own.iter()
            .rev()
            .find_map(|r| hq.notice_for_cap(&r.sender, &r.identifier))
            .ok_or_else(|| CapRefused::NoActiveReference {
                file: file.to_owned(),
                identifiers: own.iter().map(|r| r.identifier.clone()).collect(),
            })
    };
    let (line, out) = match &msg.action {
        CapAction::Alert(notice) => {
            let (rep, out) = hq.issue(notice.clone(), None, now_ms)?;
            (
                format!(
                    "CAP alert {}{drill}: message {:?}, {} orders, {} unassigned",
                    msg.id.identifier, rep.message_id, rep.orders, rep.unassigned
                ),
                out,
            )
        }
        CapAction::Update { notice, references } => {
            let old = find(hq, references)?;
            let (rep, out) = hq.issue(notice.clone(), Some(old), now_ms)?;
            (
                format!(
                    "CAP update {}{drill} of message {old}: {} orders, {} unassigned",
                    msg.id.identifier, rep.orders, rep.unassigned
                ),
                out,
            )
        }
        CapAction::Cancel { references } => {
            let old = find(hq, references)?;
            let (rep, out) = hq.lift(old, now_ms)?;
            (
                format!(
                    "CAP cancel {}{drill} of message {old}: {} orders lifted",
                    msg.id.identifier, rep.orders
                ),
                out,
            )
        }
    };
    if let Err(e) = hq.record_cap(&msg.id.sender, &msg.id.identifier, msg.sent, now_ms) {
        tracing::error!(error = %e, "cannot remember a CAP message as taken in");
    }
    Ok((line, out))
}
