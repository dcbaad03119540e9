//! The DNS trigger end to end, inside the UML kernel (real ESP): an application on the workstation
//! resolves a name through the agent's stub and at once sends a UDP datagram and opens a TCP
//! connection to the answer. The SA must already be up: the first packet to the server is ESP,
//! nothing crosses in clear, the TCP handshake needs no retransmission, and no ACQUIRE was needed
//! (the kernel is left dropping the packet that raises one, `queue_first_packet = false`, so a
//! late SA would show as a lost datagram and a retransmitted SYN). Names without a key, with an
//! insecure key or a bogus one resolve normally and build nothing.
//!
//! LAN 192.0.2.0/24 + 2001:db8::/64: dns 192.0.2.53, ws 192.0.2.1 / 2001:db8::1 (anonymous, stub on
//! 127.0.2.53), srv 192.0.2.30 / 2001:db8::30 (`host.ed.example`, key host-ed25519), nokey 192.0.2.31.
//!
//! The timings printed (run with `--nocapture`): time from the application's query to its first
//! byte delivered encrypted, with a cold key (A, first lookup) and a cached one (AAAA, the key
//! cached by the A lookup, a new IKE SA to the IPv6 address), next to one DNS round trip plus the
//! two IKE round trips read from the capture; and the resolution latency of names without a key
//! through the stub against straight to the resolver.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oe_dns::trigger::message::{answered_addresses, inspect_query, QueryAction};
use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind, Packet};
use oe_integration::dns::{names, DnsFixture};
use oe_integration::netns::Netns;
use oe_integration::process::wait_until;
use oe_integration::scenario::{
    established, udp_receiver, LanBed, StandardBed, NOKEY4, RESOLVER, SRV4, SRV6, WS4, WS6,
};
use oe_integration::uml;

const STUB: &str = "127.0.2.53:53";
const A: u16 = 1;
const AAAA: u16 = 28;
/// Names without keys added to ed.example: `nk<i>` are asked through the stub, `dk<i>` straight
/// from the resolver, all new to every cache.
const COLD_NAMES: usize = 15;

fn bed() -> StandardBed {
    let mut builder = DnsFixture::builder();
    for i in 1..=COLD_NAMES {
        builder = builder
            .record("ed.example.", &format!("nk{i} A {NOKEY4}"))
            .record("ed.example.", &format!("dk{i} A {NOKEY4}"));
    }
    StandardBed::start(builder)
}

/// The workstation: anonymous, private-or-clear for the test networks, the stub on 127.0.2.53,
/// and the kernel left dropping the packet that raises an ACQUIRE.
fn workstation_config(bed: &LanBed) -> String {
    bed.workstation_config(&format!(
        "[trigger]\nlisten = [\"{STUB}\"]\nhold = \"2s\"\n[kernel]\nqueue_first_packet = false\n"
    ))
}

/// The server: key host-ed25519, its address as identity, answering anyone who asks.
fn server_config(bed: &LanBed) -> String {
    bed.server_config("host-ed25519.pem", "address")
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------- the application ----------

fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// One lookup from inside the current namespace: the answer's addresses and its RCODE.
fn resolve(server: &str, name: &str, qtype: u16) -> (Vec<IpAddr>, u8) {
    let query = dns_query(0x0E0E, name, qtype);
    let QueryAction::Forward(question) = inspect_query(&query) else {
        panic!("bad query for {name}")
    };
    let socket = UdpSocket::bind(if server.starts_with('[') {
        "[::1]:0"
    } else {
        "0.0.0.0:0"
    })
    .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.send_to(&query, server).unwrap();
    let mut buf = [0; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no answer from {server} for {name}: {e}"));
    let reply = &buf[..n];
    assert_eq!(&reply[..2], &query[..2]);
    (answered_addresses(&question, reply), reply[3] & 0x0F)
}

/// When each step of the application happened (Unix seconds).
#[derive(Debug)]
struct AppRun {
    query: f64,
    answer: f64,
    addr: IpAddr,
    tcp_connected: f64,
}

/// Resolves `name` through the stub, then at once sends one datagram to port 5000 and opens a TCP
/// connection to port 5001 of the first address, writing a few bytes.
fn application(ws: &Netns, name: &str, qtype: u16) -> AppRun {
    ws.run(|| {
        let query = now();
        let (addrs, rcode) = resolve(STUB, name, qtype);
        let answer = now();
        assert_eq!(rcode, 0, "{name}");
        let addr = addrs[0];
        let local: IpAddr = if addr.is_ipv4() { WS4 } else { WS6 }.parse().unwrap();
        let udp = UdpSocket::bind(SocketAddr::new(local, 0)).unwrap();
        udp.send_to(b"first datagram", (addr, 5000)).unwrap();
        let mut tcp =
            TcpStream::connect_timeout(&SocketAddr::new(addr, 5001), Duration::from_secs(10))
                .unwrap();
        let tcp_connected = now();
        tcp.write_all(b"first bytes over TCP").unwrap();
        AppRun {
            query,
            answer,
            addr,
            tcp_connected,
        }
    })
}

/// The server side: when the datagram and the TCP bytes arrived (Unix seconds).
struct ServerSide {
    udp: std::thread::JoinHandle<f64>,
    tcp: std::thread::JoinHandle<f64>,
}

fn server_side(srv: &Netns, addr: &str) -> ServerSide {
    let receiver = udp_receiver(srv, addr, 5000);
    let listener = srv.run(|| TcpListener::bind((addr, 5001)).unwrap());
    let udp = std::thread::spawn(move || {
        let mut buf = [0; 64];
        let (n, _) = receiver
            .recv_from(&mut buf)
            .expect("the first datagram never arrived");
        assert_eq!(&buf[..n], b"first datagram");
        now()
    });
    let tcp = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0; 64];
        let n = stream.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first bytes over TCP");
        now()
    });
    ServerSide { udp, tcp }
}

/// TCP retransmissions so far in the namespace (`RetransSegs` of /proc/net/snmp).
fn tcp_retransmissions(ns: &Netns) -> u64 {
    let out = ns.cmd("cat").arg("/proc/net/snmp").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("Tcp:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let column = rows[0].iter().position(|h| *h == "RetransSegs").unwrap();
    rows[1][column].parse().unwrap()
}

/// The kernel's XFRM error counters in the namespace (non-zero lines only).
fn xfrm_stat(ns: &Netns) -> String {
    let out = ns.cmd("cat").arg("/proc/net/xfrm_stat").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim_end().ends_with(" 0") && !l.trim_end().ends_with("\t0"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------- what the capture shows ----------

fn between(packets: &[Packet], a: IpAddr, b: IpAddr) -> Vec<&Packet> {
    packets.iter().filter(|p| p.between(a, b)).collect()
}

/// The first and the last IKE round trips of the flow (IKE_SA_INIT and IKE_AUTH; with the
/// post-quantum hybrid an IKE_INTERMEDIATE round trip, possibly fragmented, lies between), from
/// the capture: request out, response back.
fn ike_round_trips(flow: &[&Packet], ws: IpAddr) -> (f64, f64) {
    let ike: Vec<&&Packet> = flow.iter().filter(|p| p.kind == Kind::Ike).collect();
    assert!(
        ike.len() >= 4,
        "IKE_SA_INIT and IKE_AUTH on the wire: {ike:?}"
    );
    assert!(ike[0].src == ws && ike[1].dst == ws, "{ike:?}");
    let last_response = ike.iter().rposition(|p| p.dst == ws).unwrap();
    let last_request = ike[..last_response]
        .iter()
        .rposition(|p| p.src == ws)
        .unwrap_or_else(|| panic!("no request before the last response: {ike:?}"));
    assert!(last_request > 1, "{ike:?}");
    (
        ike[1].time - ike[0].time,
        ike[last_response].time - ike[last_request].time,
    )
}

/// Everything between the two hosts is IKE or ESP (or ICMP: IPv6 neighbour discovery), and the
/// first packet that is not IKE or ICMP is ESP.
fn assert_encrypted_from_the_first_packet(flow: &[&Packet], what: &str) {
    let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
    assert!(clear.is_empty(), "{what}: cleartext on the wire: {clear:?}");
    let first = flow
        .iter()
        .find(|p| !matches!(p.kind, Kind::Ike | Kind::Icmp));
    assert!(
        matches!(first.map(|p| p.kind), Some(Kind::Esp { .. })),
        "{what}: the first packet after IKE must be ESP: {flow:?}"
    );
}

/// The workstation's queries to the resolver sent in [from, to): how many, and the time from the
/// first query to the last answer before `to`.
fn dns_exchanges(packets: &[Packet], from: f64, to: f64) -> (usize, f64) {
    let resolver: IpAddr = RESOLVER.parse().unwrap();
    let queries: Vec<&Packet> = packets
        .iter()
        .filter(|p| p.dst == resolver && p.time >= from && p.time < to)
        .filter(|p| {
            matches!(
                p.kind,
                Kind::Udp { dst_port: 53, .. }
                    | Kind::Tcp {
                        dst_port: 53,
                        syn: true,
                        ..
                    }
            )
        })
        .collect();
    let Some(first) = queries.first().map(|q| q.time) else {
        return (0, 0.0);
    };
    let last_answer = packets
        .iter()
        .filter(|p| p.src == resolver && p.time >= first && p.time < to)
        .map(|p| p.time)
        .fold(first, f64::max);
    (queries.len(), last_answer - first)
}

/// One DNS round trip on the test link: the median of queries for a cached name straight to the
/// resolver.
fn dns_round_trip(ws: &Netns) -> f64 {
    ws.run(|| {
        let server = format!("{RESOLVER}:53");
        let _ = resolve(&server, names::ED_HOST, A);
        let samples = (0..15)
            .map(|_| {
                let t = now();
                let _ = resolve(&server, names::ED_HOST, A);
                now() - t
            })
            .collect();
        median(samples)
    })
}

#[test]
fn first_packets_after_a_lookup_through_the_stub_are_esp() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("first_packets_after_a_lookup_through_the_stub_are_esp");
    }
    let bed = bed();
    let srv = Agent::start(&bed.srv, &server_config(&bed.lanbed));
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.lanbed));
    let capture = Capture::start(&bed.ws, &bed.ws_if);
    let retrans_before = (tcp_retransmissions(&bed.ws), tcp_retransmissions(&bed.srv));
    let mut runs = Vec::new();
    // A first (the key is cold everywhere in the agent), then AAAA (the key is cached; IKE to
    // the IPv6 address is new).
    for (qtype, srv_addr, label) in [(A, SRV4, "cold key (A)"), (AAAA, SRV6, "cached key (AAAA)")] {
        let server = server_side(&bed.srv, srv_addr);
        let run = application(&bed.ws, names::ED_HOST, qtype);
        assert_eq!(run.addr, srv_addr.parse::<IpAddr>().unwrap());
        let udp_arrived = server.udp.join().ok();
        let tcp_arrived = server.tcp.join().ok();
        let lost = udp_arrived.is_none() || tcp_arrived.is_none();
        runs.push((
            label,
            srv_addr,
            run,
            udp_arrived.unwrap_or(f64::NAN),
            tcp_arrived.unwrap_or(f64::NAN),
        ));
        if lost {
            let packets = capture.stop();
            panic!(
                "{label}: the first datagram or the TCP bytes were lost\non the wire: {:#?}\nsrv /proc/net/xfrm_stat:\n{}\n\
                 ws /proc/net/xfrm_stat:\n{}\nws log:\n{}\nsrv log:\n{}",
                packets.iter().filter(|p| !matches!(p.kind, Kind::Udp { dst_port: 53, .. } | Kind::Udp { src_port: 53, .. })).collect::<Vec<_>>(),
                xfrm_stat(&bed.srv),
                xfrm_stat(&bed.ws),
                ws.log(),
                srv.log()
            );
        }
    }
    let retrans_after = (tcp_retransmissions(&bed.ws), tcp_retransmissions(&bed.srv));
    let dns_rt = dns_round_trip(&bed.ws);
    let packets = capture.stop();

    assert_eq!(
        retrans_after, retrans_before,
        "the TCP handshakes needed retransmissions"
    );
    let status = ws.request(r#"{"command":"status"}"#);
    assert_eq!(
        status["result"]["counters"]["acquires"], 0,
        "the SAs were up before any packet: {status}"
    );
    assert_eq!(status["result"]["trigger"]["secure_keys"], 2, "{status}");
    assert_eq!(status["result"]["trigger"]["hold_expired"], 0, "{status}");
    for (label, srv_addr, run, udp_arrived, tcp_arrived) in &runs {
        let (ws_addr, srv_ip): (IpAddr, IpAddr) = if run.addr.is_ipv4() {
            (WS4.parse().unwrap(), srv_addr.parse().unwrap())
        } else {
            (WS6.parse().unwrap(), srv_addr.parse().unwrap())
        };
        let flow = between(&packets, ws_addr, srv_ip);
        assert_encrypted_from_the_first_packet(&flow, label);
        let esp_out = flow
            .iter()
            .filter(|p| p.src == ws_addr && matches!(p.kind, Kind::Esp { .. }))
            .count();
        assert!(
            esp_out >= 3,
            "{label}: datagram, SYN and data as ESP: {flow:?}"
        );
        assert!(established(&ws, srv_addr), "{label}: SA to {srv_addr}");
        let (init, auth) = ike_round_trips(&flow, ws_addr);
        let first_ike = flow.iter().find(|p| p.kind == Kind::Ike).unwrap().time;
        let (dns_queries, dns_busy) = dns_exchanges(&packets, run.query, first_ike);
        println!(
            "{label}: query -> answer {}, -> first datagram delivered (encrypted) {}, -> TCP connected {}, -> TCP bytes delivered {}; \
             query -> first IKE packet {} ({dns_queries} DNS queries to the resolver meanwhile, answered within {}); \
             floor: 1 DNS round trip {} + IKE_SA_INIT {} + IKE_AUTH {} = {}",
            ms(run.answer - run.query),
            ms(udp_arrived - run.query),
            ms(run.tcp_connected - run.query),
            ms(tcp_arrived - run.query),
            ms(first_ike - run.query),
            ms(dns_busy),
            ms(dns_rt),
            ms(init),
            ms(auth),
            ms(dns_rt + init + auth),
        );
    }
}

#[test]
fn names_without_a_usable_key_resolve_at_once_and_build_nothing() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("names_without_a_usable_key_resolve_at_once_and_build_nothing");
    }
    let bed = bed();
    let ws = Agent::start(&bed.ws, &workstation_config(&bed.lanbed));
    let capture = Capture::start(&bed.ws, &bed.ws_if);

    // Insecure and bogus keys: the application gets its address; nothing is negotiated.
    for (name, want) in [
        (names::INSECURE_HOST, "192.0.2.50"),
        (names::TAMPERED_HOST, "192.0.2.32"),
        (names::EXPIRED_HOST, "192.0.2.60"),
    ] {
        let (addrs, rcode) = bed.ws.run(|| resolve(STUB, name, A));
        assert_eq!(
            (addrs, rcode),
            (vec![want.parse::<IpAddr>().unwrap()], 0),
            "{name}"
        );
    }
    let status = ws.request(r#"{"command":"status"}"#);
    let trigger = &status["result"]["trigger"];
    assert_eq!(
        (trigger["insecure"].as_u64(), trigger["bogus"].as_u64()),
        (Some(1), Some(2)),
        "{status}"
    );
    assert_eq!(trigger["secure_keys"], 0, "{status}");
    assert_eq!(
        status["result"]["counters"]["negotiations_started"], 0,
        "no IKE from those keys: {status}"
    );
    let events = ws.request(r#"{"command":"events"}"#).to_string();
    assert!(
        events.contains("tampered.ed.example") && events.contains("bogus"),
        "bogus keys are reported: {events}"
    );

    // Resolution latency of names without a key: through the stub against straight to the
    // resolver, each name new to every cache, then again (cached).
    let (mut cold_stub, mut cold_direct, mut warm_stub, mut warm_direct) =
        (vec![], vec![], vec![], vec![]);
    let resolver = format!("{RESOLVER}:53");
    let timed = |server: &str, name: &str| {
        bed.ws.run(|| {
            let t = now();
            let (addrs, _) = resolve(server, name, A);
            assert_eq!(addrs, vec![NOKEY4.parse::<IpAddr>().unwrap()], "{name}");
            now() - t
        })
    };
    for i in 1..=COLD_NAMES {
        cold_direct.push(timed(&resolver, &format!("dk{i}.ed.example.")));
        cold_stub.push(timed(STUB, &format!("nk{i}.ed.example.")));
    }
    for i in 1..=COLD_NAMES {
        warm_direct.push(timed(&resolver, &format!("dk{i}.ed.example.")));
        warm_stub.push(timed(STUB, &format!("nk{i}.ed.example.")));
    }
    let (cs, cd, wss, wd) = (
        median(cold_stub),
        median(cold_direct),
        median(warm_stub),
        median(warm_direct),
    );
    println!(
        "names without a key, median of {COLD_NAMES}: new name: stub {} vs resolver {} (x{:.2}, +{}); \
         cached: stub {} vs resolver {} (x{:.2}, +{})",
        ms(cs),
        ms(cd),
        cs / cd,
        ms(cs - cd),
        ms(wss),
        ms(wd),
        wss / wd,
        ms(wss - wd)
    );
    let status = ws.request(r#"{"command":"status"}"#);
    assert_eq!(
        status["result"]["trigger"]["no_key"],
        2 * COLD_NAMES,
        "{status}"
    );
    assert_eq!(status["result"]["trigger"]["hold_expired"], 0, "{status}");

    // The traffic to a host without a key goes per policy (private-or-clear: in clear).
    let receiver = udp_receiver(&bed.nokey, NOKEY4, 5000);
    let (addrs, _) = bed.ws.run(|| resolve(STUB, "nk1.ed.example.", A));
    let to = addrs[0];
    let mut buf = [0; 64];
    let got = wait_until(Duration::from_secs(15), || {
        bed.ws.run(|| {
            let s = UdpSocket::bind((WS4, 0)).unwrap();
            let _ = s.send_to(b"hello", (to, 5000));
        });
        receiver.recv_from(&mut buf).is_ok()
    });
    assert!(
        got,
        "traffic to a host without a key flows in clear:\n{}",
        ws.log()
    );
    let packets = capture.stop();
    let flow = between(&packets, WS4.parse().unwrap(), NOKEY4.parse().unwrap());
    assert!(flow.iter().any(|p| p.is_cleartext_payload()), "{flow:?}");
    assert!(
        !flow.iter().any(|p| matches!(p.kind, Kind::Esp { .. })),
        "{flow:?}"
    );
    assert!(!established(&ws, NOKEY4));
}
