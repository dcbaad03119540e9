//! Netlink framing: split a datagram into messages and read the control messages
//! (`NLMSG_ERROR`, `NLMSG_DONE`) with checked readers.
//!
//! A netlink datagram holds one or more messages, each a 16-byte `struct nlmsghdr`
//! (length, type, flags, sequence, port id; host byte order) followed by its payload,
//! padded to 4 bytes. Every length is checked against the bytes actually present.

use super::ParseError;

/// `sizeof(struct nlmsghdr)`.
pub(crate) const HEADER_LEN: usize = 16;
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;
/// `NLM_F_DUMP_INTR`: the dump changed while it was read; it may be inconsistent.
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_CAPPED`: the error message does not echo the request payload.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: extended-ack attributes follow the echoed request.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: a human-readable error string.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A `struct nlmsghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: u32,
    pub(crate) kind: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) port: u32,
}

impl Header {
    fn read(buf: &[u8]) -> Option<Self> {
        Some(Self {
            len: read_u32(buf, 0)?,
            kind: read_u16(buf, 4)?,
            flags: read_u16(buf, 6)?,
            seq: read_u32(buf, 8)?,
            port: read_u32(buf, 12)?,
        })
    }

    /// Writes the header in host byte order into the first 16 bytes of `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_ne_bytes());
        out.extend_from_slice(&self.kind.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&self.port.to_ne_bytes());
    }
}

/// Iterates over the messages of one datagram. Stops after the first framing error.
#[derive(Debug)]
pub(crate) struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    pub(crate) fn new(datagram: &'a [u8]) -> Self {
        Self { rest: datagram }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(Header, &'a [u8]), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = split_one(self.rest);
        match item {
            Ok((header, payload, rest)) => {
                self.rest = rest;
                Some(Ok((header, payload)))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

type Split<'a> = (Header, &'a [u8], &'a [u8]);

fn split_one(buf: &[u8]) -> Result<Split<'_>, ParseError> {
    let header = Header::read(buf).ok_or(ParseError::Truncated {
        what: "nlmsghdr",
        need: HEADER_LEN,
        have: buf.len(),
    })?;
    let len = usize::try_from(header.len).unwrap_or(usize::MAX);
    if len < HEADER_LEN || len > buf.len() {
        return Err(ParseError::BadLength {
            what: "nlmsghdr",
            claimed: len,
            have: buf.len(),
        });
    }
    let payload = buf.get(HEADER_LEN..len).unwrap_or_default();
    let next = align4(len).min(buf.len());
    let rest = buf.get(next..).unwrap_or_default();
    Ok((header, payload, rest))
}

pub(crate) fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// The body of an `NLMSG_ERROR` message: an errno (0 for an acknowledgement) and,
/// with extended acks, the kernel's explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// Positive errno, or 0 for an ACK.
    pub(crate) errno: i32,
    pub(crate) message: Option<String>,
}

/// Parses the payload of `NLMSG_ERROR` (`struct nlmsgerr` plus optional TLVs).
pub(crate) fn parse_error(header: &Header, payload: &[u8]) -> Result<ErrorBody, ParseError> {
    let code = read_i32(payload, 0).ok_or(ParseError::Truncated {
        what: "nlmsgerr",
        need: 4 + HEADER_LEN,
        have: payload.len(),
    })?;
    let echoed = payload.get(4..).unwrap_or_default();
    let orig = Header::read(echoed).ok_or(ParseError::Truncated {
        what: "nlmsgerr",
        need: 4 + HEADER_LEN,
        have: payload.len(),
    })?;
    let message = if header.flags & NLM_F_ACK_TLVS != 0 {
        let skip = if header.flags & NLM_F_CAPPED != 0 {
            HEADER_LEN
        } else {
            align4(usize::try_from(orig.len).unwrap_or(usize::MAX))
        };
        echoed.get(skip..).and_then(ext_ack_message)
    } else {
        None
    };
    Ok(ErrorBody {
        errno: code.checked_neg().unwrap_or(i32::MAX),
        message,
    })
}

/// Parses the payload of `NLMSG_DONE`: an optional `int` error code (negative errno).
pub(crate) fn parse_done(payload: &[u8]) -> i32 {
    read_i32(payload, 0).and_then(i32::checked_neg).unwrap_or(0)
}

/// Finds `NLMSGERR_ATTR_MSG` among extended-ack attributes.
fn ext_ack_message(mut attrs: &[u8]) -> Option<String> {
    while let (Some(len), Some(kind)) = (read_u16(attrs, 0), read_u16(attrs, 2)) {
        let len = usize::from(len);
        let value = attrs.get(4..len)?;
        if kind == NLMSGERR_ATTR_MSG {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        attrs = attrs.get(align4(len).max(4)..)?;
    }
    None
}

pub(crate) fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    read_u32(buf, at).map(|v| i32::from_ne_bytes(v.to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let len = u32::try_from(HEADER_LEN + payload.len()).unwrap();
        Header {
            len,
            kind,
            flags,
            seq,
            port: 0,
        }
        .write(&mut out);
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn splits_two_messages() {
        let mut dgram = msg(NLMSG_DONE, 0, 7, &[0, 0, 0, 0]);
        dgram.extend(msg(0x17, 0, 8, &[1, 2, 3]));
        let frames: Vec<_> = Frames::new(&dgram).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0.seq, 7);
        assert_eq!(frames[1].1, &[1, 2, 3]);
    }

    #[test]
    fn rejects_lengths_beyond_the_datagram() {
        let mut dgram = msg(NLMSG_DONE, 0, 7, &[0, 0, 0, 0]);
        dgram[0] = 200;
        let first = Frames::new(&dgram).next().unwrap();
        assert!(matches!(first, Err(ParseError::BadLength { .. })));
    }

    #[test]
    fn rejects_short_header_and_stops() {
        let dgram = [1u8, 2, 3];
        let mut frames = Frames::new(&dgram);
        assert!(matches!(
            frames.next(),
            Some(Err(ParseError::Truncated { .. }))
        ));
        assert!(frames.next().is_none());
    }

    #[test]
    fn error_with_ext_ack_message() {
        let mut body = (-38i32).to_ne_bytes().to_vec();
        let mut orig = Vec::new();
        Header {
            len: 300,
            kind: 0x10,
            flags: 5,
            seq: 9,
            port: 0,
        }
        .write(&mut orig);
        body.extend(orig);
        let text = b"Requested AEAD algorithm not found\0";
        let attr_len = u16::try_from(4 + text.len()).unwrap();
        body.extend(attr_len.to_ne_bytes());
        body.extend(NLMSGERR_ATTR_MSG.to_ne_bytes());
        body.extend(text);
        let header = Header {
            len: 0,
            kind: NLMSG_ERROR,
            flags: NLM_F_CAPPED | NLM_F_ACK_TLVS,
            seq: 9,
            port: 0,
        };
        let parsed = parse_error(&header, &body).unwrap();
        assert_eq!(parsed.errno, 38);
        assert_eq!(
            parsed.message.as_deref(),
            Some("Requested AEAD algorithm not found")
        );
    }

    #[test]
    fn error_with_lying_attribute_length_has_no_message() {
        let mut body = 0i32.to_ne_bytes().to_vec();
        let mut orig = Vec::new();
        Header {
            len: 16,
            kind: 0x10,
            flags: 5,
            seq: 9,
            port: 0,
        }
        .write(&mut orig);
        body.extend(orig);
        body.extend(400u16.to_ne_bytes());
        body.extend(NLMSGERR_ATTR_MSG.to_ne_bytes());
        let header = Header {
            len: 0,
            kind: NLMSG_ERROR,
            flags: NLM_F_CAPPED | NLM_F_ACK_TLVS,
            seq: 9,
            port: 0,
        };
        assert_eq!(parse_error(&header, &body).unwrap().message, None);
    }

    #[test]
    fn short_error_is_an_error() {
        let header = Header {
            len: 0,
            kind: NLMSG_ERROR,
            flags: 0,
            seq: 1,
            port: 0,
        };
        assert!(parse_error(&header, &[0, 0]).is_err());
    }
}
