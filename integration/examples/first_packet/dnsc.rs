//! A minimal DNS client for the application and for the floors: one query per datagram, with
//! EDNS0 and the DO bit when asked (RFC 6891 section 6.1.1, RFC 3225), answers matched by ID.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use oe_dns::trigger::message::{answered_addresses, inspect_query, QueryAction};

pub const A: u16 = 1;
pub const DS: u16 = 43;
pub const DNSKEY: u16 = 48;
pub const IPSECKEY: u16 = 45;

/// A query for `name`/`qtype` with ID `id`; `dnssec` adds an OPT record with DO set.
pub fn query(id: u16, name: &str, qtype: u16, dnssec: bool) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    let additional: u16 = u16::from(dnssec);
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0]);
    q.extend_from_slice(&additional.to_be_bytes());
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if dnssec {
        // OPT: root owner, type 41, UDP size 1232, extended RCODE 0, version 0, DO, no data.
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    }
    q
}

/// Sends every query at once from one socket and waits until each is answered (5 s at most).
pub fn ask_all(server: SocketAddr, queries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let socket = UdpSocket::bind(if server.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for q in queries {
        socket.send_to(q, server).unwrap();
    }
    let mut answers: Vec<Option<Vec<u8>>> = vec![None; queries.len()];
    let mut buf = [0u8; 4096];
    while answers.iter().any(Option::is_none) {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no answer from {server}: {e}"));
        let reply = &buf[..n];
        let slot = queries
            .iter()
            .position(|q| q.get(..2) == reply.get(..2))
            .and_then(|i| answers.get_mut(i));
        if let Some(slot) = slot {
            *slot = Some(reply.to_vec());
        }
    }
    answers.into_iter().flatten().collect()
}

/// The A records of `name` as `server` answers them (from inside the caller's namespace).
pub fn resolve_a(server: SocketAddr, name: &str) -> Vec<IpAddr> {
    let q = query(0x0E0E, name, A, false);
    let QueryAction::Forward(question) = inspect_query(&q) else {
        panic!("bad query for {name}")
    };
    let answers = ask_all(server, &[q]);
    answers
        .first()
        .map(|reply| answered_addresses(&question, reply))
        .unwrap_or_default()
}
