//! Reading the JPKI user-authentication certificate, and the PIN-guarded challenge signature
//! that proves the card is genuine.
//!
//! Only the JPKI application (`D392F000260100000001`) is ever selected; the card's other
//! applications, and the individual number, are never touched.

use rsa::sha2::{Digest, Sha256};
use thiserror::Error;

use crate::card::{CardChannel, CardError};

/// AID of the JPKI application.
pub const JPKI_AID: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// EF of the user-authentication certificate (readable without PIN).
pub const EF_AUTH_CERT: u16 = 0x000A;
/// EF of the CA certificate the card offers (never trusted; listed so nobody uses it).
pub const EF_AUTH_CA_CERT: u16 = 0x000B;
/// EF of the user-authentication private key.
pub const EF_AUTH_KEY: u16 = 0x0017;
/// EF of the user-authentication PIN (4 digits).
pub const EF_AUTH_PIN: u16 = 0x0018;
/// Largest certificate we are willing to read; a JPKI certificate is about 1 to 2 KB.
pub const MAX_CERT_LEN: usize = 8 * 1024;
/// DigestInfo prefix for SHA-256 (RFC 8017, section 9.2 note 1).
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// What went wrong while talking JPKI to a card.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JpkiError {
    /// The transport failed (card pulled, reader gone).
    #[error(transparent)]
    Card(#[from] CardError),
    /// The card has no JPKI application (not a My Number Card).
    #[error("this card has no JPKI application (not a My Number Card?)")]
    NotJpki,
    /// A file the JPKI application should have is missing.
    #[error("JPKI file {0:04X} not found on the card")]
    FileNotFound(u16),
    /// The card answered a status word we cannot go on from.
    #[error("card answered {sw:04X} to {command}")]
    Status {
        /// The command, in words.
        command: &'static str,
        /// The status word.
        sw: u16,
    },
    /// The certificate file does not start with a plausible DER header.
    #[error("certificate file does not start with a DER SEQUENCE header: {0}")]
    BadHeader(String),
    /// The certificate length in the DER header is absurd.
    #[error("certificate length {0} in the DER header is out of range (max {MAX_CERT_LEN})")]
    AbsurdLength(usize),
    /// The card's response is shorter or longer than asked for.
    #[error("card returned {got} bytes for {command}, expected {expected}")]
    ShortResponse {
        /// The command.
        command: &'static str,
        /// Bytes returned.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// The card asked for more GET RESPONSE rounds than any real card would.
    #[error("card kept asking for GET RESPONSE")]
    EndlessResponse,
    /// The PIN is not four digits.
    #[error("a JPKI user-authentication PIN is 4 digits")]
    BadPinFormat,
}

/// The status word of a response.
pub fn status_word(resp: &[u8]) -> Option<u16> {
    match resp {
        [.., a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// A response split into data and status word, after `61xx`/`6Cxx` have been dealt with.
struct Response {
    data: Vec<u8>,
    sw: u16,
}

/// Sends `apdu`, following `61xx` with GET RESPONSE and `6Cxx` with the same command again
/// with the exact Le the card asked for.
fn exchange<C: CardChannel + ?Sized>(ch: &mut C, apdu: &[u8]) -> Result<Response, JpkiError> {
    let mut resp = ch.transmit(apdu)?;
    let mut sw = status_word(&resp).ok_or(CardError::Transport("empty response".into()))?;
    if sw >> 8 == 0x6C && apdu.len() >= 5 {
        let mut again = apdu.to_vec();
        let last = again.len() - 1;
        again[last] = (sw & 0xFF) as u8;
        resp = ch.transmit(&again)?;
        sw = status_word(&resp).ok_or(CardError::Transport("empty response".into()))?;
    }
    resp.truncate(resp.len() - 2);
    let mut data = resp;
    let mut rounds = 0;
    while sw >> 8 == 0x61 {
        rounds += 1;
        if rounds > 64 {
            return Err(JpkiError::EndlessResponse);
        }
        let le = (sw & 0xFF) as u8;
        let mut more = ch.transmit(&[0x00, 0xC0, 0x00, 0x00, le])?;
        sw = status_word(&more).ok_or(CardError::Transport("empty response".into()))?;
        more.truncate(more.len() - 2);
        data.extend_from_slice(&more);
    }
    Ok(Response { data, sw })
}

fn select_jpki<C: CardChannel + ?Sized>(ch: &mut C) -> Result<(), JpkiError> {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x0C, JPKI_AID.len() as u8];
    apdu.extend_from_slice(&JPKI_AID);
    match exchange(ch, &apdu)?.sw {
        0x9000 => Ok(()),
        0x6A82 => Err(JpkiError::NotJpki),
        sw => Err(JpkiError::Status {
            command: "SELECT JPKI",
            sw,
        }),
    }
}

fn select_ef<C: CardChannel + ?Sized>(ch: &mut C, ef: u16) -> Result<(), JpkiError> {
    let [hi, lo] = ef.to_be_bytes();
    match exchange(ch, &[0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo])?.sw {
        0x9000 => Ok(()),
        0x6A82 => Err(JpkiError::FileNotFound(ef)),
        sw => Err(JpkiError::Status {
            command: "SELECT EF",
            sw,
        }),
    }
}

fn read_binary<C: CardChannel + ?Sized>(
    ch: &mut C,
    offset: usize,
    len: usize,
) -> Result<Vec<u8>, JpkiError> {
    let [p1, p2] = (offset as u16).to_be_bytes();
    let le = if len >= 256 { 0 } else { len as u8 };
    let r = exchange(ch, &[0x00, 0xB0, p1 & 0x7F, p2, le])?;
    match r.sw {
        0x9000 | 0x6282 if r.data.len() == len.min(256) => Ok(r.data),
        0x9000 | 0x6282 => Err(JpkiError::ShortResponse {
            command: "READ BINARY",
            got: r.data.len(),
            expected: len.min(256),
        }),
        0x6982 => Err(JpkiError::Status {
            command: "READ BINARY (security status not satisfied)",
            sw: r.sw,
        }),
        sw => Err(JpkiError::Status {
            command: "READ BINARY",
            sw,
        }),
    }
}

/// Total length (header included) of the DER element that starts with `head`.
pub fn der_total_len(head: &[u8]) -> Result<usize, JpkiError> {
    let bad = |why: &str| JpkiError::BadHeader(format!("{why} in {}", hex::encode(head)));
    match head {
        [0x30, l, ..] if *l < 0x80 => Ok(2 + *l as usize),
        [0x30, 0x81, l, ..] => Ok(3 + *l as usize),
        [0x30, 0x82, a, b, ..] => Ok(4 + u16::from_be_bytes([*a, *b]) as usize),
        [0x30, n, ..] if *n > 0x82 => Err(JpkiError::AbsurdLength(
            1 << (8 * (*n as usize & 0x7F).min(7)),
        )),
        [0x30, ..] => Err(bad("truncated length")),
        _ => Err(bad("no SEQUENCE tag")),
    }
}

/// Selects JPKI and EF `000A` and reads the user-authentication certificate (DER), its length
/// taken from the DER header. Needs no PIN. A header that is not DER, or claims a length out of
/// range, is no reason to refuse the person: what was read (at most [`MAX_CERT_LEN`] bytes)
/// comes back as the certificate, which the certificate check then flags as malformed.
pub fn read_auth_certificate<C: CardChannel + ?Sized>(ch: &mut C) -> Result<Vec<u8>, JpkiError> {
    select_jpki(ch)?;
    select_ef(ch, EF_AUTH_CERT)?;
    let head = read_binary(ch, 0, 4)?;
    let total = match der_total_len(&head) {
        Ok(n) if n > MAX_CERT_LEN => {
            tracing::warn!(
                claimed = n,
                "certificate longer than {MAX_CERT_LEN} bytes: read cut short, flagged"
            );
            MAX_CERT_LEN
        }
        Ok(n) if n >= 16 => n,
        _ => return Ok(head),
    };
    let mut cert = Vec::with_capacity(total);
    while cert.len() < total {
        let chunk = (total - cert.len()).min(256);
        cert.extend_from_slice(&read_binary(ch, cert.len(), chunk)?);
    }
    Ok(cert)
}

/// What the card says about the user-authentication PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinStatus {
    /// The PIN may be tried this many more times.
    TriesLeft(u8),
    /// The PIN is verified already.
    Verified,
    /// No tries left: only the municipal office can unlock it.
    Locked,
}

/// Selects EF `0018` and sends an empty VERIFY, which reports the tries left without using one.
pub fn pin_status<C: CardChannel + ?Sized>(ch: &mut C) -> Result<PinStatus, JpkiError> {
    select_ef(ch, EF_AUTH_PIN)?;
    let r = exchange(ch, &[0x00, 0x20, 0x00, 0x80])?;
    pin_answer(r.sw, "VERIFY (empty)")
}

fn pin_answer(sw: u16, command: &'static str) -> Result<PinStatus, JpkiError> {
    match sw {
        0x9000 => Ok(PinStatus::Verified),
        0x63C0 | 0x6983 | 0x6984 => Ok(PinStatus::Locked),
        sw if sw & 0xFFF0 == 0x63C0 => Ok(PinStatus::TriesLeft((sw & 0x0F) as u8)),
        sw => Err(JpkiError::Status { command, sw }),
    }
}

/// Verifies `pin` once (never retried automatically). EF `0018` must be selected, as
/// [`pin_status`] leaves it. Returns `Verified` or the tries left after a wrong PIN.
pub fn verify_pin<C: CardChannel + ?Sized>(ch: &mut C, pin: &str) -> Result<PinStatus, JpkiError> {
    if pin.len() != 4 || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(JpkiError::BadPinFormat);
    }
    let mut apdu = vec![0x00, 0x20, 0x00, 0x80, 0x04];
    apdu.extend_from_slice(pin.as_bytes());
    let r = exchange(ch, &apdu)?;
    pin_answer(r.sw, "VERIFY")
}

/// The DigestInfo (SHA-256) of `message`, as the card's signing command expects it.
pub fn sha256_digest_info(message: &[u8]) -> Vec<u8> {
    let mut di = SHA256_DIGEST_INFO_PREFIX.to_vec();
    di.extend_from_slice(&Sha256::digest(message));
    di
}

/// Signs `challenge` with the user-authentication key (after a verified PIN): selects EF
/// `0017` and sends `80 2A 00 80` over the SHA-256 DigestInfo. Returns the raw signature.
pub fn sign_challenge<C: CardChannel + ?Sized>(
    ch: &mut C,
    challenge: &[u8],
) -> Result<Vec<u8>, JpkiError> {
    select_ef(ch, EF_AUTH_KEY)?;
    let di = sha256_digest_info(challenge);
    let mut apdu = vec![0x80, 0x2A, 0x00, 0x80, di.len() as u8];
    apdu.extend_from_slice(&di);
    apdu.push(0x00);
    let r = exchange(ch, &apdu)?;
    match r.sw {
        0x9000 => Ok(r.data),
        sw => Err(JpkiError::Status {
            command: "COMPUTE DIGITAL SIGNATURE",
            sw,
        }),
    }
}

/// The strong (PIN) part of a tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrongResult {
    /// No PIN was given: certificate read only.
    NotAsked,
    /// The PIN was wrong; the card has this many tries left.
    WrongPin(u8),
    /// The PIN is locked on the card; nothing was tried.
    Locked,
    /// The card signed the challenge; the signature is to be checked against the certificate.
    Signed {
        /// The challenge sent.
        challenge: Vec<u8>,
        /// The card's signature.
        signature: Vec<u8>,
    },
}

/// Everything read from a card in one tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRead {
    /// The user-authentication certificate, DER.
    pub certificate: Vec<u8>,
    /// The PIN/challenge step.
    pub strong: StrongResult,
}

/// One whole tap: read the certificate and, with a PIN, have the card sign `challenge`.
pub fn read_card<C: CardChannel + ?Sized>(
    ch: &mut C,
    pin: Option<&str>,
    challenge: &[u8],
) -> Result<CardRead, JpkiError> {
    let certificate = read_auth_certificate(ch)?;
    let strong = match pin {
        None => StrongResult::NotAsked,
        Some(pin) => match pin_status(ch)? {
            PinStatus::Locked => StrongResult::Locked,
            PinStatus::Verified | PinStatus::TriesLeft(_) => match verify_pin(ch, pin)? {
                PinStatus::Verified => StrongResult::Signed {
                    challenge: challenge.to_vec(),
                    signature: sign_challenge(ch, challenge)?,
                },
                PinStatus::TriesLeft(n) => StrongResult::WrongPin(n),
                PinStatus::Locked => StrongResult::WrongPin(0),
            },
        },
    };
    Ok(CardRead {
        certificate,
        strong,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A card that answers from a script and records what it was sent.
    struct Scripted {
        answers: Vec<(Vec<u8>, Vec<u8>)>,
        sent: Vec<Vec<u8>>,
    }

    impl CardChannel for Scripted {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
            self.sent.push(apdu.to_vec());
            if self.answers.is_empty() {
                return Err(CardError::Removed);
            }
            let (expect, answer) = self.answers.remove(0);
            assert_eq!(hex::encode(apdu), hex::encode(expect));
            Ok(answer)
        }
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn follows_61xx_and_6cxx() {
        let mut card = Scripted {
            answers: vec![
                // wrong Le: the card names the right one, and the command is sent again with it
                (h("00B0000000"), h("6C03")),
                (h("00B0000003"), h("010203 6102")),
                // the rest comes with GET RESPONSE
                (h("00C0000002"), h("0405 9000")),
            ],
            sent: vec![],
        };
        let r = exchange(&mut card, &h("00B0000000")).unwrap();
        assert_eq!((r.data, r.sw), (vec![1, 2, 3, 4, 5], 0x9000));
        assert_eq!(card.sent.len(), 3);
    }

    #[test]
    fn security_status_and_errors_are_named() {
        let mut card = Scripted {
            answers: vec![
                (h("00A4040C0A D392F000260100000001"), h("9000")),
                (h("00A4020C02 000A"), h("9000")),
                (h("00B0000004"), h("6982")),
            ],
            sent: vec![],
        };
        let err = read_auth_certificate(&mut card).unwrap_err().to_string();
        assert!(
            err.contains("6982") && err.contains("security status"),
            "{err}"
        );
    }

    #[test]
    fn reads_in_chunks_with_length_from_header() {
        let body = vec![0xAB; 600];
        let mut cert = vec![0x30, 0x82, 0x02, 0x58];
        cert.extend_from_slice(&body);
        let ok = |d: &[u8]| [d, &[0x90, 0x00]].concat();
        let mut card = Scripted {
            answers: vec![
                (h("00A4040C0A D392F000260100000001"), h("9000")),
                (h("00A4020C02 000A"), h("9000")),
                (h("00B0000004"), ok(&cert[..4])),
                (h("00B0000000"), ok(&cert[..256])),
                (h("00B0010000"), ok(&cert[256..512])),
                (h("00B002005C"), ok(&cert[512..])),
            ],
            sent: vec![],
        };
        assert_eq!(read_auth_certificate(&mut card).unwrap(), cert);
    }

    #[test]
    fn refuses_absurd_lengths_and_bad_headers() {
        for (head, want_absurd) in [
            ("30830100000000", true),
            ("3082FFFF", true),
            ("3004", true),
            ("31820100", false),
            ("3082", false),
        ] {
            let hd = h(head);
            let r = der_total_len(&hd).and_then(|n| {
                if (16..=MAX_CERT_LEN).contains(&n) {
                    Ok(n)
                } else {
                    Err(JpkiError::AbsurdLength(n))
                }
            });
            match r {
                Err(JpkiError::AbsurdLength(_)) => assert!(want_absurd, "{head}"),
                Err(JpkiError::BadHeader(_)) => assert!(!want_absurd, "{head}"),
                other => panic!("{head}: {other:?}"),
            }
        }
    }

    #[test]
    fn not_a_jpki_card() {
        let mut card = Scripted {
            answers: vec![(h("00A4040C0A D392F000260100000001"), h("6A82"))],
            sent: vec![],
        };
        assert_eq!(
            read_auth_certificate(&mut card).unwrap_err(),
            JpkiError::NotJpki
        );
    }

    #[test]
    fn pin_answers() {
        assert_eq!(pin_answer(0x63C3, "x").unwrap(), PinStatus::TriesLeft(3));
        assert_eq!(pin_answer(0x63C0, "x").unwrap(), PinStatus::Locked);
        assert_eq!(pin_answer(0x6983, "x").unwrap(), PinStatus::Locked);
        assert_eq!(pin_answer(0x9000, "x").unwrap(), PinStatus::Verified);
        assert!(pin_answer(0x6A86, "x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn header_decoder_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..8)) {
            let _ = der_total_len(&bytes);
        }

        #[test]
        fn any_card_answers_never_panic(answers in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..12)) {
            struct Random(Vec<Vec<u8>>);
            impl CardChannel for Random {
                fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, CardError> {
                    if self.0.is_empty() { Err(CardError::Removed) } else { Ok(self.0.remove(0)) }
                }
            }
            let _ = read_card(&mut Random(answers), Some("1234"), b"challenge");
        }
    }
}
