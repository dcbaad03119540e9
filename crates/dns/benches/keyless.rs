//! What the agent's question "is there a key for this address?" costs for keyless hosts (issue
//! 14 item 3), wall time per question, against the signed DNS fixture on loopback:
//!
//! - `keyless/cold_insecure`, `keyless/cold_nsec`: a fresh cache and validator each time (nothing
//!   known): the whole validated lookup of an address under the insecure delegation
//!   `100.51.198.in-addr.arpa.`, and of an address the NSEC-signed `2.0.192.in-addr.arpa.`
//!   proves absent (NXDOMAIN).
//! - `keyless/warm`: the same address again (its outcome cached).
//! - `keyless/covered_insecure`, `keyless/covered_nsec`: a different address each time, none of
//!   them looked up before, once one lookup in the zone has cached the covering proof (the
//!   insecure cut; the NSEC range and the wildcard denial): `KeyCache::get` answers from it.
//! - `keyless/proven_sync`: the synchronous `KeyCache::proven` the policy core calls on every
//!   ACQUIRE, for such an address.
//! - `keyless/uncovered_nsec3`: a different name each time in the NSEC3-signed `nsec3.example.`
//!   (NXDOMAIN), chain of trust cached: NSEC3 ranges are not used aggressively, so this is a
//!   validated lookup each time: what every new keyless name cost before covering proofs.
//!
//! Goal: at most 1 ms median added once the covering proof is cached. Needs root (namespace and
//! fixture); without root it prints a note and measures nothing.
//! Run: `cargo bench -p oe-dns --bench keyless`.

// Benchmark code: a failure here should stop the run loudly; no attacker-controlled input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use oe_dns::{
    current_thread_runtime, Answer, CacheConfig, KeyCache, LookupTarget, Validator, ValidatorConfig,
};

/// Addresses in 198.51.100.0/24 (the unsigned reverse zone): any.
fn insecure(i: usize) -> LookupTarget {
    let last = u8::try_from(10 + i % 240).unwrap();
    LookupTarget::Reverse(IpAddr::V4(Ipv4Addr::new(198, 51, 100, last)))
}

/// Addresses in 192.0.2.0/24 whose reverse label sorts after "31" in canonical order (4-9 and
/// 32-99): the range the zone's last NSEC (31 -> apex) covers.
fn nsec_covered(i: usize) -> LookupTarget {
    let labels: Vec<u8> = (4..=9).chain(32..=99).collect();
    let last = labels[i % labels.len()];
    LookupTarget::Reverse(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

fn no_key(outcome: &oe_dns::Outcome) -> bool {
    matches!(
        outcome.as_ref(),
        Ok(Answer::Absent(_) | Answer::Insecure(_))
    )
}

fn cache(config: &ValidatorConfig) -> KeyCache<Validator> {
    KeyCache::new(
        Validator::new(config.clone()).unwrap(),
        CacheConfig::default(),
    )
}

fn bench(c: &mut Criterion, config: &ValidatorConfig) {
    let rt = current_thread_runtime().unwrap();
    let mut g = c.benchmark_group("keyless");
    g.sample_size(30).measurement_time(Duration::from_secs(6));
    for (id, target) in [
        ("cold_insecure", insecure(0)),
        ("cold_nsec", nsec_covered(0)),
    ] {
        g.bench_function(id, |b| {
            b.iter(|| {
                let outcome = rt.block_on(async { cache(config).get(&target).await });
                assert!(no_key(&outcome), "{outcome:?}");
            });
        });
    }
    let warm = rt.block_on(async { cache(config) });
    // Learn the covering proofs: one lookup per zone, then wait for the cut's background proof.
    for target in [insecure(0), nsec_covered(0)] {
        assert!(no_key(&rt.block_on(warm.get(&target))));
    }
    rt.block_on(async {
        while warm.proven(&insecure(1)).is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    g.sample_size(100).measurement_time(Duration::from_secs(3));
    g.bench_function("warm", |b| {
        b.iter(|| rt.block_on(warm.get(black_box(&insecure(0)))))
    });
    for (id, pick) in [
        ("covered_insecure", insecure as fn(usize) -> LookupTarget),
        ("covered_nsec", nsec_covered),
    ] {
        let mut i = 1;
        g.bench_function(id, |b| {
            b.iter(|| {
                i += 1;
                let outcome = rt.block_on(warm.get(&pick(i)));
                assert!(no_key(&outcome), "{outcome:?}");
            });
        });
    }
    let mut i = 0;
    g.bench_function("uncovered_nsec3", |b| {
        b.iter(|| {
            i += 1;
            let name: LookupTarget = format!("n{i}.nsec3.example.").parse().unwrap();
            let outcome = rt.block_on(warm.get(&name));
            assert!(no_key(&outcome), "{outcome:?}");
        });
    });
    let mut i = 1;
    g.bench_function("proven_sync", |b| {
        b.iter(|| {
            i += 1;
            assert!(warm.proven(&insecure(i)).is_some());
        });
    });
    g.finish();
    let counters = warm.snapshot().counters;
    println!("\ncache after the covered runs: {counters:?}");
}

/// Median of a finished benchmark, from criterion's estimates.
fn median_ns(id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let text =
        std::fs::read_to_string(dir.join("criterion").join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn print_medians() {
    println!("\nmedian wall time per question (goal: at most 1 ms once the proof is cached):");
    for id in [
        "cold_insecure",
        "cold_nsec",
        "warm",
        "covered_insecure",
        "covered_nsec",
        "proven_sync",
        "uncovered_nsec3",
    ] {
        if let Some(v) = median_ns(&format!("keyless/{id}")) {
            println!("  keyless/{id}: {:.1} us", v / 1e3);
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if nix::unistd::geteuid().is_root() {
        let ns = oe_integration::netns::Netns::new("keyless");
        let fixture = oe_integration::dns::DnsFixture::start_in(&ns);
        let config = fixture.validator_config();
        // Criterion is not Send: move this thread into the fixture's namespace instead.
        let file = std::fs::File::open(format!("/run/netns/{}", ns.name())).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        bench(&mut c, &config);
    } else {
        eprintln!("keyless benches skipped: they need root (network namespace and DNS fixture)");
    }
    c.final_summary();
    print_medians();
}
