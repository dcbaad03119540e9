//! Two `oe` clients behind one NAT, one `oe` server with an address pool (`[ike] address_pool`,
//! RFC 7296 3.15), inside the UML kernel (real ESP). One boot checks, in order: each client gets
//! an address of its own, and its new flows to the server carry that address inside the tunnel
//! (the server sees it as the source: a NAT would have rewritten a cleartext packet's source to
//! its own); both clients are encrypted at once, each with its own SA pair on the server; only
//! UDP-encapsulated ESP on the server's link; one client stopping (SIGTERM) ends its SAs only,
//! the other keeps its flow, and nothing of the stopped client's (address, route, SAs,
//! policies) is left on its host.
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
    let a2 = Agent::start(&two, &bed.workstation_config(""));
    let capture = Capture::start(&srv_ns, &srv_if);
    let echoes = echo_source(&srv_ns);

    // Each client's first flow starts its negotiation; new flows then leave from its address.
    let mut seen = Vec::new();
    for (ns, agent) in [(&one, &a1), (&two, &a2)] {
        let _ = source_seen(&unbound(ns), Duration::from_secs(2));
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

    let packets = capture.stop();
    let nat_ip: IpAddr = NAT_OUT.parse().unwrap();
    let srv_ip: IpAddr = SRV4.parse().unwrap();
    let flow: Vec<_> = packets
        .iter()
        .filter(|p| p.between(nat_ip, srv_ip))
        .collect();
    let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
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
