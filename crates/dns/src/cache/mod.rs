//! Cache of lookup outcomes with in-flight coalescing: many ACQUIREs for one host cause one
//! lookup. IPSECKEY outcomes and validated addresses live in two tables with the same rules.
//! Positive and negative outcomes live for their validated lifetime (capped), bogus ones for a
//! minute, failures for seconds (RFC 9520 wants failures cached, briefly). A verdict still in
//! use in the last tenth of its lifetime is looked up again in the background (the caller is
//! served the cached one), so the names a host talks to stay cached; a refresh that fails keeps
//! the verdict until it expires. Bounded in entries and
//! in concurrent lookups, with a share of the concurrent lookups reserved for the host's own
//! ([`Priority`]: lookups a peer's identity caused cannot exhaust it); a snapshot serves the
//! status socket.

mod admission;
mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::Name;
use serde::Serialize;

use crate::address::AddressAnswer;
use crate::answer::{Answer, Failure, LookupError};
use crate::target::LookupTarget;
use crate::validator::Validator;
pub use admission::Priority;
use store::{describe_error, error_expiry, Cacheable, Request, Table};

/// An IPSECKEY outcome shared between the cache and every caller that asked for it.
pub type Outcome = Arc<Result<Answer, LookupError>>;

/// An address outcome, shared likewise.
pub type AddressOutcome = Arc<Result<AddressAnswer, LookupError>>;

/// Anything that performs lookups (the [`Validator`]; a stand-in in tests).
pub trait Lookup: Send + Sync + 'static {
    /// Looks up one target's IPSECKEY RRset.
    fn lookup(
        &self,
        target: &LookupTarget,
    ) -> impl Future<Output = Result<Answer, LookupError>> + Send;

    /// Looks up a name's validated addresses (A and AAAA).
    fn lookup_addresses(
        &self,
        name: &Name,
    ) -> impl Future<Output = Result<AddressAnswer, LookupError>> + Send;

    /// The IPSECKEY verdict on `name` that proofs cached from earlier answers give at `now`,
    /// without I/O (see [`Validator::covering`]); `None` by default.
    fn covering(&self, name: &Name, now: SystemTime) -> Option<Answer> {
        let _ = (name, now);
        None
    }
}

impl Lookup for Validator {
    fn lookup(
        &self,
        target: &LookupTarget,
    ) -> impl Future<Output = Result<Answer, LookupError>> + Send {
        Self::lookup(self, target)
    }

    fn lookup_addresses(
        &self,
        name: &Name,
    ) -> impl Future<Output = Result<AddressAnswer, LookupError>> + Send {
        Self::lookup_addresses(self, name)
    }

    fn covering(&self, name: &Name, now: SystemTime) -> Option<Answer> {
        Self::covering(self, name, now)
    }
}

/// Cache bounds and lifetimes. The in-flight limits apply to each table (keys, addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries kept at most.
    pub max_entries: usize,
    /// Lookups running at once at most; more are shed as [`Failure::Overloaded`]. Default 256.
    pub max_in_flight: usize,
    /// Of those, how many only the host's own lookups ([`Priority::Host`]) may use: lookups on a
    /// peer's behalf are shed beyond `max_in_flight - host_reserved`. Default 64.
    pub host_reserved: usize,
    /// Lookups one peer source address ([`Priority::Peer`]) may have running at once. Default 8.
    pub max_per_peer: usize,
    /// Cap on how long a secure or insecure answer is kept.
    pub max_positive: Duration,
    /// Cap on how long an absence is kept.
    pub max_negative: Duration,
    /// How long a bogus outcome is kept.
    pub bogus: Duration,
    /// How long a failure is kept.
    pub failure: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 4096,
            max_in_flight: 256,
            host_reserved: 64,
            max_per_peer: 8,
            max_positive: Duration::from_secs(86_400),
            max_negative: Duration::from_secs(900),
            bogus: Duration::from_secs(60),
            failure: Duration::from_secs(5),
        }
    }
}

pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The cache in front of a [`Lookup`]. Cheap to clone; clones share the cache.
pub struct KeyCache<L> {
    lookup: Arc<L>,
    keys: Table<Result<Answer, LookupError>>,
    addresses: Table<Result<AddressAnswer, LookupError>>,
    config: CacheConfig,
    clock: Clock,
}

impl<L> Clone for KeyCache<L> {
    fn clone(&self) -> Self {
        Self {
            lookup: self.lookup.clone(),
            keys: self.keys.clone(),
            addresses: self.addresses.clone(),
            config: self.config,
            clock: self.clock.clone(),
        }
    }
}

impl<L> std::fmt::Debug for KeyCache<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Answered from the cache.
    pub hits: u64,
    /// Started a lookup.
    pub misses: u64,
    /// Joined a lookup already in flight.
    pub coalesced: u64,
    /// Entries dropped to stay within bounds.
    pub evictions: u64,
    /// Requests shed because too many lookups were in flight.
    pub shed: u64,
    /// Of those, requests on a peer's behalf shed by the peer share or the per-peer limit.
    pub shed_peers: u64,
    /// Answered by a covering proof (an insecure delegation above the name, or cached NSEC
    /// records), without a lookup.
    pub covered: u64,
    /// Entries in use looked up again in the background before they expired.
    pub refreshes: u64,
}

/// The cache as the status socket shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheSnapshot {
    /// Cached outcomes, soonest to expire first.
    pub entries: Vec<EntrySnapshot>,
    /// Targets being looked up now.
    pub in_flight: Vec<String>,
    /// Counters since start.
    pub counters: Counters,
    /// Entry bound.
    pub capacity: usize,
}

/// One cached outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntrySnapshot {
    /// What was looked up (a name or an address).
    pub target: String,
    /// The name queried.
    pub query: String,
    /// `secure`, `insecure`, `absent`, `bogus` or `failure`.
    pub state: &'static str,
    /// Keys usable for authentication (IPSECKEY), or addresses proven (address entries).
    pub usable_keys: usize,
    /// Why, for bogus and failed outcomes; the denial for absences; the addresses of address
    /// entries.
    pub detail: String,
    /// When it was looked up (Unix seconds).
    pub fetched: u64,
    /// When it expires (Unix seconds).
    pub expires: u64,
    /// Times it was served from the cache.
    pub hits: u64,
}

impl<L: Lookup> KeyCache<L> {
    /// A cache in front of `lookup`, on the system clock.
    pub fn new(lookup: L, config: CacheConfig) -> Self {
        Self::with_clock(lookup, config, Arc::new(SystemTime::now))
    }

    /// A cache with an injected clock (tests).
    pub fn with_clock(lookup: L, config: CacheConfig, clock: Clock) -> Self {
        Self {
            lookup: Arc::new(lookup),
            keys: Table::default(),
            addresses: Table::default(),
            config,
            clock,
        }
    }

    /// The IPSECKEY outcome for `target`: cached, joined to a lookup in flight, or looked up now
    /// (in a task of its own, so a caller that gives up does not cancel it for the others), on
    /// the host's behalf.
    pub async fn get(&self, target: &LookupTarget) -> Outcome {
        self.get_as(target, Priority::Host).await
    }

    /// Like [`Self::get`], on behalf of `priority`: a lookup a peer caused is shed as
    /// [`Failure::Overloaded`] when the peers' share or this peer's limit is used up.
    pub async fn get_as(&self, target: &LookupTarget, priority: Priority) -> Outcome {
        let lookup = self.lookup.clone();
        let owned = target.clone();
        let fetch = async move { lookup.lookup(&owned).await };
        let key = target.query_name();
        let cover = |now| self.lookup.covering(&target.query_name(), now).map(Ok);
        let (config, clock) = (&self.config, &self.clock);
        let request = Request {
            key,
            label: || target.to_string(),
            priority,
        };
        self.keys.get(request, config, clock, cover, fetch).await
    }

    /// The validated addresses of `name` (A and AAAA), cached and coalesced like [`Self::get`]
    /// in a table of their own, on the host's behalf.
    pub async fn get_addresses(&self, name: &Name) -> AddressOutcome {
        self.get_addresses_as(name, Priority::Host).await
    }

    /// Like [`Self::get_addresses`], on behalf of `priority`.
    pub async fn get_addresses_as(&self, name: &Name, priority: Priority) -> AddressOutcome {
        let lookup = self.lookup.clone();
        let key = name.to_lowercase();
        let owned = key.clone();
        let fetch = async move { lookup.lookup_addresses(&owned).await };
        let (config, clock) = (&self.config, &self.clock);
        let request = Request {
            key,
            label: || name.to_string(),
            priority,
        };
        self.addresses
            .get(request, config, clock, |_| None, fetch)
            .await
    }

    /// The IPSECKEY outcome for `target` if it is known without a lookup, synchronously and
    /// without I/O: the cached outcome for the name, or the verdict of a covering proof cached
    /// from earlier answers (the name is below a provably insecure delegation: `Insecure` without
    /// records; or cached NSEC records prove it has no IPSECKEY: `Absent`, RFC 8198). Such a
    /// verdict lasts no longer than the proof behind it (its `valid_until`). `None`: a lookup is
    /// needed ([`Self::get`] does it; it asks the covering proofs first too).
    pub fn proven(&self, target: &LookupTarget) -> Option<Outcome> {
        let now = (self.clock)();
        let qname = target.query_name();
        if let Some(outcome) = self.keys.peek(&qname, now) {
            return Some(outcome);
        }
        let answer = self.lookup.covering(&qname, now)?;
        self.keys.count_covered();
        Some(Arc::new(Ok(answer)))
    }

    /// Forgets the cached outcome for `target` (the next `get` looks it up again).
    pub fn invalidate(&self, target: &LookupTarget) {
        self.keys.invalidate(&target.query_name());
    }

    /// Forgets the cached addresses of `name`.
    pub fn invalidate_addresses(&self, name: &Name) {
        self.addresses.invalidate(&name.to_lowercase());
    }

    /// The IPSECKEY table's contents and counters.
    pub fn snapshot(&self) -> CacheSnapshot {
        self.keys.snapshot(self.config.max_entries)
    }

    /// The address table's contents and counters (`usable_keys` counts proven addresses,
    /// `detail` lists them).
    pub fn address_snapshot(&self) -> CacheSnapshot {
        self.addresses.snapshot(self.config.max_entries)
    }
}

impl Cacheable for Result<Answer, LookupError> {
    fn expiry(&self, c: &CacheConfig, now: SystemTime) -> SystemTime {
        match self {
            Ok(answer @ (Answer::Secure(_) | Answer::Insecure(_))) => {
                answer.valid_until().min(now + c.max_positive)
            }
            Ok(answer @ Answer::Absent(_)) => answer.valid_until().min(now + c.max_negative),
            Err(e) => error_expiry(e, c, now),
        }
    }

    fn describe(&self) -> (&'static str, usize, String) {
        match self {
            Ok(a @ Answer::Secure(_)) => ("secure", a.usable_keys().len(), String::new()),
            Ok(Answer::Insecure(_)) => ("insecure", 0, "zone is unsigned".into()),
            Ok(Answer::Absent(a)) => ("absent", 0, format!("{:?}", a.denial)),
            Err(e) => describe_error(e),
        }
    }

    fn failed(failure: Failure) -> Self {
        Err(LookupError::Failure(failure))
    }

    fn is_verdict(&self) -> bool {
        self.is_ok()
    }
}

impl Cacheable for Result<AddressAnswer, LookupError> {
    fn expiry(&self, c: &CacheConfig, now: SystemTime) -> SystemTime {
        match self {
            Ok(a @ AddressAnswer::Absent { .. }) => a.valid_until().min(now + c.max_negative),
            Ok(a) => a.valid_until().min(now + c.max_positive),
            Err(e) => error_expiry(e, c, now),
        }
    }

    fn describe(&self) -> (&'static str, usize, String) {
        match self {
            Ok(AddressAnswer::Absent { proof, .. }) => ("absent", 0, format!("{proof:?}")),
            Ok(
                a @ (AddressAnswer::Secure { addrs, .. } | AddressAnswer::Insecure { addrs, .. }),
            ) => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                (a.state(), a.secure_addrs().len(), list.join(", "))
            }
            Err(e) => describe_error(e),
        }
    }

    fn failed(failure: Failure) -> Self {
        Err(LookupError::Failure(failure))
    }

    fn is_verdict(&self) -> bool {
        self.is_ok()
    }
}

#[cfg(test)]
mod tests;
