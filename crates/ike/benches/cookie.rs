//! The responder's cost for one spoofed IKE_SA_INIT under load (RFC 7296 2.6): a stateless
//! COOKIE answer, from a real request (X25519, the default proposals) with a fresh SPIi each
//! time, against its floor, the cookie's HMAC-SHA256 over the same inputs.
//!
//! `cargo bench -p oe-ike --bench cookie` prints both medians and their ratio.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use oe_ike::crypto::PrfAlg;
use oe_ike::wire::Identity;
use oe_ike::{Config, Endpoint, LocalAuth};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const LOCAL: &str = "192.0.2.2:500";
const REMOTE: &str = "198.51.100.7:500";

fn endpoint(cookie_threshold: usize, seed: u64) -> Endpoint {
    let mut c = Config::new(Identity::Null, LocalAuth::Null);
    c.accept_null_peers = true;
    c.cookie_threshold = cookie_threshold;
    Endpoint::new(c, Box::new(ChaCha20Rng::seed_from_u64(seed)))
}

fn benches(c: &mut Criterion) {
    let now = Instant::now();
    let (local, remote): (SocketAddr, SocketAddr) =
        (LOCAL.parse().unwrap(), REMOTE.parse().unwrap());
    let mut a = endpoint(usize::MAX, 1);
    a.connect(now, remote, local);
    let mut request = a.poll_transmit().unwrap().contents;
    let mut b = endpoint(0, 2);
    let mut spi = 1u64;
    c.bench_function("cookie/answer", |bench| {
        bench.iter(|| {
            spi += 1;
            request[..8].copy_from_slice(&spi.to_be_bytes());
            b.handle_datagram(now, remote, local, &request);
            b.poll_transmit().unwrap()
        });
    });
    // The floor: HMAC-SHA256 over Ni, address, port and SPIi with a 32-byte secret.
    let secret = [9u8; 32];
    let input = [
        &[7u8; 32][..],
        &[198, 51, 100, 7],
        &500u16.to_be_bytes(),
        &spi.to_be_bytes(),
    ]
    .concat();
    c.bench_function("cookie/floor-hmac", |bench| {
        bench.iter(|| PrfAlg::HmacSha256.prf(&secret, &input));
    });
}

criterion_group!(cookie, benches);
criterion_main!(cookie);
