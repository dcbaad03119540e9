//! Host-to-host traffic selectors and narrowing (RFC 7296 2.9).

use std::net::IpAddr;

use crate::wire::TrafficSelector;

/// All protocols and ports of one address.
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

/// Responder: narrows the peer's selectors to the one host we talk to, keeping the protocol and
/// port range of the widest selector that covers it (2.9: the responder may narrow to a subset).
/// An initiator's first selectors name the packet that triggered it (2.9); a host-to-host
/// SA for all traffic, when also offered, serves every later flow too, so it is preferred.
pub(crate) fn narrow(offered: &[TrafficSelector], addr: IpAddr) -> Option<TrafficSelector> {
    let width = |s: &TrafficSelector| (s.ip_proto == 0, s.end_port - s.start_port);
    let s = offered
        .iter()
        .filter(|s| contains(s, addr) && s.start_port <= s.end_port)
        .fold(None, |best: Option<&TrafficSelector>, s| match best {
            Some(b) if width(b) >= width(s) => Some(b),
            _ => Some(s),
        })?;
    Some(TrafficSelector {
        start: addr,
        end: addr,
        ..*s
    })
}

/// Initiator: the responder's selectors must be non-empty host selectors for `addr` (we offered
/// nothing wider).
pub(crate) fn within(returned: &[TrafficSelector], addr: IpAddr) -> bool {
    !returned.is_empty() && returned.iter().all(|s| s.start == addr && s.end == addr)
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Checks the selectors the peer returned for `addr` and gives our view of them. Across a NAT
/// (`nat`: the address is translated between us) the peer names the untranslated address, so any
/// single-host selector of the right family stands for `addr` (RFC 7296 2.23.1).
pub(crate) fn accept(
    returned: &[TrafficSelector],
    addr: IpAddr,
    nat: bool,
) -> Option<Vec<TrafficSelector>> {
    if within(returned, addr) {
        return Some(returned.to_vec());
    }
    let hosts = !returned.is_empty()
        && returned
            .iter()
            .all(|s| s.start == s.end && same_family(s.start, addr));
    (nat && hosts).then(|| {
        returned
            .iter()
            .map(|s| TrafficSelector {
                start: addr,
                end: addr,
                ..*s
            })
            .collect()
    })
}

/// Responder: narrows to `addr` as [`narrow`]; across a NAT the peer's selector names its
/// untranslated address, which we answer with (reply) while the kernel gets `addr` (2.23.1).
pub(crate) fn narrow_nat(
    offered: &[TrafficSelector],
    addr: IpAddr,
    nat: bool,
) -> Option<(TrafficSelector, TrafficSelector)> {
    if let Some(t) = narrow(offered, addr) {
        return Some((t, t));
    }
    let s = offered
        .iter()
        .find(|s| nat && s.start == s.end && same_family(s.start, addr))?;
    Some((
        *s,
        TrafficSelector {
            start: addr,
            end: addr,
            ..*s
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrows_a_subnet_to_the_host() {
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let subnet = TrafficSelector {
            ip_proto: 17,
            start_port: 500,
            end_port: 500,
            start: "192.0.2.0".parse().unwrap(),
            end: "192.0.2.255".parse().unwrap(),
        };
        let n = narrow(&[subnet], a).unwrap();
        assert_eq!((n.start, n.end, n.ip_proto, n.start_port), (a, a, 17, 500));
        assert!(narrow(&[subnet], "198.51.100.1".parse().unwrap()).is_none());
        assert!(narrow(&[subnet], "2001:db8::1".parse().unwrap()).is_none());
        assert!(within(&[n], a));
        assert!(!within(&[subnet], a));
        assert!(!within(&[], a));
    }

    #[test]
    fn prefers_all_traffic_over_the_triggering_packets_ports() {
        // strongSwan's trap offers the packet first, then its configured host selector.
        let a: IpAddr = "192.0.2.13".parse().unwrap();
        let packet = TrafficSelector {
            ip_proto: 17,
            start_port: 35948,
            end_port: 35948,
            start: a,
            end: a,
        };
        let host = TrafficSelector::host(a);
        assert_eq!(narrow(&[packet, host], a), Some(host));
        assert_eq!(
            narrow(&[packet], a),
            Some(packet),
            "only the packet: narrowed to it"
        );
    }
}
