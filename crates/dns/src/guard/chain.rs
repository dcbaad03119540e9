//! Upstream responses to DNSKEY and DS queries (the chain of trust), kept briefly so that a lookup
//! in a zone already seen costs one upstream round trip instead of four or five: hickory's
//! validator fetches the signer's DNSKEY RRset, its DS and the parent's DNSKEYs for every lookup
//! (measured against the fixture: 3-5 queries per name, the same DNSKEY up to three times).
//!
//! Only the transport is cached: hickory validates a cached response exactly as a fresh one, so
//! this saves time, never trust. A forged response could stick for its lifetime, so every lookup
//! that ends bogus flushes the whole cache ([`ChainCache::flush`]), and lifetimes are capped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{DnsRequest, DnsResponse, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};

/// Longest a response is kept, whatever its TTL.
const MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Responses kept at most (chain RRsets: a few per zone).
const MAX_ENTRIES: usize = 1024;

type Key = (Name, RecordType);

#[derive(Debug, Default)]
pub(crate) struct ChainCache {
    entries: Mutex<HashMap<Key, (DnsResponse, Instant)>>,
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

    /// A fresh cached response for `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<DnsResponse> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((response, until)) if *until > Instant::now() => Some(response.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps a positive response for min(its smallest TTL, [`MAX_LIFETIME`]).
    pub(crate) fn put(&self, key: Key, response: &DnsResponse) {
        if response.response_code != ResponseCode::NoError || response.answers.is_empty() {
            return;
        }
        let ttl = response.answers.iter().map(|r| r.ttl).min().unwrap_or(0);
        let lifetime = Duration::from_secs(ttl.into()).min(MAX_LIFETIME);
        if lifetime.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (response.clone(), Instant::now() + lifetime));
    }

    /// Forgets everything (after a bogus outcome: a bad response must not be served again).
    pub(crate) fn flush(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (DnsResponse, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
