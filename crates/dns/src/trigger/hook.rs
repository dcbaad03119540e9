//! The interface between the stub and the agent: the [`TriggerHook`] the agent implements, and
//! the [`TriggerEvent`]s the stub reports through it.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use serde::Serialize;

use crate::answer::SecureKeys;

/// What the stub asks of the agent. Called from the stub's tasks; every method must return
/// quickly (no blocking I/O): start work elsewhere and return.
pub trait TriggerHook: Send + Sync + 'static {
    /// Whether answers with these addresses are in an opportunistic group (worth an IPSECKEY
    /// lookup and a hold). `addrs` are the forwarded answer's addresses of the queried family, or,
    /// before an early start (key and addresses cached), the name's validated addresses of it.
    fn wants(&self, addrs: &[IpAddr]) -> bool;

    /// A SECURE key for `name`, bound to `addrs` (the answered addresses that the validated A/AAAA
    /// answer proves; for an early start, the validated addresses of the queried family): start
    /// IKE to them. The answer is held until the returned future completes
    /// (the child SA is installed, or the attempt failed) or the stub's hold time passes, then it is
    /// released either way. The stub may drop the future before it completes: dropping it must
    /// not cancel IKE. Called again for every query of the name (A and AAAA each, repeats within
    /// the TTL): when an SA is already up, return a future that is ready at once.
    fn secure(
        &self,
        name: Name,
        addrs: Vec<IpAddr>,
        keys: SecureKeys,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Every trigger's outcome (for the status socket and logs); bogus keys are reported here.
    fn record(&self, event: TriggerEvent);

    /// Whether a query for these addresses must fail (SERVFAIL) when no secure key is found:
    /// for a `private` group whose operator chose to fail closed. Default: never, so a failure
    /// of the trigger never becomes a DNS failure.
    fn fail_closed(&self, addrs: &[IpAddr]) -> bool {
        let _ = addrs;
        false
    }
}

/// One trigger's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriggerEvent {
    /// The name the application asked for.
    pub name: String,
    /// `A` or `AAAA`.
    pub qtype: String,
    /// The addresses the forwarded answer carried.
    pub answered: Vec<IpAddr>,
    /// What the stub decided.
    pub decision: Decision,
    /// How long the answer was held after the upstream answered, in microseconds.
    pub held_us: u64,
    /// Whether the hold time ran out before the decision (or the hook) was done.
    pub hold_expired: bool,
    /// When the query came (Unix seconds).
    pub at: u64,
}

/// What the stub decided for an A/AAAA answer in an opportunistic group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Decision {
    /// A secure key: the hook was called with these addresses.
    Secure {
        /// The owner of the key (after any CNAME).
        owner: String,
        /// The addresses the key is bound to.
        addrs: Vec<IpAddr>,
        /// Usable keys in the RRset.
        keys: usize,
        /// The hook's future completed within the hold time.
        completed: bool,
        /// The key arrived after the answer was released; the hook was called anyway.
        late: bool,
    },
    /// A secure IPSECKEY RRset with no key we can use (unsupported algorithm, malformed).
    NoUsableKey,
    /// No IPSECKEY at the name.
    NoKey {
        /// The absence is proven by DNSSEC.
        proven: bool,
    },
    /// IPSECKEY records in a provably unsigned zone: never used.
    Insecure,
    /// The IPSECKEY answer failed validation: never used.
    Bogus {
        /// Why.
        reason: String,
    },
    /// The IPSECKEY lookup gave no verdict (timeout, network, overload).
    LookupFailed {
        /// Why.
        reason: String,
    },
    /// A secure key, but the answered addresses are not proven to be the name's (insecure,
    /// bogus or failed address lookup, or the upstream's answer differs): the key is not bound
    /// to them and the hook is not called.
    AddressesNotProven {
        /// Why.
        reason: String,
    },
}

impl Decision {
    /// The short word for logs and counters.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Secure { .. } => "secure",
            Self::NoUsableKey => "no-usable-key",
            Self::NoKey { .. } => "no-key",
            Self::Insecure => "insecure",
            Self::Bogus { .. } => "bogus",
            Self::LookupFailed { .. } => "lookup-failed",
            Self::AddressesNotProven { .. } => "addresses-not-proven",
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
