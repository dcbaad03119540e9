//! Addresses and routes oe installs for an internal address a peer assigned (RFC 7296 3.15):
//! the address on the loopback link, and a host route that makes traffic to that peer leave
//! from it; on a server, a host route towards an address it assigned a client.
//!
//! Everything here carries oe's mark, [`OE_PROTOCOL`], in `IFA_PROTO` (Linux 6.1) and
//! `rtm_protocol`: a dump finds what is ours ([`RouteRequest::owned`]), and a route delete names
//! the mark, so the kernel itself refuses to delete anyone else's route. An address carries a
//! valid lifetime and an IPv6 route an expiry (`RTA_EXPIRES`), renewed while the agent runs
//! (re-added with `NLM_F_REPLACE`): after a crash they lapse. An IPv4 route cannot expire, but
//! one whose preferred source is the lapsed address goes with it (`fib_sync_down_addr`).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
    AddressScope, CacheInfo,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;

use super::parse::{
    RtPayload, RTM_DELADDR, RTM_DELROUTE, RTM_GETADDR, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWROUTE,
};
use super::request::RouteRequest;
use crate::types::Family;
use crate::wire::ParseError;

/// oe's mark on the addresses (`IFA_PROTO`) and routes (`rtm_protocol`) it installs. Also the
/// routes' metric, so a replace only ever matches a route of ours.
pub const OE_PROTOCOL: u8 = 0x6f;

/// An address on a link, with the lifetime after which the kernel removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressSpec {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Seconds until the kernel removes it (valid and preferred lifetime); `None` for ever.
    pub valid_secs: Option<u32>,
}

impl AddressSpec {
    /// The loopback link's index in every network namespace.
    pub const LOOPBACK: u32 = 1;

    /// `addr` as a host address (/32 or /128) on the loopback link for `valid_secs`.
    pub fn on_loopback(addr: IpAddr, valid_secs: Option<u32>) -> Self {
        Self {
            ifindex: Self::LOOPBACK,
            addr,
            prefix_len: Family::of(&addr).max_prefix(),
            valid_secs,
        }
    }
}

/// A host route of oe's in the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    /// The destination host.
    pub dst: IpAddr,
    /// The next hop, if not on-link.
    pub gateway: Option<IpAddr>,
    /// The outgoing link.
    pub oif: Option<u32>,
    /// The source address new flows to `dst` get (`RTA_PREFSRC`).
    pub pref_src: Option<IpAddr>,
    /// IPv6 only: seconds until the kernel removes it (`RTA_EXPIRES`). Ignored for IPv4.
    pub expires_secs: Option<u32>,
}

impl RouteSpec {
    /// The same path as `via` (a route the kernel chose), for `dst`, preferring `pref_src`.
    pub fn like(dst: IpAddr, via: &super::Route, pref_src: Option<IpAddr>) -> Self {
        Self {
            dst,
            gateway: via.gateway,
            oif: via.oif,
            pref_src,
            expires_secs: None,
        }
    }
}

/// What a dump of oe's own entries found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assigned {
    pub addresses: Vec<AddressSpec>,
    pub routes: Vec<RouteSpec>,
}

fn family(addr: IpAddr) -> AddressFamily {
    match Family::of(&addr) {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn address_message(spec: &AddressSpec) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(spec.addr);
    msg.header.prefix_len = spec.prefix_len;
    msg.header.index = spec.ifindex;
    msg.header.scope = AddressScope::Universe;
    msg.header.flags = AddressHeaderFlags::Nodad;
    // No prefix route: a host address on the loopback link needs none, and one would
    // outlive an expired IPv6 address until the routing table's garbage collection.
    msg.attributes = vec![
        AddressAttribute::Local(spec.addr),
        AddressAttribute::Flags(AddressFlags::Nodad | AddressFlags::Noprefixroute),
    ];
    if spec.addr.is_ipv4() {
        msg.attributes.push(AddressAttribute::Address(spec.addr));
    }
    msg
}

fn route_message(spec: &RouteSpec) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header = RouteHeader {
        address_family: family(spec.dst),
        destination_prefix_length: Family::of(&spec.dst).max_prefix(),
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Other(OE_PROTOCOL),
        scope: match spec.gateway {
            Some(_) => RouteScope::Universe,
            None => RouteScope::Link,
        },
        kind: RouteType::Unicast,
        ..RouteHeader::default()
    };
    let attrs = &mut msg.attributes;
    attrs.push(RouteAttribute::Destination(RouteAddress::from(spec.dst)));
    attrs.push(RouteAttribute::Priority(u32::from(OE_PROTOCOL)));
    attrs.extend(
        spec.gateway
            .map(|g| RouteAttribute::Gateway(RouteAddress::from(g))),
    );
    attrs.extend(spec.oif.map(RouteAttribute::Oif));
    attrs.extend(
        spec.pref_src
            .map(|s| RouteAttribute::PrefSource(RouteAddress::from(s))),
    );
    if spec.dst.is_ipv6() {
        attrs.extend(spec.expires_secs.map(RouteAttribute::Expires));
    }
    msg
}

fn acked(_: &'static str, _: Vec<RtPayload>) -> Result<(), crate::Error> {
    Ok(())
}

impl RouteRequest<()> {
    /// `RTM_NEWADDR` (create, or replace: renews the lifetime of the address already there),
    /// marked as oe's.
    pub fn add_address(spec: &AddressSpec) -> Self {
        let mut msg = address_message(spec);
        let secs = spec.valid_secs.unwrap_or(u32::MAX);
        let mut lifetime = CacheInfo::default();
        lifetime.ifa_preferred = secs;
        lifetime.ifa_valid = secs;
        msg.attributes.push(AddressAttribute::CacheInfo(lifetime));
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::Other(
                OE_PROTOCOL,
            )));
        Self::new(
            "RTM_NEWADDR",
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK,
            &msg,
            acked,
        )
    }

    /// `RTM_DELADDR`. The kernel does not check the mark: check [`RouteRequest::owned`] first.
    pub fn delete_address(spec: &AddressSpec) -> Self {
        Self::new(
            "RTM_DELADDR",
            RTM_DELADDR,
            NLM_F_ACK,
            &address_message(spec),
            acked,
        )
    }

    /// `RTM_NEWROUTE` (create, or replace the route of ours with the same destination: only
    /// ours has oe's metric), marked as oe's.
    pub fn add_route(spec: &RouteSpec) -> Self {
        Self::new(
            "RTM_NEWROUTE",
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK,
            &route_message(spec),
            acked,
        )
    }

    /// `RTM_DELROUTE` of oe's host route to `dst`, naming oe's mark and metric: the kernel
    /// deletes only a route of ours, whatever its next hop.
    pub fn delete_route(dst: IpAddr) -> Self {
        let mut msg = route_message(&RouteSpec {
            dst,
            gateway: None,
            oif: None,
            pref_src: None,
            expires_secs: None,
        });
        // Any scope (iproute2 does the same).
        msg.header.scope = RouteScope::NoWhere;
        Self::new("RTM_DELROUTE", RTM_DELROUTE, NLM_F_ACK, &msg, acked)
    }
}

impl RouteRequest<Vec<AddressSpec>> {
    /// `RTM_GETADDR` dump of the addresses that carry oe's mark.
    pub fn owned_addresses() -> Self {
        Self::new(
            "RTM_GETADDR",
            RTM_GETADDR,
            NLM_F_DUMP,
            &AddressMessage::default(),
            |_, replies| {
                Ok(replies
                    .into_iter()
                    .filter_map(|p| match p {
                        RtPayload::OwnedAddress(a) => Some(a),
                        _ => None,
                    })
                    .collect())
            },
        )
        .parsed_by(parse_owned)
    }
}

impl RouteRequest<Vec<RouteSpec>> {
    /// `RTM_GETROUTE` dump of the routes that carry oe's mark.
    pub fn owned_routes() -> Self {
        Self::new(
            "RTM_GETROUTE",
            RTM_GETROUTE,
            NLM_F_DUMP,
            &RouteMessage::default(),
            |_, replies| {
                Ok(replies
                    .into_iter()
                    .filter_map(|p| match p {
                        RtPayload::OwnedRoute(r) => Some(r),
                        _ => None,
                    })
                    .collect())
            },
        )
        .parsed_by(parse_owned)
    }
}

/// Decodes dump entries into oe's own addresses and routes; anything else is `Other`.
pub(crate) fn parse_owned(kind: u16, body: &[u8]) -> Result<RtPayload, ParseError> {
    use netlink_packet_core::Parseable;
    let invalid = |what: &'static str| {
        move |e: netlink_packet_core::DecodeError| ParseError::Invalid {
            what,
            detail: e.to_string(),
        }
    };
    Ok(match kind {
        RTM_NEWADDR => {
            let msg = AddressMessage::parse(body).map_err(invalid("RTM_NEWADDR"))?;
            owned_address(&msg).map_or(RtPayload::Other, RtPayload::OwnedAddress)
        }
        RTM_NEWROUTE => {
            let msg = RouteMessage::parse(body).map_err(invalid("RTM_NEWROUTE"))?;
            owned_route(&msg).map_or(RtPayload::Other, RtPayload::OwnedRoute)
        }
        _ => RtPayload::Other,
    })
}

fn owned_address(msg: &AddressMessage) -> Option<AddressSpec> {
    let ours = msg
        .attributes
        .contains(&AddressAttribute::Protocol(AddressProtocol::Other(
            OE_PROTOCOL,
        )));
    let addr = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(a) => Some(*a),
        _ => None,
    });
    let addr = addr.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(a) => Some(*a),
            _ => None,
        })
    })?;
    let valid_secs = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::CacheInfo(c) if c.ifa_valid != u32::MAX => Some(c.ifa_valid),
        _ => None,
    });
    crate::types::Prefix::new(addr, msg.header.prefix_len).ok()?;
    ours.then_some(AddressSpec {
        ifindex: msg.header.index,
        addr,
        prefix_len: msg.header.prefix_len,
        valid_secs,
    })
}

fn owned_route(msg: &RouteMessage) -> Option<RouteSpec> {
    if msg.header.protocol != RouteProtocol::Other(OE_PROTOCOL) {
        return None;
    }
    let ip = |a: &RouteAddress| match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    };
    let (mut dst, mut gateway, mut oif, mut pref_src) = (None, None, None, None);
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = ip(a),
            RouteAttribute::Gateway(a) => gateway = ip(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::PrefSource(a) => pref_src = ip(a),
            _ => {}
        }
    }
    let dst = dst?;
    let host = msg.header.destination_prefix_length == Family::of(&dst).max_prefix();
    host.then_some(RouteSpec {
        dst,
        gateway,
        oif,
        pref_src,
        expires_secs: None,
    })
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;

    use super::*;

    fn body<T: Emitable>(msg: &T) -> Vec<u8> {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    #[test]
    fn our_entries_are_recognised_and_others_are_not() {
        let vip: IpAddr = "100.64.0.7".parse().unwrap();
        let spec = AddressSpec::on_loopback(vip, Some(60));
        let mut msg = address_message(&spec);
        let mut lifetime = CacheInfo::default();
        lifetime.ifa_valid = 60;
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::Other(
                OE_PROTOCOL,
            )));
        msg.attributes.push(AddressAttribute::CacheInfo(lifetime));
        match parse_owned(RTM_NEWADDR, &body(&msg)).unwrap() {
            RtPayload::OwnedAddress(a) => assert_eq!(a, spec),
            other => panic!("{other:?}"),
        }
        let foreign = address_message(&spec);
        assert!(matches!(
            parse_owned(RTM_NEWADDR, &body(&foreign)).unwrap(),
            RtPayload::Other
        ));
        let route = RouteSpec {
            dst: "192.0.2.20".parse().unwrap(),
            gateway: Some("10.0.0.1".parse().unwrap()),
            oif: Some(2),
            pref_src: Some(vip),
            expires_secs: None,
        };
        match parse_owned(RTM_NEWROUTE, &body(&route_message(&route))).unwrap() {
            RtPayload::OwnedRoute(r) => assert_eq!(r, route),
            other => panic!("{other:?}"),
        }
        let mut kernel_route = route_message(&route);
        kernel_route.header.protocol = RouteProtocol::Kernel;
        assert!(matches!(
            parse_owned(RTM_NEWROUTE, &body(&kernel_route)).unwrap(),
            RtPayload::Other
        ));
    }

    #[test]
    fn truncated_entries_are_errors_not_panics() {
        let vip: IpAddr = "fd00::7".parse().unwrap();
        let a = body(&address_message(&AddressSpec::on_loopback(vip, Some(9))));
        let r = body(&route_message(&RouteSpec {
            dst: vip,
            gateway: None,
            oif: Some(1),
            pref_src: None,
            expires_secs: Some(9),
        }));
        for (kind, bytes) in [(RTM_NEWADDR, &a), (RTM_NEWROUTE, &r)] {
            for cut in 0..bytes.len() {
                let _ = parse_owned(kind, &bytes[..cut]);
            }
        }
        assert!(parse_owned(RTM_NEWADDR, &a[..3]).is_err());
    }
}
