//! The PC/SC backend, through pcscd: find the reader, wait for a card to be inserted or
//! removed (`SCardGetStatusChange`), and exchange APDUs with it.

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use super::{CardChannel, CardError};

fn map_err(reader: &str, e: pcsc::Error) -> CardError {
    use pcsc::Error as E;
    match e {
        E::RemovedCard
        | E::ResetCard
        | E::NoSmartcard
        | E::UnpoweredCard
        | E::UnresponsiveCard
        | E::CardUnsupported => CardError::Removed,
        E::ReaderUnavailable
        | E::UnknownReader
        | E::NoReadersAvailable
        | E::NoService
        | E::ServiceStopped => CardError::ReaderGone(reader.to_owned()),
        other => CardError::Transport(format!("{reader}: {other}")),
    }
}

/// One PC/SC reader.
pub struct PcscReader {
    ctx: Context,
    name: CString,
    label: String,
}

/// What changed at the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A card is in the reader.
    CardPresent,
    /// The reader is empty.
    Empty,
    /// Nothing changed before the timeout.
    Timeout,
}

impl PcscReader {
    /// Connects to pcscd and picks the first reader whose name contains `pattern`.
    pub fn open(pattern: &str) -> Result<Self, CardError> {
        let ctx = Context::establish(Scope::User)
            .map_err(|e| CardError::Transport(format!("cannot reach pcscd: {e}")))?;
        let readers = ctx.list_readers_owned().map_err(|e| map_err(pattern, e))?;
        let names: Vec<String> = readers
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        let idx = names
            .iter()
            .position(|n| n.contains(pattern))
            .ok_or_else(|| CardError::NoReader(pattern.to_owned(), names.join(", ")))?;
        Ok(PcscReader {
            ctx,
            name: readers[idx].clone(),
            label: names[idx].clone(),
        })
    }

    /// The reader's full name.
    pub fn name(&self) -> &str {
        &self.label
    }

    fn state(&self, timeout: Option<Duration>, known: State) -> Result<State, CardError> {
        let mut rs = [ReaderState::new(self.name.clone(), known)];
        match self.ctx.get_status_change(timeout, &mut rs) {
            Ok(()) => Ok(rs[0].event_state()),
            Err(pcsc::Error::Timeout) => Ok(known),
            Err(e) => Err(map_err(&self.label, e)),
        }
    }

    /// Waits up to `timeout` until the reader holds a card (`want_present`) or is empty.
    pub fn wait_for(
        &self,
        want_present: bool,
        timeout: Duration,
    ) -> Result<ReaderEvent, CardError> {
        let deadline = Instant::now() + timeout;
        let mut known = State::UNAWARE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let s = self.state(Some(left.min(Duration::from_millis(500))), known)?;
            if s.contains(State::UNKNOWN) || s.contains(State::UNAVAILABLE) {
                return Err(CardError::ReaderGone(self.label.clone()));
            }
            let present = s.contains(State::PRESENT) && !s.contains(State::MUTE);
            if present == want_present && s != State::UNAWARE {
                return Ok(if present {
                    ReaderEvent::CardPresent
                } else {
                    ReaderEvent::Empty
                });
            }
            if left.is_zero() {
                return Ok(ReaderEvent::Timeout);
            }
            known = s & !State::CHANGED;
        }
    }

    /// Connects to the card in the reader.
    pub fn connect(&self) -> Result<PcscCard, CardError> {
        let card = self
            .ctx
            .connect(&self.name, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| map_err(&self.label, e))?;
        Ok(PcscCard {
            card: Some(card),
            label: self.label.clone(),
        })
    }
}

/// A connected card.
pub struct PcscCard {
    card: Option<Card>,
    label: String,
}

impl CardChannel for PcscCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let card = self.card.as_ref().ok_or(CardError::Removed)?;
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        match card.transmit(apdu, &mut buf) {
            // vpcd (and some readers) answer nothing when the card went away mid-command.
            Ok(r) if r.len() < 2 => Err(CardError::Removed),
            Ok(r) => Ok(r.to_vec()),
            Err(e) => Err(map_err(&self.label, e)),
        }
    }
}

impl Drop for PcscCard {
    fn drop(&mut self) {
        if let Some(c) = self.card.take() {
            // Leave the card as it is: the resident may tap again without re-inserting.
            let _ = c.disconnect(Disposition::LeaveCard);
        }
    }
}
