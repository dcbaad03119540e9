//! One model of what a validated lookup means for policy, shared by the DNS trigger's stub, the
//! agent's policy core and `oe explain`, so that they can never disagree about a name.
//!
//! A lookup returns `Result<Answer, LookupError>` (or `Result<AddressAnswer, LookupError>`);
//! [`KeyVerdict::of`] and [`AddressVerdict::of`] reduce it to what the policy acts on. The rules:
//! - only [`KeyVerdict::Secure`] keys may authenticate a peer (RFC 4025 keys proven from the
//!   trust anchor, RFC 4035 section 5);
//! - a secure RRset without a key the agent can use is [`KeyVerdict::NoUsableKey`], not an
//!   absence and not a key;
//! - bogus is never downgraded: it is its own verdict, never "no key";
//! - [`KeyVerdict::proves_no_key`] is true only for verdicts DNSSEC itself reached (absent,
//!   insecure, no usable key), never for bogus answers or failures.

use std::net::IpAddr;
use std::time::SystemTime;

use hickory_proto::rr::Name;

use crate::address::AddressAnswer;
use crate::answer::{Answer, LookupError};
use crate::ipseckey::IpsecKey;

/// What a validated IPSECKEY lookup means for authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// Keys proven from the trust anchor that the agent can use, lowest precedence first.
    Secure {
        /// The owner of the RRset (after any CNAME).
        owner: Name,
        /// The usable keys (never empty).
        keys: Vec<IpsecKey>,
        /// min(now + TTL, RRSIG expiration).
        until: SystemTime,
    },
    /// A secure IPSECKEY RRset with no key the agent can use (unsupported algorithm, malformed
    /// RDATA).
    NoUsableKey {
        /// The owner of the RRset.
        owner: Name,
        /// Until when the verdict holds.
        until: SystemTime,
    },
    /// No IPSECKEY at the name (NXDOMAIN or NODATA).
    Absent {
        /// The absence is authenticated (NSEC/NSEC3); otherwise the zone is provably unsigned.
        proven: bool,
        /// Until when the verdict holds (negative TTL).
        until: SystemTime,
    },
    /// IPSECKEY records in a provably unsigned zone: never used.
    Insecure {
        /// Until when the verdict holds.
        until: SystemTime,
    },
    /// The answer failed validation: never used, never taken for "no key".
    Bogus {
        /// Why validation failed.
        reason: String,
    },
    /// No verdict (timeout, SERVFAIL, network, overload).
    Failed {
        /// Why.
        reason: String,
    },
}

impl KeyVerdict {
    /// Reduces a lookup's result to its verdict.
    pub fn of(result: &Result<Answer, LookupError>) -> Self {
        match result {
            Ok(answer @ Answer::Secure(secure)) => {
                let keys: Vec<IpsecKey> = answer.usable_keys().into_iter().cloned().collect();
                let (owner, until) = (secure.owner.clone(), secure.usable_until);
                if keys.is_empty() {
                    Self::NoUsableKey { owner, until }
                } else {
                    Self::Secure { owner, keys, until }
                }
            }
            Ok(Answer::Insecure(unsigned)) => Self::Insecure {
                until: unsigned.valid_until,
            },
            Ok(Answer::Absent(absence)) => Self::Absent {
                proven: absence.denial.is_secure(),
                until: absence.valid_until,
            },
            Err(LookupError::Bogus(reason)) => Self::Bogus {
                reason: reason.clone(),
            },
            Err(other) => Self::Failed {
                reason: other.to_string(),
            },
        }
    }

    /// The secure keys, if any.
    pub fn keys(&self) -> Option<&[IpsecKey]> {
        match self {
            Self::Secure { keys, .. } => Some(keys),
            _ => None,
        }
    }

    /// Whether DNSSEC proved that the name has no key the agent could use: absent, provably
    /// unsigned, or a secure RRset without a usable key. Never true for bogus or failed lookups.
    pub fn proves_no_key(&self) -> bool {
        matches!(
            self,
            Self::Absent { .. } | Self::Insecure { .. } | Self::NoUsableKey { .. }
        )
    }

    /// Whether the verdict still holds at `now` (bogus and failed verdicts carry no lifetime: the
    /// cache that produced them bounds them).
    pub fn holds_at(&self, now: SystemTime) -> bool {
        match self {
            Self::Secure { until, .. }
            | Self::NoUsableKey { until, .. }
            | Self::Absent { until, .. }
            | Self::Insecure { until } => *until > now,
            Self::Bogus { .. } | Self::Failed { .. } => true,
        }
    }

    /// The short word for the status socket and counters.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Secure { .. } => "secure",
            Self::NoUsableKey { .. } => "no-usable-key",
            Self::Absent { .. } => "absent",
            Self::Insecure { .. } => "insecure",
            Self::Bogus { .. } => "bogus",
            Self::Failed { .. } => "failure",
        }
    }

    /// One line for logs and `explain`.
    pub fn describe(&self, now: SystemTime) -> String {
        let left = |until: &SystemTime| until.duration_since(now).unwrap_or_default().as_secs();
        match self {
            Self::Secure { keys, until, .. } => {
                let kinds: Vec<String> = keys.iter().map(|k| k.key.kind()).collect();
                format!("secure: {} (usable for {}s)", kinds.join(", "), left(until))
            }
            Self::NoUsableKey { .. } => {
                "no usable key: the secure IPSECKEY RRset has no key oe can use".into()
            }
            Self::Absent { proven: true, .. } => "absent: no IPSECKEY, and DNSSEC proves it".into(),
            Self::Absent { proven: false, .. } => {
                "absent: no IPSECKEY (the zone is provably unsigned)".into()
            }
            Self::Insecure { .. } => {
                "insecure: the zone is provably unsigned; its keys are not used".into()
            }
            Self::Bogus { reason } => format!("bogus: {reason}; never used"),
            Self::Failed { reason } => format!("lookup failed: {reason}"),
        }
    }
}

/// What a validated A+AAAA lookup means for binding a name to a peer's address (dns-match-id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressVerdict {
    /// Both RRsets proven: these are the name's addresses.
    Secure {
        /// The owner (after any CNAME).
        owner: Name,
        /// The proven addresses.
        addrs: Vec<IpAddr>,
        /// Until when they may be used.
        until: SystemTime,
    },
    /// Some part is provably unsigned: never binds.
    Insecure {
        /// Until when the verdict holds.
        until: SystemTime,
    },
    /// The name has no addresses.
    Absent {
        /// Until when the verdict holds.
        until: SystemTime,
    },
    /// Validation failed: never binds, never downgraded.
    Bogus {
        /// Why.
        reason: String,
    },
    /// No verdict.
    Failed {
        /// Why.
        reason: String,
    },
}

impl AddressVerdict {
    /// Reduces an address lookup's result to its verdict.
    pub fn of(result: &Result<AddressAnswer, LookupError>) -> Self {
        match result {
            Ok(AddressAnswer::Secure {
                owner,
                addrs,
                usable_until,
            }) => Self::Secure {
                owner: owner.clone(),
                addrs: addrs.clone(),
                until: *usable_until,
            },
            Ok(AddressAnswer::Insecure { valid_until, .. }) => Self::Insecure {
                until: *valid_until,
            },
            Ok(AddressAnswer::Absent { valid_until, .. }) => Self::Absent {
                until: *valid_until,
            },
            Err(LookupError::Bogus(reason)) => Self::Bogus {
                reason: reason.clone(),
            },
            Err(other) => Self::Failed {
                reason: other.to_string(),
            },
        }
    }

    /// Whether DNSSEC proves `addr` is one of the name's addresses.
    pub fn proves(&self, addr: IpAddr) -> bool {
        let addr = crate::address::canonical(addr);
        matches!(self, Self::Secure { addrs, .. } if addrs.contains(&addr))
    }

    /// The proven addresses (empty unless secure).
    pub fn secure_addrs(&self) -> &[IpAddr] {
        match self {
            Self::Secure { addrs, .. } => addrs,
            _ => &[],
        }
    }

    /// Whether the verdict still holds at `now`.
    pub fn holds_at(&self, now: SystemTime) -> bool {
        match self {
            Self::Secure { until, .. } | Self::Insecure { until } | Self::Absent { until } => {
                *until > now
            }
            Self::Bogus { .. } | Self::Failed { .. } => true,
        }
    }

    /// The short word for the status socket.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Secure { .. } => "secure",
            Self::Insecure { .. } => "insecure",
            Self::Absent { .. } => "absent",
            Self::Bogus { .. } => "bogus",
            Self::Failed { .. } => "failure",
        }
    }

    /// One line for logs and `explain`: why the addresses do (not) bind the name.
    pub fn describe(&self) -> String {
        match self {
            Self::Secure { addrs, .. } => format!("secure addresses {addrs:?}"),
            Self::Insecure { .. } => "its addresses are provably unsigned".into(),
            Self::Absent { .. } => "it has no addresses".into(),
            Self::Bogus { reason } => format!("its addresses are bogus: {reason}"),
            Self::Failed { reason } => format!("address lookup failed: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests;
