//! Classifier cases on synthesized responses whose records carry the proofs hickory would set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, NSEC, RRSIG};
use hickory_proto::dnssec::{Algorithm, Proof};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, NULL, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType, SerialNumber};

use super::{classify, serial_time};
use crate::answer::{Answer, Denial, LookupError};
use crate::ipseckey::{IpsecKey, PublicKey};

const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn ipseckey(owner: &str, ttl: u32, proof: Proof) -> Record {
    let rec = IpsecKey {
        precedence: 10,
        gateway: crate::Gateway::None,
        key: PublicKey::Ed25519([9; 32]),
    };
    let data = RData::Unknown {
        code: RecordType::Unknown(45),
        rdata: NULL::with(rec.to_wire()),
    };
    let mut r = Record::from_rdata(name(owner), ttl, data);
    r.proof = proof;
    r
}

fn rrsig(
    owner: &str,
    covered: RecordType,
    inception: u64,
    expiration: u64,
    proof: Proof,
) -> Record {
    #[allow(clippy::cast_possible_truncation)]
    let input = SigInput {
        type_covered: covered,
        algorithm: Algorithm::ED25519,
        num_labels: 3,
        original_ttl: 3600,
        sig_expiration: SerialNumber::new(expiration as u32),
        sig_inception: SerialNumber::new(inception as u32),
        key_tag: 4242,
        signer_name: name("example.net."),
    };
    let data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![1; 64])));
    let mut r = Record::from_rdata(name(owner), 3600, data);
    r.proof = proof;
    r
}

fn response(code: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Message {
    let mut m = Message::query();
    m.metadata.response_code = code;
    m.answers = answers;
    m.authorities = authorities;
    m
}

fn soa(ttl: u32, minimum: u32, proof: Proof) -> Record {
    let soa = SOA::new(
        name("ns.example.net."),
        name("admin.example.net."),
        1,
        1,
        1,
        1,
        minimum,
    );
    let mut r = Record::from_rdata(name("example.net."), ttl, RData::SOA(soa));
    r.proof = proof;
    r
}

#[test]
fn secure_answer_lifetime_is_bounded_by_ttl_and_rrsig() {
    let q = name("host.example.net.");
    // TTL 3600 but the signature expires in 100 s: usable for 100 s.
    let msg = response(
        ResponseCode::NoError,
        vec![
            ipseckey("host.example.net.", 3600, Proof::Secure),
            rrsig(
                "host.example.net.",
                RecordType::Unknown(45),
                NOW - 10,
                NOW + 100,
                Proof::Secure,
            ),
        ],
        vec![],
    );
    let Ok(Answer::Secure(s)) = classify(&q, &msg, now()) else {
        panic!()
    };
    assert_eq!(s.usable_until, now() + Duration::from_secs(100));
    assert_eq!(s.signature.key_tag, 4242);
    assert_eq!(s.signature.algorithm, "ED25519");
    assert_eq!(s.records.len(), 1);
    assert_eq!(Answer::Secure(s.clone()).usable_keys().len(), 1);

    // Signature valid for days, TTL 300: usable for 300 s.
    let msg = response(
        ResponseCode::NoError,
        vec![
            ipseckey("host.example.net.", 300, Proof::Secure),
            rrsig(
                "host.example.net.",
                RecordType::Unknown(45),
                NOW - 10,
                NOW + 864_000,
                Proof::Secure,
            ),
        ],
        vec![],
    );
    let Ok(Answer::Secure(s)) = classify(&q, &msg, now()) else {
        panic!()
    };
    assert_eq!(s.usable_until, now() + Duration::from_secs(300));
}

#[test]
fn bogus_is_an_error_with_a_reason() {
    let q = name("host.example.net.");
    let expired = response(
        ResponseCode::NoError,
        vec![
            ipseckey("host.example.net.", 300, Proof::Bogus),
            rrsig(
                "host.example.net.",
                RecordType::Unknown(45),
                NOW - 1000,
                NOW - 10,
                Proof::Bogus,
            ),
        ],
        vec![],
    );
    let Err(LookupError::Bogus(why)) = classify(&q, &expired, now()) else {
        panic!()
    };
    assert!(why.contains("expired"), "{why}");

    let tampered = response(
        ResponseCode::NoError,
        vec![
            ipseckey("host.example.net.", 300, Proof::Bogus),
            rrsig(
                "host.example.net.",
                RecordType::Unknown(45),
                NOW - 10,
                NOW + 1000,
                Proof::Bogus,
            ),
        ],
        vec![],
    );
    let Err(LookupError::Bogus(why)) = classify(&q, &tampered, now()) else {
        panic!()
    };
    assert!(why.contains("does not verify"), "{why}");

    let indeterminate = response(
        ResponseCode::NoError,
        vec![ipseckey("host.example.net.", 300, Proof::Indeterminate)],
        vec![],
    );
    assert!(matches!(
        classify(&q, &indeterminate, now()),
        Err(LookupError::Bogus(_))
    ));
}

#[test]
fn unsigned_records_are_insecure() {
    let q = name("host.unsigned.example.");
    let msg = response(
        ResponseCode::NoError,
        vec![ipseckey("host.unsigned.example.", 120, Proof::Insecure)],
        vec![],
    );
    let Ok(Answer::Insecure(u)) = classify(&q, &msg, now()) else {
        panic!()
    };
    assert_eq!(u.valid_until, now() + Duration::from_secs(120));
    assert!(Answer::Insecure(u).usable_keys().is_empty());
}

#[test]
fn cname_chain_takes_the_weakest_proof() {
    let q = name("alias.example.net.");
    let mut cname = Record::from_rdata(
        q.clone(),
        300,
        RData::CNAME(CNAME(name("host.example.net."))),
    );
    cname.proof = Proof::Bogus;
    let msg = response(
        ResponseCode::NoError,
        vec![
            cname.clone(),
            ipseckey("host.example.net.", 300, Proof::Secure),
        ],
        vec![],
    );
    assert!(matches!(
        classify(&q, &msg, now()),
        Err(LookupError::Bogus(_))
    ));
    cname.proof = Proof::Insecure;
    let msg = response(
        ResponseCode::NoError,
        vec![cname, ipseckey("host.example.net.", 300, Proof::Secure)],
        vec![],
    );
    assert!(matches!(classify(&q, &msg, now()), Ok(Answer::Insecure(_))));
}

#[test]
fn absence_with_its_proof() {
    let q = name("nokey.example.net.");
    let mut nsec = Record::from_rdata(
        q.clone(),
        600,
        RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(
            name("z.example.net."),
            [RecordType::A],
        ))),
    );
    nsec.proof = Proof::Secure;
    let msg = response(
        ResponseCode::NoError,
        vec![],
        vec![soa(3600, 900, Proof::Secure), nsec],
    );
    let Ok(Answer::Absent(a)) = classify(&q, &msg, now()) else {
        panic!()
    };
    assert_eq!(a.denial, Denial::Nsec);
    assert!(!a.nxdomain);
    // min(SOA TTL 3600, MINIMUM 900, NSEC TTL 600)
    assert_eq!(a.valid_until, now() + Duration::from_secs(600));

    let msg = response(
        ResponseCode::NXDomain,
        vec![],
        vec![soa(3600, 300, Proof::Insecure)],
    );
    let Ok(Answer::Absent(a)) = classify(&q, &msg, now()) else {
        panic!()
    };
    assert_eq!(a.denial, Denial::Unsigned);
    assert!(a.nxdomain);
    assert_eq!(a.valid_until, now() + Duration::from_secs(300));

    let msg = response(ResponseCode::ServFail, vec![], vec![]);
    assert!(matches!(
        classify(&q, &msg, now()),
        Err(LookupError::Failure(_))
    ));
}

#[test]
fn malformed_rdata_is_kept_as_an_error_record() {
    let q = name("host.example.net.");
    let data = RData::Unknown {
        code: RecordType::Unknown(45),
        rdata: NULL::with(vec![10, 9, 2]),
    };
    let mut bad = Record::from_rdata(q.clone(), 300, data);
    bad.proof = Proof::Secure;
    let msg = response(
        ResponseCode::NoError,
        vec![
            bad,
            rrsig(
                "host.example.net.",
                RecordType::Unknown(45),
                NOW - 10,
                NOW + 1000,
                Proof::Secure,
            ),
        ],
        vec![],
    );
    let Ok(answer @ Answer::Secure(_)) = classify(&q, &msg, now()) else {
        panic!()
    };
    let Answer::Secure(s) = &answer else {
        unreachable!()
    };
    assert!(s.records[0].data.is_err());
    assert!(answer.usable_keys().is_empty());
}

#[test]
fn serial_times_wrap_around_2106() {
    let t = UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) - 5);
    assert_eq!(
        serial_time(10, t),
        UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) + 11)
    );
    #[allow(clippy::cast_possible_truncation)]
    let soon = (NOW + 100) as u32;
    assert_eq!(serial_time(soon, now()), now() + Duration::from_secs(100));
}
