//! Post-quantum opportunistic encryption end to end, inside the UML kernel (real ESP): an anonymous
//! workstation running `oe` reaches a server running `oe` whose key the signed DNS fixture publishes
//! (the standard LAN of `agent_e2e.rs`). Both agents offer ML-KEM-768 after X25519 by default
//! (RFC 9370 in IKE_INTERMEDIATE, RFC 9242); with `post_quantum = false` on either side the SA
//! still comes up, classical.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind, Packet};
use oe_integration::dns::DnsFixture;
use oe_integration::process::wait_until;
use oe_integration::scenario::{established, send_udp, udp_receiver, StandardBed, SRV4, WS4};
use oe_integration::uml;

/// IKE exchange types (RFC 7296 3.1, RFC 9242, RFC 9370).
const IKE_INTERMEDIATE: u8 = 43;
const IKE_FOLLOWUP_KE: u8 = 44;

const OFF: &str = "[ike]\npost_quantum = false\n";

fn bed() -> StandardBed {
    StandardBed::start(DnsFixture::builder())
}

/// The server (key host-ed25519, its address as identity) and the workstation, each with extra
/// configuration.
fn agents(bed: &StandardBed, srv_extra: &str, ws_extra: &str) -> (Agent, Agent) {
    let srv_config = bed.lanbed.server_config("host-ed25519.pem", "address");
    let srv = Agent::start(&bed.srv, &format!("{srv_config}\n{srv_extra}"));
    let ws = Agent::start(&bed.ws, &bed.lanbed.workstation_config(ws_extra));
    (srv, ws)
}

/// A datagram from the workstation reaches the server, and the workstation reports the SA.
fn reach(bed: &StandardBed, ws: &Agent, srv: &Agent) {
    let receiver = udp_receiver(&bed.srv, SRV4, 5000);
    send_udp(&bed.ws, WS4, SRV4, 5000, b"first");
    let mut buf = [0; 64];
    receiver
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("nothing arrived ({e}):\n{}\n{}", ws.log(), srv.log()));
    let up = wait_until(Duration::from_secs(15), || established(ws, SRV4));
    assert!(up, "no SA:\n{}\n{}", ws.log(), srv.log());
    send_udp(&bed.ws, WS4, SRV4, 5000, b"second");
    receiver.recv_from(&mut buf).expect("second datagram");
}

fn between(packets: &[Packet]) -> Vec<&Packet> {
    let (a, b): (IpAddr, IpAddr) = (WS4.parse().unwrap(), SRV4.parse().unwrap());
    packets.iter().filter(|p| p.between(a, b)).collect()
}

/// The IKE exchange types seen from `from` to the other host.
fn exchanges_from(flow: &[&Packet], from: &str) -> BTreeSet<u8> {
    let from: IpAddr = from.parse().unwrap();
    flow.iter()
        .filter(|p| p.src == from && p.kind == Kind::Ike)
        .filter_map(|p| p.ike_exchange)
        .collect()
}

fn esp_spis(flow: &[&Packet]) -> BTreeSet<u32> {
    flow.iter()
        .filter_map(|p| match p.kind {
            Kind::Esp { spi } => Some(spi),
            _ => None,
        })
        .collect()
}

/// The post-quantum methods an agent reports for its IKE SA with `peer`.
fn post_quantum(agent: &Agent, peer: &str) -> Vec<String> {
    let peers = agent.request(r#"{"command":"peers"}"#);
    let p = peers["result"]["peers"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["address"] == peer).cloned())
        .unwrap_or_else(|| panic!("no peer {peer}: {peers}"));
    serde_json::from_value(p["ike_sa"]["post_quantum"].clone()).unwrap_or_default()
}

/// `oe peers` on an agent, as text.
fn peers_table(agent: &Agent) -> String {
    let out = agent.cli(&["peers"]);
    assert!(out.status.success(), "oe peers: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The default: both agents negotiate ML-KEM-768 in IKE_INTERMEDIATE (exchange type 43 on the
/// wire, both ways), report it, and carry traffic as ESP only; the workstation's short child
/// lifetime makes it rekey the child, with ML-KEM again in IKE_FOLLOWUP_KE (type 44), and the
/// flow goes on over the new SPIs.
#[test]
fn oe_to_oe_is_post_quantum_by_default() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("oe_to_oe_is_post_quantum_by_default");
    }
    let bed = bed();
    let (srv, ws) = agents(&bed, "", "[ike]\nchild_lifetime = \"20s\"\n");
    let capture = Capture::start(&bed.ws, &bed.ws_if);
    reach(&bed, &ws, &srv);
    assert_eq!(post_quantum(&ws, SRV4), ["ML_KEM_768"]);
    assert_eq!(post_quantum(&srv, WS4), ["ML_KEM_768"]);
    for (agent, peer) in [(&ws, SRV4), (&srv, WS4)] {
        let table = peers_table(agent);
        let row = table
            .lines()
            .find(|l| l.starts_with(peer))
            .unwrap_or_default();
        assert!(row.contains("ML_KEM_768"), "POST-QUANTUM column:\n{table}");
        assert!(row.contains("/KE1_ML_KEM_768"), "IKE SA column:\n{table}");
    }
    // A steady flow across the child rekey (90% of 20 s, less up to 10% jitter).
    let receiver = udp_receiver(&bed.srv, SRV4, 5001);
    receiver
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (mut sent, mut received) = (0u32, 0u32);
    let until = Instant::now() + Duration::from_secs(25);
    let mut buf = [0; 64];
    while Instant::now() < until {
        sent += 1;
        send_udp(&bed.ws, WS4, SRV4, 5001, &sent.to_be_bytes());
        received += u32::from(receiver.recv_from(&mut buf).is_ok());
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = ws.request(r#"{"command":"events"}"#).to_string();
    assert!(
        events.contains("rekeyed child SA"),
        "no child rekey: {events}"
    );
    assert_eq!(received, sent, "datagrams lost across the rekey");
    let packets = capture.stop();
    let flow = between(&packets);
    let from_ws = exchanges_from(&flow, WS4);
    let from_srv = exchanges_from(&flow, SRV4);
    for x in [IKE_INTERMEDIATE, IKE_FOLLOWUP_KE] {
        assert!(
            from_ws.contains(&x) && from_srv.contains(&x),
            "exchange {x} both ways: ws {from_ws:?} srv {from_srv:?}"
        );
    }
    // The flow goes one way: the server's inbound SA before and after the rekey.
    let ws4: IpAddr = WS4.parse().unwrap();
    let outbound: Vec<&Packet> = flow.iter().copied().filter(|p| p.src == ws4).collect();
    let spis = esp_spis(&outbound);
    assert!(spis.len() >= 2, "ESP on the old and the new SA: {spis:x?}");
    let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
    assert!(clear.is_empty(), "cleartext on the wire: {clear:?}");
}

/// `post_quantum = false` on either side: no IKE_INTERMEDIATE, a classical X25519 IKE SA that
/// both report as such, and the traffic still goes as ESP only.
#[test]
fn post_quantum_off_on_one_side_still_encrypts_classically() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("post_quantum_off_on_one_side_still_encrypts_classically");
    }
    for off_on_server in [true, false] {
        let bed = bed();
        let (srv_extra, ws_extra) = if off_on_server { (OFF, "") } else { ("", OFF) };
        let (srv, ws) = agents(&bed, srv_extra, ws_extra);
        let capture = Capture::start(&bed.ws, &bed.ws_if);
        reach(&bed, &ws, &srv);
        let case = format!("off on the server: {off_on_server}");
        assert!(post_quantum(&ws, SRV4).is_empty(), "{case}");
        assert!(post_quantum(&srv, WS4).is_empty(), "{case}");
        let table = peers_table(&ws);
        let row = table
            .lines()
            .find(|l| l.starts_with(SRV4))
            .unwrap_or_default();
        assert!(
            row.contains("CURVE_25519") && !row.contains("ML_KEM") && row.contains(" no "),
            "{case}:\n{table}"
        );
        let packets = capture.stop();
        let flow = between(&packets);
        let exchanges: BTreeSet<u8> = exchanges_from(&flow, WS4)
            .union(&exchanges_from(&flow, SRV4))
            .copied()
            .collect();
        assert!(
            !exchanges.contains(&IKE_INTERMEDIATE),
            "{case}: {exchanges:?}"
        );
        assert!(!esp_spis(&flow).is_empty(), "{case}: ESP");
        let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
        assert!(clear.is_empty(), "{case}: cleartext on the wire: {clear:?}");
    }
}
