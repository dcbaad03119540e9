//! Errors of the IPSECKEY codec: every malformed input maps to one of these, never a panic.

use thiserror::Error;

/// Why IPSECKEY RDATA in wire form (RFC 4025 section 2) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// A field runs past the end of the RDATA.
    #[error("RDATA truncated: {field} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// RDATA longer than a DNS record can carry (65535 bytes).
    #[error("RDATA is {0} bytes, more than the 65535 a record can hold")]
    TooLong(usize),
    /// A gateway type other than 0-3 (RFC 4025 section 2.3; 4-255 are unassigned).
    #[error("unknown gateway type {0}")]
    UnknownGatewayType(u8),
    /// The gateway name is malformed.
    #[error("gateway name: {0}")]
    Name(#[from] NameError),
    /// The public key field is malformed for its algorithm.
    #[error("public key: {0}")]
    Key(#[from] KeyError),
}

/// Why a gateway domain name (wire or presentation form) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    /// A compression pointer: RFC 4025 section 2.5 says the gateway name MUST NOT be compressed.
    #[error("compressed (RFC 4025 section 2.5 forbids compression)")]
    Compressed,
    /// A label type other than a normal label (RFC 6891 section 5: extended labels are obsolete).
    #[error("label type {0:#04x} is not a normal label")]
    BadLabelType(u8),
    /// The name is longer than 255 bytes in wire form (RFC 1035 section 3.1).
    #[error("longer than 255 bytes")]
    TooLong,
    /// A label longer than 63 bytes (RFC 1035 section 2.3.4).
    #[error("label longer than 63 bytes")]
    LabelTooLong,
    /// An empty label inside a presentation-form name (`a..b`).
    #[error("empty label")]
    EmptyLabel,
    /// A name in presentation form without the final dot: the zone origin is unknown here.
    #[error("relative name {0:?}: write it fully qualified, with a final dot")]
    Relative(String),
    /// A bad `\X` or `\DDD` escape in presentation form.
    #[error("bad escape in {0:?}")]
    BadEscape(String),
    /// The wire name ends before its terminating root label.
    #[error("truncated")]
    Truncated,
}

/// Why a public key field was rejected for its algorithm (RFC 4025 section 2.4, RFC 3110,
/// RFC 6605 section 4, RFC 8080 section 3).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Algorithm 1-255 with an empty key field.
    #[error("algorithm {0} with an empty key")]
    Empty(u8),
    /// Algorithm 0 ("no key is present") with key bytes.
    #[error("algorithm 0 (no key) carries {0} key bytes")]
    UnexpectedKey(usize),
    /// The RSA exponent length field itself is cut short.
    #[error("RSA exponent length field truncated")]
    RsaLengthTruncated,
    /// The RSA exponent length claims more bytes than the key holds.
    #[error("RSA exponent length {claimed} exceeds the {available} bytes that follow")]
    RsaExponentLength {
        /// Length the field claims.
        claimed: usize,
        /// Bytes actually left.
        available: usize,
    },
    /// An RSA exponent of length zero.
    #[error("RSA exponent is empty")]
    RsaEmptyExponent,
    /// No modulus bytes after the exponent.
    #[error("RSA modulus is empty")]
    RsaEmptyModulus,
    /// A leading zero byte in the exponent or modulus (RFC 3110 section 2 prohibits them).
    #[error("RSA {0} has a leading zero byte (RFC 3110 section 2)")]
    RsaLeadingZero(&'static str),
    /// An ECDSA key that is neither P-256 (64 bytes) nor P-384 (96 bytes).
    #[error("ECDSA key is {0} bytes; P-256 needs 64, P-384 96")]
    EcdsaLength(usize),
    /// An EdDSA key that is neither Ed25519 (32 bytes) nor Ed448 (57 bytes).
    #[error("EdDSA key is {0} bytes; Ed25519 needs 32, Ed448 57")]
    EddsaLength(usize),
}

/// Why IPSECKEY RDATA in presentation form (RFC 4025 section 3) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TextError {
    /// A field is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A number that is not a decimal 0-255.
    #[error("{field}: {text:?} is not a number from 0 to 255")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// What was written.
        text: String,
    },
    /// Gateway type 0 needs the gateway written as a single `.`.
    #[error("gateway type 0 needs \".\" as gateway, got {0:?}")]
    NotRoot(String),
    /// A gateway that is not an address of its type.
    #[error("gateway {0:?} is not an address of the gateway type")]
    BadAddress(String),
    /// The key is not valid base64.
    #[error("public key is not valid base64")]
    BadBase64,
    /// Unbalanced parentheses.
    #[error("unbalanced parentheses")]
    Parentheses,
    /// The decoded record is invalid (unknown gateway type, bad key layout, bad name).
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl From<NameError> for TextError {
    fn from(e: NameError) -> Self {
        Self::Wire(WireError::Name(e))
    }
}

impl From<KeyError> for TextError {
    fn from(e: KeyError) -> Self {
        Self::Wire(WireError::Key(e))
    }
}
