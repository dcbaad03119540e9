//! End to end, inside the UML kernel (real ESP): a workstation running `oe` reaches a server running `oe`
//! whose IPSECKEY is published (forward and reverse) in the signed DNS fixture, and a host without a key.
//!
//! LAN 192.0.2.0/24 + 2001:db8::/64: dns 192.0.2.53 (the fixture's resolver), ws 192.0.2.1 / 2001:db8::1
//! (anonymous client), srv 192.0.2.30 / 2001:db8::30 (key host-ed25519, published for those addresses'
//! reverse names by the fixture), nokey 192.0.2.31 (a PTR but no IPSECKEY).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::IpAddr;
use std::time::{Duration, Instant};

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind, Packet};
use oe_integration::dns::DnsFixture;
use oe_integration::netns::Netns;
use oe_integration::process::wait_until;
use oe_integration::scenario::{
    established, send_udp, udp_receiver, LanBed, StandardBed, NOKEY4, SRV4, SRV6, WS4, WS6,
};
use oe_integration::uml;

fn bed() -> StandardBed {
    StandardBed::start(DnsFixture::builder())
}

fn workstation_config(bed: &LanBed, extra: &str) -> String {
    bed.workstation_config(extra)
}

/// The server: key host-ed25519 with its address as identity, answering anyone who asks.
fn server_config(bed: &LanBed) -> String {
    bed.server_config("host-ed25519.pem", "address")
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
    let srv = Agent::start(&bed.srv, &server_config(&bed.lanbed));
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.lanbed, ""));
    let capture = Capture::start(&bed.ws, &bed.ws_if);
    for (ws_addr, srv_addr, port) in [(WS4, SRV4, 5000), (WS6, SRV6, 5006)] {
        let receiver = udp_receiver(&bed.srv, srv_addr, port);
        let started = Instant::now();
        send_udp(&bed.ws, ws_addr, srv_addr, port, b"first datagram");
        let mut buf = [0; 64];
        let (n, _) = receiver.recv_from(&mut buf).unwrap_or_else(|e| {
            panic!(
                "the first datagram to {srv_addr} never arrived ({e}); ws log:\n{}\nsrv log:\n{}",
                ws.log(),
                srv.log()
            )
        });
        assert_eq!(&buf[..n], b"first datagram");
        println!(
            "first datagram to {srv_addr} delivered after {:?}",
            started.elapsed()
        );
        assert!(
            wait_until(Duration::from_secs(10), || established(&ws, srv_addr)),
            "no SA to {srv_addr}:\n{}",
            ws.log()
        );
        send_udp(&bed.ws, ws_addr, srv_addr, port, b"second datagram");
        receiver.recv_from(&mut buf).expect("second datagram");
    }
    let packets = capture.stop();
    for (a, b) in [(WS4, SRV4), (WS6, SRV6)] {
        let flow = between(&packets, a, b);
        let esp = flow
            .iter()
            .filter(|p| matches!(p.kind, Kind::Esp { .. }))
            .count();
        let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
        assert!(esp >= 2, "{a} <-> {b}: both datagrams as ESP: {flow:?}");
        assert!(
            clear.is_empty(),
            "{a} <-> {b}: cleartext on the wire: {clear:?}"
        );
    }
    let explain = ws.request(&format!(r#"{{"command":"explain","host":"{SRV4}"}}"#));
    let verdict = explain["result"]["addresses"][0]["verdict"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(verdict.starts_with("encrypted"), "explain: {explain}");
    let status = ws.request(r#"{"command":"status"}"#);
    assert_eq!(status["result"]["kernel"]["esp"], true, "{status}");
    assert!(
        srv.request(r#"{"command":"peers"}"#)["result"]["peers"]
            .to_string()
            .contains("NULL"),
        "the server saw an anonymous client"
    );
}

#[test]
fn host_without_a_key_gets_clear_traffic_and_a_visible_shunt() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("host_without_a_key_gets_clear_traffic_and_a_visible_shunt");
    }
    let bed = bed();
    let ws = Agent::start(
        &bed.ws,
        &workstation_config(&bed.lanbed, "[shunts]\nnegotiation_timeout = \"5s\"\n"),
    );
    let receiver = udp_receiver(&bed.nokey, NOKEY4, 5000);
    send_udp(&bed.ws, WS4, NOKEY4, 5000, b"hello");
    let mut buf = [0; 64];
    // private-or-clear with a pass negotiation shunt: traffic flows in clear while IKE is tried.
    let got = wait_until(Duration::from_secs(10), || {
        send_udp(&bed.ws, WS4, NOKEY4, 5000, b"hello");
        receiver.recv_from(&mut buf).is_ok()
    });
    assert!(
        got,
        "traffic to a host without a key must flow in clear:\n{}",
        ws.log()
    );
    let failed = wait_until(Duration::from_secs(30), || {
        let shunts = ws.request(r#"{"command":"shunts"}"#);
        shunts["result"]["shunts"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["peer"] == NOKEY4 && s["stage"] == "failure" && s["action"] == "pass")
        })
    });
    assert!(
        failed,
        "a pass failure shunt for {NOKEY4}: {}\n{}",
        ws.request(r#"{"command":"shunts"}"#),
        ws.log()
    );
    send_udp(&bed.ws, WS4, NOKEY4, 5000, b"after");
    receiver
        .recv_from(&mut buf)
        .expect("traffic flows under the failure shunt");
    let explain = ws.request(&format!(r#"{{"command":"explain","host":"{NOKEY4}"}}"#));
    let text = explain.to_string();
    assert!(
        text.contains("not encrypted") && text.contains("absent"),
        "explain says why: {explain}"
    );
}

/// A server whose key comes from a tampered (bogus) zone is never trusted: no SA, the failure shunt
/// applies (traffic still flows, private-or-clear), and `explain` says "bogus".
#[test]

fn bogus_key_is_never_used() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("bogus_key_is_never_used");
    }
    let bed = bed();
    // tampered.ed.example. has A 192.0.2.32 and an IPSECKEY changed after signing.
    let (bogus, _) = bed.lanbed.host("bogus", &["192.0.2.32/24"]);

    let srv = Agent::start(
        &bogus,
        &server_config(&bed.lanbed)
            .replace("id = \"address\"", "id = \"fqdn:tampered.ed.example\""),
    );
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.lanbed, ""));
    let receiver = udp_receiver(&bogus, "192.0.2.32", 5000);
    let mut buf = [0; 64];
    let got = wait_until(Duration::from_secs(20), || {
        send_udp(&bed.ws, WS4, "192.0.2.32", 5000, b"x");
        receiver.recv_from(&mut buf).is_ok()
    });
    assert!(
        got,
        "traffic flows in clear (private-or-clear) while the key is refused:\n{}",
        ws.log()
    );
    let refused = wait_until(Duration::from_secs(20), || {
        let e = ws
            .request(r#"{"command":"explain","host":"192.0.2.32"}"#)
            .to_string();
        e.contains("bogus") && e.contains("not encrypted")
    });
    assert!(
        refused,
        "explain names the bogus key: {}\n{}",
        ws.request(r#"{"command":"explain","host":"192.0.2.32"}"#),
        ws.log()
    );
    assert!(!established(&ws, "192.0.2.32"), "no SA from a bogus key");
    let states = String::from_utf8_lossy(&bed.ws.sh("ip -o xfrm state").stdout).into_owned();
    // (A larval SPI-0 state of the trap's ACQUIRE may remain until it expires; it carries no keys.)
    let keyed: Vec<&str> = states
        .lines()
        .filter(|l| l.contains("192.0.2.32") && !l.contains("spi 0x00000000"))
        .collect();
    assert!(
        keyed.is_empty(),
        "no SA, and no allocated SPI left behind, for the bogus peer: {states}"
    );
    let shunts = ws.request(r#"{"command":"shunts"}"#).to_string();
    assert!(
        shunts.contains("failure"),
        "failure shunt visible: {shunts}"
    );
    drop(srv);
}

/// SIGKILL mid-negotiation leaves traps (and maybe a hold) in the kernel; a restarted agent removes what
/// its predecessor left and traffic flows again within seconds. SIGTERM removes everything it installed.
#[test]
fn crash_and_restart_leave_nothing_stale() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("crash_and_restart_leave_nothing_stale");
    }
    let bed = bed();
    let _srv = Agent::start(&bed.srv, &server_config(&bed.lanbed));
    let config = workstation_config(&bed.lanbed, "");
    let ws = Agent::start(&bed.ws, &config);
    send_udp(&bed.ws, WS4, SRV4, 5000, b"start a negotiation");
    std::thread::sleep(Duration::from_millis(20));
    ws.signal(nix::sys::signal::Signal::SIGKILL);
    std::thread::sleep(Duration::from_millis(300));
    let leftover = String::from_utf8_lossy(&bed.ws.sh("ip xfrm policy").stdout).into_owned();
    assert!(
        leftover.contains("192.0.2.0/24"),
        "the killed agent's traps are still there: {leftover}"
    );
    drop(ws);

    let restarted_at = Instant::now();
    let ws = Agent::start(&bed.ws, &config);
    let receiver = udp_receiver(&bed.srv, SRV4, 5001);
    let mut buf = [0; 64];
    let flowing = wait_until(Duration::from_secs(5), || {
        send_udp(&bed.ws, WS4, SRV4, 5001, b"after restart");
        receiver
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        receiver.recv_from(&mut buf).is_ok()
    });
    assert!(
        flowing,
        "traffic flows within 5 s of the restart:\n{}",
        ws.log()
    );
    println!(
        "traffic flowed {:?} after the restart",
        restarted_at.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(10), || established(&ws, SRV4)),
        "re-established:\n{}",
        ws.log()
    );
    // Exactly one set of group policies: the restart removed its predecessor's before installing its own.
    let policies = String::from_utf8_lossy(&bed.ws.sh("ip xfrm policy").stdout).into_owned();
    let traps = policies
        .lines()
        .filter(|l| l.starts_with("src 0.0.0.0/0 dst 192.0.2.0/24"))
        .count();
    assert_eq!(traps, 1, "one trap, not two: {policies}");

    let mut ws = ws;
    assert!(
        ws.stop().is_some_and(|s| s.success()),
        "clean exit on SIGTERM"
    );
    let policies = String::from_utf8_lossy(&bed.ws.sh("ip xfrm policy").stdout).into_owned();
    let states = String::from_utf8_lossy(&bed.ws.sh("ip -o xfrm state").stdout).into_owned();
    // Larval (SPI 0) states of unanswered ACQUIREs cannot be deleted; they hold nothing once the traps are
    // gone and expire by themselves (xfrm_acq_expires).
    let real_states: Vec<&str> = states
        .lines()
        .filter(|l| !l.contains("spi 0x00000000"))
        .collect();
    assert!(
        policies.trim().is_empty() && real_states.is_empty(),
        "SIGTERM removed everything:\n{policies}\n{states}"
    );
}

/// An idle SA (no traffic either way) is torn down and comes back with new traffic; traffic in one
/// direction only keeps it.
#[test]
fn idle_sa_is_torn_down_and_re_established() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("idle_sa_is_torn_down_and_re_established");
    }
    let bed = bed();
    let _srv = Agent::start(&bed.srv, &server_config(&bed.lanbed));
    let ws = Agent::start(
        &bed.ws,
        &workstation_config(&bed.lanbed, "[ike]\nidle_timeout = \"4s\"\n"),
    );
    let receiver = udp_receiver(&bed.srv, SRV4, 5000);
    send_udp(&bed.ws, WS4, SRV4, 5000, b"one");
    let mut buf = [0; 64];
    receiver.recv_from(&mut buf).expect("first datagram");
    assert!(
        wait_until(Duration::from_secs(10), || established(&ws, SRV4)),
        "{}",
        ws.log()
    );
    // One direction only, for three idle periods: not idle.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        send_udp(&bed.ws, WS4, SRV4, 5000, b"keep");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        established(&ws, SRV4),
        "one-way traffic is not idle:\n{}",
        ws.log()
    );
    // Silence: torn down.
    let gone = wait_until(Duration::from_secs(20), || !established(&ws, SRV4));
    assert!(gone, "idle SA torn down:\n{}", ws.log());
    let events = ws.request(r#"{"command":"events"}"#).to_string();
    assert!(events.contains("\"idle\""), "an idle event: {events}");
    // New traffic brings it back.
    while receiver.recv_from(&mut buf).is_ok() {}
    send_udp(&bed.ws, WS4, SRV4, 5000, b"again");
    assert!(
        wait_until(Duration::from_secs(10), || established(&ws, SRV4)),
        "re-established:\n{}",
        ws.log()
    );
}

/// A child SA is rekeyed before it expires while a steady flow runs, without losing a packet.
#[test]
fn rekey_during_a_steady_flow_loses_nothing() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("rekey_during_a_steady_flow_loses_nothing");
    }
    let bed = bed();
    let _srv = Agent::start(&bed.srv, &server_config(&bed.lanbed));
    let ws = Agent::start(
        &bed.ws,
        &workstation_config(&bed.lanbed, "[ike]\nchild_lifetime = \"20s\"\n"),
    );
    let receiver = udp_receiver(&bed.srv, SRV4, 5000);
    receiver
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0; 64];
    send_udp(&bed.ws, WS4, SRV4, 5000, b"warm");
    receiver.recv_from(&mut buf).expect("first datagram");
    assert!(
        wait_until(Duration::from_secs(10), || established(&ws, SRV4)),
        "{}",
        ws.log()
    );
    let (mut sent, mut received) = (0u32, 0u32);
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        sent += 1;
        send_udp(&bed.ws, WS4, SRV4, 5000, &sent.to_be_bytes());
        if receiver.recv_from(&mut buf).is_ok() {
            received += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = ws.request(r#"{"command":"events"}"#).to_string();
    assert!(
        events.contains("rekeyed child SA"),
        "the child was rekeyed: {events}"
    );
    assert_eq!(
        received, sent,
        "no datagram lost across the rekey ({received}/{sent})"
    );
}

/// A peer presenting an FQDN identity is accepted only when the name's SECURE addresses include the
/// peer's address (Libreswan's dns-match-id); the same key at another address is refused.
#[test]
fn fqdn_identity_is_bound_to_its_validated_addresses() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("fqdn_identity_is_bound_to_its_validated_addresses");
    }
    let bed = bed();
    // host.ed.example. has A 192.0.2.30 and the host-ed25519 key: the server is who it claims to be.
    let _srv = Agent::start(
        &bed.srv,
        &server_config(&bed.lanbed).replace("id = \"address\"", "id = \"fqdn:host.ed.example\""),
    );
    // host.rsa.example. has A 192.0.2.10: a host at 192.0.2.33 holding that key must not pass as it.
    let (liar, _) = bed.lanbed.host("liar", &["192.0.2.33/24"]);
    let liar_config = server_config(&bed.lanbed)
        .replace("host-ed25519.pem", "host-rsa2048.pem")
        .replace("id = \"address\"", "id = \"fqdn:host.rsa.example\"");
    let _liar = Agent::start(&liar, &liar_config);
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.lanbed, ""));
    send_udp(&bed.ws, WS4, SRV4, 5000, b"to the real one");
    assert!(
        wait_until(Duration::from_secs(15), || established(&ws, SRV4)),
        "{}",
        ws.log()
    );
    let peers = ws.request(r#"{"command":"peers"}"#).to_string();
    assert!(
        peers.contains("fqdn:host.ed.example") && peers.contains("address matches"),
        "{peers}"
    );

    send_udp(&bed.ws, WS4, "192.0.2.33", 5000, b"to the liar");
    let refused = wait_until(Duration::from_secs(20), || {
        ws.request(r#"{"command":"explain","host":"192.0.2.33"}"#)
            .to_string()
            .contains("does not resolve (securely) to 192.0.2.33")
    });
    assert!(
        refused,
        "{}\n{}",
        ws.request(r#"{"command":"explain","host":"192.0.2.33"}"#),
        ws.log()
    );
    assert!(!established(&ws, "192.0.2.33"));
}

/// The DNS trigger wired into the agent: resolving the server's name through the agent's stub brings the
/// SA up before any packet is sent, and the answer is returned (held until then).
#[test]
fn name_lookup_through_the_stub_brings_the_sa_up_first() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("name_lookup_through_the_stub_brings_the_sa_up_first");
    }
    let bed = bed();
    let _srv = Agent::start(&bed.srv, &server_config(&bed.lanbed));
    let ws = Agent::start(
        &bed.ws,
        &workstation_config(
            &bed.lanbed,
            "[trigger]\nlisten = [\"127.0.2.53:53\"]\nhold = \"2s\"\n",
        ),
    );
    let started = Instant::now();
    let out = bed
        .ws
        .cmd("dig")
        .args(["+short", "+time=5", "@127.0.2.53", "host.ed.example", "A"])
        .output()
        .unwrap();
    let answered = started.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        SRV4,
        "the stub returns the answer: {out:?}"
    );
    assert!(
        established(&ws, SRV4),
        "the SA was up when the answer came back ({answered:?}):\n{}",
        ws.log()
    );
    let status = ws.request(r#"{"command":"status"}"#);
    assert_eq!(status["result"]["trigger"]["secure_keys"], 1, "{status}");
    assert_eq!(
        status["result"]["counters"]["acquires"], 0,
        "no packet was needed: {status}"
    );
    let explain = ws
        .request(r#"{"command":"explain","host":"host.ed.example"}"#)
        .to_string();
    assert!(
        explain.contains("DNS trigger") || explain.contains("secure"),
        "{explain}"
    );
    // A name without a key is answered at once and triggers nothing.
    let out = bed
        .ws
        .cmd("dig")
        .args(["+short", "+time=5", "@127.0.2.53", "nokey.ed.example", "A"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), NOKEY4);
    assert!(!established(&ws, NOKEY4));
}

/// A `private` destination without a key is never reached in clear: its traffic is dropped, with a drop
/// shunt visible in `oe shunts`.
#[test]
fn private_host_without_a_key_is_dropped() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("private_host_without_a_key_is_dropped");
    }
    let bed = bed();
    let ws = Agent::start(
        &bed.ws,
        &workstation_config(
            &bed.lanbed,
            "private = [\"192.0.2.31/32\"]\n[shunts]\nnegotiation_timeout = \"3s\"\n",
        ),
    );
    let receiver = udp_receiver(&bed.nokey, NOKEY4, 5000);
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0; 64];
    let dropped = wait_until(Duration::from_secs(20), || {
        send_udp(&bed.ws, WS4, NOKEY4, 5000, b"secret");
        let shunts = ws.request(r#"{"command":"shunts"}"#).to_string();
        shunts.contains("\"action\":\"drop\"") && shunts.contains("failure")
    });
    assert!(
        dropped,
        "a drop failure shunt: {}\n{}",
        ws.request(r#"{"command":"shunts"}"#),
        ws.log()
    );
    while receiver.recv_from(&mut buf).is_ok() {}
    for _ in 0..5 {
        send_udp(&bed.ws, WS4, NOKEY4, 5000, b"secret");
    }
    assert!(
        receiver.recv_from(&mut buf).is_err(),
        "nothing reaches a private host in clear"
    );
    let explain = ws
        .request(&format!(r#"{{"command":"explain","host":"{NOKEY4}"}}"#))
        .to_string();
    assert!(
        explain.contains("\"group\":\"private\"") && explain.contains("drop"),
        "{explain}"
    );
}

/// The first TCP connection to a new host: its SYN waits for the SA and leaves as ESP, with no
/// retransmission (the kernel queued it; the agent released it the moment the SA was in).
#[test]
fn first_tcp_connection_goes_out_as_esp_without_retransmission() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("first_tcp_connection_goes_out_as_esp_without_retransmission");
    }
    let bed = bed();
    let _srv = Agent::start(&bed.srv, &server_config(&bed.lanbed));
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.lanbed, ""));
    let listener = bed
        .srv
        .run(|| std::net::TcpListener::bind((SRV6, 8080)).unwrap());
    let retrans = |ns: &Netns| -> u64 {
        let snmp = String::from_utf8_lossy(&ns.sh("cat /proc/net/snmp").stdout).into_owned();
        let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
        let i = names
            .split_whitespace()
            .position(|n| n == "RetransSegs")
            .unwrap();
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
    };
    let before = retrans(&bed.ws);
    let capture = Capture::start(&bed.ws, &bed.ws_if);
    let stream = bed.ws.run(|| {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(SRV6.parse().unwrap(), 8080),
            Duration::from_secs(10),
        )
    });
    let mut stream = stream.expect("the first TCP connection succeeds");
    let (mut accepted, _) = listener.accept().unwrap();
    std::io::Write::write_all(&mut stream, b"hello over tcp").unwrap();
    let mut buf = [0; 14];
    std::io::Read::read_exact(&mut accepted, &mut buf).unwrap();
    assert_eq!(&buf, b"hello over tcp");
    drop((stream, accepted));
    let packets = capture.stop();
    let flow = between(&packets, WS6, SRV6);
    let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
    assert!(clear.is_empty(), "no cleartext TCP on the wire: {clear:?}");
    assert!(
        flow.iter().any(|p| matches!(p.kind, Kind::Esp { .. })),
        "{flow:?}"
    );
    assert_eq!(
        retrans(&bed.ws),
        before,
        "no TCP retransmission:\n{}",
        ws.log()
    );
}
