//! The stub's message handling, without I/O: what to do with a query from an application, whether
//! an upstream's response answers it, and which addresses it carries. Every input is untrusted;
//! nothing here panics or allocates in proportion to a count field (fuzzed by `dns_stub_message`).
//!
//! Rules (RFC 1035 section 4.1, RFC 5966/7766 for TCP):
//! - shorter than a header, or a response (QR set): dropped, never answered (no reflection, no
//!   loops between resolvers);
//! - an opcode other than QUERY: NOTIMP;
//! - not exactly one question, counts that cannot fit the message, or anything that does not
//!   parse: FORMERR (header only, the query's ID and opcode copied);
//! - otherwise forwarded unchanged.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// Length of the DNS header (RFC 1035 section 4.1.1).
pub const HEADER_LEN: usize = 12;
/// Smallest possible question: root name, type, class.
const MIN_QUESTION: usize = 5;
/// Smallest possible resource record: root name, type, class, TTL, RDLENGTH.
const MIN_RECORD: usize = 11;
/// Longest CNAME chain followed in an answer.
const MAX_CNAMES: usize = 16;

/// Response codes the stub itself sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rcode {
    /// 1: the query is malformed.
    FormErr = 1,
    /// 2: the upstreams failed.
    ServFail = 2,
    /// 4: an opcode the stub does not implement.
    NotImp = 4,
}

/// What to do with a message received from an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAction {
    /// Forward it unchanged; the question is what it asks.
    Forward(Question),
    /// Answer at once with these bytes (FORMERR, NOTIMP), never forwarded.
    Reply(Vec<u8>, Rcode),
    /// Ignore it: too short to answer, or not a query.
    Drop,
}

/// The one question of a well-formed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The query's ID (restored on the answer).
    pub id: u16,
    /// QNAME.
    pub name: Name,
    /// QTYPE.
    pub qtype: RecordType,
    /// QCLASS.
    pub qclass: DNSClass,
    /// The query's header flags (bytes 2-3), for replies the stub makes itself.
    flags: [u8; 2],
}

impl Question {
    /// Whether this is an A or AAAA query in class IN: the queries that may trigger.
    pub fn asks_addresses(&self) -> bool {
        self.qclass == DNSClass::IN && matches!(self.qtype, RecordType::A | RecordType::AAAA)
    }

    /// A header-only reply with `rcode`, the query's ID, opcode and RD copied.
    pub fn reply(&self, rcode: Rcode) -> Vec<u8> {
        reply(self.id, self.flags, rcode)
    }
}

/// Decides what to do with `bytes` from an application.
pub fn inspect_query(bytes: &[u8]) -> QueryAction {
    let Some((header, _)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return QueryAction::Drop;
    };
    let id = u16::from_be_bytes([header[0], header[1]]);
    let flags = [header[2], header[3]];
    if flags[0] & 0x80 != 0 {
        return QueryAction::Drop;
    }
    if (flags[0] >> 3) & 0x0F != u8::from(OpCode::Query) {
        return QueryAction::Reply(reply(id, flags, Rcode::NotImp), Rcode::NotImp);
    }
    let formerr = || QueryAction::Reply(reply(id, flags, Rcode::FormErr), Rcode::FormErr);
    if count(header, 4) != 1 || !counts_fit(header, bytes.len()) {
        return formerr();
    }
    match Message::from_vec(bytes) {
        Ok(msg) => match msg.queries.first() {
            Some(q) => QueryAction::Forward(Question {
                id,
                name: q.name().clone(),
                qtype: q.query_type(),
                qclass: q.query_class(),
                flags,
            }),
            None => formerr(),
        },
        Err(_) => formerr(),
    }
}

/// A header-only reply (RFC 1035 section 4.1.1): ID, opcode and RD copied, QR and RA set,
/// counts zero.
fn reply(id: u16, flags: [u8; 2], rcode: Rcode) -> Vec<u8> {
    let [id_hi, id_lo] = id.to_be_bytes();
    let mut out = vec![id_hi, id_lo, 0x80 | (flags[0] & 0x79), 0x80 | rcode as u8];
    out.resize(HEADER_LEN, 0);
    out
}

fn count(header: &[u8; HEADER_LEN], at: usize) -> usize {
    let hi = header.get(at).copied().unwrap_or(0);
    let lo = header.get(at + 1).copied().unwrap_or(0);
    usize::from(u16::from_be_bytes([hi, lo]))
}

/// Whether the section counts could fit in `len` bytes at all (so no parser is asked to
/// reserve room for thousands of records that cannot be there).
fn counts_fit(header: &[u8; HEADER_LEN], len: usize) -> bool {
    let questions = count(header, 4) * MIN_QUESTION;
    let records = (count(header, 6) + count(header, 8) + count(header, 10)) * MIN_RECORD;
    HEADER_LEN + questions + records <= len
}

/// Why an upstream's message is not the answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Too short, not a response, or unparseable header or question.
    Malformed,
    /// Another ID (a late or spoofed response).
    Id,
    /// Another question.
    Question,
}

/// Checks that `response` answers `question` as sent with ID `sent_id` (RFC 5452 section 9.1:
/// ID, and the question's name, type and class).
pub fn check_response(question: &Question, sent_id: u16, response: &[u8]) -> Result<(), Mismatch> {
    let mut decoder = BinDecoder::new(response);
    let header = hickory_proto::op::Header::read(&mut decoder).map_err(|_| Mismatch::Malformed)?;
    if header.metadata.message_type != MessageType::Response {
        return Err(Mismatch::Malformed);
    }
    if header.metadata.id != sent_id {
        return Err(Mismatch::Id);
    }
    if header.counts.queries != 1 {
        // Some servers send FORMERR or NOTIMP without the question: accept those as answers.
        let rcode = response.get(3).map_or(0, |b| b & 0x0F);
        return if header.counts.queries == 0 && rcode != 0 {
            Ok(())
        } else {
            Err(Mismatch::Question)
        };
    }
    let q = Query::read(&mut decoder).map_err(|_| Mismatch::Malformed)?;
    let same = q.name() == &question.name
        && q.query_type() == question.qtype
        && q.query_class() == question.qclass;
    if same {
        Ok(())
    } else {
        Err(Mismatch::Question)
    }
}

/// Sets the ID of a message in place (no-op on a message shorter than its ID).
pub fn set_id(message: &mut [u8], id: u16) {
    if let Some(slot) = message.first_chunk_mut::<2>() {
        *slot = id.to_be_bytes();
    }
}

/// The addresses an answer gives for the question: records of the queried type at the end of
/// the CNAME chain from QNAME. Empty for an error, NODATA, or a response that does not parse.
pub fn answered_addresses(question: &Question, response: &[u8]) -> Vec<IpAddr> {
    let Some(header) = response.first_chunk::<HEADER_LEN>() else {
        return Vec::new();
    };
    if header[3] & 0x0F != 0 || count(header, 4) != 1 || !counts_fit(header, response.len()) {
        return Vec::new();
    }
    let Ok(msg) = Message::from_vec(response) else {
        return Vec::new();
    };
    let mut owner = question.name.clone();
    for _ in 0..MAX_CNAMES {
        let next = msg.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == owner => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) => owner = target,
            None => break,
        }
    }
    msg.answers
        .iter()
        .filter(|r| r.name == owner)
        .filter_map(|r| match (&r.data, question.qtype) {
            (RData::A(a), RecordType::A) => Some(IpAddr::V4(a.0)),
            (RData::AAAA(a), RecordType::AAAA) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
