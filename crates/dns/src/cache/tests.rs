use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use tokio::sync::Semaphore;

use super::{CacheConfig, KeyCache, Lookup, Priority};
use crate::address::AddressAnswer;
use crate::answer::{Absence, Answer, Denial, Failure, LookupError, SecureKeys, Signature};
use crate::target::LookupTarget;

/// Answers by target name: `secure*` secure for 300 s, `absent*` absent for 600 s, `bogus*`
/// bogus, anything else a failure. Holds each lookup until the gate gives a permit.
struct Fake {
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    now: Arc<AtomicU64>,
    /// Every lookup fails (the network is down).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Lookup for Fake {
    /// `secure*` has 192.0.2.7 for 300 s; anything else is bogus.
    async fn lookup_addresses(&self, name: &Name) -> Result<AddressAnswer, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        let now = UNIX_EPOCH + Duration::from_secs(self.now.load(Ordering::SeqCst));
        if name.to_string().starts_with("secure") {
            Ok(AddressAnswer::Secure {
                owner: name.clone(),
                addrs: vec!["192.0.2.7".parse().unwrap()],
                usable_until: now + Duration::from_secs(300),
            })
        } else {
            Err(LookupError::Bogus("forged".into()))
        }
    }

    async fn lookup(&self, target: &LookupTarget) -> Result<Answer, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        let now = UNIX_EPOCH + Duration::from_secs(self.now.load(Ordering::SeqCst));
        let owner = target.query_name();
        let label = owner.to_string();
        assert!(!label.starts_with("panic"), "the lookup task dies");
        if self.down.load(Ordering::SeqCst) {
            return Err(LookupError::Failure(Failure::Network("down".into())));
        }
        if label.starts_with("secure") {
            let signature = Signature {
                signer: Name::root(),
                key_tag: 1,
                algorithm: "ED25519".into(),
                inception: now,
                expiration: now + Duration::from_secs(10_000),
            };
            let usable_until = now + Duration::from_secs(300);
            Ok(Answer::Secure(SecureKeys {
                owner,
                records: vec![],
                signature,
                ttl: 300,
                usable_until,
            }))
        } else if label.starts_with("absent") {
            let valid_until = now + Duration::from_secs(600);
            Ok(Answer::Absent(Absence {
                owner,
                nxdomain: true,
                denial: Denial::Nsec,
                valid_until,
            }))
        } else if label.starts_with("bogus") {
            Err(LookupError::Bogus("tampered".into()))
        } else {
            Err(LookupError::Failure(Failure::Network("down".into())))
        }
    }
}

struct Bed {
    cache: KeyCache<Fake>,
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    now: Arc<AtomicU64>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

fn bed(config: CacheConfig) -> Bed {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let now = Arc::new(AtomicU64::new(1_800_000_000));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fake = Fake {
        calls: calls.clone(),
        gate: gate.clone(),
        now: now.clone(),
        down: down.clone(),
    };
    let clock_now = now.clone();
    let clock =
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(clock_now.load(Ordering::SeqCst)));
    let cache = KeyCache::with_clock(fake, config, clock);
    Bed {
        cache,
        calls,
        gate,
        now,
        down,
    }
}

fn target(s: &str) -> LookupTarget {
    s.parse().unwrap()
}

impl Bed {
    fn advance(&self, secs: u64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }

    async fn get_now(&self, name: &str) -> super::Outcome {
        self.gate.add_permits(1);
        self.cache.get(&target(name)).await
    }
}

#[tokio::test]
async fn many_requests_for_one_host_make_one_lookup() {
    let bed = bed(CacheConfig::default());
    let waiters: Vec<_> = (0..100)
        .map(|_| {
            let cache = bed.cache.clone();
            tokio::spawn(async move { cache.get(&target("secure.example.")).await })
        })
        .collect();
    while bed.cache.snapshot().counters.coalesced + bed.cache.snapshot().counters.misses < 100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        bed.cache.snapshot().in_flight,
        vec!["secure.example.".to_owned()]
    );
    bed.gate.add_permits(1);
    let outcomes: Vec<_> = futures_util::future::join_all(waiters).await;
    assert_eq!(bed.calls.load(Ordering::SeqCst), 1);
    let first = outcomes[0].as_ref().unwrap();
    assert!(outcomes
        .iter()
        .all(|o| Arc::ptr_eq(o.as_ref().unwrap(), first)));
    let counters = bed.cache.snapshot().counters;
    assert_eq!((counters.misses, counters.coalesced), (1, 99));
}

#[tokio::test]
async fn lifetimes_per_outcome() {
    let bed = bed(CacheConfig::default());
    for name in [
        "secure.example.",
        "absent.example.",
        "bogus.example.",
        "down.example.",
    ] {
        bed.get_now(name).await;
    }
    assert_eq!(bed.calls.load(Ordering::SeqCst), 4);
    let again = |bed: &Bed| {
        let cache = bed.cache.clone();
        async move {
            for name in [
                "secure.example.",
                "absent.example.",
                "bogus.example.",
                "down.example.",
            ] {
                let _ =
                    tokio::time::timeout(Duration::from_millis(50), cache.get(&target(name))).await;
            }
        }
    };
    // 4 s later: all cached.
    bed.advance(4);
    again(&bed).await;
    assert_eq!(bed.calls.load(Ordering::SeqCst), 4);
    // 6 s: the failure (5 s) is looked up again.
    bed.advance(2);
    bed.gate.add_permits(10);
    again(&bed).await;
    assert_eq!(bed.calls.load(Ordering::SeqCst), 5);
    // 61 s: bogus (60 s) too; 301 s: the secure answer (its 300 s); 601 s: the absence.
    bed.advance(55);
    again(&bed).await;
    assert_eq!(bed.calls.load(Ordering::SeqCst), 7);
    bed.advance(240);
    again(&bed).await;
    assert_eq!(bed.calls.load(Ordering::SeqCst), 10);
    bed.advance(300);
    again(&bed).await;
    assert_eq!(bed.calls.load(Ordering::SeqCst), 14);
}

#[tokio::test]
async fn negative_lifetime_is_capped() {
    let config = CacheConfig {
        max_negative: Duration::from_secs(30),
        ..CacheConfig::default()
    };
    let bed = bed(config);
    bed.get_now("absent.example.").await;
    let snap = bed.cache.snapshot();
    assert_eq!(snap.entries[0].expires - snap.entries[0].fetched, 30);
    assert_eq!(snap.entries[0].state, "absent");
}

#[tokio::test]
async fn bounded_entries_evict_the_soonest_to_expire() {
    let config = CacheConfig {
        max_entries: 3,
        ..CacheConfig::default()
    };
    let bed = bed(config);
    bed.get_now("down.example.").await; // expires in 5 s
    for name in ["secure1.example.", "secure2.example.", "secure3.example."] {
        bed.get_now(name).await;
    }
    let snap = bed.cache.snapshot();
    assert_eq!(snap.entries.len(), 3);
    assert!(snap.entries.iter().all(|e| e.state == "secure"));
    assert_eq!(snap.counters.evictions, 1);
}

#[tokio::test]
async fn too_many_in_flight_is_shed() {
    let config = CacheConfig {
        max_in_flight: 1,
        ..CacheConfig::default()
    };
    let bed = bed(config);
    let cache = bed.cache.clone();
    let held = tokio::spawn(async move { cache.get(&target("secure.example.")).await });
    while bed.cache.snapshot().in_flight.is_empty() {
        tokio::task::yield_now().await;
    }
    let shed = bed.cache.get(&target("secure2.example.")).await;
    assert!(matches!(
        shed.as_ref(),
        Err(LookupError::Failure(Failure::Overloaded))
    ));
    bed.gate.add_permits(1);
    assert!(held.await.unwrap().is_ok());
    assert_eq!(bed.cache.snapshot().counters.shed, 1);
    // Shedding is not cached.
    assert!(bed.get_now("secure2.example.").await.is_ok());
}

#[tokio::test]
async fn snapshot_serializes_for_the_status_socket() {
    let bed = bed(CacheConfig::default());
    bed.get_now("192.0.2.7").await;
    bed.get_now("bogus.example.").await;
    let json = serde_json::to_value(bed.cache.snapshot()).unwrap();
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .any(|e| e["target"] == "192.0.2.7" && e["query"] == "7.2.0.192.in-addr.arpa."));
    assert!(entries
        .iter()
        .any(|e| e["state"] == "bogus" && e["detail"] == "tampered"));
    bed.cache.invalidate(&target("bogus.example."));
    assert_eq!(bed.cache.snapshot().entries.len(), 1);
    let _ = SystemTime::now();
}

#[tokio::test]
async fn addresses_have_their_own_table_and_coalesce() {
    let bed = bed(CacheConfig::default());
    let name = Name::from_ascii("secure.example.").unwrap();
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            let (cache, name) = (bed.cache.clone(), name.clone());
            tokio::spawn(async move { cache.get_addresses(&name).await })
        })
        .collect();
    while bed.cache.address_snapshot().in_flight.is_empty() {
        tokio::task::yield_now().await;
    }
    bed.gate.add_permits(1);
    for waiter in waiters {
        let outcome = waiter.await.unwrap();
        assert!(outcome
            .as_ref()
            .as_ref()
            .unwrap()
            .proves("192.0.2.7".parse().unwrap()));
    }
    assert_eq!(bed.calls.load(Ordering::SeqCst), 1);
    // The IPSECKEY table is untouched; the same name there is a separate lookup.
    assert!(bed.cache.snapshot().entries.is_empty());
    bed.get_now("secure.example.").await;
    assert_eq!(bed.calls.load(Ordering::SeqCst), 2);
    let snap = bed.cache.address_snapshot();
    assert_eq!(snap.entries.len(), 1);
    assert_eq!(
        (snap.entries[0].state, snap.entries[0].usable_keys),
        ("secure", 1)
    );
    assert_eq!(snap.entries[0].detail, "192.0.2.7");
    assert_eq!(snap.entries[0].expires - snap.entries[0].fetched, 300);
    // Bogus addresses are cached like bogus keys (60 s), and invalidation works per table.
    let forged = Name::from_ascii("forged.example.").unwrap();
    bed.gate.add_permits(1);
    assert!(matches!(
        bed.cache.get_addresses(&forged).await.as_ref(),
        Err(LookupError::Bogus(_))
    ));
    assert_eq!(bed.cache.address_snapshot().entries.len(), 2);
    bed.cache.invalidate_addresses(&forged);
    assert_eq!(bed.cache.address_snapshot().entries.len(), 1);
}

/// Starts a lookup of `name` on behalf of `priority` that waits for the gate.
fn hold(bed: &Bed, name: &str, priority: Priority) -> tokio::task::JoinHandle<super::Outcome> {
    let cache = bed.cache.clone();
    let t = target(name);
    tokio::spawn(async move { cache.get_as(&t, priority).await })
}

async fn in_flight(bed: &Bed, n: usize) {
    for _ in 0..100_000 {
        if bed.cache.snapshot().in_flight.len() >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("fewer than {n} lookups in flight");
}

fn overloaded(outcome: &super::Outcome) -> bool {
    matches!(
        outcome.as_ref(),
        Err(LookupError::Failure(Failure::Overloaded))
    )
}

fn peer(last: u8) -> Priority {
    Priority::Peer(std::net::IpAddr::from([192, 0, 2, last]))
}

/// Peers fill their share of the in-flight slots (here 6 of 8) and no more; the host's lookups
/// still start, up to the total.
#[tokio::test]
async fn peers_cannot_take_the_hosts_reserved_share() {
    let config = CacheConfig {
        max_in_flight: 8,
        host_reserved: 2,
        max_per_peer: 8,
        ..CacheConfig::default()
    };
    let bed = bed(config);
    let flood: Vec<_> = (0..6)
        .map(|i| hold(&bed, &format!("secure-peer{i}.example."), peer(i)))
        .collect();
    in_flight(&bed, 6).await;
    // The peers' share is used up: the seventh peer lookup is shed at once.
    assert!(overloaded(
        &bed.cache
            .get_as(&target("secure-more.example."), peer(99))
            .await
    ));
    // The host's two reserved slots are still there.
    let host: Vec<_> = (0..2)
        .map(|i| hold(&bed, &format!("secure-host{i}.example."), Priority::Host))
        .collect();
    in_flight(&bed, 8).await;
    // Now everything is taken, for the host too.
    assert!(overloaded(
        &bed.cache.get(&target("secure-late.example.")).await
    ));
    bed.gate.add_permits(8);
    for lookup in host.into_iter().chain(flood) {
        assert!(lookup.await.unwrap().is_ok());
    }
    let c = bed.cache.snapshot().counters;
    assert_eq!((c.misses, c.shed, c.shed_peers), (8, 2, 1));
    // Slots come back when lookups end: a peer may start again.
    bed.gate.add_permits(1);
    assert!(bed
        .cache
        .get_as(&target("secure-again.example."), peer(1))
        .await
        .is_ok());
}

/// One source gets `max_per_peer` lookups at once; another source is not affected; joining a
/// lookup already in flight costs nothing and is always allowed.
#[tokio::test]
async fn one_peer_is_limited_to_its_own_share() {
    let config = CacheConfig {
        max_per_peer: 2,
        ..CacheConfig::default()
    };
    let bed = bed(config);
    let mine: Vec<_> = (0..2)
        .map(|i| hold(&bed, &format!("secure-a{i}.example."), peer(1)))
        .collect();
    in_flight(&bed, 2).await;
    assert!(overloaded(
        &bed.cache
            .get_as(&target("secure-a9.example."), peer(1))
            .await
    ));
    let other = hold(&bed, "secure-b.example.", peer(2));
    let joined = hold(&bed, "secure-a0.example.", peer(1));
    in_flight(&bed, 3).await;
    while bed.cache.snapshot().counters.coalesced < 1 {
        tokio::task::yield_now().await;
    }
    bed.gate.add_permits(3);
    for lookup in mine.into_iter().chain([other, joined]) {
        assert!(lookup.await.unwrap().is_ok());
    }
    assert_eq!(bed.calls.load(Ordering::SeqCst), 3);
    assert_eq!(bed.cache.keys.state.lock().unwrap().admission_sources(), 0);
}

/// A lookup task that dies gives its slot back: the next lookup is not shed, and waiters get a
/// failure rather than hanging.
#[tokio::test]
async fn a_lookup_task_that_dies_gives_its_slot_back() {
    let config = CacheConfig {
        max_in_flight: 1,
        ..CacheConfig::default()
    };
    let bed = bed(config);
    let died = bed.get_now("panic.example.").await;
    assert!(matches!(
        died.as_ref(),
        Err(LookupError::Failure(Failure::Config(_)))
    ));
    assert!(bed.cache.snapshot().in_flight.is_empty());
    assert!(bed.get_now("secure.example.").await.is_ok());
}

/// A verdict in use is looked up again in its last tenth of life: the caller gets the cached one
/// at once, and the refreshed one replaces it; a refresh that fails keeps the verdict.
#[tokio::test]
async fn entries_in_use_are_refreshed_before_they_expire() {
    let bed = bed(CacheConfig::default());
    bed.get_now("secure.example.").await; // secure for 300 s
    bed.advance(200);
    assert!(bed.cache.get(&target("secure.example.")).await.is_ok());
    assert_eq!(bed.calls.load(Ordering::SeqCst), 1, "not due yet");
    bed.advance(75); // 25 s left of 300: due
    let served = tokio::time::timeout(
        Duration::from_millis(100),
        bed.cache.get(&target("secure.example.")),
    )
    .await
    .expect("served from the cache, without waiting for the refresh");
    assert!(served.is_ok());
    in_flight(&bed, 1).await;
    while bed.calls.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    bed.gate.add_permits(1);
    while !bed.cache.snapshot().in_flight.is_empty() {
        tokio::task::yield_now().await;
    }
    let entry = bed.cache.snapshot().entries[0].clone();
    assert_eq!(entry.expires - entry.fetched, 300);
    assert_eq!(bed.cache.snapshot().counters.refreshes, 1);
    // 280 s after the refresh the entry is due again; this time the lookup fails: the verdict
    // stays until it expires, and the failure is not cached over it.
    bed.advance(280);
    bed.down.store(true, Ordering::SeqCst);
    assert!(bed.cache.get(&target("secure.example.")).await.is_ok());
    assert_eq!(bed.cache.snapshot().counters.refreshes, 2);
    bed.gate.add_permits(1);
    while !bed.cache.snapshot().in_flight.is_empty() {
        tokio::task::yield_now().await;
    }
    assert_eq!(bed.calls.load(Ordering::SeqCst), 3);
    let after = bed.cache.snapshot().entries[0].clone();
    assert_eq!((after.state, after.expires), ("secure", entry.expires));
    assert!(bed.cache.get(&target("secure.example.")).await.is_ok());
    // Once it expires, the failure is what there is.
    bed.advance(20);
    bed.gate.add_permits(1);
    assert!(bed.cache.get(&target("secure.example.")).await.is_err());
}
