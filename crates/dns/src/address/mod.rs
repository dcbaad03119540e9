//! Validated addresses of a name (A and AAAA), for binding a name to the addresses a peer uses:
//! Libreswan's `dns-match-id` (a peer presenting an FQDN identity is accepted only at an address
//! the name's validated answer lists) and the DNS trigger (a key is bound to the addresses of the
//! validated answer).
//!
//! The two RRsets are validated like IPSECKEY ([`crate::classify`]), then combined: the set is
//! `Secure` only when both types are proven (records validated, or their absence proven by
//! NSEC/NSEC3); an unsigned part makes the whole `Insecure`; bogus anywhere is an error; a
//! failure of either query is a failure (a partial set is never reported as the set).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::{Name, RData};

use crate::answer::{Denial, LookupError};
use crate::classify::Verdict;

/// The validated addresses of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressAnswer {
    /// Both the A and the AAAA RRset are proven (present and validated, or proven absent).
    Secure {
        /// The owner of the addresses (after any CNAME).
        owner: Name,
        /// IPv4 addresses, then IPv6 addresses, as served.
        addrs: Vec<IpAddr>,
        /// min(now + TTL, RRSIG expirations), over both RRsets and their denials.
        usable_until: SystemTime,
    },
    /// Addresses exist but some part of the answer is provably unsigned: never usable to bind.
    Insecure {
        /// The owner of the addresses.
        owner: Name,
        /// The addresses, unauthenticated.
        addrs: Vec<IpAddr>,
        /// Until when this verdict may be cached.
        valid_until: SystemTime,
    },
    /// Neither A nor AAAA exists at the name.
    Absent {
        /// The name without addresses (after any CNAME).
        owner: Name,
        /// The name does not exist at all (NXDOMAIN for both queries).
        nxdomain: bool,
        /// The weaker of the two denials.
        proof: Denial,
        /// Until when this verdict may be cached.
        valid_until: SystemTime,
    },
}

impl AddressAnswer {
    /// The addresses that are proven to belong to the name: those of a `Secure` answer only.
    pub fn secure_addrs(&self) -> &[IpAddr] {
        match self {
            Self::Secure { addrs, .. } => addrs,
            Self::Insecure { .. } | Self::Absent { .. } => &[],
        }
    }

    /// Whether DNSSEC proves that `addr` is an address of the name (dns-match-id).
    pub fn proves(&self, addr: IpAddr) -> bool {
        self.secure_addrs().contains(&canonical(addr))
    }

    /// Until when this answer may be cached.
    pub fn valid_until(&self) -> SystemTime {
        match self {
            Self::Secure { usable_until, .. } => *usable_until,
            Self::Insecure { valid_until, .. } | Self::Absent { valid_until, .. } => *valid_until,
        }
    }

    /// `secure`, `insecure` or `absent`.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Secure { .. } => "secure",
            Self::Insecure { .. } => "insecure",
            Self::Absent { .. } => "absent",
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) compares as the IPv4 address it carries.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// One RRset's part of the combined answer.
#[derive(Debug)]
struct Part {
    owner: Name,
    addrs: Vec<IpAddr>,
    secure: bool,
    until: SystemTime,
    absence: Option<(bool, Denial)>,
}

fn part(verdict: Verdict<'_>, now: SystemTime) -> Part {
    match verdict {
        Verdict::Found(found) => {
            let addrs = found
                .records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            let (secure, until) = match found.secure {
                Some((_, usable_until)) => (true, usable_until),
                None => (false, now + Duration::from_secs(found.ttl.into())),
            };
            Part {
                owner: found.owner,
                addrs,
                secure,
                until,
                absence: None,
            }
        }
        Verdict::Absent(a) => Part {
            owner: a.owner,
            addrs: Vec::new(),
            secure: a.denial.is_secure(),
            until: a.valid_until,
            absence: Some((a.nxdomain, a.denial)),
        },
    }
}

/// Combines the verdicts on the A and the AAAA RRset of one name.
pub(crate) fn combine(
    a: Result<Verdict<'_>, LookupError>,
    aaaa: Result<Verdict<'_>, LookupError>,
    now: SystemTime,
) -> Result<AddressAnswer, LookupError> {
    let (a, aaaa) = match (a, aaaa) {
        (Err(e @ LookupError::Bogus(_)), _) | (_, Err(e @ LookupError::Bogus(_))) => return Err(e),
        (Err(e), _) | (_, Err(e)) => return Err(e),
        (Ok(a), Ok(aaaa)) => (part(a, now), part(aaaa, now)),
    };
    let until = a.until.min(aaaa.until);
    let owner = a.owner.clone();
    if let (Some((nx_a, d_a)), Some((nx_aaaa, d_aaaa))) = (a.absence, aaaa.absence) {
        let proof = if d_a.is_secure() { d_aaaa } else { d_a };
        return Ok(AddressAnswer::Absent {
            owner,
            nxdomain: nx_a && nx_aaaa,
            proof,
            valid_until: until,
        });
    }
    let secure = a.secure && aaaa.secure;
    let addrs: Vec<IpAddr> = a.addrs.into_iter().chain(aaaa.addrs).collect();
    Ok(if secure {
        AddressAnswer::Secure {
            owner,
            addrs,
            usable_until: until,
        }
    } else {
        AddressAnswer::Insecure {
            owner,
            addrs,
            valid_until: until,
        }
    })
}

#[cfg(test)]
mod tests;
