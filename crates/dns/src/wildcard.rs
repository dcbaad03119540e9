//! RFC 4035 section 5.3.4 for NSEC-signed wildcard answers, where hickory 0.26.3 is wrong.
//!
//! hickory's `verify_nsec` demands an NSEC that *covers the wildcard name* for a positive
//! wildcard-expanded answer. When the wildcard's own NSEC is the one covering the query name
//! (the usual case for `*.zone` answering one label below), no NSEC covers the wildcard and a
//! correct answer comes back bogus (hickory PR #3812 adds the failing test).
//!
//! What RFC 4035 section 5.3.4 requires instead: the RRset validated with an RRSIG whose Labels
//! field is below the owner's label count (so it was expanded from `*.<closest encloser>`), and
//! a validated NSEC proving that the *next closer name* (the closest encloser plus one label of
//! the query name) does not exist, so no closer match could have answered. We check exactly
//! that, on records hickory already validated, and only after hickory said bogus.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::Proof;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::proofs::nsec::covers;

/// Whether `msg` is a wildcard expansion for `qname covered` (IPSECKEY, A, AAAA) that RFC 4035
/// section 5.3.4 proves: a secure RRset from a secure wildcard RRSIG, and a secure NSEC from the
/// same zone covering the next closer name.
pub(crate) fn proves_nsec_wildcard_answer(
    qname: &Name,
    covered: RecordType,
    msg: &Message,
) -> bool {
    let rrset_secure = msg
        .answers
        .iter()
        .filter(|r| r.record_type() == covered && r.name == *qname)
        .all(|r| r.proof == Proof::Secure);
    let expansion = msg.answers.iter().find_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if r.proof == Proof::Secure
                && r.name == *qname
                && sig.input().type_covered == covered
                && sig.input().num_labels < qname.num_labels() =>
        {
            Some((sig.input().num_labels, sig.input().signer_name.clone()))
        }
        _ => None,
    });
    let Some((labels, signer)) = expansion else {
        return false;
    };
    if !rrset_secure || msg.answers.iter().all(|r| r.record_type() != covered) {
        return false;
    }
    let next_closer = qname.trim_to(usize::from(labels) + 1);
    msg.authorities.iter().any(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::NSEC(nsec)) if r.proof == Proof::Secure => {
            signer.zone_of(&r.name) && covers(&r.name, nsec, &next_closer)
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use hickory_proto::dnssec::rdata::{SigInput, NSEC, RRSIG};
    use hickory_proto::dnssec::Algorithm;
    use hickory_proto::rr::rdata::NULL;
    use hickory_proto::rr::{Record, SerialNumber};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn answer(qname: &str, labels: u8, proof: Proof) -> Vec<Record> {
        let data = RData::Unknown {
            code: RecordType::Unknown(45),
            rdata: NULL::with(vec![10, 0, 4]),
        };
        let mut key = Record::from_rdata(name(qname), 300, data);
        key.proof = proof;
        let input = SigInput {
            type_covered: RecordType::Unknown(45),
            algorithm: Algorithm::ED25519,
            num_labels: labels,
            original_ttl: 300,
            sig_expiration: SerialNumber::new(2),
            sig_inception: SerialNumber::new(1),
            key_tag: 1,
            signer_name: name("ed.example."),
        };
        let sig = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![0; 64])));
        let mut sig = Record::from_rdata(name(qname), 300, sig);
        sig.proof = proof;
        vec![key, sig]
    }

    fn nsec(owner: &str, next: &str, proof: Proof) -> Record {
        let data = NSEC::new(name(next), [RecordType::Unknown(45), RecordType::RRSIG]);
        let mut r = Record::from_rdata(name(owner), 300, RData::DNSSEC(DNSSECRData::NSEC(data)));
        r.proof = proof;
        r
    }

    fn proves(qname: &Name, msg: &Message) -> bool {
        proves_nsec_wildcard_answer(qname, RecordType::from(crate::ipseckey::RECORD_TYPE), msg)
    }

    fn msg(answers: Vec<Record>, authorities: Vec<Record>) -> Message {
        let mut m = Message::query();
        m.answers = answers;
        m.authorities = authorities;
        m
    }

    #[test]
    fn wildcard_one_label_below_its_own_nsec() {
        // *.wild.ed.example. is the zone's last name: its NSEC wraps to the apex and covers
        // anything.wild.ed.example. (the next closer name here).
        let q = name("anything.wild.ed.example.");
        let wrap = nsec("*.wild.ed.example.", "ed.example.", Proof::Secure);
        assert!(proves(
            &q,
            &msg(
                answer("anything.wild.ed.example.", 3, Proof::Secure),
                vec![wrap.clone()]
            )
        ));
        // Two labels below: the next closer name is b.wild.ed.example., also covered.
        let q2 = name("a.b.wild.ed.example.");
        assert!(proves(
            &q2,
            &msg(answer("a.b.wild.ed.example.", 3, Proof::Secure), vec![wrap])
        ));
    }

    #[test]
    fn rejects_what_is_not_proven() {
        let q = name("anything.wild.ed.example.");
        let wrap = || nsec("*.wild.ed.example.", "ed.example.", Proof::Secure);
        // Not an expansion (labels == owner labels): nothing to prove here.
        assert!(!proves(
            &q,
            &msg(
                answer("anything.wild.ed.example.", 4, Proof::Secure),
                vec![wrap()]
            )
        ));
        // No NSEC, or one that does not validate, or one that does not cover the name.
        assert!(!proves(
            &q,
            &msg(
                answer("anything.wild.ed.example.", 3, Proof::Secure),
                vec![]
            )
        ));
        let bogus = nsec("*.wild.ed.example.", "ed.example.", Proof::Bogus);
        assert!(!proves(
            &q,
            &msg(
                answer("anything.wild.ed.example.", 3, Proof::Secure),
                vec![bogus]
            )
        ));
        let elsewhere = nsec("gw.ed.example.", "host.ed.example.", Proof::Secure);
        assert!(!proves(
            &q,
            &msg(
                answer("anything.wild.ed.example.", 3, Proof::Secure),
                vec![elsewhere]
            )
        ));
        // An NSEC from another zone.
        let foreign = nsec("*.wild.other.example.", "other.example.", Proof::Secure);
        assert!(!proves(
            &name("x.wild.other.example."),
            &msg(
                answer("x.wild.other.example.", 3, Proof::Secure),
                vec![foreign]
            )
        ));
        // The RRset itself did not validate.
        assert!(!proves(
            &q,
            &msg(
                answer("anything.wild.ed.example.", 3, Proof::Bogus),
                vec![wrap()]
            )
        ));
    }

    #[test]
    fn plain_cover_and_delegation() {
        let n = NSEC::new(name("m.ed.example."), [RecordType::A]);
        assert!(covers(&name("a.ed.example."), &n, &name("b.ed.example.")));
        assert!(!covers(&name("a.ed.example."), &n, &name("x.ed.example.")));
        let cut = NSEC::new(name("z.ed.example."), [RecordType::NS]);
        assert!(!covers(
            &name("sub.ed.example."),
            &cut,
            &name("x.sub.ed.example.")
        ));
    }
}
