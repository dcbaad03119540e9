//! PRF and prf+: RFC 4868 / RFC 4231 HMAC-SHA2 and NIST CAVP prf+ known answers.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod crypto_support;

use crypto_support::vectors;
use oe_ike::crypto::{CryptoError, PrfAlg};

fn alg(name: &str) -> PrfAlg {
    match name {
        "PRF_HMAC_SHA2_256" => PrfAlg::HmacSha256,
        "PRF_HMAC_SHA2_384" => PrfAlg::HmacSha384,
        "PRF_HMAC_SHA2_512" => PrfAlg::HmacSha512,
        other => panic!("unknown PRF {other}"),
    }
}

#[test]
fn prf_hmac_sha2_known_answers() {
    let v = vectors("prf_hmac_sha2.txt");
    assert_eq!(v.len(), 18);
    for s in &v {
        let prf = alg(s.text("prf"));
        let out = prf.prf(&s.hex("key"), &s.hex("data"));
        assert_eq!(*out, s.hex("out"), "[{}]", s.name);
        assert_eq!(out.len(), prf.output_len());
    }
}

#[test]
fn prf_plus_known_answers() {
    let v = vectors("prf_plus.txt");
    assert_eq!(v.len(), 7);
    for s in &v {
        let expected = s.hex("out");
        let prf = alg(s.text("prf"));
        let out = prf
            .prf_plus(&s.hex("key"), &s.hex("seed"), expected.len())
            .unwrap();
        assert_eq!(*out, expected, "[{}]", s.name);
    }
}

#[test]
fn prf_plus_prefixes_agree_and_first_block_is_prf_of_seed_and_one() {
    for prf in PrfAlg::ALL {
        let (key, seed) = (
            b"key material".as_slice(),
            b"Ni | Nr | SPIi | SPIr".as_slice(),
        );
        let long = prf.prf_plus(key, seed, 200).unwrap();
        for len in [
            0,
            1,
            prf.output_len() - 1,
            prf.output_len(),
            prf.output_len() + 1,
            199,
        ] {
            assert_eq!(
                *prf.prf_plus(key, seed, len).unwrap(),
                long[..len],
                "{prf:?} {len}"
            );
        }
        let t1 = prf.prf(key, &[seed, &[1u8][..]].concat());
        assert_eq!(long[..prf.output_len()], *t1);
        let t2 = prf.prf(key, &[&t1[..], seed, &[2u8][..]].concat());
        assert_eq!(long[prf.output_len()..2 * prf.output_len()], *t2);
    }
}

#[test]
fn prf_plus_stops_at_255_blocks() {
    for prf in PrfAlg::ALL {
        let max = 255 * prf.output_len();
        assert_eq!(prf.prf_plus(b"k", b"s", max).unwrap().len(), max);
        assert_eq!(
            prf.prf_plus(b"k", b"s", max + 1).unwrap_err(),
            CryptoError::OutputTooLong
        );
        assert_eq!(
            prf.prf_plus(b"k", b"s", usize::MAX).unwrap_err(),
            CryptoError::OutputTooLong
        );
    }
}

#[test]
fn iana_numbers_and_lengths() {
    for (prf, id, len) in [
        (PrfAlg::HmacSha256, 5, 32),
        (PrfAlg::HmacSha384, 6, 48),
        (PrfAlg::HmacSha512, 7, 64),
    ] {
        assert_eq!(prf.iana(), id);
        assert_eq!(PrfAlg::from_iana(id), Some(prf));
        assert_eq!(prf.output_len(), len);
        assert_eq!(prf.preferred_key_len(), len);
    }
    for id in [0, 1, 2, 3, 4, 8, 9, 0xffff] {
        assert_eq!(PrfAlg::from_iana(id), None, "{id}");
    }
}
