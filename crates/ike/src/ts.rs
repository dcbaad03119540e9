//! Host-to-host traffic selectors and narrowing (RFC 7296 2.9).
//!
//! A child SA ends up with one selector per side that one kernel policy pair can hold (the rule
//! stated on [`crate::ChildSa`]): a single host on each side, one IP protocol shared by both
//! sides (0 = any, and then every port), and on each side either every port or a single one.
//! As responder we narrow an offer to the first such pair it contains; as initiator we take an
//! answer only if it is such a pair within what we offered. Anything else is refused.

use std::net::IpAddr;

use crate::wire::TrafficSelector;

/// Every protocol and port of one host.
pub(crate) fn host_ts(addr: IpAddr) -> TrafficSelector {
    TrafficSelector::host(addr)
}

fn contains(ts: &TrafficSelector, addr: IpAddr) -> bool {
    match (ts.start, ts.end, addr) {
        (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
        (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
        _ => false,
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn at(s: &TrafficSelector, addr: IpAddr) -> TrafficSelector {
    TrafficSelector {
        start: addr,
        end: addr,
        ..*s
    }
}

fn all_ports(s: &TrafficSelector) -> bool {
    (s.start_port, s.end_port) == (0, u16::MAX)
}

/// A port range one kernel selector holds: every port, or one (XFRM selectors carry a port and
/// a mask, not a range).
fn holdable_ports(s: &TrafficSelector) -> bool {
    all_ports(s) || s.start_port == s.end_port
}

/// The IP protocol of traffic that matches both selectors: the same one, or one side's when the
/// other allows any (0).
fn common_protocol(a: u8, b: u8) -> Option<u8> {
    match (a, b) {
        (0, x) | (x, 0) => Some(x),
        (x, y) => (x == y).then_some(x),
    }
}

/// Normalizes a (TSi, TSr) pair to what one kernel policy pair holds: both sides get the common
/// protocol; `None` if there is none, or a port range cannot be held, or ports are restricted
/// with any protocol.
pub(crate) fn holdable(
    i: TrafficSelector,
    r: TrafficSelector,
) -> Option<(TrafficSelector, TrafficSelector)> {
    let proto = common_protocol(i.ip_proto, r.ip_proto)?;
    let ports_ok = holdable_ports(&i) && holdable_ports(&r);
    if !ports_ok || (proto == 0 && !(all_ports(&i) && all_ports(&r))) {
        return None;
    }
    let with = |s: TrafficSelector| TrafficSelector {
        ip_proto: proto,
        ..s
    };
    Some((with(i), with(r)))
}

/// Responder: one offered selector narrowed to `addr`, as (what we answer, what the kernel
/// gets). Across a NAT the peer names its untranslated address, which we answer with, while the
/// kernel gets `addr` (2.23.1).
fn narrow_one(
    s: &TrafficSelector,
    addr: IpAddr,
    nat: bool,
) -> Option<(TrafficSelector, TrafficSelector)> {
    if s.start_port > s.end_port {
        return None;
    }
    if contains(s, addr) {
        return Some((at(s, addr), at(s, addr)));
    }
    let single = nat && s.start == s.end && same_family(s.start, addr);
    single.then(|| (*s, at(s, addr)))
}

/// One side of a narrowed pair: (our answer, the kernel's view).
pub(crate) type Narrowed = (TrafficSelector, TrafficSelector);

/// Responder: narrows the offered TSi (the peer's side, `remote`) and TSr (ours, `local`) to the
/// widest pair that one kernel policy pair can hold; among equally wide pairs, the first in the
/// initiator's order. An initiator's first selectors name the packet that triggered it (2.9);
/// an SA for all traffic between the hosts, when also offered (strongSwan's trap offers both),
/// serves every later flow too. Each side's `bool` says whether a NAT translates that address.
pub(crate) fn narrow_pair(
    tsi: &[TrafficSelector],
    tsr: &[TrafficSelector],
    remote: (IpAddr, bool),
    local: (IpAddr, bool),
) -> Option<(Narrowed, Narrowed)> {
    let is: Vec<_> = tsi
        .iter()
        .filter_map(|s| narrow_one(s, remote.0, remote.1))
        .collect();
    let rs: Vec<_> = tsr
        .iter()
        .filter_map(|s| narrow_one(s, local.0, local.1))
        .collect();
    let pairs = is.iter().flat_map(|(reply_i, i)| {
        rs.iter().filter_map(move |(reply_r, r)| {
            let (i, r) = holdable(*i, *r)?;
            let proto = |s: &TrafficSelector| TrafficSelector {
                ip_proto: i.ip_proto,
                ..*s
            };
            Some(((proto(reply_i), i), (proto(reply_r), r)))
        })
    });
    pairs.fold(None, |best, pair| match best {
        Some(b) if width(&b) >= width(&pair) => Some(b),
        _ => Some(pair),
    })
}

/// How much traffic a narrowed pair carries: any protocol first, then the ports left open.
fn width(((_, i), (_, r)): &(Narrowed, Narrowed)) -> (bool, u32) {
    let ports = |s: &TrafficSelector| u32::from(s.end_port - s.start_port);
    (i.ip_proto == 0, ports(i) + ports(r))
}

/// `a` lies within `b` as to protocol and ports.
fn within(a: &TrafficSelector, b: &TrafficSelector) -> bool {
    (b.ip_proto == 0 || a.ip_proto == b.ip_proto)
        && b.start_port <= a.start_port
        && a.end_port <= b.end_port
}

/// Checks one side of the responder's answer for `addr` and gives our view of it: exactly one
/// single-host selector for `addr`, within what we offered. Across a NAT the peer names the
/// untranslated address, so any single host of the right family stands for `addr` (2.23.1).
fn accept_one(
    returned: &[TrafficSelector],
    offered: &TrafficSelector,
    addr: IpAddr,
    nat: bool,
) -> Option<TrafficSelector> {
    let [s] = returned else {
        return None;
    };
    let host = s.start == s.end && (s.start == addr || (nat && same_family(s.start, addr)));
    (host && within(s, offered)).then(|| at(s, addr))
}

/// Initiator: the responder's (TSi, TSr) answer to our `offered` pair, as our (local, remote)
/// selectors, if one kernel policy pair can hold it. `local` and `remote` carry whether a NAT
/// translates that address.
pub(crate) fn accept_pair(
    (tsi, tsr): (&[TrafficSelector], &[TrafficSelector]),
    offered: (&TrafficSelector, &TrafficSelector),
    local: (IpAddr, bool),
    remote: (IpAddr, bool),
) -> Option<(TrafficSelector, TrafficSelector)> {
    let i = accept_one(tsi, offered.0, local.0, local.1)?;
    let r = accept_one(tsr, offered.1, remote.0, remote.1)?;
    holdable(i, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(addr: &str, proto: u8, ports: (u16, u16)) -> TrafficSelector {
        TrafficSelector {
            ip_proto: proto,
            start_port: ports.0,
            end_port: ports.1,
            start: addr.parse().unwrap(),
            end: addr.parse().unwrap(),
        }
    }

    #[test]
    fn narrows_a_subnet_to_the_host() {
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let subnet = TrafficSelector {
            ip_proto: 17,
            start_port: 500,
            end_port: 500,
            start: "192.0.2.0".parse().unwrap(),
            end: "192.0.2.255".parse().unwrap(),
        };
        let ((reply, kernel), _) =
            narrow_pair(&[subnet], &[host_ts(b)], (a, false), (b, false)).expect("narrowed");
        assert_eq!(reply, kernel);
        assert_eq!((reply.start, reply.end, reply.ip_proto), (a, a, 17));
        let other = "198.51.100.1".parse().unwrap();
        assert!(narrow_pair(&[subnet], &[host_ts(b)], (other, false), (b, false)).is_none());
    }

    #[test]
    fn a_nat_answers_with_the_untranslated_address() {
        let (inside, outside): (IpAddr, IpAddr) =
            ("10.0.0.5".parse().unwrap(), "198.51.100.1".parse().unwrap());
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let ((reply, kernel), _) = narrow_pair(
            &[host_ts(inside)],
            &[host_ts(b)],
            (outside, true),
            (b, false),
        )
        .unwrap();
        assert_eq!((reply.start, kernel.start), (inside, outside));
        assert!(narrow_pair(
            &[host_ts(inside)],
            &[host_ts(b)],
            (outside, false),
            (b, false)
        )
        .is_none());
    }

    #[test]
    fn holdable_pairs() {
        let all = (0, u16::MAX);
        let (a, b) = ("192.0.2.1", "192.0.2.2");
        assert_eq!(
            holdable(ts(a, 0, all), ts(b, 6, (80, 80))),
            Some((ts(a, 6, all), ts(b, 6, (80, 80))))
        );
        assert_eq!(holdable(ts(a, 6, all), ts(b, 17, all)), None);
        assert_eq!(holdable(ts(a, 6, (1, 1023)), ts(b, 6, all)), None);
        assert_eq!(holdable(ts(a, 0, (80, 80)), ts(b, 0, all)), None);
        assert_eq!(
            holdable(ts(a, 0, (80, 80)), ts(b, 6, all)),
            Some((ts(a, 6, (80, 80)), ts(b, 6, all)))
        );
    }

    #[test]
    fn the_answer_must_lie_within_the_offer() {
        let all = (0, u16::MAX);
        let (a, b) = ("192.0.2.1", "192.0.2.2");
        let (la, lb) = (a.parse().unwrap(), b.parse().unwrap());
        let offer = (ts(a, 6, (80, 80)), ts(b, 6, all));
        let ok = [ts(a, 6, (80, 80))];
        let wider = [ts(a, 6, all)];
        let other_proto = [ts(a, 17, (80, 80))];
        let rb = [ts(b, 6, (443, 443))];
        let accept = |i: &[TrafficSelector]| {
            accept_pair((i, &rb), (&offer.0, &offer.1), (la, false), (lb, false))
        };
        assert_eq!(accept(&ok), Some((ok[0], rb[0])));
        assert_eq!(accept(&wider), None);
        assert_eq!(accept(&other_proto), None);
    }

    #[test]
    fn prefers_all_traffic_over_the_triggering_packets_ports() {
        // strongSwan's trap offers the packet first, then its configured host selector.
        let (a, b) = ("192.0.2.13", "192.0.2.30");
        let (la, lb): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
        let tsi = [ts(a, 17, (35948, 35948)), host_ts(la)];
        let tsr = [ts(b, 17, (5000, 5000)), host_ts(lb)];
        let ((_, i), (_, r)) = narrow_pair(&tsi, &tsr, (la, false), (lb, false)).unwrap();
        assert_eq!((i, r), (host_ts(la), host_ts(lb)));
        let ((_, i), _) = narrow_pair(&tsi[..1], &tsr[..1], (la, false), (lb, false)).unwrap();
        assert_eq!(i, tsi[0], "only the packet offered: narrowed to it");
    }
}
