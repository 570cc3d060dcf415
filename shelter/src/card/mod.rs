//! Card access: one trait that sends an APDU and returns the response, whatever the reader.
//!
//! The JPKI logic ([`crate::jpki`]) speaks only to [`CardChannel`]; the backends are PC/SC
//! ([`pcsc_backend`], through pcscd) and the in-process virtual card ([`virtual_card`]).

pub mod pcsc_backend;
pub mod virtual_card;
pub mod vpcd;

use thiserror::Error;

/// Why an APDU could not be exchanged with the card.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CardError {
    /// The card left the reader (pulled out mid-read, or reset).
    #[error("the card was removed from the reader during the read; tap again")]
    Removed,
    /// The reader itself went away (unplugged).
    #[error("card reader {0:?} is gone (unplugged?)")]
    ReaderGone(String),
    /// No reader matched the configured name.
    #[error("no card reader named {0:?}; readers present: {1}")]
    NoReader(String, String),
    /// Any other transport failure.
    #[error("card reader error: {0}")]
    Transport(String),
}

/// A channel to one inserted card: send a command APDU, get the response APDU (data then
/// SW1 SW2).
pub trait CardChannel {
    /// Sends one command APDU and returns the card's response including the status word.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError>;
}

impl<C: CardChannel + ?Sized> CardChannel for &mut C {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        (**self).transmit(apdu)
    }
}
