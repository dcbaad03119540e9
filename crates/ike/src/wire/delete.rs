//! Delete payload (RFC 7296 3.11).

use super::registry::ProtocolId;
use super::{Reader, WireError, Writer};

/// Deletes the IKE SA (no SPIs) or child SAs of one protocol (4-byte SPIs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePayload {
    pub protocol: ProtocolId,
    /// ESP/AH: the SPIs of the sender's inbound SAs. IKE: empty.
    pub spis: Vec<u32>,
}

impl DeletePayload {
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId(r.u8("delete payload")?);
        let spi_size = r.u8("delete payload")?;
        let count = r.u16("delete payload")?;
        let mut spis = Vec::new();
        match (protocol, spi_size) {
            (ProtocolId::IKE, 0) if count == 0 => {}
            (ProtocolId::ESP | ProtocolId::AH, 4) => {
                for _ in 0..count {
                    spis.push(r.u32("delete SPI")?);
                }
            }
            _ => {
                return Err(WireError::Invalid {
                    what: "delete payload",
                })
            }
        }
        r.finish("delete payload")?;
        Ok(Self { protocol, spis })
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u8(self.protocol.0);
        w.u8(if self.protocol == ProtocolId::IKE {
            0
        } else {
            4
        });
        w.u16(u16::try_from(self.spis.len()).unwrap_or(0));
        for s in &self.spis {
            w.u32(*s);
        }
    }

    pub fn buffer_len(&self) -> usize {
        4 + 4 * self.spis.len()
    }
}
