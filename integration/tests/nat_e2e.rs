//! Behind a NAT, inside the UML kernel (real ESP): an `oe` workstation on a private LAN behind a
//! NAT router (source NAT with port translation, [`NatBox`]) reaches an `oe` server on the test
//! bed's LAN. One boot checks, in order: the first datagram through the NAT (and, for the same
//! run's comparison, one from a workstation without a NAT); only UDP-encapsulated ESP on the
//! server's link; the NAT rebinding to new ports mid-flow (server-to-client traffic flows again);
//! and a 60 s idle period under a 25 s NAT UDP timeout, after which the server still reaches
//! the client (NAT-keepalives, RFC 3948).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind, Packet};
use oe_integration::dns::DnsFixture;
use oe_integration::nat::NatBox;
use oe_integration::netns::Netns;
use oe_integration::process::wait_until;
use oe_integration::scenario::{established, send_udp, udp_receiver, LanBed, SRV4, WS4};
use oe_integration::uml;

const NAT_OUT: &str = "192.0.2.100";
const CLIENT: &str = "10.0.0.2";

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Seconds from `sent` to the first ESP packet from `from` to the server.
fn first_esp_after(packets: &[Packet], from: &str, sent: f64) -> f64 {
    let from: IpAddr = from.parse().unwrap();
    let srv: IpAddr = SRV4.parse().unwrap();
    packets
        .iter()
        .find(|p| p.src == from && p.dst == srv && matches!(p.kind, Kind::Esp { .. }))
        .map(|p| p.time - sent)
        .unwrap_or_else(|| panic!("no ESP from {from}: {packets:?}"))
}

/// A socket on the client that sends to the server's echo port and reads the echoes.
fn client_socket(ns: &Netns) -> UdpSocket {
    let s = ns.run(|| UdpSocket::bind((CLIENT, 0)).unwrap());
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// The server's echo: answers every datagram to where it came from, until `stop` arrives.
fn echo(ns: &Netns) -> std::thread::JoinHandle<()> {
    let s = udp_receiver(ns, SRV4, 7000);
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if &buf[..n] == b"stop" {
                return;
            }
            let _ = s.send_to(&buf[..n], from);
        }
    })
}

/// Reads and discards what the socket holds (late echoes), so the next read is fresh.
fn drain(s: &UdpSocket) {
    let mut buf = [0u8; 512];
    while s.recv_from(&mut buf).is_ok() {}
}

/// Sends a datagram every 200 ms until one is echoed; how long that took.
fn until_echoed(s: &UdpSocket, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    while started.elapsed() < limit {
        let _ = s.send_to(b"ping", (SRV4, 7000));
        if s.recv_from(&mut buf).is_ok() {
            return Some(started.elapsed());
        }
    }
    None
}

#[test]
fn an_oe_client_behind_a_nat_stays_encrypted_and_reachable() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("an_oe_client_behind_a_nat_stays_encrypted_and_reachable");
    }
    let bed = LanBed::start(DnsFixture::builder());
    let (ws, _) = bed.host("ws", &[&format!("{WS4}/24")]);
    let (srv_ns, srv_if) = bed.host("srv", &[&format!("{SRV4}/24")]);
    let nat = NatBox::start(&bed, NAT_OUT);
    let (client, _) = nat.client("client", CLIENT);
    // Liveness checks would refresh the NAT's mapping too: only keepalives may do it here.
    let quiet = "[ike]\nliveness_interval = \"10m\"\n";
    let srv = Agent::start(
        &srv_ns,
        &format!(
            "{}\n{quiet}",
            bed.server_config("host-ed25519.pem", "address")
        ),
    );
    let ws_agent = Agent::start(&ws, &bed.workstation_config(quiet));
    let c = Agent::start(&client, &bed.workstation_config(quiet));
    let capture = Capture::start(&srv_ns, &srv_if);
    let echoes = echo(&srv_ns);

    // The first datagram, without and then through the NAT.
    let receiver = udp_receiver(&srv_ns, SRV4, 5000);
    let mut buf = [0; 64];
    let direct_sent = epoch();
    send_udp(&ws, WS4, SRV4, 5000, b"direct");
    receiver.recv_from(&mut buf).expect("the direct datagram");
    let s = client_socket(&client);
    let nat_sent = epoch();
    let _ = s.send_to(b"through the nat", (SRV4, 7000));
    let first =
        s.recv_from(&mut [0u8; 64]).is_ok() || until_echoed(&s, Duration::from_secs(10)).is_some();
    assert!(
        first,
        "no echo through the NAT:\n{}\n{}",
        c.log(),
        srv.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || established(&c, SRV4)),
        "{}",
        c.log()
    );
    assert!(established(&ws_agent, SRV4));

    // The NAT rebinds mid-flow: the server's echoes must reach the client's new mapping.
    assert!(until_echoed(&s, Duration::from_secs(2)).is_some());
    drain(&s);
    nat.rebind();
    let recovered = until_echoed(&s, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no echo after the NAT rebound:\n{}\n{}", c.log(), srv.log()));

    // Idle for 60 s under a 25 s UDP timeout: keepalives hold the mapping.
    nat.udp_timeout(25);
    let (_, client_addr) = {
        let srv_side = udp_receiver(&srv_ns, SRV4, 7001);
        let _ = s.send_to(b"addr", (SRV4, 7001));
        srv_side
            .recv_from(&mut buf)
            .expect("the client's address as the server sees it")
    };
    let srv_side = udp_receiver(&srv_ns, SRV4, 7002);
    drain(&s);
    std::thread::sleep(Duration::from_secs(60));
    let mut heard = false;
    for _ in 0..10 {
        let _ = srv_side.send_to(b"after idle", client_addr);
        if s.recv_from(&mut [0u8; 64]).is_ok() {
            heard = true;
            break;
        }
    }
    assert!(
        heard,
        "the server did not reach {client_addr} after 60 s idle:\n{}\n{}",
        c.log(),
        srv.log()
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
    let peers = c.request(r#"{"command":"peers"}"#).to_string();
    assert!(
        peers.contains("UDP 4500"),
        "oe peers shows the encapsulation: {peers}"
    );
    let explain = c
        .request(&format!(r#"{{"command":"explain","host":"{SRV4}"}}"#))
        .to_string();
    assert!(
        explain.contains("a NAT translates our address"),
        "{explain}"
    );
    let srv_peers = srv.request(r#"{"command":"peers"}"#).to_string();
    println!(
        "first datagram -> first ESP: {:.1} ms without NAT, {:.1} ms through the NAT (same run); \
         echoes again {:.0} ms after the NAT rebound",
        first_esp_after(&packets, WS4, direct_sent) * 1000.0,
        first_esp_after(&packets, NAT_OUT, nat_sent) * 1000.0,
        recovered.as_secs_f64() * 1000.0
    );
    println!("server's peers: {srv_peers}");
    let _ = s.send_to(b"stop", (SRV4, 7000));
    let _ = echoes.join();
}
