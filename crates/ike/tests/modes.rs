//! Child SA modes (RFC 7296 1.3.1), internal addresses (3.15) and NAT traversal that lasts
//! (RFC 3948 keepalives, a rebinding NAT followed, 2.23), between two in-memory peers.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::IpAddr;
use std::time::Duration;

use oe_ike::wire::Identity;
use oe_ike::{AddressRequest, Event, LocalAuth, Mode, PeerAuth};
use util::*;

fn classical(name: &str) -> oe_ike::Config {
    let mut c = config(name, Some(&format!("ed25519_{name}")));
    c.additional_ke = oe_ike::AdditionalKe::off();
    c
}

fn run(p: &mut Pair) {
    p.connect();
    p.drive();
    assert!(p.a.established(), "A: {:?}", p.a.events);
    assert!(p.b.established(), "B: {:?}", p.b.events);
}

fn vip() -> IpAddr {
    "100.64.0.7".parse().unwrap()
}

#[test]
fn the_initiator_accepts_tunnel_mode_when_the_responder_insists() {
    let mut b = classical("b");
    b.transport_mode = false; // Libreswan's `type=tunnel`
    let mut p = Pair::new(classical("a"), b);
    run(&mut p);
    let (ca, cb) = (p.a.children(), p.b.children());
    assert_eq!((ca.len(), cb.len()), (1, 1), "A: {:?}", p.a.events);
    assert_paired(ca[0], cb[0]);
    assert_eq!((ca[0].mode, cb[0].mode), (Mode::Tunnel, Mode::Tunnel));
    // Still the two hosts.
    assert_eq!(ca[0].local_ts[0].start, p.a.addr.ip());
    assert_eq!(ca[0].remote_ts[0].start, p.b.addr.ip());
}

#[test]
fn the_responder_accepts_either_mode() {
    let mut p = Pair::new(classical("a"), classical("b"));
    run(&mut p);
    assert_eq!(p.b.children()[0].mode, Mode::Transport);
    let mut a = classical("a");
    a.transport_mode = false;
    let mut p = Pair::new(a, classical("b"));
    run(&mut p);
    assert_eq!(p.a.children()[0].mode, Mode::Tunnel);
    assert_paired(p.a.children()[0], p.b.children()[0]);
}

#[test]
fn a_rekeyed_child_keeps_its_mode() {
    let mut b = classical("b");
    b.transport_mode = false;
    let mut p = Pair::new(classical("a"), b);
    run(&mut p);
    let (h, spi) = (p.a.events[0].0, p.a.children()[0].inbound_spi);
    p.a.ep.rekey_child(p.now, h, spi);
    p.drive_now();
    let ca = p.a.children();
    assert_eq!(ca.len(), 2, "rekeyed: {:?}", p.a.events);
    assert_eq!(ca[1].mode, Mode::Tunnel);
    assert_paired(ca[1], p.b.children()[1]);
}

#[test]
fn a_client_behind_a_nat_asks_for_an_address_and_uses_it() {
    let mut a = config("a", None);
    a.request_address = AddressRequest::BehindNat;
    let mut b = classical("b");
    b.accept_null_peers = true;
    let mut p = Pair::new(a, b);
    p.b.lease = Some(vip());
    p.wire = Wire::Nat;
    run(&mut p);
    let (ca, cb) = (p.a.children()[0], p.b.children()[0]);
    assert_paired_ignoring_addresses(ca, cb);
    assert_eq!(ca.virtual_ip, Some(vip()));
    assert_eq!((ca.mode, cb.mode), (Mode::Tunnel, Mode::Tunnel));
    assert_eq!(
        ca.local_ts[0].start,
        vip(),
        "our side is the assigned address"
    );
    assert_eq!(
        cb.remote_ts[0].start,
        vip(),
        "the server's view of the client"
    );
    assert_eq!(cb.remote_ts[0].end, vip());
    assert_eq!(ca.remote_ts[0].start, p.b.addr.ip());
    assert_eq!(
        p.b.count(|e| matches!(e, Event::NeedAddress { v6: false })),
        1
    );
}

#[test]
fn without_a_nat_the_client_asks_for_nothing() {
    let mut a = config("a", None);
    a.request_address = AddressRequest::BehindNat;
    let mut b = classical("b");
    b.accept_null_peers = true;
    let mut p = Pair::new(a, b);
    p.b.lease = Some(vip());
    run(&mut p);
    assert_eq!(p.b.count(|e| matches!(e, Event::NeedAddress { .. })), 0);
    let ca = p.a.children()[0];
    assert_eq!((ca.mode, ca.virtual_ip), (Mode::Transport, None));
}

/// A client that asks for an address still proposes transport mode: a server with no address
/// to give takes it, for the client's own address (2.23.1).
#[test]
fn a_server_without_addresses_makes_a_transport_child_for_the_clients_own_address() {
    let mut a = config("a", None);
    a.request_address = AddressRequest::Always;
    let mut b = classical("b");
    b.accept_null_peers = true;
    let mut p = Pair::new(a, b);
    p.wire = Wire::Nat;
    run(&mut p);
    let (ca, cb) = (p.a.children()[0], p.b.children()[0]);
    assert_eq!(ca.virtual_ip, None);
    assert_eq!((ca.mode, cb.mode), (Mode::Transport, Mode::Transport));
    assert_eq!(ca.local_ts[0].start, p.a.addr.ip());
    assert_eq!(cb.remote_ts[0].start, nat_map(p.a.addr).ip());
    assert_eq!(p.b.count(|e| matches!(e, Event::NeedAddress { .. })), 1);
}

/// A tunnel behind a NAT with no assigned address would carry the client's private address,
/// which the server cannot check and its kernel would not match: refused (TS_UNACCEPTABLE),
/// never installed on one side only.
#[test]
fn a_tunnel_only_server_refuses_a_natted_client_it_assigns_no_address() {
    let mut a = config("a", None);
    a.request_address = AddressRequest::BehindNat;
    let mut b = classical("b");
    b.accept_null_peers = true;
    b.transport_mode = false;
    let mut p = Pair::new(a, b);
    p.wire = Wire::Nat;
    p.connect();
    p.drive();
    assert!(p.a.children().is_empty(), "A: {:?}", p.a.events);
    assert!(p.b.children().is_empty(), "B: {:?}", p.b.events);
    assert_eq!(p.a.count(|e| matches!(e, Event::ChildSaFailed { .. })), 1);
    // With an address to give, the same server takes the client through a tunnel.
    let mut b = classical("b");
    b.accept_null_peers = true;
    b.transport_mode = false;
    let mut a = config("a", None);
    a.request_address = AddressRequest::BehindNat;
    let mut p = Pair::new(a, b);
    p.b.lease = Some(vip());
    p.wire = Wire::Nat;
    run(&mut p);
    assert_eq!(p.a.children()[0].virtual_ip, Some(vip()));
}

/// RFC 3948 2.3 and 4: only the side behind the NAT sends keepalives, one 0xFF byte each,
/// every 20 s.
#[test]
fn keepalives_keep_the_nat_mapping_alive() {
    let mut p = Pair::new(classical("a"), classical("b"));
    p.wire = Wire::Nat;
    run(&mut p);
    let before = p.log.len();
    p.drive_for(Duration::from_secs(65));
    let sent: Vec<_> = p.log[before..].iter().collect();
    let from_a = sent
        .iter()
        .filter(|(_, ab, d)| *ab && d == &vec![0xff])
        .count();
    let from_b = sent
        .iter()
        .filter(|(_, ab, d)| !*ab && d == &vec![0xff])
        .count();
    assert_eq!((from_a, from_b), (3, 0), "{sent:?}");
    let mut p = Pair::new(classical("a"), classical("b"));
    run(&mut p);
    let before = p.log.len();
    p.drive_for(Duration::from_secs(65));
    assert!(
        p.log[before..].iter().all(|(_, _, d)| d != &vec![0xff]),
        "no NAT, no keepalive"
    );
}

/// The NAT rebinds: the next authenticated message from the client comes from a new port, and
/// the server's engine reports it, so the agent moves the kernel's SAs there (RFC 7296 2.23).
#[test]
fn a_rebinding_is_followed_and_reported() {
    let mut p = Pair::new(classical("a"), classical("b"));
    p.wire = Wire::Nat;
    run(&mut p);
    p.wire = Wire::NatRebound;
    let ha = p.a.events[0].0;
    p.a.ep.check_liveness(p.now, ha);
    p.drive_now();
    let moved: Vec<_> =
        p.b.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::PeerMoved { remote } => Some(*remote),
                _ => None,
            })
            .collect();
    let expected = std::net::SocketAddr::new(nat_map(p.a.addr).ip(), 4500 + 20000);
    assert_eq!(moved, vec![expected]);
    // The server's liveness check now reaches the client at its new port.
    let hb = p.b_handle();
    p.b.ep.check_liveness(p.now, hb);
    p.drive_for(Duration::from_secs(30));
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
    // The kernel's MAPPING (ESP from a new port) moves IKE as well.
    let kernel_saw = std::net::SocketAddr::new(expected.ip(), 31337);
    p.b.ep.follow_peer(p.now, hb, kernel_saw);
    p.step_events();
    assert!(p
        .b
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::PeerMoved { remote } if *remote == kernel_saw)));
    // Another address is not a rebinding of this NAT's mapping.
    p.b.ep
        .follow_peer(p.now, hb, "203.0.113.9:4500".parse().unwrap());
    p.step_events();
    assert_eq!(p.b.count(|e| matches!(e, Event::PeerMoved { .. })), 2);
}

/// An address identity behind a NAT names an address the peer cannot see: the client presents
/// ID_NULL with NULL authentication instead (when configured so).
#[test]
fn an_address_identity_behind_a_nat_gives_way_to_null() {
    let keyed = |id_behind_nat| {
        let mut a = config("a", Some("ed25519_a"));
        a.additional_ke = oe_ike::AdditionalKe::off();
        a.local_id = Identity::Ipv4("192.0.2.1".parse().unwrap());
        a.id_behind_nat = id_behind_nat;
        a
    };
    let mut b = classical("b");
    b.accept_null_peers = true;
    let mut p = Pair::new(keyed(Some(Identity::Null)), b.clone());
    p.wire = Wire::Nat;
    run(&mut p);
    let seen = |peer: &Peer| {
        peer.events.iter().find_map(|(_, e)| match e {
            Event::IkeSaEstablished {
                peer_id,
                peer_auth,
                presented,
                ..
            } => Some((peer_id.clone(), *peer_auth, presented.clone())),
            _ => None,
        })
    };
    assert_eq!(
        seen(&p.b).map(|s| (s.0, s.1)),
        Some((Identity::Null, PeerAuth::Null))
    );
    assert_eq!(seen(&p.a).map(|s| s.2), Some(Identity::Null));
    // Without a NAT the address identity and its key are used.
    let mut p = Pair::new(keyed(Some(Identity::Null)), b);
    run(&mut p);
    let addr = Identity::Ipv4("192.0.2.1".parse().unwrap());
    assert_eq!(
        seen(&p.b).map(|s| (s.0, s.1)),
        Some((addr, PeerAuth::Signature))
    );
    assert!(matches!(keyed(None).local_auth, LocalAuth::Key(_)));
}
