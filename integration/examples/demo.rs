//! The whole opportunistic-encryption path, shown in the UML test bed (real ESP):
//!
//! a signed DNS tree publishes a server's IPSECKEY; `oe` runs on the server and on a workstation; the
//! workstation's very first datagram to the server leaves as ESP; `oe status`, `oe peers` and `oe explain`
//! say what happened, and why a host without a key is not encrypted.
//!
//! Run (as root): `cargo run -p oe-integration --example demo` (needs `cargo build -p oe-agent` first and
//! the test bed's packages: `bash integration/setup-host.sh`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a demo

use std::net::IpAddr;
use std::time::{Duration, Instant};

use oe_integration::agent::Agent;
use oe_integration::capture::{Capture, Kind};
use oe_integration::dns::DnsFixture;
use oe_integration::process::wait_until;
use oe_integration::scenario::{established, send_udp, udp_receiver, LanBed};
use oe_integration::uml;

fn say(text: &str) {
    println!("\n\u{2500}\u{2500} {text}");
}

fn show(agent: &Agent, args: &[&str]) {
    println!("$ oe {}", args.join(" "));
    let out = agent.cli(args);
    print!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    if !uml::in_guest() {
        let status = uml::exec_self_in_guest();
        std::process::exit(status.code().unwrap_or(1));
    }
    say("Building a signed DNS tree (root, ed.example, reverse zones) and a LAN with three hosts");
    let bed = LanBed::start(DnsFixture::builder());
    let (ws, ws_if) = bed.host("workstation", &["192.0.2.1/24"]);
    let (srv, _) = bed.host("server", &["192.0.2.30/24"]);
    let (_plain, _) = bed.host("plain", &["192.0.2.31/24"]);
    println!(
        "server 192.0.2.30 publishes: 30.2.0.192.in-addr.arpa. IPSECKEY 10 0 4 . (Ed25519 key)"
    );
    println!("plain  192.0.2.31 publishes no key; the resolver is 192.0.2.53; the root key is the only anchor");

    say("Starting `oe run` on the server (key, identity = its address) and on the workstation (anonymous)");
    let server = Agent::start(&srv, &bed.server_config("host-ed25519.pem", "address"));
    let workstation = Agent::start(&ws, &bed.workstation_config(""));
    show(&workstation, &["status"]);

    say("The workstation sends ONE datagram to the server (no SA exists yet)");
    let capture = Capture::start(&ws, &ws_if);
    let receiver = udp_receiver(&srv, "192.0.2.30", 5000);
    let started = Instant::now();
    send_udp(
        &ws,
        "192.0.2.1",
        "192.0.2.30",
        5000,
        b"hello, encrypted world",
    );
    let mut buf = [0; 64];
    let (n, _) = receiver.recv_from(&mut buf).unwrap();
    println!(
        "server received {:?} {:.0} ms after it was sent",
        String::from_utf8_lossy(&buf[..n]),
        started.elapsed().as_secs_f64() * 1e3
    );
    wait_until(Duration::from_secs(10), || {
        established(&workstation, "192.0.2.30")
    });

    say("What crossed the wire between the two (captured on the workstation)");
    let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.30".parse().unwrap());
    for p in capture.stop().iter().filter(|p| p.between(a, b)) {
        let what = match p.kind {
            Kind::Esp { spi } => format!("ESP spi {spi:08x}"),
            Kind::Ike => "IKE".into(),
            other => format!("CLEARTEXT {other:?}"),
        };
        println!("  {} -> {}  {what}", p.src, p.dst);
    }

    say("The workstation's view");
    show(&workstation, &["peers"]);
    show(&workstation, &["explain", "192.0.2.30"]);

    say("A host without a key: traffic flows in clear (private-or-clear), and the agent says why");
    let plain_rx = udp_receiver(&_plain, "192.0.2.31", 5000);
    send_udp(&ws, "192.0.2.1", "192.0.2.31", 5000, b"hi");
    let _ = plain_rx.recv_from(&mut buf);
    wait_until(Duration::from_secs(15), || {
        workstation
            .request(r#"{"command":"shunts"}"#)
            .to_string()
            .contains("failure")
    });
    show(&workstation, &["shunts"]);
    show(&workstation, &["explain", "192.0.2.31"]);

    say("The server's view");
    show(&server, &["peers"]);
}
