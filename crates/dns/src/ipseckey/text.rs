//! Presentation form (RFC 4025 section 3): `precedence gateway-type algorithm gateway key`,
//! e.g. `10 0 4 . 3WTXgUvpn1RlCXnm80gGY2LZ/ErUUEZtZ33IDi8yfhM=`.
//!
//! Accepted as zone files write it: parentheses spanning lines, `;` comments, the base64 key
//! split by blanks. The gateway name must be fully qualified (there is no origin here).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use base64::Engine as _;

use super::error::TextError;
use super::{gateway_type, Gateway, GatewayName, IpsecKey, PublicKey, MAX_RDATA};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl fmt::Display for IpsecKey {
    /// The RDATA in presentation form, on one line; no key field for algorithm 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.precedence,
            self.gateway.gateway_type(),
            self.key.algorithm(),
            self.gateway
        )?;
        let mut key = Vec::new();
        self.key.emit(&mut key);
        if !key.is_empty() {
            write!(f, " {}", BASE64.encode(&key))?;
        }
        Ok(())
    }
}

impl FromStr for IpsecKey {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let tokens = tokenize(s)?;
        let mut fields = tokens.iter().map(String::as_str);
        let precedence = number(fields.next(), "precedence")?;
        let gw_type = number(fields.next(), "gateway type")?;
        let alg = number(fields.next(), "algorithm")?;
        let gateway = gateway(gw_type, fields.next().ok_or(TextError::Missing("gateway"))?)?;
        let key_text: String = fields.collect();
        let key_bytes = BASE64
            .decode(key_text.as_bytes())
            .map_err(|_| TextError::BadBase64)?;
        let key = PublicKey::parse(alg, &key_bytes)?;
        let record = Self {
            precedence,
            gateway,
            key,
        };
        let len = 3 + record.gateway.wire_len() + key_bytes.len();
        if len > MAX_RDATA {
            return Err(super::WireError::TooLong(len).into());
        }
        Ok(record)
    }
}

fn number(token: Option<&str>, field: &'static str) -> Result<u8, TextError> {
    let text = token.ok_or(TextError::Missing(field))?;
    let all_digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    all_digits
        .then(|| text.parse::<u8>().ok())
        .flatten()
        .ok_or_else(|| TextError::BadNumber {
            field,
            text: text.to_owned(),
        })
}

fn gateway(gw_type: u8, text: &str) -> Result<Gateway, TextError> {
    let bad_address = || TextError::BadAddress(text.to_owned());
    match gw_type {
        gateway_type::NONE if text == "." => Ok(Gateway::None),
        gateway_type::NONE => Err(TextError::NotRoot(text.to_owned())),
        gateway_type::IPV4 => text
            .parse::<Ipv4Addr>()
            .map(Gateway::Ipv4)
            .map_err(|_| bad_address()),
        gateway_type::IPV6 => text
            .parse::<Ipv6Addr>()
            .map(Gateway::Ipv6)
            .map_err(|_| bad_address()),
        gateway_type::NAME => Ok(Gateway::Name(text.parse::<GatewayName>()?)),
        other => Err(super::WireError::UnknownGatewayType(other).into()),
    }
}

/// Splits on blanks and line ends, drops `;` comments and balanced parentheses; a backslash
/// keeps the next character in the token.
fn tokenize(s: &str) -> Result<Vec<String>, TextError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                current.extend(chars.next());
                continue;
            }
            ';' => {
                chars.by_ref().take_while(|&c| c != '\n').for_each(drop);
            }
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or(TextError::Parentheses)?,
            c if c.is_whitespace() => {}
            c => {
                current.push(c);
                continue;
            }
        }
        if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if depth != 0 {
        return Err(TextError::Parentheses);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipseckey::{KeyError, NameError, WireError};

    #[test]
    fn multi_line_with_comment_and_split_key() {
        let text = "( 10 0 4 . ; no gateway\n  3WTXgUvpn1RlCXnm80gGY2LZ\n  /ErUUEZtZ33IDi8yfhM= )";
        let rec: IpsecKey = text.parse().unwrap();
        assert!(matches!(rec.key, PublicKey::Ed25519(_)));
        assert_eq!(
            rec.to_string(),
            "10 0 4 . 3WTXgUvpn1RlCXnm80gGY2LZ/ErUUEZtZ33IDi8yfhM="
        );
    }

    #[test]
    fn text_errors() {
        let key = "3WTXgUvpn1RlCXnm80gGY2LZ/ErUUEZtZ33IDi8yfhM=";
        let cases: Vec<(String, TextError)> = vec![
            ("".into(), TextError::Missing("precedence")),
            ("10 0".into(), TextError::Missing("algorithm")),
            ("10 0 4".into(), TextError::Missing("gateway")),
            (
                "256 0 4 .".into(),
                TextError::BadNumber {
                    field: "precedence",
                    text: "256".into(),
                },
            ),
            (
                "+1 0 4 .".into(),
                TextError::BadNumber {
                    field: "precedence",
                    text: "+1".into(),
                },
            ),
            (
                format!("10 0 4 gw.example. {key}"),
                TextError::NotRoot("gw.example.".into()),
            ),
            (
                format!("10 1 4 ::1 {key}"),
                TextError::BadAddress("::1".into()),
            ),
            (
                format!("10 2 4 192.0.2.1 {key}"),
                TextError::BadAddress("192.0.2.1".into()),
            ),
            (
                format!("10 5 4 . {key}"),
                WireError::UnknownGatewayType(5).into(),
            ),
            (
                format!("10 3 4 gw.example {key}"),
                NameError::Relative("gw.example".into()).into(),
            ),
            ("10 0 4 . AQID*".into(), TextError::BadBase64),
            ("10 0 4 .".into(), KeyError::Empty(4).into()),
            ("10 0 2 . AA==".into(), KeyError::RsaLengthTruncated.into()),
            ("( 10 0 4 .".into(), TextError::Parentheses),
            ("10 0 4 . )".into(), TextError::Parentheses),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<IpsecKey>(), Err(want), "{text:?}");
        }
    }
}
