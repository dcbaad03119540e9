//! A checked cursor over untrusted bytes (rustls `msgs/codec.rs` style).
//!
//! Every read is bounds-checked and returns [`WireError`]; `sub` carves out a length-prefixed part so
//! that a sub-structure can never read past its own declared length.

use super::WireError;

/// Reads big-endian fields from a byte slice without ever panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over all of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// Takes exactly `n` bytes, or fails with `Truncated { what }`.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(WireError::Truncated { what })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Truncated { what })?;
        self.pos = end;
        Ok(out)
    }

    /// Takes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    /// A reader over the next `n` bytes; this reader moves past them.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Self, WireError> {
        Ok(Reader::new(self.take(n, what)?))
    }

    /// Fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Fails with `TrailingBytes { what }` unless everything was consumed.
    pub fn finish(&self, what: &'static str) -> Result<(), WireError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes { what })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_checked() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").unwrap(), 0x0102);
        assert_eq!(r.u16("b"), Err(WireError::Truncated { what: "b" }));
        assert_eq!(r.u8("c").unwrap(), 3);
        assert!(r.finish("x").is_ok());
        assert_eq!(
            r.take(usize::MAX, "big"),
            Err(WireError::Truncated { what: "big" })
        );
    }

    #[test]
    fn sub_is_bounded() {
        let mut r = Reader::new(&[0, 0, 0, 9]);
        let mut s = r.sub(2, "s").unwrap();
        assert_eq!(s.u16("v").unwrap(), 0);
        assert!(s.u8("more").is_err());
        assert_eq!(r.u16("t").unwrap(), 9);
    }
}
