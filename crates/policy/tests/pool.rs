//! The server's address pool (`[ike] address_pool`, RFC 7296 3.15): clients that ask for an
//! internal address each get one, so several behind one NAT (one outer address, different
//! ports) are told apart: each has its own tunnel-mode SAs and policies keyed on its address,
//! and one ending its IKE SA leaves the others' alone. The pool is the bound: when it is empty
//! a client gets no address; an address comes back when its IKE SA ends.

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod util;

use std::net::IpAddr;

use oe_ike::wire::Identity;
use oe_ike::{AddressRequest, Event, SaHandle};
use oe_kernel::{Direction, PolicyAction};
use oe_policy::LocalId;
use util::*;

/// The NAT's outer address: every client below sends from it, each from its own port.
const NAT: &str = OTHER;

fn server(toml: &str, now: oe_policy::Now) -> Agent {
    Agent::new(
        SRV,
        config(toml),
        LocalId::Address,
        Some(key("ed25519_b")),
        now,
    )
}

/// An anonymous client behind the NAT, at outer port `port`, that asks for an address.
fn client(port: u16, seed: u64) -> RawPeer {
    let mut p = RawPeer::with(NAT, Identity::Null, None, seed, |c| {
        c.request_address = AddressRequest::Always;
    })
    .on_port(port);
    p.peer_keys = Some(vec![key("ed25519_b").public_key()]);
    p
}

/// The address the server assigned a client's live child, if any.
fn assigned(peer: &RawPeer) -> Option<IpAddr> {
    peer.events.iter().rev().find_map(|(_, e)| match e {
        Event::ChildSaReady { child, .. } => child.virtual_ip,
        _ => None,
    })
}

/// The server's outbound tunnel policy towards `inner`, and its template's outer destination.
fn tunnel_to(agent: &Agent, inner: IpAddr) -> Option<(oe_kernel::Reqid, IpAddr)> {
    agent.kernel.policies.values().find_map(|p| match p.action {
        PolicyAction::ProtectTunnel { reqid, dst, .. }
            if p.dir == Direction::Out && p.selector.dst().addr() == inner =>
        {
            Some((reqid, dst))
        }
        _ => None,
    })
}

/// The server's SAs carrying traffic for `inner` (either direction).
fn sas_for(agent: &Agent, inner: IpAddr) -> usize {
    agent
        .kernel
        .sas
        .values()
        .filter(|s| {
            s.selector
                .is_some_and(|sel| sel.dst().addr() == inner || sel.src().addr() == inner)
        })
        .count()
}

fn world(toml: &str, clients: Vec<RawPeer>) -> World {
    let now = start();
    let mut agent = server(toml, now);
    agent.dns.insert(reverse(NAT), absent(now));
    World::new(agent, clients, now)
}

#[test]
fn two_clients_behind_one_nat_each_get_an_address_and_their_own_sas() {
    let pool = "[ike]\naddress_pool = [\"100.64.0.0/16\"]\n";
    let mut world = world(pool, vec![client(500, 1), client(4501, 2)]);
    let h0: SaHandle = world.connect(0);
    world.connect(1);
    let (a, b) = (assigned(&world.peers[0]), assigned(&world.peers[1]));
    let (Some(a), Some(b)) = (a, b) else {
        panic!("both clients get an address: {a:?} {b:?}");
    };
    assert_ne!(a, b, "each client its own address");
    for vip in [a, b] {
        assert!(
            matches!(vip, IpAddr::V4(v) if v.octets()[..2] == [100, 64]),
            "{vip} from the pool"
        );
    }
    let (ta, tb) = (tunnel_to(&world.agent, a), tunnel_to(&world.agent, b));
    let (Some((reqid_a, outer_a)), Some((reqid_b, outer_b))) = (ta, tb) else {
        panic!("a tunnel policy to each client's address: {ta:?} {tb:?}");
    };
    assert_eq!(
        (outer_a, outer_b),
        (ip(NAT), ip(NAT)),
        "both through the NAT"
    );
    assert_ne!(reqid_a, reqid_b, "each client's SAs and policies apart");
    assert_eq!(sas_for(&world.agent, a), 2);
    assert_eq!(sas_for(&world.agent, b), 2);
    let routes = &world.agent.kernel.client_routes;
    assert_eq!(
        (routes.get(&a), routes.get(&b)),
        (Some(&ip(NAT)), Some(&ip(NAT))),
        "each address routed the way to the NAT goes"
    );
    let now = world.now;
    let oe_policy::protocol::Report::Peers { peers } =
        world.agent.ask(now, oe_policy::protocol::Request::Peers)
    else {
        panic!("not a peers report");
    };
    let mut shown: Vec<_> = peers.iter().filter_map(|p| p.assigned_ip).collect();
    shown.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(shown, want, "oe peers shows each client's address");
    let explain = world.agent.verdict(now, &b.to_string());
    assert!(
        explain.contains(&format!("its address {b} assigned by us")),
        "{explain}"
    );

    // The first client ends its IKE SA: the second's SAs and policies stay.
    let now = world.now.mono;
    world.peers[0].ep.delete(now, h0);
    world.settle();
    assert_eq!(world.peers[0].live_children(), 0);
    assert_eq!(sas_for(&world.agent, a), 0, "the first client's SAs go");
    assert!(tunnel_to(&world.agent, a).is_none(), "and its policies");
    assert_eq!(sas_for(&world.agent, b), 2, "the second client's SAs stay");
    let routes = &world.agent.kernel.client_routes;
    assert!(
        !routes.contains_key(&a) && routes.contains_key(&b),
        "{routes:?}"
    );
    assert!(tunnel_to(&world.agent, b).is_some(), "and its policies");
    assert_eq!(world.peers[1].live_children(), 1);
}

#[test]
fn the_pool_is_the_bound_and_an_address_comes_back_when_its_ike_sa_ends() {
    // A /30 holds two addresses for clients (not the network's or the broadcast address).
    let pool = "[ike]\naddress_pool = [\"100.64.0.0/30\"]\n";
    let clients = vec![
        client(500, 1),
        client(4501, 2),
        client(4502, 3),
        client(4503, 4),
    ];
    let mut world = world(pool, clients);
    let h0 = world.connect(0);
    world.connect(1);
    world.connect(2);
    let a = assigned(&world.peers[0]).expect("first address");
    let b = assigned(&world.peers[1]).expect("second address");
    let usable = [ip("100.64.0.1"), ip("100.64.0.2")];
    assert!(usable.contains(&a) && usable.contains(&b) && a != b);
    assert_eq!(
        assigned(&world.peers[2]),
        None,
        "the pool is empty: the third client gets no address"
    );
    let now = world.now.mono;
    world.peers[0].ep.delete(now, h0);
    world.settle();
    world.connect(3);
    assert_eq!(
        assigned(&world.peers[3]),
        Some(a),
        "the first client's address is free again"
    );
}

#[test]
fn a_pool_is_one_prefix_per_family() {
    let parse =
        |toml: &str| oe_policy::config::Config::parse(toml, std::path::Path::new("t.toml")).is_ok();
    assert!(parse(
        "[ike]\naddress_pool = [\"100.64.0.0/16\", \"fd00:6f65::/112\"]\n"
    ));
    assert!(!parse(
        "[ike]\naddress_pool = [\"100.64.0.0/16\", \"10.0.0.0/8\"]\n"
    ));
    assert!(!parse("[ike]\naddress_pool = [\"100.64.0.0\"]\n"));
    assert!(!parse("[ike]\naddress_pool = [\"100.64.0.0/33\"]\n"));
}

#[test]
fn a_rekeyed_child_keeps_its_clients_address() {
    let pool = "[ike]\naddress_pool = [\"100.64.0.0/16\"]\nidle_timeout = \"0s\"\n";
    let mut world = world(pool, vec![client(500, 1), client(4501, 2)]);
    world.connect(0);
    world.connect(1);
    let (a, b) = (assigned(&world.peers[0]), assigned(&world.peers[1]));
    let (Some(a), Some(b)) = (a, b) else {
        panic!("addresses: {a:?} {b:?}");
    };
    let spis = |w: &World| -> Vec<u32> { w.agent.kernel.sas.values().map(|s| s.spi.0).collect() };
    let before = spis(&world);
    // Past the children's soft lifetime: each is rekeyed, within its own IKE SA.
    world.advance(std::time::Duration::from_secs(3500));
    assert!(spis(&world).iter().all(|s| !before.contains(s)), "rekeyed");
    assert_eq!(sas_for(&world.agent, a), 2, "{:?}", world.agent.events);
    assert_eq!(sas_for(&world.agent, b), 2);
    assert!(tunnel_to(&world.agent, a).is_some() && tunnel_to(&world.agent, b).is_some());
    assert_eq!(world.peers[0].live_children(), 1);
    assert_eq!(world.peers[1].live_children(), 1);
}
