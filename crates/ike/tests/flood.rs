//! IKE_SA_INIT floods (RFC 7296 2.6): what unauthenticated peers can make a responder hold is
//! bounded per source address and in total; past the cookie threshold a spoofed source gets only
//! a stateless cookie; under load, expensive key exchange groups are refused.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use oe_ike::{Config, Endpoint};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use util::*;

fn responder(config: Config) -> Endpoint {
    Endpoint::new(config, Box::new(ChaCha20Rng::seed_from_u64(7)))
}

fn local() -> SocketAddr {
    B.parse().unwrap()
}

/// A real IKE_SA_INIT request from an initiator at `from` (its own seed, so its own SPI).
fn init_request(from: SocketAddr, seed: u64, now: Instant) -> Vec<u8> {
    let mut a = Endpoint::new(
        config("a", None),
        Box::new(ChaCha20Rng::seed_from_u64(seed)),
    );
    a.connect(now, from, local());
    a.poll_transmit().unwrap().contents
}

fn source(ip: u32, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + ip)), port)
}

/// Sends `req` with a fresh SPIi for each (source, i); returns how many were answered.
fn flood(
    b: &mut Endpoint,
    req: &[u8],
    sources: &[SocketAddr],
    per_source: u64,
    now: Instant,
) -> usize {
    let mut answered = 0;
    let mut spi = 1u64;
    let mut d = req.to_vec();
    for from in sources {
        for _ in 0..per_source {
            spi += 1;
            d[..8].copy_from_slice(&spi.to_be_bytes());
            b.handle_datagram(now, *from, local(), &d);
            while b.poll_event().is_some() {}
            while b.poll_transmit().is_some() {
                answered += 1;
            }
        }
    }
    answered
}

#[test]
fn half_open_sas_per_source_are_bounded() {
    let mut c = config("b", Some("ed25519_b"));
    c.cookie_threshold = usize::MAX;
    let limit = c.max_half_open_per_source;
    let mut b = responder(c);
    let now = Instant::now();
    let req = init_request(source(1, 500), 1, now);
    // One address, many ports and SPIs.
    let ports: Vec<_> = (0..50).map(|p| source(1, 1000 + p)).collect();
    let answered = flood(&mut b, &req, &ports, 4, now);
    assert_eq!(b.half_open(), limit, "one address holds at most {limit}");
    assert_eq!(answered, limit, "requests beyond the bound get no answer");
    // Another address is unaffected.
    flood(&mut b, &req, &[source(2, 500)], 1, now);
    assert_eq!(b.half_open(), limit + 1);
    // Once the half-open SAs time out, the first address may start again.
    let later = now + Duration::from_secs(31);
    b.handle_timeout(later);
    assert_eq!(b.half_open(), 0);
    flood(&mut b, &req, &[source(1, 2000)], 1, later);
    assert_eq!(b.half_open(), 1);
}

#[test]
fn half_open_sas_in_total_are_bounded_even_with_cookies() {
    let mut c = config("b", Some("ed25519_b"));
    c.cookie_threshold = usize::MAX;
    c.max_half_open = 100;
    let mut b = responder(c);
    let now = Instant::now();
    let req = init_request(source(1, 500), 1, now);
    let sources: Vec<_> = (0..300).map(|i| source(i, 500)).collect();
    let answered = flood(&mut b, &req, &sources, 1, now);
    assert_eq!(b.half_open(), 100);
    assert_eq!(answered, 100);
    assert_eq!(b.sa_count(), 100);
}

/// Real initiators that answer cookies: past the cookie threshold each needs a round trip more,
/// and past the total bound nobody gets state.
#[test]
fn cookies_then_refusal() {
    let mut c = config("b", Some("ed25519_b"));
    c.cookie_threshold = 5;
    c.max_half_open = 20;
    let mut b = responder(c);
    let now = Instant::now();
    for i in 0..40u32 {
        let from = source(i, 500);
        let mut a = Endpoint::new(
            config("a", None),
            Box::new(ChaCha20Rng::seed_from_u64(u64::from(i) + 100)),
        );
        a.connect(now, from, local());
        for _ in 0..3 {
            while let Some(t) = a.poll_transmit() {
                b.handle_datagram(now, from, local(), &t.contents);
            }
            while b.poll_event().is_some() {}
            while let Some(t) = b.poll_transmit() {
                a.handle_datagram(now, local(), from, &t.contents);
            }
            while a.poll_event().is_some() {}
        }
    }
    assert_eq!(b.half_open(), 20);
}
