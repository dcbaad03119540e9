//! The operator's control requests (`oe retry`, `oe up`, `oe down`) on the core.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod util;

use std::time::Duration;

use oe_ike::wire::Identity;
use oe_policy::protocol::{Report, Request, Response};
use oe_policy::{Input, LocalId, QueryId, TriggerTarget};
use util::*;

fn control(world: &mut World, request: Request, host: &str) -> Vec<String> {
    let id = QueryId(900);
    let now = world.now;
    world.agent.input(
        now,
        Input::Control {
            id,
            request,
            targets: vec![TriggerTarget {
                remote: ip(host),
                local: ip(WS),
            }],
        },
    );
    world.settle();
    match world.agent.replies.remove(&id) {
        Some(Response::Ok {
            result: Report::Control { results },
            ..
        }) => results.into_iter().map(|r| r.outcome).collect(),
        other => panic!("{other:?}"),
    }
}

fn server_peer(seed: u64) -> RawPeer {
    let k = key("ed25519_b");
    RawPeer::new(
        SRV,
        Identity::Ipv4("192.0.2.20".parse().unwrap()),
        Some(k),
        seed,
    )
}

fn workstation_with_dns(toml: &str) -> (Agent, oe_policy::Now) {
    let now = start();
    let mut agent = Agent::new(WS, config(toml), LocalId::Null, None, now);
    agent.dns.insert(
        reverse(SRV),
        secure("20.2.0.192.in-addr.arpa.", &[&key("ed25519_b")], now),
    );
    (agent, now)
}

#[test]
fn up_negotiates_before_any_traffic() {
    let (agent, now) = workstation_with_dns("");
    let mut world = World::new(agent, vec![server_peer(1)], now);
    let out = control(&mut world, Request::Up { host: SRV.into() }, SRV);
    assert_eq!(out, ["negotiating"]);
    assert_eq!(
        world.agent.kernel.sas_with(ip(SRV)).len(),
        2,
        "encrypted with no packet sent"
    );
    let out = control(&mut world, Request::Up { host: SRV.into() }, SRV);
    assert_eq!(out, ["already encrypted"]);
}

#[test]
fn retry_drops_the_failure_shunt_and_negotiates_now() {
    let (agent, now) = workstation_with_dns("");
    // Nobody answers at first: the negotiation fails, a pass shunt for 15 minutes.
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(11));
    assert!(
        !world.agent.kernel.host_policies(ip(SRV)).is_empty(),
        "failure shunt"
    );
    let out = control(&mut world, Request::Up { host: SRV.into() }, SRV);
    assert!(out[0].contains("oe retry"), "{out:?}");
    // The server comes up; the operator retries at once instead of waiting out the shunt.
    world.peers.push(server_peer(2));
    let out = control(&mut world, Request::Retry { host: SRV.into() }, SRV);
    assert_eq!(out, ["negotiating"]);
    assert_eq!(world.agent.kernel.sas_with(ip(SRV)).len(), 2);
    assert!(
        world
            .agent
            .kernel
            .host_policies(ip(SRV))
            .iter()
            .all(|p| matches!(p.action, oe_kernel::PolicyAction::Protect(_))),
        "no shunt left"
    );
}

#[test]
fn down_tears_down_and_keeps_traffic_in_clear_for_the_time_given() {
    let (agent, now) = workstation_with_dns("");
    let mut world = World::new(agent, vec![server_peer(3)], now);
    control(&mut world, Request::Up { host: SRV.into() }, SRV);
    assert_eq!(world.peers[0].live_children(), 1);
    let out = control(
        &mut world,
        Request::Down {
            host: SRV.into(),
            seconds: Some(120),
        },
        SRV,
    );
    assert!(out[0].contains("passes in clear for 120s"), "{out:?}");
    assert!(world.agent.kernel.sas_with(ip(SRV)).is_empty());
    assert_eq!(
        world.peers[0].live_children(),
        0,
        "the peer was told (Delete)"
    );
    let policies = world.agent.kernel.host_policies(ip(SRV));
    assert!(
        policies
            .iter()
            .all(|p| p.action == oe_kernel::PolicyAction::Pass),
        "{policies:?}"
    );
    assert!(!policies.is_empty());
    // The next packet in the 120 s meets the shunt, not a negotiation; after them, the trap.
    world.advance(Duration::from_secs(121));
    assert!(
        world.agent.kernel.host_policies(ip(SRV)).is_empty(),
        "shunt gone"
    );
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(verdict.contains("the trap waits"), "{verdict}");
}

#[test]
fn down_in_a_private_group_drops_and_clear_groups_are_left_alone() {
    let (agent, now) = workstation_with_dns(
        "[groups]\nprivate = [\"192.0.2.20/32\"]\nclear = [\"192.0.2.30/32\"]\n",
    );
    let mut world = World::new(agent, vec![], now);
    let out = control(
        &mut world,
        Request::Down {
            host: SRV.into(),
            seconds: None,
        },
        SRV,
    );
    assert!(out[0].contains("is dropped for 900s"), "{out:?}");
    let shunts: Vec<_> = world
        .agent
        .kernel
        .host_policies(ip(SRV))
        .into_iter()
        .filter(|p| p.class == oe_kernel::priority::Class::HostShunt)
        .collect();
    assert!(
        !shunts.is_empty()
            && shunts
                .iter()
                .all(|p| p.action == oe_kernel::PolicyAction::Block),
        "{shunts:?}"
    );
    let out = control(&mut world, Request::Up { host: OTHER.into() }, OTHER);
    assert!(out[0].contains("its group is clear"), "{out:?}");
}
