//! What rtnetlink reports, as this crate's types.

use std::net::IpAddr;

use crate::types::Prefix;

/// An address of this host (`struct ifaddrmsg` and its attributes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalAddress {
    /// The interface it is on.
    pub ifindex: u32,
    /// The address (`IFA_LOCAL`, or `IFA_ADDRESS` where there is no `IFA_LOCAL`).
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Host or link scope (loopback, `fe80::/10`) rather than global.
    pub scoped: bool,
    /// IPv6 duplicate address detection has not finished (`IFA_F_TENTATIVE`): packets
    /// cannot use it as their source yet.
    pub tentative: bool,
    /// Duplicate address detection failed (`IFA_F_DADFAILED`).
    pub dad_failed: bool,
    /// Deprecated (`IFA_F_DEPRECATED`): still valid, not chosen for new connections.
    pub deprecated: bool,
}

impl LocalAddress {
    /// Whether new flows may start from it: global, not tentative, not failed, not
    /// deprecated.
    pub fn usable(&self) -> bool {
        !self.scoped && !self.tentative && !self.dad_failed && !self.deprecated
    }
}

/// A network interface (`struct ifinfomsg` and its attributes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Name, if the kernel sent one.
    pub name: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up: carrier present and running (`IFF_RUNNING` / `IFF_LOWER_UP`).
    pub running: bool,
    /// The loopback interface.
    pub loopback: bool,
}

/// A unicast route (`struct rtmsg` and its attributes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination prefix (`/0` for a default route).
    pub dst: Prefix,
    /// Next hop, if not on-link.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface.
    pub oif: Option<u32>,
    /// Preferred source address (`RTA_PREFSRC`): for an answer to
    /// [`super::RouteRequest::route_to`], the source the kernel would use.
    pub pref_src: Option<IpAddr>,
    /// Routing table (254 = main).
    pub table: u32,
    /// Metric (`RTA_PRIORITY`), 0 if none.
    pub metric: u32,
}

impl Route {
    /// The main routing table's id.
    pub const MAIN_TABLE: u32 = 254;

    /// Whether this is a default route (`0.0.0.0/0` or `::/0`).
    pub fn is_default(&self) -> bool {
        self.dst.is_empty()
    }
}

/// A typed rtnetlink event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetEvent {
    /// An address was added (or changed: flags such as tentative).
    AddressAdded(LocalAddress),
    /// An address was removed.
    AddressRemoved(LocalAddress),
    /// A unicast route was added or replaced.
    RouteAdded(Route),
    /// A unicast route was removed.
    RouteRemoved(Route),
    /// A link was added or changed (up, down, carrier, name).
    LinkChanged(Link),
    /// A link was removed.
    LinkRemoved(Link),
    /// The socket's receive buffer overflowed: events were lost; dump again.
    Lost,
}
