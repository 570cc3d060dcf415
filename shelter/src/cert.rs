//! Certificate checks: is this the user-authentication certificate of a card issued by one of
//! the configured (pinned) JPKI CAs, valid at tap time, meant for authentication, not revoked?
//!
//! A failed check never refuses anybody: it becomes a [`Flag`] on the check-in.
//!
//! The [`CardRef`] of a certificate, which the registry links to a resident, is
//! `issuer_key_id` = the key identifier octets of the certificate's AuthorityKeyIdentifier
//! extension (empty if it has none), and `serial` = the content octets of the serialNumber
//! DER INTEGER with the single leading `0x00` byte removed that DER adds when the top bit of
//! the next byte is set (so serial `0x00 0x8f 0x01` is `8f01`; serial zero is `00`).

use std::collections::HashSet;
use std::path::Path;

use evac_protocol::{CardRef, Flag};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::{Sha256, Sha384, Sha512};
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::time::ASN1Time;

use crate::testca::pem_or_der;

/// A CA, CRL or deny-list file that could not be loaded (configuration errors, not tap errors).
#[derive(Debug, Error)]
pub enum TrustError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The file is not a CA certificate we can use.
    #[error("{path}: not a usable CA certificate: {reason}")]
    BadCa {
        /// The file.
        path: String,
        /// What is wrong.
        reason: TrustDataError,
    },
    /// The CRL is malformed or not signed by a configured CA.
    #[error("{path}: unusable CRL: {reason}")]
    BadCrl {
        /// The file.
        path: String,
        /// What is wrong.
        reason: TrustDataError,
    },
    /// A line of the deny list is not `ISSUER_KEY_ID_HEX/SERIAL_HEX`.
    #[error("{path}:{line}: deny-list entries are ISSUER_KEY_ID_HEX/SERIAL_HEX, got {text:?}")]
    BadDenyList {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// What is wrong with a CA certificate or CRL given as DER.
#[derive(Debug, Error)]
pub enum TrustDataError {
    /// Not DER the parser takes (its words).
    #[error("{0}")]
    Der(String),
    /// A certificate that is not a CA's.
    #[error("basicConstraints does not say CA")]
    NotCa,
    /// A CRL no pinned CA signed.
    #[error("not signed by any configured CA")]
    UnknownCrlIssuer,
}

struct TrustedCa {
    key_id: Option<Vec<u8>>,
    subject: Vec<u8>,
    spki: Vec<u8>,
}

/// Revocation data, when any was configured.
#[derive(Debug, Default)]
struct Revocation {
    configured: bool,
    revoked: HashSet<CardRef>,
}

/// The pinned CA certificates and the revocation data a node checks certificates against.
#[derive(Default)]
pub struct TrustStore {
    cas: Vec<TrustedCa>,
    revocation: Revocation,
}

/// The verdict on one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertReport {
    /// No reason found against it.
    pub valid: bool,
    /// Every check that failed, in a fixed order.
    pub reasons: Vec<Flag>,
    /// The certificate's card reference, when it could be parsed.
    pub card: Option<CardRef>,
    /// End of validity, when it could be parsed.
    pub not_after: Option<OffsetDateTime>,
    /// Whether revocation was checked (false: no CRL or deny list configured).
    pub revocation_checked: bool,
    /// The subject public key (SPKI DER), to check a card's challenge signature against.
    pub public_key: Option<Vec<u8>>,
}

/// The card reference of a parsed certificate (see the module docs for the exact bytes).
pub fn card_ref(cert: &X509Certificate<'_>) -> CardRef {
    CardRef {
        issuer_key_id: authority_key_id(cert).unwrap_or_default(),
        serial: strip_sign_byte(cert.raw_serial()),
    }
}

/// Serial octets without DER's leading sign byte.
pub fn strip_sign_byte(raw: &[u8]) -> Vec<u8> {
    match raw {
        [0, rest @ ..] if !rest.is_empty() => rest.to_vec(),
        _ => raw.to_vec(),
    }
}

fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

/// Verifies an RSA PKCS#1 v1.5 signature over `message` with the key in `spki_der`, for the
/// signature algorithm `alg_oid` (sha256/384/512WithRSAEncryption). Anything else is false.
pub fn verify_rsa_pkcs1(spki_der: &[u8], alg_oid: &str, message: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = rsa::PublicKey::from_public_key_der(spki_der) else {
        return false;
    };
    use rsa::sha2::Digest;
    match alg_oid {
        "1.2.840.113549.1.1.11" => key
            .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message), sig)
            .is_ok(),
        "1.2.840.113549.1.1.12" => key
            .verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message), sig)
            .is_ok(),
        "1.2.840.113549.1.1.13" => key
            .verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message), sig)
            .is_ok(),
        _ => false,
    }
}

/// Checks a card's signature over a challenge (SHA-256 DigestInfo, PKCS#1 v1.5) against the
/// certificate's public key.
pub fn verify_challenge(spki_der: &[u8], challenge: &[u8], sig: &[u8]) -> bool {
    verify_rsa_pkcs1(spki_der, "1.2.840.113549.1.1.11", challenge, sig)
}

fn read(path: &Path) -> Result<Vec<u8>, TrustError> {
    std::fs::read(path).map_err(|e| TrustError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads a certificate file that may be DER or PEM.
pub fn read_cert_file(path: &Path) -> std::io::Result<Vec<u8>> {
    Ok(pem_or_der(&std::fs::read(path)?, "CERTIFICATE"))
}

impl TrustStore {
    /// An empty store: every certificate is `unknown-issuer`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pins a CA certificate (DER).
    pub fn add_ca_der(&mut self, der: &[u8]) -> Result<(), TrustDataError> {
        let (_, ca) =
            X509Certificate::from_der(der).map_err(|e| TrustDataError::Der(e.to_string()))?;
        if !ca.is_ca() {
            return Err(TrustDataError::NotCa);
        }
        self.cas.push(TrustedCa {
            key_id: subject_key_id(&ca),
            subject: ca.subject().as_raw().to_vec(),
            spki: ca.public_key().raw.to_vec(),
        });
        Ok(())
    }

    /// Pins the CA certificate in `path` (DER or PEM).
    pub fn add_ca_file(&mut self, path: &Path) -> Result<(), TrustError> {
        let der = pem_or_der(&read(path)?, "CERTIFICATE");
        self.add_ca_der(&der).map_err(|reason| TrustError::BadCa {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Number of pinned CAs.
    pub fn ca_count(&self) -> usize {
        self.cas.len()
    }

    /// Loads revocation data: a CRL (DER or PEM, signed by a pinned CA), or a deny list (text,
    /// one `ISSUER_KEY_ID_HEX/SERIAL_HEX` a line, `#` comments). Call after the CAs are added.
    pub fn add_revocation_file(&mut self, path: &Path) -> Result<(), TrustError> {
        let bytes = read(path)?;
        let p = path.display().to_string();
        let text = std::str::from_utf8(&bytes).ok();
        let is_crl = bytes.first() == Some(&0x30)
            || text.is_some_and(|t| t.contains("-----BEGIN X509 CRL-----"));
        if is_crl {
            let der = pem_or_der(&bytes, "X509 CRL");
            self.add_crl_der(&der)
                .map_err(|reason| TrustError::BadCrl { path: p, reason })
        } else {
            let text = text.ok_or_else(|| TrustError::BadDenyList {
                path: p.clone(),
                line: 0,
                text: "(not UTF-8)".into(),
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let bad = || TrustError::BadDenyList {
                    path: p.clone(),
                    line: i + 1,
                    text: line.to_owned(),
                };
                let (k, s) = line.split_once('/').ok_or_else(bad)?;
                let card = CardRef {
                    issuer_key_id: hex::decode(k).map_err(|_| bad())?,
                    serial: strip_sign_byte(&hex::decode(s).map_err(|_| bad())?),
                };
                self.revocation.revoked.insert(card);
            }
            self.revocation.configured = true;
            Ok(())
        }
    }

    /// Loads a CRL (DER) whose signature verifies with a pinned CA.
    pub fn add_crl_der(&mut self, der: &[u8]) -> Result<(), TrustDataError> {
        let (_, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| TrustDataError::Der(e.to_string()))?;
        let aki = crl
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            });
        let alg = crl.signature_algorithm.algorithm.to_id_string();
        let signer = self.cas.iter().find(|ca| {
            let matches = match (&aki, &ca.key_id) {
                (Some(a), Some(k)) => a == k,
                _ => ca.subject == crl.issuer().as_raw(),
            };
            matches
                && verify_rsa_pkcs1(
                    &ca.spki,
                    &alg,
                    crl.tbs_cert_list.as_ref(),
                    &crl.signature_value.data,
                )
        });
        let Some(ca) = signer else {
            return Err(TrustDataError::UnknownCrlIssuer);
        };
        let key_id = ca.key_id.clone().unwrap_or_default();
        for r in crl.iter_revoked_certificates() {
            self.revocation.revoked.insert(CardRef {
                issuer_key_id: key_id.clone(),
                serial: strip_sign_byte(r.raw_serial()),
            });
        }
        self.revocation.configured = true;
        Ok(())
    }

    /// Judges a certificate (DER) at time `at`.
    pub fn check(&self, der: &[u8], at: OffsetDateTime) -> CertReport {
        let cert = match X509Certificate::from_der(der) {
            Ok(([], c)) => c,
            _ => {
                return CertReport {
                    valid: false,
                    reasons: vec![Flag::Malformed],
                    card: None,
                    not_after: None,
                    revocation_checked: false,
                    public_key: None,
                };
            }
        };
        let mut reasons = Vec::new();
        let card = card_ref(&cert);

        // Issuer and signature: pinned CAs only, matched by key identifier (every JPKI CA
        // generation has the same name) or, without one, by name.
        let aki = authority_key_id(&cert);
        let candidates: Vec<&TrustedCa> = self
            .cas
            .iter()
            .filter(|ca| match (&aki, &ca.key_id) {
                (Some(a), Some(k)) => a == k,
                (Some(_), None) | (None, _) => ca.subject == cert.issuer().as_raw(),
            })
            .collect();
        if candidates.is_empty() {
            reasons.push(Flag::UnknownIssuer);
        } else {
            let alg = cert.signature_algorithm.algorithm.to_id_string();
            let ok = candidates.iter().any(|ca| {
                verify_rsa_pkcs1(
                    &ca.spki,
                    &alg,
                    cert.tbs_certificate.as_ref(),
                    &cert.signature_value.data,
                )
            });
            if !ok {
                reasons.push(Flag::BadSignature);
            }
        }

        let t = ASN1Time::from_timestamp(at.unix_timestamp()).unwrap_or(ASN1Time::now());
        let v = cert.validity();
        if t < v.not_before {
            reasons.push(Flag::NotYetValid);
        }
        if t > v.not_after {
            reasons.push(Flag::Expired);
        }

        let usage_ok = match cert.key_usage() {
            Ok(Some(ku)) => ku.value.digital_signature() && !ku.value.key_cert_sign(),
            Ok(None) => true,
            Err(_) => false,
        } && !cert.is_ca();
        if !usage_ok {
            reasons.push(Flag::WrongKeyUsage);
        }

        if self.revocation.configured && self.revocation.revoked.contains(&card) {
            reasons.push(Flag::Revoked);
        }

        CertReport {
            valid: reasons.is_empty(),
            reasons,
            card: Some(card),
            not_after: OffsetDateTime::from_unix_timestamp(v.not_after.timestamp()).ok(),
            revocation_checked: self.revocation.configured,
            public_key: Some(cert.public_key().raw.to_vec()),
        }
    }
}
