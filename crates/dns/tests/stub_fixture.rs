//! The DNS trigger's stub against the real signed DNS fixture (nsd + knot behind a non-validating
//! unbound, in a network namespace), with a hook that records every call: forwarding is byte for
//! byte, keyed names trigger and are held until the hook completes, everything else is released
//! at once, the hold is bounded, malformed input is refused, TCP works.

// Test code: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use oe_dns::trigger::{
    Decision, Listeners, Stub, StubConfig, TriggerEvent, TriggerHook, DEFAULT_LISTEN,
};
use oe_dns::{
    current_thread_runtime, AnchorSet, CacheConfig, KeyCache, PublicKey, SecureKeys, Upstream,
    Validator, ValidatorConfig,
};
use oe_integration::dns::{names, DnsFixture};
use oe_integration::netns::Netns;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

// ---------- the recording hook ----------

/// Records every call. Wants the documentation ranges (192.0.2.0/24, 2001:db8::/32) when
/// `wanted`; `secure` futures complete when the gate opens.
struct Recorder {
    wanted: bool,
    fail_closed: bool,
    gate: watch::Sender<bool>,
    secure: Mutex<Vec<(Name, Vec<IpAddr>, SecureKeys)>>,
    events: Mutex<Vec<TriggerEvent>>,
}

impl Recorder {
    fn new(wanted: bool, gate_open: bool) -> Arc<Self> {
        Arc::new(Self {
            wanted,
            fail_closed: false,
            gate: watch::channel(gate_open).0,
            secure: Mutex::default(),
            events: Mutex::default(),
        })
    }

    fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    fn secure_calls(&self) -> Vec<(Name, Vec<IpAddr>, SecureKeys)> {
        self.secure.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `n` events were recorded; returns them.
    async fn events(&self, n: usize) -> Vec<TriggerEvent> {
        for _ in 0..500 {
            let events = self.events.lock().unwrap().clone();
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {n} events: {:?}", self.events.lock().unwrap());
    }
}

fn documentation(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.octets()[..3] == [192, 0, 2],
        IpAddr::V6(v6) => v6.segments()[..2] == [0x2001, 0xdb8],
    }
}

impl TriggerHook for Recorder {
    fn wants(&self, addrs: &[IpAddr]) -> bool {
        self.wanted && addrs.iter().any(documentation)
    }

    fn secure(
        &self,
        name: Name,
        addrs: Vec<IpAddr>,
        keys: SecureKeys,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.secure.lock().unwrap().push((name, addrs, keys));
        let mut gate = self.gate.subscribe();
        Box::pin(async move {
            let _ = gate.wait_for(|open| *open).await;
        })
    }

    fn record(&self, event: TriggerEvent) {
        self.events.lock().unwrap().push(event);
    }

    fn fail_closed(&self, addrs: &[IpAddr]) -> bool {
        self.fail_closed && addrs.iter().any(documentation)
    }
}

// ---------- the bed ----------

struct Bed {
    ns: Netns,
    fixture: DnsFixture,
}

fn bed() -> Bed {
    let ns = Netns::new("stub");
    let fixture = DnsFixture::start_in(&ns);
    Bed { ns, fixture }
}

/// A TXT RRset of about 4 kB at `big.ed.example.` (16 strings of 250 bytes): answers large
/// enough that a client which never reads fills the socket buffers after a few of them.
const BIG: &str = "big.ed.example.";

fn bed_with_big_answer() -> Bed {
    let ns = Netns::new("stubbig");
    let strings = vec![format!("\"{}\"", "x".repeat(250)); 16].join(" ");
    let fixture = DnsFixture::builder()
        .record("ed.example.", &format!("big TXT {strings}"))
        .start_in(&ns);
    Bed { ns, fixture }
}

impl Bed {
    /// Runs `body` on a multi-thread runtime inside the fixture's namespace.
    fn run<F: Future<Output = ()> + Send>(&self, body: impl FnOnce(Env) -> F + Send) {
        let env = Env {
            resolver: self.fixture.resolver(),
            anchor: self.fixture.trust_anchor_dnskey(),
        };
        self.ns.run(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(body(env));
        });
    }
}

struct Env {
    resolver: SocketAddr,
    anchor: PathBuf,
}

impl Env {
    fn cache(&self) -> KeyCache<Validator> {
        let config = ValidatorConfig {
            upstream: Upstream::Servers(vec![self.resolver]),
            anchors: AnchorSet::from_file(&self.anchor).unwrap(),
            lookup_timeout: Duration::from_secs(10),
            ..ValidatorConfig::default()
        };
        KeyCache::new(Validator::new(config).unwrap(), CacheConfig::default())
    }

    /// A stub on 127.0.2.53:53 forwarding to `upstream` (the fixture's resolver unless given).
    async fn stub(
        &self,
        hook: &Arc<Recorder>,
        tweak: impl FnOnce(&mut StubConfig),
    ) -> (Stub, SocketAddr) {
        let mut config = StubConfig {
            upstreams: vec![self.resolver],
            hold: Duration::from_secs(5),
            ..StubConfig::default()
        };
        tweak(&mut config);
        let listeners = Listeners::bind(&config.listen).await.unwrap();
        let stub = Stub::serve(config, listeners, self.cache(), hook.clone()).unwrap();
        let addr = stub.local_addrs()[0];
        (stub, addr)
    }
}

// ---------- a client ----------

fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

async fn ask(server: SocketAddr, query: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(query).await.unwrap();
    let mut buf = vec![0; 65_535];
    let n = tokio::time::timeout(wait, socket.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    buf.truncate(n);
    Some(buf)
}

async fn answer(server: SocketAddr, query: &[u8]) -> Message {
    let bytes = ask(server, query, Duration::from_secs(10))
        .await
        .expect("no answer within 10 s");
    Message::from_vec(&bytes).unwrap()
}

fn addresses(msg: &Message) -> Vec<IpAddr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A UDP relay between the stub and the resolver that records every response it passes on.
async fn recording_relay(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (sock, log) = (socket.clone(), seen.clone());
    tokio::spawn(async move {
        let mut buf = vec![0; 65_535];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let q = buf[..n].to_vec();
            let (sock, log) = (sock.clone(), log.clone());
            tokio::spawn(async move {
                if let Some(r) = ask(upstream, &q, Duration::from_secs(5)).await {
                    log.lock().unwrap().push(r.clone());
                    sock.send_to(&r, from).await.unwrap();
                }
            });
        }
    });
    (addr, seen)
}

async fn tcp_exchange(server: SocketAddr, queries: &[Vec<u8>]) -> Vec<Message> {
    let mut stream = TcpStream::connect(server).await.unwrap();
    for q in queries {
        stream
            .write_all(&u16::try_from(q.len()).unwrap().to_be_bytes())
            .await
            .unwrap();
        stream.write_all(q).await.unwrap();
    }
    let mut out = Vec::new();
    for _ in queries {
        let len = tokio::time::timeout(Duration::from_secs(10), stream.read_u16())
            .await
            .unwrap()
            .unwrap();
        let mut buf = vec![0; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        out.push(Message::from_vec(&buf).unwrap());
    }
    out
}

// ---------- the tests ----------

/// Answers are the upstream's bytes with the application's ID; the stub never reorders, rewrites
/// or trims them, whatever the query (addresses, NXDOMAIN, a large DNSSEC answer, TXT).
#[test]
fn forwarded_answers_are_the_upstreams_bytes() {
    let bed = bed();
    bed.run(|env| async move {
        let (relay, seen) = recording_relay(env.resolver).await;
        let hook = Recorder::new(true, true);
        let (stub, addr) = env.stub(&hook, |c| c.upstreams = vec![relay]).await;
        let mut dnssec = Message::new(0x5151, MessageType::Query, OpCode::Query);
        dnssec.metadata.recursion_desired = true;
        dnssec.add_query(Query::query(
            Name::from_ascii("ed.example.").unwrap(),
            RecordType::DNSKEY,
        ));
        let mut edns = hickory_proto::op::Edns::new();
        edns.set_dnssec_ok(true);
        edns.set_max_payload(4096);
        dnssec.set_edns(edns);
        let cases = [
            query(0x0001, names::NSEC_NOKEY, RecordType::A),
            query(0xFFFF, names::ED_HOST, RecordType::AAAA),
            query(0x1234, names::NSEC_NXDOMAIN, RecordType::A),
            query(0x4321, names::ED_HOST, RecordType::TXT),
            dnssec.to_vec().unwrap(),
        ];
        let mut fresh_ids = 0;
        for q in &cases {
            let before = seen.lock().unwrap().len();
            let got = ask(addr, q, Duration::from_secs(10))
                .await
                .expect("an answer");
            let upstream = seen.lock().unwrap()[before].clone();
            let mut expected = upstream.clone();
            expected[..2].copy_from_slice(&q[..2]);
            assert_eq!(got, expected, "answer differs from the upstream's bytes");
            fresh_ids += usize::from(upstream[..2] != q[..2]);
        }
        // The upstream saw random IDs (one may collide by chance, 1 in 65536).
        assert!(
            fresh_ids >= cases.len() - 1,
            "the IDs on the wire must be fresh"
        );
        let counters = stub.stats().counters;
        assert_eq!(counters.forwarded, 5);
        assert_eq!(counters.answered, 5);
        assert_eq!(counters.address_queries, 3);
    });
}

/// A keyed name: the stub calls the hook with the name's secure key and its validated addresses,
/// and holds the answer until the hook's future completes.
#[test]
fn keyed_name_triggers_and_is_held_until_the_hook_completes() {
    let bed = bed();
    bed.run(|env| async move {
        let hook = Recorder::new(true, false);
        let (stub, addr) = env.stub(&hook, |_| {}).await;
        let q = query(77, names::ED_HOST, RecordType::A);
        let asked = Instant::now();
        let waiting = tokio::spawn(async move { ask(addr, &q, Duration::from_secs(10)).await });
        // The hook is called with the key and the address; the answer is held meanwhile.
        for _ in 0..2000 {
            if !hook.secure_calls().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(hook.secure_calls().len(), 1, "the hook was not called");
        let called = asked.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the answer must wait for the hook");
        hook.open_gate();
        let bytes = waiting
            .await
            .unwrap()
            .expect("released when the hook completed");
        let msg = Message::from_vec(&bytes).unwrap();
        assert_eq!(msg.metadata.id, 77);
        assert_eq!(addresses(&msg), vec![ip("192.0.2.30")]);
        let (name, addrs, keys) = hook.secure_calls()[0].clone();
        assert_eq!(name.to_string(), names::ED_HOST);
        assert_eq!(addrs, vec![ip("192.0.2.30")]);
        let secure = oe_dns::Answer::Secure(keys);
        assert!(matches!(secure.usable_keys()[0].key, PublicKey::Ed25519(_)));
        let events = hook.events(1).await;
        match &events[0].decision {
            Decision::Secure {
                addrs,
                completed,
                late,
                keys,
                ..
            } => {
                assert_eq!(addrs, &vec![ip("192.0.2.30")]);
                assert!(*completed && !*late);
                assert_eq!(*keys, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(!events[0].hold_expired);
        assert!(events[0].held_us >= 300_000, "{:?}", events[0]);
        println!(
            "hook called {called:?} after the query; held {} us",
            events[0].held_us
        );

        // AAAA of the same name (cached key now), and other zones' algorithms: gate open.
        for (name, qtype, want, key) in [
            (names::ED_HOST, RecordType::AAAA, "2001:db8::30", "Ed25519"),
            (names::RSA_HOST, RecordType::A, "192.0.2.10", "Rsa"),
            (
                names::ECDSA_HOST,
                RecordType::AAAA,
                "2001:db8::20",
                "EcdsaP256",
            ),
            (names::NSEC3_HOST, RecordType::A, "192.0.2.40", "Ed25519"),
        ] {
            let msg = answer(addr, &query(1, name, qtype)).await;
            assert_eq!(addresses(&msg), vec![ip(want)], "{name}");
            let calls = hook.secure_calls();
            let (n, a, k) = calls.last().unwrap();
            assert_eq!((n.to_string().as_str(), a.clone()), (name, vec![ip(want)]));
            let secure = oe_dns::Answer::Secure(k.clone());
            assert!(
                format!("{:?}", secure.usable_keys()[0].key).starts_with(key),
                "{name}"
            );
        }
        let events = hook.events(5).await;
        assert!(events.iter().all(|e| matches!(
            e.decision,
            Decision::Secure {
                completed: true,
                ..
            }
        )));
        let c = stub.stats().counters;
        assert_eq!((c.secure_keys, c.opportunistic, c.held), (5, 5, 5), "{c:?}");
    });
}

/// No key (proven absent), an insecure key, a tampered (bogus) key, expired signatures (bogus):
/// the application gets its address at once, the hook is never asked to start IKE, and the bogus
/// keys are reported.
#[test]
fn names_without_a_usable_key_are_released_at_once_and_never_trigger() {
    let bed = bed();
    bed.run(|env| async move {
        // The gate never opens: a call to `secure` would hold the answer for the full 5 s.
        let hook = Recorder::new(true, false);
        let (stub, addr) = env.stub(&hook, |_| {}).await;
        let cases = [
            (names::NSEC_NOKEY, "192.0.2.11", "no-key"),
            (names::INSECURE_HOST, "192.0.2.50", "insecure"),
            (names::TAMPERED_HOST, "192.0.2.32", "bogus"),
            (names::EXPIRED_HOST, "192.0.2.60", "bogus"),
        ];
        for (i, (name, want, decision)) in cases.iter().enumerate() {
            let msg = answer(addr, &query(9, name, RecordType::A)).await;
            assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{name}");
            assert_eq!(addresses(&msg), vec![ip(want)], "{name}");
            let events = hook.events(i + 1).await;
            let event = &events[i];
            assert_eq!(event.name, *name);
            assert_eq!(event.decision.word(), *decision, "{name}: {event:?}");
            assert!(
                !event.hold_expired,
                "{name}: released by the decision, not the hold"
            );
            println!(
                "{name}: {} after {} us",
                event.decision.word(),
                event.held_us
            );
        }
        assert!(hook.secure_calls().is_empty(), "no IKE from unusable keys");
        let events = hook.events(4).await;
        let Decision::Bogus { reason } = &events[2].decision else {
            panic!()
        };
        assert!(reason.contains("IPSECKEY"), "{reason}");
        let c = stub.stats().counters;
        assert_eq!(
            (c.no_key, c.insecure, c.bogus, c.secure_keys, c.hold_expired),
            (1, 1, 2, 0, 0),
            "{c:?}"
        );
        // Addresses outside the opportunistic groups: no event, no hold.
        let hook = Recorder::new(false, false);
        let (stub, addr) = env
            .stub(&hook, |c| c.listen = vec!["127.0.2.54:53".parse().unwrap()])
            .await;
        let msg = answer(addr, &query(10, names::ED_HOST, RecordType::A)).await;
        assert_eq!(addresses(&msg), vec![ip("192.0.2.30")]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(hook.events.lock().unwrap().is_empty() && hook.secure_calls().is_empty());
        let c = stub.stats().counters;
        assert_eq!(
            (c.address_queries, c.opportunistic, c.held),
            (1, 0, 0),
            "{c:?}"
        );
    });
}

/// A hook that never completes holds the answer for the configured time, not longer.
#[test]
fn hold_is_bounded_when_the_hook_never_completes() {
    let bed = bed();
    bed.run(|env| async move {
        let hook = Recorder::new(true, false);
        let hold = Duration::from_millis(300);
        let (stub, addr) = env.stub(&hook, |c| c.hold = hold).await;
        let started = Instant::now();
        let msg = answer(addr, &query(3, names::ED_HOST, RecordType::A)).await;
        let elapsed = started.elapsed();
        assert_eq!(addresses(&msg), vec![ip("192.0.2.30")]);
        assert!(
            elapsed >= hold,
            "released before the hold ended: {elapsed:?}"
        );
        let events = hook.events(1).await;
        assert!(events[0].hold_expired, "{:?}", events[0]);
        assert!(matches!(
            events[0].decision,
            Decision::Secure {
                completed: false,
                ..
            }
        ));
        assert_eq!(events[0].held_us, 300_000);
        let c = stub.stats().counters;
        assert_eq!((c.hold_expired, c.hold_max_us), (1, 300_000));
        println!("answer after {elapsed:?} with a hold of {hold:?}");
    });
}

/// Malformed messages get FORMERR or are dropped, and the stub keeps serving, over UDP and TCP.
#[test]
fn malformed_messages_never_disturb_the_stub() {
    let bed = bed();
    bed.run(|env| async move {
        let hook = Recorder::new(true, true);
        let (stub, addr) = env.stub(&hook, |_| {}).await;
        let quick = Duration::from_millis(300);
        // Too short for a header: dropped.
        assert_eq!(ask(addr, &[0x12, 0x34, 0x01], quick).await, None);
        // A header and garbage: FORMERR with the ID.
        let mut garbage = vec![
            0xAB, 0xCD, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        garbage.extend_from_slice(&[0xFF; 40]);
        let reply = ask(addr, &garbage, Duration::from_secs(5)).await.unwrap();
        assert_eq!(&reply[..2], &[0xAB, 0xCD]);
        assert_eq!(reply[3] & 0x0F, 1, "FORMERR");
        // A response sent to the stub: dropped (no reflection).
        let mut response = query(5, names::ED_HOST, RecordType::A);
        response[2] |= 0x80;
        assert_eq!(ask(addr, &response, quick).await, None);
        // Too large: FORMERR.
        let mut huge = query(6, names::ED_HOST, RecordType::A);
        huge.resize(5000, 0);
        let reply = ask(addr, &huge, Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply[3] & 0x0F, 1);
        // TCP: a length prefix over the limit closes the connection.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&[0xFF, 0xFF, 1, 2, 3]).await.unwrap();
        let mut buf = [0; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "closed: {n:?}");
        // TCP: a truncated query inside a valid frame gets FORMERR.
        let mut q = query(8, names::ED_HOST, RecordType::A);
        q.truncate(q.len() - 3);
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&u16::try_from(q.len()).unwrap().to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&q).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        let mut reply = vec![0; usize::from(len)];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!((&reply[..2], reply[3] & 0x0F), (&[0, 8][..], 1));
        // Still serving.
        let msg = answer(addr, &query(9, names::ED_HOST, RecordType::A)).await;
        assert_eq!(addresses(&msg), vec![ip("192.0.2.30")]);
        let c = stub.stats().counters;
        assert_eq!((c.formerr, c.dropped), (3, 3), "{c:?}");
    });
}

/// Over TCP: pipelined queries on one connection, both answered, the keyed one triggering.
#[test]
fn tcp_queries_are_forwarded_and_trigger() {
    let bed = bed();
    bed.run(|env| async move {
        let hook = Recorder::new(true, true);
        let (stub, addr) = env.stub(&hook, |_| {}).await;
        let answers = tcp_exchange(
            addr,
            &[
                query(21, names::ECDSA_HOST, RecordType::A),
                query(22, names::NSEC_NOKEY, RecordType::A),
            ],
        )
        .await;
        let mut by_id: Vec<(u16, Vec<IpAddr>)> = answers
            .iter()
            .map(|m| (m.metadata.id, addresses(m)))
            .collect();
        by_id.sort();
        assert_eq!(
            by_id,
            vec![(21, vec![ip("192.0.2.20")]), (22, vec![ip("192.0.2.11")])]
        );
        assert_eq!(hook.secure_calls().len(), 1);
        assert_eq!(hook.secure_calls()[0].1, vec![ip("192.0.2.20")]);
        let c = stub.stats().counters;
        assert_eq!(
            (c.tcp_connections, c.tcp_queries, c.secure_keys),
            (1, 2, 1),
            "{c:?}"
        );
    });
}

/// TCP connections whose client never reads (answers pile up in the socket buffers) must not
/// starve anyone else: the stub releases a query's permit once its answer is ready, gives up
/// writing after the write timeout and closes such connections; UDP and TCP clients still get
/// answers meanwhile.
#[test]
fn tcp_clients_that_never_read_do_not_starve_dns() {
    let bed = bed_with_big_answer();
    bed.run(|env| async move {
        let hook = Recorder::new(false, true);
        let (stub, addr) = env
            .stub(&hook, |c| {
                c.max_in_flight = 8;
                c.max_tcp_pipeline = 4;
                c.max_tcp_connections = 8;
                c.tcp_write_timeout = Duration::from_millis(500);
            })
            .await;
        // Three connections whose clients send queries for the 4 kB answer as fast as the stub
        // takes them and never read: the answers fill the socket buffers, whatever their size.
        let mut stuck = Vec::new();
        for c in 0..3u16 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(1024).unwrap();
            let (read_half, mut write_half) = socket.connect(addr).await.unwrap().into_split();
            tokio::spawn(async move {
                let mut id = c.wrapping_mul(10_000);
                loop {
                    id = id.wrapping_add(1);
                    let mut frame = vec![0, 0];
                    frame.extend(query(id, BIG, RecordType::TXT));
                    let len = u16::try_from(frame.len() - 2).unwrap();
                    frame[..2].copy_from_slice(&len.to_be_bytes());
                    if write_half.write_all(&frame).await.is_err() {
                        break;
                    }
                }
            });
            stuck.push(read_half);
        }
        // Let the answers pile up.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let msg = ask(
            addr,
            &query(41, names::ED_HOST, RecordType::A),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|| {
            panic!(
                "a UDP client must still get an answer: {:?}",
                stub.stats().counters
            )
        });
        assert_eq!(
            addresses(&Message::from_vec(&msg).unwrap()),
            vec![ip("192.0.2.30")]
        );
        let answers = tokio::time::timeout(
            Duration::from_secs(5),
            tcp_exchange(addr, &[query(42, names::ED_HOST, RecordType::A)]),
        )
        .await
        .expect("a TCP client must still get an answer");
        assert_eq!(addresses(&answers[0]), vec![ip("192.0.2.30")]);
        // The stuck connections were closed by the stub: reading now finds the end of the
        // stream after whatever answers made it into the buffers.
        for mut stream in stuck {
            let mut sink = vec![0; 65_536];
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match stream.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            assert!(closed.is_ok(), "a connection that never read was left open");
        }
        let c = stub.stats().counters;
        assert!(c.tcp_write_timeouts >= 3, "{c:?}");
    });
}

/// No upstream answers: SERVFAIL with the application's ID; a fail-closed group answers SERVFAIL
/// for a name without a key but the real answer for a keyed name.
#[test]
fn upstream_failure_and_fail_closed() {
    let bed = bed();
    bed.run(|env| async move {
        let hook = Recorder::new(true, true);
        let (stub, addr) = env
            .stub(&hook, |c| {
                c.upstreams = vec!["127.0.0.9:53".parse().unwrap()];
                c.upstream_timeout = Duration::from_millis(200);
            })
            .await;
        let msg = answer(addr, &query(31, names::ED_HOST, RecordType::A)).await;
        assert_eq!(
            (msg.metadata.id, msg.metadata.response_code),
            (31, ResponseCode::ServFail)
        );
        assert_eq!(stub.stats().counters.upstream_failures, 1);
        // Stopped and its sockets closed: the address can be served again at once.
        stub.shutdown().await;

        let hook = Arc::new(Recorder {
            fail_closed: true,
            ..Arc::into_inner(Recorder::new(true, true)).unwrap()
        });
        let (stub, addr) = env.stub(&hook, |_| {}).await;
        let msg = answer(addr, &query(32, names::NSEC_NOKEY, RecordType::A)).await;
        assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
        let msg = answer(addr, &query(33, names::ED_HOST, RecordType::A)).await;
        assert_eq!(addresses(&msg), vec![ip("192.0.2.30")]);
        assert_eq!(stub.stats().counters.failed_closed, 1);
    });
}

/// The default listen address is what the docs say, and the stub refuses to forward to itself.
#[test]
fn default_address_and_loop_refused() {
    assert_eq!(DEFAULT_LISTEN, "127.0.2.53:53".parse().unwrap());
    let rt = current_thread_runtime().unwrap();
    let ns = Netns::new("stubloop");
    ns.run(|| {
        rt.block_on(async {
            let listeners = Listeners::bind(&[DEFAULT_LISTEN]).await.unwrap();
            let config = StubConfig {
                upstreams: vec![DEFAULT_LISTEN],
                ..StubConfig::default()
            };
            let cache = KeyCache::new(
                Validator::new(ValidatorConfig {
                    upstream: Upstream::Servers(vec!["127.0.0.9:53".parse().unwrap()]),
                    ..ValidatorConfig::default()
                })
                .unwrap(),
                CacheConfig::default(),
            );
            let refused = Stub::serve(config, listeners, cache, Recorder::new(true, true));
            assert!(matches!(refused, Err(oe_dns::trigger::StubError::Loop(_))));
        });
    });
}
