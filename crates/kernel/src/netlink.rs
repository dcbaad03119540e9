//! The two kinds of netlink socket the clients use, whatever the protocol (XFRM,
//! rtnetlink): a request socket (one request in flight, answers matched by sequence number)
//! and a group socket (multicast events, parsed by the protocol's checked parser).

use std::collections::VecDeque;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};
use tokio::io::unix::AsyncFd;
use zeroize::Zeroize;

use crate::error::Error;
use crate::wire::conversation::Step;
use crate::wire::ParseError;

/// Receive buffer: the kernel caps dump datagrams at 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// How long a request may take before [`Error::Timeout`]. Both XFRM and rtnetlink handle
/// requests synchronously inside `sendmsg`, so this only fires if something is badly wrong.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// A request socket of one netlink protocol, in the network namespace of the thread that
/// opened it.
#[derive(Debug)]
pub(crate) struct RequestSocket {
    fd: AsyncFd<Socket>,
    seq: u32,
    buf: Vec<u8>,
}

impl RequestSocket {
    /// Opens a socket of `protocol`. Must be called inside a tokio runtime with I/O enabled.
    pub(crate) fn open(protocol: isize) -> Result<Self, Error> {
        let mut socket = Socket::new(protocol)?;
        socket.bind_auto()?;
        // Extended acks give the kernel's reason; capped acks keep it from echoing
        // requests (and their keys) back. Both are optional (Linux 4.12+).
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        socket.set_non_blocking(true)?;
        Ok(Self {
            fd: crate::socket::register(socket)?,
            seq: initial_seq(),
            buf: Vec::new(),
        })
    }

    /// Reserves `count` sequence numbers; returns the first.
    pub(crate) fn next_seqs(&mut self, count: u32) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(count);
        first
    }

    /// Sends the request `start` encodes with the next sequence number and feeds the
    /// answers to its exchange until it is done.
    pub(crate) async fn request<T, B: AsRef<[u8]>, E: Answers<T>>(
        &mut self,
        op: &'static str,
        start: impl FnOnce(u32) -> (B, E),
    ) -> Result<T, Error> {
        let (bytes, mut exchange) = start(self.next_seqs(1));
        let answer = self.converse(op, bytes.as_ref(), |datagram| {
            match exchange.on_datagram(datagram) {
                Step::Done(result) => Some(result),
                Step::Pending => None,
            }
        });
        answer.await?
    }

    /// Sends `bytes`, then feeds received datagrams to `on` until it has an answer, for
    /// at most [`TIMEOUT`]. Cancel-safe: answers to an abandoned request carry its
    /// sequence number, which the next request's `on` ignores.
    pub(crate) async fn converse<R>(
        &mut self,
        op: &'static str,
        bytes: &[u8],
        on: impl FnMut(&[u8]) -> Option<R>,
    ) -> Result<R, Error> {
        tokio::time::timeout(TIMEOUT, self.converse_forever(bytes, on))
            .await
            .map_err(|_| Error::Timeout { op })?
    }

    async fn converse_forever<R>(
        &mut self,
        bytes: &[u8],
        mut on: impl FnMut(&[u8]) -> Option<R>,
    ) -> Result<R, Error> {
        self.send(bytes).await?;
        loop {
            let len = self.recv().await?;
            let datagram = self.buf.get_mut(..len).unwrap_or_default();
            let answer = on(datagram);
            // GETSA replies and SA dumps carry keys: leave none in the buffer.
            datagram.zeroize();
            if let Some(answer) = answer {
                return Ok(answer);
            }
        }
    }

    async fn send(&self, bytes: &[u8]) -> Result<(), Error> {
        let kernel = SocketAddr::new(0, 0);
        loop {
            let mut guard = self.fd.writable().await?;
            if let Ok(sent) = guard.try_io(|s| s.get_ref().send_to(bytes, &kernel, 0)) {
                sent?;
                return Ok(());
            }
        }
    }

    async fn recv(&mut self) -> Result<usize, Error> {
        let Self { fd, buf, .. } = self;
        let len = recv(fd, buf).await?;
        if len > buf.capacity() {
            return Err(Error::Io(std::io::Error::other(
                "netlink datagram truncated",
            )));
        }
        Ok(len)
    }
}

/// An exchange of one protocol: takes the datagrams that answer its request.
pub(crate) trait Answers<T> {
    fn on_datagram(&mut self, datagram: &[u8]) -> Step<T>;
}

impl<T> Answers<T> for crate::wire::request::Exchange<T> {
    fn on_datagram(&mut self, datagram: &[u8]) -> Step<T> {
        self.on_datagram(datagram)
    }
}

impl<T> Answers<T> for crate::route::RouteExchange<T> {
    fn on_datagram(&mut self, datagram: &[u8]) -> Step<T> {
        self.on_datagram(datagram)
    }
}

/// Receives one datagram into `buf` (cleared first); returns its full length, which may
/// exceed what fitted (`MSG_TRUNC`).
async fn recv(fd: &AsyncFd<Socket>, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        buf.clear();
        buf.reserve(RECV_BUF);
        if let Ok(got) = guard.try_io(|s| s.get_ref().recv(buf, libc::MSG_TRUNC)) {
            return got;
        }
    }
}

/// Start sequence numbers somewhere unpredictable-enough that a restarted agent does
/// not match a predecessor's stale replies (there are none on a fresh socket, but
/// this costs nothing).
fn initial_seq() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    nanos | 1
}

/// The events of one protocol, as a group socket delivers them.
pub(crate) trait Events: Sized {
    /// The event that says events were lost (the socket's receive buffer overflowed).
    fn lost() -> Self;
    /// Parses one datagram: an item per message, `Ok(None)` for messages that are no
    /// event of ours.
    fn parse(datagram: &[u8]) -> Vec<Result<Option<Self>, ParseError>>;
}

/// A socket joined to multicast groups of one protocol.
#[derive(Debug)]
pub(crate) struct GroupSocket<E> {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
    queue: VecDeque<E>,
    malformed: u64,
}

impl<E: Events> GroupSocket<E> {
    /// Opens a socket of `protocol` joined to `groups`, with a receive buffer of `bytes`
    /// (the kernel caps it at `net.core.rmem_max`).
    pub(crate) fn open(protocol: isize, groups: &[u32], bytes: usize) -> Result<Self, Error> {
        let mut socket = Socket::new(protocol)?;
        socket.bind_auto()?;
        for group in groups {
            socket.add_membership(*group)?;
        }
        let _ = socket.set_rx_buf_sz(bytes);
        socket.set_non_blocking(true)?;
        Ok(Self {
            fd: crate::socket::register(socket)?,
            buf: Vec::new(),
            queue: VecDeque::new(),
            malformed: 0,
        })
    }

    /// Malformed messages skipped so far.
    pub(crate) fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The next event; a receive-buffer overflow is [`Events::lost`].
    pub(crate) async fn next(&mut self) -> Result<E, Error> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(event);
            }
            match recv(&self.fd, &mut self.buf).await {
                Ok(len) => self.absorb(len),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(E::lost()),
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// The next event, or `None` if none arrives within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Result<Option<E>, Error> {
        match tokio::time::timeout(wait, self.next()).await {
            Ok(event) => event.map(Some),
            Err(_) => Ok(None),
        }
    }

    fn absorb(&mut self, len: usize) {
        if len > self.buf.len() {
            self.malformed += 1;
            tracing::warn!(len, "skipping truncated netlink event datagram");
            return;
        }
        let datagram = self.buf.get(..len).unwrap_or_default();
        for item in E::parse(datagram) {
            match item {
                Ok(Some(event)) => self.queue.push_back(event),
                Ok(None) => {}
                Err(e) => {
                    self.malformed += 1;
                    tracing::warn!(error = %e, "skipping malformed netlink event");
                }
            }
        }
    }
}
