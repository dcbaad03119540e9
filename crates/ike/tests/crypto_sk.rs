//! SK payload protection: AEAD and AES-CBC known answers laid out as SK bodies,
//! round trips, padding, and rejection of every tampered or truncated body.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

mod crypto_support;

use crypto_support::{seeded, vectors, ReplayRng};
use oe_ike::crypto::{CryptoError, EncrAlg, IntegAlg, SkCipher};

/// Inner bytes that `open` must return for a decrypted `plain`: the Pad Length
/// byte and that many padding bytes come off the end.
fn unpadded(plain: &[u8]) -> Option<Vec<u8>> {
    let pad = usize::from(*plain.last()?);
    Some(plain[..plain.len().checked_sub(pad + 1)?].to_vec())
}

fn aead_alg(name: &str, key_len: usize) -> EncrAlg {
    match (name, key_len) {
        ("AES_GCM_16", 20) => EncrAlg::AesGcm16 { key_bits: 128 },
        ("AES_GCM_16", 36) => EncrAlg::AesGcm16 { key_bits: 256 },
        ("CHACHA20_POLY1305", 36) => EncrAlg::ChaCha20Poly1305,
        other => panic!("no AEAD for {other:?}"),
    }
}

#[test]
fn aead_known_answers_open_and_seal() {
    let v = vectors("sk_aead.txt");
    assert_eq!(v.len(), 12);
    for s in &v {
        let key = s.hex("key");
        let encr = aead_alg(s.text("encr"), key.len());
        let sk = SkCipher::new(encr, None, &key, &[]).unwrap();
        let (iv, aad, plain) = (s.hex("iv"), s.hex("aad"), s.hex("plain"));
        let body = [iv.clone(), s.hex("sealed")].concat();
        match unpadded(&plain) {
            Some(inner) => {
                assert_eq!(*sk.open(&aad, &body).unwrap(), inner, "[{}]", s.name);
                // Sealing the inner bytes with the same IV gives the vector back when
                // our zero padding matches the vector's (always true for AEAD: none).
                if plain.last() == Some(&0) {
                    let sealed = sk.seal(&aad, &inner, &mut ReplayRng::new(&iv)).unwrap();
                    assert_eq!(sealed, body, "[{}] seal", s.name);
                    assert_eq!(sk.sealed_len(inner.len()), body.len());
                }
            }
            None => assert_eq!(
                sk.open(&aad, &body).unwrap_err(),
                CryptoError::DecryptFailed
            ),
        }
    }
}

#[test]
fn rfc7634_ikev2_example_opens_to_its_notify_payload() {
    let v = vectors("sk_aead.txt");
    let s = v.iter().find(|s| s.name == "chacha20poly1305_4").unwrap();
    let sk = SkCipher::new(EncrAlg::ChaCha20Poly1305, None, &s.hex("key"), &[]).unwrap();
    let body = [s.hex("iv"), s.hex("sealed")].concat();
    let inner = sk.open(&s.hex("aad"), &body).unwrap();
    assert_eq!(hex::encode(&*inner), "0000000c000040010000000a");
}

#[test]
fn cbc_known_answers_open_and_seal() {
    let v = vectors("sk_cbc.txt");
    assert_eq!(v.len(), 5);
    for s in &v {
        let key = s.hex("key");
        let encr = EncrAlg::AesCbc {
            key_bits: u16::try_from(key.len() * 8).unwrap(),
        };
        let integ = Some(IntegAlg::HmacSha2_256_128);
        let sk = SkCipher::new(encr, integ, &key, &s.hex("integ_key")).unwrap();
        let (iv, prefix, plain) = (s.hex("iv"), s.hex("prefix"), s.hex("plain"));
        let body = [iv.clone(), s.hex("cipher"), s.hex("icv")].concat();
        match unpadded(&plain) {
            Some(inner) => {
                assert_eq!(*sk.open(&prefix, &body).unwrap(), inner, "[{}]", s.name);
                let padding = &plain[inner.len()..plain.len() - 1];
                if padding.iter().all(|&b| b == 0) && plain.len() - inner.len() <= 16 {
                    let sealed = sk.seal(&prefix, &inner, &mut ReplayRng::new(&iv)).unwrap();
                    assert_eq!(sealed, body, "[{}] seal", s.name);
                }
            }
            None => assert_eq!(
                sk.open(&prefix, &body).unwrap_err(),
                CryptoError::DecryptFailed
            ),
        }
    }
}

fn all_ciphers() -> Vec<(EncrAlg, Option<IntegAlg>)> {
    let hmac = Some(IntegAlg::HmacSha2_256_128);
    vec![
        (EncrAlg::AesGcm16 { key_bits: 128 }, None),
        (EncrAlg::AesGcm16 { key_bits: 256 }, None),
        (EncrAlg::ChaCha20Poly1305, None),
        (EncrAlg::AesCbc { key_bits: 128 }, hmac),
        (EncrAlg::AesCbc { key_bits: 256 }, hmac),
    ]
}

fn cipher(encr: EncrAlg, integ: Option<IntegAlg>) -> SkCipher {
    let sk_e: Vec<u8> = (0..encr.key_material_len()).map(|i| i as u8).collect();
    let sk_a: Vec<u8> = integ.map_or(vec![], |i| {
        (0..i.key_len()).map(|i| 0x80 | i as u8).collect()
    });
    SkCipher::new(encr, integ, &sk_e, &sk_a).unwrap()
}

const PREFIX: &[u8] = b"IKE header (28 bytes).......SKhd";

#[test]
fn round_trips_at_every_length_around_the_block_size() {
    let mut rng = seeded(20);
    for (encr, integ) in all_ciphers() {
        let sk = cipher(encr, integ);
        for len in 0..=70 {
            let inner: Vec<u8> = (0..len).map(|i| (i * 3) as u8).collect();
            let body = sk.seal(PREFIX, &inner, &mut rng).unwrap();
            assert_eq!(body.len(), sk.sealed_len(len), "{encr:?} {len}");
            if !encr.is_aead() {
                assert_eq!((body.len() - 32) % 16, 0);
            }
            assert_eq!(*sk.open(PREFIX, &body).unwrap(), inner, "{encr:?} {len}");
        }
    }
}

#[test]
fn every_flipped_bit_is_rejected() {
    let mut rng = seeded(21);
    for (encr, integ) in all_ciphers() {
        let sk = cipher(encr, integ);
        let body = sk.seal(PREFIX, b"inner payloads", &mut rng).unwrap();
        for bit in 0..body.len() * 8 {
            let mut bad = body.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                sk.open(PREFIX, &bad).unwrap_err(),
                CryptoError::DecryptFailed
            );
        }
        for bit in 0..PREFIX.len() * 8 {
            let mut prefix = PREFIX.to_vec();
            prefix[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                sk.open(&prefix, &body).unwrap_err(),
                CryptoError::DecryptFailed
            );
        }
    }
}

#[test]
fn truncated_and_extended_bodies_are_rejected_without_panic() {
    let mut rng = seeded(22);
    for (encr, integ) in all_ciphers() {
        let sk = cipher(encr, integ);
        let body = sk.seal(PREFIX, &[7u8; 40], &mut rng).unwrap();
        for len in 0..body.len() {
            assert_eq!(
                sk.open(PREFIX, &body[..len]).unwrap_err(),
                CryptoError::DecryptFailed
            );
            assert_eq!(
                sk.open(PREFIX, &body[len + 1..]).unwrap_err(),
                CryptoError::DecryptFailed
            );
        }
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            sk.open(PREFIX, &longer).unwrap_err(),
            CryptoError::DecryptFailed
        );
    }
}

/// Seals `plain` (already padded, Pad Length last) with ChaCha20-Poly1305 directly
/// through ring, bypassing SkCipher's own padding.
fn chacha_body(key: &[u8; 32], salt: [u8; 4], iv: [u8; 8], plain: &[u8]) -> Vec<u8> {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).unwrap());
    let nonce = Nonce::assume_unique_for_key([&salt[..], &iv[..]].concat().try_into().unwrap());
    let mut buf = plain.to_vec();
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(PREFIX), &mut buf)
        .unwrap();
    [&iv[..], &buf, tag.as_ref()].concat()
}

#[test]
fn pad_length_is_honoured_and_checked() {
    let (key, salt, iv) = ([9u8; 32], [1, 2, 3, 4], [5u8; 8]);
    let sk = SkCipher::new(
        EncrAlg::ChaCha20Poly1305,
        None,
        &[&key[..], &salt[..]].concat(),
        &[],
    )
    .unwrap();
    // Padding of any value is accepted and stripped (RFC 7296 section 3.14).
    let body = chacha_body(&key, salt, iv, &[0xaa, 0xbb, 0xee, 0xff, 2]);
    assert_eq!(*sk.open(PREFIX, &body).unwrap(), [0xaa, 0xbb]);
    let body = chacha_body(&key, salt, iv, &[0xaa, 0xbb, 2]);
    assert!(sk.open(PREFIX, &body).unwrap().is_empty());
    // A Pad Length that reaches past the start of the plaintext is refused.
    for plain in [&[0xaa, 0xbb, 3][..], &[200][..], &[0, 0, 0, 255][..]] {
        let body = chacha_body(&key, salt, iv, plain);
        assert_eq!(
            sk.open(PREFIX, &body).unwrap_err(),
            CryptoError::DecryptFailed,
            "{plain:?}"
        );
    }
}

#[test]
fn constructor_checks_keys_and_combinations() {
    let gcm = EncrAlg::AesGcm16 { key_bits: 128 };
    let cbc = EncrAlg::AesCbc { key_bits: 128 };
    let hmac = Some(IntegAlg::HmacSha2_256_128);
    let err = |r: Result<SkCipher, CryptoError>| r.unwrap_err();
    assert_eq!(
        err(SkCipher::new(gcm, None, &[0; 16], &[])),
        CryptoError::BadKeyLength
    );
    assert_eq!(
        err(SkCipher::new(gcm, None, &[0; 20], &[1])),
        CryptoError::BadKeyLength
    );
    assert_eq!(
        err(SkCipher::new(gcm, hmac, &[0; 20], &[0; 32])),
        CryptoError::UnsupportedAlgorithm
    );
    assert_eq!(
        err(SkCipher::new(cbc, None, &[0; 16], &[])),
        CryptoError::UnsupportedAlgorithm
    );
    assert_eq!(
        err(SkCipher::new(cbc, hmac, &[0; 16], &[0; 31])),
        CryptoError::BadKeyLength
    );
    assert_eq!(
        err(SkCipher::new(cbc, hmac, &[0; 20], &[0; 32])),
        CryptoError::BadKeyLength
    );
    assert!(SkCipher::new(cbc, hmac, &[0; 16], &[0; 32]).is_ok());
}

#[test]
fn transform_numbers_and_lengths() {
    let cases = [
        (12, Some(128), EncrAlg::AesCbc { key_bits: 128 }, 16, 16),
        (12, Some(256), EncrAlg::AesCbc { key_bits: 256 }, 32, 16),
        (20, Some(128), EncrAlg::AesGcm16 { key_bits: 128 }, 20, 8),
        (20, Some(256), EncrAlg::AesGcm16 { key_bits: 256 }, 36, 8),
        (28, None, EncrAlg::ChaCha20Poly1305, 36, 8),
    ];
    for (id, bits, encr, material, iv) in cases {
        assert_eq!(EncrAlg::from_iana(id, bits), Some(encr));
        assert_eq!(encr.iana(), id);
        assert_eq!(encr.key_bits_attr(), bits);
        assert_eq!(encr.key_material_len(), material);
        assert_eq!(encr.iv_len(), iv);
        assert_eq!(encr.is_aead(), id != 12);
    }
    for (id, bits) in [
        (12, None),
        (12, Some(192)),
        (20, None),
        (20, Some(64)),
        (28, Some(256)),
        (3, None),
        (19, Some(128)),
    ] {
        assert_eq!(EncrAlg::from_iana(id, bits), None, "{id} {bits:?}");
    }
    assert_eq!(IntegAlg::from_iana(12), Some(IntegAlg::HmacSha2_256_128));
    assert_eq!(IntegAlg::HmacSha2_256_128.iana(), 12);
    assert_eq!(IntegAlg::HmacSha2_256_128.key_len(), 32);
    assert_eq!(IntegAlg::from_iana(2), None);
}

#[test]
fn ivs_come_from_the_injected_generator() {
    for (encr, integ) in all_ciphers() {
        let sk = cipher(encr, integ);
        let a = sk.seal(PREFIX, b"same", &mut seeded(30)).unwrap();
        let b = sk.seal(PREFIX, b"same", &mut seeded(30)).unwrap();
        let c = sk.seal(PREFIX, b"same", &mut seeded(31)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a[..encr.iv_len()], c[..encr.iv_len()]);
    }
}

#[test]
fn random_bodies_never_panic_or_open() {
    use rand_chacha::rand_core::RngCore;
    let mut rng = seeded(61);
    for (encr, integ) in all_ciphers() {
        let sk = cipher(encr, integ);
        for _ in 0..500 {
            let mut body = vec![0u8; (rng.next_u32() % 200) as usize];
            rng.fill_bytes(&mut body);
            assert_eq!(
                sk.open(PREFIX, &body).unwrap_err(),
                CryptoError::DecryptFailed
            );
        }
    }
}
