//! Measures, in the UML test bed (real ESP), the time from a workstation's first datagram to a new host
//! until the host receives it (sent through ESP: the kernel queues it while `oe` negotiates), with the
//! host's key already in the agent's cache and with a cold cache, next to 2x the link's round-trip time.
//! Prints medians; asserts nothing (a measurement, not a test).
//!
//! Run (as root): `cargo run --release -p oe-integration --example first_packet [ROUNDS]`
#![allow(clippy::unwrap_used, clippy::panic, clippy::cast_possible_truncation)] // a measurement program

use std::time::{Duration, Instant};

use oe_integration::agent::Agent;
use oe_integration::dns::DnsFixture;
use oe_integration::netns::Netns;
use oe_integration::process::wait_until;
use oe_integration::scenario::{established, send_udp, udp_receiver, LanBed};
use oe_integration::uml;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn rtt_ms(ns: &Netns, dst: &str) -> f64 {
    let out = ns
        .cmd("ping")
        .args(["-c", "21", "-i", "0.05", dst])
        .output()
        .unwrap();
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split("time=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    median(times)
}

/// One first datagram: sent, then waited for at the server; milliseconds.
fn first_datagram_ms(ws: &Netns, rx: &std::net::UdpSocket, n: u32) -> f64 {
    let started = Instant::now();
    send_udp(ws, "192.0.2.1", "192.0.2.30", 5000, &n.to_be_bytes());
    let mut buf = [0; 16];
    loop {
        let (len, _) = rx.recv_from(&mut buf).expect("the first datagram arrives");
        if buf.get(..len) == Some(&n.to_be_bytes()[..]) {
            return started.elapsed().as_secs_f64() * 1e3;
        }
    }
}

fn main() {
    if !uml::in_guest() {
        std::process::exit(uml::exec_self_in_guest().code().unwrap_or(1));
    }
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    let bed = LanBed::start(DnsFixture::builder());
    let (ws, _) = bed.host("ws", &["192.0.2.1/24"]);
    let (srv, _) = bed.host("srv", &["192.0.2.30/24"]);
    let _server = Agent::start(&srv, &bed.server_config("host-ed25519.pem", "address"));
    let ws_config = bed.workstation_config("[ike]\nidle_timeout = \"1s\"\n");
    let rx = udp_receiver(&srv, "192.0.2.30", 5000);
    rx.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let rtt = rtt_ms(&ws, "192.0.2.30");

    let (mut cold, mut cached) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Cold: a freshly started agent (empty key cache).
        let mut agent = Agent::start(&ws, &ws_config);
        cold.push(first_datagram_ms(&ws, &rx, round * 2));
        assert!(wait_until(Duration::from_secs(10), || established(
            &agent,
            "192.0.2.30"
        )));
        // Cached: let the SA go idle and be torn down, then start again with the key in the cache.
        assert!(
            wait_until(Duration::from_secs(20), || !established(
                &agent,
                "192.0.2.30"
            )),
            "idle teardown"
        );
        std::thread::sleep(Duration::from_millis(300));
        cached.push(first_datagram_ms(&ws, &rx, round * 2 + 1));
        agent.stop();
        std::thread::sleep(Duration::from_millis(300));
    }
    let (cold_ms, cached_ms) = (median(cold.clone()), median(cached.clone()));
    println!(
        "link RTT (median of 21 pings): {rtt:.3} ms; 2x RTT = {:.3} ms",
        2.0 * rtt
    );
    println!("first datagram delivered through ESP, cold key cache:   median {cold_ms:.1} ms  ({:.1}x 2xRTT)  samples {cold:.1?}", cold_ms / (2.0 * rtt));
    println!("first datagram delivered through ESP, cached key:       median {cached_ms:.1} ms  ({:.1}x 2xRTT)  samples {cached:.1?}", cached_ms / (2.0 * rtt));
}
