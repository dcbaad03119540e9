//! End to end, inside the UML kernel (real ESP): a workstation running `oe` reaches a server running `oe`
//! whose IPSECKEY is published (forward and reverse) in the signed DNS fixture, and a host without a key.
//!
//! LAN 192.0.2.0/24 + 2001:db8::/64: dns 192.0.2.53 (the fixture's resolver), ws 192.0.2.1 / 2001:db8::1
//! (anonymous client), srv 192.0.2.30 / 2001:db8::30 (key host-ed25519, published for those addresses'
//! reverse names by the fixture), nokey 192.0.2.31 (a PTR but no IPSECKEY).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind, Packet};
use oe_integration::dns::DnsFixture;
use oe_integration::netns::{Lan, Netns};
use oe_integration::process::wait_until;
use oe_integration::{keys_dir, uml};

const WS4: &str = "192.0.2.1";
const WS6: &str = "2001:db8::1";
const SRV4: &str = "192.0.2.30";
const SRV6: &str = "2001:db8::30";
const NOKEY4: &str = "192.0.2.31";

struct Bed {
    ws: Netns,
    srv: Netns,
    nokey: Netns,
    ws_if: String,
    fixture: DnsFixture,
    _dns: Netns,
    _lan: Lan,
}

fn bed() -> Bed {
    let lan = Lan::new();
    let dns = Netns::new("dns");
    lan.attach(&dns, &["192.0.2.53/24"]);
    let ws = Netns::new("ws");
    let ws_if = lan.attach(&ws, &[&format!("{WS4}/24"), &format!("{WS6}/64")]);
    let srv = Netns::new("srv");
    lan.attach(&srv, &[&format!("{SRV4}/24"), &format!("{SRV6}/64")]);
    let nokey = Netns::new("nokey");
    lan.attach(&nokey, &[&format!("{NOKEY4}/24")]);
    let fixture = DnsFixture::builder().resolver("192.0.2.53".parse().unwrap()).start_in(&dns);
    Bed { ws, srv, nokey, ws_if, fixture, _dns: dns, _lan: lan }
}

fn common(fixture: &DnsFixture) -> String {
    format!(
        "[dns]\nupstreams = [\"192.0.2.53\"]\ntrust_anchor = \"{}\"\n[log]\nlevel = \"debug\"\n",
        fixture.trust_anchor_dnskey().display()
    )
}

/// The workstation: anonymous, private-or-clear for the test networks.
fn workstation_config(fixture: &DnsFixture, extra: &str) -> String {
    format!(
        "[identity]\nkey = \"@DIR@/no-key.pem\"\n[groups]\nprivate-or-clear = [\"192.0.2.0/24\", \"2001:db8::/64\"]\n{extra}\n{}",
        common(fixture)
    )
}

/// The server: key host-ed25519 with its address as identity, answering anyone who asks.
fn server_config(fixture: &DnsFixture) -> String {
    format!(
        "[identity]\nkey = \"{}\"\nid = \"address\"\n[groups]\nprivate-or-clear = []\nclear-or-private = [\"192.0.2.0/24\", \"2001:db8::/64\"]\n{}",
        keys_dir().join("host-ed25519.pem").display(),
        common(fixture)
    )
}

fn udp_receiver(ns: &Netns, addr: &str, port: u16) -> UdpSocket {
    let socket = ns.run(|| UdpSocket::bind((addr, port)).unwrap());
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket
}

fn send_udp(ns: &Netns, from: &str, to: &str, port: u16, payload: &[u8]) {
    ns.run(|| UdpSocket::bind((from, 0)).unwrap().send_to(payload, (to, port)).unwrap());
}

fn established(agent: &Agent, peer: &str) -> bool {
    let answer = agent.request(r#"{"command":"peers"}"#);
    answer["result"]["peers"].as_array().is_some_and(|peers| {
        peers.iter().any(|p| p["address"] == peer && p["state"] == "established" && !p["child_sas"].as_array().unwrap().is_empty())
    })
}

fn between<'a>(packets: &'a [Packet], a: &str, b: &str) -> Vec<&'a Packet> {
    let (a, b): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
    packets.iter().filter(|p| p.between(a, b)).collect()
}

#[test]
fn first_datagram_to_a_keyed_host_goes_out_as_esp() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("first_datagram_to_a_keyed_host_goes_out_as_esp");
    }
    let bed = bed();
    let srv = Agent::start(&bed.srv, &server_config(&bed.fixture));
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.fixture, ""));
    let capture = Capture::start(&bed.ws, &bed.ws_if);
    for (ws_addr, srv_addr, port) in [(WS4, SRV4, 5000), (WS6, SRV6, 5006)] {
        let receiver = udp_receiver(&bed.srv, srv_addr, port);
        let started = Instant::now();
        send_udp(&bed.ws, ws_addr, srv_addr, port, b"first datagram");
        let mut buf = [0; 64];
        let (n, _) = receiver.recv_from(&mut buf).unwrap_or_else(|e| {
            panic!("the first datagram to {srv_addr} never arrived ({e}); ws log:\n{}\nsrv log:\n{}", ws.log(), srv.log())
        });
        assert_eq!(&buf[..n], b"first datagram");
        println!("first datagram to {srv_addr} delivered after {:?}", started.elapsed());
        assert!(wait_until(Duration::from_secs(10), || established(&ws, srv_addr)), "no SA to {srv_addr}:\n{}", ws.log());
        send_udp(&bed.ws, ws_addr, srv_addr, port, b"second datagram");
        receiver.recv_from(&mut buf).expect("second datagram");
    }
    let packets = capture.stop();
    for (a, b) in [(WS4, SRV4), (WS6, SRV6)] {
        let flow = between(&packets, a, b);
        let esp = flow.iter().filter(|p| matches!(p.kind, Kind::Esp { .. })).count();
        let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
        assert!(esp >= 2, "{a} <-> {b}: both datagrams as ESP: {flow:?}");
        assert!(clear.is_empty(), "{a} <-> {b}: cleartext on the wire: {clear:?}");
    }
    let explain = ws.request(&format!(r#"{{"command":"explain","host":"{SRV4}"}}"#));
    let verdict = explain["result"]["addresses"][0]["verdict"].as_str().unwrap_or_default().to_owned();
    assert!(verdict.starts_with("encrypted"), "explain: {explain}");
    let status = ws.request(r#"{"command":"status"}"#);
    assert_eq!(status["result"]["kernel"]["esp"], true, "{status}");
    assert!(srv.request(r#"{"command":"peers"}"#)["result"]["peers"].to_string().contains("NULL"), "the server saw an anonymous client");
}

#[test]
fn host_without_a_key_gets_clear_traffic_and_a_visible_shunt() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("host_without_a_key_gets_clear_traffic_and_a_visible_shunt");
    }
    let bed = bed();
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.fixture, "[shunts]\nnegotiation_timeout = \"5s\"\n"));
    let receiver = udp_receiver(&bed.nokey, NOKEY4, 5000);
    send_udp(&bed.ws, WS4, NOKEY4, 5000, b"hello");
    let mut buf = [0; 64];
    // private-or-clear with a pass negotiation shunt: traffic flows in clear while IKE is tried.
    let got = wait_until(Duration::from_secs(10), || {
        send_udp(&bed.ws, WS4, NOKEY4, 5000, b"hello");
        receiver.recv_from(&mut buf).is_ok()
    });
    assert!(got, "traffic to a host without a key must flow in clear:\n{}", ws.log());
    let failed = wait_until(Duration::from_secs(30), || {
        let shunts = ws.request(r#"{"command":"shunts"}"#);
        shunts["result"]["shunts"].as_array().is_some_and(|s| s.iter().any(|s| s["peer"] == NOKEY4 && s["stage"] == "failure" && s["action"] == "pass"))
    });
    assert!(failed, "a pass failure shunt for {NOKEY4}: {}\n{}", ws.request(r#"{"command":"shunts"}"#), ws.log());
    send_udp(&bed.ws, WS4, NOKEY4, 5000, b"after");
    receiver.recv_from(&mut buf).expect("traffic flows under the failure shunt");
    let explain = ws.request(&format!(r#"{{"command":"explain","host":"{NOKEY4}"}}"#));
    let text = explain.to_string();
    assert!(text.contains("not encrypted") && text.contains("absent"), "explain says why: {explain}");
}
