//! Validated address lookups (A and AAAA, for dns-match-id and the DNS trigger's binding) against
//! the real signed DNS fixture: secure, insecure, bogus and absent, directly and through the cache.

// Test helpers outside #[test] functions: failing loudly is their job.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;
use std::time::Duration;

use oe_dns::{
    current_thread_runtime, AddressAnswer, CacheConfig, Denial, KeyCache, LookupError, Name,
    Validator, ValidatorConfig,
};
use oe_integration::dns::{names, DnsFixture};
use oe_integration::netns::Netns;

struct Bed {
    ns: Netns,
    fixture: DnsFixture,
}

fn bed() -> Bed {
    let ns = Netns::new("dnsaddr");
    let fixture = DnsFixture::start_in(&ns);
    Bed { ns, fixture }
}

impl Bed {
    fn config(&self) -> ValidatorConfig {
        ValidatorConfig {
            lookup_timeout: Duration::from_secs(10),
            ..self.fixture.validator_config()
        }
    }

    /// Looks up every name with one validator (as the agent does), in order.
    fn lookups(&self, list: &[&str]) -> Vec<Result<AddressAnswer, LookupError>> {
        let config = self.config();
        let list: Vec<Name> = list.iter().map(|n| Name::from_ascii(n).unwrap()).collect();
        self.ns.run(move || {
            current_thread_runtime().unwrap().block_on(async move {
                let validator = Validator::new(config).unwrap();
                let mut out = Vec::new();
                for name in &list {
                    out.push(validator.lookup_addresses(name).await);
                }
                out
            })
        })
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn address_verdicts_against_the_signed_tree() {
    let bed = bed();
    let cases = [
        names::ED_HOST,
        names::RSA_HOST,
        names::NSEC3_HOST,
        names::INSECURE_HOST,
        names::EXPIRED_HOST,
        names::NSEC_NXDOMAIN,
        names::NSEC3_NXDOMAIN,
        "gw.ed.example.",
    ];
    let out = bed.lookups(&cases);
    for (name, outcome) in cases.iter().zip(&out) {
        println!("{name}: {outcome:?}");
    }
    let now = std::time::SystemTime::now();

    // Secure, both families, in NSEC zones signed with Ed25519 and RSA.
    let ed = out[0].as_ref().unwrap();
    assert_eq!(ed.secure_addrs(), ips(&["192.0.2.30", "2001:db8::30"]));
    assert!(ed.proves("192.0.2.30".parse().unwrap()));
    assert!(!ed.proves("192.0.2.31".parse().unwrap()));
    assert!(ed.valid_until() > now && ed.valid_until() <= now + Duration::from_secs(301));
    assert_eq!(
        out[1].as_ref().unwrap().secure_addrs(),
        ips(&["192.0.2.10", "2001:db8::10"])
    );
    // NSEC3 zone: A present, AAAA proven absent by NSEC3: still a complete, secure set.
    assert_eq!(
        out[2].as_ref().unwrap().secure_addrs(),
        ips(&["192.0.2.40"])
    );

    // Provably unsigned: the addresses are there, but prove nothing.
    match &out[3] {
        Ok(a @ AddressAnswer::Insecure { addrs, .. }) => {
            assert_eq!(addrs, &ips(&["192.0.2.50"]));
            assert!(!a.proves("192.0.2.50".parse().unwrap()));
        }
        other => panic!("insecure: {other:?}"),
    }

    // Expired signatures: bogus, an error.
    assert!(
        matches!(&out[4], Err(LookupError::Bogus(_))),
        "{:?}",
        out[4]
    );

    // Names that do not exist: absent, proven by NSEC and by NSEC3.
    for (i, proof) in [(5, Denial::Nsec), (6, Denial::Nsec3)] {
        match &out[i] {
            Ok(AddressAnswer::Absent {
                nxdomain: true,
                proof: p,
                ..
            }) => assert_eq!(*p, proof),
            other => panic!("{}: {other:?}", cases[i]),
        }
    }
    // A name with records but no address (IPSECKEY only): NODATA for both, proven.
    assert!(matches!(
        &out[7],
        Ok(AddressAnswer::Absent {
            nxdomain: false,
            proof: Denial::Nsec,
            ..
        })
    ));
}

/// A burst of address requests for one name (every IKE_AUTH of a peer with an FQDN identity, or an
/// application's A and AAAA queries) makes one validated lookup; bogus outcomes are cached too.
#[test]
fn cache_coalesces_address_lookups() {
    let bed = bed();
    let config = bed.config();
    let (outcomes, snapshot, bogus) = bed.ns.run(move || {
        current_thread_runtime().unwrap().block_on(async move {
            let cache = KeyCache::new(Validator::new(config).unwrap(), CacheConfig::default());
            let name = Name::from_ascii(names::ECDSA_HOST).unwrap();
            let burst: Vec<_> = (0..20)
                .map(|_| {
                    let (cache, name) = (cache.clone(), name.clone());
                    std::thread::spawn(move || {
                        let rt = current_thread_runtime().unwrap();
                        rt.block_on(async move { cache.get_addresses(&name).await })
                    })
                })
                .collect();
            let outcomes: Vec<_> = burst.into_iter().map(|t| t.join().unwrap()).collect();
            let expired = Name::from_ascii(names::EXPIRED_HOST).unwrap();
            let bogus = cache.get_addresses(&expired).await;
            (outcomes, cache.address_snapshot(), bogus)
        })
    });
    for outcome in &outcomes {
        let answer = outcome.as_ref().as_ref().unwrap();
        assert_eq!(answer.secure_addrs(), ips(&["192.0.2.20", "2001:db8::20"]));
    }
    assert_eq!(snapshot.counters.misses, 2, "{snapshot:?}");
    assert_eq!(
        snapshot.counters.coalesced + snapshot.counters.hits,
        19,
        "{snapshot:?}"
    );
    assert!(matches!(bogus.as_ref(), Err(LookupError::Bogus(_))));
    let states: Vec<&str> = snapshot.entries.iter().map(|e| e.state).collect();
    assert!(
        states.contains(&"secure") && states.contains(&"bogus"),
        "{snapshot:?}"
    );
}
