//! Work per datagram and per timer as the number of IKE SAs grows (10, 1,000, 100,000 half-open
//! responder SAs, the state a flood of IKE_SA_INIT requests creates).
//!
//! `cargo bench -p oe-ike --bench scale` prints, for each size, the median time of:
//! - `route`: one datagram for an established SA among them (an INFORMATIONAL whose ICV fails,
//!   dropped after SPI routing, parsing and one failed decryption);
//! - `poll_timeout`: the next deadline;
//! - `handle_timeout`: a timer call with nothing due;
//!
//! and each time's ratio to the 10-SA time: flat means constant work per operation. Set
//! `OE_SCALE_SIZES=10,1000` to choose the sizes.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use oe_ike::wire::Identity;
use oe_ike::{Config, Endpoint, LocalAuth};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const OPS: u32 = 2000;
const ROUNDS: usize = 31;

fn responder_config() -> Config {
    let mut c = Config::new(Identity::Fqdn("b.example".into()), LocalAuth::Null);
    c.accept_null_peers = true;
    c.cookie_threshold = usize::MAX;
    c.max_half_open = usize::MAX;
    c.half_open_timeout = Duration::from_secs(3600);
    c
}

fn initiator() -> Endpoint {
    let mut c = Config::new(Identity::Null, LocalAuth::Null);
    c.accept_null_peers = true;
    Endpoint::new(c, Box::new(ChaCha20Rng::seed_from_u64(1)))
}

/// One real IKE_SA_INIT request, from an initiator endpoint.
fn init_request(now: Instant) -> Vec<u8> {
    let mut a = initiator();
    a.connect(now, addr(0, 500), LOCAL.parse().unwrap());
    a.poll_transmit().unwrap().contents
}

const LOCAL: &str = "192.0.2.2:500";

/// The i-th initiator address: spread over many IPs and ports.
fn addr(i: u32, port: u16) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000 | (i / 4));
    SocketAddr::new(IpAddr::V4(ip), port + (i % 4) as u16)
}

/// Runs a whole NULL-authenticated handshake from `a` at `from` to `b`; returns the last
/// datagram `a` sent.
fn establish(a: &mut Endpoint, b: &mut Endpoint, from: SocketAddr, now: Instant) -> Vec<u8> {
    let local: SocketAddr = LOCAL.parse().unwrap();
    a.connect(now, from, local);
    let mut last = Vec::new();
    let mut spi = 0xc000_0000u32;
    for _ in 0..6 {
        for ep in [&mut *a, &mut *b] {
            while let Some((h, e)) = ep.poll_event() {
                if let oe_ike::Event::NeedSpi { .. } = e {
                    spi += 1;
                    ep.supply_spi(now, h, spi);
                }
            }
        }
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(now, from, local, &t.contents);
            last = t.contents;
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, local, from, &t.contents);
        }
    }
    last
}

/// An endpoint holding `n` half-open SAs and one established SA; returns it and a forged
/// INFORMATIONAL for the established one.
fn populated(n: u32, now: Instant) -> (Endpoint, SocketAddr, Vec<u8>) {
    let mut b = Endpoint::new(responder_config(), Box::new(ChaCha20Rng::seed_from_u64(2)));
    let local: SocketAddr = LOCAL.parse().unwrap();
    let mut req = init_request(now);
    for i in 0..n {
        req[..8].copy_from_slice(&(u64::from(i) + 1).to_be_bytes());
        b.handle_datagram(now, addr(i, 500), local, &req);
        while b.poll_event().is_some() {}
        while b.poll_transmit().is_some() {}
    }
    let from: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let auth = establish(&mut initiator(), &mut b, from, now);
    assert_eq!(
        b.half_open(),
        n as usize,
        "every request made a half-open SA"
    );
    assert_eq!(b.sa_count(), n as usize + 1);
    // An INFORMATIONAL request with the established SA's SPIs, the message ID it expects next,
    // and an SK payload that will not verify.
    let mut forged = auth[..28].to_vec();
    forged[16] = 46; // SK
    forged[18] = 37; // INFORMATIONAL
    forged[20..24].copy_from_slice(&2u32.to_be_bytes());
    forged.extend_from_slice(&[0, 0, 0, 68]);
    forged.extend_from_slice(&[0x5a; 64]);
    let len = forged.len() as u32;
    forged[24..28].copy_from_slice(&len.to_be_bytes());
    (b, from, forged)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time per call of `f` over ROUNDS rounds of OPS calls.
fn time(mut f: impl FnMut()) -> Duration {
    let samples = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..OPS {
                f();
            }
            t.elapsed() / OPS
        })
        .collect();
    median(samples)
}

fn main() {
    let sizes: Vec<u32> = std::env::var("OE_SCALE_SIZES")
        .unwrap_or_else(|_| "10,1000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let local: SocketAddr = LOCAL.parse().unwrap();
    println!("median time per operation (ns) with n half-open IKE SAs; ratio to the first size");
    let mut base: Option<[f64; 3]> = None;
    for n in sizes {
        let now = Instant::now();
        let t = Instant::now();
        let (mut b, from, forged) = populated(n, now);
        let setup = t.elapsed();
        let route = time(|| b.handle_datagram(now, from, local, &forged));
        let poll = time(|| {
            std::hint::black_box(b.poll_timeout());
        });
        let timer = time(|| b.handle_timeout(now));
        assert!(
            b.poll_transmit().is_none(),
            "the forged datagram got no answer"
        );
        let ns = [route, poll, timer].map(|d| d.as_nanos() as f64);
        let first = *base.get_or_insert(ns);
        println!(
            "n = {n:>6}: route {:>9.0} ({:>6.1}x) | poll_timeout {:>9.0} ({:>6.1}x) | handle_timeout {:>9.0} ({:>6.1}x) | setup {:.1} s",
            ns[0],
            ns[0] / first[0],
            ns[1],
            ns[1] / first[1],
            ns[2],
            ns[2] / first[2],
            setup.as_secs_f64()
        );
    }
}
