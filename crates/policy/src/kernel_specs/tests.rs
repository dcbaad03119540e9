use std::net::IpAddr;
use std::time::Duration;

use oe_ike::{ChildKeys, ChildSa, Lifetime};
use zeroize::Zeroizing;

use super::*;

fn ts(addr: &str, proto: u8, ports: (u16, u16)) -> IkeTs {
    let addr: IpAddr = addr.parse().unwrap();
    IkeTs {
        ip_proto: proto,
        start_port: ports.0,
        end_port: ports.1,
        start: addr,
        end: addr,
    }
}

fn child(local_ts: Vec<IkeTs>, remote_ts: Vec<IkeTs>) -> ChildSa {
    let key = || Zeroizing::new(vec![7; 36]);
    ChildSa {
        inbound_spi: 0x1000,
        outbound_spi: 0x2000,
        local: "192.0.2.1".parse().unwrap(),
        remote: "192.0.2.2".parse().unwrap(),
        local_ts,
        remote_ts,
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
        keys: ChildKeys {
            encr_in: key(),
            integ_in: Zeroizing::new(vec![]),
            encr_out: key(),
            integ_out: Zeroizing::new(vec![]),
        },
        lifetime: Lifetime {
            soft: Duration::from_secs(3000),
            hard: Duration::from_secs(3600),
        },
        encap: None,
        mode: Mode::Transport,
        virtual_ip: None,
    }
}

/// RFC 4301 4.1: a tunnel's inner hosts (here an address the responder assigned us) are its
/// selectors; its ends are the SAs' and the policy templates' addresses. Transport mode keeps
/// refusing selectors that are not the two hosts.
#[test]
fn a_tunnel_carries_inner_hosts_between_its_ends() {
    let vip: IpAddr = "100.64.0.7".parse().unwrap();
    let server: IpAddr = "192.0.2.2".parse().unwrap();
    let mut c = child(
        vec![ts("100.64.0.7", 0, (0, u16::MAX))],
        vec![ts("192.0.2.2", 0, (0, u16::MAX))],
    );
    assert!(child_selector(&c).is_err(), "transport: not the two hosts");
    c.mode = Mode::Tunnel;
    let sel = child_selector(&c).unwrap();
    assert_eq!((sel.src().addr(), sel.dst().addr()), (vip, server));
    let reqid = oe_kernel::Ownership::default().reqid(9).unwrap();
    let p = tunnel_policies(sel, (c.local, c.remote), reqid, Some(60)).unwrap();
    let out = oe_kernel::PolicyAction::ProtectTunnel {
        reqid,
        src: c.local,
        dst: c.remote,
    };
    assert_eq!(p[0].action, out);
    assert_eq!(p[1].selector, sel.reversed());
    assert!(p.iter().all(|p| p.expires == Some(60)));
}

#[test]
fn host_to_host_selectors_become_the_hosts_selector() {
    let c = child(
        vec![ts("192.0.2.1", 0, (0, u16::MAX))],
        vec![ts("192.0.2.2", 0, (0, u16::MAX))],
    );
    let sel = child_selector(&c).unwrap();
    assert_eq!(sel, TrafficSelector::hosts(c.local, c.remote).unwrap());
}

#[test]
fn a_narrowed_protocol_and_port_is_installed_as_negotiated() {
    let c = child(
        vec![ts("192.0.2.1", 6, (0, u16::MAX))],
        vec![ts("192.0.2.2", 6, (443, 443))],
    );
    let sel = child_selector(&c).unwrap();
    assert_eq!(sel.proto(), Some(6));
    assert_eq!((sel.src_port(), sel.dst_port()), (None, Some(443)));
    let policies = host_policies(sel, Reqid(0x6f65_0500), None);
    assert_eq!(policies[0].selector, sel);
    assert_eq!(
        policies[1].selector.src_port(),
        Some(443),
        "inbound reversed"
    );
    let (inbound, outbound) = sa_specs(&c, Reqid(0x6f65_0500), sel).unwrap();
    assert_eq!(outbound.selector, Some(sel));
    assert_eq!(inbound.selector, Some(sel.reversed()));
}

#[test]
fn narrowing_the_kernel_cannot_express_is_refused_not_widened() {
    let range = child(
        vec![ts("192.0.2.1", 6, (0, u16::MAX))],
        vec![ts("192.0.2.2", 6, (1000, 2000))],
    );
    assert!(child_selector(&range).unwrap_err().contains("port range"));
    let two = child(
        vec![
            ts("192.0.2.1", 6, (0, u16::MAX)),
            ts("192.0.2.1", 17, (0, u16::MAX)),
        ],
        vec![ts("192.0.2.2", 0, (0, u16::MAX))],
    );
    assert!(child_selector(&two).is_err());
    let other_host = child(
        vec![ts("192.0.2.9", 0, (0, u16::MAX))],
        vec![ts("192.0.2.2", 0, (0, u16::MAX))],
    );
    assert!(child_selector(&other_host).is_err());
    let mixed = child(
        vec![ts("192.0.2.1", 6, (0, u16::MAX))],
        vec![ts("192.0.2.2", 17, (0, u16::MAX))],
    );
    assert!(child_selector(&mixed).is_err());
}
