//! Seeds for the fuzz campaign (`fuzz/campaign.sh`): real bytes for every fuzz target, one file per
//! input under `OUT/<target>/`.
//!
//! - `ike_message`, `ike_responder_first`: the IKE datagrams of real exchanges on a veth link:
//!   Libreswan's pluto initiating to strongSwan's charon and charon to pluto (raw RSA keys; pluto's
//!   RSA-3072 IKE_AUTH is fragmented, RFC 7383), and oe-ike's own (NULL authentication, the
//!   ML-KEM-768 hybrid in IKE_INTERMEDIATE, fragmented). The host kernel has no ESP, so the child
//!   SAs fail after IKE_AUTH: the IKE messages are what matters here.
//! - `dns_stub_message`: the DNS fixture's answers (with their DNSSEC records) for every name it
//!   serves, and the queries that asked for them.
//! - `dns_ipseckey_rdata`: the IPSECKEY RDATA in those answers.
//! - `ike_kem`: ML-KEM encapsulation keys and ciphertexts of each parameter set.
//! - `route_event`: rtnetlink events and dump answers from a namespace whose links, addresses and
//!   routes change.
//! - `kernel_event`: the captured XFRM datagrams of `crates/kernel/tests/data`.
//!
//! Run (as root): `cargo run -p oe-integration --example fuzz_seeds -- OUT`
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)] // a tool

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use oe_ike::crypto::{DhGroup, KeyShare};
use oe_ike::wire::Identity;
use oe_ike::{Config, Endpoint, LocalAuth};
use oe_integration::capture::{Capture, Datagram};
use oe_integration::dns::{names, DnsFixture, ZONES};
use oe_integration::netns::{Netns, Pair};
use oe_integration::peers::{charon_rsa_transport, pluto_rsa_transport, Charon, Pluto};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Writes seeds into one target's folder, named by their content's position.
struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(out: &Path, target: &str) -> Self {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, count: 0 }
    }

    fn add(&mut self, origin: &str, bytes: &[u8]) {
        self.count += 1;
        let path = self.dir.join(format!("{origin}-{:04}", self.count));
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Seeds {
    fn drop(&mut self) {
        println!("{}: {} seeds", self.dir.display(), self.count);
    }
}

/// An IKE datagram without the NAT-T port's non-ESP marker (RFC 3948 2.2); ESP and keepalives
/// are not IKE.
fn ike_bytes(d: &Datagram) -> Option<&[u8]> {
    let nat = d.src_port == 4500 || d.dst_port == 4500;
    match (nat, d.payload.get(..4)) {
        (false, _) if d.src_port == 500 || d.dst_port == 500 => Some(&d.payload),
        (true, Some([0, 0, 0, 0])) => d.payload.get(4..),
        _ => None,
    }
}

/// `ike_responder_first`'s input: a flag byte, then datagrams each behind a 2-byte length.
fn responder_input(datagrams: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0];
    for d in datagrams {
        out.extend_from_slice(&(d.len() as u16).to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// Initiator requests (the IKE header's Initiator flag set, Response flag clear).
fn requests<'a>(datagrams: &[&'a [u8]]) -> Vec<&'a [u8]> {
    datagrams
        .iter()
        .copied()
        .filter(|d| d.get(19).is_some_and(|f| f & 0x28 == 0x08))
        .collect()
}

fn ike_seeds(out: &Path, origin: &str, datagrams: &[&[u8]]) {
    let mut message = Seeds::new(out, "ike_message");
    let mut responder = Seeds::new(out, "ike_responder_first");
    for d in datagrams {
        message.add(origin, d);
    }
    // Each request alone, and the first ones of the exchange in order.
    let requests = requests(datagrams);
    for d in &requests {
        responder.add(origin, &responder_input(&[d]));
    }
    for n in 2..=requests.len().min(3) {
        responder.add(origin, &responder_input(&requests[..n]));
    }
}

/// pluto (a) and charon (b) each initiate once; every IKE datagram between them.
fn real_peers(out: &Path) {
    let pair = Pair::new();
    let pluto = Pluto::start(&pair.a, &pluto_rsa_transport(Pair::A4, Pair::B4));
    let charon = Charon::start(&pair.b, &charon_rsa_transport(Pair::B4, Pair::A4));
    let capture = Capture::start(&pair.a, &pair.a_if);
    let _ = pluto.whack(&["--initiate", "--asynchronous", "--name", "peer"]);
    std::thread::sleep(Duration::from_secs(3));
    // Each side forgets the first IKE SA, so charon starts a new one.
    let _ = pluto.whack(&["--terminate", "--name", "peer"]);
    let _ = charon.swanctl(&["--terminate", "--ike", "peer", "--timeout", "5"]);
    std::thread::sleep(Duration::from_secs(1));
    let _ = charon.swanctl(&["--initiate", "--ike", "peer", "--timeout", "10"]);
    std::thread::sleep(Duration::from_secs(1));
    let captured = capture.stop_udp();
    let datagrams: Vec<&[u8]> = captured.iter().filter_map(ike_bytes).collect();
    assert!(
        datagrams.len() >= 4,
        "pluto and charon exchanged {} IKE datagrams; pluto: {}\ncharon: {}",
        datagrams.len(),
        pluto.log(),
        charon.log()
    );
    ike_seeds(out, "pluto-charon", &datagrams);
}

/// Two oe-ike endpoints with NULL authentication and the post-quantum hybrid, in memory.
fn own_exchange(out: &Path) {
    let endpoint = |name: &str, seed: u64| {
        let mut c = Config::new(Identity::Fqdn(name.into()), LocalAuth::Null);
        c.accept_null_peers = true;
        c.fragment_size = 600;
        Endpoint::new(c, Box::new(ChaCha20Rng::seed_from_u64(seed)))
    };
    let (mut a, mut b) = (endpoint("a.example", 1), endpoint("b.example", 2));
    let (sa, sb): (SocketAddr, SocketAddr) = (
        "192.0.2.1:500".parse().unwrap(),
        "192.0.2.2:500".parse().unwrap(),
    );
    let now = Instant::now();
    a.connect(now, sa, sb);
    let mut wire: Vec<Vec<u8>> = Vec::new();
    let mut spi = 0x1000;
    for round in 0..40 {
        let (from, to) = if round % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        while let Some((h, e)) = from.poll_event() {
            if matches!(e, oe_ike::Event::NeedSpi { .. }) {
                spi += 1;
                from.supply_spi(now, h, spi);
            }
        }
        while let Some(t) = from.poll_transmit() {
            to.handle_datagram(now, t.local, t.remote, &t.contents);
            wire.push(t.contents);
        }
    }
    let datagrams: Vec<&[u8]> = wire.iter().map(Vec::as_slice).collect();
    assert!(datagrams.len() >= 6, "oe-ike exchanged {}", datagrams.len());
    ike_seeds(out, "oe-ike", &datagrams);
}

fn dns_query(name: &Name, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new(
        id,
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Query,
    );
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(4096);
    m.set_edns(edns);
    m.to_vec().unwrap()
}

/// The fixture's answers for every name it serves.
fn dns_answers(out: &Path) {
    let ns = Netns::new("seeds-dns");
    let fixture = DnsFixture::start_in(&ns);
    let resolver = fixture.resolver();
    let mut stub = Seeds::new(out, "dns_stub_message");
    let mut rdata = Seeds::new(out, "dns_ipseckey_rdata");
    let ipseckey = RecordType::Unknown(45);
    let hosts = [
        names::RSA_HOST,
        names::ECDSA_HOST,
        names::ED_HOST,
        names::NSEC3_HOST,
        names::NSEC_NOKEY,
        names::NSEC3_NOKEY,
        names::NSEC3_NXDOMAIN,
        names::NSEC_NXDOMAIN,
        names::INSECURE_HOST,
        names::EXPIRED_HOST,
        names::TAMPERED_HOST,
        names::WILDCARD_HOST,
        names::GATEWAYS,
        names::REV_V4_RSA,
        names::REV_V4_ECDSA,
        names::REV_V4_ED,
        names::REV_V4_NOKEY,
        names::REV_V6_RSA,
        names::REV_V6_ED,
    ];
    let mut questions: Vec<(String, RecordType)> = Vec::new();
    for h in hosts {
        for t in [ipseckey, RecordType::A, RecordType::AAAA, RecordType::PTR] {
            questions.push((h.to_owned(), t));
        }
    }
    for z in ZONES.iter().chain(&["example.", "."]) {
        questions.push(((*z).to_owned(), RecordType::DNSKEY));
        questions.push(((*z).to_owned(), RecordType::DS));
    }
    ns.run(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for (i, (name, rtype)) in questions.iter().enumerate() {
            let query = dns_query(&Name::from_ascii(name).unwrap(), *rtype, i as u16);
            socket.send_to(&query, resolver).unwrap();
            let mut buf = vec![0; 65535];
            let Ok(n) = socket.recv(&mut buf) else {
                eprintln!("no answer for {name} {rtype}");
                continue;
            };
            let answer = &buf[..n];
            stub.add("query", &query);
            stub.add("answer", answer);
            for record in Message::from_vec(answer)
                .map(|m| m.answers)
                .unwrap_or_default()
            {
                if let RData::Unknown { code, rdata: r } = &record.data {
                    if *code == ipseckey {
                        rdata.add("ipseckey", &r.anything);
                    }
                }
            }
        }
    });
    drop(fixture);
}

/// Encapsulation keys and ciphertexts of each ML-KEM parameter set.
fn kem(out: &Path) {
    let mut seeds = Seeds::new(out, "ike_kem");
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for method in DhGroup::ML_KEM {
        let share = KeyShare::generate(method, &mut rng).unwrap();
        seeds.add(method.name(), share.public());
        let (ciphertext, _) = KeyShare::respond(method, share.public(), &mut rng).unwrap();
        seeds.add(method.name(), &ciphertext);
    }
}

/// rtnetlink datagrams: events while a namespace's links, addresses and routes change, and the
/// answers to address, link and route dumps.
fn rtnetlink(out: &Path) {
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr as NlAddr};
    use oe_kernel::route::RouteRequest;
    let mut seeds = Seeds::new(out, "route_event");
    let ns = Netns::new("seeds-rt");
    let other = Netns::new("seeds-rt2");
    // RTMGRP_LINK | IPV4_IFADDR | IPV4_ROUTE | IPV6_IFADDR | IPV6_ROUTE.
    let groups = 0x1 | 0x10 | 0x40 | 0x100 | 0x400;
    let received: Vec<Vec<u8>> = ns.run(|| {
        let mut socket = Socket::new(NETLINK_ROUTE).unwrap();
        socket.bind(&NlAddr::new(0, groups)).unwrap();
        socket.set_non_blocking(true).unwrap();
        let (a, _) = Netns::veth(&ns, &other);
        ns.addr(&a, "192.0.2.1/24");
        ns.addr(&a, "2001:db8::1/64");
        ns.ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.2"]);
        ns.ip(&["route", "del", "198.51.100.0/24"]);
        ns.ip(&["link", "set", &a, "down"]);
        let mut got = Vec::new();
        for request in [
            RouteRequest::addresses().start(1).0,
            RouteRequest::links().start(2).0,
            RouteRequest::routes().start(3).0,
        ] {
            socket.send(&request, 0).unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut buf = vec![0; 65536];
        while let Ok(n) = socket.recv(&mut &mut buf[..], 0) {
            got.push(buf[..n].to_vec());
        }
        got
    });
    for d in &received {
        seeds.add("rtnetlink", d);
    }
}

/// The XFRM datagrams captured for oe-kernel's unit tests.
fn xfrm(out: &Path) {
    let mut seeds = Seeds::new(out, "kernel_event");
    let data = oe_integration::integration_dir().join("../crates/kernel/tests/data");
    for sub in ["host", "esp"] {
        for entry in std::fs::read_dir(data.join(sub)).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            seeds.add(sub, &bytes);
        }
    }
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    own_exchange(&out);
    kem(&out);
    xfrm(&out);
    rtnetlink(&out);
    dns_answers(&out);
    real_peers(&out);
}
