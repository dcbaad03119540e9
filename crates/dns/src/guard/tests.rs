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
    let guard = Guard::new(Fixed(Message::query()), limits, stats.clone());
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
    let guard = Guard::new(Fixed(message(flood)), WorkLimits::default(), stats.clone());
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
    let guard = Guard::new(Counting(sent.clone()), WorkLimits::default(), stats.clone());
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
