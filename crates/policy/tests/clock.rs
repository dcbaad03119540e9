//! Pauses and clock steps: the agent stopped past its peer's liveness timeout, the wall clock
//! stepped. Engines real, kernel and DNS scripted.

#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod util;

use std::net::IpAddr;
use std::time::Duration;

use oe_ike::wire::Identity;
use oe_policy::{Input, LocalId, Now};
use util::*;

fn v4(s: &str) -> Identity {
    match ip(s) {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    }
}

/// A workstation encrypted to a keyed server that checks liveness every 5 s.
fn encrypted_world() -> World {
    let now = start();
    let mut agent = Agent::new(WS, config(""), LocalId::Null, None, now);
    let k = key("ed25519_b");
    agent
        .dns
        .insert(reverse(SRV), secure("20.2.0.192.in-addr.arpa.", &[&k], now));
    let server = RawPeer::with(SRV, v4(SRV), Some(k), 31, |c| {
        c.liveness_interval = Some(Duration::from_secs(5));
    });
    let mut world = World::new(agent, vec![server], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert_eq!(world.peers[0].live_children(), 1);
    world
}

/// Runs only the server's timers for `d` (the agent is stopped: what it is sent is lost).
fn pause_agent(world: &mut World, d: Duration) {
    let end = world.now.after(d);
    let server = &mut world.peers[0];
    while let Some(at) = server.ep.poll_timeout().filter(|t| *t <= end.mono) {
        server.ep.handle_timeout(at);
        while server.ep.poll_transmit().is_some() {}
        while let Some(e) = server.ep.poll_event() {
            server.events.push(e);
        }
    }
    world.now = end;
}

#[test]
fn after_a_pause_past_the_peers_liveness_timeout_traffic_recovers_in_one_round_trip() {
    let mut world = encrypted_world();
    pause_agent(&mut world, Duration::from_secs(300));
    assert_eq!(
        world.peers[0].live_children(),
        0,
        "the server gave up on the silent agent"
    );
    // The agent runs again: its overdue timers fire.
    let now = world.now;
    world.agent.core.handle_timeout(now);
    world.agent.run(now);
    world.settle();
    assert!(
        !world.agent.events_of("resumed").is_empty(),
        "{:?}",
        world.agent.events
    );
    assert_eq!(
        world.peers[0].live_children(),
        1,
        "a fresh SA on the server, within the round trips of one handshake"
    );
    let ours = world.agent.kernel.sas_with(ip(SRV));
    assert!(
        ours.iter().any(|s| s.dst == ip(SRV)
            && world.peers[0].events.iter().any(|(_, e)| matches!(e,
                oe_ike::Event::ChildSaReady { child, .. } if child.inbound_spi == s.spi.0))),
        "our outbound SA is one the server holds"
    );
}

#[test]
fn a_wall_clock_step_re_puts_policies_and_re_reads_the_kernel() {
    let mut world = encrypted_world();
    let stepped = Now {
        mono: world.now.mono + Duration::from_secs(1),
        wall: world.now.wall + Duration::from_secs(3600),
    };
    world.agent.trace.clear();
    world
        .agent
        .input(stepped, Input::Kernel(oe_kernel::Event::Lost));
    let clock = world.agent.events_of("clock");
    assert!(
        clock
            .iter()
            .any(|e| e.detail.contains("stepped forward by 3599s")),
        "{:?}",
        world.agent.events
    );
    assert!(
        world.agent.trace.iter().any(|t| t == "kernel:refresh"),
        "{:?}",
        world.agent.trace
    );
}

#[test]
fn a_pause_shorter_than_every_other_timer_is_noticed_too() {
    // 16 s: no refresh (20 s), idle check (60 s) or liveness check (30 s) falls due in it.
    let mut world = encrypted_world();
    pause_agent(&mut world, Duration::from_secs(16));
    let now = world.now;
    world.agent.core.handle_timeout(now);
    world.agent.run(now);
    assert!(
        !world.agent.events_of("resumed").is_empty(),
        "{:?}",
        world.agent.events
    );
}
