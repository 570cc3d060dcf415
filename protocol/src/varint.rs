//! LEB128 varints and a byte reader that names the offset of whatever it fails to read.
//!
//! Written here rather than taken from a crate because every decode error must carry the
//! byte offset and the field's name, which the varint crates do not report.

use crate::error::OverlayError;

/// Appends `n` as an unsigned LEB128 varint.
pub(crate) fn put(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads fields from a byte slice, tracking the offset for error messages.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], OverlayError> {
        if self.remaining() < n {
            return Err(OverlayError::Truncated {
                offset: self.pos,
                field,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, OverlayError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, OverlayError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, OverlayError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A varint of at most 10 bytes whose value fits in 64 bits, in its shortest form.
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u64, OverlayError> {
        let start = self.pos;
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.u8(field)?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(self.invalid(start, field, "varint overflows 64 bits"));
            }
            n |= bits << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(self.invalid(start, field, "varint not in shortest form"));
                }
                return Ok(n);
            }
        }
        Err(self.invalid(start, field, "varint longer than 10 bytes"))
    }

    /// A varint that must fit in a u32.
    pub(crate) fn varint_u32(&mut self, field: &'static str) -> Result<u32, OverlayError> {
        let start = self.pos;
        let n = self.varint(field)?;
        u32::try_from(n).map_err(|_| self.invalid(start, field, "value exceeds 32 bits"))
    }

    pub(crate) fn invalid(&self, offset: usize, field: &'static str, detail: &str) -> OverlayError {
        OverlayError::invalid(offset, field, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut v = Vec::new();
        put(&mut v, 0);
        put(&mut v, 127);
        put(&mut v, 128);
        put(&mut v, 300);
        assert_eq!(v, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
    }

    #[test]
    fn rejects_overlong_and_overflow() {
        assert!(Reader::new(&[0x80, 0x00]).varint("x").is_err());
        assert!(Reader::new(&[0xff; 10]).varint("x").is_err());
        assert!(Reader::new(&[0x80]).varint("x").is_err());
        let mut max = Vec::new();
        put(&mut max, u64::MAX);
        assert_eq!(Reader::new(&max).varint("x").unwrap(), u64::MAX);
    }

    proptest! {
        #[test]
        fn round_trip(n in any::<u64>()) {
            let mut v = Vec::new();
            put(&mut v, n);
            let mut r = Reader::new(&v);
            prop_assert_eq!(r.varint("n").unwrap(), n);
            prop_assert_eq!(r.remaining(), 0);
        }
    }
}
