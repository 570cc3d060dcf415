//! The household's order: a section of its group checked in turn (key, signature, town,
//! not from the future), then taken only when strictly newer than the order held or the
//! identical order again; the order shown and the status judged by the box's time now.

use evac_protocol::overlay::{OverlayBatch, open_section, section_key_id};
use evac_protocol::{AlertLevel, Hazard, MessageKind, OverlayError, ShelterId};

use super::seen::Verdict;
use super::{Receiver, Status};

/// The order as shown, from a signed section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The level; `None` when the order was lifted.
    pub level: Option<AlertLevel>,
    /// The hazard.
    pub hazard: Hazard,
    /// The shelter.
    pub shelter: ShelterId,
    /// The order's version.
    pub version: u32,
    /// Issue time, Unix seconds.
    pub issued: i64,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// When the hazard is expected (the alert's onset), Unix seconds.
    pub onset: Option<i64>,
    /// Someone in the household needs help to evacuate.
    pub needs_help: bool,
    /// An exercise.
    pub drill: bool,
    /// The message it came in.
    pub message_id: u32,
    /// Alert, update or cancel.
    pub kind: MessageKind,
}

impl Shown {
    /// The canonical text the state file keeps (the onset only when there is one, so what a
    /// box kept before onsets existed still reads as the same order).
    fn canonical(&self) -> String {
        let onset = self.onset.map(|t| format!(" o{t}")).unwrap_or_default();
        format!(
            "v{} l{} s{} h{} n{} d{} m{} k{:?} i{} e{}{onset}",
            self.version,
            self.level.map_or(0, |l| l.number()),
            self.shelter.0,
            self.hazard.code(),
            u8::from(self.needs_help),
            u8::from(self.drill),
            self.message_id,
            self.kind,
            self.issued,
            self.expires
        )
    }
}

impl Receiver {
    pub(super) fn order(&mut self, body: &[u8]) -> Verdict {
        let id = match section_key_id(body) {
            Ok(id) => id,
            Err(_) => {
                self.rejected.malformed += 1;
                return Verdict::Final;
            }
        };
        let Some(key) = self.knows(&id) else {
            self.rejected.key += 1;
            self.unverified += 1;
            return Verdict::Retry;
        };
        let batch = match open_section(body, &key) {
            Ok(b) => b,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                self.unverified += 1;
                return Verdict::Final;
            }
            Err(e) => {
                tracing::debug!(error = %e, "undecodable overlay section");
                self.rejected.malformed += 1;
                return Verdict::Final;
            }
        };
        if self.trusted(&id, batch.issued).is_none() {
            self.rejected.key += 1;
            self.unverified += 1;
            return Verdict::Retry;
        }
        match &self.town {
            Some(t) if *t != batch.town => {
                self.rejected.town += 1;
                self.unverified += 1;
                return Verdict::Final;
            }
            Some(_) => {}
            None => {
                self.town = Some(batch.town.clone());
                self.dirty = true;
            }
        }
        // HQ's signed time bounds how far back the stream's time may go (an order from the
        // future does not: it is refused below).
        if batch.issued <= self.now().saturating_add(self.cfg.skew_s) {
            self.time.signed(batch.issued);
        }
        self.take(&batch)
    }

    fn take(&mut self, batch: &OverlayBatch) -> Verdict {
        let Some(rec) = batch.record(self.cfg.household) else {
            return Verdict::Final;
        };
        let now = self.now();
        if batch.issued > now.saturating_add(self.cfg.skew_s) {
            self.rejected.future += 1;
            self.unverified += 1;
            return Verdict::Retry;
        }
        // Expired by the time now: counted, and still kept as the order held (judged again
        // by the time whenever it is shown: the time may have been wrong).
        if batch.expires <= now {
            self.rejected.expired += 1;
        }
        let shown = Shown {
            level: rec.level,
            hazard: batch.hazard,
            shelter: rec.shelter,
            version: rec.version,
            issued: batch.issued,
            expires: batch.expires,
            onset: batch.onset,
            needs_help: rec.needs_help,
            drill: batch.drill,
            message_id: batch.message_id,
            kind: batch.kind,
        };
        let canonical = shown.canonical();
        if let Some((v, held)) = &self.held
            && (rec.version < *v || (rec.version == *v && *held != canonical))
        {
            self.rejected.stale += 1;
            return Verdict::Final;
        }
        if self.held.as_ref().is_none_or(|(v, _)| *v != rec.version) {
            self.held = Some((rec.version, canonical));
            self.dirty = true;
        }
        self.shown = Some(shown);
        Verdict::Final
    }

    /// The order to show now: `None` when there is none, or it has expired.
    pub fn order_now(&self) -> Option<&Shown> {
        self.shown.as_ref().filter(|s| s.expires > self.now())
    }

    /// What the box can say about its household now.
    pub fn status(&self) -> Status {
        match self.order_now() {
            Some(s) if s.level.is_some() => Status::Order,
            Some(_) => Status::Lifted,
            None if self.unverified > 0 => Status::CannotVerify,
            None if !self.time.believed() => Status::CannotVerifyTime,
            None => Status::NoOrder,
        }
    }
}
