//! The tokio rtnetlink client and event socket.

use std::net::IpAddr;
use std::time::Duration;

use netlink_sys::protocols::NETLINK_ROUTE;

use super::parse::parse_events;
use super::request::RouteRequest;
use super::types::{Link, LocalAddress, NetEvent, Route};
use crate::error::Error;
use crate::netlink::{Events, GroupSocket, RequestSocket};
use crate::wire::ParseError;

/// `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV4_ROUTE`, `RTNLGRP_IPV6_IFADDR`,
/// `RTNLGRP_IPV6_ROUTE`.
const GROUPS: [u32; 5] = [1, 5, 7, 9, 11];
/// Receive buffer asked for: a link going down can take hundreds of routes with it.
const RCVBUF: usize = 1024 * 1024;

/// An rtnetlink client in the network namespace of the thread that opened it. Reads need
/// no privilege.
#[derive(Debug)]
pub struct Rtnl {
    socket: RequestSocket,
}

impl Rtnl {
    /// Opens a socket. Must be called inside a tokio runtime with I/O enabled.
    pub fn open() -> Result<Self, Error> {
        Ok(Self {
            socket: RequestSocket::open(NETLINK_ROUTE)?,
        })
    }

    /// Sends a request and waits for its answer.
    pub async fn execute<T>(&mut self, request: RouteRequest<T>) -> Result<T, Error> {
        let op = request.op();
        self.socket.request(op, |seq| request.start(seq)).await
    }

    /// Every IPv4 and IPv6 address of the namespace.
    pub async fn addresses(&mut self) -> Result<Vec<LocalAddress>, Error> {
        self.execute(RouteRequest::addresses()).await
    }

    /// Every link of the namespace.
    pub async fn links(&mut self) -> Result<Vec<Link>, Error> {
        self.execute(RouteRequest::links()).await
    }

    /// Every unicast route of every table.
    pub async fn routes(&mut self) -> Result<Vec<Route>, Error> {
        self.execute(RouteRequest::routes()).await
    }

    /// The kernel's route to `dst`, with the source address it would use.
    pub async fn route_to(&mut self, dst: IpAddr) -> Result<Route, Error> {
        self.execute(RouteRequest::route_to(dst)).await
    }

    /// The source address the kernel would use towards `dst`, if it names one.
    pub async fn source_for(&mut self, dst: IpAddr) -> Result<Option<IpAddr>, Error> {
        Ok(self.route_to(dst).await?.pref_src)
    }
}

impl Events for NetEvent {
    fn lost() -> Self {
        Self::Lost
    }

    fn parse(datagram: &[u8]) -> Vec<Result<Option<Self>, ParseError>> {
        parse_events(datagram)
    }
}

/// A socket joined to the link, address and route groups of the current namespace.
/// Malformed messages are logged and skipped; an overflow is [`NetEvent::Lost`].
#[derive(Debug)]
pub struct NetEventSocket(GroupSocket<NetEvent>);

impl NetEventSocket {
    /// Opens the socket with a 1 MiB receive buffer (capped at `net.core.rmem_max`).
    /// Must be called inside a tokio runtime with I/O enabled.
    pub fn open() -> Result<Self, Error> {
        Self::with_receive_buffer(RCVBUF)
    }

    /// Like [`NetEventSocket::open`] with a receive buffer of `bytes`.
    pub fn with_receive_buffer(bytes: usize) -> Result<Self, Error> {
        GroupSocket::open(NETLINK_ROUTE, &GROUPS, bytes).map(Self)
    }

    /// Malformed messages skipped so far.
    pub fn malformed(&self) -> u64 {
        self.0.malformed()
    }

    /// The next event.
    pub async fn next(&mut self) -> Result<NetEvent, Error> {
        self.0.next().await
    }

    /// The next event, or `None` if none arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<NetEvent>, Error> {
        self.0.next_within(wait).await
    }
}
