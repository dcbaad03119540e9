//! Per-operation cost of the crypto IKE does (criterion; read the medians).
//!
//! Run: `cargo bench -p oe-ike --bench crypto`. Groups:
//! - `dh/<group>`: one side's key exchange, generate a share + agree;
//! - `sign/<key>`, `verify/<key>`: RFC 7427 AUTH data over 364 signed octets;
//! - `prf+/...`: SKEYSEED + the IKE SA keys, and a child SA's KEYMAT;
//! - `sk/<cipher>/{seal,open}`: an SK payload with 1 kB of inner payloads;
//! - `floor/<dh>+<auth>`: one side's whole handshake crypto ([`oe_ike::crypto::floor`]);
//! - `ring-baseline/...`: ring doing what we do with other crates (ECDH and ECDSA
//!   signing, where ring cannot take the injected generator), for same-run ratios.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use oe_ike::crypto::floor::{HandshakeFloor, Suite};
use oe_ike::crypto::{
    sign_auth, verify_auth, AuthMethod, DhGroup, EncrAlg, IntegAlg, KeyShare, PrfAlg, PrivateKey,
    SigHash, SkCipher,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

fn key(name: &str) -> PrivateKey {
    let pem = match name {
        "ed25519" => include_str!("../tests/vectors/keys/ed25519.pem"),
        "ecdsa-p256" => include_str!("../tests/vectors/keys/p256.pem"),
        "ecdsa-p384" => include_str!("../tests/vectors/keys/p384.pem"),
        "rsa-2048" => include_str!("../tests/vectors/keys/rsa2048.pem"),
        _ => include_str!("../tests/vectors/keys/rsa3072.pem"),
    };
    PrivateKey::from_pem(pem).unwrap()
}

const KEYS: [&str; 5] = [
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "rsa-2048",
    "rsa-3072",
];

fn key_exchange(c: &mut Criterion) {
    let mut rng = rng();
    for group in DhGroup::ALL {
        let peer = KeyShare::generate(group, &mut rng)
            .unwrap()
            .public()
            .to_vec();
        c.bench_function(&format!("dh/{group:?}/keygen+agree"), |b| {
            b.iter(|| {
                KeyShare::generate(group, &mut rng)
                    .unwrap()
                    .agree(&peer)
                    .unwrap()
            })
        });
    }
}

fn signatures(c: &mut Criterion) {
    let mut rng = rng();
    let octets = vec![0x5a; 364];
    for name in KEYS {
        let key = key(name);
        let public = key.public_key();
        let method = AuthMethod::DigitalSignature;
        c.bench_function(&format!("sign/{name}"), |b| {
            b.iter(|| sign_auth(&key, method, &SigHash::ALL, &octets, &mut rng).unwrap())
        });
        let data = sign_auth(&key, method, &SigHash::ALL, &octets, &mut rng).unwrap();
        c.bench_function(&format!("verify/{name}"), |b| {
            b.iter(|| verify_auth(&public, method, &data, &octets).unwrap())
        });
    }
}

fn prf_plus(c: &mut Criterion) {
    let prf = PrfAlg::HmacSha256;
    let (nonces, spis, shared) = ([1u8; 64], [2u8; 16], [3u8; 32]);
    let seed = [&nonces[..], &spis[..]].concat();
    // SK_d, SK_pi, SK_pr (3 x 32) and SK_ei, SK_er for AES-GCM-256 (2 x 36).
    c.bench_function("prf+/sha256/skeyseed+ike-keys-168B", |b| {
        b.iter(|| {
            let skeyseed = prf.prf(&nonces, &shared);
            prf.prf_plus(&skeyseed, &seed, 3 * 32 + 2 * 36).unwrap()
        })
    });
    c.bench_function("prf+/sha256/child-keymat-72B", |b| {
        b.iter(|| prf.prf_plus(&[4; 32], &nonces, 2 * 36).unwrap())
    });
}

fn sk_ciphers() -> [(&'static str, EncrAlg, Option<IntegAlg>); 5] {
    let hmac = Some(IntegAlg::HmacSha2_256_128);
    [
        ("aes128gcm16", EncrAlg::AesGcm16 { key_bits: 128 }, None),
        ("aes256gcm16", EncrAlg::AesGcm16 { key_bits: 256 }, None),
        ("chacha20poly1305", EncrAlg::ChaCha20Poly1305, None),
        ("aes128cbc-sha256", EncrAlg::AesCbc { key_bits: 128 }, hmac),
        ("aes256cbc-sha256", EncrAlg::AesCbc { key_bits: 256 }, hmac),
    ]
}

fn sk_payload(c: &mut Criterion) {
    let mut rng = rng();
    let (prefix, inner) = ([0u8; 32], vec![0x42u8; 1024]);
    for (name, encr, integ) in sk_ciphers() {
        let sk_a = integ.map_or(vec![], |i| vec![9; i.key_len()]);
        let sk = SkCipher::new(encr, integ, &vec![8; encr.key_material_len()], &sk_a).unwrap();
        c.bench_function(&format!("sk/{name}/seal-1kB"), |b| {
            b.iter(|| sk.seal(&prefix, &inner, &mut rng).unwrap())
        });
        let body = sk.seal(&prefix, &inner, &mut rng).unwrap();
        c.bench_function(&format!("sk/{name}/open-1kB"), |b| {
            b.iter(|| sk.open(&prefix, &body).unwrap())
        });
    }
}

fn handshake_floor(c: &mut Criterion) {
    let mut rng = rng();
    let suite = Suite {
        group: DhGroup::Curve25519,
        prf: PrfAlg::HmacSha256,
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
    };
    for name in ["ed25519", "ecdsa-p256", "rsa-2048"] {
        let (ours, peers) = (key(name), key(name));
        let floor = HandshakeFloor::new(suite, Some(&ours), Some(&peers), &mut rng).unwrap();
        c.bench_function(&format!("floor/x25519+{name}"), |b| {
            b.iter(|| floor.run(&mut rng).unwrap())
        });
    }
    let floor = HandshakeFloor::new(suite, None, None, &mut rng).unwrap();
    c.bench_function("floor/x25519+null", |b| {
        b.iter(|| floor.run(&mut rng).unwrap())
    });
}

/// ring's own ECDH and ECDSA signing: the speed we give up for injected randomness.
fn ring_baseline(c: &mut Criterion) {
    use ring::{agreement, rand::SystemRandom, signature};
    let sys = SystemRandom::new();
    let curves = [
        ("X25519", &agreement::X25519),
        ("P-256", &agreement::ECDH_P256),
        ("P-384", &agreement::ECDH_P384),
    ];
    for (name, alg) in curves {
        let peer = agreement::EphemeralPrivateKey::generate(alg, &sys).unwrap();
        let peer = peer.compute_public_key().unwrap();
        c.bench_function(&format!("ring-baseline/ecdh-{name}/keygen+agree"), |b| {
            b.iter(|| {
                let ours = agreement::EphemeralPrivateKey::generate(alg, &sys).unwrap();
                let peer = agreement::UnparsedPublicKey::new(alg, peer.as_ref());
                agreement::agree_ephemeral(ours, &peer, |k| k.len()).unwrap()
            })
        });
    }
    let pkcs8 =
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &sys)
            .unwrap();
    let key = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.as_ref(),
        &sys,
    )
    .unwrap();
    let octets = vec![0x5a; 364];
    c.bench_function("ring-baseline/sign-ecdsa-p256", |b| {
        b.iter(|| key.sign(&sys, &octets).unwrap())
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = key_exchange, signatures, prf_plus, sk_payload, handshake_floor, ring_baseline
}
criterion_main!(benches);
