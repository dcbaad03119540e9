//! CPU per complete IKE_SA_INIT + IKE_AUTH handshake (one transport child SA), for the initiator
//! and the responder separately, next to the crypto floor of one side (`crypto::floor`: key
//! exchange, key derivation, seal/open, sign/verify, KEYMAT) measured in the same run.
//!
//! `cargo bench -p oe-ike --bench handshake` runs the criterion groups, then prints medians and
//! the ratio handshake / floor for each side and key type (target: <= 1.25x), classical (X25519
//! alone) and hybrid (X25519, then ML-KEM-768 in IKE_INTERMEDIATE, RFC 9370), and the size of
//! each message of the hybrid handshake.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use oe_ike::crypto::floor::{HandshakeFloor, Suite};
use oe_ike::crypto::{DhGroup, EncrAlg, PrivateKey, PublicKey};
use oe_ike::wire::{ExchangeType, Identity, Message};
use oe_ike::{AdditionalKe, Config, Endpoint, Event, LocalAuth, SaHandle};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const KEYS: [(&str, &str); 3] = [
    ("Ed25519", "ed25519"),
    ("ECDSA-P256", "p256"),
    ("RSA-2048", "rsa2048"),
];

fn key(file: &str) -> Arc<PrivateKey> {
    let path = format!("{}/testdata/keys/{file}.p8", env!("CARGO_MANIFEST_DIR"));
    Arc::new(PrivateKey::from_pkcs8_der(&std::fs::read(path).expect("key file")).expect("key"))
}

struct Setup {
    a: Config,
    b: Config,
    pub_a: PublicKey,
    pub_b: PublicKey,
    floor_a: HandshakeFloor<'static>,
    floor_b: HandshakeFloor<'static>,
}

fn setup(file: &str, hybrid: bool) -> Setup {
    let (ka, kb) = (key(&format!("{file}_a")), key(&format!("{file}_b")));
    let config = |name: &str, k: &Arc<PrivateKey>| {
        let mut c = Config::new(
            Identity::Fqdn(format!("{name}.example")),
            LocalAuth::Key(k.clone()),
        );
        c.liveness_interval = None;
        if !hybrid {
            c.additional_ke = AdditionalKe::off();
        }
        c
    };
    let suite = Suite {
        group: DhGroup::Curve25519,
        prf: oe_ike::crypto::PrfAlg::HmacSha256,
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (sa, sb): (&'static PrivateKey, &'static PrivateKey) = (
        Box::leak(Box::new(clone_key(file, "a"))),
        Box::leak(Box::new(clone_key(file, "b"))),
    );
    Setup {
        a: config("a", &ka),
        b: config("b", &kb),
        pub_a: ka.public_key(),
        pub_b: kb.public_key(),
        floor_a: floor(suite, sa, sb, hybrid.then_some(true), &mut rng),
        floor_b: floor(suite, sb, sa, hybrid.then_some(false), &mut rng),
    }
}

/// One side's floor; `initiator` Some adds ML-KEM-768 as that side does it.
fn floor(
    suite: Suite,
    ours: &'static PrivateKey,
    peer: &'static PrivateKey,
    initiator: Option<bool>,
    rng: &mut ChaCha20Rng,
) -> HandshakeFloor<'static> {
    let f = HandshakeFloor::new(suite, Some(ours), Some(peer), rng).expect("floor");
    match initiator {
        Some(i) => f
            .with_additional_ke(DhGroup::MlKem768, i, rng)
            .expect("floor"),
        None => f,
    }
}

fn clone_key(file: &str, side: &str) -> PrivateKey {
    let path = format!(
        "{}/testdata/keys/{file}_{side}.p8",
        env!("CARGO_MANIFEST_DIR")
    );
    PrivateKey::from_pkcs8_der(&std::fs::read(path).expect("key file")).expect("key")
}

/// Answers the engine's requests as the agent would, instantly.
fn agent(ep: &mut Endpoint, now: Instant, keys: &PublicKey, spi: &mut u32) -> Option<SaHandle> {
    let mut up = None;
    while let Some((h, e)) = ep.poll_event() {
        match e {
            Event::NeedSpi { .. } => {
                *spi += 1;
                ep.supply_spi(now, h, *spi);
            }
            Event::NeedPeerKey { .. } => ep.supply_peer_keys(now, h, vec![keys.clone()]),
            Event::ChildSaReady { .. } => up = Some(h),
            _ => {}
        }
    }
    up
}

/// One handshake; returns the CPU time spent inside each side's engine calls.
fn handshake(s: &Setup, seed: u64) -> (Duration, Duration) {
    handshake_logged(s, seed, &mut Vec::new())
}

/// The same, recording each datagram sent (direction A to B, bytes).
fn handshake_logged(s: &Setup, seed: u64, log: &mut Vec<(bool, Vec<u8>)>) -> (Duration, Duration) {
    let (addr_a, addr_b): (SocketAddr, SocketAddr) = (
        "192.0.2.1:500".parse().unwrap(),
        "192.0.2.2:500".parse().unwrap(),
    );
    let now = Instant::now();
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    let (mut spi_a, mut spi_b) = (0xc000_0000u32, 0xd000_0000u32);
    let t = Instant::now();
    let mut a = Endpoint::new(s.a.clone(), Box::new(ChaCha20Rng::seed_from_u64(seed)));
    a.connect(now, addr_a, addr_b);
    agent(&mut a, now, &s.pub_b, &mut spi_a);
    let mut to_b: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit())
        .map(|t| t.contents)
        .collect();
    ta += t.elapsed();
    let t = Instant::now();
    let mut b = Endpoint::new(s.b.clone(), Box::new(ChaCha20Rng::seed_from_u64(seed + 1)));
    tb += t.elapsed();
    let (mut a_up, mut b_up) = (false, false);
    for _ in 0..8 {
        let t = Instant::now();
        log.extend(to_b.iter().map(|d| (true, d.clone())));
        for d in to_b.drain(..) {
            b.handle_datagram(now, addr_a, addr_b, &d);
        }
        b_up |= agent(&mut b, now, &s.pub_a, &mut spi_b).is_some();
        let to_a: Vec<Vec<u8>> = std::iter::from_fn(|| b.poll_transmit())
            .map(|t| t.contents)
            .collect();
        tb += t.elapsed();
        let t = Instant::now();
        log.extend(to_a.iter().map(|d| (false, d.clone())));
        for d in to_a {
            a.handle_datagram(now, addr_b, addr_a, &d);
        }
        a_up |= agent(&mut a, now, &s.pub_b, &mut spi_a).is_some();
        to_b = std::iter::from_fn(|| a.poll_transmit())
            .map(|t| t.contents)
            .collect();
        ta += t.elapsed();
        if a_up && b_up {
            return (ta, tb);
        }
    }
    panic!("handshake did not complete");
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for (name, file, hybrid) in cases() {
        let s = setup(file, hybrid);
        let mut seed = 0;
        g.bench_function(format!("initiator/{name}"), |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| {
                        seed += 2;
                        handshake(&s, seed).0
                    })
                    .sum()
            })
        });
        g.bench_function(format!("responder/{name}"), |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| {
                        seed += 2;
                        handshake(&s, seed).1
                    })
                    .sum()
            })
        });
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        g.bench_function(format!("floor/{name}"), |b| {
            b.iter(|| s.floor_b.run(&mut rng).expect("floor"))
        });
    }
    g.finish();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Every key type classical, and Ed25519 and RSA-2048 as hybrids.
fn cases() -> Vec<(String, &'static str, bool)> {
    let mut v: Vec<_> = KEYS
        .iter()
        .map(|(n, f)| (n.to_string(), *f, false))
        .collect();
    v.push(("Ed25519+ML-KEM-768".into(), "ed25519", true));
    v.push(("ECDSA-P256+ML-KEM-768".into(), "p256", true));
    v
}

/// Interleaved samples of handshake and floor, so machine noise hits both alike.
fn ratios() {
    println!("\nmedian CPU per handshake side vs. its crypto floor (X25519, AES-GCM-256, PRF-HMAC-SHA256)");
    for (name, file, hybrid) in cases() {
        let s = setup(file, hybrid);
        let rounds = if file == "rsa2048" { 61 } else { 201 };
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (mut ia, mut rb, mut fa, mut fb) = (vec![], vec![], vec![], vec![]);
        for i in 0..rounds {
            let (ta, tb) = handshake(&s, 1000 + 2 * i);
            ia.push(ta);
            rb.push(tb);
            let t = Instant::now();
            s.floor_a.run(&mut rng).expect("floor");
            fa.push(t.elapsed());
            let t = Instant::now();
            s.floor_b.run(&mut rng).expect("floor");
            fb.push(t.elapsed());
        }
        let (ia, rb, fa, fb) = (median(ia), median(rb), median(fa), median(fb));
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{name:>11}: initiator {:7.1} us / floor {:7.1} us = {:.2}x | responder {:7.1} us / floor {:7.1} us = {:.2}x",
            us(ia), us(fa), us(ia) / us(fa), us(rb), us(fb), us(rb) / us(fb)
        );
    }
}

/// The size of each message of the hybrid handshake (UDP payload; fragments listed apart).
fn sizes() {
    let s = setup("ed25519", true);
    let mut log = Vec::new();
    handshake_logged(&s, 77, &mut log);
    println!("\nhybrid handshake messages (Ed25519, X25519 + ML-KEM-768), UDP payload bytes:");
    for (a_to_b, d) in &log {
        let m = Message::parse(d).unwrap();
        let dir = if *a_to_b { "request " } else { "response" };
        let x = match m.header.exchange {
            ExchangeType::IKE_SA_INIT => "IKE_SA_INIT",
            ExchangeType::IKE_INTERMEDIATE => "IKE_INTERMEDIATE",
            ExchangeType::IKE_AUTH => "IKE_AUTH",
            _ => "other",
        };
        println!("  {x:>16} {dir} {:5}", d.len());
    }
}

criterion_group!(handshake_benches, benches);

fn main() {
    handshake_benches();
    Criterion::default().configure_from_args().final_summary();
    ratios();
    sizes();
}
