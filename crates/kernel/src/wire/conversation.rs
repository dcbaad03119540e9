//! One netlink request in flight, whatever the protocol: the answers are matched by
//! sequence number, and the request finishes on the acknowledgement (`NLMSG_ERROR` with
//! errno 0), an error, or the end of a dump (`NLMSG_DONE`). Messages with another sequence
//! number (left over from an abandoned request) are ignored. Data messages go through the
//! protocol's checked parser; a malformed entry in a dump is logged and skipped, in a
//! single answer it is an error.

use super::frame::{self, Frames, Header};
use super::ParseError;
use crate::error::Error;

/// Parses one data message of the protocol (`kind`, body).
pub(crate) type Parse<P> = fn(u16, &[u8]) -> Result<P, ParseError>;
/// Turns the parsed data messages into the request's answer.
pub(crate) type Decode<T, P> = fn(&'static str, Vec<P>) -> Result<T, Error>;

/// Progress of a request.
#[derive(Debug)]
pub enum Step<T> {
    /// Feed more datagrams.
    Pending,
    /// The request finished.
    Done(Result<T, Error>),
}

pub(crate) struct Conversation<T, P> {
    op: &'static str,
    seq: u32,
    dump: bool,
    interrupted: bool,
    replies: Vec<P>,
    parse: Parse<P>,
    decode: Decode<T, P>,
}

impl<T, P> std::fmt::Debug for Conversation<T, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Exchange({}, seq {}, {} replies)",
            self.op,
            self.seq,
            self.replies.len()
        )
    }
}

impl<T, P> Conversation<T, P> {
    pub(crate) fn new(
        op: &'static str,
        seq: u32,
        dump: bool,
        parse: Parse<P>,
        decode: Decode<T, P>,
    ) -> Self {
        Self {
            op,
            seq,
            dump,
            interrupted: false,
            replies: Vec::new(),
            parse,
            decode,
        }
    }

    pub(crate) fn seq(&self) -> u32 {
        self.seq
    }

    /// Consumes one received datagram.
    pub(crate) fn on_datagram(&mut self, datagram: &[u8]) -> Step<T> {
        for item in Frames::new(datagram) {
            let step = match item {
                Ok((header, body)) if header.seq == self.seq => self.on_message(&header, body),
                Ok(_) => Step::Pending,
                Err(source) => Step::Done(Err(Error::Malformed {
                    op: self.op,
                    source,
                })),
            };
            if let Step::Done(result) = step {
                return Step::Done(result);
            }
        }
        Step::Pending
    }

    fn on_message(&mut self, header: &Header, body: &[u8]) -> Step<T> {
        match header.kind {
            frame::NLMSG_NOOP => Step::Pending,
            frame::NLMSG_ERROR => self.on_error(header, body),
            frame::NLMSG_DONE => match frame::parse_done(body) {
                0 => self.finish(),
                errno => Step::Done(Err(Error::Kernel {
                    op: self.op,
                    errno,
                    message: None,
                })),
            },
            frame::NLMSG_OVERRUN => Step::Done(Err(Error::UnexpectedReply { op: self.op })),
            kind => self.on_data(header, kind, body),
        }
    }

    fn on_error(&mut self, header: &Header, body: &[u8]) -> Step<T> {
        match frame::parse_error(header, body) {
            Ok(e) if e.errno == 0 => self.finish(),
            Ok(e) => Step::Done(Err(Error::Kernel {
                op: self.op,
                errno: e.errno,
                message: e.message,
            })),
            Err(source) => Step::Done(Err(Error::Malformed {
                op: self.op,
                source,
            })),
        }
    }

    fn on_data(&mut self, header: &Header, kind: u16, body: &[u8]) -> Step<T> {
        self.interrupted |= header.flags & frame::NLM_F_DUMP_INTR != 0;
        match (self.parse)(kind, body) {
            Ok(payload) => {
                self.replies.push(payload);
                Step::Pending
            }
            Err(source) if self.dump => {
                tracing::warn!(op = self.op, %source, "skipping malformed entry in kernel dump");
                Step::Pending
            }
            Err(source) => Step::Done(Err(Error::Malformed {
                op: self.op,
                source,
            })),
        }
    }

    fn finish(&mut self) -> Step<T> {
        if self.interrupted {
            return Step::Done(Err(Error::DumpInterrupted { op: self.op }));
        }
        let replies = std::mem::take(&mut self.replies);
        Step::Done((self.decode)(self.op, replies))
    }
}
