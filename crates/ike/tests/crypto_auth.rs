//! AUTH signatures: key loading, RFC 7427 AlgorithmIdentifier encodings, round
//! trips for every key type and hash, OpenSSL-made signatures, and rejection of
//! lax, truncated, tampered and mismatched data.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

mod crypto_support;

use crypto_support::{section, seeded, vector_file, vectors, Section};
use oe_ike::crypto::{
    sign_auth, verify_auth, AuthMethod, CryptoError, PrivateKey, PublicKey, SigHash,
};

/// RFC 7427 appendix A (and RFC 8420) AlgorithmIdentifier encodings, written out
/// here independently of the crate's table.
fn rfc7427_alg_id(scheme: &str, hash: &str) -> Vec<u8> {
    let text = match (scheme, hash) {
        ("pkcs1", "sha256") => "300d06092a864886f70d01010b0500",
        ("pkcs1", "sha384") => "300d06092a864886f70d01010c0500",
        ("pkcs1", "sha512") => "300d06092a864886f70d01010d0500",
        ("ecdsa", "sha256") => "300a06082a8648ce3d040302",
        ("ecdsa", "sha384") => "300a06082a8648ce3d040303",
        ("ecdsa", "sha512") => "300a06082a8648ce3d040304",
        ("pss", "sha256") => concat!(
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500",
            "a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120"
        ),
        ("pss", "sha384") => concat!(
            "304106092a864886f70d01010a3034a00f300d06096086480165030402020500",
            "a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130"
        ),
        ("pss", "sha512") => concat!(
            "304106092a864886f70d01010a3034a00f300d06096086480165030402030500",
            "a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140"
        ),
        ("ed25519", "identity") => "300506032b6570",
        other => panic!("no AlgorithmIdentifier for {other:?}"),
    };
    hex::decode(text).unwrap()
}

fn auth_data(alg_id: &[u8], sig: &[u8]) -> Vec<u8> {
    [&[alg_id.len() as u8][..], alg_id, sig].concat()
}

fn load(name: &str) -> PrivateKey {
    let bytes = vector_file(&format!("keys/{name}"));
    match std::str::from_utf8(&bytes) {
        Ok(pem) if pem.starts_with("-----BEGIN") => PrivateKey::from_pem(pem).unwrap(),
        _ => PrivateKey::from_pkcs8_der(&bytes).unwrap(),
    }
}

fn message() -> Vec<u8> {
    section(&vectors("openssl_sigs.txt"), "message").hex("hex")
}

fn openssl_public(s: &Section) -> PublicKey {
    match s.text("scheme") {
        "ed25519" => PublicKey::Ed25519(s.hex("pub").try_into().unwrap()),
        "ecdsa" if s.text("key") == "p256.pem" => PublicKey::EcdsaP256(s.hex("pub")),
        "ecdsa" => PublicKey::EcdsaP384(s.hex("pub")),
        _ => PublicKey::Rsa {
            n: s.hex("n"),
            e: s.hex("e"),
        },
    }
}

const ALL_KEYS: [&str; 5] = [
    "ed25519.pem",
    "p256.pem",
    "p384.pem",
    "rsa2048.pem",
    "rsa3072.pem",
];

#[test]
fn keys_load_in_every_encoding_with_the_public_key_openssl_sees() {
    let v = vectors("openssl_sigs.txt");
    for s in v.iter().filter(|s| s.name != "message") {
        let key = load(s.text("key"));
        assert_eq!(key.public_key(), openssl_public(s), "[{}]", s.name);
    }
    let same = [
        ("ed25519.pem", "ed25519.der"),
        ("p256.pem", "p256-sec1.pem"),
        ("p384.pem", "p384-sec1.pem"),
        ("rsa2048.pem", "rsa2048-pkcs1.pem"),
    ];
    for (a, b) in same {
        assert_eq!(load(a).public_key(), load(b).public_key(), "{a} vs {b}");
    }
    // strongSwan's `pki --gen --type ed25519` output.
    assert!(matches!(
        load("pki-ed25519.der").public_key(),
        PublicKey::Ed25519(_)
    ));
}

#[test]
fn describe_names_type_and_size() {
    let names: Vec<String> = ALL_KEYS
        .iter()
        .map(|k| load(k).public_key().describe())
        .collect();
    assert_eq!(
        names,
        [
            "Ed25519",
            "ECDSA-P256",
            "ECDSA-P384",
            "RSA-2048",
            "RSA-3072"
        ]
    );
    assert_eq!(format!("{:?}", load("p256.pem")), "PrivateKey(ECDSA-P256)");
}

#[test]
fn openssl_signatures_verify() {
    let msg = message();
    let v = vectors("openssl_sigs.txt");
    let mut checked = 0;
    for s in v.iter().filter(|s| s.name != "message") {
        let public = openssl_public(s);
        let sig = s.hex("sig");
        let result = if s.text("scheme") == "method1" {
            verify_auth(&public, AuthMethod::RsaSig, &sig, &msg)
        } else {
            let data = auth_data(&rfc7427_alg_id(s.text("scheme"), s.text("hash")), &sig);
            verify_auth(&public, AuthMethod::DigitalSignature, &data, &msg)
        };
        assert_eq!(result, Ok(()), "[{}]", s.name);
        let mut other = msg.clone();
        other[0] ^= 1;
        let bad = if s.text("scheme") == "method1" {
            verify_auth(&public, AuthMethod::RsaSig, &sig, &other)
        } else {
            let data = auth_data(&rfc7427_alg_id(s.text("scheme"), s.text("hash")), &sig);
            verify_auth(&public, AuthMethod::DigitalSignature, &data, &other)
        };
        assert_eq!(
            bad,
            Err(CryptoError::BadSignature),
            "[{}] other message",
            s.name
        );
        checked += 1;
    }
    assert_eq!(checked, 21);
}

/// (key file, hash, scheme name for the expected AlgorithmIdentifier)
fn sign_cases() -> Vec<(&'static str, SigHash, &'static str, &'static str)> {
    use SigHash::*;
    let mut cases = vec![("ed25519.pem", Identity, "ed25519", "identity")];
    for key in ["p256.pem", "p384.pem"] {
        cases.extend([
            (key, Sha256, "ecdsa", "sha256"),
            (key, Sha384, "ecdsa", "sha384"),
            (key, Sha512, "ecdsa", "sha512"),
        ]);
    }
    for key in ["rsa2048.pem", "rsa3072.pem"] {
        cases.extend([
            (key, Sha256, "pss", "sha256"),
            (key, Sha384, "pss", "sha384"),
            (key, Sha512, "pss", "sha512"),
        ]);
    }
    cases
}

#[test]
fn sign_and_verify_every_key_type_and_hash() {
    let msg = message();
    for (file, hash, scheme, hash_name) in sign_cases() {
        let key = load(file);
        let data = sign_auth(
            &key,
            AuthMethod::DigitalSignature,
            &[hash],
            &msg,
            &mut seeded(40),
        )
        .unwrap();
        let alg_id = rfc7427_alg_id(scheme, hash_name);
        assert_eq!(data[0] as usize, alg_id.len(), "{file} {hash:?}");
        assert_eq!(
            data[1..1 + alg_id.len()],
            alg_id,
            "{file} {hash:?}: RFC 7427 appendix A bytes"
        );
        let public = key.public_key();
        assert_eq!(
            verify_auth(&public, AuthMethod::DigitalSignature, &data, &msg),
            Ok(()),
            "{file} {hash:?}"
        );
        if let PublicKey::Rsa { n, .. } = &public {
            assert_eq!(data.len(), 1 + alg_id.len() + n.len());
        }
    }
}

#[test]
fn ed25519_and_ecdsa_signatures_are_seed_deterministic() {
    let msg = message();
    for file in ["ed25519.pem", "p256.pem", "p384.pem"] {
        let key = load(file);
        let sign = |seed| {
            sign_auth(
                &key,
                AuthMethod::DigitalSignature,
                &SigHash::ALL,
                &msg,
                &mut seeded(seed),
            )
            .unwrap()
        };
        assert_eq!(sign(1), sign(1), "{file}");
        if file != "ed25519.pem" {
            assert_ne!(
                sign(1),
                sign(2),
                "{file}: ECDSA nonces are hedged with the generator"
            );
        }
    }
}

#[test]
fn hash_choice_follows_our_preference_within_the_peers_list() {
    use SigHash::*;
    let msg = message();
    let chosen = |file: &str, peer: &[SigHash]| {
        let data = sign_auth(
            &load(file),
            AuthMethod::DigitalSignature,
            peer,
            &msg,
            &mut seeded(3),
        );
        data.map(|d| d[1..1 + d[0] as usize].to_vec())
    };
    assert_eq!(
        chosen("p256.pem", &[Sha512, Sha384, Sha256]),
        Ok(rfc7427_alg_id("ecdsa", "sha256"))
    );
    assert_eq!(
        chosen("p256.pem", &[Sha512, Sha384]),
        Ok(rfc7427_alg_id("ecdsa", "sha384"))
    );
    assert_eq!(
        chosen("p384.pem", &SigHash::ALL),
        Ok(rfc7427_alg_id("ecdsa", "sha384"))
    );
    assert_eq!(
        chosen("rsa2048.pem", &SigHash::ALL),
        Ok(rfc7427_alg_id("pss", "sha256"))
    );
    assert_eq!(
        chosen("ed25519.pem", &SigHash::ALL),
        Ok(rfc7427_alg_id("ed25519", "identity"))
    );
    assert_eq!(
        chosen("ed25519.pem", &[Sha256, Sha512]),
        Err(CryptoError::NoCommonHash)
    );
    assert_eq!(
        chosen("rsa2048.pem", &[Identity]),
        Err(CryptoError::NoCommonHash)
    );
    assert_eq!(chosen("p256.pem", &[]), Err(CryptoError::NoCommonHash));
}

#[test]
fn method_1_and_null_are_refused_for_signing() {
    let msg = message();
    let sign =
        |file: &str, method| sign_auth(&load(file), method, &SigHash::ALL, &msg, &mut seeded(5));
    assert_eq!(
        sign("rsa2048.pem", AuthMethod::RsaSig),
        Err(CryptoError::UnsupportedAlgorithm)
    );
    assert_eq!(
        sign("p256.pem", AuthMethod::RsaSig),
        Err(CryptoError::UnsuitableKey)
    );
    assert_eq!(
        sign("ed25519.pem", AuthMethod::Null),
        Err(CryptoError::UnsupportedAlgorithm)
    );
    let public = load("ed25519.pem").public_key();
    assert_eq!(
        verify_auth(&public, AuthMethod::Null, &[0; 32], &msg),
        Err(CryptoError::UnsupportedAlgorithm)
    );
}

/// A valid AUTH data per key file, signed with the key's preferred hash.
fn valid(file: &str) -> (PublicKey, Vec<u8>) {
    let key = load(file);
    let data = sign_auth(
        &key,
        AuthMethod::DigitalSignature,
        &SigHash::ALL,
        &message(),
        &mut seeded(6),
    )
    .unwrap();
    (key.public_key(), data)
}

fn verify(public: &PublicKey, data: &[u8]) -> Result<(), CryptoError> {
    verify_auth(public, AuthMethod::DigitalSignature, data, &message())
}

#[test]
fn every_flipped_bit_and_every_truncation_is_rejected() {
    for file in ["ed25519.pem", "p256.pem", "p384.pem", "rsa2048.pem"] {
        let (public, data) = valid(file);
        for bit in 0..data.len() * 8 {
            let mut bad = data.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = verify(&public, &bad).unwrap_err();
            assert!(err.is_peer_fault(), "{file} bit {bit}: {err:?}");
        }
        for len in 0..data.len() {
            assert!(
                verify(&public, &data[..len]).unwrap_err().is_peer_fault(),
                "{file} len {len}"
            );
        }
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(
            verify(&public, &longer),
            Err(CryptoError::MalformedSignature),
            "{file} trailing byte"
        );
        for delta in [-1i16, 1] {
            let mut bad = data.clone();
            bad[0] = (i16::from(bad[0]) + delta) as u8;
            assert!(
                verify(&public, &bad).unwrap_err().is_peer_fault(),
                "{file} length byte {delta}"
            );
        }
    }
}

#[test]
fn lax_or_unknown_algorithm_identifiers_are_malformed() {
    let (public, data) = valid("rsa2048.pem");
    let sig = &data[1 + data[0] as usize..];
    let lax = [
        // sha256WithRSAEncryption without the NULL parameters.
        "300b06092a864886f70d01010b",
        // The same with a long-form length.
        "30810d06092a864886f70d01010b0500",
        // PSS with SHA-256, salt length 20 instead of 32.
        "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020114",
        // PSS with SHA-256 but MGF1 with SHA-384.
        "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020120",
        // PSS with SHA-256, hash parameters absent instead of NULL.
        "303d06092a864886f70d01010a3030a00d300b0609608648016503040201a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
        // PSS with SHA-256 and an explicit trailerField.
        "304606092a864886f70d01010a3039a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120a303020101",
        // ecdsa-with-SHA256 with NULL parameters.
        "300c06082a8648ce3d0403020500",
        // sha256WithRSAEncryption followed by a stray byte inside the length.
        "300d06092a864886f70d01010b050000",
        // Not DER at all.
        "ff",
    ];
    for alg_id in lax {
        let alg_id = hex::decode(alg_id).unwrap();
        assert_eq!(
            verify(&public, &auth_data(&alg_id, sig)),
            Err(CryptoError::MalformedSignature),
            "{}",
            hex::encode(&alg_id)
        );
    }
    // An empty AlgorithmIdentifier or an empty signature.
    assert_eq!(verify(&public, &[0]), Err(CryptoError::MalformedSignature));
    assert_eq!(
        verify(&public, &auth_data(&rfc7427_alg_id("pss", "sha256"), &[])),
        Err(CryptoError::MalformedSignature)
    );
    assert_eq!(verify(&public, &[]), Err(CryptoError::MalformedSignature));
}

#[test]
fn sha1_and_dsa_algorithm_identifiers_are_refused() {
    let (public, data) = valid("rsa2048.pem");
    let sig = &data[1 + data[0] as usize..];
    for alg_id in [
        "300d06092a864886f70d0101050500", // sha1WithRSAEncryption (A.1.1)
        "300906072a8648ce3d0401",         // ecdsa-with-sha1 (A.3.1)
        "300b06092a864886f70d01010a",     // RSASSA-PSS, empty parameters (A.4.1)
        "300d06092a864886f70d01010a3000", // RSASSA-PSS, default parameters (A.4.2)
        "300906072a8648ce380403",         // dsa-with-sha1 (A.2.1)
    ] {
        let alg_id = hex::decode(alg_id).unwrap();
        assert_eq!(
            verify(&public, &auth_data(&alg_id, sig)),
            Err(CryptoError::RefusedSignatureAlgorithm)
        );
    }
}

#[test]
fn algorithm_and_key_type_must_match() {
    let keys: Vec<(PublicKey, Vec<u8>)> = ALL_KEYS[..4].iter().map(|f| valid(f)).collect();
    for (i, (public, _)) in keys.iter().enumerate() {
        for (j, (_, data)) in keys.iter().enumerate() {
            let result = verify(public, data);
            match (i, j) {
                _ if i == j => assert_eq!(result, Ok(())),
                // P-256 and P-384 share the ECDSA AlgorithmIdentifiers: the signature fails.
                (1, 2) | (2, 1) => assert!(result.unwrap_err().is_peer_fault()),
                _ => assert_eq!(
                    result,
                    Err(CryptoError::AlgorithmKeyMismatch),
                    "key {i} data {j}"
                ),
            }
        }
    }
    let (rsa, _) = valid("rsa2048.pem");
    let (ed, ed_data) = valid("ed25519.pem");
    assert_eq!(
        verify_auth(&ed, AuthMethod::RsaSig, &ed_data, &message()),
        Err(CryptoError::AlgorithmKeyMismatch)
    );
    let rsa2 = load("rsa3072.pem").public_key();
    let (_, rsa_data) = valid("rsa2048.pem");
    assert_eq!(
        verify(&rsa2, &rsa_data),
        Err(CryptoError::MalformedSignature),
        "2048-bit signature, 3072-bit key"
    );
    assert_ne!(rsa, rsa2);
}

#[test]
fn rsa_signature_length_must_equal_the_modulus_length() {
    let (public, data) = valid("rsa2048.pem");
    let mut longer = data.clone();
    longer.insert(1 + data[0] as usize, 0); // a leading zero octet: same integer, wrong length
    assert_eq!(
        verify(&public, &longer),
        Err(CryptoError::MalformedSignature)
    );
    assert_eq!(
        verify(&public, &data[..data.len() - 1]),
        Err(CryptoError::MalformedSignature)
    );
}

#[test]
fn ecdsa_signatures_must_be_canonical_der() {
    let (public, data) = valid("p256.pem");
    let alg_len = 1 + data[0] as usize;
    let (alg, der) = (&data[..alg_len], &data[alg_len..]);
    let with = |der: &[u8]| [alg, der].concat();
    // Parse r and s out of the (canonical) signature we made.
    assert_eq!(der[0], 0x30);
    let r_len = der[3] as usize;
    let r = &der[4..4 + r_len];
    let s = &der[4 + r_len + 2..];
    let int = |v: &[u8]| [&[0x02, v.len() as u8][..], v].concat();
    let seq = |body: &[u8]| [&[0x30, body.len() as u8][..], body].concat();
    assert_eq!(
        verify(&public, &with(&seq(&[int(r), int(s)].concat()))),
        Ok(())
    );
    let padded_r = [&[0u8, 0][..], r].concat(); // redundant leading zeros
    let long_form = [&[0x30, 0x81, (der.len() - 2) as u8][..], &der[2..]].concat();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        (
            "redundant leading zero",
            seq(&[int(&padded_r), int(s)].concat()),
        ),
        ("long-form length", long_form),
        (
            "trailing data inside",
            seq(&[int(r), int(s), vec![0x00]].concat()),
        ),
        ("trailing data after", [der, &[0][..]].concat()),
        ("negative r", seq(&[int(&[0x80; 32]), int(s)].concat())),
        ("zero s", seq(&[int(r), int(&[0])].concat())),
        (
            "r longer than the field",
            seq(&[int(&[&[1u8][..], &[0xaa; 32]].concat()), int(s)].concat()),
        ),
        (
            "OCTET STRING instead of INTEGER",
            seq(&[[&[0x04, r.len() as u8][..], r].concat(), int(s)].concat()),
        ),
        ("raw r || s (RFC 4754 form)", [r, s].concat()),
    ];
    for (what, der) in bad {
        assert_eq!(
            verify(&public, &with(&der)),
            Err(CryptoError::MalformedSignature),
            "{what}"
        );
    }
}

#[test]
fn lax_pkcs1_v1_5_encodings_do_not_verify() {
    let msg = message();
    let public = load("rsa2048.pem").public_key();
    let alg_id = rfc7427_alg_id("pkcs1", "sha256");
    for s in vectors("pkcs1_lax.txt") {
        let result = verify_auth(
            &public,
            AuthMethod::DigitalSignature,
            &auth_data(&alg_id, &s.hex("sig")),
            &msg,
        );
        if s.name == "correct (control)" {
            assert_eq!(result, Ok(()));
        } else {
            assert_eq!(result, Err(CryptoError::BadSignature), "[{}]", s.name);
        }
    }
}

#[test]
fn weak_or_malformed_public_keys_are_refused() {
    let (good, data) = valid("rsa2048.pem");
    let PublicKey::Rsa { n, e } = good else {
        unreachable!()
    };
    let bad_keys = [
        PublicKey::Rsa {
            n: n[..128].to_vec(),
            e: e.clone(),
        }, // 1024 bits
        PublicKey::Rsa {
            n: [&[0u8][..], &n].concat(),
            e: e.clone(),
        }, // leading zero
        PublicKey::Rsa {
            n: n.clone(),
            e: vec![],
        },
        PublicKey::Rsa {
            n: n.clone(),
            e: vec![1, 0, 0],
        }, // even exponent
        PublicKey::Rsa {
            n: vec![0xff; 1025],
            e: e.clone(),
        }, // 8200 bits
        PublicKey::EcdsaP256(vec![0xaa; 64]),
        PublicKey::EcdsaP256(vec![0; 65]),
        PublicKey::EcdsaP384(vec![0xaa; 96]),
    ];
    for key in bad_keys {
        assert_eq!(
            verify(&key, &data),
            Err(CryptoError::InvalidPublicKey),
            "{key:?}"
        );
        assert_eq!(key.validate(), Err(CryptoError::InvalidPublicKey));
    }
}

#[test]
fn private_key_loading_rejects_garbage() {
    let der = vector_file("keys/ed25519.der");
    for bad in [
        &[][..],
        &der[..der.len() - 1],
        &[0x30, 0x03, 0x02, 0x01, 0x00][..],
    ] {
        assert_eq!(
            PrivateKey::from_pkcs8_der(bad).unwrap_err(),
            CryptoError::InvalidPrivateKey
        );
    }
    let pem = String::from_utf8(vector_file("keys/p256.pem")).unwrap();
    let wrong_label = pem.replace("PRIVATE KEY", "CERTIFICATE");
    for bad in ["", "not a key", &wrong_label, &pem[..pem.len() / 2]] {
        assert_eq!(
            PrivateKey::from_pem(bad).unwrap_err(),
            CryptoError::InvalidPrivateKey
        );
    }
}

#[test]
fn iana_numbers() {
    for (h, id) in [
        (SigHash::Sha256, 2),
        (SigHash::Sha384, 3),
        (SigHash::Sha512, 4),
        (SigHash::Identity, 5),
    ] {
        assert_eq!(h.iana(), id);
        assert_eq!(SigHash::from_iana(id), Some(h));
    }
    assert_eq!(SigHash::from_iana(1), None);
    for (m, id) in [
        (AuthMethod::RsaSig, 1),
        (AuthMethod::Null, 13),
        (AuthMethod::DigitalSignature, 14),
    ] {
        assert_eq!(m.iana(), id);
        assert_eq!(AuthMethod::from_iana(id), Some(m));
    }
    assert_eq!(AuthMethod::from_iana(2), None);
}

#[test]
fn random_auth_data_never_panics_or_verifies() {
    use rand_chacha::rand_core::RngCore;
    let mut rng = seeded(60);
    let msg = message();
    let prefixes: Vec<Vec<u8>> = [
        ("pkcs1", "sha256"),
        ("pss", "sha384"),
        ("ecdsa", "sha256"),
        ("ed25519", "identity"),
    ]
    .iter()
    .map(|(s, h)| {
        let id = rfc7427_alg_id(s, h);
        [&[id.len() as u8][..], &id].concat()
    })
    .chain([vec![], vec![0x30]])
    .collect();
    for file in ["ed25519.pem", "p256.pem", "p384.pem", "rsa2048.pem"] {
        let public = load(file).public_key();
        for i in 0..300 {
            let mut tail = vec![0u8; (rng.next_u32() % 300) as usize];
            rng.fill_bytes(&mut tail);
            if i % 3 == 0 && tail.len() > 2 {
                tail[0] = 0x30; // a DER SEQUENCE header with a plausible length
                tail[1] = (tail.len() - 2).min(0x7f) as u8;
            }
            let data = [&prefixes[i % prefixes.len()][..], &tail].concat();
            for method in [AuthMethod::DigitalSignature, AuthMethod::RsaSig] {
                let err = verify_auth(&public, method, &data, &msg).unwrap_err();
                assert!(err.is_peer_fault(), "{file}: {err:?}");
            }
        }
    }
}

#[test]
fn strongswan_encodings_and_signatures_verify() {
    let v = vectors("strongswan_sigs.txt");
    assert_eq!(v.len(), 5);
    for s in &v {
        let public = match s.text("kind") {
            "rsa" => PublicKey::Rsa {
                n: s.hex("n"),
                e: s.hex("e"),
            },
            "p256" => PublicKey::EcdsaP256(s.hex("xy")),
            _ => PublicKey::Ed25519(s.hex("ed25519").try_into().unwrap()),
        };
        let data = auth_data(&s.hex("alg_id"), &s.hex("sig"));
        let mut tbs = s.hex("tbs");
        let method = AuthMethod::DigitalSignature;
        assert_eq!(
            verify_auth(&public, method, &data, &tbs),
            Ok(()),
            "[{}]",
            s.name
        );
        tbs[10] ^= 1;
        assert_eq!(
            verify_auth(&public, method, &data, &tbs),
            Err(CryptoError::BadSignature)
        );
    }
}
