//! A client behind a NAT asks for an internal address (RFC 7296 3.15) and, when the server
//! assigns one, the core has it put on the host with the kernel policy lifetime (and a host
//! route to the server preferring it), renewed while the agent lives and removed with the
//! last child that carries it, or at shutdown. Flows from the host's own address to that server
//! (which the tunnel does not carry) pass in clear meanwhile instead of being held. Without a NAT, or from a server that assigns
//! nothing, nothing is added.

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod util;

use std::net::IpAddr;
use std::time::Duration;

use oe_ike::wire::Identity;
use oe_ike::Event;
use oe_policy::{Input, LocalId};
use util::*;

const NAT: &str = "198.51.100.1";
const VIP: &str = "100.64.0.9";

fn v4(s: &str) -> Identity {
    match ip(s) {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    }
}

/// An anonymous workstation behind `nat` (if any) and a keyed server assigning `lease`; the
/// workstation's traffic to the server has started its negotiation.
fn negotiated(nat: Option<&str>, lease: Option<&str>) -> World {
    negotiated_with("", nat, lease)
}

fn negotiated_with(toml: &str, nat: Option<&str>, lease: Option<&str>) -> World {
    let now = start();
    let mut agent = Agent::new(WS, config(toml), LocalId::Null, None, now);
    agent.dns.insert(
        reverse(SRV),
        secure("20.2.0.192.in-addr.arpa.", &[&key("ed25519_b")], now),
    );
    let mut server = RawPeer::new(SRV, v4(SRV), Some(key("ed25519_b")), 8);
    server.lease = lease.map(ip);
    let mut world = World::new(agent, vec![server], now);
    world.nat = nat.map(ip);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    world
}

/// Whether flows from our own address to the server pass in clear (a pass shunt).
fn own_address_passes(world: &World) -> bool {
    world.agent.kernel.policies.values().any(|p| {
        p.action == oe_kernel::PolicyAction::Pass
            && p.selector.src().addr() == ip(WS)
            && p.selector.dst().addr() == ip(SRV)
    })
}

fn server_child_vip(world: &World) -> Option<Option<IpAddr>> {
    world.peers[0].events.iter().find_map(|(_, e)| match e {
        Event::ChildSaReady { child, .. } => Some(child.remote_ts.first().map(|t| t.start)),
        _ => None,
    })
}

#[test]
fn an_assigned_address_is_put_on_the_host_renewed_and_removed_with_its_child() {
    let mut world = negotiated(Some(NAT), Some(VIP));
    assert_eq!(
        server_child_vip(&world),
        Some(Some(ip(VIP))),
        "the server's child carries the address it assigned"
    );
    let kernel = &world.agent.kernel;
    assert_eq!(
        kernel.assigned.get(&ip(VIP)),
        Some(&(ip(SRV), 60)),
        "on the host, routed to the server, for the policy lifetime: {:?}",
        world.agent.trace
    );
    assert!(
        own_address_passes(&world),
        "flows from our own address are not held for good"
    );
    let explain = world.agent.verdict(world.now, SRV);
    assert!(
        explain.contains(VIP),
        "explain names the address: {explain}"
    );

    // Renewed while the agent lives.
    let puts = world.agent.kernel.assigned_puts;
    world.advance(Duration::from_secs(61));
    assert!(world.agent.kernel.assigned_puts > puts, "renewed");
    assert!(world.agent.kernel.assigned.contains_key(&ip(VIP)));

    // The server ends the IKE SA: the address goes with its child.
    let handle = world.peers[0].events[0].0;
    let now = world.now.mono;
    world.peers[0].ep.delete(now, handle);
    world.settle();
    assert!(
        world.agent.kernel.assigned.is_empty(),
        "removed with its child: {:?}",
        world.agent.kernel.log
    );
    assert!(!own_address_passes(&world), "and the pass shunt with it");
}

#[test]
fn shutdown_removes_the_assigned_address() {
    let mut world = negotiated(Some(NAT), Some(VIP));
    assert!(world.agent.kernel.assigned.contains_key(&ip(VIP)));
    world.agent.input(world.now, Input::Shutdown);
    world.settle();
    assert!(world.agent.kernel.assigned.is_empty());
}

#[test]
fn without_a_nat_or_an_assigned_address_nothing_is_added() {
    let direct = negotiated(None, Some(VIP));
    assert_eq!(
        server_child_vip(&direct),
        Some(Some(ip(WS))),
        "not behind a NAT: no address asked for, transport for our own"
    );
    assert!(direct.agent.kernel.assigned.is_empty());
    assert!(
        !own_address_passes(&direct),
        "transport: our address is encrypted"
    );
    let no_pool = negotiated(Some(NAT), None);
    assert!(server_child_vip(&no_pool).is_some(), "a child without one");
    assert!(no_pool.agent.kernel.assigned.is_empty());
}

#[test]
fn a_flow_from_the_assigned_address_is_not_the_host_moving() {
    let mut world = negotiated(Some(NAT), Some(VIP));
    let before = world.agent.kernel.sas_with(ip(SRV)).len();
    assert_eq!(before, 2);
    // The tunnel's policy is gone for a moment (as while it is replaced): the trap sees a flow
    // from the assigned address.
    let now = world.now;
    world.agent.acquire_from(now, ip(VIP), SRV, 2);
    world.settle();
    assert!(world.agent.events_of("moved").is_empty());
    assert_eq!(
        world.agent.kernel.sas_with(ip(SRV)).len(),
        before,
        "still encrypted"
    );
}

#[test]
fn a_rekeyed_child_keeps_the_assigned_address() {
    // Idle SAs are not torn down here.
    let mut world = negotiated_with("[ike]\nidle_timeout = \"0s\"\n", Some(NAT), Some(VIP));
    let first: Vec<u32> = world
        .agent
        .kernel
        .sas_with(ip(SRV))
        .iter()
        .map(|s| s.spi.0)
        .collect();
    // Past the child's soft lifetime (90% of an hour, less jitter): it is rekeyed.
    world.advance(Duration::from_secs(3500));
    let now: Vec<u32> = world
        .agent
        .kernel
        .sas_with(ip(SRV))
        .iter()
        .map(|s| s.spi.0)
        .collect();
    assert_eq!(now.len(), 2, "{:?}", world.agent.events);
    assert!(now.iter().all(|s| !first.contains(s)), "rekeyed");
    assert_eq!(
        world.agent.kernel.assigned.get(&ip(VIP)).map(|a| a.0),
        Some(ip(SRV)),
        "the address stays through the rekey: {:?}",
        world.agent.kernel.log
    );
    assert!(own_address_passes(&world), "and so does the pass shunt");
}
