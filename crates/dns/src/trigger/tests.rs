//! The stub's decisions with a stand-in lookup (gated, so timing is controlled) and a stand-in
//! upstream on loopback that also sends spoofed responses. Needs no root; the stub against the
//! real signed fixture is tested in `tests/stub_fixture.rs`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use super::*;
use crate::address::AddressAnswer;
use crate::answer::{Answer, KeyRecord, LookupError, SecureKeys, Signature};
use crate::cache::{CacheConfig, KeyCache, Lookup};
use crate::ipseckey::{Gateway, IpsecKey, PublicKey};
use crate::target::LookupTarget;

/// `slow.*` keys wait for the gate; `moved.*` has a key but its validated address is
/// 192.0.2.99; every other name has a key and the address 192.0.2.7.
struct Fake {
    gate: Arc<Semaphore>,
}

fn secure_keys(owner: Name) -> SecureKeys {
    let now = SystemTime::now();
    SecureKeys {
        owner,
        records: vec![KeyRecord {
            data: Ok(IpsecKey {
                precedence: 10,
                gateway: Gateway::None,
                key: PublicKey::Ed25519([7; 32]),
            }),
            ttl: 300,
        }],
        signature: Signature {
            signer: Name::root(),
            key_tag: 1,
            algorithm: "ED25519".into(),
            inception: now,
            expiration: now + Duration::from_secs(3600),
        },
        ttl: 300,
        usable_until: now + Duration::from_secs(300),
    }
}

impl Lookup for Fake {
    async fn lookup(&self, target: &LookupTarget) -> Result<Answer, LookupError> {
        let owner = target.query_name();
        if owner.to_string().starts_with("slow") {
            self.gate.acquire().await.unwrap().forget();
        }
        Ok(Answer::Secure(secure_keys(owner)))
    }

    async fn lookup_addresses(&self, name: &Name) -> Result<AddressAnswer, LookupError> {
        let addr = if name.to_string().starts_with("moved") {
            "192.0.2.99"
        } else {
            "192.0.2.7"
        };
        Ok(AddressAnswer::Secure {
            owner: name.clone(),
            addrs: vec![addr.parse().unwrap()],
            usable_until: SystemTime::now() + Duration::from_secs(300),
        })
    }
}

#[derive(Default)]
struct Hook {
    calls: Mutex<Vec<(Name, Vec<IpAddr>)>>,
    called_at: Mutex<Vec<std::time::Instant>>,
    events: Mutex<Vec<TriggerEvent>>,
}

impl TriggerHook for Hook {
    fn wants(&self, _: &[IpAddr]) -> bool {
        true
    }

    fn secure(
        &self,
        name: Name,
        addrs: Vec<IpAddr>,
        _: SecureKeys,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.calls.lock().unwrap().push((name, addrs));
        self.called_at
            .lock()
            .unwrap()
            .push(std::time::Instant::now());
        Box::pin(async {})
    }

    fn record(&self, event: TriggerEvent) {
        self.events.lock().unwrap().push(event);
    }
}

impl Hook {
    async fn event(&self) -> TriggerEvent {
        for _ in 0..500 {
            if let Some(e) = self.events.lock().unwrap().first() {
                return e.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no trigger event")
    }
}

/// An upstream that answers A queries with 192.0.2.7, after two spoofed responses (wrong ID;
/// right ID, wrong question). Returns its address and the real answers it sent.
async fn upstream() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    tokio::spawn(async move {
        let mut buf = vec![0; 4096];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.unwrap();
            let query = Message::from_vec(&buf[..n]).unwrap();
            let (id, q) = (query.metadata.id, query.queries[0].clone());
            if q.name().to_string().starts_with("delayed") {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let spoof = response(id ^ 1, q.clone());
            let other = Query::query(Name::from_ascii("evil.example.").unwrap(), RecordType::A);
            let wrong = response(id, other);
            let real = response(id, q);
            for r in [spoof, wrong, real.clone()] {
                socket.send_to(&r, from).await.unwrap();
            }
            log.lock().unwrap().push(real);
        }
    });
    (addr, sent)
}

fn response(id: u16, q: Query) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    let name = q.name().clone();
    m.add_query(q);
    let a = RData::A(A("192.0.2.7".parse().unwrap()));
    m.add_answer(Record::from_rdata(name, 60, a));
    m.to_vec().unwrap()
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

async fn ask(server: SocketAddr, query: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(query, server).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf.truncate(n);
    buf
}

struct Bed {
    stub: Stub,
    addr: SocketAddr,
    hook: Arc<Hook>,
    gate: Arc<Semaphore>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn bed(hold: Duration) -> Bed {
    let (up, sent) = upstream().await;
    let gate = Arc::new(Semaphore::new(0));
    let cache = KeyCache::new(Fake { gate: gate.clone() }, CacheConfig::default());
    let hook = Arc::new(Hook::default());
    let config = StubConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstreams: vec![up],
        hold,
        ..StubConfig::default()
    };
    let listeners = Listeners::bind(&config.listen).await.unwrap();
    let stub = Stub::serve(config, listeners, cache, hook.clone()).unwrap();
    let addr = stub.local_addrs()[0];
    Bed {
        stub,
        addr,
        hook,
        gate,
        sent,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_responses_are_ignored_and_the_real_one_passes_unchanged() {
    let bed = bed(Duration::from_millis(500)).await;
    let got = ask(bed.addr, &query(0x4242, "host.example.")).await;
    let mut expected = bed.sent.lock().unwrap()[0].clone();
    expected[..2].copy_from_slice(&[0x42, 0x42]);
    assert_eq!(got, expected);
    let event = bed.hook.event().await;
    assert!(matches!(
        event.decision,
        Decision::Secure {
            completed: true,
            ..
        }
    ));
    assert_eq!(
        bed.hook.calls.lock().unwrap()[0].1,
        vec!["192.0.2.7".parse::<IpAddr>().unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_later_than_the_hold_still_starts_ike() {
    let bed = bed(Duration::from_millis(100)).await;
    let got = Message::from_vec(&ask(bed.addr, &query(1, "slow.example.")).await).unwrap();
    assert_eq!(got.answers.len(), 1, "released at the end of the hold");
    assert!(bed.hook.calls.lock().unwrap().is_empty());
    bed.gate.add_permits(1);
    let event = bed.hook.event().await;
    assert!(
        matches!(
            event.decision,
            Decision::Secure {
                late: true,
                completed: false,
                ..
            }
        ),
        "{event:?}"
    );
    assert!(event.hold_expired);
    assert_eq!(event.held_us, 100_000);
    assert_eq!(bed.hook.calls.lock().unwrap().len(), 1);
    let c = bed.stub.stats().counters;
    assert_eq!((c.late_keys, c.hold_expired), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_not_bound_to_addresses_dns_does_not_prove() {
    let bed = bed(Duration::from_millis(500)).await;
    let _ = ask(bed.addr, &query(1, "moved.example.")).await;
    let event = bed.hook.event().await;
    let Decision::AddressesNotProven { reason } = &event.decision else {
        panic!("{event:?}")
    };
    assert!(reason.contains("192.0.2.99"), "{reason}");
    // IKE may have started early to the proven address (the lookups beat the upstream here),
    // never to the answered one.
    let answered: IpAddr = "192.0.2.7".parse().unwrap();
    assert!(bed
        .hook
        .calls
        .lock()
        .unwrap()
        .iter()
        .all(|(_, a)| !a.contains(&answered)));
    assert!(!event.hold_expired);
    let json = serde_json::to_value(bed.stub.stats()).unwrap();
    assert_eq!(json["counters"]["addresses_not_proven"], 1);
    assert_eq!(
        json["recent"][0]["decision"]["outcome"],
        "addresses-not-proven"
    );
}

/// Key and addresses already known (cached) when the query comes: IKE starts at once, while the
/// upstream is still answering, and the answer waits only for what is left of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_key_starts_ike_before_the_upstream_answers() {
    let bed = bed(Duration::from_millis(500)).await;
    let asked = std::time::Instant::now();
    let answer = ask(bed.addr, &query(1, "delayed.example.")).await;
    let answered = std::time::Instant::now();
    assert_eq!(Message::from_vec(&answer).unwrap().answers.len(), 1);
    let event = bed.hook.event().await;
    assert!(
        matches!(
            event.decision,
            Decision::Secure {
                completed: true,
                late: false,
                ..
            }
        ),
        "{event:?}"
    );
    let called = bed.hook.called_at.lock().unwrap()[0];
    // The upstream holds its answer 300 ms; the hook was called well before it came.
    assert!(
        called < asked + Duration::from_millis(250),
        "{:?}",
        called - asked
    );
    assert!(answered >= asked + Duration::from_millis(300));
    assert_eq!(
        bed.hook.calls.lock().unwrap().len(),
        1,
        "one IKE start, not a second one"
    );
}

#[test]
fn config_is_checked() {
    let up: SocketAddr = "192.0.2.53:53".parse().unwrap();
    let base = StubConfig {
        upstreams: vec![up],
        ..StubConfig::default()
    };
    assert_eq!(base.check(&[DEFAULT_LISTEN]), Ok(()));
    let none = StubConfig {
        upstreams: vec![],
        ..base.clone()
    };
    // A stub may start before its upstreams are known (it answers SERVFAIL until then).
    assert_eq!(none.check(&[DEFAULT_LISTEN]), Ok(()));
    assert_eq!(base.check(&[up]), Err(StubError::Loop(up)));
    let zero = StubConfig {
        max_in_flight: 0,
        ..base
    };
    assert_eq!(zero.check(&[]), Err(StubError::Zero("max_in_flight")));
}
