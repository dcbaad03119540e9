use std::sync::Arc;

use futures_util::{stream, StreamExt};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, SigInput, DNSKEY, DS, RRSIG};
use hickory_resolver::proto::dnssec::{Algorithm, DigestType, PublicKeyBuf};
use hickory_resolver::proto::op::{
    DnsRequest, DnsRequestOptions, DnsResponse, Message, MessageType, Query,
};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType, SerialNumber};

use super::{check, Budget, Guard, GuardStats, WorkLimits, BUDGET};

fn owner() -> Name {
    Name::from_ascii("example.net.").unwrap()
}

fn rrsig(key_tag: u16) -> Record {
    let input = SigInput {
        type_covered: RecordType::DNSKEY,
        algorithm: Algorithm::ED25519,
        num_labels: 2,
        original_ttl: 3600,
        sig_expiration: SerialNumber::new(2),
        sig_inception: SerialNumber::new(1),
        key_tag,
        signer_name: owner(),
    };
    Record::from_rdata(
        owner(),
        60,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![0; 64]))),
    )
}

fn dnskey(byte: u8) -> Record {
    let key = DNSKEY::new(
        true,
        true,
        false,
        PublicKeyBuf::new(vec![byte; 32], Algorithm::ED25519),
    );
    Record::from_rdata(owner(), 60, RData::DNSSEC(DNSSECRData::DNSKEY(key)))
}

fn ds(tag: u16) -> Record {
    let ds = DS::new(tag, Algorithm::ED25519, DigestType::SHA256, vec![1; 32]);
    Record::from_rdata(owner(), 60, RData::DNSSEC(DNSSECRData::DS(ds)))
}

fn message(answers: Vec<Record>) -> Message {
    let mut m = Message::query();
    m.answers = answers;
    m
}

#[test]
fn rrsig_cap_applies_to_dnskey_rrsets() {
    let limits = WorkLimits::default();
    let ok: Vec<Record> = (0..8).map(rrsig).collect();
    assert_eq!(check(&limits, &message(ok)), Ok(()));
    let too_many: Vec<Record> = (0..9).map(rrsig).collect();
    assert!(check(&limits, &message(too_many))
        .unwrap_err()
        .contains("RRSIGs"));
}

#[test]
fn dnskey_and_key_tag_caps() {
    let limits = WorkLimits::default();
    let distinct: Vec<Record> = (0..16).map(dnskey).collect();
    assert_eq!(check(&limits, &message(distinct)), Ok(()));
    let too_many: Vec<Record> = (0..17).map(dnskey).collect();
    assert!(check(&limits, &message(too_many))
        .unwrap_err()
        .contains("DNSKEYs at"));
    // Three keys with one tag (the same key thrice): a key-tag collision flood.
    let colliding = vec![dnskey(7), dnskey(7), dnskey(7)];
    assert!(check(&limits, &message(colliding))
        .unwrap_err()
        .contains("key tag"));
}

#[test]
fn ds_cap() {
    let limits = WorkLimits::default();
    assert_eq!(check(&limits, &message((0..16).map(ds).collect())), Ok(()));
    assert!(check(&limits, &message((0..17).map(ds).collect()))
        .unwrap_err()
        .contains("DS"));
}

/// Answers every query with the same response.
#[derive(Clone)]
struct Fixed(Message);

impl DnsHandle for Fixed {
    type Response =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<DnsResponse, NetError>> + Send>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Self::Response {
        assert!(request.metadata.checking_disabled, "the guard sets CD");
        let mut m = self.0.clone();
        m.metadata.message_type = MessageType::Response;
        Box::pin(stream::once(async move {
            Ok(DnsResponse::from_message(m).unwrap())
        }))
    }
}

#[tokio::test]
async fn query_budget_per_lookup() {
    let stats = Arc::new(GuardStats::default());
    let limits = WorkLimits {
        max_queries_per_lookup: 2,
        ..WorkLimits::default()
    };
    let guard = Guard::new(Fixed(Message::query()), limits, stats.clone(), &[]);
    let budget = Arc::new(Budget::new(2));
    let results = BUDGET
        .scope(budget.clone(), async {
            let mut out = Vec::new();
            for _ in 0..3 {
                let q = Query::query(owner(), RecordType::A);
                out.push(
                    guard
                        .lookup(q, DnsRequestOptions::default())
                        .next()
                        .await
                        .unwrap(),
                );
            }
            out
        })
        .await;
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(&results[2], Err(NetError::Msg(m)) if m.contains("more than 2 queries")));
    assert_eq!(budget.queries(), 3);
    assert!(budget.rejection.lock().unwrap().is_some());
    assert_eq!(stats.rejected.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test]
async fn oversized_response_is_rejected_before_validation() {
    let stats = Arc::new(GuardStats::default());
    let flood: Vec<Record> = (0..20).map(rrsig).collect();
    let guard = Guard::new(
        Fixed(message(flood)),
        WorkLimits::default(),
        stats.clone(),
        &[],
    );
    let q = Query::query(owner(), RecordType::DNSKEY);
    let result = guard
        .lookup(q, DnsRequestOptions::default())
        .next()
        .await
        .unwrap();
    assert!(matches!(result, Err(NetError::Msg(m)) if m.starts_with(super::REJECTED)));
}

/// Answers every query with `dnskey(1)` (TTL 60), counting the queries that reach it.
#[derive(Clone)]
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl DnsHandle for Counting {
    type Response =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<DnsResponse, NetError>> + Send>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, _: DnsRequest) -> Self::Response {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut m = message(vec![dnskey(1)]);
        m.metadata.message_type = MessageType::Response;
        Box::pin(stream::once(async move {
            Ok(DnsResponse::from_message(m).unwrap())
        }))
    }
}

#[tokio::test]
async fn chain_responses_are_kept_until_flushed() {
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stats = Arc::new(GuardStats::default());
    let guard = Guard::new(
        Counting(sent.clone()),
        WorkLimits::default(),
        stats.clone(),
        &[],
    );
    let ask = |t: RecordType| {
        let q = Query::query(owner(), t);
        let guard = guard.clone();
        async move {
            guard
                .lookup(q, DnsRequestOptions::default())
                .next()
                .await
                .unwrap()
                .unwrap()
        }
    };
    let count = || sent.load(std::sync::atomic::Ordering::SeqCst);
    // DNSKEY and DS: fetched once, then served from the cache (as received).
    let first = ask(RecordType::DNSKEY).await;
    let again = ask(RecordType::DNSKEY).await;
    assert_eq!(first.answers, again.answers);
    ask(RecordType::DS).await;
    ask(RecordType::DS).await;
    assert_eq!(count(), 2);
    // Other types always go upstream.
    ask(RecordType::A).await;
    ask(RecordType::A).await;
    assert_eq!(count(), 4);
    assert_eq!(
        stats.chain_hits.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // A flush (after a bogus outcome) fetches the chain afresh.
    guard.flush_chain();
    ask(RecordType::DNSKEY).await;
    assert_eq!(count(), 5);
}

/// Answers every query after `delay` with one RRSIG by `signer` (TTL 60), recording the
/// questions that reach it.
#[derive(Clone)]
struct Signed {
    signer: Name,
    delay: std::time::Duration,
    asked: Arc<std::sync::Mutex<Vec<(Name, RecordType)>>>,
}

impl DnsHandle for Signed {
    type Response =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<DnsResponse, NetError>> + Send>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Self::Response {
        let q = request.queries[0].clone();
        self.asked
            .lock()
            .unwrap()
            .push((q.name().clone(), q.query_type()));
        let input = SigInput {
            type_covered: q.query_type(),
            algorithm: Algorithm::ED25519,
            num_labels: q.name().num_labels(),
            original_ttl: 60,
            sig_expiration: SerialNumber::new(2),
            sig_inception: SerialNumber::new(1),
            key_tag: 1,
            signer_name: self.signer.clone(),
        };
        let sig = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![0; 64])));
        let mut m = message(vec![Record::from_rdata(q.name().clone(), 60, sig)]);
        m.add_query(q);
        m.metadata.message_type = MessageType::Response;
        let delay = self.delay;
        Box::pin(stream::once(async move {
            tokio::time::sleep(delay).await;
            Ok(DnsResponse::from_message(m).unwrap())
        }))
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A response signed by `ed.example.` starts the fetches of its DNSKEY and DS and of the root's
/// DNSKEY (the anchor) at once; the validator's own requests for them then send nothing more,
/// and count against the lookup's budget only once.
#[tokio::test]
async fn the_chain_is_fetched_ahead_once_the_signer_is_known() {
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let upstream = Signed {
        signer: name("ed.example."),
        delay: std::time::Duration::from_millis(50),
        asked: asked.clone(),
    };
    let stats = Arc::new(GuardStats::default());
    let guard = Guard::new(
        upstream,
        WorkLimits::default(),
        stats.clone(),
        &[Name::root()],
    );
    let budget = Arc::new(Budget::new(64));
    let lookup = |n: &str, t| {
        let (guard, q) = (guard.clone(), Query::query(name(n), t));
        async move { guard.lookup(q, DnsRequestOptions::default()).next().await }
    };
    let started = tokio::time::Instant::now();
    BUDGET
        .scope(budget.clone(), async {
            lookup("host.ed.example.", RecordType::Unknown(45)).await;
            // Just after the answer (once the fetch tasks have run), the three chain RRsets are
            // in flight already.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let in_flight = asked.lock().unwrap().clone();
            assert_eq!(in_flight.len(), 4, "{in_flight:?}");
            let (a, b, c) = futures_util::join!(
                lookup("ed.example.", RecordType::DNSKEY),
                lookup("ed.example.", RecordType::DS),
                lookup(".", RecordType::DNSKEY),
            );
            assert!(a.unwrap().is_ok() && b.unwrap().is_ok() && c.unwrap().is_ok());
        })
        .await;
    // Two round trips of 50 ms, not four.
    assert!(started.elapsed() < std::time::Duration::from_millis(150));
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 4, "{asked:?}");
    for key in [
        (name("ed.example."), RecordType::DNSKEY),
        (name("ed.example."), RecordType::DS),
        (Name::root(), RecordType::DNSKEY),
    ] {
        assert!(asked.contains(&key), "{key:?} not fetched: {asked:?}");
    }
    assert_eq!(budget.queries(), 4);
    assert_eq!(
        stats.prefetches.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(
        stats.chain_hits.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

/// Signers that do not contain the name asked are not followed (an RRSIG cannot sign outside
/// its zone), and at most two signers per response are.
#[test]
fn only_ancestor_signers_are_followed() {
    let sig = |owner: &str, signer: &str| {
        let input = SigInput {
            type_covered: RecordType::A,
            algorithm: Algorithm::ED25519,
            num_labels: 2,
            original_ttl: 60,
            sig_expiration: SerialNumber::new(2),
            sig_inception: SerialNumber::new(1),
            key_tag: 1,
            signer_name: name(signer),
        };
        let data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![0; 64])));
        Record::from_rdata(name(owner), 60, data)
    };
    let m = message(vec![
        sig("a.b.example.", "evil.example."),
        sig("a.b.example.", "other.net."),
        sig("a.b.example.", "b.example."),
        sig("a.b.example.", "example."),
        sig("a.b.example.", "a.b.example."),
    ]);
    let wanted = super::prefetch::wanted(&name("a.b.example."), &m, &[Name::root()]);
    assert_eq!(
        wanted,
        vec![
            (name("b.example."), RecordType::DNSKEY),
            (name("b.example."), RecordType::DS),
            (Name::root(), RecordType::DNSKEY),
            (name("example."), RecordType::DNSKEY),
            (name("example."), RecordType::DS),
        ]
    );
}

/// Owner names differing only in case are one owner (RFC 4343): varying the case does not get
/// around a cap.
#[test]
fn caps_ignore_the_case_of_owner_names() {
    let limits = WorkLimits::default();
    let mut records: Vec<Record> = (0..5).map(rrsig).collect();
    for mut r in (5..9).map(rrsig) {
        r.name = Name::from_ascii("ExAmPlE.NeT.").unwrap();
        records.push(r);
    }
    assert!(check(&limits, &message(records))
        .unwrap_err()
        .contains("RRSIGs"));
}
