//! Following the network: the host's addresses, links and routes through rtnetlink
//! (`netlink-packet-route` for the message layouts), in the same shape as the XFRM half:
//! typed requests built and answered without I/O ([`RouteRequest`]), events parsed by a
//! checked parser ([`parse_events`]), and a tokio client and event socket on top
//! ([`Rtnl`], [`NetEventSocket`], feature `tokio`).
//!
//! - **Events** ([`NetEvent`]): addresses added and removed, unicast routes added and
//!   removed (the default route among them), links changed (up, down, renamed) and removed.
//!   A malformed message is skipped, never a panic; a receive-buffer overflow is
//!   [`NetEvent::Lost`], after which the dumps ([`RouteRequest::addresses`],
//!   [`RouteRequest::links`], [`RouteRequest::routes`]) are the truth.
//! - **The source address towards a host** ([`RouteRequest::route_to`]): `RTM_GETROUTE`
//!   asks the kernel's routing decision itself, as `ip route get` does: the preferred
//!   source it names is the one a socket connected to that host would get.
//! - **Assigned addresses** ([`AddressSpec`], [`RouteSpec`]): an internal address a peer
//!   assigned, on the loopback link with a lifetime, and host routes that use it; marked as
//!   oe's (`IFA_PROTO`, `rtm_protocol`) so only ours are found and removed.

mod assigned;
#[cfg(feature = "tokio")]
mod client;
mod parse;
mod request;
mod types;

pub use assigned::{AddressSpec, Assigned, RouteSpec, OE_PROTOCOL};
#[cfg(feature = "tokio")]
pub use client::{NetEventSocket, Rtnl};
pub use parse::parse_events;
pub use request::{RouteExchange, RouteRequest};
pub use types::{Link, LocalAddress, NetEvent, Route};
