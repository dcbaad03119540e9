//! Appends big-endian fields to a buffer; lengths are patched in once a part is complete.

/// A growable output buffer for encoding messages.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Writes a two-byte placeholder and returns its offset for [`Writer::patch_len16`].
    pub fn len16_placeholder(&mut self) -> usize {
        let at = self.buf.len();
        self.u16(0);
        at
    }

    /// Writes into the placeholder at `at` the number of bytes from `start` to the current end.
    /// Lengths that do not fit 16 bits saturate; callers bound sizes well below that.
    pub fn patch_len16(&mut self, at: usize, start: usize) {
        let len = u16::try_from(self.buf.len().saturating_sub(start)).unwrap_or(u16::MAX);
        if let Some(dst) = self.buf.get_mut(at..at + 2) {
            dst.copy_from_slice(&len.to_be_bytes());
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}
