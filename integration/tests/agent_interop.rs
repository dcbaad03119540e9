//! `oe` against the opportunistic encryption of other implementations, with real ESP (UML kernel):
//! - an `oe` workstation (anonymous) reaching a Libreswan server that authenticates with an RSA key published
//!   in its reverse zone (Libreswan's OE server: `leftauth=rsasig`, `rightauth=null`);
//! - a Libreswan anonymous client (`leftauth=null`, the server's key fetched by pluto from DNSSEC with
//!   `rightrsasigkey=%dnsondemand`) reaching an `oe` server that presents an FQDN identity and an RSA key;
//! - strongSwan with a trap policy (`start_action=trap`) reaching an `oe` server, which authenticates charon by
//!   the Ed25519 key in charon's reverse zone.
//!
//! Libreswan 4.10 has no Ed25519 and its resolver refuses the documentation ranges' reverse zones, so it gets
//! RSA keys and an FQDN identity. Debian's strongSwan 5.9.8 is built without the ipseckey and unbound
//! plugins, so charon is given the `oe` server's public key in its configuration.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::IpAddr;
use std::time::Duration;

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind};
use oe_integration::dns::DnsFixture;
use oe_integration::peers::{Charon, CharonSetup, Pluto, PlutoSetup, CKAID};
use oe_integration::process::wait_until;
use oe_integration::scenario::{established, send_udp, udp_receiver, LanBed};
use oe_integration::{keys_dir, test_key_ipseckey, uml};

fn key(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name)).unwrap()
}

fn assert_esp_only(packets: &[oe_integration::capture::Packet], a: &str, b: &str) {
    let (a, b): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
    let flow: Vec<_> = packets.iter().filter(|p| p.between(a, b)).collect();
    let esp = flow
        .iter()
        .filter(|p| matches!(p.kind, Kind::Esp { .. }))
        .count();
    let clear: Vec<_> = flow.iter().filter(|p| p.is_cleartext_payload()).collect();
    assert!(esp >= 1, "{a} <-> {b}: ESP on the wire: {flow:?}");
    assert!(
        clear.is_empty(),
        "{a} <-> {b}: cleartext on the wire: {clear:?}"
    );
}

#[test]
fn oe_client_reaches_a_libreswan_server() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("oe_client_reaches_a_libreswan_server");
    }
    let rsa = test_key_ipseckey("host-rsa3072");
    let bed = LanBed::start(DnsFixture::builder().record(
        "2.0.192.in-addr.arpa.",
        &format!("11 IPSECKEY 10 0 2 . {rsa}"),
    ));
    let (ws, ws_if) = bed.host("ws", &["192.0.2.1/24"]);
    let (lsw, _) = bed.host("lsw", &["192.0.2.11/24"]);
    let pluto = Pluto::start(&lsw, &PlutoSetup {
        conns: format!(
            "conn oe-server\n    left=192.0.2.11\n    leftid=192.0.2.11\n    leftckaid={CKAID}\n    leftauth=rsasig\n    \
             right=%any\n    rightid=%null\n    rightauth=null\n    type=transport\n    ikev2=insist\n    \
             leftupdown=%disabled\n    auto=add\n"
        ),
        rsa_key_pem: Some(key("host-rsa3072.pem")),
        ..PlutoSetup::default()
    });
    let agent = Agent::start(&ws, &bed.workstation_config(""));
    let capture = Capture::start(&ws, &ws_if);
    let receiver = udp_receiver(&lsw, "192.0.2.11", 5000);
    let mut buf = [0; 64];
    send_udp(&ws, "192.0.2.1", "192.0.2.11", 5000, b"to libreswan");
    receiver
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("datagram lost ({e}):\n{}\n{}", agent.log(), pluto.log()));
    assert!(
        wait_until(Duration::from_secs(10), || established(
            &agent,
            "192.0.2.11"
        )),
        "{}\n{}",
        agent.log(),
        pluto.log()
    );
    send_udp(&ws, "192.0.2.1", "192.0.2.11", 5000, b"again");
    receiver.recv_from(&mut buf).unwrap();
    assert_esp_only(&capture.stop(), "192.0.2.1", "192.0.2.11");
    let traffic = pluto.traffic_status();
    assert!(
        traffic.contains("inBytes=") && traffic.contains("192.0.2.1"),
        "pluto's view: {traffic}"
    );
    let peers = agent.request(r#"{"command":"peers"}"#).to_string();
    assert!(
        peers.contains("address:192.0.2.11") && peers.contains("RSA"),
        "oe authenticated Libreswan's RSA key: {peers}"
    );
}

#[test]
fn libreswan_anonymous_client_reaches_an_oe_server() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("libreswan_anonymous_client_reaches_an_oe_server");
    }
    let rsa = test_key_ipseckey("host-rsa3072");
    let bed = LanBed::start(
        DnsFixture::builder()
            .record("rsa.example.", "srvrsa A 192.0.2.30")
            .record("rsa.example.", &format!("srvrsa IPSECKEY 10 0 2 . {rsa}")),
    );
    let (srv, srv_if) = bed.host("srv", &["192.0.2.30/24"]);
    let (lsw, _) = bed.host("lsw", &["192.0.2.12/24"]);
    // Libreswan 4.10 looks the server's IPSECKEY up while it sends IKE_SA_INIT and does not wait for the
    // answer before checking IKE_AUTH's signature (its initiator_fetch_idr_ipseckey never suspends): on
    // a LAN with no delay, oe can answer IKE_AUTH (about 20 ms) before pluto's first DNSSEC lookup is done
    // (about 70 ms), and pluto fails with "no certificate matched". A server 200 ms away, as a real one
    // would be, lets the lookup finish first.
    srv.sh(&format!("tc qdisc add dev {srv_if} root netem delay 200ms"));
    let agent = Agent::start(
        &srv,
        &bed.server_config("host-rsa3072.pem", "fqdn:srvrsa.rsa.example"),
    );
    let pluto = Pluto::start(&lsw, &PlutoSetup {
        conns: "conn oe-client\n    left=192.0.2.12\n    leftid=%null\n    leftauth=null\n    right=192.0.2.30\n    \
                rightid=@srvrsa.rsa.example\n    rightauth=rsasig\n    rightrsasigkey=%dnsondemand\n    type=transport\n    \
                ikev2=insist\n    leftupdown=%disabled\n    auto=add\n"
            .into(),
        setup_extra: format!("    dnssec-enable=yes\n    dnssec-rootkey-file={}\n", bed.fixture.trust_anchor_ds().display()),
        resolv_conf: Some("nameserver 192.0.2.53\n".into()),
        ..PlutoSetup::default()
    });
    let capture = Capture::start(&srv, &srv_if);
    let out = pluto.whack(&["--initiate", "--name", "oe-client"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("established Child SA"),
        "pluto initiate: {text}\n{}\n{}",
        pluto.log(),
        agent.log()
    );
    let receiver = udp_receiver(&srv, "192.0.2.30", 5000);
    let mut buf = [0; 64];
    send_udp(&lsw, "192.0.2.12", "192.0.2.30", 5000, b"from libreswan");
    receiver.recv_from(&mut buf).unwrap();
    assert_esp_only(&capture.stop(), "192.0.2.12", "192.0.2.30");
    assert!(established(&agent, "192.0.2.12"), "{}", agent.log());
    let peers = agent.request(r#"{"command":"peers"}"#).to_string();
    assert!(
        peers.contains("NULL"),
        "the oe server accepted an anonymous client: {peers}"
    );
}

#[test]
fn strongswan_trap_reaches_an_oe_server() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("strongswan_trap_reaches_an_oe_server");
    }
    let ed = test_key_ipseckey("ws-ed25519");
    let bed = LanBed::start(DnsFixture::builder().record(
        "2.0.192.in-addr.arpa.",
        &format!("13 IPSECKEY 10 0 4 . {ed}"),
    ));
    let (srv, srv_if) = bed.host("srv", &["192.0.2.30/24"]);
    let (ss, _) = bed.host("ss", &["192.0.2.13/24"]);
    let agent = Agent::start(&srv, &bed.server_config("host-ed25519.pem", "address"));
    let charon = Charon::start(&ss, &CharonSetup {
        swanctl_conf: "connections { oe { version = 2\n mobike = no\n local_addrs = 192.0.2.13\n remote_addrs = 192.0.2.30\n\
             proposals = aes256gcm16-prfsha256-x25519\n\
             local { auth = pubkey\n id = 192.0.2.13\n pubkeys = self.pub }\n\
             remote { auth = pubkey\n id = 192.0.2.30\n pubkeys = oe.pub }\n\
             children { t { mode = transport\n esp_proposals = aes256gcm16\n start_action = trap } } } }\n"
            .into(),
        private_keys: vec![("self.pem".into(), key("ws-ed25519.pem"))],
        public_keys: vec![("self.pub".into(), key("ws-ed25519.pub.pem")), ("oe.pub".into(), key("host-ed25519.pub.pem"))],
        ..CharonSetup::default()
    });
    let capture = Capture::start(&srv, &srv_if);
    let receiver = udp_receiver(&srv, "192.0.2.30", 5000);
    receiver
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0; 64];
    let got = wait_until(Duration::from_secs(15), || {
        send_udp(&ss, "192.0.2.13", "192.0.2.30", 5000, b"through the trap");
        established(&agent, "192.0.2.13") && receiver.recv_from(&mut buf).is_ok()
    });
    assert!(
        got,
        "charon's trap brought up an SA with oe:\n{}\n{}",
        charon.log(),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_esp_only(&capture.stop(), "192.0.2.13", "192.0.2.30");
    assert!(
        charon.list_sas().contains("INSTALLED, TRANSPORT"),
        "charon: {}",
        charon.list_sas()
    );
    let peers = agent.request(r#"{"command":"peers"}"#).to_string();
    assert!(
        peers.contains("address:192.0.2.13") && peers.contains("Ed25519 key from DNSSEC"),
        "oe authenticated charon by DNS: {peers}"
    );
}
