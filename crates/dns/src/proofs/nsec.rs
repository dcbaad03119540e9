//! Aggressive use of validated NSEC records (RFC 8198 section 5): a name that a cached NSEC
//! range proves absent has no IPSECKEY, without a query. Pure functions over the cached records.
//!
//! RFC 8198 section 5.1 and RFC 4035 section 5.4: an NSEC proves NXDOMAIN for a name it covers
//! only together with proof that no wildcard at the closest encloser could answer; an NSEC at the
//! name itself proves NODATA for the types its bitmap lacks. Never below a delegation NSEC (NS
//! without SOA, RFC 6840 section 4.1) or a DNAME (RFC 6672 section 2.3), and a name whose NSEC
//! lists CNAME is an alias, not an absence.

use std::collections::BTreeMap;
use std::time::SystemTime;

use hickory_proto::dnssec::rdata::NSEC;
use hickory_proto::rr::{Name, RecordType};

/// One validated NSEC record, kept until its validated lifetime ends.
#[derive(Debug, Clone)]
pub(crate) struct CachedNsec {
    pub(crate) nsec: NSEC,
    pub(crate) until: SystemTime,
}

/// A zone's cached NSEC records by owner, in canonical order (hickory's `Ord` for `Name` is
/// RFC 4034 section 6.1's).
pub(crate) type Chain = BTreeMap<Name, CachedNsec>;

/// What cached NSEC records prove about `rtype` at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Denied {
    /// The name does not exist (else: it exists, or a wildcard does, without the type).
    pub(crate) nxdomain: bool,
    /// Until when the proof holds: the earliest end of the records used.
    pub(crate) until: SystemTime,
}

/// Whether the NSEC records of one zone prove that `qname` has no `rtype` RRset at `now`.
pub(crate) fn denies(
    chain: &Chain,
    qname: &Name,
    rtype: RecordType,
    now: SystemTime,
) -> Option<Denied> {
    let (owner, cached) = predecessor(chain, qname, now)?;
    if owner == qname {
        return nodata(&cached.nsec, rtype).then_some(Denied {
            nxdomain: false,
            until: cached.until,
        });
    }
    if !covers(owner, &cached.nsec, qname) {
        return None;
    }
    let encloser = closest_encloser(qname, owner, cached.nsec.next_domain_name());
    let wildcard = encloser.prepend_label("*").ok()?;
    let (w_owner, w_cached) = predecessor(chain, &wildcard, now)?;
    let until = cached.until.min(w_cached.until);
    if *w_owner == wildcard {
        // The wildcard exists: it would answer, unless it lacks the type too (RFC 4035 5.4).
        return nodata(&w_cached.nsec, rtype).then_some(Denied {
            nxdomain: false,
            until,
        });
    }
    covers(w_owner, &w_cached.nsec, &wildcard).then_some(Denied {
        nxdomain: true,
        until,
    })
}

/// The cached NSEC with the greatest owner at or before `name`, still valid at `now`.
fn predecessor<'a>(
    chain: &'a Chain,
    name: &Name,
    now: SystemTime,
) -> Option<(&'a Name, &'a CachedNsec)> {
    let (owner, cached) = chain.range(..=name.clone()).next_back()?;
    (cached.until > now).then_some((owner, cached))
}

/// An NSEC at the name proves NODATA for `rtype` when its bitmap has neither the type nor CNAME,
/// and it is not the parent side of a delegation (whose child holds the name's data).
fn nodata(nsec: &NSEC, rtype: RecordType) -> bool {
    let types = nsec.type_set();
    let delegation = types.contains(RecordType::NS) && !types.contains(RecordType::SOA);
    !delegation && !types.contains(rtype) && !types.contains(RecordType::CNAME)
}

/// Whether the NSEC at `owner` proves `name` does not exist (RFC 4034 section 4.1.1, canonical
/// order of RFC 4034 section 6.1), the last NSEC of a zone wrapping to its apex. A delegation
/// NSEC (NS without SOA) proves nothing below the cut (RFC 6840 section 4.1), a DNAME nothing
/// below its owner (RFC 6672 section 2.3).
pub(crate) fn covers(owner: &Name, nsec: &NSEC, name: &Name) -> bool {
    let types = nsec.type_set();
    let cut = types.contains(RecordType::NS) && !types.contains(RecordType::SOA);
    if (cut || types.contains(RecordType::DNAME)) && owner.zone_of(name) {
        return false;
    }
    let next = nsec.next_domain_name();
    if next > owner {
        name > owner && name < next
    } else {
        name > owner && next.zone_of(name)
    }
}

/// The closest encloser of a name an NSEC covers: the longer of its common ancestors with the
/// NSEC's owner and next name (both exist, and nothing between them does).
fn closest_encloser(name: &Name, owner: &Name, next: &Name) -> Name {
    let a = common_ancestor(name, owner);
    let b = common_ancestor(name, next);
    if a.num_labels() >= b.num_labels() {
        a
    } else {
        b
    }
}

fn common_ancestor(a: &Name, b: &Name) -> Name {
    let mut ancestor = a.clone();
    while !ancestor.zone_of(b) {
        ancestor = ancestor.base_name();
    }
    ancestor
}
