//! Combining the A and AAAA verdicts, on synthesized validated responses.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, NSEC, RRSIG};
use hickory_proto::dnssec::{Algorithm, Proof};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType, SerialNumber};

use super::{combine, AddressAnswer};
use crate::answer::{Denial, Failure, LookupError};
use crate::classify::classify_rrset;

const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn with_proof(mut r: Record, proof: Proof) -> Record {
    r.proof = proof;
    r
}

fn a(owner: &str, addr: &str, proof: Proof) -> Record {
    let data = RData::A(A(addr.parse().unwrap()));
    with_proof(Record::from_rdata(name(owner), 300, data), proof)
}

fn aaaa(owner: &str, addr: &str, proof: Proof) -> Record {
    let data = RData::AAAA(AAAA(addr.parse().unwrap()));
    with_proof(Record::from_rdata(name(owner), 300, data), proof)
}

fn rrsig(owner: &str, covered: RecordType, expires_in: u64) -> Record {
    #[allow(clippy::cast_possible_truncation)]
    let input = SigInput {
        type_covered: covered,
        algorithm: Algorithm::ED25519,
        num_labels: 3,
        original_ttl: 300,
        sig_expiration: SerialNumber::new((NOW + expires_in) as u32),
        sig_inception: SerialNumber::new((NOW - 10) as u32),
        key_tag: 7,
        signer_name: name("example.net."),
    };
    let data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![1; 64])));
    with_proof(Record::from_rdata(name(owner), 300, data), Proof::Secure)
}

fn nodata(owner: &str, proof: Proof) -> Message {
    let nsec = NSEC::new(name("z.example.net."), [RecordType::A]);
    let data = RData::DNSSEC(DNSSECRData::NSEC(nsec));
    let record = with_proof(Record::from_rdata(name(owner), 120, data), proof);
    response(ResponseCode::NoError, vec![], vec![record])
}

fn response(code: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Message {
    let mut m = Message::query();
    m.metadata.response_code = code;
    m.answers = answers;
    m.authorities = authorities;
    m
}

fn run(q: &str, a_msg: &Message, aaaa_msg: &Message) -> Result<AddressAnswer, LookupError> {
    let q = name(q);
    combine(
        classify_rrset(&q, RecordType::A, a_msg, now()),
        classify_rrset(&q, RecordType::AAAA, aaaa_msg, now()),
        now(),
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn both_families_secure() {
    let h = "host.example.net.";
    let a_msg = response(
        ResponseCode::NoError,
        vec![
            a(h, "192.0.2.30", Proof::Secure),
            rrsig(h, RecordType::A, 100),
        ],
        vec![],
    );
    let aaaa_msg = response(
        ResponseCode::NoError,
        vec![
            aaaa(h, "2001:db8::30", Proof::Secure),
            rrsig(h, RecordType::AAAA, 1000),
        ],
        vec![],
    );
    let answer = run(h, &a_msg, &aaaa_msg).unwrap();
    assert_eq!(
        answer.secure_addrs(),
        &[ip("192.0.2.30"), ip("2001:db8::30")]
    );
    // Bounded by the A RRSIG's expiration (100 s), under the TTL (300 s).
    assert_eq!(answer.valid_until(), now() + Duration::from_secs(100));
    assert!(answer.proves(ip("192.0.2.30")));
    assert!(answer.proves(ip("::ffff:192.0.2.30")));
    assert!(!answer.proves(ip("192.0.2.31")));
}

#[test]
fn one_family_proven_absent_is_still_secure() {
    let h = "host.example.net.";
    let a_msg = response(
        ResponseCode::NoError,
        vec![
            a(h, "192.0.2.30", Proof::Secure),
            rrsig(h, RecordType::A, 1000),
        ],
        vec![],
    );
    let answer = run(h, &a_msg, &nodata(h, Proof::Secure)).unwrap();
    assert_eq!(answer.secure_addrs(), &[ip("192.0.2.30")]);
    // The denial's negative TTL (no SOA here: 60 s, under the NSEC's 120 s) bounds how long
    // the set is known complete.
    assert_eq!(answer.valid_until(), now() + Duration::from_secs(60));
}

#[test]
fn unsigned_part_makes_it_insecure() {
    let h = "host.example.net.";
    let a_msg = response(
        ResponseCode::NoError,
        vec![a(h, "192.0.2.50", Proof::Insecure)],
        vec![],
    );
    let aaaa_msg = response(ResponseCode::NoError, vec![], vec![]);
    let answer = run(h, &a_msg, &aaaa_msg).unwrap();
    let AddressAnswer::Insecure { addrs, .. } = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(addrs, &[ip("192.0.2.50")]);
    assert!(answer.secure_addrs().is_empty());
    assert!(!answer.proves(ip("192.0.2.50")));
}

#[test]
fn bogus_anywhere_is_bogus_and_failures_are_failures() {
    let h = "host.example.net.";
    let good = response(
        ResponseCode::NoError,
        vec![
            a(h, "192.0.2.30", Proof::Secure),
            rrsig(h, RecordType::A, 1000),
        ],
        vec![],
    );
    let bad = response(
        ResponseCode::NoError,
        vec![aaaa(h, "2001:db8::30", Proof::Bogus)],
        vec![],
    );
    assert!(matches!(run(h, &good, &bad), Err(LookupError::Bogus(_))));
    let q = name(h);
    let failed = || Err(LookupError::Failure(Failure::Network("down".into())));
    let bogus = Err(LookupError::Bogus("x".into()));
    assert!(matches!(
        combine(
            classify_rrset(&q, RecordType::A, &good, now()),
            failed(),
            now()
        ),
        Err(LookupError::Failure(_))
    ));
    // Bogus wins over a failure, whichever side it is on.
    assert!(matches!(
        combine(failed(), bogus, now()),
        Err(LookupError::Bogus(_))
    ));
}

#[test]
fn absent_with_the_weaker_proof() {
    let h = "nothing.example.net.";
    let answer = run(h, &nodata(h, Proof::Secure), &nodata(h, Proof::Secure)).unwrap();
    assert!(matches!(
        answer,
        AddressAnswer::Absent {
            proof: Denial::Nsec,
            nxdomain: false,
            ..
        }
    ));
    let unsigned = response(ResponseCode::NXDomain, vec![], vec![]);
    let answer = run(h, &unsigned, &nodata(h, Proof::Secure)).unwrap();
    assert!(matches!(
        answer,
        AddressAnswer::Absent {
            proof: Denial::Unsigned,
            nxdomain: false,
            ..
        }
    ));
}

#[test]
fn addresses_follow_cnames() {
    let q = "alias.example.net.";
    let h = "host.example.net.";
    let cname = with_proof(
        Record::from_rdata(name(q), 300, RData::CNAME(CNAME(name(h)))),
        Proof::Secure,
    );
    let a_msg = response(
        ResponseCode::NoError,
        vec![
            cname.clone(),
            rrsig(q, RecordType::CNAME, 50),
            a(h, "192.0.2.30", Proof::Secure),
            rrsig(h, RecordType::A, 1000),
        ],
        vec![],
    );
    let aaaa_msg = response(
        ResponseCode::NoError,
        vec![cname, rrsig(q, RecordType::CNAME, 50)],
        vec![with_proof(
            Record::from_rdata(
                name(h),
                600,
                RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(
                    name("z.example.net."),
                    [RecordType::A],
                ))),
            ),
            Proof::Secure,
        )],
    );
    let answer = run(q, &a_msg, &aaaa_msg).unwrap();
    let AddressAnswer::Secure {
        owner,
        addrs,
        usable_until,
    } = answer
    else {
        panic!("{answer:?}")
    };
    assert_eq!(owner, name(h));
    assert_eq!(addrs, vec![ip("192.0.2.30")]);
    // The CNAME's signature expires first.
    assert_eq!(usable_until, now() + Duration::from_secs(50));
}
