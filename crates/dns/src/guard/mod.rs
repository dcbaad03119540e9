//! Work limits against hostile zones (the KeyTrap family, CVE-2023-50387 and CVE-2023-50868),
//! applied to every response before hickory validates it, and a per-lookup query budget.
//!
//! What hickory 0.26.3 enforces by itself (read in `hickory-net/src/dnssec/mod.rs`):
//! - at most 9 RRSIGs tried per RRset (`MAX_RRSIGS_PER_RRSET = 8`, checked as `i > 8`), but not
//!   for DNSKEY RRsets, whose RRSIGs are all tried;
//! - at most 2 DNSKEYs per key tag when verifying an RRSIG, and at most 2 DS per key tag when
//!   authenticating a DNSKEY (`MAX_KEY_TAG_COLLISIONS = 2`); an RRSIG is only tried with keys
//!   whose tag and algorithm match it;
//! - NSEC3 iterations: over 100 -> insecure, over 500 -> bogus (settable);
//! - validation results cached per RRset (bogus for at most 60 s), recursion depth 26.
//!
//! What is added here: a cap on RRSIGs per RRset for every type (DNSKEY included), on DNSKEYs
//! per RRset and per key tag, on DS records per owner, on NSEC3 records per response; NSEC3
//! iteration limits lowered to RFC 9276's (100 insecure, 150 bogus); a budget of upstream
//! queries per lookup (the walk for zone cuts issues one NS query per label); and, in the
//! validator, a deadline on the whole lookup. A response over a limit is rejected before any
//! signature is checked, so the lookup ends bogus.
//!
//! The guard also keeps DNSKEY and DS responses for a while ([`chain`]), so the chain of trust is
//! not fetched again for every lookup (hickory validates them again on every use), shares fetches
//! in flight, and fetches the chain ahead of hickory as soon as a response names its signer
//! ([`prefetch`]), so a cold lookup waits one round trip per level instead of two.

mod chain;
mod prefetch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{stream, StreamExt};
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::op::{
    DnsRequest, DnsRequestOptions, DnsResponse, Edns, Message, Query,
};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use chain::{Cached, ChainCache, Key};

/// Prefix of the error a rejected response turns into.
pub(crate) const REJECTED: &str = "response rejected by work limits";

/// Limits on what one response or one lookup may make us do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkLimits {
    /// RRSIGs per RRset (owner, type covered), any type.
    pub max_rrsigs_per_rrset: usize,
    /// DNSKEY records per owner.
    pub max_dnskeys: usize,
    /// DNSKEY records sharing one key tag.
    pub max_keys_per_tag: usize,
    /// DS records per owner.
    pub max_ds: usize,
    /// NSEC3 records per response.
    pub max_nsec3: usize,
    /// NSEC3 iterations above which a denial is insecure (RFC 9276 section 3.2).
    pub nsec3_soft_iterations: u16,
    /// NSEC3 iterations above which a denial is bogus.
    pub nsec3_hard_iterations: u16,
    /// Upstream queries one lookup may send, chain of trust included.
    pub max_queries_per_lookup: usize,
}

impl Default for WorkLimits {
    fn default() -> Self {
        Self {
            max_rrsigs_per_rrset: 8,
            max_dnskeys: 16,
            max_keys_per_tag: 2,
            max_ds: 16,
            max_nsec3: 16,
            nsec3_soft_iterations: 100,
            nsec3_hard_iterations: 150,
            max_queries_per_lookup: 64,
        }
    }
}

/// Counters for the status socket.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Queries sent upstream.
    pub queries: AtomicU64,
    /// Responses rejected by a limit.
    pub rejected: AtomicU64,
    /// DNSKEY and DS queries answered from the chain cache or a fetch in flight (not sent
    /// upstream).
    pub chain_hits: AtomicU64,
    /// DNSKEY and DS queries sent ahead of the validator ([`prefetch`]).
    pub prefetches: AtomicU64,
}

/// One lookup's share of work: queries sent so far and the first limit hit.
#[derive(Debug)]
pub(crate) struct Budget {
    queries: AtomicUsize,
    max: usize,
    pub(crate) rejection: Mutex<Option<String>>,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            queries: AtomicUsize::new(0),
            max,
            rejection: Mutex::new(None),
        }
    }

    pub(crate) fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }

    fn note(&self, why: &str) {
        if let Ok(mut slot) = self.rejection.lock() {
            slot.get_or_insert_with(|| why.to_owned());
        }
    }
}

tokio::task_local! {
    /// The budget of the lookup being polled; hickory calls the guard from inside its future.
    pub(crate) static BUDGET: Arc<Budget>;
}

/// A `DnsHandle` between hickory's validator and the transport that enforces [`WorkLimits`].
#[derive(Clone)]
pub(crate) struct Guard<H> {
    inner: H,
    limits: WorkLimits,
    stats: Arc<GuardStats>,
    chain: Arc<ChainCache>,
    anchors: Arc<[Name]>,
}

impl<H> Guard<H> {
    /// Wraps `inner`; `anchors` are the owners of the trust anchors (their DNSKEY RRsets are
    /// fetched ahead too).
    pub(crate) fn new(
        inner: H,
        limits: WorkLimits,
        stats: Arc<GuardStats>,
        anchors: &[Name],
    ) -> Self {
        Self {
            inner,
            limits,
            stats,
            chain: Arc::default(),
            anchors: anchors.iter().map(Name::to_lowercase).collect(),
        }
    }

    /// Forgets the cached chain responses (call after a bogus outcome).
    pub(crate) fn flush_chain(&self) {
        self.chain.flush();
    }
}

type Responses =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<DnsResponse, NetError>> + Send>>;

impl<H: DnsHandle> DnsHandle for Guard<H> {
    type Response = Responses;
    type Runtime = H::Runtime;

    fn is_verifying_dnssec(&self) -> bool {
        self.inner.is_verifying_dnssec()
    }

    fn send(&self, mut request: DnsRequest) -> Self::Response {
        // We validate; with CD set a validating upstream returns what it has, not SERVFAIL.
        request.metadata.checking_disabled = true;
        let Some(key) = ChainCache::key(&request) else {
            return self.fetch(request);
        };
        match self.chain.lookup(&key) {
            Cached::Hit(response) => {
                self.stats.chain_hits.fetch_add(1, Ordering::Relaxed);
                Box::pin(stream::once(async move { Ok(response) }))
            }
            Cached::Join(rx) => {
                self.stats.chain_hits.fetch_add(1, Ordering::Relaxed);
                Box::pin(stream::once(chain::wait(rx)))
            }
            Cached::Miss => match self.shared(key, request) {
                Ok(rx) => Box::pin(stream::once(chain::wait(rx))),
                Err(request) => self.fetch(*request),
            },
        }
    }
}

impl<H: DnsHandle> Guard<H> {
    /// Sends `request` upstream within the lookup's query budget.
    fn fetch(&self, request: DnsRequest) -> Responses {
        match self.spend() {
            Ok(()) => Box::pin(self.upstream(request)),
            Err(why) => self.reject(why),
        }
    }

    /// Starts a fetch of `key` that other requests can join, in a task of its own (under the
    /// budget of the lookup that started it); gives the request back when it cannot be shared.
    fn shared(
        &self,
        key: Key,
        request: DnsRequest,
    ) -> Result<tokio::sync::watch::Receiver<chain::Fetched>, Box<DnsRequest>> {
        let Some(tx) = self.chain.begin(key.clone()) else {
            return Err(Box::new(request));
        };
        let rx = tx.subscribe();
        let this = self.clone();
        let budget = BUDGET.try_with(Arc::clone).ok();
        let work = async move {
            let result = match this.spend() {
                Ok(()) => this.upstream(request).next().await,
                Err(why) => this.reject(why).next().await,
            };
            let result = result.unwrap_or_else(|| Err(NetError::from("no response")));
            this.chain.end(key, &tx, result);
        };
        match budget {
            Some(budget) => tokio::spawn(BUDGET.scope(budget, work)),
            None => tokio::spawn(work),
        };
        Ok(rx)
    }

    /// `request` sent upstream; each response checked against the limits, then the chain RRsets
    /// it shows will be needed are fetched ahead.
    fn upstream(
        &self,
        request: DnsRequest,
    ) -> impl futures_util::Stream<Item = Result<DnsResponse, NetError>> + Send + 'static {
        let this = self.clone();
        let asked = request.queries.first().map(|q| q.name().to_lowercase());
        let options = *request.options();
        self.inner.send(request).map(move |result| {
            let response = result?;
            if let Err(why) = check(&this.limits, &response) {
                this.stats.rejected.fetch_add(1, Ordering::Relaxed);
                let why = format!("{REJECTED}: {why}");
                let _ = BUDGET.try_with(|b| b.note(&why));
                return Err(NetError::Msg(why));
            }
            if let Some(asked) = &asked {
                this.prefetch(asked, &response, options);
            }
            Ok(response)
        })
    }

    /// Starts shared fetches of the chain RRsets `response` shows will be needed.
    fn prefetch(&self, asked: &Name, response: &Message, options: DnsRequestOptions) {
        for key in prefetch::wanted(asked, response, &self.anchors) {
            if self.chain.knows(&key) {
                continue;
            }
            let request = chain_request(&key, options);
            if self.shared(key, request).is_ok() {
                self.stats.prefetches.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts one upstream query against the lookup's budget.
    fn spend(&self) -> Result<(), String> {
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let over = BUDGET
            .try_with(|b| b.queries.fetch_add(1, Ordering::Relaxed) >= b.max)
            .unwrap_or(false);
        if over {
            return Err(format!(
                "{REJECTED}: more than {} queries",
                self.limits.max_queries_per_lookup
            ));
        }
        Ok(())
    }

    fn reject(&self, why: String) -> Responses {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = BUDGET.try_with(|b| b.note(&why));
        Box::pin(stream::once(async move { Err(NetError::Msg(why)) }))
    }
}

/// A request for a chain RRset as hickory's validator makes it (DO set, AD set; the guard sets
/// CD when it is sent).
fn chain_request((name, rtype): &Key, options: DnsRequestOptions) -> DnsRequest {
    let mut request = DnsRequest::from_query(Query::query(name.clone(), *rtype), options);
    request.edns.get_or_insert_with(Edns::new).enable_dnssec();
    request.metadata.authentic_data = true;
    request.metadata.checking_disabled = true;
    request
}

/// Checks one response against the limits; the error says which limit. Counts are keyed by
/// borrowed owner names (hickory compares and hashes names case-insensitively), and only DNSSEC
/// records are looked at.
pub(crate) fn check(limits: &WorkLimits, msg: &Message) -> Result<(), String> {
    let mut rrsigs: HashMap<(&Name, RecordType), usize> = HashMap::new();
    let mut dnskeys: HashMap<&Name, usize> = HashMap::new();
    let mut tags: HashMap<(&Name, u16), usize> = HashMap::new();
    let mut ds: HashMap<&Name, usize> = HashMap::new();
    let mut nsec3 = 0usize;
    let all = msg
        .answers
        .iter()
        .chain(&msg.authorities)
        .chain(&msg.additionals);
    for record in all {
        let RData::DNSSEC(data) = &record.data else {
            continue;
        };
        let owner = &record.name;
        match data {
            DNSSECRData::RRSIG(sig) => {
                let n = bump(&mut rrsigs, (owner, sig.input().type_covered));
                if n > limits.max_rrsigs_per_rrset {
                    return Err(format!(
                        "more than {} RRSIGs for one RRset at {owner}",
                        limits.max_rrsigs_per_rrset
                    ));
                }
            }
            DNSSECRData::DNSKEY(key) => {
                if bump(&mut dnskeys, owner) > limits.max_dnskeys {
                    return Err(format!(
                        "more than {} DNSKEYs at {owner}",
                        limits.max_dnskeys
                    ));
                }
                let tag = key.calculate_key_tag().unwrap_or(0);
                if bump(&mut tags, (owner, tag)) > limits.max_keys_per_tag {
                    return Err(format!(
                        "more than {} DNSKEYs with key tag {tag} at {owner}",
                        limits.max_keys_per_tag
                    ));
                }
            }
            DNSSECRData::DS(_) if bump(&mut ds, owner) > limits.max_ds => {
                return Err(format!("more than {} DS records at {owner}", limits.max_ds));
            }
            DNSSECRData::NSEC3(_) => {
                nsec3 += 1;
                if nsec3 > limits.max_nsec3 {
                    return Err(format!("more than {} NSEC3 records", limits.max_nsec3));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K) -> usize {
    let n = map.entry(key).or_insert(0);
    *n += 1;
    *n
}

#[cfg(test)]
mod tests;
