//! The async event socket: ACQUIRE, EXPIRE, POLEXPIRE and MAPPING as they happen.

use netlink_sys::protocols::NETLINK_XFRM;

use crate::error::Error;
use crate::event::Event;
use crate::netlink::{Events, GroupSocket};
use crate::wire::{parse_events, ParseError};

/// The multicast groups an event socket joins (`XFRMNLGRP_*`).
///
/// POLEXPIRE is multicast on the EXPIRE group; the SA and POLICY groups carry
/// add/delete notifications this crate does not need.
const GROUPS: [u32; 3] = [
    netlink_packet_xfrm::XFRMNLGRP_ACQUIRE,
    netlink_packet_xfrm::XFRMNLGRP_EXPIRE,
    netlink_packet_xfrm::XFRMNLGRP_MAPPING,
];

/// Socket receive buffer asked for, so a burst of ACQUIREs is not lost.
const RCVBUF: usize = 4 * 1024 * 1024;

impl Events for Event {
    fn lost() -> Self {
        Self::Lost
    }

    fn parse(datagram: &[u8]) -> Vec<Result<Option<Self>, ParseError>> {
        parse_events(datagram)
    }
}

/// A socket joined to the XFRM event groups of the current network namespace.
///
/// Malformed messages are logged and skipped (see [`EventSocket::malformed`]); a
/// receive-buffer overflow is reported as [`Event::Lost`].
#[derive(Debug)]
pub struct EventSocket(GroupSocket<Event>);

impl EventSocket {
    /// Opens the socket and joins the ACQUIRE, EXPIRE and MAPPING groups, with a 4 MiB
    /// receive buffer (the kernel caps it at `net.core.rmem_max` unless privileged).
    /// Must be called inside a tokio runtime with I/O enabled; needs `CAP_NET_ADMIN`.
    pub fn open() -> Result<Self, Error> {
        Self::with_receive_buffer(RCVBUF)
    }

    /// Like [`EventSocket::open`] with a receive buffer of `bytes`.
    pub fn with_receive_buffer(bytes: usize) -> Result<Self, Error> {
        GroupSocket::open(NETLINK_XFRM, &GROUPS, bytes).map(Self)
    }

    /// Malformed messages skipped so far.
    pub fn malformed(&self) -> u64 {
        self.0.malformed()
    }

    /// The next event.
    pub async fn next(&mut self) -> Result<Event, Error> {
        self.0.next().await
    }

    /// The next event, or `None` if none arrives within `wait`.
    pub async fn next_within(&mut self, wait: std::time::Duration) -> Result<Option<Event>, Error> {
        self.0.next_within(wait).await
    }
}
