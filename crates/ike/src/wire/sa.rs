//! The Security Association payload: proposals, transforms and attributes (RFC 7296 3.3).

use super::registry::{AttributeType, ProtocolId, TransformType};
use super::{Reader, WireError, Writer};

/// Proposal substructure "Last Substruc" values (RFC 7296 3.3.1).
const MORE_PROPOSALS: u8 = 2;
/// Transform substructure "Last Substruc" values (RFC 7296 3.3.2).
const MORE_TRANSFORMS: u8 = 3;
const LAST: u8 = 0;

/// An SA payload body: one or more proposals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    pub proposals: Vec<Proposal>,
}

/// One proposal (RFC 7296 3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub number: u8,
    pub protocol: ProtocolId,
    /// Empty in IKE_SA_INIT, 8 bytes for an IKE rekey, 4 for ESP.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// One transform (RFC 7296 3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub ty: TransformType,
    pub id: u16,
    pub attributes: Vec<Attribute>,
}

/// A transform attribute (RFC 7296 3.3.5): TV when `af` is set, TLV otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Tv { ty: AttributeType, value: u16 },
    Tlv { ty: AttributeType, value: Vec<u8> },
}

impl SaPayload {
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let mut proposals = Vec::new();
        loop {
            let (p, last) = Proposal::parse(&mut r)?;
            proposals.push(p);
            if last {
                r.finish("SA payload")?;
                return Ok(Self { proposals });
            }
        }
    }

    pub fn emit(&self, w: &mut Writer) {
        for (i, p) in self.proposals.iter().enumerate() {
            p.emit(w, i + 1 == self.proposals.len());
        }
    }

    pub fn buffer_len(&self) -> usize {
        self.proposals.iter().map(Proposal::buffer_len).sum()
    }
}

impl Proposal {
    /// Parses one proposal; the flag tells whether it claimed to be the last.
    fn parse(r: &mut Reader<'_>) -> Result<(Self, bool), WireError> {
        let last = r.u8("proposal")?;
        let _reserved = r.u8("proposal")?;
        let len = usize::from(r.u16("proposal")?);
        let mut p = r.sub(
            len.checked_sub(4)
                .ok_or(WireError::BadLength { what: "proposal" })?,
            "proposal",
        )?;
        let number = p.u8("proposal")?;
        let protocol = ProtocolId(p.u8("proposal")?);
        let spi_size = usize::from(p.u8("proposal")?);
        let count = p.u8("proposal")?;
        let spi = p.take(spi_size, "proposal SPI")?.to_vec();
        let mut transforms = Vec::with_capacity(usize::from(count));
        for i in 0..count {
            let (t, t_last) = Transform::parse(&mut p)?;
            if t_last != (i + 1 == count) {
                return Err(WireError::Invalid {
                    what: "transform count",
                });
            }
            transforms.push(t);
        }
        p.finish("proposal")?;
        match last {
            LAST | MORE_PROPOSALS => {}
            _ => {
                return Err(WireError::Invalid {
                    what: "proposal last substruc",
                })
            }
        }
        Ok((
            Self {
                number,
                protocol,
                spi,
                transforms,
            },
            last == LAST,
        ))
    }

    fn emit(&self, w: &mut Writer, last: bool) {
        let start = w.len();
        w.u8(if last { LAST } else { MORE_PROPOSALS });
        w.u8(0);
        let len_at = w.len16_placeholder();
        w.u8(self.number);
        w.u8(self.protocol.0);
        w.u8(u8::try_from(self.spi.len()).unwrap_or(0));
        w.u8(u8::try_from(self.transforms.len()).unwrap_or(0));
        w.bytes(&self.spi);
        for (i, t) in self.transforms.iter().enumerate() {
            t.emit(w, i + 1 == self.transforms.len());
        }
        w.patch_len16(len_at, start);
    }

    pub fn buffer_len(&self) -> usize {
        8 + self.spi.len()
            + self
                .transforms
                .iter()
                .map(Transform::buffer_len)
                .sum::<usize>()
    }

    /// The first transform of a type, if any.
    pub fn first(&self, ty: TransformType) -> Option<&Transform> {
        self.transforms.iter().find(|t| t.ty == ty)
    }
}

impl Transform {
    pub fn new(ty: TransformType, id: u16) -> Self {
        Self {
            ty,
            id,
            attributes: Vec::new(),
        }
    }

    /// A transform with a Key Length attribute (RFC 7296 3.3.5).
    pub fn with_key_len(ty: TransformType, id: u16, bits: u16) -> Self {
        let attributes = vec![Attribute::Tv {
            ty: AttributeType::KEY_LENGTH,
            value: bits,
        }];
        Self { ty, id, attributes }
    }

    /// The Key Length attribute, if present.
    pub fn key_len(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Tv {
                ty: AttributeType::KEY_LENGTH,
                value,
            } => Some(*value),
            _ => None,
        })
    }

    fn parse(r: &mut Reader<'_>) -> Result<(Self, bool), WireError> {
        let last = r.u8("transform")?;
        let _reserved = r.u8("transform")?;
        let len = usize::from(r.u16("transform")?);
        let mut t = r.sub(
            len.checked_sub(4)
                .ok_or(WireError::BadLength { what: "transform" })?,
            "transform",
        )?;
        let ty = TransformType(t.u8("transform")?);
        let _reserved = t.u8("transform")?;
        let id = t.u16("transform")?;
        let mut attributes = Vec::new();
        while !t.is_empty() {
            attributes.push(Attribute::parse(&mut t)?);
        }
        match last {
            LAST | MORE_TRANSFORMS => Ok((Self { ty, id, attributes }, last == LAST)),
            _ => Err(WireError::Invalid {
                what: "transform last substruc",
            }),
        }
    }

    fn emit(&self, w: &mut Writer, last: bool) {
        let start = w.len();
        w.u8(if last { LAST } else { MORE_TRANSFORMS });
        w.u8(0);
        let len_at = w.len16_placeholder();
        w.u8(self.ty.0);
        w.u8(0);
        w.u16(self.id);
        for a in &self.attributes {
            a.emit(w);
        }
        w.patch_len16(len_at, start);
    }

    pub fn buffer_len(&self) -> usize {
        8 + self
            .attributes
            .iter()
            .map(Attribute::buffer_len)
            .sum::<usize>()
    }
}

impl Attribute {
    const AF: u16 = 0x8000;

    fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let raw = r.u16("attribute")?;
        let ty = AttributeType(raw & !Self::AF);
        let v = r.u16("attribute")?;
        if raw & Self::AF != 0 {
            return Ok(Self::Tv { ty, value: v });
        }
        let value = r.take(usize::from(v), "attribute value")?.to_vec();
        Ok(Self::Tlv { ty, value })
    }

    fn emit(&self, w: &mut Writer) {
        match self {
            Self::Tv { ty, value } => {
                w.u16(ty.0 | Self::AF);
                w.u16(*value);
            }
            Self::Tlv { ty, value } => {
                w.u16(ty.0 & !Self::AF);
                w.u16(u16::try_from(value.len()).unwrap_or(0));
                w.bytes(value);
            }
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Self::Tv { .. } => 4,
            Self::Tlv { value, .. } => 4 + value.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SaPayload {
        SaPayload {
            proposals: vec![
                Proposal {
                    number: 1,
                    protocol: ProtocolId::IKE,
                    spi: vec![],
                    transforms: vec![
                        Transform::with_key_len(TransformType::ENCR, 20, 256),
                        Transform::new(TransformType::PRF, 7),
                        Transform::new(TransformType::KE, 31),
                    ],
                },
                Proposal {
                    number: 2,
                    protocol: ProtocolId::IKE,
                    spi: vec![],
                    transforms: vec![Transform {
                        ty: TransformType::ENCR,
                        id: 99,
                        attributes: vec![Attribute::Tlv {
                            ty: AttributeType(99),
                            value: vec![1, 2],
                        }],
                    }],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let sa = sample();
        let mut w = Writer::new();
        sa.emit(&mut w);
        assert_eq!(w.len(), sa.buffer_len());
        assert_eq!(SaPayload::parse(w.as_slice()).unwrap(), sa);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut w = Writer::new();
        sample().emit(&mut w);
        let bytes = w.into_vec();
        for n in 0..bytes.len() {
            assert!(SaPayload::parse(&bytes[..n]).is_err(), "prefix {n} parsed");
        }
    }

    #[test]
    fn wrong_transform_count_is_rejected() {
        let mut w = Writer::new();
        sample().emit(&mut w);
        let mut bytes = w.into_vec();
        bytes[7] = 4; // first proposal claims four transforms
        assert!(SaPayload::parse(&bytes).is_err());
    }
}
