//! Wall time of a validated lookup when the resolver is a round trip away (criterion): the signed
//! DNS fixture behind a UDP relay that delays each query and each response by 5 ms (a 10 ms round
//! trip, as to a resolver across a network; the fixture itself is on loopback).
//!
//! - `latency/cold`: a fresh validator: the answer and the whole chain of trust are fetched
//!   (`host.ed.example.`: the IPSECKEY, ed.example.'s DNSKEY and DS, the root's DNSKEY).
//! - `latency/new_name`: a name not asked before in a zone whose chain is cached.
//! - `latency/cached`: a cache hit in `KeyCache`.
//! - `latency/round_trip`: one plain query through the relay: the measured round trip (the
//!   relay's timers add to the nominal 10 ms).
//!
//! The floor of a cold lookup is one round trip per level of the chain that cannot be asked
//! before the level below has answered; the medians are printed in measured round trips.
//! Needs root (namespace and fixture). Run: `cargo bench -p oe-dns --bench latency`.

// Benchmark code: a failure here should stop the run loudly; no attacker-controlled input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use oe_dns::{
    current_thread_runtime, AnchorSet, Answer, CacheConfig, KeyCache, LookupTarget, Upstream,
    Validator, ValidatorConfig,
};
use tokio::net::UdpSocket;

/// Delay each way.
const DELAY: Duration = Duration::from_millis(5);
/// Where the relay listens inside the fixture's namespace.
const RELAY: &str = "127.0.0.60:53";

/// A UDP relay to `upstream` that holds every query and every response for [`DELAY`].
async fn relay(upstream: SocketAddr) {
    let socket = Arc::new(UdpSocket::bind(RELAY).await.unwrap());
    let mut buf = vec![0; 65_535];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await.unwrap();
        let query = buf[..n].to_vec();
        let socket = socket.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DELAY).await;
            let out = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            out.connect(upstream).await.unwrap();
            out.send(&query).await.unwrap();
            let mut reply = vec![0; 65_535];
            let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(5), out.recv(&mut reply)).await
            else {
                return;
            };
            tokio::time::sleep(DELAY).await;
            let _ = socket.send_to(&reply[..n], from).await;
        });
    }
}

fn secure(answer: &Result<Answer, oe_dns::LookupError>) -> bool {
    matches!(answer, Ok(Answer::Secure(_)))
}

/// One A query for `host.ed.example.` through the relay, answered.
async fn round_trip() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii("host.ed.example.").unwrap(),
        RecordType::A,
    ));
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(RELAY).await.unwrap();
    socket.send(&m.to_vec().unwrap()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = socket.recv(&mut buf).await.unwrap();
    assert!(n > 12);
}

fn bench(c: &mut Criterion, config: &ValidatorConfig) {
    let rt = current_thread_runtime().unwrap();
    let target: LookupTarget = "host.ed.example.".parse().unwrap();
    let mut g = c.benchmark_group("latency");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("round_trip", |b| b.iter(|| rt.block_on(round_trip())));
    g.bench_function("cold", |b| {
        b.iter(|| {
            let answer = rt.block_on(async {
                let validator = Validator::new(config.clone()).unwrap();
                validator.lookup(&target).await
            });
            assert!(secure(&answer), "{answer:?}");
        });
    });
    let validator = rt.block_on(async { Validator::new(config.clone()).unwrap() });
    assert!(secure(&rt.block_on(validator.lookup(&target))));
    let mut i = 0;
    g.bench_function("new_name", |b| {
        b.iter(|| {
            i += 1;
            // Absent names of the zone: each is new to the validator, the chain is not.
            let name: LookupTarget = format!("n{i}.ed.example.").parse().unwrap();
            let answer = rt.block_on(validator.lookup(&name));
            assert!(matches!(answer, Ok(Answer::Absent(_))), "{answer:?}");
        });
    });
    let cache = rt.block_on(async {
        KeyCache::new(
            Validator::new(config.clone()).unwrap(),
            CacheConfig::default(),
        )
    });
    assert!(rt.block_on(cache.get(&target)).is_ok());
    g.sample_size(50).measurement_time(Duration::from_secs(3));
    g.bench_function("cached", |b| b.iter(|| rt.block_on(cache.get(&target))));
    g.finish();
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
    let Some(rtt) = median_ns("latency/round_trip") else {
        return;
    };
    println!(
        "\nmedians; a round trip to the resolver through the relay: {:.2} ms",
        rtt / 1e6
    );
    for id in ["cold", "new_name", "cached"] {
        if let Some(v) = median_ns(&format!("latency/{id}")) {
            println!(
                "  latency/{id}: {:.2} ms ({:.2} round trips)",
                v / 1e6,
                v / rtt
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if nix::unistd::geteuid().is_root() {
        let ns = oe_integration::netns::Netns::new("latency");
        let fixture = oe_integration::dns::DnsFixture::start_in(&ns);
        let upstream = fixture.resolver();
        let config = ValidatorConfig {
            upstream: Upstream::Servers(vec![RELAY.parse().unwrap()]),
            anchors: AnchorSet::from_file(&fixture.trust_anchor_dnskey()).unwrap(),
            ..ValidatorConfig::default()
        };
        let file = std::fs::File::open(format!("/run/netns/{}", ns.name())).unwrap();
        let relay_file = file.try_clone().unwrap();
        std::thread::spawn(move || {
            nix::sched::setns(&relay_file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            current_thread_runtime().unwrap().block_on(relay(upstream));
        });
        // Criterion is not Send: move this thread into the fixture's namespace instead.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        bench(&mut c, &config);
    } else {
        eprintln!("latency benches skipped: they need root (network namespace and DNS fixture)");
    }
    c.final_summary();
    print_medians();
}
