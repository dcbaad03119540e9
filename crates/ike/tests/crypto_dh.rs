//! Key exchange: RFC 7748, RFC 5903 section 8 and MODP-2048 known answers, peer
//! value validation, determinism under a seeded generator.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod crypto_support;

use crypto_support::{section, seeded, vectors, FailingRng, ReplayRng};
use oe_ike::crypto::{CryptoError, DhGroup, KeyShare};

fn share_from(group: DhGroup, private: &[u8]) -> KeyShare {
    let mut rng = ReplayRng::new(private);
    let share = KeyShare::generate(group, &mut rng).unwrap();
    assert!(rng.is_empty(), "generate drew fewer bytes than given");
    share
}

#[test]
fn x25519_rfc7748_section_5_2() {
    let v = vectors("rfc7748.txt");
    for name in ["5.2 vector 1", "5.2 vector 2"] {
        let s = section(&v, name);
        let share = share_from(DhGroup::Curve25519, &s.hex("scalar"));
        let shared = share.agree(&s.hex("u")).unwrap();
        assert_eq!(shared.as_bytes(), s.hex("out"), "{name}");
    }
}

#[test]
fn x25519_rfc7748_section_6_1() {
    let v = vectors("rfc7748.txt");
    let s = section(&v, "6.1");
    let alice = share_from(DhGroup::Curve25519, &s.hex("a"));
    let bob = share_from(DhGroup::Curve25519, &s.hex("b"));
    assert_eq!(alice.public(), s.hex("a_pub"));
    assert_eq!(bob.public(), s.hex("b_pub"));
    let bob_pub = bob.public().to_vec();
    assert_eq!(bob.agree(&s.hex("a_pub")).unwrap().as_bytes(), s.hex("k"));
    assert_eq!(alice.agree(&bob_pub).unwrap().as_bytes(), s.hex("k"));
}

#[test]
fn x25519_refuses_low_order_points_and_bad_lengths() {
    let mut zero = [0u8; 32];
    let mut one = [0u8; 32];
    one[0] = 1;
    for peer in [&zero[..], &one[..], &[9u8; 31][..], &[9u8; 33][..], &[][..]] {
        let share = KeyShare::generate(DhGroup::Curve25519, &mut seeded(1)).unwrap();
        assert_eq!(
            share.agree(peer).unwrap_err(),
            CryptoError::InvalidPeerPublicKey
        );
    }
    zero[31] = 0x80; // zero with the masked top bit set is still zero
    let share = KeyShare::generate(DhGroup::Curve25519, &mut seeded(1)).unwrap();
    assert_eq!(
        share.agree(&zero).unwrap_err(),
        CryptoError::InvalidPeerPublicKey
    );
}

#[test]
fn ecp_rfc5903_section_8() {
    let v = vectors("rfc5903.txt");
    for (name, group) in [
        ("8.1 group 19", DhGroup::Ecp256),
        ("8.2 group 20", DhGroup::Ecp384),
    ] {
        let s = section(&v, name);
        let initiator = share_from(group, &s.hex("i"));
        assert_eq!(initiator.public(), s.hex("gi"), "{name} g^i");
        assert_eq!(
            initiator.agree(&s.hex("gr")).unwrap().as_bytes(),
            s.hex("girx"),
            "{name}"
        );
        if let Some(r) = s.fields.get("r") {
            let r = hex::decode(r.split_whitespace().collect::<String>()).unwrap();
            let responder = share_from(group, &r);
            assert_eq!(responder.public(), s.hex("gr"), "{name} g^r");
            assert_eq!(
                responder.agree(&s.hex("gi")).unwrap().as_bytes(),
                s.hex("girx")
            );
        }
    }
}

#[test]
fn ecp_draws_again_when_the_scalar_is_out_of_range() {
    let v = vectors("rfc5903.txt");
    let s = section(&v, "8.1 group 19");
    // All-ones is above the group order n, zero is not a valid scalar.
    let mut bytes = vec![0xff; 32];
    bytes.extend([0u8; 32]);
    bytes.extend(s.hex("i"));
    let share = share_from(DhGroup::Ecp256, &bytes);
    assert_eq!(share.public(), s.hex("gi"));
}

#[test]
fn ecp_refuses_invalid_peer_values() {
    let v = vectors("rfc5903.txt");
    for (name, group) in [
        ("8.1 group 19", DhGroup::Ecp256),
        ("8.2 group 20", DhGroup::Ecp384),
    ] {
        let gr = section(&v, name).hex("gr");
        let mut off_curve = gr.clone();
        *off_curve.last_mut().unwrap() ^= 1;
        let mut tagged = vec![0x04];
        tagged.extend(&gr);
        let too_short = &gr[..gr.len() - 1];
        let zeros = vec![0u8; gr.len()];
        let x_too_big = vec![0xffu8; gr.len()];
        for (what, peer) in [
            ("off curve", &off_curve[..]),
            ("SEC1 tagged", &tagged[..]),
            ("short", too_short),
            ("zeros", &zeros[..]),
            ("coordinates >= p", &x_too_big[..]),
            ("empty", &[][..]),
        ] {
            let share = KeyShare::generate(group, &mut seeded(2)).unwrap();
            assert_eq!(
                share.agree(peer).unwrap_err(),
                CryptoError::InvalidPeerPublicKey,
                "{name}: {what}"
            );
        }
    }
}

#[test]
fn modp2048_known_answers() {
    for s in vectors("modp2048.txt") {
        let share = share_from(DhGroup::Modp2048, &s.hex("x"));
        assert_eq!(share.public(), s.hex("gx"), "[{}] g^x", s.name);
        assert_eq!(
            share.agree(&s.hex("gr")).unwrap().as_bytes(),
            s.hex("shared"),
            "[{}]",
            s.name
        );
    }
}

/// p as 256 big-endian bytes (RFC 3526 section 3).
fn modp2048_prime() -> Vec<u8> {
    // p - 1 is even and p + 1 has no carry out of the top: p = 2^2048 - 2^1984 + ... - 1.
    let text = concat!(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
        "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    );
    hex::decode(text).unwrap()
}

#[test]
fn modp2048_refuses_values_outside_1_to_p_minus_1() {
    let p = modp2048_prime();
    let mut p_minus_1 = p.clone();
    *p_minus_1.last_mut().unwrap() -= 1;
    let mut p_minus_2 = p.clone();
    *p_minus_2.last_mut().unwrap() -= 2;
    let mut one = vec![0u8; 256];
    *one.last_mut().unwrap() = 1;
    let mut two = vec![0u8; 256];
    *two.last_mut().unwrap() = 2;
    let bad: [(&str, Vec<u8>); 7] = [
        ("0", vec![0u8; 256]),
        ("1", one),
        ("p-1", p_minus_1),
        ("p", p.clone()),
        ("2^2048-1", vec![0xff; 256]),
        ("255 bytes", two[1..].to_vec()),
        ("257 bytes", [&[0u8][..], &two[..]].concat()),
    ];
    for (what, peer) in bad {
        let share = KeyShare::generate(DhGroup::Modp2048, &mut seeded(3)).unwrap();
        assert_eq!(
            share.agree(&peer).unwrap_err(),
            CryptoError::InvalidPeerPublicKey,
            "{what}"
        );
    }
    // The edges just inside the range are accepted.
    for (what, peer) in [("2", two), ("p-2", p_minus_2)] {
        let share = KeyShare::generate(DhGroup::Modp2048, &mut seeded(3)).unwrap();
        assert_eq!(share.agree(&peer).unwrap().as_bytes().len(), 256, "{what}");
    }
}

#[test]
fn every_group_agrees_with_itself_and_is_deterministic() {
    for group in DhGroup::ALL {
        let a = KeyShare::generate(group, &mut seeded(10)).unwrap();
        let b = KeyShare::generate(group, &mut seeded(11)).unwrap();
        let again = KeyShare::generate(group, &mut seeded(10)).unwrap();
        assert_eq!(a.public(), again.public(), "{group:?} not deterministic");
        assert_ne!(a.public(), b.public());
        assert_eq!(a.public().len(), group.public_len());
        assert_eq!(a.group(), group);
        let (a_pub, b_pub) = (a.public().to_vec(), b.public().to_vec());
        let ab = a.agree(&b_pub).unwrap();
        let ba = b.agree(&a_pub).unwrap();
        assert_eq!(ab.as_bytes(), ba.as_bytes(), "{group:?}");
        assert!(ab.as_bytes().iter().any(|&x| x != 0));
    }
}

#[test]
fn iana_numbers_round_trip() {
    let expected = [
        (DhGroup::Modp2048, 14, 256),
        (DhGroup::Ecp256, 19, 64),
        (DhGroup::Ecp384, 20, 96),
        (DhGroup::Curve25519, 31, 32),
    ];
    for (group, id, len) in expected {
        assert_eq!(group.iana(), id);
        assert_eq!(DhGroup::from_iana(id), Some(group));
        assert_eq!(group.public_len(), len);
    }
    for id in [0, 1, 2, 5, 15, 21, 32, 0xffff] {
        assert_eq!(DhGroup::from_iana(id), None, "{id}");
    }
}

#[test]
fn a_failing_generator_is_an_error_not_a_panic() {
    for group in DhGroup::ALL {
        assert_eq!(
            KeyShare::generate(group, &mut FailingRng).unwrap_err(),
            CryptoError::RngFailure
        );
    }
}

#[test]
fn debug_output_hides_secrets() {
    let share = KeyShare::generate(DhGroup::Curve25519, &mut seeded(4)).unwrap();
    let text = format!("{share:?}");
    assert!(
        text.contains("Curve25519") && !text.contains("secret"),
        "{text}"
    );
}

#[test]
fn random_peer_values_never_panic() {
    use rand_chacha::rand_core::RngCore;
    let mut rng = seeded(62);
    for group in DhGroup::ALL {
        for i in 0..40 {
            let len = if i % 2 == 0 {
                group.public_len()
            } else {
                (rng.next_u32() % 300) as usize
            };
            let mut peer = vec![0u8; len];
            rng.fill_bytes(&mut peer);
            let share = KeyShare::generate(group, &mut rng).unwrap();
            // Random bytes of the right length are a valid X25519 or MODP value
            // (almost surely), and almost never an ECP point.
            match (group, share.agree(&peer)) {
                (_, Err(e)) => assert_eq!(e, CryptoError::InvalidPeerPublicKey),
                (DhGroup::Ecp256 | DhGroup::Ecp384, Ok(_)) => panic!("random bytes made a point"),
                (_, Ok(s)) => assert_eq!(
                    s.as_bytes().len(),
                    if group == DhGroup::Modp2048 { 256 } else { 32 }
                ),
            }
        }
    }
}
