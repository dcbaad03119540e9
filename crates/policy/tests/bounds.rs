//! What peers can make the core hold is bounded (`[limits]`): IKE SAs past IKE_AUTH per source
//! (an IPv4 address, an IPv6 /64) and in total, the oldest anonymous SA making room under
//! pressure, an authenticated SA never displaced by an anonymous one; DNS lookups chosen by
//! peers' identities per source and in total, with the host's own lookups never refused.

mod util;

use std::net::IpAddr;

use oe_ike::wire::Identity;
use oe_ike::CloseReason;
use oe_policy::LocalId;
use util::*;

fn server_at(addr: &str, toml: &str, now: oe_policy::Now) -> Agent {
    Agent::new(
        addr,
        config(toml),
        LocalId::Address,
        Some(key("ed25519_b")),
        now,
    )
}

/// An anonymous client (NULL authentication, RFC 7619) at `addr`, port `port`.
fn anonymous(addr: &str, port: u16, seed: u64) -> RawPeer {
    let mut p = RawPeer::new(addr, Identity::Null, None, seed).on_port(port);
    p.peer_keys = Some(vec![key("ed25519_b").public_key()]);
    p
}

fn address_id(s: &str) -> Identity {
    match ip(s) {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    }
}

/// A client at `addr` that signs with key A, published (SECURE) in its reverse zone.
fn authenticated(agent: &mut Agent, addr: &str, seed: u64, now: oe_policy::Now) -> RawPeer {
    let client_key = key("ed25519_a");
    let target = reverse(addr);
    let owner = target.query_name().to_string();
    agent
        .dns
        .insert(target, secure(&owner, &[&client_key], now));
    let mut p = RawPeer::new(addr, address_id(addr), Some(client_key), seed);
    p.peer_keys = Some(vec![key("ed25519_b").public_key()]);
    p
}

/// Inbound SAs in the kernel for traffic from `addr`.
fn inbound_from(agent: &Agent, addr: &str) -> usize {
    agent
        .kernel
        .sas
        .values()
        .filter(|s| s.src == ip(addr))
        .count()
}

fn deleted_by_us(peer: &RawPeer) -> bool {
    peer.events.iter().any(|(_, e)| {
        matches!(
            e,
            oe_ike::Event::Closed {
                reason: CloseReason::PeerDeleted
            }
        )
    })
}

#[test]
fn one_anonymous_host_holds_at_most_its_share_of_ike_sas() {
    let now = start();
    let agent = server_at(SRV, "", now);
    // The default bound per source is 16; one host opens 20 anonymous IKE SAs from 20 ports.
    let peers = (0..20).map(|i| anonymous(OTHER, 1000 + i, 100 + u64::from(i)));
    let mut world = World::new(agent, peers.collect(), now);
    for i in 0..20 {
        world.connect(i);
        world.advance(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        inbound_from(&world.agent, OTHER),
        16,
        "the kernel holds one SA pair per IKE SA held"
    );
    let pruned: Vec<usize> = (0..20)
        .filter(|i| deleted_by_us(&world.peers[*i]))
        .collect();
    assert_eq!(pruned, vec![0, 1, 2, 3], "the oldest made room");
    assert!((4..20).all(|i| world.peers[i].live_children() == 1));
    assert_eq!(world.agent.events_of("pruned").len(), 4);
}

#[test]
fn in_total_the_oldest_anonymous_sa_makes_room() {
    let now = start();
    let agent = server_at(SRV, "[limits]\nike_sas = 3\n", now);
    let addrs = ["192.0.2.101", "192.0.2.102", "192.0.2.103", "192.0.2.104"];
    let peers = addrs.iter().zip(1..).map(|(a, s)| anonymous(a, 500, s));
    let mut world = World::new(agent, peers.collect(), now);
    for i in 0..4 {
        world.connect(i);
        world.advance(std::time::Duration::from_millis(10));
    }
    assert!(deleted_by_us(&world.peers[0]));
    assert_eq!(inbound_from(&world.agent, addrs[0]), 0);
    for (peer, addr) in world.peers.iter().zip(addrs).skip(1) {
        assert_eq!(peer.live_children(), 1);
        assert_eq!(inbound_from(&world.agent, addr), 1);
    }
}

#[test]
fn an_authenticated_sa_is_never_displaced_by_an_anonymous_one() {
    let now = start();
    let mut agent = server_at(SRV, "[limits]\nike_sas = 2\n", now);
    let a = authenticated(&mut agent, "192.0.2.101", 1, now);
    let b = authenticated(&mut agent, "192.0.2.102", 2, now);
    let mut world = World::new(agent, vec![a, b, anonymous("192.0.2.103", 500, 3)], now);
    world.connect(0);
    world.connect(1);
    world.connect(2);
    assert_eq!(world.peers[0].live_children(), 1);
    assert_eq!(world.peers[1].live_children(), 1);
    assert_eq!(
        world.peers[2].live_children(),
        0,
        "the anonymous newcomer is refused: nothing in its way may go"
    );
    assert_eq!(inbound_from(&world.agent, "192.0.2.103"), 0);
    assert!(world.agent.events_of("pruned").is_empty());
    let refused = world.agent.events_of("refused");
    assert!(
        refused
            .iter()
            .any(|e| e.detail.contains("is authenticated")),
        "{refused:?}"
    );
}

#[test]
fn an_authenticated_newcomer_displaces_the_oldest_anonymous_sa() {
    let now = start();
    let mut agent = server_at(SRV, "[limits]\nike_sas = 2\n", now);
    let c = authenticated(&mut agent, "192.0.2.103", 3, now);
    let peers = vec![
        anonymous("192.0.2.101", 500, 1),
        anonymous("192.0.2.102", 500, 2),
        c,
    ];
    let mut world = World::new(agent, peers, now);
    for i in 0..3 {
        world.connect(i);
        world.advance(std::time::Duration::from_millis(10));
    }
    assert!(deleted_by_us(&world.peers[0]));
    assert_eq!(world.peers[1].live_children(), 1);
    assert_eq!(world.peers[2].live_children(), 1);
}

#[test]
fn an_ipv6_host_is_one_source_across_its_64() {
    let now = start();
    let agent = server_at("2001:db8::20", "[limits]\nike_sas_per_source = 2\n", now);
    let same_64 = ["2001:db8::1:1", "2001:db8::1:2", "2001:db8::ffff:3"];
    let mut peers: Vec<RawPeer> = same_64
        .iter()
        .zip(1..)
        .map(|(a, s)| anonymous(a, 500, s))
        .collect();
    peers.push(anonymous("2001:db8:0:1::1", 500, 9));
    let mut world = World::new(agent, peers, now);
    for i in 0..4 {
        world.connect(i);
        world.advance(std::time::Duration::from_millis(10));
    }
    assert!(deleted_by_us(&world.peers[0]), "three addresses, one /64");
    assert_eq!(world.peers[1].live_children(), 1);
    assert_eq!(world.peers[2].live_children(), 1);
    assert_eq!(
        world.peers[3].live_children(),
        1,
        "another /64 is unaffected"
    );
}

#[test]
fn a_pruned_peer_that_never_answers_keeps_nothing() {
    let now = start();
    let agent = server_at(SRV, "[limits]\nike_sas = 1\n", now);
    let peers = vec![
        anonymous("192.0.2.101", 500, 1),
        anonymous("192.0.2.102", 500, 2),
    ];
    let mut world = World::new(agent, peers, now);
    world.connect(0);
    assert_eq!(inbound_from(&world.agent, "192.0.2.101"), 1);
    // The first client goes silent: nothing reaches it any more.
    world.peers[0].port = 9;
    world.connect(1);
    assert_eq!(
        inbound_from(&world.agent, "192.0.2.101"),
        0,
        "its SAs leave the kernel at once, not after the Delete's retransmissions"
    );
    assert_eq!(world.peers[1].live_children(), 1);
}

/// A client at `addr` (port `port`) naming itself `name` (a zone that never answers).
fn named(addr: &str, port: u16, name: &str, seed: u64) -> RawPeer {
    let mut p = RawPeer::new(
        addr,
        Identity::Fqdn(name.into()),
        Some(key("ed25519_a")),
        seed,
    )
    .on_port(port);
    p.peer_keys = Some(vec![key("ed25519_b").public_key()]);
    p
}

fn lookups(agent: &Agent, kind: &str) -> usize {
    agent.trace.iter().filter(|t| *t == kind).count()
}

#[test]
fn identities_naming_a_dead_zone_are_bounded_per_64_and_in_total_and_the_hosts_lookups_go_on() {
    let now = start();
    let mut agent = server_at("2001:db8::20", "", now);
    agent.slow_dns = true;
    // One host with ten addresses of its /64, each naming two new names (two IKE SAs).
    let mut peers: Vec<RawPeer> = (0..20u16)
        .map(|i| {
            let addr = format!("2001:db8::1:{}", i % 10 + 1);
            named(&addr, 1000 + i, &format!("h{i}.dead.example"), u64::from(i))
        })
        .collect();
    let mut world = World::new(agent, Vec::new(), now);
    for (i, p) in peers.drain(..).enumerate() {
        world.peers.push(p);
        world.connect(i);
    }
    assert_eq!(
        lookups(&world.agent, "lookup:peer"),
        4,
        "a /64 gets the per-source share of peer lookups (4)"
    );
    // Many hosts: the total bound (64).
    for i in 0..100u16 {
        let addr = format!("2001:db8:{}::1", i + 1);
        world.peers.push(named(
            &addr,
            500,
            &format!("x{i}.dead.example"),
            1000 + u64::from(i),
        ));
        let last = world.peers.len() - 1;
        world.connect(last);
    }
    assert_eq!(lookups(&world.agent, "lookup:peer"), 64);
    // The host's own lookup (traffic to a new host) is still asked for.
    world.agent.acquire(world.now, "2001:db8:ffff::7", 1);
    assert_eq!(lookups(&world.agent, "lookup"), 1);
    assert!(world
        .agent
        .asked
        .iter()
        .any(|q| q.ends_with("f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa.")));
}
