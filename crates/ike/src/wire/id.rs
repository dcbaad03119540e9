//! Identification payloads IDi / IDr (RFC 7296 3.5, RFC 7619 for ID_NULL).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::registry::IdType;
use super::{Reader, WireError, Writer};

/// An identity as carried in IDi/IDr.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// A fully-qualified domain name, without trailing dot (RFC 7296 3.5: "no terminators").
    Fqdn(String),
    /// ID_NULL: no identity (RFC 7619 3); the data must be empty.
    Null,
    /// Any other type, kept as received.
    Other {
        ty: IdType,
        data: Vec<u8>,
    },
}

impl Identity {
    pub fn id_type(&self) -> IdType {
        match self {
            Self::Ipv4(_) => IdType::IPV4_ADDR,
            Self::Ipv6(_) => IdType::IPV6_ADDR,
            Self::Fqdn(_) => IdType::FQDN,
            Self::Null => IdType::NULL,
            Self::Other { ty, .. } => *ty,
        }
    }

    /// The identification data (what follows the type and reserved bytes).
    pub fn data(&self) -> Vec<u8> {
        match self {
            Self::Ipv4(a) => a.octets().to_vec(),
            Self::Ipv6(a) => a.octets().to_vec(),
            Self::Fqdn(n) => n.as_bytes().to_vec(),
            Self::Null => Vec::new(),
            Self::Other { data, .. } => data.clone(),
        }
    }

    /// The ID payload body, which is also the `ID'` that AUTH signs (RFC 7296 2.15).
    pub fn to_body(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.emit(&mut w);
        w.into_vec()
    }

    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let ty = IdType(r.u8("ID payload")?);
        let _reserved = r.take(3, "ID payload")?;
        let data = r.rest();
        Ok(match ty {
            IdType::IPV4_ADDR => Self::Ipv4(Ipv4Addr::from(exact::<4>(data)?)),
            IdType::IPV6_ADDR => Self::Ipv6(Ipv6Addr::from(exact::<16>(data)?)),
            IdType::FQDN => Self::Fqdn(fqdn(data)?),
            IdType::NULL if data.is_empty() => Self::Null,
            IdType::NULL => return Err(WireError::BadLength { what: "ID_NULL" }),
            _ => Self::Other {
                ty,
                data: data.to_vec(),
            },
        })
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u8(self.id_type().0);
        w.bytes(&[0; 3]);
        w.bytes(&self.data());
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data().len()
    }
}

impl core::fmt::Display for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "{a}"),
            Self::Fqdn(n) => write!(f, "{n}"),
            Self::Null => f.write_str("(null)"),
            Self::Other { ty, data } => write!(f, "{ty:?}:{} bytes", data.len()),
        }
    }
}

fn exact<const N: usize>(data: &[u8]) -> Result<[u8; N], WireError> {
    data.try_into()
        .map_err(|_| WireError::BadLength { what: "ID address" })
}

/// An FQDN must be printable ASCII host-name characters; anything else is malformed.
fn fqdn(data: &[u8]) -> Result<String, WireError> {
    let ok = !data.is_empty()
        && data.len() <= 253
        && data
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok {
        return Err(WireError::Invalid { what: "ID_FQDN" });
    }
    Ok(data.iter().map(|&b| char::from(b)).collect())
}
