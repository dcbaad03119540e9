use std::time::{Duration, SystemTime};

use super::*;
use crate::answer::{Absence, Denial, Failure, KeyRecord, SecureKeys, Signature, Unsigned};
use crate::ipseckey::{Gateway, PublicKey};

fn record(key: PublicKey) -> KeyRecord {
    KeyRecord {
        data: Ok(IpsecKey {
            precedence: 10,
            gateway: Gateway::None,
            key,
        }),
        ttl: 300,
    }
}

fn secure(records: Vec<KeyRecord>, until: SystemTime) -> Result<Answer, LookupError> {
    Ok(Answer::Secure(SecureKeys {
        owner: Name::from_ascii("host.example.").unwrap(),
        records,
        signature: Signature {
            signer: Name::root(),
            key_tag: 1,
            algorithm: "ED25519".into(),
            inception: until - Duration::from_secs(3600),
            expiration: until,
        },
        ttl: 300,
        usable_until: until,
    }))
}

#[test]
fn a_secure_rrset_without_a_usable_key_is_its_own_verdict_not_an_absence() {
    let until = SystemTime::now() + Duration::from_secs(300);
    let ed448 = secure(vec![record(PublicKey::Ed448([1; 57]))], until);
    let verdict = KeyVerdict::of(&ed448);
    assert!(
        matches!(verdict, KeyVerdict::NoUsableKey { .. }),
        "{verdict:?}"
    );
    assert!(verdict.proves_no_key());
    assert!(verdict.keys().is_none());
    assert_eq!(verdict.word(), "no-usable-key");
}

#[test]
fn secure_keys_keep_only_usable_ones() {
    let until = SystemTime::now() + Duration::from_secs(300);
    let mixed = secure(
        vec![
            record(PublicKey::Ed448([1; 57])),
            record(PublicKey::Ed25519([7; 32])),
        ],
        until,
    );
    let verdict = KeyVerdict::of(&mixed);
    assert_eq!(verdict.keys().map(<[IpsecKey]>::len), Some(1));
    assert!(!verdict.proves_no_key());
    assert!(verdict.holds_at(SystemTime::now()));
    assert!(!verdict.holds_at(until));
}

#[test]
fn bogus_and_failures_never_prove_there_is_no_key() {
    let bogus = KeyVerdict::of(&Err(LookupError::Bogus("tampered".into())));
    let failed = KeyVerdict::of(&Err(LookupError::Failure(Failure::Overloaded)));
    assert!(!bogus.proves_no_key() && !failed.proves_no_key());
    assert_eq!((bogus.word(), failed.word()), ("bogus", "failure"));
    assert!(bogus.describe(SystemTime::now()).contains("never used"));
}

#[test]
fn absent_and_insecure_prove_there_is_no_key() {
    let until = SystemTime::now() + Duration::from_secs(60);
    let owner = Name::from_ascii("7.2.0.192.in-addr.arpa.").unwrap();
    let absent = Ok(Answer::Absent(Absence {
        owner: owner.clone(),
        nxdomain: true,
        denial: Denial::Nsec3,
        valid_until: until,
    }));
    let insecure = Ok(Answer::Insecure(Unsigned {
        owner,
        records: vec![],
        valid_until: until,
    }));
    let absent = KeyVerdict::of(&absent);
    assert_eq!(
        absent,
        KeyVerdict::Absent {
            proven: true,
            until
        }
    );
    assert!(absent.proves_no_key() && KeyVerdict::of(&insecure).proves_no_key());
}

#[test]
fn only_secure_addresses_bind_a_name() {
    let until = SystemTime::now() + Duration::from_secs(60);
    let owner = Name::from_ascii("host.example.").unwrap();
    let addr: IpAddr = "192.0.2.7".parse().unwrap();
    let secure = AddressVerdict::of(&Ok(AddressAnswer::Secure {
        owner: owner.clone(),
        addrs: vec![addr],
        usable_until: until,
    }));
    assert!(secure.proves(addr));
    assert!(secure.proves("::ffff:192.0.2.7".parse().unwrap()));
    assert!(!secure.proves("192.0.2.8".parse().unwrap()));
    let insecure = AddressVerdict::of(&Ok(AddressAnswer::Insecure {
        owner,
        addrs: vec![addr],
        valid_until: until,
    }));
    assert!(!insecure.proves(addr));
    assert!(insecure.secure_addrs().is_empty());
}
