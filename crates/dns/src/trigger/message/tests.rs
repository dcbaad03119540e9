//! Message handling on crafted queries and responses.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn query(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(qname), qtype));
    m.to_vec().unwrap()
}

fn question(bytes: &[u8]) -> Question {
    match inspect_query(bytes) {
        QueryAction::Forward(q) => q,
        other => panic!("{other:?}"),
    }
}

fn response(id: u16, qname: &str, qtype: RecordType, answers: Vec<Record>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(name(qname), qtype));
    m.insert_answers(answers);
    m.to_vec().unwrap()
}

fn a(owner: &str, addr: &str) -> Record {
    Record::from_rdata(name(owner), 60, RData::A(A(addr.parse().unwrap())))
}

#[test]
fn well_formed_queries_are_forwarded() {
    let q = question(&query(0x1234, "Host.Example.", RecordType::A));
    assert_eq!(q.id, 0x1234);
    assert_eq!(q.name, name("host.example."));
    assert!(q.asks_addresses());
    let q = question(&query(1, "host.example.", RecordType::AAAA));
    assert!(q.asks_addresses());
    let q = question(&query(1, "host.example.", RecordType::TXT));
    assert!(!q.asks_addresses());
}

#[test]
fn short_messages_and_responses_are_dropped() {
    assert_eq!(inspect_query(&[]), QueryAction::Drop);
    assert_eq!(inspect_query(&[0; 11]), QueryAction::Drop);
    let mut r = query(7, "host.example.", RecordType::A);
    r[2] |= 0x80;
    assert_eq!(inspect_query(&r), QueryAction::Drop);
}

#[test]
fn malformed_queries_get_formerr_with_their_id() {
    let formerr = |bytes: &[u8]| match inspect_query(bytes) {
        QueryAction::Reply(reply, Rcode::FormErr) => reply,
        other => panic!("{other:?}"),
    };
    // A bare header (no question), two questions, garbage after the header.
    let mut header = vec![0xAB, 0xCD, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    let reply = formerr(&header);
    assert_eq!(reply, vec![0xAB, 0xCD, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
    header[5] = 2;
    formerr(&header);
    let mut q = query(9, "host.example.", RecordType::A);
    q.truncate(q.len() - 2);
    let reply = formerr(&q);
    assert_eq!(&reply[..2], &[0, 9]);
    // Counts that cannot fit: 65535 answers in a 40-byte message.
    let mut q = query(9, "host.example.", RecordType::A);
    q[6] = 0xFF;
    q[7] = 0xFF;
    formerr(&q);
    // Trailing garbage inside a claimed record.
    let mut q = query(9, "host.example.", RecordType::A);
    q[11] = 1;
    q.extend_from_slice(&[0xC0, 0xFF, 0, 1, 0, 1, 0, 0, 0, 1, 0, 200]);
    formerr(&q);
}

#[test]
fn other_opcodes_get_notimp() {
    let mut q = query(3, "host.example.", RecordType::A);
    q[2] = (q[2] & 0x87) | (u8::from(OpCode::Update) << 3);
    match inspect_query(&q) {
        QueryAction::Reply(reply, Rcode::NotImp) => {
            assert_eq!(reply[3] & 0x0F, 4);
            assert_eq!((reply[2] >> 3) & 0x0F, u8::from(OpCode::Update));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn responses_must_match_id_and_question() {
    let q = question(&query(5, "host.example.", RecordType::A));
    let good = response(77, "HOST.example.", RecordType::A, vec![]);
    assert_eq!(check_response(&q, 77, &good), Ok(()));
    assert_eq!(check_response(&q, 78, &good), Err(Mismatch::Id));
    let other = response(77, "evil.example.", RecordType::A, vec![]);
    assert_eq!(check_response(&q, 77, &other), Err(Mismatch::Question));
    let other_type = response(77, "host.example.", RecordType::AAAA, vec![]);
    assert_eq!(check_response(&q, 77, &other_type), Err(Mismatch::Question));
    assert_eq!(check_response(&q, 77, &good[..5]), Err(Mismatch::Malformed));
    // A query is not a response.
    let echo = query(77, "host.example.", RecordType::A);
    assert_eq!(check_response(&q, 77, &echo), Err(Mismatch::Malformed));
    // An error without the question is still the answer.
    let mut formerr = Message::error_msg(77, OpCode::Query, ResponseCode::FormErr);
    formerr.metadata.message_type = MessageType::Response;
    assert_eq!(check_response(&q, 77, &formerr.to_vec().unwrap()), Ok(()));
}

#[test]
fn ids_are_rewritten_in_place() {
    let mut bytes = response(1, "host.example.", RecordType::A, vec![]);
    set_id(&mut bytes, 0xBEEF);
    assert_eq!(&bytes[..2], &[0xBE, 0xEF]);
    let mut short = vec![1];
    set_id(&mut short, 2);
    assert_eq!(short, vec![1]);
}

#[test]
fn addresses_at_the_end_of_the_cname_chain() {
    let q = question(&query(5, "www.example.", RecordType::A));
    let cname = Record::from_rdata(
        name("www.example."),
        60,
        RData::CNAME(CNAME(name("host.example."))),
    );
    let bytes = response(
        5,
        "www.example.",
        RecordType::A,
        vec![
            cname,
            a("host.example.", "192.0.2.30"),
            a("host.example.", "192.0.2.31"),
            // Not on the chain: ignored.
            a("other.example.", "198.51.100.1"),
        ],
    );
    let addrs: Vec<IpAddr> = vec!["192.0.2.30".parse().unwrap(), "192.0.2.31".parse().unwrap()];
    assert_eq!(answered_addresses(&q, &bytes), addrs);

    let q6 = question(&query(5, "host.example.", RecordType::AAAA));
    let v6 = Record::from_rdata(
        name("host.example."),
        60,
        RData::AAAA(AAAA("2001:db8::30".parse().unwrap())),
    );
    let bytes = response(
        5,
        "host.example.",
        RecordType::AAAA,
        vec![v6, a("host.example.", "192.0.2.30")],
    );
    assert_eq!(
        answered_addresses(&q6, &bytes),
        vec!["2001:db8::30".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn errors_and_garbage_have_no_addresses() {
    let q = question(&query(5, "host.example.", RecordType::A));
    let mut nx = response(
        5,
        "host.example.",
        RecordType::A,
        vec![a("host.example.", "192.0.2.1")],
    );
    nx[3] |= 3;
    assert!(answered_addresses(&q, &nx).is_empty());
    assert!(answered_addresses(&q, &[1, 2, 3]).is_empty());
    let mut lying = response(
        5,
        "host.example.",
        RecordType::A,
        vec![a("host.example.", "192.0.2.1")],
    );
    lying[7] = 200;
    assert!(answered_addresses(&q, &lying).is_empty());
}
