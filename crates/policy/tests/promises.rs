//! Each security promise of the policy core, attacked: engines real, kernel and DNS scripted.

mod util;

use std::net::IpAddr;
use std::time::Duration;

use oe_dns::{AddressVerdict, KeyVerdict};
use oe_ike::wire::Identity;
use oe_policy::protocol::{Report, Request};
use oe_policy::{Input, LocalId, TriggerTarget, WaiterId};
use util::*;

fn v4(s: &str) -> Identity {
    match ip(s) {
        IpAddr::V4(a) => Identity::Ipv4(a),
        IpAddr::V6(a) => Identity::Ipv6(a),
    }
}

/// A server running the core, with key B, answering everyone (the defaults: private-or-clear).
fn server(now: oe_policy::Now) -> Agent {
    Agent::new(
        SRV,
        config(""),
        LocalId::Address,
        Some(key("ed25519_b")),
        now,
    )
}

/// A workstation running the core without a key (an anonymous client), in the default groups.
fn workstation(toml: &str, now: oe_policy::Now) -> Agent {
    Agent::new(WS, config(toml), LocalId::Null, None, now)
}

/// Inbound SPIs of SAs the kernel has for traffic from `addr`.
fn inbound_from(agent: &Agent, addr: &str) -> Vec<u32> {
    agent
        .kernel
        .sas
        .values()
        .filter(|s| s.src == ip(addr))
        .map(|s| s.spi.0)
        .collect()
}

#[test]
fn a_responders_child_sa_is_in_the_kernel_before_its_ike_auth_response_leaves() {
    let now = start();
    let mut agent = server(now);
    agent.dns.insert(reverse(OTHER), absent(now));
    let mut client = RawPeer::new(OTHER, Identity::Null, None, 1);
    client.peer_keys = Some(vec![key("ed25519_b").public_key()]);
    let mut world = World::new(agent, vec![client], now);
    world.connect(0);
    assert_eq!(
        world.peers[0].live_children(),
        1,
        "the client has its child"
    );
    let trace = &world.agent.trace;
    let installed = trace
        .iter()
        .position(|t| t == "kernel:add-sa")
        .expect("SA installed");
    let last_send = trace.iter().rposition(|t| t == "send").unwrap();
    assert!(
        installed < last_send,
        "SA pair before the IKE_AUTH response: {trace:?}"
    );
}

#[test]
fn an_anonymous_peer_claiming_an_authenticated_peers_address_gets_nothing_into_the_kernel() {
    let now = start();
    let mut agent = server(now);
    let client_key = key("ed25519_a");
    agent.dns.insert(
        reverse(OTHER),
        secure("30.2.0.192.in-addr.arpa.", &[&client_key], now),
    );
    let mut client = RawPeer::new(OTHER, v4(OTHER), Some(client_key), 2);
    client.peer_keys = Some(vec![key("ed25519_b").public_key()]);
    // On the path, claiming the client's address: NULL authentication from another port.
    let mut attacker = RawPeer::new(OTHER, Identity::Null, None, 3).on_port(4501);
    attacker.peer_keys = Some(vec![key("ed25519_b").public_key()]);
    let mut world = World::new(agent, vec![client, attacker], now);
    world.connect(0);
    let before = inbound_from(&world.agent, OTHER);
    assert_eq!(before.len(), 1, "the authenticated client's SA pair is in");
    world.connect(1);
    assert!(
        world.agent.events_of("ike-established").len() == 1,
        "the anonymous IKE SA is never accepted"
    );
    assert_eq!(
        inbound_from(&world.agent, OTHER),
        before,
        "no SA of the attacker reached the kernel"
    );
    let refused = world.agent.events_of("refused");
    assert!(
        refused.iter().any(|e| e.detail.contains("never replaces")),
        "{refused:?}"
    );
    let verdict = world.agent.verdict(world.now, OTHER);
    assert!(
        verdict.starts_with("encrypted: ESP with address:192.0.2.30"),
        "{verdict}"
    );
}

/// The responder for SRV answers with NULL authentication (an on-path host, or a server that
/// does not use its key); DNS proves SRV publishes a key.
fn null_responder_world(toml: &str, slow_dns: bool) -> World {
    let now = start();
    let mut agent = workstation(toml, now);
    agent.dns.insert(
        reverse(SRV),
        secure("20.2.0.192.in-addr.arpa.", &[&key("ed25519_b")], now),
    );
    agent.slow_dns = slow_dns;
    let impostor = RawPeer::new(SRV, Identity::Null, None, 4);
    World::new(agent, vec![impostor], now)
}

#[test]
fn a_null_responder_is_refused_when_dns_proves_the_host_has_a_key() {
    let mut world = null_responder_world("", false);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert!(
        world.agent.kernel.sas_with(ip(SRV)).is_empty(),
        "no SA for the impostor"
    );
    let shunts = world.agent.kernel.host_policies(ip(SRV));
    assert!(
        shunts
            .iter()
            .all(|p| p.action == oe_kernel::PolicyAction::Pass),
        "the failure shunt passes (private-or-clear): {shunts:?}"
    );
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(verdict.contains("publishes a key"), "{verdict}");
}

#[test]
fn a_null_responder_that_answers_before_dns_waits_for_the_verdict_and_is_refused() {
    let mut world = null_responder_world("", true);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert!(
        !world
            .agent
            .kernel
            .log
            .iter()
            .any(|op| op == "add-sa" || op == "update-sa"),
        "nothing installed while the verdict is out"
    );
    let now = world.now;
    world.agent.answer_dns(now);
    world.settle();
    assert!(world.agent.kernel.sas_with(ip(SRV)).is_empty());
    assert!(
        !world
            .agent
            .kernel
            .log
            .iter()
            .any(|op| op == "add-sa" || op == "update-sa"),
        "{:?}",
        world.agent.kernel.log
    );
    assert_eq!(
        world.peers[0].live_children(),
        0,
        "the Delete removed the child on the peer too"
    );
}

#[test]
fn a_null_responder_is_accepted_only_when_dns_proves_there_is_no_key_and_the_group_allows_it() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(reverse(SRV), absent(now));
    let mut world = World::new(agent, vec![RawPeer::new(SRV, Identity::Null, None, 5)], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert_eq!(world.agent.kernel.sas_with(ip(SRV)).len(), 2, "encrypted");
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(
        verdict.starts_with("encrypted, unauthenticated"),
        "{verdict}"
    );
    let Report::Peers { peers } = world.agent.ask(world.now, Request::Peers) else {
        panic!()
    };
    assert!(
        peers[0]
            .authentication
            .as_deref()
            .unwrap()
            .starts_with("none: NULL"),
        "{peers:?}"
    );

    // The same host in `private`: never anonymous.
    let now = start();
    let mut agent = workstation("[groups]\nprivate = [\"192.0.2.20/32\"]\n", now);
    agent.dns.insert(reverse(SRV), absent(now));
    let mut world = World::new(agent, vec![RawPeer::new(SRV, Identity::Null, None, 6)], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert!(world.agent.kernel.sas_with(ip(SRV)).is_empty());
    let policies = world.agent.kernel.host_policies(ip(SRV));
    assert!(
        policies
            .iter()
            .any(|p| p.action == oe_kernel::PolicyAction::Block),
        "drop shunt: {policies:?}"
    );
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(
        verdict.contains("not accepted in the private group"),
        "{verdict}"
    );

    // A group the configuration does not name for anonymous encryption.
    let now = start();
    let mut agent = workstation("[ike]\nanonymous = [\"clear-or-private\"]\n", now);
    agent.dns.insert(reverse(SRV), absent(now));
    let mut world = World::new(agent, vec![RawPeer::new(SRV, Identity::Null, None, 7)], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert!(world.agent.kernel.sas_with(ip(SRV)).is_empty());
}

#[test]
fn a_host_without_a_published_key_fails_with_that_root_cause_not_a_timeout() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(reverse(SRV), absent(now));
    // No IKE peer at SRV: nothing answers.
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(11));
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(verdict.contains("no key published"), "{verdict}");
}

/// The kernel holds the packets that raised an ACQUIRE on the trap and re-checks them on a timer
/// that starts at 100 ms. Once DNS proves the host publishes no key, a fail-open group lets the
/// flow pass: the held packets must leave at once, not when the kernel's timer next looks.
#[test]
fn a_keyless_hosts_held_packets_leave_as_soon_as_the_pass_shunt_is_in() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(reverse(SRV), absent(now));
    agent.slow_dns = true;
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert!(
        world.agent.kernel.released.is_empty(),
        "held while the reverse zone is asked"
    );
    let now = world.now;
    world.agent.answer_dns(now);
    assert_eq!(
        world.agent.kernel.released,
        vec![(ip(SRV), "clear")],
        "released through the pass shunt without waiting for the kernel's timer: {:?}",
        world.agent.kernel.log
    );
}

/// The same for a host whose keylessness the agent already knows: the flow passes at once.
#[test]
fn a_host_known_to_be_keyless_is_passed_with_its_held_packets_at_once() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(reverse(SRV), absent(now));
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(11));
    // The failure shunt ends; the trap catches the host again, the verdict is still known.
    world.advance(Duration::from_secs(15 * 60 + 1));
    world.agent.kernel.released.clear();
    world.agent.slow_dns = true;
    world.agent.acquire(world.now, SRV, 2);
    world.settle();
    assert_eq!(
        world.agent.kernel.released,
        vec![(ip(SRV), "clear")],
        "passed before any lookup answered"
    );
}

/// A keyed host: the held packets leave through the new SA as soon as it is in.
#[test]
fn a_keyed_hosts_held_packets_leave_through_the_new_sa() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(
        reverse(SRV),
        secure("20.2.0.192.in-addr.arpa.", &[&key("ed25519_b")], now),
    );
    let server = RawPeer::new(SRV, v4(SRV), Some(key("ed25519_b")), 8);
    let mut world = World::new(agent, vec![server], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert_eq!(world.agent.kernel.released, vec![(ip(SRV), "esp")]);
}

#[test]
fn a_key_the_trigger_bound_to_one_name_never_authenticates_an_address_identity() {
    let now = start();
    let mut agent = workstation("", now);
    let evil = key("ed25519_a");
    // evil.example publishes A <SRV> and its own key; SRV's reverse zone has no key.
    agent.dns.insert(reverse(SRV), absent(now));
    let waiter = WaiterId(1);
    agent.input(
        now,
        Input::Trigger {
            name: name("evil.example."),
            keys: secure("evil.example.", &[&evil], now),
            targets: vec![TriggerTarget {
                remote: ip(SRV),
                local: ip(WS),
            }],
            waiter,
        },
    );
    // The impostor at SRV signs with evil's key, claiming SRV's address as its identity.
    let impostor = RawPeer::new(SRV, v4(SRV), Some(evil.clone()), 8);
    let mut world = World::new(agent, vec![impostor], now);
    world.settle();
    assert!(
        world.agent.kernel.sas_with(ip(SRV)).is_empty(),
        "not authenticated by evil.example's key"
    );
    assert!(
        world.agent.released.contains(&waiter),
        "the held answer is released"
    );
    let refused = world.agent.events_of("auth-refused");
    assert!(
        refused.iter().any(|e| e.detail.contains("no usable key")),
        "{refused:?}"
    );

    // The same key for the name it was looked up for is what the user asked for: accepted.
    let now = start();
    let mut agent = workstation("", now);
    agent.input(
        now,
        Input::Trigger {
            name: name("evil.example."),
            keys: secure("evil.example.", &[&evil], now),
            targets: vec![TriggerTarget {
                remote: ip(SRV),
                local: ip(WS),
            }],
            waiter,
        },
    );
    let named = RawPeer::new(SRV, Identity::Fqdn("evil.example".into()), Some(evil), 9);
    let mut world = World::new(agent, vec![named], now);
    world.settle();
    assert_eq!(world.agent.kernel.sas_with(ip(SRV)).len(), 2);
}

#[test]
fn an_fqdn_identity_needs_its_secure_addresses_to_include_the_peer() {
    let now = start();
    let mut agent = workstation("", now);
    let k = key("ed25519_b");
    agent.dns.insert(reverse(SRV), absent(now));
    agent.dns.insert(
        oe_dns::LookupTarget::Forward(name("srv.example.")),
        secure("srv.example.", &[&k], now),
    );
    agent.addresses.insert(
        name("srv.example."),
        AddressVerdict::Secure {
            owner: name("srv.example."),
            addrs: vec![ip(OTHER)],
            until: now.wall + Duration::from_secs(600),
        },
    );
    let liar = RawPeer::new(SRV, Identity::Fqdn("srv.example".into()), Some(k), 10);
    let mut world = World::new(agent, vec![liar], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert!(world.agent.kernel.sas_with(ip(SRV)).is_empty());
    let refused = world.agent.events_of("auth-refused");
    assert!(
        refused
            .iter()
            .any(|e| e.detail.contains("does not resolve")),
        "{refused:?}"
    );
}

#[test]
fn authentication_ages_out_and_a_key_withdrawn_from_dns_stops_being_accepted() {
    let now = start();
    let mut agent = workstation(
        "[ike]\nreauth_interval = \"1h\"\nidle_timeout = \"0s\"\n",
        now,
    );
    let k = key("ed25519_b");
    agent
        .dns
        .insert(reverse(SRV), secure("20.2.0.192.in-addr.arpa.", &[&k], now));
    let server = RawPeer::new(SRV, v4(SRV), Some(k.clone()), 11);
    let mut world = World::new(agent, vec![server], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert_eq!(world.agent.kernel.sas_with(ip(SRV)).len(), 2);
    let lookups = |w: &World| {
        w.agent
            .asked
            .iter()
            .filter(|q| q.starts_with("20.2.0.192"))
            .count()
    };
    assert_eq!(
        lookups(&world),
        1,
        "the reverse zone is looked up once per negotiation"
    );

    // Still published: re-authentication succeeds and the new SA replaces the old.
    world.advance(Duration::from_secs(3601));
    assert_eq!(lookups(&world), 2, "a fresh lookup");
    assert_eq!(
        world.agent.kernel.sas_with(ip(SRV)).len(),
        2,
        "still encrypted"
    );
    assert!(!world.agent.events_of("ike-retired").is_empty());

    // Withdrawn: the next re-authentication fails and the SA goes.
    world.agent.dns.insert(reverse(SRV), absent(world.now));
    world.advance(Duration::from_secs(3601));
    assert!(
        world.agent.kernel.sas_with(ip(SRV)).is_empty(),
        "{:?}",
        world.agent.events
    );
}

#[test]
fn a_failed_host_whose_shunt_vanished_is_negotiated_with_again() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(reverse(SRV), absent(now));
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(11));
    let shunt = world.agent.kernel.host_policies(ip(SRV))[0].key();
    // The shunt disappears from the kernel (flushed by hand, or its expiry event was lost).
    world.agent.kernel.policies.remove(&shunt);
    world.agent.acquire(world.now, SRV, 2);
    assert_eq!(
        world.agent.events_of("acquire").len(),
        2,
        "negotiating again"
    );
}

#[test]
fn lost_kernel_events_are_recovered_from_the_kernels_state() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(reverse(SRV), absent(now));
    agent.dns.insert(reverse(OTHER), absent(now));
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(11));
    let shunt = world.agent.kernel.host_policies(ip(SRV))[0].key();
    world.agent.kernel.policies.remove(&shunt);
    // An ACQUIRE for OTHER was lost: only its larval state shows it.
    let trap = oe_kernel::Ownership::default().reqid(7).unwrap();
    world
        .agent
        .kernel
        .larval
        .insert((ip(OTHER), 0), (ip(WS), trap));
    let now = world.now;
    world
        .agent
        .input(now, Input::Kernel(oe_kernel::Event::Lost));
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(
        verdict.contains("the trap waits"),
        "SRV is forgotten, the trap applies: {verdict}"
    );
    assert!(
        world
            .agent
            .events_of("acquire")
            .iter()
            .any(|e| e.peer == Some(ip(OTHER))),
        "the lost ACQUIRE is served"
    );
}

#[test]
fn every_policy_outside_private_expires_unless_the_living_agent_refreshes_it() {
    let now = start();
    let mut agent = workstation("[groups]\nprivate = [\"198.51.100.0/24\"]\n", now);
    agent.dns.insert(reverse(SRV), absent(now));
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(11));
    for p in world.agent.kernel.policies.values() {
        let private = p.selector.dst().len() == 24 && p.selector.dst().contains(ip("198.51.100.1"));
        let clear = p.action == oe_kernel::PolicyAction::Pass
            && p.class == oe_kernel::priority::Class::Group;
        // Neighbour discovery exemptions only ever pass traffic.
        let nd = p.class == oe_kernel::priority::Class::Exempt;
        if private || clear || nd {
            continue;
        }
        assert!(p.expires.is_some_and(|s| s <= 60), "{p:?}");
    }
    let updates = |w: &World| {
        w.agent
            .kernel
            .log
            .iter()
            .filter(|o| *o == "refresh")
            .count()
    };
    let before = updates(&world);
    world.advance(Duration::from_secs(21));
    assert!(updates(&world) > before, "refreshed while the agent lives");
}

#[test]
fn a_reload_never_untraps_a_prefix_that_stays() {
    let now = start();
    let mut agent = workstation("[groups]\nprivate = [\"198.51.100.0/24\"]\n", now);
    let next = config("[groups]\nprivate = [\"198.51.100.0/24\", \"203.0.113.0/24\"]\n");
    let table = next.group_table().unwrap();
    agent.kernel.log.clear();
    agent.input(
        now,
        Input::Reload {
            config: Box::new(next),
            table,
        },
    );
    assert!(
        !agent.kernel.log.iter().any(|o| o == "delete-policy"),
        "{:?}",
        agent.kernel.log
    );
    assert_eq!(
        agent
            .kernel
            .log
            .iter()
            .filter(|o| *o == "add-policy")
            .count(),
        1
    );
}

#[test]
fn policies_the_agent_did_not_install_are_never_changed() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(reverse(SRV), absent(now));
    // Someone else's policy for exactly the selector of SRV's shunt.
    let sel = oe_kernel::TrafficSelector::hosts(ip(WS), ip(SRV)).unwrap();
    let foreign = oe_kernel::PolicySpec::host_shunt(
        sel,
        oe_kernel::Direction::Out,
        oe_kernel::Shunt::Pass,
        None,
    );
    agent.kernel.foreign.insert(foreign.key());
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    world.advance(Duration::from_secs(80));
    assert!(
        world.agent.kernel.foreign_touched.is_empty(),
        "{:?}",
        world.agent.kernel.foreign_touched
    );
}

#[test]
fn keys_and_verdicts_are_one_model_explain_reads() {
    let now = start();
    let mut agent = workstation("", now);
    agent.dns.insert(
        reverse(SRV),
        KeyVerdict::NoUsableKey {
            owner: name("20.2.0.192.in-addr.arpa."),
            until: now.wall + Duration::from_secs(60),
        },
    );
    let mut world = World::new(agent, vec![], now);
    world.agent.acquire(world.now, SRV, 1);
    let Report::Explain(e) = world
        .agent
        .ask(world.now, Request::Explain { host: SRV.into() })
    else {
        panic!()
    };
    assert!(
        e.addresses[0]
            .dns
            .iter()
            .any(|d| d.contains("no usable key")),
        "{e:?}"
    );
    let Report::DnsCache { entries } = world.agent.ask(world.now, Request::DnsCache) else {
        panic!()
    };
    assert_eq!(entries[0].outcome, "no-usable-key");
}

#[test]
fn a_group_that_requires_post_quantum_refuses_a_classical_peer() {
    let toml =
        "[groups]\nprivate = [\"192.0.2.20/32\"]\n[ike]\nrequire_post_quantum = [\"private\"]\n";
    let k = key("ed25519_b");
    let dns = |agent: &mut Agent, now| {
        agent
            .dns
            .insert(reverse(SRV), secure("20.2.0.192.in-addr.arpa.", &[&k], now));
    };
    // A classical server (no ML-KEM, as Debian 12's strongSwan and Libreswan).
    let now = start();
    let mut agent = workstation(toml, now);
    dns(&mut agent, now);
    let classical = RawPeer::with(SRV, v4(SRV), Some(k.clone()), 12, |c| {
        c.additional_ke = oe_ike::AdditionalKe::off();
    });
    let mut world = World::new(agent, vec![classical], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert!(world.agent.kernel.sas_with(ip(SRV)).is_empty());
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(
        verdict.contains("requires a post-quantum key exchange"),
        "{verdict}"
    );

    // A hybrid server: accepted, and reported as post-quantum.
    let now = start();
    let mut agent = workstation(toml, now);
    dns(&mut agent, now);
    let hybrid = RawPeer::new(SRV, v4(SRV), Some(k.clone()), 13);
    let mut world = World::new(agent, vec![hybrid], now);
    world.agent.acquire(world.now, SRV, 1);
    world.settle();
    assert_eq!(world.agent.kernel.sas_with(ip(SRV)).len(), 2);
    let Report::Peers { peers } = world.agent.ask(world.now, Request::Peers) else {
        panic!()
    };
    assert!(peers[0].is_post_quantum(), "{peers:?}");
    let verdict = world.agent.verdict(world.now, SRV);
    assert!(
        verdict.contains("post-quantum key exchange: ML_KEM_768"),
        "{verdict}"
    );
}
