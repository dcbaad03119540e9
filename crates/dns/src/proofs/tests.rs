use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::rdata::{SigInput, NSEC, NSEC3, RRSIG};
use hickory_proto::dnssec::{Algorithm, Nsec3HashAlgorithm};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Record, SerialNumber};

use super::insecure::{cut, Cut};
use super::*;

const IPSECKEY: RecordType = RecordType::Unknown(45);

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn secure(mut r: Record, proof: Proof) -> Record {
    r.proof = proof;
    r
}

fn nsec_record(owner: &str, next: &str, types: &[RecordType], proof: Proof) -> Record {
    let data = NSEC::new(name(next), types.iter().copied());
    let r = Record::from_rdata(name(owner), 300, RData::DNSSEC(DNSSECRData::NSEC(data)));
    secure(r, proof)
}

fn rrsig(owner: &str, covered: RecordType, signer: &str, proof: Proof) -> Record {
    let input = SigInput {
        type_covered: covered,
        algorithm: Algorithm::ECDSAP256SHA256,
        num_labels: name(owner).num_labels(),
        original_ttl: 300,
        sig_expiration: SerialNumber::new(2),
        sig_inception: SerialNumber::new(1),
        key_tag: 1,
        signer_name: name(signer),
    };
    let data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![0; 64])));
    secure(Record::from_rdata(name(owner), 300, data), proof)
}

fn soa(zone: &str, ttl: u32, minimum: u32, proof: Proof) -> Record {
    let data = SOA::new(name("ns.invalid."), name("h.invalid."), 1, 1, 1, 1, minimum);
    secure(Record::from_rdata(name(zone), ttl, RData::SOA(data)), proof)
}

/// A negative answer from `zone` carrying these NSECs (each with a validated RRSIG).
fn denial(zone: &str, nsecs: &[(&str, &str, &[RecordType])]) -> Message {
    let mut m = Message::query();
    for (owner, next, types) in nsecs {
        m.authorities
            .push(nsec_record(owner, next, types, Proof::Secure));
        m.authorities
            .push(rrsig(owner, RecordType::NSEC, zone, Proof::Secure));
    }
    m
}

/// The reverse zone of the fixture: apex, 10, 20, 30 (with IPSECKEY), 31 (PTR only).
fn reverse_zone() -> Proofs {
    let proofs = Proofs::default();
    let zone = "2.0.192.in-addr.arpa.";
    let msg = denial(
        zone,
        &[
            (
                "2.0.192.in-addr.arpa.",
                "10.2.0.192.in-addr.arpa.",
                &[RecordType::SOA, RecordType::NS, RecordType::NSEC],
            ),
            (
                "31.2.0.192.in-addr.arpa.",
                "2.0.192.in-addr.arpa.",
                &[RecordType::PTR, RecordType::NSEC],
            ),
        ],
    );
    proofs.denial(&msg, t0() + Duration::from_secs(300), t0());
    proofs
}

fn covering(proofs: &Proofs, q: &str, at: SystemTime) -> Option<Covered> {
    proofs.covering(&name(q), IPSECKEY, &[Name::root()], at)
}

#[test]
fn a_cached_range_and_wildcard_denial_prove_nxdomain() {
    let proofs = reverse_zone();
    // 77 sorts after 31: the wrapping NSEC covers it; the apex NSEC covers *.2.0.192...
    let got = covering(&proofs, "77.2.0.192.in-addr.arpa.", t0());
    assert_eq!(
        got,
        Some(Covered::Denied(Denied {
            nxdomain: true,
            until: t0() + Duration::from_secs(300),
        }))
    );
    // At the owner of an NSEC without IPSECKEY: NODATA.
    let got = covering(&proofs, "31.2.0.192.in-addr.arpa.", t0());
    assert!(matches!(
        got,
        Some(Covered::Denied(Denied {
            nxdomain: false,
            ..
        }))
    ));
    // 15 lies between 10 and 20: no cached NSEC covers it.
    assert_eq!(covering(&proofs, "15.2.0.192.in-addr.arpa.", t0()), None);
    // Another zone: nothing.
    assert_eq!(covering(&proofs, "7.2.0.198.in-addr.arpa.", t0()), None);
}

#[test]
fn a_proof_never_outlives_its_validity() {
    let proofs = reverse_zone();
    let q = "77.2.0.192.in-addr.arpa.";
    assert!(covering(&proofs, q, t0() + Duration::from_secs(299)).is_some());
    assert_eq!(covering(&proofs, q, t0() + Duration::from_secs(300)), None);
    // A record's own (validated) TTL bounds the answer's lifetime too.
    let proofs = Proofs::default();
    let mut msg = denial(
        "ed.example.",
        &[("a.ed.example.", "z.ed.example.", &[RecordType::A])],
    );
    msg.authorities[0].ttl = 20;
    proofs.denial(&msg, t0() + Duration::from_secs(300), t0());
    let chain = &proofs.lock().zones[&name("ed.example.")];
    assert_eq!(
        chain[&name("a.ed.example.")].until,
        t0() + Duration::from_secs(20)
    );
}

#[test]
fn without_a_wildcard_denial_there_is_no_nxdomain() {
    let proofs = Proofs::default();
    let msg = denial(
        "ed.example.",
        &[("m.ed.example.", "p.ed.example.", &[RecordType::A])],
    );
    proofs.denial(&msg, t0() + Duration::from_secs(300), t0());
    // n.ed.example. is covered, but *.ed.example. is not known to be absent.
    assert_eq!(covering(&proofs, "n.ed.example.", t0()), None);
}

#[test]
fn an_existing_wildcard_answers_unless_it_lacks_the_type() {
    let apex: &[RecordType] = &[RecordType::SOA, RecordType::NS];
    for (wild_types, expected) in [
        (&[IPSECKEY][..], None),
        (
            &[RecordType::TXT][..],
            Some(Covered::Denied(Denied {
                nxdomain: false,
                until: t0() + Duration::from_secs(300),
            })),
        ),
    ] {
        let proofs = Proofs::default();
        let msg = denial(
            "ed.example.",
            &[
                ("ed.example.", "*.ed.example.", apex),
                ("*.ed.example.", "b.ed.example.", wild_types),
                ("m.ed.example.", "p.ed.example.", &[RecordType::A]),
            ],
        );
        proofs.denial(&msg, t0() + Duration::from_secs(300), t0());
        assert_eq!(
            covering(&proofs, "n.ed.example.", t0()),
            expected,
            "{wild_types:?}"
        );
    }
}

#[test]
fn nothing_below_a_delegation_a_dname_or_at_an_alias() {
    let proofs = Proofs::default();
    let msg = denial(
        "ed.example.",
        &[
            ("ed.example.", "*.ed.example.", &[RecordType::SOA]),
            ("*.ed.example.", "a.ed.example.", &[RecordType::TXT]),
            ("cut.ed.example.", "d.ed.example.", &[RecordType::NS]),
            ("dn.ed.example.", "e.ed.example.", &[RecordType::DNAME]),
            ("alias.ed.example.", "b.ed.example.", &[RecordType::CNAME]),
        ],
    );
    proofs.denial(&msg, t0() + Duration::from_secs(300), t0());
    for q in [
        "x.cut.ed.example.",
        "cut.ed.example.",
        "x.dn.ed.example.",
        "alias.ed.example.",
    ] {
        assert_eq!(covering(&proofs, q, t0()), None, "{q}");
    }
}

#[test]
fn only_validated_records_are_kept() {
    let proofs = Proofs::default();
    let mut msg = Message::query();
    let types = [RecordType::SOA];
    // A bogus NSEC with a validated RRSIG, and a secure NSEC whose RRSIG did not validate.
    msg.authorities.push(nsec_record(
        "ed.example.",
        "z.ed.example.",
        &types,
        Proof::Bogus,
    ));
    msg.authorities.push(rrsig(
        "ed.example.",
        RecordType::NSEC,
        "ed.example.",
        Proof::Secure,
    ));
    msg.authorities.push(nsec_record(
        "a.ed.example.",
        "z.ed.example.",
        &types,
        Proof::Secure,
    ));
    msg.authorities.push(rrsig(
        "a.ed.example.",
        RecordType::NSEC,
        "ed.example.",
        Proof::Bogus,
    ));
    proofs.denial(&msg, t0() + Duration::from_secs(300), t0());
    assert_eq!(proofs.sizes(), (0, 0));
}

#[test]
fn an_insecure_cut_covers_every_name_below_it_but_not_below_an_anchor() {
    let proofs = Proofs::default();
    let until = t0() + Duration::from_secs(60);
    proofs.insecure_cut(name("100.51.198.in-addr.arpa."), until, t0());
    let covered = |q: &str, anchors: &[Name], at| proofs.covering(&name(q), IPSECKEY, anchors, at);
    let root = [Name::root()];
    for q in ["7.100.51.198.in-addr.arpa.", "100.51.198.in-addr.arpa."] {
        assert_eq!(
            covered(q, &root, t0()),
            Some(Covered::Insecure {
                cut: name("100.51.198.in-addr.arpa."),
                until
            })
        );
    }
    assert_eq!(covered("7.101.51.198.in-addr.arpa.", &root, t0()), None);
    assert_eq!(covered("7.100.51.198.in-addr.arpa.", &root, until), None);
    // A trust anchor below the cut: names under it may be secure.
    let anchors = [Name::root(), name("7.100.51.198.in-addr.arpa.")];
    assert_eq!(
        covered("x.7.100.51.198.in-addr.arpa.", &anchors, t0()),
        None
    );
    assert!(covered("8.100.51.198.in-addr.arpa.", &anchors, t0()).is_some());
}

#[test]
fn bounded_in_cuts_and_records() {
    let proofs = Proofs::default();
    let until = t0() + Duration::from_secs(60);
    for i in 0..MAX_CUTS + 50 {
        proofs.insecure_cut(name(&format!("z{i}.example.")), until, t0());
    }
    for i in 0..MAX_NSEC / 2 + 100 {
        let (a, b) = (format!("a{i}.ed.example."), format!("b{i}.ed.example."));
        let msg = denial(
            "ed.example.",
            &[(&a, &b, &[RecordType::A]), (&b, &a, &[RecordType::A])],
        );
        proofs.denial(&msg, until, t0());
    }
    assert_eq!(proofs.sizes(), (MAX_CUTS, MAX_NSEC));
}

#[test]
fn the_parents_nsec_proves_an_insecure_delegation() {
    let zone = name("insecure.example.");
    let types = [RecordType::NS, RecordType::NSEC, RecordType::RRSIG];
    let mut msg = Message::query();
    msg.authorities.push(nsec_record(
        "insecure.example.",
        "rsa.example.",
        &types,
        Proof::Secure,
    ));
    msg.authorities.push(soa(".", 300, 120, Proof::Secure));
    assert_eq!(
        cut(&zone, &msg, t0()),
        Cut::Insecure(t0() + Duration::from_secs(120))
    );
    // A DS in the bitmap, the child's apex NSEC (SOA), a bogus NSEC, a DS answer: no proof.
    for (types, proof) in [
        (&[RecordType::NS, RecordType::DS][..], Proof::Secure),
        (&[RecordType::NS, RecordType::SOA][..], Proof::Secure),
        (&[RecordType::NS][..], Proof::Bogus),
    ] {
        let mut m = Message::query();
        m.authorities
            .push(nsec_record("insecure.example.", "z.", types, proof));
        assert_eq!(cut(&zone, &m, t0()), Cut::Unproven, "{types:?} {proof:?}");
    }
    // An unsigned parent: the cut is higher up.
    let mut m = Message::query();
    m.authorities
        .push(soa("example.", 300, 300, Proof::Insecure));
    assert_eq!(cut(&zone, &m, t0()), Cut::ParentInsecure(name("example.")));
}

#[test]
fn the_nsec3_matching_the_cut_proves_it_too() {
    let zone = name("insecure.example.");
    let hash = Nsec3HashAlgorithm::SHA1.hash(&[], &zone, 0).unwrap();
    let label = data_encoding::BASE32_DNSSEC.encode(hash.as_ref());
    let owner = format!("{label}.example.");
    let nsec3 = |types: &[RecordType], opt_out| {
        let data = NSEC3::new(
            Nsec3HashAlgorithm::SHA1,
            opt_out,
            0,
            vec![],
            vec![0xFF; 20],
            types.iter().copied(),
        );
        let r = Record::from_rdata(name(&owner), 60, RData::DNSSEC(DNSSECRData::NSEC3(data)));
        secure(r, Proof::Secure)
    };
    let mut m = Message::query();
    m.authorities.push(nsec3(&[RecordType::NS], false));
    assert_eq!(
        cut(&zone, &m, t0()),
        Cut::Insecure(t0() + Duration::from_secs(60))
    );
    // The NSEC3 of another name: nothing.
    assert_eq!(cut(&name("other.example."), &m, t0()), Cut::Unproven);
}
