//! Upstream responses to DNSKEY and DS queries (the chain of trust), kept briefly so that a lookup
//! in a zone already seen costs one upstream round trip instead of four or five: hickory's
//! validator fetches the signer's DNSKEY RRset, its DS and the parent's DNSKEYs for every lookup
//! (measured against the fixture: 3-5 queries per name, the same DNSKEY up to three times).
//! Fetches in flight are shared: a request for an RRset already being fetched (by another lookup,
//! or ahead of time by the guard's prefetch) waits for that fetch instead of sending its own.
//!
//! Only the transport is cached: hickory validates a cached response exactly as a fresh one, so
//! this saves time, never trust. A forged response could stick for its lifetime, so every lookup
//! that ends bogus flushes the whole cache ([`ChainCache::flush`]), and lifetimes are capped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::net::NetError;
use hickory_resolver::proto::op::{DnsRequest, DnsResponse, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use tokio::sync::watch;

/// Longest a response is kept, whatever its TTL.
const MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Responses kept at most (chain RRsets: a few per zone).
const MAX_ENTRIES: usize = 1024;
/// Shared fetches in flight at most; past it requests go upstream unshared.
const MAX_IN_FLIGHT: usize = 128;

pub(crate) type Key = (Name, RecordType);

/// The outcome of a shared fetch, once it has one.
pub(crate) type Fetched = Option<Result<DnsResponse, NetError>>;

/// What the cache has for a key.
pub(crate) enum Cached {
    /// A fresh response.
    Hit(DnsResponse),
    /// A fetch in flight: its outcome will appear here.
    Join(watch::Receiver<Fetched>),
    /// Nothing.
    Miss,
}

#[derive(Debug, Default)]
pub(crate) struct ChainCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Key, (DnsResponse, Instant)>,
    in_flight: HashMap<Key, watch::Receiver<Fetched>>,
}

impl ChainCache {
    /// The cache key of a request for a chain RRset (one question, DNSKEY or DS).
    pub(crate) fn key(request: &DnsRequest) -> Option<Key> {
        let [query] = request.queries.as_slice() else {
            return None;
        };
        matches!(query.query_type(), RecordType::DNSKEY | RecordType::DS)
            .then(|| (query.name().to_lowercase(), query.query_type()))
    }

    /// A fresh cached response for `key`, or the fetch in flight for it.
    pub(crate) fn lookup(&self, key: &Key) -> Cached {
        let mut state = self.lock();
        match state.entries.get(key) {
            Some((response, until)) if *until > Instant::now() => {
                return Cached::Hit(response.clone())
            }
            Some(_) => {
                state.entries.remove(key);
            }
            None => {}
        }
        state
            .in_flight
            .get(key)
            .map_or(Cached::Miss, |rx| Cached::Join(rx.clone()))
    }

    /// Whether `key` is cached or being fetched.
    pub(crate) fn knows(&self, key: &Key) -> bool {
        !matches!(self.lookup(key), Cached::Miss)
    }

    /// Registers a shared fetch of `key`; `None` when one is in flight already or too many are
    /// (then the caller fetches unshared).
    pub(crate) fn begin(&self, key: Key) -> Option<watch::Sender<Fetched>> {
        let mut state = self.lock();
        if state.in_flight.len() >= MAX_IN_FLIGHT || state.in_flight.contains_key(&key) {
            return None;
        }
        let (tx, rx) = watch::channel(None);
        state.in_flight.insert(key, rx);
        Some(tx)
    }

    /// Ends the shared fetch of `key`: keeps a positive response, then tells the waiters.
    pub(crate) fn end(
        &self,
        key: Key,
        tx: &watch::Sender<Fetched>,
        result: Result<DnsResponse, NetError>,
    ) {
        if let Ok(response) = &result {
            self.put(key.clone(), response);
        }
        self.lock().in_flight.remove(&key);
        tx.send_replace(Some(result));
    }

    /// Keeps a positive response for min(its smallest TTL, [`MAX_LIFETIME`]).
    fn put(&self, key: Key, response: &DnsResponse) {
        if response.response_code != ResponseCode::NoError || response.answers.is_empty() {
            return;
        }
        let ttl = response.answers.iter().map(|r| r.ttl).min().unwrap_or(0);
        let lifetime = Duration::from_secs(ttl.into()).min(MAX_LIFETIME);
        if lifetime.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            state.entries.retain(|_, (_, until)| *until > now);
            if state.entries.len() >= MAX_ENTRIES {
                state.entries.clear();
            }
        }
        state
            .entries
            .insert(key, (response.clone(), Instant::now() + lifetime));
    }

    /// Forgets every response (after a bogus outcome: a bad response must not be served again).
    /// Fetches in flight finish and are kept: none of them took part in the bogus outcome.
    pub(crate) fn flush(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The outcome of the shared fetch `rx` (an error if its task ended without one).
pub(crate) async fn wait(mut rx: watch::Receiver<Fetched>) -> Result<DnsResponse, NetError> {
    match rx.wait_for(Option::is_some).await {
        Ok(fetched) => fetched.clone().unwrap_or_else(|| {
            Err(NetError::from(
                "the shared chain fetch ended without an answer",
            ))
        }),
        Err(_) => Err(NetError::from(
            "the shared chain fetch ended without an answer",
        )),
    }
}
