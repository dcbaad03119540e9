//! The IPSECKEY resource record (RFC 4025): RDATA in wire form and in presentation form.
//!
//! hickory 0.26 has no typed IPSECKEY (type 45 arrives as unknown RDATA), so this module parses
//! and emits it. Parsing is total: every input yields an [`IpsecKey`] or a typed error.
//!
//! ```text
//! RFC 4025 section 2.1
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  precedence   | gateway type  |  algorithm  |     gateway     |
//! +---------------+---------------+-------------+                 +
//! ~                            gateway                            ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               /
//! /                          public key                           /
//! /                                                               /
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-|
//! ```

mod error;
mod gateway;
mod key;
mod text;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use error::{KeyError, NameError, TextError, WireError};
pub use gateway::{gateway_type, Gateway, GatewayName};
pub use key::{algorithm, PublicKey, Usability, RSA_MAX_BITS, RSA_MIN_BITS};

/// The IPSECKEY record type number (RFC 4025 section 2).
pub const RECORD_TYPE: u16 = 45;

/// Largest RDATA a DNS record can carry.
const MAX_RDATA: usize = 65535;

/// One IPSECKEY record's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpsecKey {
    /// Lower values are preferred (RFC 4025 section 2.2).
    pub precedence: u8,
    /// Where to send IPsec for the owner; `Gateway::None` for the host itself.
    pub gateway: Gateway,
    /// The public key; its variant fixes the algorithm field.
    pub key: PublicKey,
}

impl IpsecKey {
    /// Parses RDATA in wire form; the whole slice must be the RDATA.
    pub fn parse(rdata: &[u8]) -> Result<Self, WireError> {
        if rdata.len() > MAX_RDATA {
            return Err(WireError::TooLong(rdata.len()));
        }
        let mut r = Reader(rdata);
        let [precedence, gw_type, alg] = r.array::<3>("header")?;
        let gateway = match gw_type {
            gateway_type::NONE => Gateway::None,
            gateway_type::IPV4 => Gateway::Ipv4(Ipv4Addr::from(r.array::<4>("IPv4 gateway")?)),
            gateway_type::IPV6 => Gateway::Ipv6(Ipv6Addr::from(r.array::<16>("IPv6 gateway")?)),
            gateway_type::NAME => Gateway::Name(r.name()?),
            other => return Err(WireError::UnknownGatewayType(other)),
        };
        let key = PublicKey::parse(alg, r.0)?;
        Ok(Self {
            precedence,
            gateway,
            key,
        })
    }

    /// Appends the RDATA in wire form.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.precedence,
            self.gateway.gateway_type(),
            self.key.algorithm(),
        ]);
        self.gateway.emit(out);
        self.key.emit(out);
    }

    /// The RDATA in wire form.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.gateway.wire_len() + self.key.wire_len());
        self.emit(&mut out);
        out
    }
}

/// A cursor over RDATA whose reads cannot run past the end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let truncated = WireError::Truncated {
            field,
            needed: N,
            available: self.0.len(),
        };
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(truncated)?;
        self.0 = rest;
        Ok(*head)
    }

    fn name(&mut self) -> Result<GatewayName, WireError> {
        let (name, used) = GatewayName::parse_wire(self.0)?;
        self.0 = self.0.get(used..).unwrap_or_default();
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_each_gateway_type() {
        let key = PublicKey::Ed25519([7; 32]);
        for gateway in [
            Gateway::None,
            Gateway::Ipv4(Ipv4Addr::new(192, 0, 2, 38)),
            Gateway::Ipv6("2001:db8::1".parse().unwrap()),
            Gateway::Name("gw.example.com.".parse().unwrap()),
        ] {
            let rec = IpsecKey {
                precedence: 10,
                gateway,
                key: key.clone(),
            };
            let wire = rec.to_wire();
            assert_eq!(IpsecKey::parse(&wire).unwrap(), rec);
        }
    }

    #[test]
    fn wire_errors() {
        assert!(matches!(
            IpsecKey::parse(&[10, 0]),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(
            IpsecKey::parse(&[10, 4, 2, 1]),
            Err(WireError::UnknownGatewayType(4))
        );
        assert!(matches!(
            IpsecKey::parse(&[10, 1, 2, 192, 0]),
            Err(WireError::Truncated {
                field: "IPv4 gateway",
                needed: 4,
                available: 2
            })
        ));
        assert!(matches!(
            IpsecKey::parse(&[10, 2, 2, 0x20]),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(
            IpsecKey::parse(&[10, 3, 2, 0xC0, 0x0C]),
            Err(WireError::Name(NameError::Compressed))
        );
        assert_eq!(
            IpsecKey::parse(&[10, 0, 4]),
            Err(WireError::Key(KeyError::Empty(4)))
        );
        assert_eq!(
            IpsecKey::parse(&[10, 0, 2, 9, 1]),
            Err(WireError::Key(KeyError::RsaExponentLength {
                claimed: 9,
                available: 1
            }))
        );
        assert_eq!(
            IpsecKey::parse(&vec![0; 65536]),
            Err(WireError::TooLong(65536))
        );
    }

    #[test]
    fn no_key_record() {
        let rec = IpsecKey::parse(&[10, 1, 0, 192, 0, 2, 1]).unwrap();
        assert_eq!(rec.key, PublicKey::None);
        assert_eq!(rec.to_string(), "10 1 0 192.0.2.1");
        assert_eq!("10 1 0 192.0.2.1".parse::<IpsecKey>().unwrap(), rec);
    }
}
