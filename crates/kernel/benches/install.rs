//! Cost of installing one SA pair with its two host policies (ALLOCSPI-less: NEWSA x2,
//! NEWPOLICY x2), with 10, 1,000 and 10,000 pairs already installed, in the UML kernel
//! (which has ESP). Also the delete of that pair, and as the floor a netlink round trip
//! that does no work (GETSA of a missing SA).
//!
//! `cargo bench -p oe-kernel --bench install` re-runs this binary inside a throwaway UML
//! guest through `integration/uml/oe-uml-run` (root needed on the host); inside, it
//! works in the guest's own namespace, which vanishes with the guest.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use oe_kernel::{
    block_on, AlgorithmKind, Lifetime, Ownership, PolicySpec, Replay, Reqid, SaId, SaSpec, Spi,
    Xfrm,
};

const GUEST_ENV: &str = "OE_KERNEL_BENCH_GUEST";
const LEVELS: [u32; 3] = [10, 1_000, 10_000];
const SAMPLES: usize = 300;

fn local() -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
}

/// Peer `n` in 2001:db8:1::/48.
fn peer(n: u32) -> IpAddr {
    let [hi, lo] = [
        u16::try_from(n >> 16).unwrap(),
        u16::try_from(n & 0xffff).unwrap(),
    ];
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, hi, lo))
}

fn sa(src: IpAddr, dst: IpAddr, spi: u32, reqid: Reqid) -> SaSpec {
    SaSpec {
        src,
        dst,
        spi: Spi(spi),
        reqid,
        algorithm: AlgorithmKind::AesGcm128.filler(7),
        lifetime: Lifetime::default(),
        replay: Replay::default(),
        encap: None,
        selector: None,
        acquire_seq: None,
    }
}

/// Installs pair `n`: outbound and inbound SA, outbound and inbound policy. Returns the
/// time spent on the SAs and on the policies.
async fn install(x: &mut Xfrm, n: u32, reqid: Reqid) -> (Duration, Duration) {
    let t = Instant::now();
    x.add_sa(&sa(local(), peer(n), 0x1000_0000 + n, reqid))
        .await
        .unwrap();
    x.add_sa(&sa(peer(n), local(), 0x2000_0000 + n, reqid))
        .await
        .unwrap();
    let sas = t.elapsed();
    let t = Instant::now();
    for policy in PolicySpec::host_sa_pair(local(), peer(n), reqid).unwrap() {
        x.add_policy(&policy).await.unwrap();
    }
    (sas, t.elapsed())
}

async fn remove(x: &mut Xfrm, n: u32, reqid: Reqid) {
    x.delete_sa(SaId::esp(peer(n), Spi(0x1000_0000 + n)))
        .await
        .unwrap();
    x.delete_sa(SaId::esp(local(), Spi(0x2000_0000 + n)))
        .await
        .unwrap();
    for policy in PolicySpec::host_sa_pair(local(), peer(n), reqid).unwrap() {
        x.delete_policy(&policy.key()).await.unwrap();
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn p90(samples: &[Duration]) -> Duration {
    samples[samples.len() * 9 / 10]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A request that does no work (GETSA of a missing SA): the netlink round trip.
async fn round_trip(x: &mut Xfrm) -> Duration {
    let t = Instant::now();
    let missing = x.get_sa(SaId::esp(local(), Spi(0xffff_fff0))).await;
    let elapsed = t.elapsed();
    assert!(missing.unwrap_err().is_not_found());
    elapsed
}

/// Medians at one level.
struct Level {
    floor: Duration,
    install: Duration,
    delete: Duration,
}

async fn level(x: &mut Xfrm, installed: &mut u32, target: u32, o: &Ownership) -> Level {
    let fill = Instant::now();
    let before = *installed;
    while *installed < target {
        install(x, *installed, o.reqid(*installed % 60_000).unwrap()).await;
        *installed += 1;
    }
    let per_pair_fill = fill.elapsed() / (target - before).max(1);
    let probe = 0x00ff_0000;
    let reqid = o.reqid(60_001).unwrap();
    let mut floors = Vec::with_capacity(SAMPLES);
    let (mut adds, mut dels) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    let (mut sas, mut policies) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        floors.push(round_trip(x).await);
        let (s, p) = install(x, probe, reqid).await;
        adds.push(s + p);
        sas.push(s);
        policies.push(p);
        let t = Instant::now();
        remove(x, probe, reqid).await;
        dels.push(t.elapsed());
    }
    let level = Level {
        floor: median(&mut floors),
        install: median(&mut adds),
        delete: median(&mut dels),
    };
    println!(
        "  {target:>6} pairs installed: install pair median {:>6.1} us (p90 {:>7.1}; 2 SAs {:>6.1}, 2 policies {:>6.1}), \
         delete pair {:>6.1} us, floor {:>5.1} us, fill {:>6.1} us/pair",
        micros(level.install),
        micros(p90(&adds)),
        micros(median(&mut sas)),
        micros(median(&mut policies)),
        micros(level.delete),
        micros(level.floor),
        micros(per_pair_fill),
    );
    level
}

async fn bench() {
    let o = Ownership::default();
    let mut x = Xfrm::open(o).unwrap();
    x.flush_owned().await.unwrap();
    println!("oe-kernel install bench (UML guest, IPv6 host pairs, rfc4106(gcm(aes)) 128, {SAMPLES} samples per level)");
    println!("  floor = a netlink round trip without work (GETSA of a missing SA), interleaved with the samples");
    let mut installed = 0;
    let mut first = None;
    for target in LEVELS {
        let l = level(&mut x, &mut installed, target, &o).await;
        let ratio = l.install.as_secs_f64() / l.floor.as_secs_f64();
        let base = *first.get_or_insert(ratio);
        println!(
            "         -> install = {ratio:.2} x floor ({:.2} x floor per request; {:.2} x the ratio at 10 pairs), delete = {:.2} x floor",
            ratio / 4.0,
            ratio / base,
            l.delete.as_secs_f64() / l.floor.as_secs_f64(),
        );
    }
    let flushed = x.flush_owned().await.unwrap();
    println!(
        "  flushed {} policies and {} SAs",
        flushed.policies, flushed.sas
    );
    println!("  (host noise shows in the p90: quote medians and ratios)");
}

fn rerun_in_guest() {
    let runner = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../integration/uml/oe-uml-run"
    );
    let exe = std::env::current_exe().unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("host load average before the run: {}", load.trim());
    let status = std::process::Command::new(runner)
        .arg(exe)
        .env(GUEST_ENV, "1")
        .env("OE_UML_ENV", GUEST_ENV)
        .status()
        .unwrap_or_else(|e| panic!("cannot start {runner}: {e}"));
    assert!(
        status.success(),
        "bench failed inside the UML guest: {status}"
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list of tests: there are none.
    }
    if std::env::var_os(GUEST_ENV).is_none() {
        return rerun_in_guest();
    }
    block_on(bench()).unwrap();
}
