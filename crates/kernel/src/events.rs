//! The async event socket: ACQUIRE, EXPIRE, POLEXPIRE and MAPPING as they happen.

use std::collections::VecDeque;

use netlink_sys::{protocols::NETLINK_XFRM, Socket};
use tokio::io::unix::AsyncFd;

use crate::error::Error;
use crate::event::Event;
use crate::wire::parse_events;

/// The multicast groups an event socket joins (`XFRMNLGRP_*`).
///
/// POLEXPIRE is multicast on the EXPIRE group; the SA and POLICY groups carry
/// add/delete notifications this crate does not need.
const GROUPS: [u32; 3] = [
    netlink_packet_xfrm::XFRMNLGRP_ACQUIRE,
    netlink_packet_xfrm::XFRMNLGRP_EXPIRE,
    netlink_packet_xfrm::XFRMNLGRP_MAPPING,
];

/// Datagrams on the event socket are single events of a few hundred bytes.
const RECV_BUF: usize = 16 * 1024;
/// Socket receive buffer asked for, so a burst of ACQUIREs is not lost.
const RCVBUF: usize = 4 * 1024 * 1024;

/// A socket joined to the XFRM event groups of the current network namespace.
///
/// Malformed messages are logged and skipped (see [`EventSocket::malformed`]); a
/// receive-buffer overflow is reported as [`Event::Lost`].
#[derive(Debug)]
pub struct EventSocket {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
    queue: VecDeque<Event>,
    malformed: u64,
}

impl EventSocket {
    /// Opens the socket and joins the ACQUIRE, EXPIRE and MAPPING groups, with a 4 MiB
    /// receive buffer (the kernel caps it at `net.core.rmem_max` unless privileged).
    /// Must be called inside a tokio runtime with I/O enabled; needs `CAP_NET_ADMIN`.
    pub fn open() -> Result<Self, Error> {
        Self::with_receive_buffer(RCVBUF)
    }

    /// Like [`EventSocket::open`] with a receive buffer of `bytes`.
    pub fn with_receive_buffer(bytes: usize) -> Result<Self, Error> {
        let mut socket = Socket::new(NETLINK_XFRM)?;
        socket.bind_auto()?;
        for group in GROUPS {
            socket.add_membership(group)?;
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
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The next event.
    pub async fn next(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(event);
            }
            match self.recv().await {
                Ok(len) => self.absorb(len),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Event::Lost),
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// The next event, or `None` if none arrives within `wait`.
    pub async fn next_within(&mut self, wait: std::time::Duration) -> Result<Option<Event>, Error> {
        match tokio::time::timeout(wait, self.next()).await {
            Ok(event) => event.map(Some),
            Err(_) => Ok(None),
        }
    }

    fn absorb(&mut self, len: usize) {
        if len > self.buf.len() {
            self.malformed += 1;
            tracing::warn!(len, "skipping truncated XFRM event datagram");
            return;
        }
        let datagram = self.buf.get(..len).unwrap_or_default();
        for item in parse_events(datagram) {
            match item {
                Ok(Some(event)) => self.queue.push_back(event),
                Ok(None) => {}
                Err(e) => {
                    self.malformed += 1;
                    tracing::warn!(error = %e, "skipping malformed XFRM event");
                }
            }
        }
    }

    async fn recv(&mut self) -> std::io::Result<usize> {
        let Self { fd, buf, .. } = self;
        loop {
            let mut guard = fd.readable().await?;
            buf.clear();
            buf.reserve(RECV_BUF);
            if let Ok(got) = guard.try_io(|s| s.get_ref().recv(buf, libc::MSG_TRUNC)) {
                return got;
            }
        }
    }
}
