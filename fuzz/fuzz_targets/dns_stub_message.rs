#![no_main]
//! The DNS trigger stub's message handling: any datagram an application (or an attacker on the
//! host) sends to the stub, and any datagram claiming to be an upstream's answer. No input may
//! panic; a reply the stub makes keeps the query's ID and, sent back to the stub, is dropped (no
//! loops); an answer only counts when it matches the question.

use oe_dns::trigger::message::{
    answered_addresses, check_response, inspect_query, QueryAction, Question, HEADER_LEN,
};

/// `host.example. IN A`, ID 0x1234, RD.
const QUERY: &[u8] = &[
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 4, b'h', b'o', b's',
    b't', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0x00, 0x01, 0x00, 0x01,
];

fn question() -> Question {
    match inspect_query(QUERY) {
        QueryAction::Forward(q) => q,
        other => panic!("the fixed query must be forwarded: {other:?}"),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // As a query from an application.
    match inspect_query(data) {
        QueryAction::Reply(reply, _) => {
            assert_eq!(reply.len(), HEADER_LEN);
            assert_eq!(
                reply.get(..2),
                data.get(..2),
                "the reply keeps the query's ID"
            );
            assert_eq!(
                inspect_query(&reply),
                QueryAction::Drop,
                "replies are never answered"
            );
        }
        QueryAction::Forward(q) => {
            assert_eq!(data.get(..2), Some(&q.id.to_be_bytes()[..]));
            let _ = q.asks_addresses();
        }
        QueryAction::Drop => {}
    }
    // As an upstream's answer to a fixed question.
    let q = question();
    let matched = check_response(&q, 0x1234, data).is_ok();
    if data.get(..2).is_some_and(|id| id != [0x12, 0x34]) {
        assert!(!matched, "an answer with another ID never matches");
    }
    let addrs = answered_addresses(&q, data);
    assert!(
        addrs.iter().all(|a| a.is_ipv4()),
        "an A question gets A addresses only"
    );
});
