//! Configuration payload (RFC 7296 3.15): a client asks for an internal address (CFG_REQUEST)
//! and the responder assigns one (CFG_REPLY).
//!
//! ```text
//! |   CFG Type    |                    RESERVED                   |
//! |R|         Attribute Type      |            Length             |
//! ~                             Value                             ~
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Reader, WireError, Writer};

/// The kind of configuration exchange (3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfgType(pub u8);

impl CfgType {
    pub const REQUEST: Self = Self(1);
    pub const REPLY: Self = Self(2);
    pub const SET: Self = Self(3);
    pub const ACK: Self = Self(4);
}

/// INTERNAL_IP4_ADDRESS (3.15.1): four bytes, or none in a request.
pub const INTERNAL_IP4_ADDRESS: u16 = 1;
/// INTERNAL_IP6_ADDRESS (3.15.1): sixteen bytes and a prefix length, or none in a request.
pub const INTERNAL_IP6_ADDRESS: u16 = 8;

/// One configuration attribute; unknown types are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgAttribute {
    pub ty: u16,
    pub value: Vec<u8>,
}

/// The CP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpPayload {
    pub cfg_type: CfgType,
    pub attributes: Vec<CfgAttribute>,
}

impl CpPayload {
    /// A CFG_REQUEST for an internal address of `addr`'s family.
    pub fn request_address(v6: bool) -> Self {
        let ty = if v6 {
            INTERNAL_IP6_ADDRESS
        } else {
            INTERNAL_IP4_ADDRESS
        };
        Self {
            cfg_type: CfgType::REQUEST,
            attributes: vec![CfgAttribute {
                ty,
                value: Vec::new(),
            }],
        }
    }

    /// A CFG_REPLY assigning `addr` (an IPv6 address as a /128).
    pub fn reply_address(addr: IpAddr) -> Self {
        let (ty, value) = match addr {
            IpAddr::V4(a) => (INTERNAL_IP4_ADDRESS, a.octets().to_vec()),
            IpAddr::V6(a) => {
                let mut v = a.octets().to_vec();
                v.push(128);
                (INTERNAL_IP6_ADDRESS, v)
            }
        };
        Self {
            cfg_type: CfgType::REPLY,
            attributes: vec![CfgAttribute { ty, value }],
        }
    }

    /// Whether a request asks for an address of this family.
    pub fn asks_address(&self, v6: bool) -> bool {
        let ty = if v6 {
            INTERNAL_IP6_ADDRESS
        } else {
            INTERNAL_IP4_ADDRESS
        };
        self.cfg_type == CfgType::REQUEST && self.attributes.iter().any(|a| a.ty == ty)
    }

    /// The first assigned address of this family in a reply; a malformed value counts as none.
    pub fn assigned_address(&self, v6: bool) -> Option<IpAddr> {
        if self.cfg_type != CfgType::REPLY {
            return None;
        }
        self.attributes.iter().find_map(|a| match (a.ty, v6) {
            (INTERNAL_IP4_ADDRESS, false) => {
                let b: [u8; 4] = a.value.as_slice().try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(b)))
            }
            (INTERNAL_IP6_ADDRESS, true) => {
                let b: [u8; 16] = a.value.get(..16)?.try_into().ok()?;
                (a.value.len() == 17).then(|| IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => None,
        })
    }

    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let cfg_type = CfgType(r.u8("CP payload")?);
        r.take(3, "CP payload")?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            let ty = r.u16("CP attribute")? & 0x7fff;
            let len = usize::from(r.u16("CP attribute")?);
            let value = r.take(len, "CP attribute value")?.to_vec();
            attributes.push(CfgAttribute { ty, value });
        }
        Ok(Self {
            cfg_type,
            attributes,
        })
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u8(self.cfg_type.0);
        w.bytes(&[0; 3]);
        for a in &self.attributes {
            w.u16(a.ty & 0x7fff);
            w.u16(u16::try_from(a.value.len()).unwrap_or(0));
            w.bytes(&a.value);
        }
    }

    pub fn buffer_len(&self) -> usize {
        4 + self
            .attributes
            .iter()
            .map(|a| 4 + a.value.len())
            .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(p: &CpPayload) -> CpPayload {
        let mut w = Writer::new();
        p.emit(&mut w);
        assert_eq!(w.len(), p.buffer_len());
        CpPayload::parse(w.as_slice()).unwrap()
    }

    #[test]
    fn request_and_reply_round_trip() {
        let req = CpPayload::request_address(false);
        assert_eq!(round_trip(&req), req);
        assert!(req.asks_address(false) && !req.asks_address(true));
        let v4: IpAddr = "100.64.0.7".parse().unwrap();
        let v6: IpAddr = "fd00::7".parse().unwrap();
        assert_eq!(
            round_trip(&CpPayload::reply_address(v4)).assigned_address(false),
            Some(v4)
        );
        assert_eq!(
            round_trip(&CpPayload::reply_address(v6)).assigned_address(true),
            Some(v6)
        );
        assert_eq!(CpPayload::reply_address(v4).assigned_address(true), None);
    }

    #[test]
    fn malformed_values_are_errors_or_ignored() {
        // An attribute longer than the payload.
        assert!(CpPayload::parse(&[2, 0, 0, 0, 0, 1, 0, 9, 1, 2]).is_err());
        assert!(CpPayload::parse(&[2, 0]).is_err());
        // A three-byte IPv4 address is not an assignment.
        let p = CpPayload::parse(&[2, 0, 0, 0, 0, 1, 0, 3, 1, 2, 3]).unwrap();
        assert_eq!(p.assigned_address(false), None);
    }
}
