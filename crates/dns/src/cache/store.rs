//! One table of cached outcomes with in-flight coalescing, generic over the outcome type: the
//! [`KeyCache`](super::KeyCache) keeps one for IPSECKEY outcomes and one for address outcomes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use tokio::sync::watch;

use super::admission::{Admission, Priority, Refusal};
use super::{CacheConfig, CacheSnapshot, Clock, Counters, EntrySnapshot};
use crate::answer::{Failure, LookupError};

/// What a table needs to know about an outcome.
pub(crate) trait Cacheable: Send + Sync + 'static {
    /// Until when the outcome may be served (at or before `now`: not cached).
    fn expiry(&self, config: &CacheConfig, now: SystemTime) -> SystemTime;
    /// State word, count of usable items, and a detail line, for the status socket.
    fn describe(&self) -> (&'static str, usize, String);
    /// The outcome when the lookup task is lost or the request is shed.
    fn failed(failure: Failure) -> Self;
    /// Whether this is a verdict (secure, insecure, absent), not a bogus or failed lookup: only
    /// verdicts are refreshed ahead of expiry, and a refresh that fails keeps them.
    fn is_verdict(&self) -> bool;
}

/// An entry in use is looked up again in the background once this fraction of its lifetime is
/// left (1/10, as unbound's `prefetch`), so the names a host talks to stay cached.
const REFRESH_DIVISOR: u32 = 10;

/// A shared outcome.
pub(crate) type Shared<V> = Arc<V>;

/// What a caller asks a table for: the key, a label for people (made only when a lookup
/// starts: a cache hit formats nothing), on whose behalf.
pub(crate) struct Request<L> {
    pub(crate) key: Name,
    pub(crate) label: L,
    pub(crate) priority: Priority,
}

/// A lookup in flight: its label, where its outcome will appear, and whose slot it holds.
struct Pending<V> {
    label: String,
    outcome: watch::Receiver<Option<Shared<V>>>,
    priority: Priority,
}

pub(crate) struct Store<V> {
    entries: HashMap<Name, Entry<V>>,
    in_flight: HashMap<Name, Pending<V>>,
    admission: Admission,
    counters: Counters,
}

impl<V> Default for Store<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            in_flight: HashMap::new(),
            admission: Admission::default(),
            counters: Counters::default(),
        }
    }
}

struct Entry<V> {
    label: String,
    outcome: Shared<V>,
    fetched: SystemTime,
    expires: SystemTime,
    hits: u64,
}

/// A table shared by clones of the cache.
pub(crate) struct Table<V> {
    pub(super) state: Arc<Mutex<Store<V>>>,
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            state: Arc::default(),
        }
    }
}

impl<V: Cacheable> Table<V> {
    /// The outcome for `request`: cached (and refreshed in the background when due), given by
    /// `cover` (a covering proof, not stored), joined to a lookup in flight, or fetched now by
    /// `fetch` in a task of its own (a caller that gives up does not cancel it for the others), if
    /// the request's priority may start one ([`Admission`]); otherwise [`Failure::Overloaded`].
    pub(crate) async fn get<F>(
        &self,
        request: Request<impl FnOnce() -> String>,
        config: &CacheConfig,
        clock: &Clock,
        cover: impl FnOnce(SystemTime) -> Option<V>,
        fetch: F,
    ) -> Shared<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let Request {
            key,
            label,
            priority,
        } = request;
        let now = clock();
        let rx = {
            let mut state = self.lock();
            if let Some((outcome, due)) = cached(&mut state, &key, now) {
                if due
                    && !state.in_flight.contains_key(&key)
                    && state.admission.admit(priority, config).is_ok()
                {
                    state.counters.refreshes += 1;
                    let pending = (label(), priority);
                    drop(self.start(&mut state, key, pending, *config, clock.clone(), fetch));
                }
                return outcome;
            }
            if let Some(pending) = state.in_flight.get(&key) {
                let rx = pending.outcome.clone();
                state.counters.coalesced += 1;
                rx
            } else if let Some(covered) = cover(now) {
                state.counters.covered += 1;
                return Arc::new(covered);
            } else if let Err(refusal) = state.admission.admit(priority, config) {
                state.counters.shed += 1;
                if refusal != Refusal::Full {
                    state.counters.shed_peers += 1;
                }
                return Arc::new(V::failed(Failure::Overloaded));
            } else {
                state.counters.misses += 1;
                let pending = (label(), priority);
                self.start(&mut state, key, pending, *config, clock.clone(), fetch)
            }
        };
        wait(rx).await
    }

    fn start<F>(
        &self,
        state: &mut Store<V>,
        key: Name,
        (label, priority): (String, Priority),
        config: CacheConfig,
        clock: Clock,
        fetch: F,
    ) -> watch::Receiver<Option<Shared<V>>>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (tx, rx) = watch::channel(None);
        let pending = Pending {
            label: label.clone(),
            outcome: rx.clone(),
            priority,
        };
        state.in_flight.insert(key.clone(), pending);
        let slot = Slot {
            table: self.clone(),
            key: Some(key),
        };
        tokio::spawn(async move {
            let outcome = Arc::new(fetch.await);
            slot.fill(label, outcome.clone(), &config, clock());
            let _ = tx.send(Some(outcome));
        });
        rx
    }

    fn store(
        &self,
        key: Name,
        label: String,
        outcome: Shared<V>,
        config: &CacheConfig,
        now: SystemTime,
    ) {
        let expires = outcome.expiry(config, now);
        let mut state = self.lock();
        end_flight(&mut state, &key);
        if expires <= now {
            return;
        }
        // A refresh that failed: the verdict it was to renew is still valid, keep it.
        let valid_verdict = state
            .entries
            .get(&key)
            .is_some_and(|e| e.expires > now && e.outcome.is_verdict());
        if valid_verdict && !outcome.is_verdict() {
            return;
        }
        if !state.entries.contains_key(&key) {
            make_room(&mut state, config.max_entries, now);
        }
        let entry = Entry {
            label,
            outcome,
            fetched: now,
            expires,
            hits: 0,
        };
        state.entries.insert(key, entry);
    }

    /// The cached outcome under `key`, if still valid at `now` (counted as a hit).
    pub(crate) fn peek(&self, key: &Name, now: SystemTime) -> Option<Shared<V>> {
        cached(&mut self.lock(), key, now).map(|(outcome, _)| outcome)
    }

    /// Counts an answer given by a covering proof.
    pub(crate) fn count_covered(&self) {
        self.lock().counters.covered += 1;
    }

    /// Forgets the outcome under `key`.
    pub(crate) fn invalidate(&self, key: &Name) {
        self.lock().entries.remove(key);
    }

    /// The table's contents and counters.
    pub(crate) fn snapshot(&self, capacity: usize) -> CacheSnapshot {
        let state = self.lock();
        let mut entries: Vec<EntrySnapshot> = state
            .entries
            .iter()
            .map(|(name, e)| entry_snapshot(name, e))
            .collect();
        entries.sort_by_key(|e| e.expires);
        let mut in_flight: Vec<String> =
            state.in_flight.values().map(|p| p.label.clone()).collect();
        in_flight.sort();
        CacheSnapshot {
            entries,
            in_flight,
            counters: state.counters,
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store<V>> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters here: keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The slot of a lookup in flight: filled with its outcome, or, if the lookup task ends without
/// one (a panic, the runtime shutting down), given back when dropped, so no slot is lost.
struct Slot<V: Cacheable> {
    table: Table<V>,
    key: Option<Name>,
}

impl<V: Cacheable> Slot<V> {
    fn fill(mut self, label: String, outcome: Shared<V>, config: &CacheConfig, now: SystemTime) {
        if let Some(key) = self.key.take() {
            self.table.store(key, label, outcome, config, now);
        }
    }
}

impl<V: Cacheable> Drop for Slot<V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            end_flight(&mut self.table.lock(), &key);
        }
    }
}

/// Removes the lookup in flight under `key` and gives its slot back.
fn end_flight<V>(state: &mut Store<V>, key: &Name) {
    if let Some(pending) = state.in_flight.remove(key) {
        state.admission.release(pending.priority);
    }
}

#[cfg(test)]
impl<V> Store<V> {
    /// Sources holding in-flight slots (the per-source map's size).
    pub(crate) fn admission_sources(&self) -> usize {
        self.admission.sources()
    }
}

/// The cached outcome under `key`, if still valid at `now`, and whether it is due for a refresh:
/// a verdict in the last tenth of its lifetime.
fn cached<V: Cacheable>(
    state: &mut Store<V>,
    key: &Name,
    now: SystemTime,
) -> Option<(Shared<V>, bool)> {
    let entry = state.entries.get_mut(key)?;
    if entry.expires <= now {
        state.entries.remove(key);
        return None;
    }
    entry.hits += 1;
    let life = entry
        .expires
        .duration_since(entry.fetched)
        .unwrap_or_default();
    let left = entry.expires.duration_since(now).unwrap_or_default();
    let due = left <= life / REFRESH_DIVISOR && entry.outcome.is_verdict();
    let outcome = entry.outcome.clone();
    state.counters.hits += 1;
    Some((outcome, due))
}

/// Drops expired entries, then the soonest to expire, until one more fits.
fn make_room<V>(state: &mut Store<V>, max_entries: usize, now: SystemTime) {
    if state.entries.len() < max_entries {
        return;
    }
    let before = state.entries.len();
    state.entries.retain(|_, e| e.expires > now);
    while state.entries.len() >= max_entries {
        let Some(victim) = state
            .entries
            .iter()
            .min_by_key(|(_, e)| e.expires)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        state.entries.remove(&victim);
    }
    let dropped = before - state.entries.len();
    state.counters.evictions += u64::try_from(dropped).unwrap_or(u64::MAX);
}

async fn wait<V: Cacheable>(mut rx: watch::Receiver<Option<Shared<V>>>) -> Shared<V> {
    match rx.wait_for(Option::is_some).await {
        Ok(value) => value.clone().unwrap_or_else(lost),
        Err(_) => lost(),
    }
}

/// The lookup task ended without an outcome (runtime shutting down).
fn lost<V: Cacheable>() -> Shared<V> {
    let failure = Failure::Config("the lookup task ended without an answer".into());
    Arc::new(V::failed(failure))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn entry_snapshot<V: Cacheable>(name: &Name, e: &Entry<V>) -> EntrySnapshot {
    let (state, usable, detail) = e.outcome.describe();
    EntrySnapshot {
        target: e.label.clone(),
        query: name.to_string(),
        state,
        usable_keys: usable,
        detail,
        fetched: unix(e.fetched),
        expires: unix(e.expires),
        hits: e.hits,
    }
}

/// The expiry rules shared by both tables for errors.
pub(crate) fn error_expiry(
    error: &LookupError,
    config: &CacheConfig,
    now: SystemTime,
) -> SystemTime {
    match error {
        LookupError::Bogus(_) => now + config.bogus,
        LookupError::Failure(Failure::Overloaded) => now,
        LookupError::Failure(_) => now + config.failure,
    }
}

/// The snapshot description of an error.
pub(crate) fn describe_error(error: &LookupError) -> (&'static str, usize, String) {
    match error {
        LookupError::Bogus(why) => ("bogus", 0, why.clone()),
        other => ("failure", 0, other.to_string()),
    }
}
