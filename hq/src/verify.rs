//! Batch verification of many envelopes signed by ONE key (a shelter's event batch).
//!
//! The equation is ed25519-dalek's `verify_batch` (cofactorless, random 128-bit weights `z`,
//! canonical `s` required): `[-Σ z·s]B + Σ z·R + Σ (z·h)·A = 0`. `verify_batch` takes one key
//! per signature, so the same shelter key enters its multiscalar multiplication once per
//! event; with one key the `A` terms fold into `[Σ z·h]A`, which leaves the sum unchanged and
//! halves the points (n + 2 instead of 2n + 1). On `false`, check one by one to find the
//! culprits (as before). `A` and every `R` must be canonical encodings of points of the
//! prime-order subgroup: with a torsion component, a random weight can make the difference
//! vanish (a batch accepting what the strict single check refuses).

use std::iter::once;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use evac_protocol::{PublicKey, Signable, Signed};
use sha2::{Digest, Sha512};

/// Whether every envelope is of family `T::KIND` and validly signed by `key` (over the signed
/// bytes `evac/v1/{kind}\0{body}`). `false` says only that at least one is not.
pub fn all_signed_by<T: Signable>(key: &PublicKey, envelopes: &[&Signed<T>]) -> bool {
    let a_bytes = key.to_bytes();
    // The same rule as evac-protocol's strict single check: no torsion anywhere, canonical
    // encodings only, so the batch accepts exactly what one-by-one checks accept.
    let Some(a) = CompressedEdwardsY(a_bytes)
        .decompress()
        .filter(|a| a.is_torsion_free() && a.compress().to_bytes() == a_bytes)
    else {
        return false;
    };
    let n = envelopes.len();
    let mut weights = vec![0u8; 16 * n];
    if getrandom::fill(&mut weights).is_err() {
        return false;
    }
    let mut b_coeff = Scalar::ZERO;
    let mut a_coeff = Scalar::ZERO;
    let mut zs = Vec::with_capacity(n);
    let mut rs = Vec::with_capacity(n);
    for (env, w) in envelopes.iter().zip(weights.chunks_exact(16)) {
        if env.kind != T::KIND {
            return false;
        }
        let mut sig = [0u8; 64];
        if hex::decode_to_slice(&env.sig, &mut sig).is_err() {
            return false;
        }
        let (r_bytes, s_bytes) = sig.split_at(32);
        let mut r_arr = [0u8; 32];
        r_arr.copy_from_slice(r_bytes);
        let mut s_arr = [0u8; 32];
        s_arr.copy_from_slice(s_bytes);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_arr)) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(r_arr)
            .decompress()
            .filter(|r| r.is_torsion_free() && r.compress().to_bytes() == r_arr)
        else {
            return false;
        };
        let mut hash = Sha512::new();
        hash.update(r_arr);
        hash.update(a_bytes);
        hash.update(b"evac/v1/");
        hash.update(T::KIND.as_bytes());
        hash.update([0u8]);
        hash.update(env.body_json().as_bytes());
        let h = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let mut w16 = [0u8; 16];
        w16.copy_from_slice(w);
        let z = Scalar::from(u128::from_le_bytes(w16));
        b_coeff -= z * s;
        a_coeff += z * h;
        zs.push(z);
        rs.push(r);
    }
    EdwardsPoint::vartime_multiscalar_mul(
        once(b_coeff).chain(once(a_coeff)).chain(zs),
        once(ED25519_BASEPOINT_POINT).chain(once(a)).chain(rs),
    )
    .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::{CheckEvent, EventKind, SecretKey, ShelterId, shelter_signer};

    fn ev(seq: u64) -> CheckEvent {
        CheckEvent::new(ShelterId(1), seq, seq, EventKind::CheckIn)
    }

    fn signed(key: &SecretKey, n: u64) -> Vec<Signed<CheckEvent>> {
        (1..=n)
            .map(|s| key.sign(&shelter_signer(ShelterId(1)), &ev(s)).unwrap())
            .collect()
    }

    /// The envelope with its JSON text changed by `f`.
    fn edit(env: &Signed<CheckEvent>, f: impl Fn(String) -> String) -> Signed<CheckEvent> {
        serde_json::from_str(&f(env.to_json().unwrap())).unwrap()
    }

    #[test]
    fn good_batches_pass_like_dalek() {
        let key = SecretKey::from_seed(&[3; 32]);
        for n in [0, 1, 2, 100] {
            let envs = signed(&key, n);
            let refs: Vec<_> = envs.iter().collect();
            assert!(all_signed_by(&key.public(), &refs), "{n}");
            assert!(key.public().verify_batch(&refs).is_ok(), "{n}");
        }
    }

    /// A signature with a torsion point added to R: the strict single check refuses it, and
    /// so must the batch, whatever its random weights (without the torsion check a weight
    /// divisible by 8 accepted it, one time in eight).
    #[test]
    fn torsion_in_r_fails_the_batch_as_the_single_check() {
        let key = SecretKey::from_seed(&[3; 32]);
        let envs = signed(&key, 1);
        let sig = hex::decode(&envs[0].sig).unwrap();
        let r = CompressedEdwardsY(sig[..32].try_into().unwrap())
            .decompress()
            .unwrap();
        let t = curve25519_dalek::constants::EIGHT_TORSION[1];
        let mut bad = sig.clone();
        bad[..32].copy_from_slice(&(r + t).compress().to_bytes());
        let forged = edit(&envs[0], |j| j.replace(&envs[0].sig, &hex::encode(&bad)));
        assert!(forged.open(&key.public()).is_err());
        for _ in 0..64 {
            assert!(!all_signed_by(&key.public(), &[&forged]));
            assert!(key.public().verify_batch(&[&forged]).is_err());
        }
    }

    #[test]
    fn one_bad_envelope_fails_the_batch() {
        let key = SecretKey::from_seed(&[3; 32]);
        let other = SecretKey::from_seed(&[4; 32]);
        let good = signed(&key, 5);
        let mut forged = good.clone();
        forged[2] = other.sign(&shelter_signer(ShelterId(1)), &ev(3)).unwrap();
        let tampered = edit(&good[4], |j| j.replace("\"seq\":5", "\"seq\":6"));
        let wrong_kind = edit(&good[1], |j| j.replacen("\"kind\":\"", "\"kind\":\"x", 1));
        // s + l: the same signature with a non-canonical scalar.
        let s_plus_l = edit(&good[0], |j| {
            let sig = good[0].sig.clone();
            let mut b = hex::decode(&sig).unwrap();
            const L: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut carry = 0u16;
            for (x, l) in b[32..].iter_mut().zip(L) {
                let v = u16::from(*x) + u16::from(l) + carry;
                *x = v as u8;
                carry = v >> 8;
            }
            j.replace(&sig, &hex::encode(b))
        });
        let bad_r = edit(&good[3], |j| {
            j.replace(&good[3].sig[..64], &"ff".repeat(32))
        });
        let short_sig = edit(&good[3], |j| j.replace(&good[3].sig, &good[3].sig[..100]));
        for (name, bad) in [
            ("tampered", tampered),
            ("wrong kind", wrong_kind),
            ("s + l", s_plus_l),
            ("bad R", bad_r),
            ("short sig", short_sig),
        ] {
            assert!(bad.open(&key.public()).is_err(), "{name} opens");
            let mut envs = good.clone();
            envs[1] = bad;
            let refs: Vec<_> = envs.iter().collect();
            assert!(!all_signed_by(&key.public(), &refs), "{name} passes");
        }
        let refs: Vec<_> = forged.iter().collect();
        assert!(!all_signed_by(&key.public(), &refs));
        let refs: Vec<_> = good.iter().collect();
        assert!(!all_signed_by(&other.public(), &refs));
    }

    proptest::proptest! {
        #[test]
        fn any_flipped_signature_bit_is_caught(byte in 0usize..64, bit in 0u8..8) {
            let key = SecretKey::from_seed(&[3; 32]);
            let envs = signed(&key, 3);
            let mut sig = hex::decode(&envs[1].sig).unwrap();
            sig[byte] ^= 1 << bit;
            let flipped = edit(&envs[1], |j| j.replace(&envs[1].sig, &hex::encode(&sig)));
            let refs = [&envs[0], &flipped, &envs[2]];
            proptest::prop_assert!(!all_signed_by(&key.public(), &refs));
        }
    }
}
