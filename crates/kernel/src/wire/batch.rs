//! Many requests in one datagram, acknowledged together.
//!
//! Netlink lets one `sendmsg` carry several messages; the kernel handles them in order,
//! each as if sent alone (`netlink_rcv_skb`), and answers a message only if it asks for an
//! acknowledgement or fails. A [`Batch`] asks for an acknowledgement on its last message
//! only, so a batch that succeeds costs one datagram each way, and the kernel's answer to
//! the last message (acknowledgement or error) ends the exchange: every error of the
//! earlier messages was queued before it. Errors name the request by its position.
//!
//! Sizes are bounded ([`MAX_MESSAGES`], [`MAX_BYTES`]) so that even a batch whose every
//! message fails fits its error answers in a default socket receive buffer
//! (`net.core.rmem_default`, 208 KiB; each error costs about 1 KiB of buffer).

use zeroize::Zeroizing;

use super::frame::{self, Frames};
use super::request::Request;
use crate::error::Error;

/// Most messages in one batch.
pub const MAX_MESSAGES: usize = 128;
/// Most bytes in one batch datagram.
pub const MAX_BYTES: usize = 32 * 1024;

/// Requests that only return an acknowledgement, to be sent as one datagram.
#[derive(Debug, Default)]
pub struct Batch {
    requests: Vec<Request<()>>,
    bytes: usize,
}

/// What the kernel said to a batch: the requests it refused, by position.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// `(position in the batch, the kernel's refusal)`, in order.
    pub failed: Vec<(usize, Error)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `request`, or gives it back if the batch is full.
    pub fn push(&mut self, request: Request<()>) -> Result<(), Request<()>> {
        let len = frame::align4(request.encoded_len());
        if self.requests.len() >= MAX_MESSAGES || self.bytes + len > MAX_BYTES {
            return Err(request);
        }
        self.bytes += len;
        self.requests.push(request);
        Ok(())
    }

    /// Splits `requests` into full batches, in order.
    pub fn split(requests: impl IntoIterator<Item = Request<()>>) -> Vec<Self> {
        let mut batches = vec![Self::new()];
        for request in requests {
            let Some(last) = batches.last_mut() else {
                continue;
            };
            if let Err(request) = last.push(request) {
                let mut next = Self::new();
                // An empty batch takes any single request: none exceeds MAX_BYTES.
                let _ = next.push(request);
                batches.push(next);
            }
        }
        batches.retain(|b| !b.is_empty());
        batches
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether the batch holds no request.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// How many sequence numbers [`Batch::start`] uses (one per request).
    pub fn seqs(&self) -> u32 {
        u32::try_from(self.requests.len()).unwrap_or(u32::MAX)
    }

    /// Encodes the requests with sequence numbers `first`, `first + 1`, ... into one
    /// datagram and starts the exchange.
    pub fn start(self, first: u32) -> (Zeroizing<Vec<u8>>, BatchExchange) {
        let mut bytes = Zeroizing::new(Vec::with_capacity(self.bytes));
        let last = self.requests.len().saturating_sub(1);
        for (n, request) in self.requests.iter().enumerate() {
            let seq = first.wrapping_add(u32::try_from(n).unwrap_or(u32::MAX));
            request.encode_into(seq, n == last, &mut bytes);
            let padded = frame::align4(bytes.len());
            bytes.resize(padded, 0);
        }
        let exchange = BatchExchange {
            ops: self.requests.iter().map(Request::op).collect(),
            first,
            outcome: BatchOutcome::default(),
        };
        (bytes, exchange)
    }
}

/// A batch in flight: feed it the datagrams received on the request socket.
#[derive(Debug)]
pub struct BatchExchange {
    ops: Vec<&'static str>,
    first: u32,
    outcome: BatchOutcome,
}

/// Progress of a [`BatchExchange`].
#[derive(Debug)]
pub enum BatchStep {
    /// Feed more datagrams.
    Pending,
    /// The kernel answered the last request: the batch is done.
    Done(Result<BatchOutcome, Error>),
}

impl BatchExchange {
    /// Consumes one received datagram.
    pub fn on_datagram(&mut self, datagram: &[u8]) -> BatchStep {
        for item in Frames::new(datagram) {
            let (header, body) = match item {
                Ok(frame) => frame,
                Err(source) => {
                    let op = self.ops.first().copied().unwrap_or("batch");
                    return BatchStep::Done(Err(Error::Malformed { op, source }));
                }
            };
            let position = usize::try_from(header.seq.wrapping_sub(self.first)).ok();
            let Some((n, op)) = position.and_then(|n| Some((n, *self.ops.get(n)?))) else {
                continue; // another request's answer
            };
            if header.kind != frame::NLMSG_ERROR {
                continue;
            }
            match frame::parse_error(&header, body) {
                Ok(e) if e.errno != 0 => self.outcome.failed.push((
                    n,
                    Error::Kernel {
                        op,
                        errno: e.errno,
                        message: e.message,
                    },
                )),
                Ok(_) => {}
                Err(source) => return BatchStep::Done(Err(Error::Malformed { op, source })),
            }
            if n + 1 == self.ops.len() {
                return BatchStep::Done(Ok(std::mem::take(&mut self.outcome)));
            }
        }
        BatchStep::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicySpec, Shunt};
    use crate::types::{Direction, Prefix, TrafficSelector};
    use crate::Ownership;
    use frame::{Header, HEADER_LEN};

    fn shunt(n: u8) -> Request<()> {
        let sel = TrafficSelector::to(Prefix::host([192, 0, 2, n].into()));
        let spec = PolicySpec::host_shunt(sel, Direction::Out, Shunt::Pass, Some(60));
        Request::add_policy(&spec, &Ownership::default()).unwrap()
    }

    /// The kernel's answer to request `seq`: errno 0 is an acknowledgement.
    fn answer(seq: u32, errno: i32) -> Vec<u8> {
        let mut out = Vec::new();
        let len = u32::try_from(HEADER_LEN + 4 + HEADER_LEN).unwrap();
        let header = |len, kind, seq| Header {
            len,
            kind,
            flags: 0x100, // NLM_F_CAPPED: the request is not echoed
            seq,
            port: 0,
        };
        header(len, frame::NLMSG_ERROR, seq).write(&mut out);
        out.extend((-errno).to_ne_bytes());
        header(300, 0x13, seq).write(&mut out);
        out
    }

    fn batch_of(n: u8) -> Batch {
        let mut batch = Batch::new();
        for i in 0..n {
            batch.push(shunt(i)).unwrap();
        }
        batch
    }

    #[test]
    fn only_the_last_request_asks_for_an_ack() {
        let (bytes, _) = batch_of(3).start(10);
        let frames: Vec<_> = Frames::new(&bytes).map(Result::unwrap).collect();
        let seqs: Vec<_> = frames.iter().map(|(h, _)| h.seq).collect();
        assert_eq!(seqs, [10, 11, 12]);
        let acks: Vec<_> = frames.iter().map(|(h, _)| h.flags & 4 != 0).collect();
        assert_eq!(acks, [false, false, true]);
    }

    #[test]
    fn errors_before_the_last_answer_are_kept_by_position() {
        let (_, mut exchange) = batch_of(3).start(u32::MAX); // sequence numbers wrap
        let mut datagram = answer(u32::MAX, 17);
        datagram.extend(answer(7, 2)); // someone else's
        assert!(matches!(
            exchange.on_datagram(&datagram),
            BatchStep::Pending
        ));
        let BatchStep::Done(Ok(outcome)) = exchange.on_datagram(&answer(1, 0)) else {
            panic!("the last request's acknowledgement ends the batch")
        };
        let failed: Vec<_> = outcome
            .failed
            .iter()
            .map(|(n, e)| (*n, e.errno()))
            .collect();
        assert_eq!(failed, [(0, Some(17))]);
    }

    #[test]
    fn a_failing_last_request_also_ends_the_batch() {
        let (_, mut exchange) = batch_of(2).start(5);
        let BatchStep::Done(Ok(outcome)) = exchange.on_datagram(&answer(6, 1)) else {
            panic!()
        };
        assert_eq!(outcome.failed.len(), 1);
        assert_eq!(outcome.failed[0].0, 1);
    }

    #[test]
    fn garbage_ends_the_batch_with_an_error() {
        let (_, mut exchange) = batch_of(2).start(5);
        assert!(matches!(
            exchange.on_datagram(&[1, 2, 3]),
            BatchStep::Done(Err(Error::Malformed { .. }))
        ));
    }

    #[test]
    fn batches_are_bounded() {
        let mut batch = Batch::new();
        let mut pushed = 0;
        while batch.push(shunt(1)).is_ok() {
            pushed += 1;
        }
        assert_eq!(pushed, MAX_MESSAGES);
        let (bytes, _) = batch.start(0);
        assert!(bytes.len() <= MAX_BYTES);
        let split = Batch::split((0..300).map(|n| shunt(u8::try_from(n % 250).unwrap())));
        let lens: Vec<_> = split.iter().map(Batch::len).collect();
        assert_eq!(lens, [128, 128, 44]);
    }
}
