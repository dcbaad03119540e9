//! Cost of keeping N policies alive (`Xfrm::refresh_policies`: one dump, then UPDPOLICY of
//! each in batches of up to 128 per datagram) against the same renewal one request at a
//! time, for host-to-host policies (1,000 to 100,000: a responder's SA pairs) and
//! anywhere-to-host policies (1,000 and 10,000: per-host traps and shunts), on the host's
//! own kernel (policies need no ESP). The floor is a netlink round trip that does no work
//! (GETPOLICY of a missing policy).
//!
//! `cargo bench -p oe-kernel --bench refresh` re-runs this binary in a fresh network
//! namespace (`unshare --net`, root needed), which vanishes with it.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use oe_kernel::{block_on, Ownership, PolicySpec, Prefix, Request, TrafficSelector, Xfrm};

const NAMESPACE_ENV: &str = "OE_KERNEL_BENCH_NETNS";
/// Policy counts per shape: inexact ones cost more the more there are (see the output).
const LEVELS: [(Shape, u32); 5] = [
    (Shape::Exact, 1_000),
    (Shape::Exact, 10_000),
    (Shape::Exact, 100_000),
    (Shape::Inexact, 1_000),
    (Shape::Inexact, 10_000),
];
const ROUNDS: usize = 5;

/// Host `n` of 2001:db8:1::/48.
fn host(n: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(0x2001_0db8_0001_u128 << 80 | u128::from(n)))
}

/// How the policies' selectors look to the kernel.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Host to host (`/128 -> /128`), as an SA pair's policies: hashed by address.
    Exact,
    /// Anywhere to one host (`::/0 -> /128`), as per-host traps and shunts: the kernel
    /// keeps these in its "inexact" tree.
    Inexact,
}

/// Policy `n` of `shape`, living 10 minutes unless renewed.
fn policy(shape: Shape, n: u32, o: &Ownership) -> PolicySpec {
    let reqid = o.reqid(1).unwrap();
    let spec = match shape {
        Shape::Exact => PolicySpec::host_sa_pair(host(u32::MAX), host(n), reqid).unwrap()[0],
        Shape::Inexact => PolicySpec::trap(TrafficSelector::to(Prefix::host(host(n))), reqid),
    };
    spec.expiring(600)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A request that does no work: the netlink round trip.
async fn floor(x: &mut Xfrm, o: &Ownership) -> Duration {
    let missing = policy(Shape::Exact, u32::MAX, o).key();
    let mut samples: Vec<_> = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        assert!(x.get_policy(&missing).await.unwrap_err().is_not_found());
        samples.push(t.elapsed());
    }
    median(&mut samples)
}

/// The same renewal, one UPDPOLICY per request (the policies read by one dump).
async fn one_by_one(x: &mut Xfrm, wanted: &[PolicySpec], o: &Ownership) -> Duration {
    let t = Instant::now();
    let mut current: std::collections::HashMap<_, _> = x
        .dump_policies()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.key, p))
        .collect();
    for spec in wanted {
        let owned = o
            .check_policy(current.remove(&spec.key()).unwrap())
            .unwrap();
        x.execute(Request::update_policy(&owned, spec, o).unwrap())
            .await
            .unwrap();
    }
    t.elapsed()
}

async fn level(x: &mut Xfrm, shape: Shape, n: u32, o: &Ownership, floor: Duration) {
    let wanted: Vec<_> = (0..n).map(|i| policy(shape, i, o)).collect();
    let fill = Instant::now();
    let added = x.refresh_policies(&wanted).await.unwrap();
    assert_eq!(added.added, wanted.len());
    let fill = fill.elapsed();
    let (mut dumps, mut batched, mut single) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        assert_eq!(x.dump_policies().await.unwrap().len(), wanted.len());
        dumps.push(t.elapsed());
        let t = Instant::now();
        let r = x.refresh_policies(&wanted).await.unwrap();
        batched.push(t.elapsed());
        assert_eq!((r.renewed, r.failed.len()), (wanted.len(), 0));
        single.push(one_by_one(x, &wanted, o).await);
    }
    let per = |d: Duration| micros(d) / f64::from(n);
    let (dump, batch, one) = (
        median(&mut dumps),
        median(&mut batched),
        median(&mut single),
    );
    println!(
        "  {shape:?} {n:>7}: refresh (dump + batches) {:>8.1} ms = {:>5.2} us/policy \
         (dump {:>5.2}); one request each {:>8.1} ms = {:>5.2} us/policy; fill {:.1} ms",
        micros(batch) / 1e3,
        per(batch),
        per(dump),
        micros(one) / 1e3,
        per(one),
        micros(fill) / 1e3,
    );
    println!(
        "          -> batched = {:.2} x floor per policy, one request each = {:.2} x floor; \
         batching saves {:.0}%",
        per(batch) / micros(floor),
        per(one) / micros(floor),
        100.0 * (1.0 - batch.as_secs_f64() / one.as_secs_f64()),
    );
    x.flush_owned().await.unwrap();
}

async fn bench() {
    let o = Ownership::default();
    let mut x = Xfrm::open(o).unwrap();
    let floor = floor(&mut x, &o).await;
    println!("oe-kernel refresh bench (host kernel, fresh namespace, IPv6 policies, {ROUNDS} rounds, medians)");
    println!(
        "  floor = a netlink round trip without work: {:.1} us",
        micros(floor)
    );
    for (shape, n) in LEVELS {
        level(&mut x, shape, n, &o, floor).await;
    }
    println!("  (host noise: quote medians and ratios)");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list of tests: there are none.
    }
    if std::env::var_os(NAMESPACE_ENV).is_none() {
        let exe = std::env::current_exe().unwrap();
        let status = std::process::Command::new("unshare")
            .arg("--net")
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(NAMESPACE_ENV, "1")
            .status()
            .unwrap_or_else(|e| panic!("cannot start unshare: {e}"));
        assert!(status.success(), "bench failed: {status}");
        return;
    }
    block_on(bench()).unwrap();
}
