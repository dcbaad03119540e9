//! Covering proofs against the real signed fixture: once one keyless address of a zone has been
//! looked up, the next ones are answered without a lookup: under an insecure delegation
//! (`100.51.198.in-addr.arpa.` has no DS) by the cached proof of the cut, in the NSEC-signed
//! reverse zone (`2.0.192.in-addr.arpa.`) by the cached NSEC records (RFC 8198). Never for what
//! no proof covers, never for bogus zones, and the verdicts match what a lookup finds.

// Test code: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use oe_dns::{
    Answer, CacheConfig, KeyCache, LookupError, LookupTarget, Validator, ValidatorConfig,
};
use oe_integration::dns::{names, DnsFixture};
use oe_integration::netns::Netns;

fn target(name: &str) -> LookupTarget {
    name.parse().unwrap()
}

/// The covering verdict on `name`, waiting up to 5 s for a background proof to land.
async fn proven_soon(cache: &KeyCache<Validator>, name: &str) -> Option<oe_dns::Outcome> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(outcome) = cache.proven(&target(name)) {
            return Some(outcome);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn state(outcome: &oe_dns::Outcome) -> String {
    match outcome.as_ref() {
        Ok(Answer::Secure(_)) => "secure".into(),
        Ok(Answer::Insecure(u)) => format!("insecure ({} records)", u.records.len()),
        Ok(Answer::Absent(a)) => format!(
            "absent ({}, {:?})",
            if a.nxdomain { "nxdomain" } else { "nodata" },
            a.denial
        ),
        Err(LookupError::Bogus(_)) => "bogus".into(),
        Err(e) => format!("error {e}"),
    }
}

#[test]
fn keyless_addresses_are_proven_without_a_lookup_once_a_covering_proof_is_cached() {
    let ns = Netns::new("cover");
    let fixture = DnsFixture::start_in(&ns);
    let config = ValidatorConfig {
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
            let cache = KeyCache::new(
                Validator::new(config.clone()).unwrap(),
                CacheConfig::default(),
            );
            // A second validator that learns nothing from the first: what a lookup finds.
            let fresh = Validator::new(config).unwrap();
            // Nothing is known before the first lookup.
            for name in ["198.51.100.8", "192.0.2.78"] {
                assert!(cache.proven(&target(name)).is_none(), "{name}");
            }

            // Under the insecure delegation: the first address is looked up (NXDOMAIN in an
            // unsigned zone); the cut is then proven, and covers every other address.
            let first = cache.get(&target("198.51.100.7")).await;
            assert_eq!(state(&first), "absent (nxdomain, Unsigned)");
            let next = proven_soon(&cache, "198.51.100.8").await.expect("the cut");
            assert_eq!(state(&next), "insecure (0 records)");
            // A lookup finds no key either (an unsigned NXDOMAIN).
            let looked_up = fresh.lookup(&target("198.51.100.8")).await;
            assert_eq!(
                state(&std::sync::Arc::new(looked_up)),
                "absent (nxdomain, Unsigned)"
            );
            // An address with a PTR, the zone's apex: covered too.
            for name in ["198.51.100.1", names::REV_V4_INSECURE_ZONE] {
                let o = cache.proven(&target(name)).expect(name);
                assert_eq!(state(&o), "insecure (0 records)", "{name}");
            }

            // In the NSEC-signed reverse zone: 192.0.2.77 is looked up (NXDOMAIN, with the NSEC
            // covering it and the one denying the wildcard); .78, .99 and .4 sort after .31 in
            // canonical order (labels compare as octet strings), in the same range.
            let first = cache.get(&target("192.0.2.77")).await;
            assert_eq!(state(&first), "absent (nxdomain, Nsec)");
            for name in ["192.0.2.78", "192.0.2.99", "192.0.2.4"] {
                let o = cache.proven(&target(name)).expect(name);
                assert_eq!(state(&o), "absent (nxdomain, Nsec)", "{name}");
                // A lookup finds the same.
                let looked_up = fresh.lookup(&target(name)).await;
                assert_eq!(state(&std::sync::Arc::new(looked_up)), state(&o), "{name}");
            }
            // 192.0.2.15 and .200 lie between 10 and 20 and between 20 and 30, ranges no
            // answer has shown: not covered.
            for name in ["192.0.2.15", "192.0.2.200"] {
                assert!(cache.proven(&target(name)).is_none(), "{name}");
            }
            // 192.0.2.31 has a PTR and no key: its NODATA NSEC is cached by its own lookup.
            let nodata = cache.get(&target("192.0.2.31")).await;
            assert_eq!(state(&nodata), "absent (nodata, Nsec)");

            // Bogus zones give no covering proof: a bogus outcome stays bogus (cached as such),
            // and other names in the zone are not proven absent or insecure.
            let bogus = cache.get(&target(names::EXPIRED_HOST)).await;
            assert_eq!(state(&bogus), "bogus");
            assert_eq!(
                state(&cache.proven(&target(names::EXPIRED_HOST)).unwrap()),
                "bogus"
            );
            assert!(cache.proven(&target("other.expired.example.")).is_none());
            let tampered = cache.get(&target(names::TAMPERED_HOST)).await;
            assert_eq!(state(&tampered), "bogus");

            let c = cache.snapshot().counters;
            assert!(c.covered >= 5, "{c:?}");
        });
    });
}
