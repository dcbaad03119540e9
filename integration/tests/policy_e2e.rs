//! The policy core's promises, attacked end to end inside the UML kernel (real ESP, real `oe`
//! processes, the signed DNS fixture):
//! - an on-path host claiming an authenticated client's address completes IKE with NULL
//!   authentication: nothing of it reaches the server's kernel;
//! - a responder for a host whose reverse zone proves a key answers with NULL authentication: it
//!   is refused, and the traffic falls back to clear (private-or-clear) instead of blackholing;
//! - a key the DNS trigger bound to one name (evil.ed.example, whose A record names the victim's
//!   address) never authenticates the victim's address identity;
//! - after `kill -9` with no restart, new flows to a private-or-clear host pass in clear within
//!   `kernel.policy_lifetime`, and a restart that fails on its configuration removes what the
//!   last run left at once;
//! - IPv6 neighbour discovery is never trapped: on-link neighbours stay reachable while oe runs.
//!
//! LAN 192.0.2.0/24 + 2001:db8::/64 (see scenario.rs): ws 192.0.2.1 (anonymous), srv 192.0.2.30
//! (the fixture publishes key host-ed25519 for its reverse name), client 192.0.2.20 (the fixture
//! publishes key host-p256 for its reverse name), nokey 192.0.2.31.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use oe_ike::wire::Identity;
use oe_ike::{Endpoint, Event, LocalAuth};
use oe_integration::agent::{oe_binary, Agent};
use oe_integration::dns::DnsFixture;
use oe_integration::netns::Netns;
use oe_integration::process::wait_until;
use oe_integration::scenario::{
    established, send_udp, udp_receiver, StandardBed, NOKEY4, SRV4, SRV6, WS4, WS6,
};
use oe_integration::{keys_dir, test_key_ipseckey, uml};
use rand_chacha::rand_core::SeedableRng;

const CLIENT4: &str = "192.0.2.20";

/// The server's SA states with `peer` (`ip xfrm state`), as text.
fn states_with(ns: &Netns, peer: &str) -> Vec<String> {
    let out = String::from_utf8_lossy(&ns.ip(&["xfrm", "state"]).stdout).into_owned();
    // Each state starts with a line "src A dst B" at the left margin.
    let mut states: Vec<String> = Vec::new();
    for line in out.lines() {
        match states.last_mut() {
            Some(s) if !line.starts_with("src ") => {
                s.push('\n');
                s.push_str(line);
            }
            _ => states.push(line.to_owned()),
        }
    }
    states.retain(|s| s.lines().next().is_some_and(|l| l.contains(peer)));
    states
}

/// A bare IKE initiator (oe-ike's engine on its own socket, bypassing IPsec) inside `ns`: what an
/// on-path host that owns an address can do. Runs until its IKE SA is gone or `limit` passes, and
/// returns every event it saw.
fn raw_initiator(
    ns: &Netns,
    local: SocketAddr,
    remote: SocketAddr,
    config: oe_ike::Config,
    limit: Duration,
) -> Vec<Event> {
    ns.run(|| {
        let socket = UdpSocket::bind(local).unwrap();
        oe_kernel::socket::bypass_ipsec(&socket).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut ep = Endpoint::new(config, Box::new(rand_chacha::ChaCha20Rng::seed_from_u64(9)));
        let start = Instant::now();
        ep.connect(start, local, remote);
        let (mut events, mut spi, mut buf) = (Vec::new(), 0xe000_0000u32, [0u8; 65_535]);
        while start.elapsed() < limit {
            let now = Instant::now();
            while let Some((h, e)) = ep.poll_event() {
                if let Event::NeedSpi { .. } = e {
                    spi += 1;
                    ep.supply_spi(now, h, spi);
                }
                events.push(e);
            }
            while let Some(t) = ep.poll_transmit() {
                let _ = socket.send_to(&t.contents, t.remote);
            }
            if events.iter().any(|e| matches!(e, Event::Closed { .. })) {
                break;
            }
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                ep.handle_datagram(Instant::now(), from, local, &buf[..n]);
            }
            if ep.poll_timeout().is_some_and(|t| t <= Instant::now()) {
                ep.handle_timeout(Instant::now());
            }
        }
        events
    })
}

/// An anonymous IKE SA from the address of an authenticated client never gets a child SA into
/// the server's kernel, and never displaces the authenticated one.
#[test]
fn an_anonymous_impostor_of_an_authenticated_client_gets_nothing_into_the_kernel() {
    if !uml::in_guest() {
        return uml::rerun_in_guest(
            "an_anonymous_impostor_of_an_authenticated_client_gets_nothing_into_the_kernel",
        );
    }
    let bed = StandardBed::start(DnsFixture::builder());
    let (client, _) = bed.lanbed.host("client", &[&format!("{CLIENT4}/24")]);
    let srv = Agent::start(
        &bed.srv,
        &bed.lanbed.server_config("host-ed25519.pem", "address"),
    );
    // A keyed client: host-p256 (published for 20.2.0.192.in-addr.arpa), its address as identity.
    let client_config = format!(
        "[identity]\nkey = \"{}\"\nid = \"address\"\n[groups]\nprivate-or-clear = [\"{SRV4}/32\"]\n{}",
        keys_dir().join("host-p256.pem").display(),
        bed.lanbed.agent_dns_config()
    );
    let client_agent = Agent::start(&client, &client_config);
    let receiver = udp_receiver(&bed.srv, SRV4, 5000);
    let got = wait_until(Duration::from_secs(15), || {
        send_udp(&client, CLIENT4, SRV4, 5000, b"authenticated");
        established(&srv, CLIENT4) && receiver.recv_from(&mut [0; 64]).is_ok()
    });
    assert!(
        got,
        "the client's SA:\n{}\n{}",
        srv.log(),
        client_agent.log()
    );
    let peers = srv.request(r#"{"command":"peers"}"#).to_string();
    assert!(
        peers.contains("ECDSA"),
        "authenticated by its DNS key: {peers}"
    );
    let before = states_with(&bed.srv, CLIENT4);
    assert_eq!(before.len(), 2, "{before:?}");

    // The impostor: the client's address, another port, NULL authentication.
    let mut config = oe_ike::Config::new(Identity::Null, LocalAuth::Null);
    config.accept_null_peers = true;
    let events = raw_initiator(
        &client,
        format!("{CLIENT4}:4501").parse().unwrap(),
        format!("{SRV4}:500").parse().unwrap(),
        config,
        Duration::from_secs(8),
    );
    let impostor_spis: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaReady { child, .. } => Some(child.outbound_spi),
            _ => None,
        })
        .collect();
    let after = states_with(&bed.srv, CLIENT4);
    for spi in &impostor_spis {
        let hex = format!("0x{spi:08x}");
        assert!(
            after.iter().all(|s| !s.contains(&hex)),
            "the impostor's SA {hex} is in the server's kernel: {after:?}"
        );
    }
    let spis = |states: &[String]| -> Vec<String> {
        states
            .iter()
            .filter_map(|s| s.split_whitespace().skip_while(|w| *w != "spi").nth(1))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        spis(&after),
        spis(&before),
        "the authenticated SA pair is untouched"
    );
    let log = srv.log();
    assert!(
        log.contains("never replaces"),
        "the server refused it: {log}"
    );
    assert!(established(&srv, CLIENT4));
}

/// A responder for a host whose reverse zone proves a key, answering with NULL authentication, is
/// refused: no SA, and the traffic falls back to clear (private-or-clear), delivered.
#[test]
fn a_null_responder_for_a_keyed_host_is_refused_and_traffic_still_flows() {
    if !uml::in_guest() {
        return uml::rerun_in_guest(
            "a_null_responder_for_a_keyed_host_is_refused_and_traffic_still_flows",
        );
    }
    let bed = StandardBed::start(DnsFixture::builder());
    // srv's reverse zone publishes host-ed25519, but the oe there presents NULL.
    let srv = Agent::start(
        &bed.srv,
        &bed.lanbed.server_config("host-ed25519.pem", "null"),
    );
    let ws = Agent::start(&bed.ws, &bed.lanbed.workstation_config(""));
    let receiver = udp_receiver(&bed.srv, SRV4, 5000);
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let delivered = wait_until(Duration::from_secs(20), || {
        send_udp(&bed.ws, WS4, SRV4, 5000, b"clear, not blackholed");
        receiver.recv_from(&mut [0; 64]).is_ok()
    });
    assert!(
        delivered,
        "traffic fell back to clear:\n{}\n{}",
        ws.log(),
        srv.log()
    );
    assert!(!established(&ws, SRV4), "no SA with the NULL responder");
    let explain = ws.request(&format!(r#"{{"command":"explain","host":"{SRV4}"}}"#));
    let verdict = explain["result"]["addresses"][0]["verdict"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(verdict.contains("publishes a key"), "explain: {explain}");
    assert!(
        states_with(&bed.ws, SRV4)
            .iter()
            .all(|s| !s.contains("aead")),
        "no SA in the workstation's kernel"
    );
}

/// evil.ed.example publishes `A <srv's address>` and its own key; an impostor at srv's address
/// signs with evil's key and claims srv's address as its identity. Resolving evil.ed.example
/// through the DNS trigger must not make evil's key an authority for that address.
#[test]
fn a_trigger_bound_key_never_authenticates_the_victims_address() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("a_trigger_bound_key_never_authenticates_the_victims_address");
    }
    let evil = test_key_ipseckey("ws-ed25519");
    let builder = DnsFixture::builder()
        .record("ed.example.", &format!("evil A {SRV4}"))
        .record("ed.example.", &format!("evil IPSECKEY 10 0 4 . {evil}"));
    let bed = StandardBed::start(builder);
    let impostor = Agent::start(
        &bed.srv,
        &bed.lanbed.server_config("ws-ed25519.pem", "address"),
    );
    let ws = Agent::start(
        &bed.ws,
        &bed.lanbed
            .workstation_config("[trigger]\nlisten = [\"127.0.2.53:53\"]\nhold = \"2s\"\n"),
    );
    let answer = bed
        .ws
        .sh("dig +time=5 +tries=1 +short @127.0.2.53 evil.ed.example A");
    let text = String::from_utf8_lossy(&answer.stdout);
    assert!(text.contains(SRV4), "the stub answered: {text}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !established(&ws, SRV4),
        "evil's key authenticated {SRV4}:\n{}",
        ws.log()
    );
    let log = ws.log();
    assert!(
        log.contains("authentication") || log.contains("refused"),
        "the negotiation failed on authentication: {log}\n{}",
        impostor.log()
    );
}

/// `kill -9` and no restart: the agent's private-or-clear traps (and everything else it put there
/// outside `private`) stop catching new flows within `kernel.policy_lifetime`; a later start that
/// fails on its configuration still removes what was left, at once.
#[test]
fn after_kill_9_new_flows_pass_within_the_lifetime_and_a_failed_restart_cleans_up() {
    if !uml::in_guest() {
        return uml::rerun_in_guest(
            "after_kill_9_new_flows_pass_within_the_lifetime_and_a_failed_restart_cleans_up",
        );
    }
    let bed = StandardBed::start(DnsFixture::builder());
    let config = bed
        .lanbed
        .workstation_config("[kernel]\npolicy_lifetime = \"10s\"\n");
    let mut ws = Agent::start(&bed.ws, &config);
    let policies =
        |ns: &Netns| String::from_utf8_lossy(&ns.ip(&["xfrm", "policy"]).stdout).into_owned();
    assert!(
        policies(&bed.ws).contains("192.0.2.0/24"),
        "traps installed"
    );
    ws.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = ws.stop();
    let killed = Instant::now();
    let receiver = udp_receiver(&bed.nokey, NOKEY4, 5000);
    receiver
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let passed = wait_until(Duration::from_secs(20), || {
        send_udp(&bed.ws, WS4, NOKEY4, 5000, b"after the crash");
        receiver.recv_from(&mut [0; 64]).is_ok()
    });
    let after = killed.elapsed();
    println!("new flows passed {after:?} after kill -9 (policy_lifetime 10 s)");
    assert!(passed, "traffic still trapped:\n{}", policies(&bed.ws));
    assert!(after < Duration::from_secs(15), "{after:?}");

    // Leftovers again (a fresh run killed), then a start that fails on its configuration.
    let mut again = Agent::start(&bed.ws, &config);
    again.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = again.stop();
    assert!(policies(&bed.ws).contains("192.0.2.0/24"));
    let broken = again.dir().join("broken.toml");
    std::fs::write(&broken, "[groups]\nprivate = [\"not a prefix\"]\n").unwrap();
    let out = bed
        .ws
        .cmd(oe_binary().to_str().unwrap())
        .args(["run", "--config", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let left = policies(&bed.ws);
    assert!(
        !left.contains("192.0.2.0/24"),
        "leftovers removed at once: {left}"
    );
}

/// With a trap for the whole on-link IPv6 prefix, the kernel's unicast neighbour solicitations
/// (reachability confirmation, RFC 4861 7.3.3) pass: a STALE neighbour entry of an on-link host
/// becomes REACHABLE while oe runs, instead of FAILED.
#[test]
fn ipv6_neighbours_stay_reachable_while_oe_traps_their_prefix() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("ipv6_neighbours_stay_reachable_while_oe_traps_their_prefix");
    }
    let bed = StandardBed::start(DnsFixture::builder());
    let ws = Agent::start(&bed.ws, &bed.lanbed.workstation_config(""));
    let mac = String::from_utf8_lossy(
        &bed.srv
            .sh("ip -o link show | grep -v ' lo:' | grep -o 'link/ether [0-9a-f:]*'")
            .stdout,
    )
    .split_whitespace()
    .nth(1)
    .unwrap()
    .to_owned();
    let ifname = bed.ws_if.clone();
    for (key, value) in [("delay_first_probe_time", "1"), ("retrans_time_ms", "200")] {
        bed.ws
            .sysctl(&format!("net.ipv6.neigh.{ifname}.{key}"), value);
    }
    bed.ws.ip(&[
        "-6", "neigh", "replace", SRV6, "lladdr", &mac, "dev", &ifname, "nud", "stale",
    ]);
    // Use the entry from a socket that bypasses policy: only the kernel's own probe meets the trap.
    bed.ws.run(|| {
        let socket = UdpSocket::bind((WS6, 0)).unwrap();
        oe_kernel::socket::bypass_ipsec(&socket).unwrap();
        socket.send_to(b"use", (SRV6, 5000)).unwrap();
    });
    let state = || {
        let out = bed.ws.ip(&["-6", "neigh", "show", SRV6, "dev", &ifname]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().last().unwrap_or("NONE").to_owned()
    };
    wait_until(Duration::from_secs(10), || {
        let s = state();
        s == "REACHABLE" || s == "FAILED"
    });
    let traps = String::from_utf8_lossy(&bed.ws.ip(&["-6", "xfrm", "policy"]).stdout).into_owned();
    assert!(
        traps.contains("2001:db8::/64"),
        "the prefix is trapped: {traps}"
    );
    assert_eq!(state(), "REACHABLE", "{}", ws.log());
}

/// `oe up`, `oe down`, `oe retry` against a running agent (root), and a control request from
/// another user refused while read-only requests still answer.
#[test]
fn control_commands_work_end_to_end_and_only_for_root() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("control_commands_work_end_to_end_and_only_for_root");
    }
    let bed = StandardBed::start(DnsFixture::builder());
    let srv = Agent::start(
        &bed.srv,
        &bed.lanbed.server_config("host-ed25519.pem", "address"),
    );
    let ws = Agent::start(
        &bed.ws,
        &bed.lanbed
            .workstation_config("[status]\nsocket = \"@DIR@/oe.sock\"\nmode = \"0666\"\n"),
    );
    let text = |out: std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let up = text(ws.cli(&["up", SRV4]));
    assert!(up.contains("negotiating"), "{up}");
    assert!(
        wait_until(Duration::from_secs(10), || established(&ws, SRV4)),
        "oe up brought the SA up before any traffic:\n{}\n{}",
        ws.log(),
        srv.log()
    );
    let down = text(ws.cli(&["down", SRV4, "--for", "60s"]));
    assert!(down.contains("passes in clear for 60s"), "{down}");
    assert!(!established(&ws, SRV4));
    let shunts = text(ws.cli(&["shunts"]));
    assert!(shunts.contains(SRV4) && shunts.contains("pass"), "{shunts}");
    let receiver = udp_receiver(&bed.srv, SRV4, 5000);
    send_udp(&bed.ws, WS4, SRV4, 5000, b"in clear while down");
    receiver
        .recv_from(&mut [0; 64])
        .expect("delivered in clear");
    let retry = text(ws.cli(&["retry", SRV4]));
    assert!(retry.contains("negotiating"), "{retry}");
    assert!(wait_until(Duration::from_secs(10), || established(
        &ws, SRV4
    )));

    // Another user: the socket is open to everyone (mode 0666), control requests are not.
    std::fs::set_permissions(
        ws.dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let as_nobody = |line: &str| {
        let script = format!(
            "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); s.sendall(b'{line}\\n'); print(s.makefile().readline())",
            ws.socket().display().to_string()
        );
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "python3",
                "-c",
            ])
            .arg(script)
            .output()
            .unwrap();
        text(out)
    };
    let refused = as_nobody(&format!(r#"{{"command":"down","host":"{SRV4}"}}"#));
    assert!(refused.contains("forbidden"), "{refused}");
    let status = as_nobody(r#"{"command":"status"}"#);
    assert!(status.contains("\"ok\":true"), "{status}");
    assert!(established(&ws, SRV4), "nothing changed");
}
