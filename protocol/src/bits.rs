//! Bit-level writing and reading for the overlay's record area: fixed-width fields and
//! exp-Golomb codes, most significant bit first, and a reader that names the byte offset and
//! the field of whatever it fails to read.
//!
//! Written here rather than taken from a crate for the same reason as the varints: every
//! decode error must carry the byte offset and the field's name.

use crate::error::OverlayError;

/// Bits needed to write `n` in binary (0 for 0).
pub(crate) fn bit_len(n: u128) -> u32 {
    128 - n.leading_zeros()
}

/// Bits of `v` in an order-`k` exp-Golomb code.
pub(crate) fn exp_golomb_len(v: u64, k: u32) -> u64 {
    let x = u128::from(v) + (1u128 << k);
    u64::from(2 * bit_len(x) - 1 - k)
}

/// Appends bits to a byte vector.
#[derive(Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    acc: u128,
    pending: u32,
}

impl BitWriter {
    /// Writes the low `width` bits of `value` (width at most 64).
    pub(crate) fn put(&mut self, value: u64, width: u32) {
        debug_assert!(width <= 64 && (width == 64 || value >> width == 0));
        if width == 0 {
            return;
        }
        self.acc = (self.acc << width) | u128::from(value);
        self.pending += width;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.acc >> self.pending) as u8);
        }
        self.acc &= (1u128 << self.pending) - 1;
    }

    /// Writes one bit.
    pub(crate) fn bit(&mut self, b: bool) {
        self.put(u64::from(b), 1);
    }

    /// Writes `v` in an order-`k` exp-Golomb code: as many zeros as `v + 2^k` has bits
    /// beyond `k + 1`, then `v + 2^k` in binary.
    pub(crate) fn exp_golomb(&mut self, v: u64, k: u32) {
        let x = u128::from(v) + (1u128 << k);
        let n = bit_len(x);
        let zeros = n - 1 - k;
        for _ in 0..zeros / 64 {
            self.put(0, 64);
        }
        self.put(0, zeros % 64);
        if n > 64 {
            self.put((x >> 64) as u64, n - 64);
            self.put(x as u64, 64);
        } else {
            self.put(x as u64, n);
        }
    }

    /// Bits written so far.
    pub(crate) fn bits(&self) -> u64 {
        self.bytes.len() as u64 * 8 + u64::from(self.pending)
    }

    /// The bytes, the last one padded with zero bits.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            let pad = 8 - self.pending;
            self.put(0, pad);
        }
        self.bytes
    }
}

/// Reads bits from a byte slice that starts at byte `base` of a larger body.
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    pos: u64,
    base: usize,
}

impl<'a> BitReader<'a> {
    /// A reader of `bytes`, whose first byte is byte `base` of the body (for error offsets).
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        BitReader {
            bytes,
            pos: 0,
            base,
        }
    }

    /// The body's byte offset of the next bit.
    pub(crate) fn offset(&self) -> usize {
        self.base + (self.pos / 8) as usize
    }

    /// Bits left.
    pub(crate) fn remaining(&self) -> u64 {
        self.bytes.len() as u64 * 8 - self.pos
    }

    /// Reads `width` bits (at most 64) as a number.
    pub(crate) fn get(&mut self, width: u32, field: &'static str) -> Result<u64, OverlayError> {
        if u64::from(width) > self.remaining() {
            return Err(OverlayError::Truncated {
                offset: self.offset(),
                field,
            });
        }
        let mut v: u64 = 0;
        let mut left = width;
        while left > 0 {
            let byte = self.bytes[(self.pos / 8) as usize];
            let used = (self.pos % 8) as u32;
            let take = (8 - used).min(left);
            let bits = (byte >> (8 - used - take)) & ((1u16 << take) - 1) as u8;
            v = if take == 64 { 0 } else { v << take } | u64::from(bits);
            self.pos += u64::from(take);
            left -= take;
        }
        Ok(v)
    }

    /// Reads one bit.
    pub(crate) fn bit(&mut self, field: &'static str) -> Result<bool, OverlayError> {
        Ok(self.get(1, field)? == 1)
    }

    /// Reads an order-`k` exp-Golomb code whose value fits in 64 bits.
    pub(crate) fn exp_golomb(&mut self, k: u32, field: &'static str) -> Result<u64, OverlayError> {
        let at = self.offset();
        let mut zeros = 0u32;
        while !self.bit(field)? {
            zeros += 1;
            if zeros + k > 64 {
                return Err(self.invalid(at, field, "code longer than 64 bits"));
            }
        }
        let rest = zeros + k;
        let low = self.get(rest, field)?;
        let x = (1u128 << rest) | u128::from(low);
        u64::try_from(x - (1u128 << k)).map_err(|_| self.invalid(at, field, "exceeds 64 bits"))
    }

    /// Checks that only zero padding is left in the last byte and nothing after it.
    pub(crate) fn finish(mut self) -> Result<(), OverlayError> {
        let at = self.offset();
        let pad = (8 - self.pos % 8) % 8;
        if self.remaining() >= pad && pad > 0 && self.get(pad as u32, "padding")? != 0 {
            return Err(self.invalid(at, "padding", "padding bits not zero"));
        }
        let extra = (self.remaining() / 8) as usize;
        if extra > 0 {
            return Err(OverlayError::Trailing {
                offset: self.offset(),
                extra,
            });
        }
        Ok(())
    }

    /// An error for the field at body offset `offset`.
    pub(crate) fn invalid(&self, offset: usize, field: &'static str, detail: &str) -> OverlayError {
        OverlayError::invalid(offset, field, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes() {
        let mut w = BitWriter::default();
        w.exp_golomb(0, 0); // 1
        w.exp_golomb(1, 0); // 010
        w.exp_golomb(3, 0); // 00100
        w.exp_golomb(2, 2); // 110
        w.put(0b101, 3);
        assert_eq!(w.bits(), 1 + 3 + 5 + 3 + 3);
        assert_eq!(w.finish(), [0b1010_0010, 0b0110_1010]);
        assert_eq!(exp_golomb_len(3, 0), 5);
        assert_eq!(exp_golomb_len(u64::MAX, 0), 129);
    }

    #[test]
    fn reader_names_offsets_and_refuses_junk() {
        let mut r = BitReader::new(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], 10);
        assert!(matches!(
            r.exp_golomb(0, "x"),
            Err(OverlayError::Invalid { offset: 10, .. })
        ));
        let mut r = BitReader::new(&[0x81], 3);
        assert!(r.bit("b").unwrap());
        assert!(matches!(
            r.finish(),
            Err(OverlayError::Invalid {
                field: "padding",
                ..
            })
        ));
        let mut r = BitReader::new(&[0x80, 0x00], 3);
        assert!(r.bit("b").unwrap());
        assert_eq!(
            r.finish(),
            Err(OverlayError::Trailing {
                offset: 4,
                extra: 1
            })
        );
        let mut r = BitReader::new(&[0xff], 0);
        assert_eq!(
            r.get(9, "wide"),
            Err(OverlayError::Truncated {
                offset: 0,
                field: "wide"
            })
        );
    }

    proptest! {
        #[test]
        fn round_trip(vals in proptest::collection::vec((any::<u64>(), 0u32..40, 0u32..=64), 0..50)) {
            let mut w = BitWriter::default();
            let mut bits = 0;
            for &(v, k, width) in &vals {
                w.exp_golomb(v, k);
                let fixed = if width == 64 { v } else { v & ((1u64 << width) - 1) };
                w.put(fixed, width);
                bits += exp_golomb_len(v, k) + u64::from(width);
            }
            prop_assert_eq!(w.bits(), bits);
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes, 0);
            for &(v, k, width) in &vals {
                prop_assert_eq!(r.exp_golomb(k, "v").unwrap(), v);
                let fixed = if width == 64 { v } else { v & ((1u64 << width) - 1) };
                prop_assert_eq!(r.get(width, "f").unwrap(), fixed);
            }
            prop_assert!(r.finish().is_ok());
        }
    }
}
