//! The IKE header (RFC 7296 3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Initiator's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Responder's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Message ID                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            Length                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::registry::{ExchangeType, PayloadType};
use super::{Reader, WireError, Writer};

/// Size of the fixed IKE header.
pub const HEADER_LEN: usize = 28;

/// Flag bits (RFC 7296 3.1).
pub mod flags {
    /// Set in messages sent by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// "Version": we can speak a higher major version (never set by us).
    pub const VERSION: u8 = 0x10;
    /// Set in responses.
    pub const RESPONSE: u8 = 0x20;
}

/// A decoded IKE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub spi_i: u64,
    pub spi_r: u64,
    pub next_payload: PayloadType,
    /// Major version in the high nibble, minor in the low one.
    pub version: u8,
    pub exchange: ExchangeType,
    pub flags: u8,
    pub message_id: u32,
    pub length: u32,
}

impl Header {
    /// IKEv2.0.
    pub const VERSION_2_0: u8 = 0x20;

    /// Parses the header and checks the version and that `length` equals the datagram's size.
    pub fn parse(r: &mut Reader<'_>, datagram_len: usize) -> Result<Self, WireError> {
        let h = Self {
            spi_i: r.u64("IKE header")?,
            spi_r: r.u64("IKE header")?,
            next_payload: PayloadType(r.u8("IKE header")?),
            version: r.u8("IKE header")?,
            exchange: ExchangeType(r.u8("IKE header")?),
            flags: r.u8("IKE header")?,
            message_id: r.u32("IKE header")?,
            length: r.u32("IKE header")?,
        };
        // Section 3.1: a major version above 2 must be rejected; below 2 is IKEv1, not ours.
        if h.version >> 4 != 2 {
            return Err(WireError::UnsupportedVersion {
                major: h.version >> 4,
            });
        }
        if usize::try_from(h.length).ok() != Some(datagram_len) {
            return Err(WireError::BadLength { what: "IKE header" });
        }
        Ok(h)
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u64(self.spi_i);
        w.u64(self.spi_r);
        w.u8(self.next_payload.0);
        w.u8(self.version);
        w.u8(self.exchange.0);
        w.u8(self.flags);
        w.u32(self.message_id);
        w.u32(self.length);
    }

    pub fn is_response(&self) -> bool {
        self.flags & flags::RESPONSE != 0
    }

    /// Whether the sender is the original initiator of the IKE SA.
    pub fn from_initiator(&self) -> bool {
        self.flags & flags::INITIATOR != 0
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
}

/// Reads only the SPIs and flags, for routing a datagram before full parsing.
pub fn peek_routing(datagram: &[u8]) -> Option<(u64, u64, ExchangeType, u8, u32)> {
    let mut r = Reader::new(datagram);
    let spi_i = r.u64("").ok()?;
    let spi_r = r.u64("").ok()?;
    let _np = r.u8("").ok()?;
    let _v = r.u8("").ok()?;
    let exchange = ExchangeType(r.u8("").ok()?);
    let fl = r.u8("").ok()?;
    let mid = r.u32("").ok()?;
    Some((spi_i, spi_r, exchange, fl, mid))
}
