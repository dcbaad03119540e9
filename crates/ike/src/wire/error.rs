//! Typed decoding errors. Every one of them is the peer's fault (malformed input).

use super::registry::{NotifyType, PayloadType};

/// Why a datagram or payload could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    #[error("trailing bytes after {what}")]
    TrailingBytes { what: &'static str },
    #[error("bad length in {what}")]
    BadLength { what: &'static str },
    #[error("invalid {what}")]
    Invalid { what: &'static str },
    /// RFC 7296 3.1: a major version above 2 is answered with INVALID_MAJOR_VERSION.
    #[error("unsupported IKE major version {major}")]
    UnsupportedVersion { major: u8 },
    /// RFC 7296 3.2: an unknown payload with the critical bit set rejects the whole message.
    #[error("unsupported critical payload {payload:?}")]
    UnsupportedCritical { payload: PayloadType },
}

impl WireError {
    /// The error notification to answer with (RFC 7296 3.10.1): type and notification data.
    /// Whether it is actually sent depends on the exchange (section 2.21: never answer an
    /// unauthenticated IKE_SA_INIT with anything but the listed notifications).
    pub fn answer(&self) -> (NotifyType, Vec<u8>) {
        match *self {
            Self::UnsupportedCritical { payload } => {
                (NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![payload.0])
            }
            // Section 2.5: the notification carries the highest version we support.
            Self::UnsupportedVersion { .. } => (NotifyType::INVALID_MAJOR_VERSION, Vec::new()),
            _ => (NotifyType::INVALID_SYNTAX, Vec::new()),
        }
    }
}
