//! FIPS 203 vectors (NIST ACVP, `testdata/fips203/acvp.txt`) through this module's own code
//! paths: the injected generator replays the vector's `d || z` or `m`, so the order in which
//! we draw and use randomness is checked too.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;

use rand_core::{CryptoRng, Error, RngCore};

use super::*;

/// Hands out exactly the bytes it was given, then fails.
struct Replay(Vec<u8>);

impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        unreachable!()
    }
    fn next_u64(&mut self) -> u64 {
        unreachable!()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.try_fill_bytes(dest).unwrap()
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        if dest.len() > self.0.len() {
            return Err(Error::new("replay exhausted"));
        }
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

impl CryptoRng for Replay {}

struct Case {
    function: String,
    level: Level,
    tc_id: u32,
    fields: HashMap<String, Vec<u8>>,
}

impl Case {
    fn get(&self, name: &str) -> &[u8] {
        &self.fields[name]
    }
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/fips203/acvp.txt");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut words = l.split(' ');
            let function = words.next().unwrap().to_string();
            let level = match words.next().unwrap() {
                "ML-KEM-512" => Level::L512,
                "ML-KEM-768" => Level::L768,
                "ML-KEM-1024" => Level::L1024,
                other => panic!("parameter set {other}"),
            };
            let tc_id = words.next().unwrap().parse().unwrap();
            let fields = words
                .map(|w| {
                    let (k, v) = w.split_once('=').unwrap();
                    (k.to_string(), hex::decode(v).unwrap())
                })
                .collect();
            Case {
                function,
                level,
                tc_id,
                fields,
            }
        })
        .collect()
}

fn dk_bytes(dk: &DecapsKey) -> Vec<u8> {
    match dk {
        DecapsKey::L512(k) => k.as_slice().to_vec(),
        DecapsKey::L768(k) => k.as_slice().to_vec(),
        DecapsKey::L1024(k) => k.as_slice().to_vec(),
    }
}

fn dk_from(level: Level, bytes: &[u8]) -> DecapsKey {
    match level {
        Level::L512 => DecapsKey::L512(Box::new(bytes.try_into().unwrap())),
        Level::L768 => DecapsKey::L768(Box::new(bytes.try_into().unwrap())),
        Level::L1024 => DecapsKey::L1024(Box::new(bytes.try_into().unwrap())),
    }
}

fn of(function: &str) -> Vec<Case> {
    let v: Vec<_> = cases()
        .into_iter()
        .filter(|c| c.function == function)
        .collect();
    for level in [Level::L512, Level::L768, Level::L1024] {
        assert!(v.iter().any(|c| c.level == level), "{function} {level:?}");
    }
    v
}

#[test]
fn key_generation_matches_fips203_vectors() {
    for c in of("keygen") {
        let seed = [c.get("d"), c.get("z")].concat();
        let (dk, ek) = generate(c.level, &mut Replay(seed)).unwrap();
        assert_eq!(ek, c.get("ek"), "tcId {} ek", c.tc_id);
        assert_eq!(dk_bytes(&dk), c.get("dk"), "tcId {} dk", c.tc_id);
        assert_eq!(ek.len(), c.level.ek_len());
    }
}

#[test]
fn encapsulation_matches_fips203_vectors() {
    for c in of("encap") {
        let (ct, k) = encapsulate(c.level, c.get("ek"), &mut Replay(c.get("m").to_vec())).unwrap();
        assert_eq!(ct, c.get("c"), "tcId {} c", c.tc_id);
        assert_eq!(&k[..], c.get("k"), "tcId {} k", c.tc_id);
        assert_eq!(ct.len(), c.level.ct_len());
    }
}

/// Includes the "modify ciphertext" cases: implicit rejection must give the vector's K.
#[test]
fn decapsulation_matches_fips203_vectors() {
    for c in of("decap") {
        let dk = dk_from(c.level, c.get("dk"));
        let k = decapsulate(&dk, c.get("c")).unwrap();
        assert_eq!(&k[..], c.get("k"), "tcId {} k", c.tc_id);
    }
}

/// FIPS 203 section 7.2: an encapsulation key whose coefficients are not reduced mod q is
/// refused before encapsulating, as is one of the wrong length.
#[test]
fn encapsulation_refuses_an_unreduced_or_short_key() {
    let c = of("encap")
        .into_iter()
        .find(|c| c.level == Level::L768)
        .unwrap();
    let mut ek = c.get("ek").to_vec();
    // The first 12-bit coefficient set to 4095 (>= q = 3329).
    ek[0] = 0xff;
    ek[1] |= 0x0f;
    let m = || Replay(vec![7; 32]);
    assert!(matches!(
        encapsulate(Level::L768, &ek, &mut m()),
        Err(CryptoError::InvalidPeerPublicKey)
    ));
    assert!(matches!(
        encapsulate(Level::L768, &c.get("ek")[1..], &mut m()),
        Err(CryptoError::InvalidPeerPublicKey)
    ));
    assert!(matches!(
        decapsulate(&dk_from(Level::L768, &[0; 2400]), &[0; 1087]),
        Err(CryptoError::InvalidPeerPublicKey)
    ));
}
