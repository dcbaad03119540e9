//! rtnetlink messages from the kernel, checked, then decoded by `netlink-packet-route`,
//! then turned into this crate's types. Links are read from their header and name only:
//! the dozens of other link attributes (statistics, per-driver data) are never parsed.

use std::net::IpAddr;

use netlink_packet_core::{DecodeError, NlasIterator, Parseable};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkFlags, LinkHeader};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteType,
};
use netlink_packet_route::AddressFamily;

use super::types::{Link, LocalAddress, NetEvent, Route};
use crate::types::Prefix;
use crate::wire::frame::Frames;
use crate::wire::ParseError;

pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_DELROUTE: u16 = 25;
pub(crate) const RTM_GETROUTE: u16 = 26;
/// `IFLA_IFNAME`.
const IFLA_IFNAME: u16 = 3;
/// `sizeof(struct ifinfomsg)`.
const IFINFOMSG_LEN: usize = 16;
/// Longest interface name (`IFNAMSIZ` with its NUL).
const IFNAMSIZ: usize = 16;

/// A decoded rtnetlink payload.
#[derive(Debug)]
pub(crate) enum RtPayload {
    Address(LocalAddress),
    Link(Link),
    /// A route, and whether it is a unicast route the events report (not local,
    /// broadcast, multicast, or a cached clone).
    Route(Route, bool),
    /// An address carrying oe's mark (dumps of [`super::assigned`] only).
    OwnedAddress(super::assigned::AddressSpec),
    /// A route carrying oe's mark (dumps of [`super::assigned`] only).
    OwnedRoute(super::assigned::RouteSpec),
    /// A message type, or address family, this crate does not decode.
    Other,
}

/// Decodes the payload of an rtnetlink message of type `kind`.
pub(crate) fn parse_payload(kind: u16, body: &[u8]) -> Result<RtPayload, ParseError> {
    Ok(match kind {
        RTM_NEWADDR | RTM_DELADDR => address(body)?.map_or(RtPayload::Other, RtPayload::Address),
        RTM_NEWLINK | RTM_DELLINK => RtPayload::Link(link(body)?),
        RTM_NEWROUTE | RTM_DELROUTE => route(body)?.map_or(RtPayload::Other, |(r, unicast)| {
            RtPayload::Route(r, unicast)
        }),
        _ => RtPayload::Other,
    })
}

/// Parses one netlink datagram received on an rtnetlink event socket into events.
///
/// Each message yields one item: `Ok(Some(event))`, `Ok(None)` for a message that is not
/// an event this crate reports, or `Err` for a malformed message (framing errors end the
/// datagram). This is the function the `route_event` fuzz target drives.
pub fn parse_events(datagram: &[u8]) -> Vec<Result<Option<NetEvent>, ParseError>> {
    Frames::new(datagram)
        .map(|item| {
            let (header, body) = item?;
            Ok(match (header.kind, parse_payload(header.kind, body)?) {
                (RTM_NEWADDR, RtPayload::Address(a)) => Some(NetEvent::AddressAdded(a)),
                (RTM_DELADDR, RtPayload::Address(a)) => Some(NetEvent::AddressRemoved(a)),
                (RTM_NEWROUTE, RtPayload::Route(r, true)) => Some(NetEvent::RouteAdded(r)),
                (RTM_DELROUTE, RtPayload::Route(r, true)) => Some(NetEvent::RouteRemoved(r)),
                (RTM_NEWLINK, RtPayload::Link(l)) => Some(NetEvent::LinkChanged(l)),
                (RTM_DELLINK, RtPayload::Link(l)) => Some(NetEvent::LinkRemoved(l)),
                _ => None,
            })
        })
        .collect()
}

fn invalid(what: &'static str) -> impl Fn(DecodeError) -> ParseError {
    move |e| ParseError::Invalid {
        what,
        detail: e.to_string(),
    }
}

fn ip_family(family: AddressFamily) -> bool {
    matches!(family, AddressFamily::Inet | AddressFamily::Inet6)
}

/// An address, or `None` for a family other than IPv4 and IPv6.
fn address(body: &[u8]) -> Result<Option<LocalAddress>, ParseError> {
    const WHAT: &str = "RTM_NEWADDR";
    let msg = AddressMessage::parse(body).map_err(invalid(WHAT))?;
    if !ip_family(msg.header.family) {
        return Ok(None);
    }
    let mut local = None;
    let mut peer = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => peer = Some(*a),
            AddressAttribute::Flags(f) => flags |= *f,
            _ => {}
        }
    }
    let addr = local.or(peer).ok_or_else(|| ParseError::Invalid {
        what: WHAT,
        detail: "no address".into(),
    })?;
    check_prefix(WHAT, addr, msg.header.prefix_len)?;
    Ok(Some(LocalAddress {
        ifindex: msg.header.index,
        addr,
        prefix_len: msg.header.prefix_len,
        scoped: msg.header.scope != AddressScope::Universe,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
        deprecated: flags.contains(AddressFlags::Deprecated),
    }))
}

fn check_prefix(what: &'static str, addr: IpAddr, len: u8) -> Result<Prefix, ParseError> {
    Prefix::new(addr, len).map_err(|e| ParseError::Invalid {
        what,
        detail: e.to_string(),
    })
}

fn link(body: &[u8]) -> Result<Link, ParseError> {
    const WHAT: &str = "RTM_NEWLINK";
    let header = LinkHeader::parse(body).map_err(invalid(WHAT))?;
    let attrs = body.get(IFINFOMSG_LEN..);
    let mut name = None;
    for nla in NlasIterator::new(attrs.unwrap_or_default()) {
        let nla = nla.map_err(invalid(WHAT))?;
        if nla.kind() == IFLA_IFNAME {
            name = Some(ifname(nla.value()));
        }
    }
    Ok(Link {
        ifindex: header.index,
        name,
        up: header.flags.contains(LinkFlags::Up),
        running: header.flags.contains(LinkFlags::Running),
        loopback: header.flags.contains(LinkFlags::Loopback),
    })
}

/// A NUL-terminated interface name, at most `IFNAMSIZ` bytes.
fn ifname(raw: &[u8]) -> String {
    let raw = raw.get(..IFNAMSIZ).unwrap_or(raw);
    let text = raw.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

/// A route and whether the events report it, or `None` for a family other than IPv4
/// and IPv6.
fn route(body: &[u8]) -> Result<Option<(Route, bool)>, ParseError> {
    const WHAT: &str = "RTM_NEWROUTE";
    let msg = RouteMessage::parse(body).map_err(invalid(WHAT))?;
    let h = &msg.header;
    let unspecified = match h.address_family {
        AddressFamily::Inet => IpAddr::from([0u8; 4]),
        AddressFamily::Inet6 => IpAddr::from([0u8; 16]),
        _ => return Ok(None),
    };
    let mut route = Route {
        dst: check_prefix(WHAT, unspecified, h.destination_prefix_length)?,
        gateway: None,
        oif: None,
        pref_src: None,
        table: u32::from(h.table),
        metric: 0,
    };
    for attr in &msg.attributes {
        apply_route_attr(&mut route, attr, h.destination_prefix_length)?;
    }
    let unicast = h.kind == RouteType::Unicast && !h.flags.contains(RouteFlags::Cloned);
    Ok(Some((route, unicast)))
}

fn apply_route_attr(route: &mut Route, attr: &RouteAttribute, len: u8) -> Result<(), ParseError> {
    const WHAT: &str = "RTM_NEWROUTE";
    match attr {
        RouteAttribute::Destination(a) => {
            if let Some(addr) = ip_of(a) {
                route.dst = check_prefix(WHAT, addr, len)?;
            }
        }
        RouteAttribute::Gateway(a) => route.gateway = ip_of(a),
        RouteAttribute::PrefSource(a) => route.pref_src = ip_of(a),
        RouteAttribute::Oif(i) => route.oif = Some(*i),
        RouteAttribute::Table(t) => route.table = *t,
        RouteAttribute::Priority(p) => route.metric = *p,
        _ => {}
    }
    Ok(())
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;
    use netlink_packet_route::address::AddressHeaderFlags;
    use netlink_packet_route::route::RouteHeader;

    use super::*;
    use crate::wire::frame::{Header, HEADER_LEN};

    fn frame(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Header {
            len: u32::try_from(HEADER_LEN + payload.len()).unwrap(),
            kind,
            flags: 0,
            seq: 0,
            port: 0,
        }
        .write(&mut out);
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn emit(msg: &impl Emitable) -> Vec<u8> {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    fn address_message(addr: IpAddr, len: u8, tentative: bool) -> Vec<u8> {
        let mut msg = AddressMessage::default();
        msg.header.family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        msg.header.prefix_len = len;
        msg.header.index = 7;
        if tentative {
            msg.header.flags = AddressHeaderFlags::Tentative;
        }
        msg.attributes = vec![AddressAttribute::Address(addr)];
        emit(&msg)
    }

    fn default_route(gateway: IpAddr, oif: u32) -> Vec<u8> {
        let mut msg = RouteMessage::default();
        msg.header = RouteHeader {
            address_family: AddressFamily::Inet,
            table: 254,
            kind: RouteType::Unicast,
            ..RouteHeader::default()
        };
        msg.attributes = vec![
            RouteAttribute::Gateway(RouteAddress::from(gateway)),
            RouteAttribute::Oif(oif),
            RouteAttribute::Priority(100),
        ];
        emit(&msg)
    }

    #[test]
    fn addresses_routes_and_links_become_typed_events() {
        let v6 = "2001:db8::9".parse().unwrap();
        let mut datagram = frame(RTM_NEWADDR, &address_message(v6, 64, true));
        datagram.extend(frame(
            RTM_DELROUTE,
            &default_route("192.0.2.254".parse().unwrap(), 3),
        ));
        let mut link = vec![0u8; IFINFOMSG_LEN];
        link[4..8].copy_from_slice(&9u32.to_ne_bytes()); // ifindex
        link[8..12].copy_from_slice(&(1u32 | 0x40).to_ne_bytes()); // IFF_UP | IFF_RUNNING
        link.extend(8u16.to_ne_bytes());
        link.extend(IFLA_IFNAME.to_ne_bytes());
        link.extend(b"eth0");
        datagram.extend(frame(RTM_NEWLINK, &link));
        let events: Vec<_> = parse_events(&datagram)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let [Some(NetEvent::AddressAdded(a)), Some(NetEvent::RouteRemoved(r)), Some(NetEvent::LinkChanged(l))] =
            events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!((a.addr, a.prefix_len, a.ifindex), (v6, 64, 7));
        assert!(a.tentative && !a.usable());
        assert!(r.is_default());
        assert_eq!(
            (r.gateway, r.oif, r.table, r.metric),
            (Some("192.0.2.254".parse().unwrap()), Some(3), 254, 100)
        );
        assert_eq!(
            (l.ifindex, l.name.as_deref(), l.up, l.running),
            (9, Some("eth0"), true, true)
        );
    }

    #[test]
    fn routes_the_events_do_not_report_are_skipped() {
        let mut local = RouteMessage::default();
        local.header.address_family = AddressFamily::Inet;
        local.header.kind = RouteType::Local;
        assert_eq!(
            parse_events(&frame(RTM_NEWROUTE, &emit(&local))),
            [Ok(None)]
        );
        let mut mpls = RouteMessage::default();
        mpls.header.address_family = AddressFamily::Mpls;
        mpls.header.kind = RouteType::Unicast;
        assert_eq!(parse_events(&frame(RTM_NEWROUTE, &emit(&mpls))), [Ok(None)]);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        // Every truncation of each message, and lies in the fields.
        let v4 = "192.0.2.9".parse().unwrap();
        let bodies = [
            (RTM_NEWADDR, address_message(v4, 24, false)),
            (RTM_NEWROUTE, default_route(v4, 1)),
            (RTM_NEWLINK, vec![0u8; IFINFOMSG_LEN]),
        ];
        for (kind, body) in &bodies {
            for cut in 0..body.len() {
                let _ = parse_payload(*kind, &body[..cut]);
            }
        }
        assert!(parse_payload(RTM_NEWADDR, &[2]).is_err());
        // An IPv4 address with a /33 prefix.
        assert!(parse_payload(RTM_NEWADDR, &address_message(v4, 33, false)).is_err());
        // An address message without an address.
        let mut empty = AddressMessage::default();
        empty.header.family = AddressFamily::Inet;
        assert!(parse_payload(RTM_NEWADDR, &emit(&empty)).is_err());
        // A link attribute whose length runs past the message.
        let mut link = vec![0u8; IFINFOMSG_LEN];
        link.extend(200u16.to_ne_bytes());
        link.extend(IFLA_IFNAME.to_ne_bytes());
        assert!(parse_payload(RTM_NEWLINK, &link).is_err());
    }
}
