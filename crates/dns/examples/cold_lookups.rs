//! Cold validated lookups against the signed DNS fixture, for counting instructions with callgrind
//! (repeatable on a shared machine, unlike time): each lookup uses a fresh validator, so the whole
//! chain of trust is fetched and every signature on it verified.
//!
//! ```text
//! cargo build --profile bench -p oe-dns --example cold_lookups
//! valgrind --tool=callgrind --toggle-collect='cold_lookups::measured' \
//!     --toggle-collect='cold_lookups::hits' \
//!     target/release/examples/cold_lookups host.ed.example. 20
//! callgrind_annotate --inclusive=yes callgrind.out.PID | head -60
//! ```
//! Compare the inclusive count of `measured` with that of the signature verifications inside it
//! (`ring::ec::suite_b::ecdsa::verification::*::verify`, `ring::ec::curve25519::ed25519::*::verify`,
//! `ring::rsa::*::verify`). With a third argument `cached`, `hits` runs that many cache hits
//! in `KeyCache` instead. Needs root (network namespace and fixture).

// A measurement tool: failing loudly is its job; no attacker-controlled input.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use oe_dns::{
    current_thread_runtime, Answer, CacheConfig, KeyCache, LookupTarget, Validator, ValidatorConfig,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "host.ed.example.".into());
    let count: usize = args.next().map_or(20, |n| n.parse().unwrap());
    let cached = args.next().is_some_and(|a| a == "cached");
    let target: LookupTarget = name.parse().unwrap();
    let ns = oe_integration::netns::Netns::new("coldlk");
    let fixture = oe_integration::dns::DnsFixture::start_in(&ns);
    let config = fixture.validator_config();
    let file = std::fs::File::open(format!("/run/netns/{}", ns.name())).unwrap();
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let rt = current_thread_runtime().unwrap();
    // Warm the resolver's cache and the process's one-time set-up outside the measurement.
    lookup(&rt, &config, &target);
    if cached {
        let cache = rt.block_on(async {
            KeyCache::new(Validator::new(config).unwrap(), CacheConfig::default())
        });
        assert!(rt.block_on(cache.get(&target)).is_ok());
        hits(&rt, &cache, &target, count);
        println!("{count} cache hits for {name}");
        return;
    }
    let (user, system) = cpu_ticks();
    let wall = std::time::Instant::now();
    measured(&rt, &config, &target, count);
    let wall = wall.elapsed();
    let (user2, system2) = cpu_ticks();
    let per = |ticks: u64| ticks as f64 * 10_000.0 / count as f64;
    println!(
        "{count} cold lookups of {name}: per lookup {:.0} us user, {:.0} us system (this thread), {:.0} us wall",
        per(user2 - user),
        per(system2 - system),
        wall.as_secs_f64() * 1e6 / count as f64
    );
}

/// User and system CPU time of this thread in clock ticks (1/100 s): /proc/thread-self/stat
/// fields 14 and 15 (proc(5)).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = rest.split(' ').map(|f| f.parse().unwrap_or(0)).collect();
    (fields[11], fields[12])
}

#[inline(never)]
fn measured(
    rt: &tokio::runtime::Runtime,
    config: &ValidatorConfig,
    target: &LookupTarget,
    count: usize,
) {
    for _ in 0..count {
        lookup(rt, config, target);
    }
}

#[inline(never)]
fn hits(
    rt: &tokio::runtime::Runtime,
    cache: &KeyCache<Validator>,
    target: &LookupTarget,
    count: usize,
) {
    for _ in 0..count {
        assert!(rt.block_on(cache.get(target)).is_ok());
    }
}

fn lookup(rt: &tokio::runtime::Runtime, config: &ValidatorConfig, target: &LookupTarget) {
    let answer = rt.block_on(async {
        let validator = Validator::new(config.clone()).unwrap();
        validator.lookup(target).await
    });
    assert!(matches!(answer, Ok(Answer::Secure(_))), "{answer:?}");
}
