//! Bytes to and from the kernel.
//!
//! Kernel messages are untrusted input here: [`frame`] splits datagrams with checked
//! lengths, and [`parse_payload`] checks each XFRM payload's fixed part before handing
//! it to `netlink-packet-xfrm` (whose 0.5 parsers slice without checking and panic on
//! truncated ACQUIRE, EXPIRE, NEWSA and POLEXPIRE bodies). Only the message types this
//! crate understands reach the crate's parsers; everything else is reported as
//! [`Payload::Other`] without being parsed.

pub mod batch;
#[cfg(test)]
mod captured;
pub(crate) mod conversation;
pub(crate) mod frame;
mod payload;
pub(crate) mod request;

pub(crate) use payload::{parse_payload, Payload};

/// A message from the kernel that could not be parsed. The kernel (or whoever wrote to
/// our socket) sent it; it is logged and skipped, never trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer bytes than the structure needs.
    #[error("{what}: truncated, need {need} bytes, have {have}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A length field that disagrees with the bytes present.
    #[error("{what}: length field says {claimed}, {have} bytes present")]
    BadLength {
        /// The structure being read.
        what: &'static str,
        /// The length claimed.
        claimed: usize,
        /// Bytes present.
        have: usize,
    },
    /// An address family other than IPv4 or IPv6.
    #[error("{what}: unknown address family {family}")]
    Family {
        /// The structure being read.
        what: &'static str,
        /// The family value.
        family: u16,
    },
    /// Any other inconsistency (bad attribute, bad direction...).
    #[error("{what}: {detail}")]
    Invalid {
        /// The structure being read.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// Parses one netlink datagram received on an event socket into events.
///
/// Each message yields one item: `Ok(Some(event))`, `Ok(None)` for a message that is
/// not an event this crate reports, or `Err` for a malformed message (framing errors
/// end the datagram). This is the function the `kernel_event` fuzz target drives.
pub fn parse_events(datagram: &[u8]) -> Vec<Result<Option<crate::Event>, ParseError>> {
    frame::Frames::new(datagram)
        .map(|item| {
            let (header, body) = item?;
            match parse_payload(header.kind, body)? {
                Payload::Event(event) => Ok(Some(event)),
                _ => Ok(None),
            }
        })
        .collect()
}
