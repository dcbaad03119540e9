//! The agent's side of DNS: validated IPSECKEY lookups run as tasks (at most one per name at a time), and
//! their outcomes are reduced to what policy needs: secure keys the IKE engine can use, or why there are none.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oe_dns::{AddressAnswer, Answer, CacheConfig, KeyCache, LookupError, LookupTarget, Validator};
use tokio::sync::mpsc;

use super::Input;

/// What a lookup means for authentication.
#[derive(Debug, Clone)]
pub(crate) enum KeyOutcome {
    /// Keys proven from the trust anchor, usable until the earlier of TTL and RRSIG expiry.
    Secure {
        keys: Vec<oe_ike::crypto::PublicKey>,
        described: Vec<String>,
        until: SystemTime,
    },
    /// Provably unsigned: never used for authentication.
    Insecure,
    /// No IPSECKEY (NXDOMAIN or NODATA); `proven` when the denial itself validated.
    Absent { proven: bool },
    /// Failed validation: never used, never downgraded.
    Bogus(String),
    /// No answer (timeout, SERVFAIL, network).
    Failure(String),
}

impl KeyOutcome {
    /// Classifies a lookup's result.
    pub(crate) fn from_result(result: &Result<Answer, LookupError>) -> Self {
        match result {
            Ok(answer @ Answer::Secure(secure)) => {
                let usable = answer.usable_keys();
                let keys: Vec<_> = usable
                    .iter()
                    .filter_map(|k| crate::keys::dns_key_to_ike(&k.key))
                    .collect();
                let described = usable.iter().map(|k| k.key.kind()).collect();
                if keys.is_empty() {
                    return Self::Absent { proven: true };
                }
                Self::Secure {
                    keys,
                    described,
                    until: secure.usable_until,
                }
            }
            Ok(Answer::Insecure(_)) => Self::Insecure,
            Ok(Answer::Absent(absence)) => Self::Absent {
                proven: absence.denial.is_secure(),
            },
            Err(LookupError::Bogus(why)) => Self::Bogus(why.clone()),
            Err(other) => Self::Failure(other.to_string()),
        }
    }

    /// One line for logs and `explain`.
    pub(crate) fn summary(&self) -> String {
        match self {
            Self::Secure {
                described, until, ..
            } => {
                let secs = until
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .as_secs();
                format!("secure: {} (usable for {}s)", described.join(", "), secs)
            }
            Self::Insecure => {
                "insecure: the zone is provably unsigned; its keys are not used".into()
            }
            Self::Absent { proven: true } => "absent: no IPSECKEY, and DNSSEC proves it".into(),
            Self::Absent { proven: false } => "absent: no IPSECKEY (in an unsigned zone)".into(),
            Self::Bogus(why) => format!("bogus: {why}; never used"),
            Self::Failure(why) => format!("lookup failed: {why}"),
        }
    }

    /// The short outcome word for the status socket.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            Self::Secure { .. } => "secure",
            Self::Insecure => "insecure",
            Self::Absent { .. } => "absent",
            Self::Bogus(_) => "bogus",
            Self::Failure(_) => "failure",
        }
    }
}

/// The validated addresses of a name (for dns-match-id), or why there are none.
pub(crate) type AddrOutcome = Result<Vec<std::net::IpAddr>, String>;

/// Lookups through oe-dns's cache (which coalesces lookups in flight and keeps outcomes for their
/// validated lifetime); every outcome comes back to the core task as `Input::Dns`, and the latest one per
/// name is kept here for synchronous reads.
#[derive(Debug)]
pub(crate) struct DnsService {
    cache: KeyCache<Validator>,
    tx: mpsc::Sender<Input>,
    latest: HashMap<String, KeyOutcome>,
    addresses: HashMap<String, AddrOutcome>,
    pub(crate) lookups: u64,
}

impl DnsService {
    pub(crate) fn new(validator: Validator, tx: mpsc::Sender<Input>, capacity: usize) -> Self {
        let config = CacheConfig {
            max_entries: capacity.max(1),
            ..CacheConfig::default()
        };
        Self {
            cache: KeyCache::new(validator, config),
            tx,
            latest: HashMap::new(),
            addresses: HashMap::new(),
            lookups: 0,
        }
    }

    /// Starts a lookup of `target` (answered from the cache when it can); the outcome arrives as
    /// `Input::Dns`. Until then [`Self::cached`] says nothing for this name.
    pub(crate) fn request(&mut self, target: &LookupTarget) {
        let name = key(target);
        self.latest.remove(&name);
        self.lookups += 1;
        let (cache, tx, target) = (self.cache.clone(), self.tx.clone(), target.clone());
        tokio::spawn(async move {
            let outcome = cache.get(&target).await;
            let _ = tx
                .send(Input::Dns {
                    name,
                    result: (*outcome).clone(),
                })
                .await;
        });
    }

    /// The shared cache (the DNS trigger's stub uses it too, so both paths see the same outcomes).
    pub(crate) fn cache(&self) -> KeyCache<Validator> {
        self.cache.clone()
    }

    /// Records a finished lookup; returns its outcome.
    pub(crate) fn complete(
        &mut self,
        name: &str,
        result: &Result<Answer, LookupError>,
    ) -> KeyOutcome {
        let outcome = KeyOutcome::from_result(result);
        self.latest.insert(name.to_owned(), outcome.clone());
        outcome
    }

    /// The latest outcome for a query name, if it is still valid.
    pub(crate) fn cached(&self, name: &str) -> Option<KeyOutcome> {
        let outcome = self.latest.get(name)?;
        match outcome {
            KeyOutcome::Secure { until, .. } if *until <= SystemTime::now() => None,
            other => Some(other.clone()),
        }
    }

    /// Starts a validated A/AAAA lookup of `name` for dns-match-id (an FQDN identity is accepted only when
    /// the name's SECURE addresses include the peer's); the outcome arrives as `Input::Addresses`.
    pub(crate) fn request_addresses(&mut self, name: &str) {
        let query = address_key(name);
        self.addresses.remove(&query);
        let Ok(LookupTarget::Forward(owner)) = name.parse::<LookupTarget>() else {
            self.addresses
                .insert(query, Err(format!("{name:?} is not a domain name")));
            return;
        };
        self.lookups += 1;
        let (cache, tx) = (self.cache.clone(), self.tx.clone());
        tokio::spawn(async move {
            let outcome = cache.get_addresses(&owner).await;
            let _ = tx
                .send(Input::Addresses {
                    query,
                    outcome: address_outcome(&outcome),
                })
                .await;
        });
    }

    /// Records a finished address lookup.
    pub(crate) fn complete_addresses(&mut self, query: &str, outcome: AddrOutcome) {
        self.addresses.insert(query.to_owned(), outcome);
    }

    /// The validated addresses of a name, once known.
    pub(crate) fn cached_addresses(&self, query: &str) -> Option<AddrOutcome> {
        self.addresses.get(query).cloned()
    }

    /// The cache, for the status socket: (name, outcome, seconds left).
    pub(crate) fn entries(&self) -> Vec<(String, KeyOutcome, u64)> {
        let now = SystemTime::now();
        self.cache
            .snapshot()
            .entries
            .into_iter()
            .filter_map(|e| {
                let outcome = self.latest.get(&e.query)?.clone();
                let left = (UNIX_EPOCH + Duration::from_secs(e.expires))
                    .duration_since(now)
                    .ok()?
                    .as_secs();
                Some((e.query, outcome, left))
            })
            .collect()
    }
}

/// Only SECURE addresses bind a name to a peer.
fn address_outcome(outcome: &Result<AddressAnswer, LookupError>) -> AddrOutcome {
    match outcome {
        Ok(AddressAnswer::Secure { addrs, .. }) => Ok(addrs.clone()),
        Ok(AddressAnswer::Insecure { .. }) => Err("its addresses are provably unsigned".into()),
        Ok(AddressAnswer::Absent { .. }) => Err("it has no addresses".into()),
        Err(LookupError::Bogus(why)) => Err(format!("its addresses are bogus: {why}")),
        Err(e) => Err(format!("address lookup failed: {e}")),
        #[allow(unreachable_patterns)]
        Ok(_) => Err("unexpected address answer".into()),
    }
}

/// The cache key of a lookup: its query name.
pub(crate) fn key(target: &LookupTarget) -> String {
    target.query_name().to_string()
}

/// The key under which the addresses of `name` are kept.
pub(crate) fn address_key(name: &str) -> String {
    format!("{}/addresses", name.trim_end_matches('.'))
}
