//! Lookup cost against signature cost (criterion).
//!
//! - `crypto/*`: one signature verification with ring, per algorithm the fixture signs with, in
//!   CPU time of this thread (as the lookups are measured).
//! - `lookup/cached`: a cache hit in [`KeyCache`] (no query, no signature).
//! - `lookup/cold_cpu_*`: CPU time of this thread for one cold validated lookup (a fresh
//!   validator: no validation cache), DNS fixture on loopback. Wall time waiting for the
//!   resolver is not counted: the CPU clock is `CLOCK_THREAD_CPUTIME_ID`, and the lookup runs on a
//!   current-thread runtime on this thread.
//!
//! The lookup benches start `oe_integration::dns::DnsFixture` in a network namespace, so they
//! need root; without root they are skipped with a note and only the crypto benches run.
//! Run: `cargo bench -p oe-dns --bench lookup` (as root). The ratios are printed at the end.

// Benchmark code: a failure here should stop the run loudly; no attacker-controlled input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use criterion::Criterion;
use nix::time::{clock_gettime, ClockId};
use oe_dns::{
    current_thread_runtime, Answer, CacheConfig, KeyCache, LookupTarget, Validator, ValidatorConfig,
};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _};

const MSG: &[u8] =
    b"an RRset in canonical form, about the size of one IPSECKEY record and its RRSIG header";

fn crypto(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let mut g = c.benchmark_group("crypto");
    let p256 = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref(),
        &rng,
    )
    .unwrap();
    let sig = p256.sign(&rng, MSG).unwrap();
    let key = signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        p256.public_key().as_ref().to_vec(),
    );
    g.bench_function("verify_ecdsa_p256", |b| {
        cpu_iter(b, || key.verify(black_box(MSG), sig.as_ref()).unwrap())
    });

    let ed = signature::Ed25519KeyPair::from_pkcs8(
        signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let sig = ed.sign(MSG);
    let key =
        signature::UnparsedPublicKey::new(&signature::ED25519, ed.public_key().as_ref().to_vec());
    g.bench_function("verify_ed25519", |b| {
        cpu_iter(b, || key.verify(black_box(MSG), sig.as_ref()).unwrap())
    });

    let rsa =
        signature::RsaKeyPair::from_pkcs8(&pem_der(&keys_dir().join("host-rsa2048.pem"))).unwrap();
    let mut sig = vec![0; rsa.public().modulus_len()];
    rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, MSG, &mut sig)
        .unwrap();
    let key = signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        rsa.public_key().as_ref().to_vec(),
    );
    g.bench_function("verify_rsa2048", |b| {
        cpu_iter(b, || key.verify(black_box(MSG), &sig).unwrap())
    });
    g.finish();
}

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../integration/keys")
}

fn pem_der(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    Duration::new(
        u64::try_from(t.tv_sec()).unwrap(),
        u32::try_from(t.tv_nsec()).unwrap(),
    )
}

/// Measures `f` in CPU time of this thread, like the lookups: on a shared machine wall time
/// would count the time other processes hold the core, inflating the floor.
fn cpu_iter(b: &mut criterion::Bencher<'_>, mut f: impl FnMut()) {
    b.iter_custom(|iters| {
        let start = thread_cpu();
        for _ in 0..iters {
            f();
        }
        thread_cpu() - start
    });
}

fn lookups(c: &mut Criterion, config: &ValidatorConfig) {
    let rt = current_thread_runtime().unwrap();
    let mut g = c.benchmark_group("lookup");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    for (id, name) in [
        ("cold_cpu_ed25519_zone", "host.ed.example."),
        ("cold_cpu_rsa_zone", "host.rsa.example."),
    ] {
        let target: LookupTarget = name.parse().unwrap();
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut cpu = Duration::ZERO;
                for _ in 0..iters {
                    let start = thread_cpu();
                    let answer = rt.block_on(async {
                        let validator = Validator::new(config.clone()).unwrap();
                        validator.lookup(&target).await
                    });
                    cpu += thread_cpu() - start;
                    assert!(matches!(answer, Ok(Answer::Secure(_))), "{answer:?}");
                }
                cpu
            });
        });
    }
    let cache = rt.block_on(async {
        KeyCache::new(
            Validator::new(config.clone()).unwrap(),
            CacheConfig::default(),
        )
    });
    let target: LookupTarget = "host.ed.example.".parse().unwrap();
    assert!(matches!(
        rt.block_on(cache.get(&target)).as_ref(),
        Ok(Answer::Secure(_))
    ));
    g.sample_size(100).measurement_time(Duration::from_secs(3));
    g.bench_function("cached", |b| {
        b.iter(|| rt.block_on(cache.get(black_box(&target))))
    });
    g.finish();
}

/// Median of a finished benchmark, from criterion's estimates.
fn median_ns(id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let text =
        std::fs::read_to_string(dir.join("criterion").join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn print_ratios() {
    let m = |id| median_ns(id).unwrap_or(f64::NAN);
    let (p256, ed, rsa) = (
        m("crypto/verify_ecdsa_p256"),
        m("crypto/verify_ed25519"),
        m("crypto/verify_rsa2048"),
    );
    println!(
        "\nmedians: verify P-256 {:.1} us, Ed25519 {:.1} us, RSA-2048 {:.1} us",
        p256 / 1e3,
        ed / 1e3,
        rsa / 1e3
    );
    // The chain of host.ed.example.: root DNSKEY RRset and ed.example. DS (root signs with
    // P-256), ed.example. DNSKEY RRset and the IPSECKEY RRset (Ed25519): 2 + 2 verifications.
    // host.rsa.example.: 2 P-256 (root) + 2 RSA-2048.
    let ed_floor = 2.0 * p256 + 2.0 * ed;
    let rsa_floor = 2.0 * p256 + 2.0 * rsa;
    for (id, floor) in [
        ("lookup/cold_cpu_ed25519_zone", ed_floor),
        ("lookup/cold_cpu_rsa_zone", rsa_floor),
    ] {
        if let Some(v) = median_ns(id) {
            println!(
                "{id}: {:.0} us CPU; its 4 signature verifications {:.0} us; ratio {:.1}",
                v / 1e3,
                floor / 1e3,
                v / floor
            );
        }
    }
    if let Some(v) = median_ns("lookup/cached") {
        println!(
            "lookup/cached: {:.2} us; {:.4} of the cold lookup's verifications ({:.0} us), {:.3} of one Ed25519 verify",
            v / 1e3, v / ed_floor, ed_floor / 1e3, v / ed
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    crypto(&mut c);
    if nix::unistd::geteuid().is_root() {
        let ns = oe_integration::netns::Netns::new("dnsbench");
        let fixture = oe_integration::dns::DnsFixture::start_in(&ns);
        let config = fixture.validator_config();
        // Criterion is not Send: move this thread into the fixture's namespace instead.
        let file = std::fs::File::open(format!("/run/netns/{}", ns.name())).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        lookups(&mut c, &config);
    } else {
        eprintln!("lookup benches skipped: they need root (network namespace and DNS fixture)");
    }
    c.final_summary();
    print_ratios();
}
