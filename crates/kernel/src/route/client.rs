//! The tokio rtnetlink client and event socket.

use std::net::IpAddr;
use std::time::Duration;

use netlink_sys::protocols::NETLINK_ROUTE;

use super::assigned::{AddressSpec, Assigned, RouteSpec};
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

    /// Adds an address marked as oe's, or renews the lifetime of the one already there.
    pub async fn add_address(&mut self, spec: &AddressSpec) -> Result<(), Error> {
        self.execute(RouteRequest::add_address(spec)).await
    }

    /// Deletes an address of oe's; one without oe's mark is left alone
    /// ([`Error::Foreign`]), one that is gone already is not an error.
    pub async fn delete_address(&mut self, spec: &AddressSpec) -> Result<(), Error> {
        let found = self.owned().await?;
        if found.addresses.iter().any(|a| same_address(a, spec)) {
            return match self.execute(RouteRequest::delete_address(spec)).await {
                Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(()),
                other => other,
            };
        }
        let present = self.addresses().await?;
        if present.iter().any(|a| a.addr == spec.addr) {
            return Err(Error::Foreign {
                entry: format!("address {}", spec.addr),
            });
        }
        Ok(())
    }

    /// Adds (or replaces) oe's host route to `spec.dst`.
    pub async fn add_route(&mut self, spec: &RouteSpec) -> Result<(), Error> {
        self.execute(RouteRequest::add_route(spec)).await
    }

    /// Deletes oe's host route to `dst` (the kernel matches oe's mark); one that is gone
    /// already is not an error.
    pub async fn delete_route(&mut self, dst: IpAddr) -> Result<(), Error> {
        match self.execute(RouteRequest::delete_route(dst)).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// The addresses and routes that carry oe's mark.
    pub async fn owned(&mut self) -> Result<Assigned, Error> {
        Ok(Assigned {
            addresses: self.execute(RouteRequest::owned_addresses()).await?,
            routes: self.execute(RouteRequest::owned_routes()).await?,
        })
    }

    /// Removes every address and route that carries oe's mark (routes first); returns what
    /// was removed.
    pub async fn flush_owned(&mut self) -> Result<Assigned, Error> {
        let owned = self.owned().await?;
        for r in &owned.routes {
            self.delete_route(r.dst).await?;
        }
        for a in &owned.addresses {
            match self.execute(RouteRequest::delete_address(a)).await {
                Err(e) if e.errno() != Some(libc::EADDRNOTAVAIL) => return Err(e),
                _ => {}
            }
        }
        Ok(owned)
    }
}

/// The same address on the same link (lifetimes aside).
fn same_address(a: &AddressSpec, b: &AddressSpec) -> bool {
    (a.ifindex, a.addr, a.prefix_len) == (b.ifindex, b.addr, b.prefix_len)
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
