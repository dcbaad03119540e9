//! Two `oe` clients behind one NAT, one `oe` server with an address pool (`[ike] address_pool`,
//! RFC 7296 3.15), inside the UML kernel (real ESP). One boot checks, in order: each client gets
//! an address of its own, and its new flows to the server carry that address inside the tunnel
//! (the server sees it as the source: a NAT would have rewritten a cleartext packet's source to
//! its own); the flow whose first packet started the negotiation, bound to the client's own
//! address, is delivered (in clear: the tunnel carries only the assigned address), not held for
//! good; both clients are encrypted at once, each with its own SA pair on the server; only
//! UDP-encapsulated ESP on the server's link besides those first flows; one client stopping
//! (SIGTERM) ends its SAs only, the other keeps its flow, and nothing of the stopped client's
//! (address, route, SAs, policies) is left on its host; the address outlives its 10 s lifetime
//! while the agent renews it, and lapses within it after SIGKILL.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind};
use oe_integration::dns::DnsFixture;
use oe_integration::nat::NatBox;
use oe_integration::netns::Netns;
use oe_integration::process::wait_until;
use oe_integration::scenario::{established, udp_receiver, LanBed, SRV4};
use oe_integration::uml;

const NAT_OUT: &str = "192.0.2.100";
const POOL: &str = "100.64.0.0/24";

/// The server's echo: answers every datagram with the address it came from, until `stop`.
fn echo_source(ns: &Netns) -> std::thread::JoinHandle<()> {
    let s = udp_receiver(ns, SRV4, 7000);
    // It outlives idle periods longer than the receiver's read timeout.
    s.set_read_timeout(None).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if &buf[..n] == b"stop" {
                return;
            }
            let _ = s.send_to(from.ip().to_string().as_bytes(), from);
        }
    })
}

/// A socket on a client bound to no address: the kernel chooses the source, as for any
/// program.
fn unbound(ns: &Netns) -> UdpSocket {
    let s = ns.run(|| UdpSocket::bind(("0.0.0.0", 0)).unwrap());
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Sends every 200 ms until the echo answers; the source address the server saw.
fn source_seen(s: &UdpSocket, limit: Duration) -> Option<IpAddr> {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    while started.elapsed() < limit {
        let _ = s.send_to(b"ping", (SRV4, 7000));
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return std::str::from_utf8(&buf[..n]).ok()?.parse().ok();
        }
    }
    None
}

fn in_pool(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V4(a) if a.octets()[..3] == [100, 64, 0])
}

/// The address assigned to a host and oe's routes, as `ip` shows them.
fn assigned_left(ns: &Netns) -> String {
    let out = ns.sh("ip -4 addr show dev lo | grep 100.64; ip route show proto 111; true");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Sends from the host's own address to the server's port 7001 every 200 ms until `receiver`
/// gets a datagram; the address it came from.
fn first_flow(ns: &Netns, own: &str, receiver: &UdpSocket) -> Option<IpAddr> {
    let s = ns.run(|| UdpSocket::bind((own, 0)).unwrap());
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    while started.elapsed() < Duration::from_secs(15) {
        let _ = s.send_to(b"first", (SRV4, 7001));
        if let Ok((_, from)) = receiver.recv_from(&mut buf) {
            return Some(from.ip());
        }
    }
    None
}

/// What of oe's is left on a host: its addresses, routes, SAs and policies. The kernel's own
/// larval state of the first flow's ACQUIRE (SPI 0, from the private address, which the tunnel's
/// selectors do not cover) is not oe's: it cannot be deleted and lapses after
/// `xfrm_acq_expires`.
fn leftovers(ns: &Netns) -> String {
    let out = ns.sh(
        "ip -4 addr show dev lo | grep 100.64; ip route show proto 111; \
         ip -o xfrm state | grep -v 'spi 0x00000000'; ip -o xfrm policy | grep 100.64; true",
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The server's child SAs, one list per peer.
fn server_children(srv: &Agent) -> Vec<usize> {
    let answer = srv.request(r#"{"command":"peers"}"#);
    answer["result"]["peers"]
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .filter(|p| p["state"] == "established")
                .map(|p| p["child_sas"].as_array().map_or(0, Vec::len))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_oe_clients_behind_one_nat_get_their_own_addresses_and_sas() {
    if !uml::in_guest() {
        return uml::rerun_in_guest(
            "two_oe_clients_behind_one_nat_get_their_own_addresses_and_sas",
        );
    }
    let bed = LanBed::start(DnsFixture::builder());
    let (srv_ns, srv_if) = bed.host("srv", &[&format!("{SRV4}/24")]);
    let nat = NatBox::start(&bed, NAT_OUT);
    let (one, _) = nat.client("one", "10.0.0.2");
    let (two, _) = nat.client("two", "10.0.0.3");
    let srv = Agent::start(
        &srv_ns,
        &format!(
            "{}\n[ike]\naddress_pool = [\"{POOL}\"]\n",
            bed.server_config("host-ed25519.pem", "address")
        ),
    );
    let mut a1 = Agent::start(&one, &bed.workstation_config(""));
    // The second client's address lives 10 s unless renewed (the shortest policy lifetime).
    let short = "[kernel]\npolicy_lifetime = \"10s\"\n";
    let a2 = Agent::start(&two, &bed.workstation_config(short));
    let capture = Capture::start(&srv_ns, &srv_if);
    let echoes = echo_source(&srv_ns);
    let firsts = udp_receiver(&srv_ns, SRV4, 7001);

    // Each client's first flow starts its negotiation and is delivered; new flows then leave
    // from its assigned address.
    let mut seen = Vec::new();
    for (ns, own, agent) in [(&one, "10.0.0.2", &a1), (&two, "10.0.0.3", &a2)] {
        let first = first_flow(ns, own, &firsts);
        assert_eq!(
            first,
            Some(NAT_OUT.parse().unwrap()),
            "the first flow is delivered:\n{}",
            agent.log()
        );
        assert!(
            wait_until(Duration::from_secs(15), || established(agent, SRV4)),
            "{}\n{}",
            agent.log(),
            srv.log()
        );
        let source = source_seen(&unbound(ns), Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no echo:\n{}\n{}", agent.log(), srv.log()));
        assert!(
            in_pool(source),
            "the server saw {source}, not an address of the pool:\n{}",
            agent.log()
        );
        let peers = agent.request(r#"{"command":"peers"}"#).to_string();
        assert!(
            peers.contains(&format!("\"virtual_ip\":\"{source}\"")),
            "oe peers shows the address: {peers}"
        );
        seen.push(source);
    }
    assert_ne!(seen[0], seen[1], "each client its own address");

    // Both at once, each with its own SA pair on the server.
    let (s1, s2) = (unbound(&one), unbound(&two));
    assert_eq!(source_seen(&s1, Duration::from_secs(5)), Some(seen[0]));
    assert_eq!(source_seen(&s2, Duration::from_secs(5)), Some(seen[1]));
    assert_eq!(server_children(&srv), vec![1, 1], "{}", srv.log());
    let srv_peers = srv.request(r#"{"command":"peers"}"#).to_string();
    for vip in &seen {
        assert!(
            srv_peers.contains(&format!("\"assigned_ip\":\"{vip}\"")),
            "the server's peers show {vip}: {srv_peers}"
        );
    }

    // The first client stops: its SAs go, the second's stay.
    a1.stop();
    assert!(
        wait_until(Duration::from_secs(10), || server_children(&srv).len() == 1),
        "{}",
        srv.log()
    );
    assert_eq!(
        source_seen(&s2, Duration::from_secs(5)),
        Some(seen[1]),
        "the second client is still encrypted:\n{}",
        srv.log()
    );
    let left = leftovers(&one);
    assert!(
        left.is_empty(),
        "left on the stopped client's host:\n{left}"
    );

    // The second client's address outlives its lifetime while the agent renews it, and lapses
    // after SIGKILL.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        source_seen(&s2, Duration::from_secs(5)),
        Some(seen[1]),
        "renewed past its 10 s lifetime:\n{}",
        a2.log()
    );
    a2.signal(nix::sys::signal::Signal::SIGKILL);
    std::thread::sleep(Duration::from_secs(12));
    let left = assigned_left(&two);
    assert!(left.is_empty(), "left 12 s after SIGKILL:\n{left}");

    let packets = capture.stop();
    let nat_ip: IpAddr = NAT_OUT.parse().unwrap();
    let srv_ip: IpAddr = SRV4.parse().unwrap();
    let flow: Vec<_> = packets
        .iter()
        .filter(|p| p.between(nat_ip, srv_ip))
        .collect();
    // The first flows (port 7001, from the clients' own addresses) pass in clear by design.
    let clear: Vec<_> = flow
        .iter()
        .filter(|p| {
            let first = matches!(p.kind, Kind::Udp { src_port, dst_port }
                if src_port == 7001 || dst_port == 7001);
            p.is_cleartext_payload() && !first
        })
        .collect();
    assert!(
        clear.is_empty(),
        "cleartext on the server's link: {clear:?}"
    );
    assert!(flow.iter().any(|p| matches!(p.kind, Kind::Esp { .. })));
    println!(
        "addresses {} and {}; server peers: {}",
        seen[0],
        seen[1],
        srv.request(r#"{"command":"peers"}"#)
    );
    srv_ns.run(|| {
        let s = UdpSocket::bind((SRV4, 0)).unwrap();
        let _ = s.send_to(b"stop", (SRV4, 7000));
    });
    let _ = echoes.join();
}
