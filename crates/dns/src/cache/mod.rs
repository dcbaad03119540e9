//! Cache of lookup outcomes with in-flight coalescing: many ACQUIREs for one host cause one
//! lookup. Positive and negative outcomes live for their validated lifetime (capped), bogus
//! ones for a minute, failures for seconds (RFC 9520 wants failures cached, briefly). Bounded
//! in entries and in concurrent lookups; a snapshot serves the status socket.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use serde::Serialize;
use tokio::sync::watch;

use crate::answer::{Answer, Failure, LookupError};
use crate::target::LookupTarget;
use crate::validator::Validator;

/// An outcome shared between the cache and every caller that asked for it.
pub type Outcome = Arc<Result<Answer, LookupError>>;

/// Anything that performs lookups (the [`Validator`]; a stand-in in tests).
pub trait Lookup: Send + Sync + 'static {
    /// Looks up one target.
    fn lookup(
        &self,
        target: &LookupTarget,
    ) -> impl Future<Output = Result<Answer, LookupError>> + Send;
}

impl Lookup for Validator {
    fn lookup(
        &self,
        target: &LookupTarget,
    ) -> impl Future<Output = Result<Answer, LookupError>> + Send {
        Self::lookup(self, target)
    }
}

/// Cache bounds and lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries kept at most.
    pub max_entries: usize,
    /// Lookups running at once at most; more are shed as [`Failure::Overloaded`].
    pub max_in_flight: usize,
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
            max_positive: Duration::from_secs(86_400),
            max_negative: Duration::from_secs(900),
            bogus: Duration::from_secs(60),
            failure: Duration::from_secs(5),
        }
    }
}

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The cache in front of a [`Lookup`]. Cheap to clone; clones share the cache.
pub struct KeyCache<L> {
    lookup: Arc<L>,
    state: Arc<Mutex<State>>,
    config: CacheConfig,
    clock: Clock,
}

impl<L> Clone for KeyCache<L> {
    fn clone(&self) -> Self {
        Self {
            lookup: self.lookup.clone(),
            state: self.state.clone(),
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

#[derive(Default)]
struct State {
    entries: HashMap<Name, Entry>,
    in_flight: HashMap<Name, (LookupTarget, watch::Receiver<Option<Outcome>>)>,
    counters: Counters,
}

struct Entry {
    target: LookupTarget,
    outcome: Outcome,
    fetched: SystemTime,
    expires: SystemTime,
    hits: u64,
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
    /// Keys usable for authentication.
    pub usable_keys: usize,
    /// Why, for bogus and failed outcomes; the denial for absences.
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
            state: Arc::default(),
            config,
            clock,
        }
    }

    /// The outcome for `target`: cached, joined to a lookup in flight, or looked up now (in a
    /// task of its own, so a caller that gives up does not cancel it for the others).
    pub async fn get(&self, target: &LookupTarget) -> Outcome {
        let key = target.query_name();
        let rx = {
            let mut state = self.lock();
            if let Some(outcome) = self.cached(&mut state, &key) {
                return outcome;
            }
            if let Some((_, rx)) = state.in_flight.get(&key) {
                let rx = rx.clone();
                state.counters.coalesced += 1;
                rx
            } else if state.in_flight.len() >= self.config.max_in_flight {
                state.counters.shed += 1;
                return Arc::new(Err(LookupError::Failure(Failure::Overloaded)));
            } else {
                state.counters.misses += 1;
                self.start(&mut state, key, target.clone())
            }
        };
        wait(rx).await
    }

    /// Forgets the cached outcome for `target` (the next `get` looks it up again).
    pub fn invalidate(&self, target: &LookupTarget) {
        self.lock().entries.remove(&target.query_name());
    }

    /// The cache's contents and counters.
    pub fn snapshot(&self) -> CacheSnapshot {
        let state = self.lock();
        let mut entries: Vec<EntrySnapshot> = state
            .entries
            .iter()
            .map(|(name, e)| entry_snapshot(name, e))
            .collect();
        entries.sort_by_key(|e| e.expires);
        let mut in_flight: Vec<String> = state
            .in_flight
            .values()
            .map(|(t, _)| t.to_string())
            .collect();
        in_flight.sort();
        CacheSnapshot {
            entries,
            in_flight,
            counters: state.counters,
            capacity: self.config.max_entries,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters here: keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cached(&self, state: &mut State, key: &Name) -> Option<Outcome> {
        let now = (self.clock)();
        let entry = state.entries.get_mut(key)?;
        if entry.expires <= now {
            state.entries.remove(key);
            return None;
        }
        entry.hits += 1;
        let outcome = entry.outcome.clone();
        state.counters.hits += 1;
        Some(outcome)
    }

    fn start(
        &self,
        state: &mut State,
        key: Name,
        target: LookupTarget,
    ) -> watch::Receiver<Option<Outcome>> {
        let (tx, rx) = watch::channel(None);
        state
            .in_flight
            .insert(key.clone(), (target.clone(), rx.clone()));
        let this = self.clone();
        tokio::spawn(async move {
            let outcome: Outcome = Arc::new(this.lookup.lookup(&target).await);
            this.store(key, target, outcome.clone());
            let _ = tx.send(Some(outcome));
        });
        rx
    }

    fn store(&self, key: Name, target: LookupTarget, outcome: Outcome) {
        let now = (self.clock)();
        let expires = self.expiry(&outcome, now);
        let mut state = self.lock();
        state.in_flight.remove(&key);
        if expires <= now {
            return;
        }
        if !state.entries.contains_key(&key) {
            self.make_room(&mut state, now);
        }
        let entry = Entry {
            target,
            outcome,
            fetched: now,
            expires,
            hits: 0,
        };
        state.entries.insert(key, entry);
    }

    fn expiry(&self, outcome: &Outcome, now: SystemTime) -> SystemTime {
        let c = &self.config;
        match outcome.as_ref() {
            Ok(answer @ (Answer::Secure(_) | Answer::Insecure(_))) => {
                answer.valid_until().min(now + c.max_positive)
            }
            Ok(answer @ Answer::Absent(_)) => answer.valid_until().min(now + c.max_negative),
            Err(LookupError::Bogus(_)) => now + c.bogus,
            Err(LookupError::Failure(Failure::Overloaded)) => now,
            Err(_) => now + c.failure,
        }
    }

    /// Drops expired entries, then the soonest to expire, until one more fits.
    fn make_room(&self, state: &mut State, now: SystemTime) {
        if state.entries.len() < self.config.max_entries {
            return;
        }
        let before = state.entries.len();
        state.entries.retain(|_, e| e.expires > now);
        while state.entries.len() >= self.config.max_entries {
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
}

async fn wait(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(value) => value.clone().unwrap_or_else(lost),
        Err(_) => lost(),
    }
}

/// The lookup task ended without an outcome (runtime shutting down).
fn lost() -> Outcome {
    let failure = Failure::Config("the lookup task ended without an answer".into());
    Arc::new(Err(LookupError::Failure(failure)))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn entry_snapshot(name: &Name, e: &Entry) -> EntrySnapshot {
    let (state, usable_keys, detail) = match e.outcome.as_ref() {
        Ok(a @ Answer::Secure(_)) => ("secure", a.usable_keys().len(), String::new()),
        Ok(Answer::Insecure(_)) => ("insecure", 0, "zone is unsigned".into()),
        Ok(Answer::Absent(a)) => ("absent", 0, format!("{:?}", a.denial)),
        Err(LookupError::Bogus(why)) => ("bogus", 0, why.clone()),
        Err(other) => ("failure", 0, other.to_string()),
    };
    EntrySnapshot {
        target: e.target.to_string(),
        query: name.to_string(),
        state,
        usable_keys,
        detail,
        fetched: unix(e.fetched),
        expires: unix(e.expires),
        hits: e.hits,
    }
}

#[cfg(test)]
mod tests;
