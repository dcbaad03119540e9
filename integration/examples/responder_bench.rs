//! The responder at scale: `oe` and strongSwan's charon (Debian's 5.9) answer the same load
//! generator, one after the other, in one UML run (real ESP: every IKE SA brings a child SA
//! pair and host policies into the kernel), on the same veth link, with the same proposal:
//! IKE aes256gcm16-prfsha256-x25519, ESP aes256gcm16, no post-quantum exchange, cookies and
//! per-address half-open limits out of the way (both), liveness checks off (both; charon's
//! default), logging at each one's normal level (oe: info; charon: 1). charon's IKE_SA table is
//! sized for many SAs (`ikesa_table_size = 65536`, `ikesa_table_segments = 64`; the default of
//! one bucket makes every lookup a list walk).
//!
//! Authentication differs, because the two have no cheap method in common: oe and its initiators
//! use NULL authentication (RFC 7619, no signature); charon has no NULL authentication (its
//! `auth = null` is refused) and oe-ike has no PSK, so charon and its initiators use Ed25519 raw
//! public keys (RFC 7427), charon's cheapest signature: charon's side pays one Ed25519 signature
//! and one verification per handshake (about 84 us on this machine kind's host, notes.md) that
//! oe's does not.
//!
//! The generator (integration/src/load) runs IKE initiators from one /64 per SA, `CONCURRENCY`
//! handshakes in flight, in this process. Everything shares the guest's one CPU, so the wall-clock
//! rate is the system's; the responder's own CPU time per handshake (from /proc, inside the guest)
//! gives its capacity per core. The guest charges nearly all of a process's time to user space
//! (its system-call and page-fault costs included), and runs everything many times slower than
//! the host: compare the two responders, do not read the absolute figures as the host's. Memory
//! is the responder's resident set (VmRSS) above its idle size, and the kernel's slab growth, per
//! IKE SA held.
//!
//! Prints a table per responder and the ratios oe/charon; asserts nothing (a measurement).
//!
//! Run (as root): `cargo build --release -p oe-agent --bin oe && cargo run --release -p
//! oe-integration --example responder_bench -- [MAX [oe|charon]]` (MAX: the largest number of
//! SAs, default 10000; OE_UML_MEM defaults to 8192 MiB here). Past about 28,000 SAs the agent's
//! process in the guest needs more host mappings than the host's default `vm.max_map_count`
//! (65530) allows (the guest prints "UML ran out of memory on the host side" and the agent dies
//! with SIGSEGV): raise it first, `sysctl vm.max_map_count=1048576`.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::indexing_slicing
)] // a measurement program

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oe_ike::crypto::{DhGroup, EncrAlg, PrfAlg, PrivateKey};
use oe_ike::wire::Identity;
use oe_ike::{EspProposal, IkeProposal, LocalAuth};
use oe_integration::agent::Agent;
use oe_integration::load::{LoadBed, LoadConfig, LoadGen, Progress, Sample, RESPONDER_ADDR};
use oe_integration::netns::Netns;
use oe_integration::peers::{Charon, CharonSetup};
use oe_integration::uml;

const RESPONDER: &str = RESPONDER_ADDR;
const CONCURRENCY: usize = 64;

fn sample(pid: u32) -> Sample {
    Sample::of(pid)
}

/// A stage's figures: from `a` (with `from` SAs) to `b` (with `to`).
struct Row {
    to: u64,
    handshakes_per_s: f64,
    cpu_us_per_handshake: f64,
    user_us_per_handshake: f64,
    gen_cpu_us_per_handshake: f64,
    rss_bytes_per_sa: f64,
    slab_bytes_per_sa: f64,
    failed: u64,
}

fn row(base: &Sample, a: &Sample, b: &Sample, from: &Progress, to: &Progress) -> Row {
    let n = (to.established - from.established).max(1) as f64;
    let held = to.established.max(1) as f64;
    Row {
        to: to.established,
        handshakes_per_s: n / (b.at - a.at).as_secs_f64(),
        cpu_us_per_handshake: (b.cpu - a.cpu) * 1e6 / n,
        user_us_per_handshake: (b.user - a.user) * 1e6 / n,
        gen_cpu_us_per_handshake: (b.own_cpu - a.own_cpu) * 1e6 / n,
        rss_bytes_per_sa: (b.rss_kb as f64 - base.rss_kb as f64) * 1024.0 / held,
        slab_bytes_per_sa: (b.slab_kb as f64 - base.slab_kb as f64) * 1024.0 / held,
        failed: to.failed - from.failed,
    }
}

fn key(name: &str) -> String {
    std::fs::read_to_string(oe_integration::keys_dir().join(name)).unwrap()
}

/// The initiators: NULL authentication towards oe; towards charon (which has no NULL
/// authentication) Ed25519 raw keys, the cheapest signature it offers (PSK is cheaper, but
/// oe-ike does not speak PSK).
fn generator_config(signed: bool) -> LoadConfig {
    let (id, auth, peer_key) = if signed {
        let own = PrivateKey::from_pem(&key("ws-ed25519.pem")).unwrap();
        let theirs = PrivateKey::from_pem(&key("host-ed25519.pem")).unwrap();
        (
            Identity::Fqdn("load.example".into()),
            LocalAuth::Key(Arc::new(own)),
            Some(theirs.public_key()),
        )
    } else {
        (Identity::Null, LocalAuth::Null, None)
    };
    let mut ike = oe_ike::Config::new(id, auth);
    ike.ike_proposals = vec![IkeProposal {
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
        prf: PrfAlg::HmacSha256,
        groups: vec![DhGroup::Curve25519],
    }];
    ike.esp_proposals = vec![EspProposal {
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
    }];
    ike.additional_ke = oe_ike::AdditionalKe::off();
    ike.accept_null_peers = true;
    ike.liveness_interval = None;
    LoadConfig {
        responder: SocketAddr::new(RESPONDER.parse().unwrap(), 500),
        ike,
        peer_key,
        concurrency: CONCURRENCY,
        first_source: 0,
        per_source: 1,
        seed: 1,
    }
}

const OE_CONFIG: &str = r#"
[identity]
key = "@DIR@/no-key.pem"
[groups]
private-or-clear = []
clear-or-private = ["0.0.0.0/0", "::/0"]
[ike]
proposals = ["aes256gcm16-prfsha256-x25519"]
esp_proposals = ["aes256gcm16"]
liveness_interval = "0s"
post_quantum = false
[limits]
ike_sas = 1000000
half_open = 100000
half_open_per_source = 100
cookie_threshold = 100000
[dns]
upstreams = ["[::1]:53"]
[trigger]
enabled = false
[log]
level = "info"
"#;

fn charon_setup() -> CharonSetup {
    CharonSetup {
        swanctl_conf: format!(
            "connections {{ oe {{ version = 2\n mobike = no\n local_addrs = {RESPONDER}\n remote_addrs = %any\n\
             proposals = aes256gcm16-prfsha256-x25519\n\
             local {{ auth = pubkey\n id = resp.example\n pubkeys = self.pub }}\n\
             remote {{ auth = pubkey\n id = load.example\n pubkeys = peer.pub }}\n\
             children {{ c {{ mode = transport\n esp_proposals = aes256gcm16 }} }} }} }}\n"
        ),
        charon_extra: "  ikesa_table_size = 65536\n  ikesa_table_segments = 64\n  \
                       cookie_threshold = 100000\n  block_threshold = 100000\n  \
                       init_limit_half_open = 0\n  \
                       filelog { main { default = 1\n ike = 1\n knl = 1\n cfg = 1 } }\n"
            .into(),
        private_keys: vec![("self.pem".into(), key("host-ed25519.pem"))],
        public_keys: vec![
            ("self.pub".into(), key("host-ed25519.pub.pem")),
            ("peer.pub".into(), key("ws-ed25519.pub.pem")),
        ],
        ..CharonSetup::default()
    }
}

/// Drives `pid`'s responder through the stages; prints and returns the rows.
fn measure(name: &str, pid: u32, gen_ns: &Arc<Netns>, max: u64, signed: bool) -> Vec<Row> {
    std::thread::sleep(Duration::from_secs(2));
    let base = sample(pid);
    let gen = LoadGen::spawn(Arc::clone(gen_ns), generator_config(signed));
    let mut stages = vec![10, 1_010];
    stages.extend(
        [10_000, 25_000, 50_000, 75_000, 100_000]
            .into_iter()
            .filter(|&s| s < max),
    );
    stages.extend([max, max + 1_000]);
    stages.dedup();
    let mut rows = Vec::new();
    let (mut last_sample, mut last) = (sample(pid), Progress::default());
    for target in stages {
        let p = gen.reach(target, Duration::from_secs(60));
        let s = sample(pid);
        let r = row(&base, &last_sample, &s, &last, &p);
        println!(
            "{name:>7} {:>7} SAs: {:>8.0} handshakes/s (wall, shared CPU), responder {:>6.0} us CPU/handshake \
             ({:>6.0}/s/core; user space {:>5.0} us), generator {:>6.0} us; RSS {:>6.0} B/SA, kernel slab {:>6.0} B/SA; failed {}",
            r.to,
            r.handshakes_per_s,
            r.cpu_us_per_handshake,
            1e6 / r.cpu_us_per_handshake,
            r.user_us_per_handshake,
            r.gen_cpu_us_per_handshake,
            r.rss_bytes_per_sa,
            r.slab_bytes_per_sa,
            r.failed
        );
        rows.push(r);
        (last_sample, last) = (s, p);
        if p.established < target {
            println!("{name}: stalled at {} SAs ({p:?})", p.established);
            break;
        }
    }
    println!("{name}: generator {:?}", gen.report());
    rows
}

fn run_oe(resp: &Netns, gen_ns: &Arc<Netns>, max: u64) -> Vec<Row> {
    // SAFETY of the environment: single-threaded here; the agent reads RUST_LOG at start.
    std::env::set_var("RUST_LOG", "info");
    let mut agent = Agent::start(resp, OE_CONFIG);
    let rows = measure("oe", agent.pid(), gen_ns, max, false);
    if rows.last().is_some_and(|r| r.to >= max) {
        let status = agent.request(r#"{"command":"status"}"#);
        println!("oe status: {}", status["result"]);
        agent.stop();
        return rows;
    }
    let log = agent.log();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    println!("oe stalled; its log ends:");
    for line in tail.iter().rev() {
        println!("  {line}");
    }
    println!("oe's exit status: {:?}", agent.stop());
    if let Ok(out) = std::process::Command::new("dmesg").output() {
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().rev().take(20).collect();
        println!("the guest kernel's last messages:");
        for line in lines.iter().rev() {
            println!("  {line}");
        }
    }
    rows
}

fn run_charon(resp: &Netns, gen_ns: &Arc<Netns>, max: u64) -> Vec<Row> {
    let charon = Charon::start(resp, &charon_setup());
    let rows = measure("charon", charon.pid(), gen_ns, max, true);
    drop(charon);
    rows
}

fn ratios(oe: &[Row], charon: &[Row]) {
    println!("ratios oe/charon (lower CPU and memory are better; higher rate is better):");
    for (o, c) in oe.iter().zip(charon) {
        println!(
            "  {:>7} SAs: responder CPU/handshake {:.2} (user space {:.2}), capacity/core {:.2}, RSS/SA {:.2}, wall rate {:.2}",
            o.to,
            o.cpu_us_per_handshake / c.cpu_us_per_handshake,
            o.user_us_per_handshake / c.user_us_per_handshake,
            c.cpu_us_per_handshake / o.cpu_us_per_handshake,
            o.rss_bytes_per_sa / c.rss_bytes_per_sa,
            o.handshakes_per_s / c.handshakes_per_s
        );
    }
}

fn hold_rate(name: &str, rows: &[Row]) {
    if let (Some(first), Some(last)) = (rows.get(1), rows.last()) {
        println!(
            "{name}: the last 1000 handshakes (at {} SAs) cost {:.0} us CPU each, the first 1000 (at 10) {:.0} us: \
             capacity at scale is {:.0}% of capacity at 10; wall rate {:.0}%",
            last.to,
            last.cpu_us_per_handshake,
            first.cpu_us_per_handshake,
            100.0 * first.cpu_us_per_handshake / last.cpu_us_per_handshake,
            100.0 * last.handshakes_per_s / first.handshakes_per_s
        );
    }
}

fn main() {
    if !uml::in_guest() {
        if std::env::var_os("OE_UML_MEM").is_none() {
            std::env::set_var("OE_UML_MEM", "8192");
        }
        if std::env::var_os("OE_UML_TIMEOUT").is_none() {
            std::env::set_var("OE_UML_TIMEOUT", "7200");
        }
        std::process::exit(uml::exec_self_in_guest().code().unwrap_or(1));
    }
    let max: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let only = std::env::args().nth(2);
    let bed = LoadBed::new();
    let mut oe = Vec::new();
    let mut charon = Vec::new();
    if only.as_deref() != Some("charon") {
        oe = run_oe(&bed.resp, &bed.gen, max);
        bed.flush();
    }
    if only.as_deref() != Some("oe") {
        charon = run_charon(&bed.resp, &bed.gen, max);
        bed.flush();
    }
    hold_rate("oe", &oe);
    hold_rate("charon", &charon);
    ratios(&oe, &charon);
}
