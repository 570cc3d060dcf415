//! A virtual JPKI card: holds a certificate and an RSA-2048 key and answers the JPKI APDUs as
//! a My Number Card does (SELECT by AID and EF, READ BINARY, VERIFY with a retry counter and
//! lock, COMPUTE DIGITAL SIGNATURE), for tests, drills and the vpcd card program.

use std::path::Path;

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::{Pkcs1v15Sign, PrivateKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{CardChannel, CardError};
use crate::jpki::{EF_AUTH_CA_CERT, EF_AUTH_CERT, EF_AUTH_KEY, EF_AUTH_PIN, JPKI_AID};

/// The ATR the virtual card gives (that of a My Number Card: T=1).
pub const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];
/// The tries a fresh PIN has.
pub const PIN_TRIES: u8 = 3;
/// The format name in a virtual card file.
pub const CARD_FILE_FORMAT: &str = "evac-virtual-jpki-card/1";

/// A virtual card file that could not be read or written.
#[derive(Debug, Error)]
pub enum CardFileError {
    /// The file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The file is not a virtual card.
    #[error("{path}: not a virtual JPKI card file: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A virtual card as stored in a file (JSON): what the card holds when it is issued.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CardFile {
    /// Always [`CARD_FILE_FORMAT`].
    pub format: String,
    /// The user-authentication certificate (EF `000A`), DER as hex.
    pub certificate: String,
    /// The CA certificate the card offers on EF `000B` (never trusted by the node), hex.
    #[serde(default)]
    pub ca_certificate: String,
    /// The user-authentication private key, PKCS#8 DER as hex.
    pub key: String,
    /// The 4-digit PIN.
    pub pin: String,
    /// Tries left on the PIN.
    #[serde(default = "default_tries")]
    pub pin_tries: u8,
}

fn default_tries() -> u8 {
    PIN_TRIES
}

impl CardFile {
    /// A card file for a certificate (DER) and its RSA key.
    pub fn new(certificate: &[u8], key: &PrivateKey, pin: &str) -> Result<Self, CardFileError> {
        let der = key.to_pkcs8_der().map_err(|e| CardFileError::Format {
            path: "(new card)".into(),
            reason: format!("cannot encode key: {e}"),
        })?;
        Ok(CardFile {
            format: CARD_FILE_FORMAT.into(),
            certificate: hex::encode(certificate),
            ca_certificate: String::new(),
            key: hex::encode(der.as_bytes()),
            pin: pin.into(),
            pin_tries: PIN_TRIES,
        })
    }

    /// Reads a card file.
    pub fn read(path: &Path) -> Result<Self, CardFileError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CardFileError::Io {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let f: CardFile = serde_json::from_str(&text).map_err(|e| CardFileError::Format {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        if f.format != CARD_FILE_FORMAT {
            return Err(CardFileError::Format {
                path: p,
                reason: format!("format {:?}, expected {CARD_FILE_FORMAT:?}", f.format),
            });
        }
        Ok(f)
    }

    /// Writes the card file.
    pub fn write(&self, path: &Path) -> Result<(), CardFileError> {
        let io = |e: std::io::Error| CardFileError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| CardFileError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(io)
    }

    /// The card the file describes, powered up.
    pub fn to_card(&self) -> Result<VirtualCard, CardFileError> {
        let bad = |reason: String| CardFileError::Format {
            path: "(card)".into(),
            reason,
        };
        let cert = hex::decode(&self.certificate).map_err(|e| bad(format!("certificate: {e}")))?;
        let ca = hex::decode(&self.ca_certificate).map_err(|e| bad(format!("ca: {e}")))?;
        let key_der = hex::decode(&self.key).map_err(|e| bad(format!("key: {e}")))?;
        let key = PrivateKey::from_pkcs8_der(&key_der).map_err(|e| bad(format!("key: {e}")))?;
        if self.pin.len() != 4 || !self.pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("pin must be 4 digits".into()));
        }
        let mut card = VirtualCard::new(cert, key, &self.pin);
        card.ca_certificate = ca;
        card.pin_tries = self.pin_tries.min(PIN_TRIES);
        Ok(card)
    }
}

/// The state of a virtual JPKI card. Answers APDUs through [`VirtualCard::respond`].
pub struct VirtualCard {
    certificate: Vec<u8>,
    ca_certificate: Vec<u8>,
    key: PrivateKey,
    pin: [u8; 4],
    pin_tries: u8,
    jpki_selected: bool,
    ef: Option<u16>,
    pin_verified: bool,
    /// Answer like a T=0 card: data only through `61xx` and GET RESPONSE.
    pub t0_style: bool,
    pending: Vec<u8>,
    /// Every command APDU received, for tests that check what the node sent.
    pub log: Vec<Vec<u8>>,
}

impl std::fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VirtualCard(tries {})", self.pin_tries)
    }
}

fn sw(code: u16) -> Vec<u8> {
    code.to_be_bytes().to_vec()
}

impl VirtualCard {
    /// A card holding `certificate` (DER) and `key`, with a fresh PIN.
    pub fn new(certificate: Vec<u8>, key: PrivateKey, pin: &str) -> Self {
        let mut p = [b'0'; 4];
        for (d, s) in p.iter_mut().zip(pin.bytes()) {
            *d = s;
        }
        VirtualCard {
            certificate,
            ca_certificate: Vec::new(),
            key,
            pin: p,
            pin_tries: PIN_TRIES,
            jpki_selected: false,
            ef: None,
            pin_verified: false,
            t0_style: false,
            pending: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Tries left on the PIN.
    pub fn pin_tries(&self) -> u8 {
        self.pin_tries
    }

    /// Power off or reset: the selection and the verified PIN are forgotten (the retry
    /// counter is not: it lives in the card's memory).
    pub fn reset(&mut self) {
        self.jpki_selected = false;
        self.ef = None;
        self.pin_verified = false;
        self.pending.clear();
    }

    /// Answers one command APDU with a response APDU (data, SW1, SW2).
    pub fn respond(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.log.push(apdu.to_vec());
        let resp = self.dispatch(apdu);
        if self.t0_style && resp.len() > 2 && apdu.get(1) != Some(&0xC0) {
            let (data, _) = resp.split_at(resp.len() - 2);
            self.pending = data.to_vec();
            let n = self.pending.len().min(256);
            return vec![0x61, if n == 256 { 0 } else { n as u8 }];
        }
        resp
    }

    fn dispatch(&mut self, apdu: &[u8]) -> Vec<u8> {
        let [cla, ins, p1, p2, rest @ ..] = apdu else {
            return sw(0x6700);
        };
        // Lc and data, or Le only (short APDUs are all the JPKI commands need).
        let (data, le): (&[u8], Option<usize>) = match rest {
            [] => (&[], None),
            [le] => (&[], Some(if *le == 0 { 256 } else { *le as usize })),
            [lc, body @ ..] if body.len() == *lc as usize => (body, None),
            [lc, body @ ..] if body.len() == *lc as usize + 1 => {
                let le = body[*lc as usize];
                (
                    &body[..*lc as usize],
                    Some(if le == 0 { 256 } else { le as usize }),
                )
            }
            _ => return sw(0x6700),
        };
        match (*cla, *ins) {
            (0x00, 0xA4) => self.select(*p1, *p2, data),
            (0x00, 0xB0) => self.read_binary(*p1, *p2, le.unwrap_or(256)),
            (0x00, 0x20) => self.verify(*p1, *p2, data),
            (0x80, 0x2A) => self.sign(*p1, *p2, data),
            (0x00, 0xC0) => self.get_response(le.unwrap_or(256)),
            (0x00 | 0x80, _) => sw(0x6D00),
            _ => sw(0x6E00),
        }
    }

    fn select(&mut self, p1: u8, _p2: u8, data: &[u8]) -> Vec<u8> {
        match p1 {
            0x04 => {
                self.reset();
                if data == JPKI_AID {
                    self.jpki_selected = true;
                    sw(0x9000)
                } else {
                    sw(0x6A82)
                }
            }
            0x02 => match data {
                [hi, lo] if self.jpki_selected => {
                    let ef = u16::from_be_bytes([*hi, *lo]);
                    if [EF_AUTH_CERT, EF_AUTH_CA_CERT, EF_AUTH_KEY, EF_AUTH_PIN].contains(&ef) {
                        self.ef = Some(ef);
                        sw(0x9000)
                    } else {
                        sw(0x6A82)
                    }
                }
                [_, _] => sw(0x6A82),
                _ => sw(0x6700),
            },
            _ => sw(0x6A86),
        }
    }

    fn read_binary(&mut self, p1: u8, p2: u8, le: usize) -> Vec<u8> {
        let file = match self.ef {
            Some(EF_AUTH_CERT) => &self.certificate,
            Some(EF_AUTH_CA_CERT) => &self.ca_certificate,
            Some(_) => return sw(0x6981),
            None => return sw(0x6986),
        };
        if p1 & 0x80 != 0 {
            return sw(0x6A86);
        }
        let offset = u16::from_be_bytes([p1, p2]) as usize;
        if offset > file.len() {
            return sw(0x6B00);
        }
        let available = file.len() - offset;
        if available < le && le != 256 {
            // ISO 7816-4: wrong Le, here is the exact one.
            return vec![0x6C, available as u8];
        }
        let mut out = file[offset..offset + le.min(available)].to_vec();
        out.extend_from_slice(&sw(0x9000));
        out
    }

    fn verify(&mut self, _p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        if self.ef != Some(EF_AUTH_PIN) || p2 != 0x80 {
            return sw(0x6986);
        }
        if self.pin_tries == 0 {
            return sw(0x6983);
        }
        if data.is_empty() {
            return if self.pin_verified {
                sw(0x9000)
            } else {
                sw(0x63C0 | self.pin_tries as u16)
            };
        }
        if data == self.pin {
            self.pin_tries = PIN_TRIES;
            self.pin_verified = true;
            sw(0x9000)
        } else {
            self.pin_tries -= 1;
            self.pin_verified = false;
            sw(0x63C0 | self.pin_tries as u16)
        }
    }

    fn sign(&mut self, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        if (p1, p2) != (0x00, 0x80) {
            return sw(0x6A86);
        }
        if self.ef != Some(EF_AUTH_KEY) {
            return sw(0x6986);
        }
        if !self.pin_verified {
            return sw(0x6982);
        }
        match self.key.sign(Pkcs1v15Sign::new_unprefixed(), data) {
            Ok(mut sig) => {
                sig.extend_from_slice(&sw(0x9000));
                sig
            }
            Err(_) => sw(0x6A80),
        }
    }

    fn get_response(&mut self, le: usize) -> Vec<u8> {
        if self.pending.is_empty() {
            return sw(0x6985);
        }
        let n = le.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..n).collect();
        match self.pending.len() {
            0 => out.extend_from_slice(&sw(0x9000)),
            left => out.extend_from_slice(&[0x61, left.min(255) as u8]),
        }
        out
    }
}

/// The in-process backend: a virtual card in the reader. `pull_after` simulates the card
/// being pulled out after that many APDUs.
pub struct InProcessReader<'a> {
    /// The card.
    pub card: &'a mut VirtualCard,
    /// After this many APDUs the card is gone.
    pub pull_after: Option<usize>,
    sent: usize,
}

impl<'a> InProcessReader<'a> {
    /// A reader holding `card`.
    pub fn new(card: &'a mut VirtualCard) -> Self {
        card.reset();
        InProcessReader {
            card,
            pull_after: None,
            sent: 0,
        }
    }
}

impl CardChannel for InProcessReader<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.pull_after.is_some_and(|n| self.sent >= n) {
            return Err(CardError::Removed);
        }
        self.sent += 1;
        Ok(self.card.respond(apdu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn key() -> PrivateKey {
        static K: OnceLock<PrivateKey> = OnceLock::new();
        K.get_or_init(|| crate::testca::generate_rsa_key(Some([5; 32])).unwrap())
            .clone()
    }

    proptest::proptest! {
        #[test]
        fn any_apdu_gets_a_status_word(apdus in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..20)) {
            let mut card = VirtualCard::new(vec![0x30, 0x03, 1, 2, 3], key(), "1234");
            for a in apdus {
                let r = card.respond(&a);
                proptest::prop_assert!(r.len() >= 2);
            }
        }
    }

    #[test]
    fn card_file_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let f = CardFile::new(&[0x30, 0x00], &key(), "1234").unwrap();
        f.write(&path).unwrap();
        assert_eq!(
            CardFile::read(&path)
                .unwrap()
                .to_card()
                .unwrap()
                .pin_tries(),
            PIN_TRIES
        );
        std::fs::write(&path, "{}").unwrap();
        assert!(
            CardFile::read(&path)
                .unwrap_err()
                .to_string()
                .contains("c.json")
        );
    }
}
