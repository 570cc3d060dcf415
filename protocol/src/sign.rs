//! Keys and signatures: every event, command, order and acknowledgement is signed by the node
//! or officer that made it, so nobody has to trust the broker for more than transport.
//!
//! Keys are Ed25519. A signed message travels as an envelope whose `body` is kept as the exact
//! bytes that were signed, so verification never depends on how JSON is re-serialised.

use std::fmt;
use std::path::Path;

use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::PROTOCOL_VERSION;
use crate::error::{KeyError, SignError};

/// A message family that is signed; its `KIND` separates the signatures of one family from
/// another's, so a signature on an ack can never pass for one on an event.
pub trait Signable: Serialize + DeserializeOwned {
    /// The family's name in the envelope and in the signed bytes.
    const KIND: &'static str;
}

/// A key's short id on air: the first 8 bytes of its Ed25519 public key.
pub type KeyId = [u8; 8];

/// The secret half of a node's or officer's key.
pub struct SecretKey(ed25519_dalek::SigningKey);

/// The public half of a key, as configured at whoever checks the signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public().fingerprint())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The key derived from a 32-byte seed: for tests and deterministic drills only.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The key as a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_pkcs8_pem(Default::default())
            .map(|z| z.to_string())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(SecretKey)
            .map_err(|e| KeyError::Decode(e.to_string()))
    }

    /// Reads a private key file written by [`write_key_pair`].
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = read_text(path)?;
        Self::from_pem(&text).map_err(|e| e.at(path))
    }

    /// Signs `body` (serialised once, here) as a message of family `T::KIND` by `signer`.
    pub fn sign<T: Signable>(&self, signer: &str, body: &T) -> Result<Signed<T>, SignError> {
        let json = serde_json::to_string(body).map_err(|e| SignError::Encode(e.to_string()))?;
        let raw = RawValue::from_string(json).map_err(|e| SignError::Encode(e.to_string()))?;
        let sig = self.0.sign(&signed_bytes(T::KIND, raw.get().as_bytes()));
        Ok(Signed {
            v: PROTOCOL_VERSION,
            kind: T::KIND.to_owned(),
            signer: signer.to_owned(),
            body: raw,
            sig: hex::encode(sig.to_bytes()),
            _body: std::marker::PhantomData,
        })
    }

    /// The 32 secret bytes, for keys derived from this one (see [`crate::CardKey::derive`]).
    pub(crate) fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Signs raw bytes under a domain name (for binary formats such as overlay sections).
    pub fn sign_bytes(&self, domain: &str, bytes: &[u8]) -> [u8; 64] {
        self.0.sign(&signed_bytes(domain, bytes)).to_bytes()
    }

    /// A 32-byte secret of its own for `label`, which only the holder of this key can make and
    /// which stays the same for as long as the key does (Ed25519 signatures are
    /// deterministic): SHA-256 of the key's signature over the label. For HQ's keyed tables
    /// (the broker's login cache, answer codes) that must survive a restart without a file.
    pub fn derive_secret(&self, label: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.sign_bytes(label, b"")).into()
    }
}

impl PublicKey {
    /// The key as an SPKI PEM document (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(Default::default())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Refuses keys no honest signer has: a non-canonical encoding, a point of small order
    /// (any signature "verifies" for some messages) or with a torsion component (single and
    /// batch verification could then disagree).
    fn checked(vk: ed25519_dalek::VerifyingKey) -> Result<Self, KeyError> {
        let point = vk.to_edwards();
        if vk.is_weak() || !point.is_torsion_free() {
            return Err(KeyError::Decode(
                "a weak public key (small order or torsion component): refused".into(),
            ));
        }
        if point.compress().to_bytes() != vk.to_bytes() {
            return Err(KeyError::Decode(
                "a public key not in canonical encoding: refused".into(),
            ));
        }
        Ok(PublicKey(vk))
    }

    /// Reads an SPKI PEM public key (weak keys refused).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| KeyError::Decode(e.to_string()))
            .and_then(Self::checked)
    }

    /// Reads a public key file written by [`write_key_pair`].
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = read_text(path)?;
        Self::from_pem(&text).map_err(|e| e.at(path))
    }

    /// The raw 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key from its raw 32 bytes (weak keys refused).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|e| KeyError::Decode(e.to_string()))
            .and_then(Self::checked)
    }

    /// The one verification rule of evac, for a single signature over `msg`: strict
    /// (canonical `s`, small-order `R` and key refused, cofactorless equation, the recomputed
    /// `R` must encode exactly as sent).
    fn verify_raw(&self, msg: &[u8], sig: &ed25519_dalek::Signature) -> bool {
        self.0.verify_strict(msg, sig).is_ok()
    }

    /// The same rule for many signatures by this key at once: a cofactorless batch, after
    /// refusing any `R` that is not a canonical encoding of a point of the prime-order
    /// subgroup (so no torsion component can vanish under a random weight, and the batch
    /// accepts exactly what [`PublicKey::verify_raw`] accepts one by one).
    fn verify_raw_batch(&self, msgs: &[&[u8]], sigs: &[ed25519_dalek::Signature]) -> bool {
        for sig in sigs {
            let r = sig.r_bytes();
            let Some(point) = curve25519_dalek::edwards::CompressedEdwardsY(*r).decompress() else {
                return false;
            };
            if point.compress().to_bytes() != *r || !point.is_torsion_free() {
                return false;
            }
        }
        let keys = vec![self.0; sigs.len()];
        ed25519_dalek::verify_batch(msgs, sigs, &keys).is_ok()
    }

    /// A short text that tells keys apart in logs and configs (first 8 bytes, hex).
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.0.as_bytes()[..8])
    }

    /// The key's short id, as signed overlay sections name it.
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.0.as_bytes()[..8]);
        id
    }

    /// Checks a signature made by [`SecretKey::sign_bytes`].
    pub fn verify_bytes(
        &self,
        domain: &str,
        bytes: &[u8],
        sig: &[u8; 64],
    ) -> Result<(), SignError> {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.verify_raw(&signed_bytes(domain, bytes), &sig)
            .then_some(())
            .ok_or(SignError::BadSignature)
    }

    /// Checks many envelopes of one family against this key at once (faster than one by one);
    /// on failure, check them one by one to find the culprits.
    pub fn verify_batch<T: Signable>(&self, envelopes: &[&Signed<T>]) -> Result<(), SignError> {
        let mut messages = Vec::with_capacity(envelopes.len());
        let mut sigs = Vec::with_capacity(envelopes.len());
        for e in envelopes {
            e.check_kind()?;
            messages.push(signed_bytes(T::KIND, e.body.get().as_bytes()));
            sigs.push(e.signature()?);
        }
        let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        self.verify_raw_batch(&refs, &sigs)
            .then_some(())
            .ok_or(SignError::BadSignature)
    }
}

/// A signed message as it travels: `{"v":1,"kind":..,"signer":..,"body":{..},"sig":"hex"}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Signed<T> {
    /// Protocol version of the envelope.
    pub v: u32,
    /// The message family (see [`Signable::KIND`]).
    pub kind: String,
    /// Who signed: `shelter:N`, `officer:NAME`, `hq`, `broadcaster:NAME`.
    pub signer: String,
    body: Box<RawValue>,
    /// Ed25519 signature, hex.
    pub sig: String,
    #[serde(skip)]
    _body: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Signed {
            v: self.v,
            kind: self.kind.clone(),
            signer: self.signer.clone(),
            body: self.body.clone(),
            sig: self.sig.clone(),
            _body: std::marker::PhantomData,
        }
    }
}

impl<T: Signable> Signed<T> {
    /// Checks the signature with `key`, then decodes the body.
    pub fn open(&self, key: &PublicKey) -> Result<T, SignError> {
        self.check_kind()?;
        let sig = self.signature()?;
        if !key.verify_raw(&signed_bytes(T::KIND, self.body.get().as_bytes()), &sig) {
            return Err(SignError::BadSignature);
        }
        self.body_unverified()
    }

    /// Decodes the body without checking the signature: for display and routing only, never
    /// for acting on the content.
    pub fn body_unverified(&self) -> Result<T, SignError> {
        serde_json::from_str(self.body.get()).map_err(|e| SignError::Body(e.to_string()))
    }

    /// The exact JSON bytes that were signed.
    pub fn body_json(&self) -> &str {
        self.body.get()
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> Result<String, SignError> {
        serde_json::to_string(self).map_err(|e| SignError::Encode(e.to_string()))
    }

    /// Reads an envelope from JSON bytes (an MQTT payload) and checks its version and family;
    /// the signature is checked by [`Signed::open`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, SignError> {
        let s: Signed<T> =
            serde_json::from_slice(bytes).map_err(|e| SignError::Envelope(e.to_string()))?;
        if s.v != PROTOCOL_VERSION {
            return Err(SignError::Version(s.v));
        }
        s.check_kind()?;
        Ok(s)
    }

    fn check_kind(&self) -> Result<(), SignError> {
        if self.kind == T::KIND {
            Ok(())
        } else {
            Err(SignError::WrongKind {
                expected: T::KIND,
                found: self.kind.clone(),
            })
        }
    }

    fn signature(&self) -> Result<ed25519_dalek::Signature, SignError> {
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.sig, &mut sig).map_err(|_| SignError::BadSignature)?;
        Ok(ed25519_dalek::Signature::from_bytes(&sig))
    }
}

/// Domain-separated bytes that are signed: `evac/v1/{kind}`, a zero byte, then the message.
fn signed_bytes(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + kind.len() + body.len());
    out.extend_from_slice(b"evac/v1/");
    out.extend_from_slice(kind.as_bytes());
    out.push(0);
    out.extend_from_slice(body);
    out
}

fn read_text(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|e| KeyError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Writes a new key pair as `{prefix}.key` (private, mode 0600) and `{prefix}.pub`, and
/// returns the public key. Refuses to overwrite an existing private key.
pub fn write_key_pair(prefix: &Path) -> Result<PublicKey, KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let key = SecretKey::generate()?;
    let priv_path = prefix.with_extension("key");
    let pub_path = prefix.with_extension("pub");
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| KeyError::Io {
            path,
            reason: e.to_string(),
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&priv_path)
        .map_err(io(&priv_path))?;
    f.write_all(key.to_pem()?.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io(&priv_path))?;
    let public = key.public();
    std::fs::write(&pub_path, public.to_pem()?).map_err(io(&pub_path))?;
    Ok(public)
}

/// The one line every tool's `keygen` prints after [`write_key_pair`]: both files and the
/// public key's fingerprint, so an operator can compare it with what HQ holds.
pub fn keygen_line(prefix: &Path, public: &PublicKey) -> String {
    format!(
        "wrote {} (private, mode 0600) and {}; fingerprint {}",
        prefix.with_extension("key").display(),
        prefix.with_extension("pub").display(),
        public.fingerprint()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
        text: String,
    }
    impl Signable for Ping {
        const KIND: &'static str = "ping";
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pong {
        n: u32,
        text: String,
    }
    impl Signable for Pong {
        const KIND: &'static str = "pong";
    }

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed(&[n; 32])
    }

    #[test]
    fn round_trip_through_json() {
        let k = key(1);
        let body = Ping {
            n: 7,
            text: "避難".into(),
        };
        let env = k.sign("hq", &body).unwrap();
        let wire = env.to_json().unwrap();
        let back = Signed::<Ping>::from_json(wire.as_bytes()).unwrap();
        assert_eq!(back.open(&k.public()).unwrap(), body);
    }

    #[test]
    fn tampering_and_wrong_key_are_caught() {
        let k = key(1);
        let wire = k
            .sign(
                "hq",
                &Ping {
                    n: 7,
                    text: "x".into(),
                },
            )
            .unwrap()
            .to_json()
            .unwrap();
        let tampered = wire.replace("\"n\":7", "\"n\":8");
        let env = Signed::<Ping>::from_json(tampered.as_bytes()).unwrap();
        assert!(matches!(
            env.open(&k.public()),
            Err(SignError::BadSignature)
        ));
        let env = Signed::<Ping>::from_json(wire.as_bytes()).unwrap();
        assert!(matches!(
            env.open(&key(2).public()),
            Err(SignError::BadSignature)
        ));
        // Re-spaced JSON is a different message: the signature is over the exact bytes.
        let spaced = wire.replace("\"n\":7", "\"n\": 7");
        let env = Signed::<Ping>::from_json(spaced.as_bytes()).unwrap();
        assert!(env.open(&k.public()).is_err());
    }

    #[test]
    fn a_signature_of_one_family_is_not_valid_for_another() {
        let k = key(1);
        let wire = k
            .sign(
                "hq",
                &Ping {
                    n: 1,
                    text: "a".into(),
                },
            )
            .unwrap()
            .to_json()
            .unwrap();
        let relabelled = wire.replace("\"kind\":\"ping\"", "\"kind\":\"pong\"");
        let env = Signed::<Pong>::from_json(relabelled.as_bytes()).unwrap();
        assert!(matches!(
            env.open(&k.public()),
            Err(SignError::BadSignature)
        ));
        assert!(Signed::<Pong>::from_json(wire.as_bytes()).is_err());
    }

    #[test]
    fn batch_verification_agrees() {
        let k = key(3);
        let envs: Vec<_> = (0..10)
            .map(|n| {
                k.sign(
                    "shelter:1",
                    &Ping {
                        n,
                        text: "t".into(),
                    },
                )
                .unwrap()
            })
            .collect();
        let refs: Vec<_> = envs.iter().collect();
        k.public().verify_batch(&refs).unwrap();
        assert!(key(4).public().verify_batch(&refs).is_err());
    }

    #[test]
    fn garbage_envelopes_are_errors() {
        for bad in [&b""[..], b"{}", b"null", b"{\"v\":1}", b"\xff\xfe"] {
            assert!(Signed::<Ping>::from_json(bad).is_err());
        }
        let k = key(1);
        let wire = k
            .sign(
                "hq",
                &Ping {
                    n: 1,
                    text: "a".into(),
                },
            )
            .unwrap()
            .to_json()
            .unwrap();
        let shortsig = wire.replace("\"sig\":\"", "\"sig\":\"00");
        let env = Signed::<Ping>::from_json(shortsig.as_bytes()).unwrap();
        assert!(env.open(&k.public()).is_err());
    }

    #[test]
    fn key_files_round_trip_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("shelter-1");
        let public = write_key_pair(&prefix).unwrap();
        let secret = SecretKey::read(&dir.path().join("shelter-1.key")).unwrap();
        assert_eq!(secret.public(), public);
        assert_eq!(
            PublicKey::read(&dir.path().join("shelter-1.pub")).unwrap(),
            public
        );
        let mode = std::fs::metadata(dir.path().join("shelter-1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_key_pair(&prefix).is_err(), "overwrote a private key");
        let bad = dir.path().join("bad.pub");
        std::fs::write(&bad, "not a key").unwrap();
        let err = PublicKey::read(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.pub"), "{err}");
    }

    /// Wycheproof's Ed25519 set through the single and the batch path: each case gives the
    /// expected result, and both paths agree on every one.
    #[test]
    fn wycheproof_ed25519_single_and_batch_agree() {
        use wycheproof::TestResult;
        let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
        let mut cases = 0;
        for group in &set.test_groups {
            let pk: [u8; 32] = group.key.pk.as_ref().try_into().unwrap();
            let key = PublicKey::from_bytes(&pk);
            for t in &group.tests {
                cases += 1;
                let (single, batch) = match (&key, <[u8; 64]>::try_from(t.sig.as_ref())) {
                    (Ok(k), Ok(sig)) => {
                        let sig = ed25519_dalek::Signature::from_bytes(&sig);
                        let msg: &[u8] = t.msg.as_ref();
                        (
                            k.verify_raw(msg, &sig),
                            k.verify_raw_batch(&[msg], std::slice::from_ref(&sig)),
                        )
                    }
                    _ => (false, false),
                };
                assert_eq!(single, batch, "case {}: {}", t.tc_id, t.comment);
                match t.result {
                    TestResult::Valid => assert!(single, "case {}: {}", t.tc_id, t.comment),
                    TestResult::Invalid => assert!(!single, "case {}: {}", t.tc_id, t.comment),
                    TestResult::Acceptable => {}
                }
            }
        }
        assert!(cases > 100, "{cases}");
    }

    /// Cases of "Taming the many EdDSAs": small-order keys are refused at load, a signature
    /// whose R has small order or a torsion component is refused by both paths.
    #[test]
    fn weak_keys_and_torsion_are_refused_on_both_paths() {
        // The identity and a point of order 8 as public keys.
        let identity = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        let order8 = curve25519_dalek::constants::EIGHT_TORSION[1]
            .compress()
            .to_bytes();
        for weak in [identity, order8] {
            assert!(PublicKey::from_bytes(&weak).is_err());
        }
        // A mixed-order key: an honest key plus a torsion point.
        let k = key(1);
        let mixed = (k.public().0.to_edwards() + curve25519_dalek::constants::EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        assert!(PublicKey::from_bytes(&mixed).is_err());
        // A valid signature with a torsion point added to R: rejected by both paths.
        let msg = b"evac";
        let sig = k.0.sign(msg);
        let r = curve25519_dalek::edwards::CompressedEdwardsY(*sig.r_bytes())
            .decompress()
            .unwrap();
        for t in &curve25519_dalek::constants::EIGHT_TORSION[1..] {
            let mut bytes = sig.to_bytes();
            bytes[..32].copy_from_slice(&(r + t).compress().to_bytes());
            let bad = ed25519_dalek::Signature::from_bytes(&bytes);
            let public = k.public();
            assert!(!public.verify_raw(msg, &bad));
            assert!(!public.verify_raw_batch(&[msg], std::slice::from_ref(&bad)));
        }
        let public = k.public();
        assert!(public.verify_raw(msg, &sig));
        assert!(public.verify_raw_batch(&[msg], std::slice::from_ref(&sig)));
    }
}
