//! IPv6 neighbour discovery is never trapped. A trap for a global prefix catches the
//! kernel's unicast neighbour solicitations to an on-link host of that prefix (ICMPv6 type
//! 135 matches `::/0 -> 2001:db8::/64` like any packet): the probe is held for an SA that
//! will never come, and the neighbour entry ends FAILED. The exemption policies
//! ([`PolicySpec::neighbour_discovery`]) let ICMPv6 types 133-137 pass in both directions.

use std::time::Instant;

use super::*;

/// `a`'s neighbour entry for `b` made STALE, with fast probing: one second before the first
/// unicast probe, 200 ms between probes.
fn stale_neighbour(pair: &Pair) {
    let link = String::from_utf8(pair.b.ip(&["link", "show", "dev", &pair.b_if]).stdout).unwrap();
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap()
        .to_owned();
    for (key, value) in [("delay_first_probe_time", "1"), ("retrans_time_ms", "200")] {
        pair.a
            .sysctl(&format!("net.ipv6.neigh.{}.{key}", pair.a_if), value);
    }
    pair.a.ip(&[
        "-6",
        "neigh",
        "replace",
        Pair::B6,
        "lladdr",
        &mac,
        "dev",
        &pair.a_if,
        "nud",
        "stale",
    ]);
}

fn neighbour_state(pair: &Pair) -> String {
    let out = pair
        .a
        .ip(&["-6", "neigh", "show", Pair::B6, "dev", &pair.a_if]);
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().last().unwrap_or("NONE").to_owned()
}

/// Uses the STALE entry (a datagram from a socket that bypasses policy, so only the kernel's
/// own probes meet the trap) and waits until the entry is REACHABLE or FAILED.
fn probe_outcome(pair: &Pair) -> String {
    pair.a.run(|| {
        let socket = UdpSocket::bind((ip(Pair::A6), 0)).unwrap();
        oe_kernel::socket::bypass_ipsec(&socket).unwrap();
        socket.send_to(b"use", (ip(Pair::B6), 5000)).unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = neighbour_state(pair);
        if state == "REACHABLE" || state == "FAILED" || Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pair whose `a` traps everything to 2001:db8::/64, plus `extra` policies.
fn trapped_pair(extra: Vec<PolicySpec>) -> Pair {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let trap = PolicySpec::trap(
                TrafficSelector::to(prefix("2001:db8::", 64)),
                x.ownership().reqid(1).unwrap(),
            );
            x.add_policy(&trap).await.unwrap();
            for spec in &extra {
                x.add_policy(spec).await.unwrap();
            }
        })
        .unwrap()
    });
    stale_neighbour(&pair);
    pair
}

#[test]
fn trap_for_a_global_prefix_breaks_neighbour_probes() {
    let pair = trapped_pair(Vec::new());
    assert_eq!(probe_outcome(&pair), "FAILED");
}

#[test]
fn exempted_neighbour_discovery_passes_every_trap_and_shunt() {
    // Besides the trap, block shunts for the neighbour in both directions: the solicitation
    // out and the advertisement in must pass them too.
    let mut specs = PolicySpec::neighbour_discovery();
    let b = TrafficSelector::hosts(ip(Pair::A6), ip(Pair::B6)).unwrap();
    specs.push(PolicySpec::host_shunt(
        b,
        Direction::Out,
        Shunt::Block,
        None,
    ));
    specs.push(PolicySpec::host_shunt(
        b.reversed(),
        Direction::In,
        Shunt::Block,
        None,
    ));
    let pair = trapped_pair(specs);
    assert_eq!(probe_outcome(&pair), "REACHABLE");
    // Traffic other than neighbour discovery is still blocked.
    pair.a.run(|| assert!(blocked(send(Pair::A6, Pair::B6))));
}
