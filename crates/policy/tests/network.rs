//! Following the network: a removed local address, a default route moved to another uplink, a
//! new network after failures, a link back up. Engines real, kernel and DNS scripted.

#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod util;

use std::net::IpAddr;
use std::time::Duration;

use oe_ike::wire::Identity;
use oe_kernel::route::{Link, NetEvent};
use oe_kernel::PolicyAction;
use oe_policy::LocalId;
use util::*;

/// The workstation's second address (a new DHCP lease, another uplink).
const WS2: &str = "198.51.100.10";

fn v4(s: &str) -> Identity {
    match ip(s) {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    }
}

/// An anonymous workstation (the defaults) and a keyed server SRV, encrypted to each other.
fn encrypted_world() -> World {
    let now = start();
    let mut agent = Agent::new(WS, config(""), LocalId::Null, None, now);
    let k = key("ed25519_b");
    agent
        .dns
        .insert(reverse(SRV), secure("20.2.0.192.in-addr.arpa.", &[&k], now));
    let server = RawPeer::new(SRV, v4(SRV), Some(k), 21);
    let mut world = World::new(agent, vec![server], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert_eq!(world.agent.kernel.sas_with(ip(SRV)).len(), 2, "encrypted");
    assert_eq!(world.peers[0].live_children(), 1);
    world
}

/// SAs and policies the kernel has with `local` as this host's end.
fn state_from(world: &World, local: &str) -> usize {
    let k = &world.agent.kernel;
    k.sas
        .values()
        .filter(|s| s.src == ip(local) || s.dst == ip(local))
        .count()
        + k.host_policies(ip(local)).len()
}

#[test]
fn a_removed_address_takes_its_sas_and_new_flows_negotiate_from_the_new_one() {
    let mut world = encrypted_world();
    let now = world.now;
    world.agent.move_to(now, WS2);
    assert_eq!(
        state_from(&world, WS),
        0,
        "nothing left for the old address: {:?} {:?}",
        world.agent.kernel.sas,
        world.agent.kernel.policies
    );
    assert!(
        !world.agent.events_of("address-gone").is_empty(),
        "{:?}",
        world.agent.events
    );
    // The Delete reaches the server (its address is still reachable): nothing left there.
    world.settle();
    assert_eq!(
        world.peers[0].live_children(),
        0,
        "the server removed its SA"
    );
    // The next packet comes from the new address: a new negotiation from it.
    world.agent.acquire(world.now, SRV, 2);
    world.settle();
    let sas = world.agent.kernel.sas_with(ip(SRV));
    assert_eq!(sas.len(), 2, "encrypted again");
    assert!(
        sas.iter().all(|s| s.src == ip(WS2) || s.dst == ip(WS2)),
        "{sas:?}"
    );
    assert_eq!(world.peers[0].live_children(), 1);
}

#[test]
fn an_acquire_from_another_address_of_the_host_moves_the_peer_there() {
    // The default route moved to another uplink: both addresses stay, new flows leave from
    // the other one; the trap catches them with the new source.
    let mut world = encrypted_world();
    world.agent.addr = ip(WS2);
    world.agent.acquire(world.now, SRV, 2);
    world.settle();
    assert!(
        !world.agent.events_of("moved").is_empty(),
        "{:?}",
        world.agent.events
    );
    assert_eq!(state_from(&world, WS), 0, "the old path's SAs are gone");
    assert_eq!(state_from(&world, WS2), 4, "an SA pair and its policies");
    assert_eq!(world.peers[0].live_children(), 1, "one child on the server");
}

/// A workstation whose negotiation with SRV failed (nothing answered), in `toml`'s groups.
fn failed_world(toml: &str) -> World {
    let now = start();
    let mut agent = Agent::new(WS, config(toml), LocalId::Null, None, now);
    agent.dns.insert(reverse(SRV), absent(now));
    let mut world = World::new(agent, vec![], now);
    // On network A: its link and default route.
    world.agent.net(now, NetEvent::LinkChanged(link(true)));
    world
        .agent
        .net(now, NetEvent::RouteAdded(default_route("192.0.2.1", 2)));
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(11));
    assert_eq!(shunts(&world).len(), 1, "failure shunt");
    world
}

/// Pass and drop policies for SRV.
fn shunts(world: &World) -> Vec<PolicyAction> {
    world
        .agent
        .kernel
        .host_policies(ip(SRV))
        .iter()
        .map(|p| p.action)
        .filter(|a| !matches!(a, PolicyAction::Protect(_)))
        .collect()
}

fn link(running: bool) -> Link {
    Link {
        ifindex: 2,
        name: Some("eth0".into()),
        up: true,
        running,
        loopback: false,
    }
}

#[test]
fn a_new_default_route_clears_failure_shunts_and_the_host_is_tried_again_at_once() {
    let mut world = failed_world("");
    let now = world.now;
    // The same route again (a DHCP renewal) is no new network.
    world
        .agent
        .net(now, NetEvent::RouteAdded(default_route("192.0.2.1", 2)));
    assert_eq!(shunts(&world).len(), 1, "still failed");
    // Another network: its default route.
    world
        .agent
        .net(now, NetEvent::RouteAdded(default_route("198.51.100.1", 3)));
    assert!(shunts(&world).is_empty(), "the failure shunt is gone");
    assert!(!world.agent.events_of("network").is_empty());
    // The server answers on this network: negotiated with at once, without waiting for a new
    // ACQUIRE (the kernel's larval state from the first one would hold it back for 30 s).
    world
        .peers
        .push(RawPeer::new(SRV, Identity::Null, None, 22));
    world.settle();
    assert_eq!(world.agent.kernel.sas_with(ip(SRV)).len(), 2, "encrypted");
}

#[test]
fn a_link_back_up_leaves_no_drop_shunt_from_while_it_was_down() {
    let mut world = failed_world("[groups]\nprivate = [\"192.0.2.20/32\"]\n");
    assert_eq!(shunts(&world), [PolicyAction::Block], "a drop shunt");
    let now = world.now;
    world.agent.net(now, NetEvent::LinkChanged(link(false)));
    assert_eq!(shunts(&world).len(), 1);
    world.agent.net(now, NetEvent::LinkChanged(link(true)));
    assert!(shunts(&world).is_empty(), "nothing stale drops traffic");
}
