//! A JPKI-shaped test CA: issues user-authentication certificates with a chosen serial,
//! issuer key id, validity and key usage (and, for tests, a broken signature), and CRLs.
//!
//! Real JPKI certificates come from J-LIS; this exists so tests and drills can issue virtual
//! cards whose [`evac_protocol::CardRef`] matches a town registry. The CA's subject key
//! identifier is chosen by the caller and written as the authority key identifier of every
//! certificate it issues.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
use thiserror::Error;
use x509_cert::SubjectPublicKeyInfo;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder, CrlBuilder};
use x509_cert::der::asn1::OctetString;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, crl::RevokedCert};

/// The subject and issuer name of the JPKI user-authentication CA (all generations share it).
pub const JPKI_CA_NAME: &str = "OU=Japan Agency for Local Authority Information Systems,OU=JPKI for user authentication,O=JPKI,C=JP";

/// A test certificate or CRL that could not be made.
#[derive(Debug, Error)]
pub enum TestCaError {
    /// Key generation or encoding failed.
    #[error("rsa key: {0}")]
    Key(String),
    /// Building the certificate failed.
    #[error("building certificate: {0}")]
    Build(String),
    /// A CA file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

fn build_err(e: impl std::fmt::Display) -> TestCaError {
    TestCaError::Build(e.to_string())
}

/// A new RSA-2048 key (slow: generate once and reuse). With a seed, the same key every time.
pub fn generate_rsa_key(seed: Option<[u8; 32]>) -> Result<PrivateKey, TestCaError> {
    use rand_core::SeedableRng;
    let seed = match seed {
        Some(s) => s,
        None => {
            let mut s = [0u8; 32];
            getrandom::fill(&mut s).map_err(|e| TestCaError::Key(e.to_string()))?;
            s
        }
    };
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    PrivateKey::new(&mut rng, 2048).map_err(|e| TestCaError::Key(e.to_string()))
}

/// Reads an RSA private key (PKCS#8 DER, or PEM `PRIVATE KEY`).
pub fn read_rsa_key(path: &Path) -> Result<PrivateKey, TestCaError> {
    let bytes = read(path)?;
    let der = pem_or_der(&bytes, "PRIVATE KEY");
    PrivateKey::from_pkcs8_der(&der).map_err(|e| TestCaError::Io {
        path: path.display().to_string(),
        reason: format!("not a PKCS#8 RSA key: {e}"),
    })
}

/// Writes an RSA private key as PKCS#8 PEM (mode 0600).
pub fn write_rsa_key(path: &Path, key: &PrivateKey) -> Result<(), TestCaError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| TestCaError::Key(e.to_string()))?;
    let io = |e: std::io::Error| TestCaError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(pem("PRIVATE KEY", der.as_bytes()).as_bytes())
        .map_err(io)
}

fn read(path: &Path) -> Result<Vec<u8>, TestCaError> {
    std::fs::read(path).map_err(|e| TestCaError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// PEM text of `der` under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside the first PEM block labelled `label`, or the bytes themselves if they are
/// not PEM.
pub fn pem_or_der(bytes: &[u8], label: &str) -> Vec<u8> {
    use base64::Engine;
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bytes.to_vec();
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        return bytes.to_vec();
    };
    let rest = &text[start + begin.len()..];
    let Some(stop) = rest.find(&end) else {
        return bytes.to_vec();
    };
    let b64: String = rest[..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|_| bytes.to_vec())
}

/// A profile that adds no extensions of its own: we add exactly the JPKI ones.
struct Plain {
    issuer: Name,
    subject: Name,
}

impl BuilderProfile for Plain {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<x509_cert::ext::Extension>> {
        Ok(Vec::new())
    }
}

/// What a user certificate may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// digitalSignature, as a JPKI user-authentication certificate.
    UserAuthentication,
    /// keyCertSign and cRLSign only: a certificate that must not be accepted for a person.
    CertSign,
}

/// The chosen fields of a user-authentication certificate.
#[derive(Clone, Debug)]
pub struct UserCert {
    /// Serial number bytes, big-endian, without a leading zero byte.
    pub serial: Vec<u8>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Key usage.
    pub usage: Usage,
    /// Spoil the signature (for tests of the check).
    pub bad_signature: bool,
}

impl UserCert {
    /// A valid-now certificate (from a day ago for five years) with `serial`.
    pub fn valid_now(serial: &[u8]) -> Self {
        let now = wall_now();
        UserCert {
            serial: serial.to_vec(),
            not_before: now - Duration::from_secs(86_400),
            not_after: now + Duration::from_secs(5 * 365 * 86_400),
            usage: Usage::UserAuthentication,
            bad_signature: false,
        }
    }
}

/// A JPKI-shaped certificate authority for tests and drills.
pub struct TestCa {
    key: PrivateKey,
    cert: Certificate,
    der: Vec<u8>,
    key_id: Vec<u8>,
}

fn time(t: SystemTime) -> Result<Time, TestCaError> {
    Time::try_from(t).map_err(build_err)
}

fn spki_of(key: &PublicKey) -> Result<SubjectPublicKeyInfo, TestCaError> {
    let der = key
        .to_public_key_der()
        .map_err(|e| TestCaError::Key(e.to_string()))?;
    SubjectPublicKeyInfo::from_der(der.as_bytes()).map_err(build_err)
}

fn serial(bytes: &[u8]) -> Result<SerialNumber, TestCaError> {
    // DER INTEGERs are signed: a leading byte >= 0x80 needs a zero in front.
    let mut b = bytes.to_vec();
    if b.first().is_some_and(|x| *x >= 0x80) {
        b.insert(0, 0);
    }
    SerialNumber::new(&b).map_err(build_err)
}

impl TestCa {
    /// A self-signed CA with `key` whose subject key identifier is `key_id`.
    pub fn new(
        key: PrivateKey,
        key_id: &[u8],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Self, TestCaError> {
        let name = Name::from_str(JPKI_CA_NAME).map_err(build_err)?;
        let profile = Plain {
            issuer: name.clone(),
            subject: name,
        };
        let validity = Validity::new(time(not_before)?, time(not_after)?);
        let mut b = CertificateBuilder::new(
            profile,
            serial(&[0x01])?,
            validity,
            spki_of(&key.to_public_key())?,
        )
        .map_err(build_err)?;
        b.add_extension(&BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        })
        .map_err(build_err)?;
        b.add_extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))
            .map_err(build_err)?;
        let ki = OctetString::new(key_id).map_err(build_err)?;
        b.add_extension(&SubjectKeyIdentifier(ki.clone()))
            .map_err(build_err)?;
        b.add_extension(&AuthorityKeyIdentifier {
            key_identifier: Some(ki),
            ..Default::default()
        })
        .map_err(build_err)?;
        let signer = SigningKey::<Sha256>::new(key.clone());
        let cert = b
            .build::<_, rsa::pkcs1v15::Signature>(&signer)
            .map_err(build_err)?;
        let der = cert.to_der().map_err(build_err)?;
        Ok(TestCa {
            key,
            cert,
            der,
            key_id: key_id.to_vec(),
        })
    }

    /// A CA valid from a day ago for ten years.
    pub fn valid_now(key: PrivateKey, key_id: &[u8]) -> Result<Self, TestCaError> {
        let now = wall_now();
        Self::new(
            key,
            key_id,
            now - Duration::from_secs(86_400),
            now + Duration::from_secs(10 * 365 * 86_400),
        )
    }

    /// Loads a CA saved by [`TestCa::save`] (`ca.pem` and `ca.key` in `dir`).
    pub fn load(dir: &Path) -> Result<Self, TestCaError> {
        let key = read_rsa_key(&dir.join("ca.key"))?;
        let der = pem_or_der(&read(&dir.join("ca.pem"))?, "CERTIFICATE");
        let cert = Certificate::from_der(&der).map_err(build_err)?;
        let key_id = x509_parser::parse_x509_certificate(&der)
            .ok()
            .and_then(|(_, c)| {
                c.iter_extensions()
                    .find_map(|e| match e.parsed_extension() {
                        x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                            Some(k.0.to_vec())
                        }
                        _ => None,
                    })
            })
            .ok_or_else(|| TestCaError::Io {
                path: dir.join("ca.pem").display().to_string(),
                reason: "CA certificate has no subject key identifier".into(),
            })?;
        Ok(TestCa {
            key,
            cert,
            der,
            key_id,
        })
    }

    /// Saves the CA as `ca.pem` (certificate) and `ca.key` (private key) in `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TestCaError> {
        let p = dir.join("ca.pem");
        std::fs::write(&p, self.cert_pem()).map_err(|e| TestCaError::Io {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        write_rsa_key(&dir.join("ca.key"), &self.key)
    }

    /// The CA's key identifier (SKI of the CA, AKI of what it issues).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }

    /// Issues a user-authentication certificate for `subject_key`, DER.
    pub fn issue(&self, spec: &UserCert, subject_key: &PublicKey) -> Result<Vec<u8>, TestCaError> {
        let subject = Name::from_str(&format!(
            "CN=evac test card {},C=JP",
            hex::encode(&spec.serial)
        ))
        .map_err(build_err)?;
        let profile = Plain {
            issuer: self.cert.tbs_certificate().subject().clone(),
            subject,
        };
        let validity = Validity::new(time(spec.not_before)?, time(spec.not_after)?);
        let mut b = CertificateBuilder::new(
            profile,
            serial(&spec.serial)?,
            validity,
            spki_of(subject_key)?,
        )
        .map_err(build_err)?;
        let usage = match spec.usage {
            Usage::UserAuthentication => KeyUsage(KeyUsages::DigitalSignature.into()),
            Usage::CertSign => KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        };
        b.add_extension(&usage).map_err(build_err)?;
        b.add_extension(&AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(self.key_id.clone()).map_err(build_err)?),
            ..Default::default()
        })
        .map_err(build_err)?;
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let cert = b
            .build::<_, rsa::pkcs1v15::Signature>(&signer)
            .map_err(build_err)?;
        let mut der = cert.to_der().map_err(build_err)?;
        if spec.bad_signature {
            // The signature BIT STRING ends the certificate.
            if let Some(last) = der.last_mut() {
                *last ^= 0x01;
            }
        }
        Ok(der)
    }

    /// A CRL (DER) revoking the given serial numbers, valid from now for a week.
    pub fn crl(&self, revoked: &[Vec<u8>]) -> Result<Vec<u8>, TestCaError> {
        let now = wall_now();
        let entries = revoked
            .iter()
            .map(|s| {
                Ok(RevokedCert {
                    serial_number: serial(s)?,
                    revocation_date: time(now - Duration::from_secs(60))?,
                    crl_entry_extensions: None,
                })
            })
            .collect::<Result<Vec<_>, TestCaError>>()?;
        let b = CrlBuilder::new_with_this_update(
            &self.cert,
            CrlNumber::try_from(1u32).map_err(build_err)?,
            time(now - Duration::from_secs(60))?,
        )
        .map_err(build_err)?
        .with_next_update(Some(time(now + Duration::from_secs(7 * 86_400))?))
        .with_certificates(entries.into_iter());
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let crl = b
            .build::<_, rsa::pkcs1v15::Signature>(&signer)
            .map_err(build_err)?;
        crl.to_der().map_err(build_err)
    }
}

/// The wall clock, for test certificates: they are made "valid now" for test cards whatever
/// clock a node under test runs on (a drill's or a stepped one), as real cards are.
#[allow(clippy::disallowed_methods)] // certificates of the test CA, not a node's now
fn wall_now() -> SystemTime {
    SystemTime::now()
}
