//! Outcomes of a validated IPSECKEY lookup, as types.
//!
//! A lookup returns `Result<Answer, LookupError>`: [`Answer`] holds the outcomes the policy may
//! act on (secure keys, provably unsigned, provably absent); [`LookupError`] holds bogus answers
//! and failures, so a bogus answer cannot be mistaken for an insecure one by accident.

use std::time::{Duration, SystemTime};

use hickory_proto::rr::Name;
use thiserror::Error;

use crate::ipseckey::{IpsecKey, WireError};

/// A lookup that produced a DNSSEC verdict other than bogus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The IPSECKEY RRset validated from the trust anchor: its keys may authenticate the peer.
    Secure(SecureKeys),
    /// The name is in a provably unsigned zone (RFC 4035 section 4.3): its IPSECKEY records, if
    /// any, are never usable for authentication. `records` is empty when the verdict comes from a
    /// cached proof that the name is below an insecure delegation ([`crate::KeyCache::proven`]).
    Insecure(Unsigned),
    /// No IPSECKEY record at the name (NXDOMAIN or NODATA), with how that is proven.
    Absent(Absence),
}

/// Keys from a validated RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureKeys {
    /// The owner of the RRset (after any CNAME).
    pub owner: Name,
    /// Each record of the RRset.
    pub records: Vec<KeyRecord>,
    /// The signature that proved the RRset.
    pub signature: Signature,
    /// The validated TTL (bounded by the RRSIG's original TTL and expiration).
    pub ttl: u32,
    /// The keys may be used until this instant: min(now + TTL, RRSIG expiration).
    pub usable_until: SystemTime,
}

/// One IPSECKEY record as received: parsed, or the reason its RDATA is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The record's data.
    pub data: Result<IpsecKey, WireError>,
    /// TTL as received (validated TTL for secure records).
    pub ttl: u32,
}

/// The RRSIG that validated an RRset (RFC 4034 section 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The zone that signed it.
    pub signer: Name,
    /// Key tag of the signing DNSKEY.
    pub key_tag: u16,
    /// DNSSEC algorithm mnemonic (`RSASHA256`, `ECDSAP256SHA256`, `ED25519`, ...).
    pub algorithm: String,
    /// Signature inception.
    pub inception: SystemTime,
    /// Signature expiration.
    pub expiration: SystemTime,
}

/// IPSECKEY records from a provably unsigned zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsigned {
    /// The owner of the records.
    pub owner: Name,
    /// The records, not usable for authentication (none when not looked up: see
    /// [`Answer::Insecure`]).
    pub records: Vec<KeyRecord>,
    /// Until when this verdict may be cached.
    pub valid_until: SystemTime,
}

/// No IPSECKEY at the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    /// The name that has no IPSECKEY (after any CNAME).
    pub owner: Name,
    /// NXDOMAIN (the name does not exist) rather than NODATA (no IPSECKEY at it).
    pub nxdomain: bool,
    /// How the absence is proven.
    pub denial: Denial,
    /// Until when this verdict may be cached (negative TTL, RFC 2308 section 5).
    pub valid_until: SystemTime,
}

/// The proof behind an absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Validated NSEC records (RFC 4035 section 5.4).
    Nsec,
    /// Validated NSEC3 records (RFC 5155 section 8).
    Nsec3,
    /// The zone is provably unsigned: the absence is not authenticated.
    Unsigned,
}

impl Denial {
    /// Whether the absence itself is authenticated.
    pub fn is_secure(self) -> bool {
        !matches!(self, Self::Unsigned)
    }
}

/// A lookup that gave no usable verdict.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The answer failed validation: forged, tampered, expired, or a broken chain of trust.
    /// Never treated as insecure.
    #[error("bogus: {0}")]
    Bogus(String),
    /// No verdict could be reached: timeout, server failure, network or configuration error.
    #[error("lookup failed: {0}")]
    Failure(Failure),
}

/// Why a lookup failed (we or the network failed, not the zone's signatures).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Failure {
    /// The lookup did not finish within its deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The upstream answered with an error code (SERVFAIL, REFUSED, ...).
    #[error("upstream answered {0}")]
    Response(String),
    /// No answer could be had from the upstream servers.
    #[error("network: {0}")]
    Network(String),
    /// The lookup could not be made as configured (bad name, no servers, TLS setup).
    #[error("configuration: {0}")]
    Config(String),
    /// Too many lookups are in flight; the request was shed.
    #[error("too many lookups in flight")]
    Overloaded,
}

impl Answer {
    /// Until when this answer may be cached.
    pub fn valid_until(&self) -> SystemTime {
        match self {
            Self::Secure(s) => s.usable_until,
            Self::Insecure(u) => u.valid_until,
            Self::Absent(a) => a.valid_until,
        }
    }

    /// The keys that may authenticate the peer: parsed records of a secure answer, lowest
    /// precedence first.
    pub fn usable_keys(&self) -> Vec<&IpsecKey> {
        let Self::Secure(secure) = self else {
            return Vec::new();
        };
        let mut keys: Vec<&IpsecKey> = secure
            .records
            .iter()
            .filter_map(|r| r.data.as_ref().ok())
            .filter(|k| k.key.usability() == crate::ipseckey::Usability::Usable)
            .collect();
        keys.sort_by_key(|k| k.precedence);
        keys
    }
}
