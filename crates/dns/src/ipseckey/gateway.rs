//! The gateway field (RFC 4025 sections 2.3 and 2.5) and its uncompressed wire-form domain name.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::NameError;

/// Gateway types (RFC 4025 section 2.3).
pub mod gateway_type {
    /// No gateway is present.
    pub const NONE: u8 = 0;
    /// A 4-byte IPv4 address.
    pub const IPV4: u8 = 1;
    /// A 16-byte IPv6 address.
    pub const IPV6: u8 = 2;
    /// An uncompressed wire-encoded domain name.
    pub const NAME: u8 = 3;
}

/// Where to send IPsec for the record's owner (RFC 4025 section 2.5); opportunistic encryption
/// between hosts uses [`Gateway::None`] ("the host itself").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Gateway {
    /// Type 0: no gateway; written `.`.
    None,
    /// Type 1.
    Ipv4(Ipv4Addr),
    /// Type 2.
    Ipv6(Ipv6Addr),
    /// Type 3.
    Name(GatewayName),
}

impl Gateway {
    /// The gateway type field value.
    pub fn gateway_type(&self) -> u8 {
        match self {
            Self::None => gateway_type::NONE,
            Self::Ipv4(_) => gateway_type::IPV4,
            Self::Ipv6(_) => gateway_type::IPV6,
            Self::Name(_) => gateway_type::NAME,
        }
    }

    /// Appends the gateway field in wire form.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Self::None => {}
            Self::Ipv4(a) => out.extend_from_slice(&a.octets()),
            Self::Ipv6(a) => out.extend_from_slice(&a.octets()),
            Self::Name(n) => out.extend_from_slice(n.wire()),
        }
    }

    /// Length of the gateway field in wire form.
    pub fn wire_len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Ipv4(_) => 4,
            Self::Ipv6(_) => 16,
            Self::Name(n) => n.wire().len(),
        }
    }
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("."),
            Self::Ipv4(a) => a.fmt(f),
            Self::Ipv6(a) => a.fmt(f),
            Self::Name(n) => n.fmt(f),
        }
    }
}

/// A fully qualified domain name kept in uncompressed wire form (RFC 1035 section 3.1).
/// Always valid: labels of 1-63 bytes, at most 255 bytes in all, ending in the root label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayName(Vec<u8>);

const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;

impl GatewayName {
    /// Reads an uncompressed name from the front of `input`; returns it and the bytes it used.
    pub fn parse_wire(input: &[u8]) -> Result<(Self, usize), NameError> {
        let mut pos = 0;
        loop {
            let len = *input.get(pos).ok_or(NameError::Truncated)?;
            match len & 0xC0 {
                0xC0 => return Err(NameError::Compressed),
                0x00 => {}
                _ => return Err(NameError::BadLabelType(len)),
            }
            let end = pos + 1 + usize::from(len);
            if end > MAX_NAME {
                return Err(NameError::TooLong);
            }
            if len == 0 {
                let wire = input.get(..end).ok_or(NameError::Truncated)?;
                return Ok((Self(wire.to_vec()), end));
            }
            if end > input.len() {
                return Err(NameError::Truncated);
            }
            pos = end;
        }
    }

    /// The name in wire form, root label included.
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    /// The labels, without the root label.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.0.as_slice();
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let label = tail.get(..usize::from(len))?;
            rest = tail.get(usize::from(len)..)?;
            (!label.is_empty()).then_some(label)
        })
    }

    fn from_labels(labels: Vec<Vec<u8>>) -> Result<Self, NameError> {
        let mut wire = Vec::new();
        for label in labels {
            let len = u8::try_from(label.len()).map_err(|_| NameError::LabelTooLong)?;
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL {
                return Err(NameError::LabelTooLong);
            }
            wire.push(len);
            wire.extend_from_slice(&label);
        }
        wire.push(0);
        if wire.len() > MAX_NAME {
            return Err(NameError::TooLong);
        }
        Ok(Self(wire))
    }
}

impl fmt::Display for GatewayName {
    /// Presentation form (RFC 1035 section 5.1): special characters escaped, always a final dot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for label in self.labels() {
            any = true;
            for &b in label {
                match b {
                    b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                        write!(f, "\\{}", char::from(b))?;
                    }
                    0x21..=0x7E => write!(f, "{}", char::from(b))?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        if !any {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl FromStr for GatewayName {
    type Err = NameError;

    /// Parses a fully qualified name in presentation form (`gw.example.com.`, `\.` and `\DDD`
    /// escapes allowed). A name without its final dot is rejected: there is no origin here.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "." {
            return Self::from_labels(Vec::new());
        }
        let mut labels = Vec::new();
        let mut label = Vec::new();
        let mut chars = s.bytes();
        let mut ended_with_dot = false;
        while let Some(c) = chars.next() {
            ended_with_dot = false;
            match c {
                b'.' => {
                    labels.push(std::mem::take(&mut label));
                    ended_with_dot = true;
                }
                b'\\' => label.push(unescape(&mut chars, s)?),
                _ => label.push(c),
            }
        }
        if !ended_with_dot {
            return Err(NameError::Relative(s.to_owned()));
        }
        Self::from_labels(labels)
    }
}

/// Decodes the character after a backslash: `\X` or `\DDD` (RFC 1035 section 5.1).
fn unescape(chars: &mut std::str::Bytes<'_>, whole: &str) -> Result<u8, NameError> {
    let bad = || NameError::BadEscape(whole.to_owned());
    let first = chars.next().ok_or_else(bad)?;
    if !first.is_ascii_digit() {
        return Ok(first);
    }
    let mut value = u32::from(first - b'0');
    for _ in 0..2 {
        let d = chars.next().filter(u8::is_ascii_digit).ok_or_else(bad)?;
        value = value * 10 + u32::from(d - b'0');
    }
    u8::try_from(value).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip() {
        let wire = b"\x09mygateway\x07example\x03com\x00trailing";
        let (name, used) = GatewayName::parse_wire(wire).unwrap();
        assert_eq!(used, 23);
        assert_eq!(name.to_string(), "mygateway.example.com.");
        assert_eq!(name, "mygateway.example.com.".parse().unwrap());
    }

    #[test]
    fn root_name() {
        let (name, used) = GatewayName::parse_wire(b"\x00").unwrap();
        assert_eq!(used, 1);
        assert_eq!(name.to_string(), ".");
        assert_eq!(name, ".".parse().unwrap());
    }

    #[test]
    fn wire_errors() {
        assert_eq!(GatewayName::parse_wire(b""), Err(NameError::Truncated));
        assert_eq!(
            GatewayName::parse_wire(b"\x03ab"),
            Err(NameError::Truncated)
        );
        assert_eq!(
            GatewayName::parse_wire(b"\x03abc"),
            Err(NameError::Truncated)
        );
        assert_eq!(
            GatewayName::parse_wire(b"\xc0\x0c"),
            Err(NameError::Compressed)
        );
        assert_eq!(
            GatewayName::parse_wire(b"\x41"),
            Err(NameError::BadLabelType(0x41))
        );
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(GatewayName::parse_wire(&long), Err(NameError::TooLong));
    }

    #[test]
    fn escapes() {
        let name: GatewayName = "a\\.b.c\\032d.".parse().unwrap();
        assert_eq!(name.wire(), b"\x03a.b\x03c d\x00");
        assert_eq!(name.to_string(), "a\\.b.c\\032d.");
        assert!(matches!(
            "a\\2.".parse::<GatewayName>(),
            Err(NameError::BadEscape(_))
        ));
        assert!(matches!(
            "a\\256.".parse::<GatewayName>(),
            Err(NameError::BadEscape(_))
        ));
    }

    #[test]
    fn text_errors() {
        assert!(matches!(
            "gw.example".parse::<GatewayName>(),
            Err(NameError::Relative(_))
        ));
        assert_eq!("a..b.".parse::<GatewayName>(), Err(NameError::EmptyLabel));
        let long_label = format!("{}.", "a".repeat(64));
        assert_eq!(
            long_label.parse::<GatewayName>(),
            Err(NameError::LabelTooLong)
        );
        let long_name = format!("{}.", vec!["a".repeat(63); 4].join("."));
        assert_eq!(long_name.parse::<GatewayName>(), Err(NameError::TooLong));
    }
}
