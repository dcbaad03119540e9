//! Notify payload (RFC 7296 3.10) and the data formats of the notifications we use.

use super::registry::{NotifyType, ProtocolId};
use super::{Reader, WireError, Writer};

/// A notification: protocol, optional SPI, type and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPayload {
    /// Zero when no SPI applies (RFC 7296 3.10).
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    pub ty: NotifyType,
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// A notification about the IKE SA itself (no protocol, no SPI).
    pub fn new(ty: NotifyType, data: Vec<u8>) -> Self {
        Self {
            protocol: ProtocolId(0),
            spi: Vec::new(),
            ty,
            data,
        }
    }

    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId(r.u8("notify payload")?);
        let spi_size = usize::from(r.u8("notify payload")?);
        let ty = NotifyType(r.u16("notify payload")?);
        let spi = r.take(spi_size, "notify SPI")?.to_vec();
        Ok(Self {
            protocol,
            spi,
            ty,
            data: r.rest().to_vec(),
        })
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u8(self.protocol.0);
        w.u8(u8::try_from(self.spi.len()).unwrap_or(0));
        w.u16(self.ty.0);
        w.bytes(&self.spi);
        w.bytes(&self.data);
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.spi.len() + self.data.len()
    }

    /// The data as a list of 16-bit values (SIGNATURE_HASH_ALGORITHMS, RFC 7427 4).
    pub fn u16_list(&self) -> Result<Vec<u16>, WireError> {
        if self.data.len() % 2 != 0 {
            return Err(WireError::BadLength {
                what: "notify data",
            });
        }
        let mut r = Reader::new(&self.data);
        (0..self.data.len() / 2)
            .map(|_| r.u16("notify data"))
            .collect()
    }

    /// The data as one 16-bit value (INVALID_KE_PAYLOAD's group, RFC 7296 3.10.1).
    pub fn u16_value(&self) -> Result<u16, WireError> {
        let mut r = Reader::new(&self.data);
        let v = r.u16("notify data")?;
        r.finish("notify data")?;
        Ok(v)
    }
}

/// Encodes 16-bit values for notification data.
pub fn u16_list_data(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}
