//! `oe` against Libreswan 4.10 running its shipped opportunistic-encryption examples
//! (`/usr/share/doc/libreswan/examples/oe-*.conf` of the Debian package, read from the unpacked
//! package and changed only where the example says "Your...": the key's CKAID and the name; the
//! pool is kept), with real ESP in one UML boot. Each Libreswan host gets the policy group files
//! the examples name (the test's CIDRs in one, the others empty) and a default route with a
//! gateway, which `left=%defaultroute` needs. The checks, in order:
//! - a child oe refuses after the peer installed it is deleted on the peer (RFC 7296 1.4.1) and
//!   the fallback to clear delivers: a host running `oe-upgrade-authnull.conf` authenticates with
//!   NULL while its reverse zone publishes a key, which oe refuses after the host's tunnel child is
//!   up; the host keeps no child, and oe's datagrams arrive in clear;
//! - IPv6 in tunnel mode, no NAT: oe reaches `oe-upgrade-authnull.conf` run for IPv6 as
//!   Libreswan's own test `newoe-20-ipv6` runs it (`conn %default` with `hostaddrfamily=ipv6`);
//! - oe as client of `oe-dnssec-server.conf` (tunnel mode; address pool and CAT unused, since oe
//!   asks for no address without a NAT);
//! - a Libreswan client running `oe-upgrade-authnull.conf` reaching a keyless oe host and an oe
//!   server with a key (which answers it with NULL: it announces no signature hash), and over
//!   IPv6 the keyless host;
//! - a Libreswan client running `oe-dnssec-client.conf` is a separate test, ignored: it is
//!   blocked by pluto's resolver (see [`libreswan_dnssec_client_reaches_an_oe_server`]).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind, Packet};
use oe_integration::dns::DnsFixture;
use oe_integration::netns::Netns;
use oe_integration::peers::{Pluto, PlutoSetup, CKAID};
use oe_integration::process::wait_until;
use oe_integration::scenario::{established, send_udp, LanBed, RESOLVER};
use oe_integration::{keys_dir, test_key_ipseckey, uml};

const WS: &str = "192.0.2.1";
const WS6: &str = "2001:db8::1";
/// Runs `oe-dnssec-server.conf` as `lswsrv.rsa.example`.
const DNSSEC_SERVER: &str = "192.0.2.21";
const DNSSEC_SERVER_NAME: &str = "lswsrv.rsa.example";
/// Runs `oe-upgrade-authnull.conf`; its reverse zone publishes a key it does not use.
const AUTHNULL: &str = "192.0.2.22";
/// Runs `oe-upgrade-authnull.conf` for IPv6.
const AUTHNULL6: &str = "2001:db8::23";
/// Run `oe-dnssec-client.conf` and `oe-upgrade-authnull.conf` as clients.
const DNSSEC_CLIENT: &str = "192.0.2.12";
const AUTHNULL_CLIENT: &str = "192.0.2.13";
/// Runs `oe-upgrade-authnull.conf` as a client for IPv6.
const AUTHNULL_CLIENT6: &str = "2001:db8::13";
/// An oe server with an RSA key, published in its reverse zone.
const OE_SERVER: &str = "192.0.2.30";

fn key(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name)).unwrap()
}

/// A shipped example, as the Debian package installs it.
fn example(name: &str) -> String {
    let path = Pluto::root()
        .join("usr/share/doc/libreswan/examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every policy group file the examples name: `cidrs` in `group`, the others empty.
fn groups(group: &str, cidrs: &str) -> Vec<(String, String)> {
    [
        "clear",
        "clear-or-private",
        "private-or-clear",
        "private",
        "block",
    ]
    .iter()
    .map(|g| {
        let text = if *g == group { cidrs } else { "" };
        ((*g).to_owned(), text.to_owned())
    })
    .collect()
}

/// What Libreswan's own IPv6 OE test (`testing/pluto/newoe-20-ipv6`) puts before the same
/// conns: `%defaultroute` and the groups are IPv4 otherwise.
const V6_DEFAULTS: &str = "conn %default\n    hostaddrfamily=ipv6\n    clientaddrfamily=ipv6\n\n";

/// A Libreswan host at `cidrs`. The examples say `left=%defaultroute`, which needs a default
/// route with a gateway: the DNS host, which forwards ([`gateway`]).
fn lsw_host(bed: &LanBed, label: &str, cidrs: &[&str]) -> Netns {
    let (ns, _) = bed.host(label, cidrs);
    if cidrs.iter().any(|c| c.contains('.')) {
        ns.sh(&format!("ip route add default via {RESOLVER}"));
    }
    if cidrs.iter().any(|c| c.contains(':')) {
        ns.sh(&format!("ip -6 route add default via {GATEWAY6}"));
    }
    ns
}

const GATEWAY6: &str = "2001:db8::53";

/// The DNS host forwards, as the LAN's router (IPv4 and IPv6).
fn gateway(bed: &LanBed) {
    let dns = bed.dns_namespace();
    dns.sysctl("net.ipv4.ip_forward", "1");
    dns.sysctl("net.ipv6.conf.all.forwarding", "1");
    let out = dns.sh(&format!(
        "for i in $(ls /sys/class/net); do [ $i = lo ] || ip addr add {GATEWAY6}/64 dev $i nodad; done"
    ));
    assert!(out.status.success(), "{out:?}");
}

fn dnssec_setup(bed: &LanBed) -> String {
    format!(
        "    dnssec-enable=yes\n    dnssec-rootkey-file={}\n",
        bed.fixture.trust_anchor_ds().display()
    )
}

fn start_pluto(ns: &Netns, setup: PlutoSetup) -> Pluto {
    let pluto = Pluto::start(ns, &setup);
    wait_until(Duration::from_secs(10), || {
        pluto.log().contains("loading group")
    });
    std::thread::sleep(Duration::from_millis(300));
    pluto
}

fn receiver(ns: &Netns, addr: &str, port: u16) -> UdpSocket {
    let s = ns.run(|| UdpSocket::bind((addr, port)).unwrap());
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Sends from `ns` every 300 ms until `rx` gets one; whether one arrived within `limit`.
fn delivered(ns: &Netns, from: &str, to: &str, rx: &UdpSocket, limit: Duration) -> bool {
    let port = rx.local_addr().unwrap().port();
    let mut buf = [0u8; 64];
    wait_until(limit, || {
        send_udp(ns, from, to, port, b"datagram");
        rx.recv_from(&mut buf).is_ok()
    })
}

/// The peer's entry in `oe peers`, or "(no peer)".
fn peer_json(agent: &Agent, addr: &str) -> serde_json::Value {
    let answer = agent.request(r#"{"command":"peers"}"#);
    answer["result"]["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["address"] == addr).cloned())
        .unwrap_or_else(|| serde_json::Value::String("(no peer)".into()))
}

fn explain(agent: &Agent, addr: &str) -> String {
    agent
        .request(&format!(r#"{{"command":"explain","host":"{addr}"}}"#))
        .to_string()
}

/// The mode of the peer's first child SA.
fn mode(agent: &Agent, addr: &str) -> String {
    peer_json(agent, addr)["child_sas"][0]["mode"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

/// pluto's states with `peer`, from `whack --showstates`.
fn states_with(pluto: &Pluto, peer: &str) -> Vec<String> {
    let out = pluto.whack(&["--showstates"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("...{peer}")))
        .map(str::to_owned)
        .collect()
}

/// pluto's log without its start-up listing of algorithms and self-tests.
fn pluto_log(pluto: &Pluto) -> String {
    pluto
        .log()
        .lines()
        .filter(|l| l.contains('"') || l.contains("packet from") || l.contains("initiate"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Only ESP (no cleartext) between `a` and `b`, and at least one ESP packet.
fn assert_esp_only(packets: &[Packet], a: &str, b: &str) {
    let (a, b): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
    let flow: Vec<_> = packets.iter().filter(|p| p.between(a, b)).collect();
    let esp = flow
        .iter()
        .filter(|p| matches!(p.kind, Kind::Esp { .. }))
        .count();
    let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
    assert!(esp >= 1, "{a} <-> {b}: ESP on the wire: {flow:?}");
    assert!(clear.is_empty(), "{a} <-> {b}: cleartext: {clear:?}");
}

/// Sends `n` datagrams; all must arrive.
fn all_delivered(ns: &Netns, from: &str, to: &str, rx: &UdpSocket, n: usize) {
    let port = rx.local_addr().unwrap().port();
    let mut buf = [0u8; 64];
    for i in 0..n {
        send_udp(ns, from, to, port, b"again");
        rx.recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("datagram {i} from {from} to {to} lost: {e}"));
    }
}

/// Tunnel mode established by oe (initiator) with `peer`; then only ESP on `link`.
fn check_tunnel(
    agent: &Agent,
    pluto: &Pluto,
    (ws, ws_if, ws_addr): (&Netns, &str, &str),
    (peer_ns, peer): (&Netns, &str),
) {
    let rx = receiver(peer_ns, peer, 5000);
    assert!(
        delivered(ws, ws_addr, peer, &rx, Duration::from_secs(20)),
        "{peer}: nothing delivered:\n{}\n{}",
        agent.log(),
        pluto_log(pluto)
    );
    assert!(
        wait_until(Duration::from_secs(10), || established(agent, peer)),
        "{peer}: not established: {}\n{}\n{}",
        explain(agent, peer),
        agent.log(),
        pluto_log(pluto)
    );
    assert_eq!(mode(agent, peer), "tunnel", "{}", peer_json(agent, peer));
    let capture = Capture::start(ws, ws_if);
    all_delivered(ws, ws_addr, peer, &rx, 3);
    assert_esp_only(&capture.stop(), ws_addr, peer);
    let traffic = pluto.traffic_status();
    assert!(
        traffic.contains(ws_addr) && !traffic.contains("inBytes=0,"),
        "pluto's view: {traffic}"
    );
}

#[test]
fn libreswan_shipped_configs() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("libreswan_shipped_configs");
    }
    let bed = LanBed::start(fixture());
    gateway(&bed);
    let (ws, ws_if) = bed.host("ws", &[&format!("{WS}/24"), &format!("{WS6}/64")]);
    let ws_agent = Agent::start(&ws, &bed.workstation_config(""));
    let mut matrix = Vec::new();

    refusal_is_deleted_on_the_peer(&bed, (&ws, &ws_if), &ws_agent);
    matrix.push("refused child deleted on the peer, fallback to clear delivers: yes".to_owned());

    let ns6 = lsw_host(&bed, "lswnull6", &[&format!("{AUTHNULL6}/64")]);
    let v6 = start_pluto(
        &ns6,
        PlutoSetup {
            conns: format!("{V6_DEFAULTS}{}", example("oe-upgrade-authnull.conf")),
            policies: groups("clear-or-private", "2001:db8::/64\n"),
            ..PlutoSetup::default()
        },
    );
    check_tunnel(&ws_agent, &v6, (&ws, &ws_if, WS6), (&ns6, AUTHNULL6));
    matrix.push("oe -> oe-upgrade-authnull.conf (IPv6): tunnel mode, ESP only".to_owned());

    let server_ns = lsw_host(&bed, "lswsrv", &[&format!("{DNSSEC_SERVER}/24")]);
    let server = start_pluto(
        &server_ns,
        PlutoSetup {
            conns: example("oe-dnssec-server.conf")
                .replace("leftckaid=YourCKAID", &format!("leftckaid={CKAID}"))
                .replace("leftid=@YOURFQDN", &format!("leftid=@{DNSSEC_SERVER_NAME}")),
            rsa_key_pem: Some(key("host-rsa3072.pem")),
            policies: groups("clear-or-private", "192.0.2.0/24\n"),
            ..PlutoSetup::default()
        },
    );
    check_tunnel(
        &ws_agent,
        &server,
        (&ws, &ws_if, WS),
        (&server_ns, DNSSEC_SERVER),
    );
    let vip = peer_json(&ws_agent, DNSSEC_SERVER)["child_sas"][0]["virtual_ip"].clone();
    matrix.push(format!(
        "oe -> oe-dnssec-server.conf: tunnel mode, ESP only, RSA key of {DNSSEC_SERVER_NAME} from DNSSEC; \
         virtual address: {vip} (oe asks for none without a NAT)"
    ));

    matrix.extend(libreswan_clients(&bed, (&ws, &ws_agent)));
    println!("==== Libreswan 4.10 shipped examples:");
    for row in &matrix {
        println!("  {row}");
    }
}

/// oe refuses the NULL authentication of a host whose reverse zone publishes a key, after the
/// host installed its tunnel child: oe's Delete (RFC 7296 1.4.1) removes it there, and oe's
/// failure shunt lets the flow through in clear, which the host accepts.
fn refusal_is_deleted_on_the_peer(bed: &LanBed, (ws, ws_if): (&Netns, &str), agent: &Agent) {
    let ns = lsw_host(bed, "lswnull", &[&format!("{AUTHNULL}/24")]);
    let pluto = start_pluto(
        &ns,
        PlutoSetup {
            conns: example("oe-upgrade-authnull.conf"),
            policies: groups("clear-or-private", "192.0.2.0/24\n"),
            ..PlutoSetup::default()
        },
    );
    let capture = Capture::start(ws, ws_if);
    let rx = receiver(&ns, AUTHNULL, 5000);
    let got = delivered(ws, WS, AUTHNULL, &rx, Duration::from_secs(20));
    let log = || format!("{}\n{}", agent.log(), pluto_log(&pluto));
    assert!(got, "nothing delivered:\n{}", log());
    assert!(
        wait_until(Duration::from_secs(5), || explain(agent, AUTHNULL)
            .contains("but authenticated with NULL")),
        "oe refused the NULL authentication: {}",
        explain(agent, AUTHNULL)
    );
    assert!(
        pluto
            .log()
            .lines()
            .any(|l| l.contains("responder established Child SA")
                && l.contains(&format!("IPsec tunnel [{AUTHNULL}-"))),
        "the host installed its tunnel child before oe refused it:\n{}",
        log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || states_with(&pluto, WS)
            .is_empty()),
        "the host still holds states with oe: {:?}\n{}",
        states_with(&pluto, WS),
        log()
    );
    all_delivered(ws, WS, AUTHNULL, &rx, 3);
    let packets = capture.stop();
    let (ws_ip, peer_ip): (IpAddr, IpAddr) = (WS.parse().unwrap(), AUTHNULL.parse().unwrap());
    let informational = packets
        .iter()
        .any(|p| p.src == ws_ip && p.dst == peer_ip && p.ike_exchange == Some(37));
    assert!(
        informational,
        "oe sent an INFORMATIONAL (the Delete): {packets:?}"
    );
    assert!(
        !packets
            .iter()
            .any(|p| p.between(ws_ip, peer_ip) && matches!(p.kind, Kind::Esp { .. })),
        "no ESP after the refusal"
    );
}

/// Libreswan clients running the shipped client examples, towards a keyless oe host (the
/// workstation) and an oe server with a key.
fn libreswan_clients(bed: &LanBed, (ws, ws_agent): (&Netns, &Agent)) -> Vec<String> {
    let mut rows = Vec::new();
    let (srv, srv_agent) = oe_server(bed);

    let null_ns = lsw_host(bed, "lswnc", &[&format!("{AUTHNULL_CLIENT}/24")]);
    let null_client = start_pluto(
        &null_ns,
        PlutoSetup {
            conns: example("oe-upgrade-authnull.conf"),
            policies: groups("private-or-clear", &format!("{WS}/32\n{OE_SERVER}/32\n")),
            ..PlutoSetup::default()
        },
    );
    let (row, up) = client_cell(
        "oe-upgrade-authnull.conf -> keyless oe host",
        (&null_ns, AUTHNULL_CLIENT, &null_client),
        (ws, ws_agent, WS),
    );
    rows.push(row);
    assert!(up, "{rows:?}");
    // Its client announces no signature hash and wants NULL from the server too: the server
    // answers with NULL (before, it failed to sign and the client fell back to clear).
    let (row, up) = client_cell(
        "oe-upgrade-authnull.conf -> oe server with a key",
        (&null_ns, AUTHNULL_CLIENT, &null_client),
        (&srv, &srv_agent, OE_SERVER),
    );
    rows.push(row);
    assert!(up, "{rows:?}");

    let ns6 = lsw_host(bed, "lswnc6", &[&format!("{AUTHNULL_CLIENT6}/64")]);
    let client6 = start_pluto(
        &ns6,
        PlutoSetup {
            conns: format!("{V6_DEFAULTS}{}", example("oe-upgrade-authnull.conf")),
            policies: groups("private-or-clear", &format!("{WS6}/128\n")),
            ..PlutoSetup::default()
        },
    );
    let (row, up) = client_cell(
        "oe-upgrade-authnull.conf (IPv6) -> keyless oe host",
        (&ns6, AUTHNULL_CLIENT6, &client6),
        (ws, ws_agent, WS6),
    );
    rows.push(row);
    assert!(up, "{rows:?}");
    rows
}

/// An oe server at [`OE_SERVER`] with an RSA key published in its reverse zone.
fn oe_server(bed: &LanBed) -> (Netns, Agent) {
    let (srv, srv_if) = bed.host("srv", &[&format!("{OE_SERVER}/24")]);
    // pluto checks the responder's AUTH before its own DNS lookup returns on a LAN without delay
    // (see agent_interop.rs): give the server a real one's distance.
    srv.sh(&format!("tc qdisc add dev {srv_if} root netem delay 200ms"));
    let agent = Agent::start(&srv, &bed.server_config("host-rsa3072.pem", "address"));
    (srv, agent)
}

/// The records the tests publish: the Libreswan server's name, key and address, and keys in
/// the reverse zone for [`AUTHNULL`] (which does not use it) and [`OE_SERVER`].
fn fixture() -> oe_integration::dns::Builder {
    let rsa = test_key_ipseckey("host-rsa3072");
    DnsFixture::builder()
        .record("rsa.example.", &format!("lswsrv A {DNSSEC_SERVER}"))
        .record("rsa.example.", &format!("lswsrv IPSECKEY 10 0 2 . {rsa}"))
        .record(
            "2.0.192.in-addr.arpa.",
            &format!("22 IPSECKEY 10 0 2 . {rsa}"),
        )
        .record(
            "2.0.192.in-addr.arpa.",
            &format!("30 IPSECKEY 10 0 2 . {rsa}"),
        )
}

/// `oe-dnssec-client.conf` names no identity for the server: pluto looks its key up in the
/// reverse zone of the server's address. Its libunbound answers the documentation ranges'
/// reverse zones from its built-in local zones (unbound's AS112 defaults: libunbound alone, with
/// a forwarder that never answers, says NXDOMAIN for 30.2.0.192.in-addr.arpa at once; pluto logs
/// "returned NOERROR rr parse error DNS response contains no answer" and "fetching IDr IPsec key
/// using DNS failed"), and Libreswan 4.10 offers no option to pass `local-zone: ... nodefault`
/// to it (lib/libswan/unbound.c sets only resolv.conf, hosts, ports and trust anchors); the test
/// bed may use no other addresses. The client's flow is then lost for the whole test (15 s):
/// pluto leaves the kernel's larval ACQUIRE state in place despite `failureshunt=passthrough`.
#[test]
#[ignore = "blocked: pluto's libunbound answers the reverse zone of 192.0.2.0/24 from its built-in local zone, and Libreswan 4.10 cannot turn that off"]
fn libreswan_dnssec_client_reaches_an_oe_server() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("libreswan_dnssec_client_reaches_an_oe_server");
    }
    let bed = LanBed::start(fixture());
    gateway(&bed);
    let (srv, srv_agent) = oe_server(&bed);
    let ns = lsw_host(&bed, "lswcli", &[&format!("{DNSSEC_CLIENT}/24")]);
    let pluto = start_pluto(
        &ns,
        PlutoSetup {
            conns: example("oe-dnssec-client.conf"),
            setup_extra: dnssec_setup(&bed),
            resolv_conf: Some(format!("nameserver {RESOLVER}\n")),
            policies: groups("private-or-clear", &format!("{OE_SERVER}/32\n")),
            ..PlutoSetup::default()
        },
    );
    let (row, up) = client_cell(
        "oe-dnssec-client.conf -> oe server with a key",
        (&ns, DNSSEC_CLIENT, &pluto),
        (&srv, &srv_agent, OE_SERVER),
    );
    assert!(up, "{row}");
}

/// A Libreswan client's flow to an oe host: whether it arrived, and whether encrypted (a row of
/// the matrix, and whether a tunnel-mode child SA carried it with ESP only on the wire).
fn client_cell(
    name: &str,
    (ns, addr, pluto): (&Netns, &str, &Pluto),
    (server_ns, agent, server): (&Netns, &Agent, &str),
) -> (String, bool) {
    let rx = receiver(server_ns, server, 5001);
    let got = delivered(ns, addr, server, &rx, Duration::from_secs(15));
    let up = wait_until(Duration::from_secs(5), || {
        established(agent, addr) && pluto.traffic_status().contains(server)
    });
    if !up {
        println!(
            "==== {name}: delivered {got}, not encrypted\n{}\n{}\n{}",
            explain(agent, addr),
            pluto_log(pluto),
            agent.log()
        );
        return (
            format!("{name}: not encrypted (delivered: {got}): see above"),
            false,
        );
    }
    let peer = peer_json(agent, addr);
    let mode = mode(agent, addr);
    // On the sender's link: the receiver's capture also shows each tunnel-mode packet again
    // after decapsulation (the inner packet re-enters through the same interface).
    let capture = Capture::start(ns, &interface_of(ns));
    all_delivered(ns, addr, server, &rx, 3);
    let packets = capture.stop();
    let (a, b): (IpAddr, IpAddr) = (addr.parse().unwrap(), server.parse().unwrap());
    let clear = packets
        .iter()
        .any(|p| p.between(a, b) && p.is_cleartext_payload());
    let ok = mode == "tunnel" && !clear;
    if !ok {
        println!(
            "==== {name}: {peer}\n{}\n{packets:?}\n{}",
            pluto_log(pluto),
            String::from_utf8_lossy(&ns.sh("ip xfrm policy; ip xfrm state").stdout)
        );
    }
    (
        format!("{name}: {mode} mode, cleartext on the wire afterwards: {clear}"),
        ok,
    )
}

/// The namespace's one LAN interface.
fn interface_of(ns: &Netns) -> String {
    let out = ns.sh("ls /sys/class/net | grep -v '^lo$' | head -1");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
