//! Added resolution latency of the DNS trigger's stub (criterion, wall time per query).
//!
//! Every case is one A query over UDP from this thread, answered by the signed DNS fixture's
//! recursive resolver (unbound on loopback in a network namespace, its cache warm):
//! - `stub/direct`: straight to the resolver: the floor.
//! - `stub/forward_only`: through the stub, addresses outside every opportunistic group (the
//!   hook does not want them): the stub's forwarding cost alone.
//! - `stub/nokey_cached`: through the stub, a wanted name without IPSECKEY whose outcome is in
//!   the stub's cache (a repeated lookup).
//! - `stub/nokey_cold`: the same with the stub's key and address caches emptied before every
//!   query: the validated IPSECKEY lookup (NODATA, NSEC-proven) runs in parallel with the
//!   forwarding each time. (hickory's validation cache keeps the zone's DNSKEYs, as it would for
//!   a second name in a zone already seen; the resolver's own cache is warm in every case.)
//! - `stub/keyed_cached`: a keyed name whose key is cached, the hook completing at once (an SA
//!   already up): the cost of the trigger path itself.
//!
//! Needs root (namespace and fixture); without root it prints a note and measures nothing.
//! Run: `cargo bench -p oe-dns --bench stub`. Ratios to `direct` and `forward_only` are printed
//! at the end, from criterion's medians.

// Benchmark code: a failure here should stop the run loudly; no attacker-controlled input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use oe_dns::trigger::{Listeners, Stub, StubConfig, TriggerEvent, TriggerHook};
use oe_dns::{
    AnchorSet, CacheConfig, KeyCache, LookupTarget, SecureKeys, Upstream, Validator,
    ValidatorConfig,
};

const NOKEY: &str = "nokey.rsa.example.";
const KEYED: &str = "host.ed.example.";

/// Wants every address when `wanted`; `secure` completes at once.
struct Hook {
    wanted: bool,
}

impl TriggerHook for Hook {
    fn wants(&self, _: &[IpAddr]) -> bool {
        self.wanted
    }

    fn secure(
        &self,
        _: Name,
        _: Vec<IpAddr>,
        _: SecureKeys,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async {})
    }

    fn record(&self, _: TriggerEvent) {}
}

fn query(name: &str) -> Vec<u8> {
    let mut m = Message::new(0x0BEE, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

/// One query, one answer (which must carry an address).
fn resolve(socket: &UdpSocket, server: SocketAddr, query: &[u8]) {
    socket.send_to(query, server).unwrap();
    let mut buf = [0; 4096];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    assert!(n > query.len(), "an answer with records");
}

struct Stubs {
    _rt: tokio::runtime::Runtime,
    forward_only: (Stub, KeyCache<Validator>),
    wanted: (Stub, KeyCache<Validator>),
}

fn start_stubs(resolver: SocketAddr, anchor: &std::path::Path) -> Stubs {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let validator = ValidatorConfig {
        upstream: Upstream::Servers(vec![resolver]),
        anchors: AnchorSet::from_file(anchor).unwrap(),
        ..ValidatorConfig::default()
    };
    let start = |listen: &str, wanted: bool| {
        rt.block_on(async {
            let config = StubConfig {
                listen: vec![listen.parse().unwrap()],
                upstreams: vec![resolver],
                ..StubConfig::default()
            };
            let cache = KeyCache::new(
                Validator::new(validator.clone()).unwrap(),
                CacheConfig::default(),
            );
            let listeners = Listeners::bind(&config.listen).await.unwrap();
            let hook = Arc::new(Hook { wanted });
            let stub = Stub::serve(config, listeners, cache.clone(), hook).unwrap();
            (stub, cache)
        })
    };
    Stubs {
        forward_only: start("127.0.2.53:53", false),
        wanted: start("127.0.2.54:53", true),
        _rt: rt,
    }
}

fn benches(c: &mut Criterion, resolver: SocketAddr, anchor: &std::path::Path) {
    let stubs = start_stubs(resolver, anchor);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (nokey, keyed) = (query(NOKEY), query(KEYED));
    let forward_only = stubs.forward_only.0.local_addrs()[0];
    let (wanted, cache) = (stubs.wanted.0.local_addrs()[0], &stubs.wanted.1);
    // Warm the resolver's cache and the validator's DNSKEYs.
    for server in [resolver, forward_only, wanted] {
        resolve(&socket, server, &nokey);
        resolve(&socket, server, &keyed);
    }
    let target: LookupTarget = NOKEY.parse().unwrap();
    let name = Name::from_ascii(NOKEY).unwrap();

    let mut g = c.benchmark_group("stub");
    g.sample_size(200).measurement_time(Duration::from_secs(5));
    g.bench_function("direct", |b| b.iter(|| resolve(&socket, resolver, &nokey)));
    g.bench_function("forward_only", |b| {
        b.iter(|| resolve(&socket, forward_only, &nokey))
    });
    g.bench_function("nokey_cached", |b| {
        b.iter(|| resolve(&socket, wanted, &nokey))
    });
    g.bench_function("nokey_cold", |b| {
        b.iter(|| {
            cache.invalidate(&target);
            cache.invalidate_addresses(&name);
            resolve(&socket, wanted, &nokey);
        })
    });
    g.bench_function("keyed_cached", |b| {
        b.iter(|| resolve(&socket, wanted, &keyed))
    });
    g.finish();
    let stats = stubs.wanted.0.stats();
    println!(
        "\nstub counters (wanted): {}",
        serde_json::to_string(&stats.counters).unwrap()
    );
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

fn print_ratios() {
    let (Some(direct), Some(forward)) = (median_ns("stub/direct"), median_ns("stub/forward_only"))
    else {
        return;
    };
    println!("\nmedians (one A query, UDP, loopback resolver):");
    println!("  stub/direct: {:.1} us", direct / 1e3);
    for id in [
        "stub/forward_only",
        "stub/nokey_cached",
        "stub/nokey_cold",
        "stub/keyed_cached",
    ] {
        if let Some(v) = median_ns(id) {
            println!(
                "  {id}: {:.1} us; {:.2}x direct (+{:.1} us), {:.2}x forward_only (+{:.1} us)",
                v / 1e3,
                v / direct,
                (v - direct) / 1e3,
                v / forward,
                (v - forward) / 1e3
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if nix::unistd::geteuid().is_root() {
        let ns = oe_integration::netns::Netns::new("stubbench");
        let fixture = oe_integration::dns::DnsFixture::start_in(&ns);
        // Criterion is not Send: move this thread into the fixture's namespace instead.
        let file = std::fs::File::open(format!("/run/netns/{}", ns.name())).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        benches(&mut c, fixture.resolver(), &fixture.trust_anchor_dnskey());
    } else {
        eprintln!("stub benches skipped: they need root (network namespace and DNS fixture)");
    }
    c.final_summary();
    print_ratios();
}
