//! The handshake crypto floor runs for every authentication style and suite.

#![allow(clippy::unwrap_used)]

mod crypto_support;

use crypto_support::{seeded, vector_file};
use oe_ike::crypto::floor::{HandshakeFloor, Suite};
use oe_ike::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg, PrivateKey};

fn key(file: &str) -> PrivateKey {
    PrivateKey::from_pem(&String::from_utf8(vector_file(&format!("keys/{file}"))).unwrap()).unwrap()
}

#[test]
fn floor_runs_for_every_auth_style() {
    let suite = Suite {
        group: DhGroup::Curve25519,
        prf: PrfAlg::HmacSha256,
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
    };
    let mut rng = seeded(50);
    for file in ["ed25519.pem", "p256.pem", "p384.pem", "rsa2048.pem"] {
        let (ours, peers) = (key(file), key(file));
        let floor = HandshakeFloor::new(suite, Some(&ours), Some(&peers), &mut rng).unwrap();
        floor.run(&mut rng).unwrap();
    }
    let ours = key("ed25519.pem");
    HandshakeFloor::new(suite, Some(&ours), None, &mut rng)
        .unwrap()
        .run(&mut rng)
        .unwrap();
    HandshakeFloor::new(suite, None, None, &mut rng)
        .unwrap()
        .run(&mut rng)
        .unwrap();
}

#[test]
fn floor_runs_for_every_group_and_cipher() {
    let ours = key("ed25519.pem");
    let mut rng = seeded(51);
    let ciphers = [
        (EncrAlg::ChaCha20Poly1305, None),
        (
            EncrAlg::AesCbc { key_bits: 256 },
            Some(IntegAlg::HmacSha2_256_128),
        ),
    ];
    for group in DhGroup::ALL {
        for prf in PrfAlg::ALL {
            for (encr, integ) in ciphers {
                let suite = Suite {
                    group,
                    prf,
                    encr,
                    integ,
                };
                let floor = HandshakeFloor::new(suite, Some(&ours), Some(&ours), &mut rng).unwrap();
                floor.run(&mut rng).unwrap();
            }
        }
    }
}
