//! The cache's priority classes against the real signed fixture: a flood of lookups on peers'
//! behalf for names in a zone that never answers (`dead.example.`, delegated to an address whose
//! packets are dropped) leaves the host's own lookups their reserved share, so they still succeed.

// Test code: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;
use std::time::Duration;

use oe_dns::{
    Answer, CacheConfig, Failure, KeyCache, LookupError, LookupTarget, Priority, Validator,
    ValidatorConfig,
};
use oe_integration::dns::{names, DnsFixture};
use oe_integration::netns::Netns;

/// Lookups on peers' behalf: more than the peers' share, from 64 source addresses.
const FLOOD: usize = 400;

fn target(name: &str) -> LookupTarget {
    name.parse().unwrap()
}

/// Floods `cache` with peer lookups under `dead.example.`, then looks up keys and addresses the
/// host needs; returns the host's outcomes.
async fn host_lookups_during_a_peer_flood(cache: &KeyCache<Validator>) -> Vec<String> {
    let mut flood = Vec::new();
    for i in 0..FLOOD {
        let cache = cache.clone();
        let source = IpAddr::from([198, 51, 100, u8::try_from(i % 64).unwrap()]);
        let name = target(&format!("peer{i}.{}", names::DEAD_ZONE));
        flood.push(tokio::spawn(async move {
            cache.get_as(&name, Priority::Peer(source)).await
        }));
    }
    // Every flood request has been admitted or shed.
    while {
        let c = cache.snapshot().counters;
        c.misses + c.shed < u64::try_from(FLOOD).unwrap()
    } {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut outcomes = Vec::new();
    for name in [names::ED_HOST, names::RSA_HOST, "192.0.2.20"] {
        let outcome = tokio::time::timeout(Duration::from_secs(8), cache.get(&target(name)))
            .await
            .expect("the host's lookup must not wait for the flood");
        outcomes.push(match outcome.as_ref() {
            Ok(Answer::Secure(_)) => "secure".to_owned(),
            other => format!("{other:?}"),
        });
    }
    for lookup in flood {
        lookup.abort();
    }
    outcomes
}

fn run(config: CacheConfig) -> (Vec<String>, oe_dns::Counters) {
    let ns = Netns::new("prio");
    let fixture = DnsFixture::start_in(&ns);
    fixture.silence_dead_zone(&ns);
    let validator = ValidatorConfig {
        lookup_timeout: Duration::from_secs(10),
        ..fixture.validator_config()
    };
    ns.run(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cache = KeyCache::new(Validator::new(validator).unwrap(), config);
            let outcomes = host_lookups_during_a_peer_flood(&cache).await;
            (outcomes, cache.snapshot().counters)
        })
    })
}

/// With the default classes: the peers get their share (192 of 256 slots), the rest of the flood
/// is shed, and the host's lookups succeed.
#[test]
fn a_peer_flood_into_a_dead_zone_leaves_the_hosts_lookups_their_share() {
    let (outcomes, counters) = run(CacheConfig::default());
    println!("{counters:?}");
    assert_eq!(outcomes, vec!["secure"; 3], "{counters:?}");
    let defaults = CacheConfig::default();
    let share = defaults.max_in_flight - defaults.host_reserved;
    assert_eq!(
        counters.shed_peers,
        u64::try_from(FLOOD - share).unwrap(),
        "{counters:?}"
    );
}

/// The same flood without a reserved share (every slot open to peers, as before the classes
/// existed): the host's lookups are shed. This is what the reserve prevents.
#[test]
fn without_a_reserved_share_the_flood_starves_the_host() {
    let config = CacheConfig {
        host_reserved: 0,
        max_per_peer: FLOOD,
        ..CacheConfig::default()
    };
    let (outcomes, counters) = run(config);
    let overloaded = format!(
        "{:?}",
        Err::<(), _>(LookupError::Failure(Failure::Overloaded))
    );
    assert!(
        outcomes.iter().all(|o| *o == overloaded),
        "{outcomes:?} {counters:?}"
    );
}
