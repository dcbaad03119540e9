#![no_main]
//! A responder endpoint handling its first datagram(s) from an unknown peer: must never panic,
//! and answers at most a bounded number of datagrams.

use std::time::{Duration, Instant};

use oe_ike::rand_core::{impls, CryptoRng, Error, RngCore};
use oe_ike::wire::Identity;
use oe_ike::{Config, Endpoint, LocalAuth};

/// A fixed-seed xorshift generator: fuzzing wants determinism, not secrecy.
struct FuzzRng(u64);

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FuzzRng {}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut config = Config::new(Identity::Fqdn("responder.example".into()), LocalAuth::Null);
    config.accept_null_peers = true;
    // The first byte picks whether the cookie threshold is hit.
    config.cookie_threshold = usize::from(data.first().copied().unwrap_or(0) & 1);
    let mut ep = Endpoint::new(config, Box::new(FuzzRng(0x9e37_79b9_7f4a_7c15)));
    let now = Instant::now();
    let (remote, local) = (
        "192.0.2.1:500".parse().unwrap(),
        "192.0.2.2:500".parse().unwrap(),
    );
    // Up to three datagrams, each behind a 2-byte big-endian length (so real captured
    // exchanges can seed the corpus: `integration/examples/fuzz_seeds.rs`).
    let mut rest = data.get(1..).unwrap_or_default();
    for i in 0..3u64 {
        let Some((len, after)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len)).min(after.len());
        let (d, after) = after.split_at(len);
        rest = after;
        ep.handle_datagram(now + Duration::from_secs(i), remote, local, d);
        while ep.poll_event().is_some() {}
        let mut sent = 0;
        while ep.poll_transmit().is_some() {
            sent += 1;
        }
        assert!(sent <= 2);
    }
    ep.handle_timeout(now + Duration::from_secs(60));
});
