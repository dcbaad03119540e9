//! Proofs of insecurity at a zone cut (RFC 4035 sections 4.3 and 5.2): the validated answer to
//! `zone DS` shows that the signed parent delegates `zone` without a DS record. Every name at or
//! below such a cut is insecure (no chain of trust reaches it, unless a trust anchor sits below
//! the cut), so one proof answers for all of them without a lookup each.
//!
//! The denial must be the parent's: an NSEC at the cut (or the NSEC3 matching its hash) that
//! lists NS and neither DS nor SOA (RFC 6840 section 4.4). An NSEC3 opt-out span proves only
//! that an insecure delegation *may* exist there, so it is not used.

use std::time::{Duration, SystemTime};

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3};
use hickory_proto::dnssec::Proof;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record, RecordType, RecordTypeSet};

/// What a validated DS response says about the delegation of a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The signed parent proves there is no DS: the zone is insecure until then.
    Insecure(SystemTime),
    /// The parent zone (named) is itself provably unsigned: the cut is higher up.
    ParentInsecure(Name),
    /// Nothing provable here (a DS exists, bogus, opt-out, no denial).
    Unproven,
}

/// The verdict on `msg`, hickory's validated answer to `zone DS` at `now`.
pub(crate) fn cut(zone: &Name, msg: &Message, now: SystemTime) -> Cut {
    if msg
        .answers
        .iter()
        .any(|r| r.record_type() == RecordType::DS)
    {
        return Cut::Unproven;
    }
    let secure = |r: &&Record| r.proof == Proof::Secure;
    let denial = msg
        .authorities
        .iter()
        .filter(secure)
        .find_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(nsec)) if r.name == *zone => {
                Some((r.ttl, nsec.type_set()))
            }
            RData::DNSSEC(DNSSECRData::NSEC3(nsec3)) if matches_hash(&r.name, nsec3, zone) => {
                Some((r.ttl, nsec3.type_set()))
            }
            _ => None,
        });
    if let Some((ttl, types)) = denial {
        if !insecure_delegation(types) {
            return Cut::Unproven;
        }
        let ttl = ttl.min(soa_negative_ttl(&msg.authorities).unwrap_or(ttl));
        return Cut::Insecure(now + Duration::from_secs(ttl.into()));
    }
    // An unsigned parent: its SOA came back provably insecure.
    msg.authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA && r.proof == Proof::Insecure)
        .filter(|soa| soa.name.zone_of(zone) && soa.name != *zone)
        .map_or(Cut::Unproven, |soa| Cut::ParentInsecure(soa.name.clone()))
}

/// RFC 6840 section 4.4: NS present, DS and SOA absent.
fn insecure_delegation(types: &RecordTypeSet) -> bool {
    types.contains(RecordType::NS)
        && !types.contains(RecordType::DS)
        && !types.contains(RecordType::SOA)
}

/// Whether the NSEC3 at `owner` is the one for `name` (RFC 5155 section 5: the owner's first
/// label is the base32hex hash of the name, in the zone the NSEC3 belongs to).
fn matches_hash(owner: &Name, nsec3: &NSEC3, name: &Name) -> bool {
    let Some(label) = owner.iter().next() else {
        return false;
    };
    if !owner.base_name().zone_of(name) {
        return false;
    }
    let Ok(hash) = nsec3
        .hash_algorithm()
        .hash(nsec3.salt(), name, nsec3.iterations())
    else {
        return false;
    };
    let encoded = data_encoding::BASE32_DNSSEC.encode(hash.as_ref());
    label.eq_ignore_ascii_case(encoded.as_bytes())
}

/// min(SOA TTL, SOA MINIMUM) of a negative answer (RFC 2308 section 5).
fn soa_negative_ttl(authorities: &[Record]) -> Option<u32> {
    authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}
