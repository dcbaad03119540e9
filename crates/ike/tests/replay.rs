//! The responder's replay cache (RFC 7296 2.1) answers only a byte-identical retransmission of
//! the last request; for a fragmented request, only its first fragment (RFC 7383 2.6.1). Anything
//! else with the previous message ID (a forged header, a modified copy) gets nothing: the cache
//! must not be an amplifier. Each test prints bytes sent per forged byte received.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use util::forge::{self, EXCHANGES};
use util::*;

/// These tests count datagrams and message IDs of the classical exchanges.
fn classical(name: &str, key: Option<&str>) -> oe_ike::Config {
    let mut c = config(name, key);
    c.additional_ke = oe_ike::AdditionalKe::off();
    c
}

/// Delivers `datagrams` to B from `from`; returns (bytes in, bytes B sent).
fn to_b(p: &mut Pair, from: SocketAddr, datagrams: &[Vec<u8>]) -> (usize, usize) {
    let (now, b) = (p.now, p.b.addr);
    let mut inb = 0;
    for d in datagrams {
        p.b.ep.handle_datagram(now, from, b, d);
        inb += d.len();
    }
    while p.b.ep.poll_event().is_some() {}
    let out = std::iter::from_fn(|| p.b.ep.poll_transmit())
        .map(|t| t.contents.len())
        .sum();
    (inb, out)
}

fn report(what: &str, (inb, out): (usize, usize)) {
    eprintln!(
        "{what}: {inb} forged bytes in, {out} bytes out ({:.1} out per byte in)",
        out as f64 / inb.max(1) as f64
    );
}

/// Forged request headers from the original initiator, with each exchange type, `d`'s SPIs and
/// the given message ID.
fn headers(d: &[u8], mid: u32) -> Vec<Vec<u8>> {
    EXCHANGES
        .iter()
        .map(|x| {
            let mut h = forge::header_with_mid(d, mid);
            h[18] = *x;
            h[19] = 0x08;
            h
        })
        .collect()
}

/// A copy of `d` with its last byte changed (same length, bad ICV).
fn modified(d: &[u8]) -> Vec<u8> {
    let mut m = d.to_vec();
    *m.last_mut().unwrap() ^= 0x80;
    m
}

#[test]
fn half_open_responder_replays_only_the_identical_ike_sa_init() {
    let mut p = Pair::new(
        classical("a", Some("ed25519_a")),
        classical("b", Some("ed25519_b")),
    );
    // Hold A's IKE_AUTH (datagram 2) so B stays half-open with IKE_SA_INIT in its cache.
    p.wire = Wire::DropSeq(&[2]);
    p.connect();
    p.drive_now();
    let (init_req, init_resp) = (p.log[0].2.clone(), p.log[1].2.clone());
    let a = p.a.addr;
    let other_port = SocketAddr::new(a.ip(), a.port() + 1);
    // Header-only IKE_SA_INITs with B's SPIs, and with SPIr = 0, from A's port and another.
    let mut forged = headers(&init_resp, 0);
    forged.push(forge::header_with_mid(&init_req, 0));
    forged.push(modified(&init_req));
    let amp = to_b(&mut p, a, &forged[..1]);
    report("IKE_SA_INIT, one forged header", amp);
    assert_eq!(amp.1, 0);
    let amp = to_b(&mut p, a, &forged);
    assert_eq!(amp.1, 0);
    // From another port, SPIr = 0 would start a new negotiation: send only those naming B's SPI.
    let amp = to_b(&mut p, other_port, &forged[..EXCHANGES.len()]);
    assert_eq!(amp.1, 0);
    // The real retransmission is answered with the cached response, byte for byte.
    let (_, out) = to_b(&mut p, a, std::slice::from_ref(&init_req));
    assert_eq!(out, init_resp.len());
}

/// A pair with fragmented IKE_AUTH messages both ways; returns A's IKE_AUTH request fragments and
/// B's response fragments.
fn fragmented() -> (Pair, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut a = classical("a", Some("ed25519_a"));
    let mut b = classical("b", Some("ed25519_b"));
    a.fragment_size = 160;
    b.fragment_size = 160;
    let mut p = Pair::new(a, b);
    p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.established() && p.b.established());
    let auth = |a_to_b: bool| -> Vec<Vec<u8>> {
        p.log
            .iter()
            .filter(|(_, ab, d)| *ab == a_to_b && d[18] == forge::IKE_AUTH)
            .map(|(_, _, d)| d.clone())
            .collect()
    };
    let (req, resp) = (auth(true), auth(false));
    assert!(req.len() >= 2 && resp.len() >= 2, "IKE_AUTH is fragmented");
    (p, req, resp)
}

#[test]
fn established_responder_replays_only_the_identical_first_fragment() {
    let (mut p, req, resp) = fragmented();
    let a = p.a.addr;
    let mut forged = headers(&req[0], 1);
    forged.extend(req.iter().map(|d| modified(d)));
    let amp = to_b(&mut p, a, &forged[1..2]);
    report(
        "IKE_AUTH (fragmented response cached), one forged header",
        amp,
    );
    assert_eq!(amp.1, 0);
    let amp = to_b(&mut p, a, &forged);
    assert_eq!(amp.1, 0);
    // Later fragments of the real request: nothing (RFC 7383 2.6.1).
    let (_, out) = to_b(&mut p, a, &req[1..]);
    assert_eq!(out, 0);
    // The real first fragment: every fragment of the cached response again.
    let (_, out) = to_b(&mut p, a, &req[..1]);
    assert_eq!(out, resp.iter().map(Vec::len).sum::<usize>());
}

#[test]
fn replay_after_a_later_exchange() {
    let mut p = Pair::new(
        classical("a", Some("ed25519_a")),
        classical("b", Some("ed25519_b")),
    );
    let ha = p.connect();
    p.drive_for(Duration::from_secs(1));
    let now = p.now;
    p.a.ep.check_liveness(now, ha);
    p.drive_now();
    let req = p.log[p.log.len() - 2].2.clone();
    assert_eq!(forge::mid(&req), 2);
    let a = p.a.addr;
    let mut forged = headers(&req, 2);
    forged.push(modified(&req));
    let amp = to_b(&mut p, a, &forged[3..4]);
    report("INFORMATIONAL, one forged header", amp);
    assert_eq!(amp.1, 0);
    let amp = to_b(&mut p, a, &forged);
    assert_eq!(amp.1, 0);
    let (_, out) = to_b(&mut p, a, std::slice::from_ref(&req));
    assert!(out > 0, "the identical retransmission is answered");
}

/// B answered A's IKE rekey and moved to the new IKE SA; its response was lost. The
/// retransmitted request arrives on the old (retiring) SA and gets the same response again.
#[test]
fn lost_ike_rekey_response_is_replayed_from_the_retiring_sa() {
    let mut p = Pair::new(
        classical("a", Some("ed25519_a")),
        classical("b", Some("ed25519_b")),
    );
    let ha = p.connect();
    p.drive_for(Duration::from_secs(1));
    // Handshake: datagrams 0-3; the IKE rekey request is 4, its response 5.
    assert_eq!(p.log.len(), 4);
    p.wire = Wire::DropSeq(&[5]);
    let now = p.now;
    p.a.ep.rekey_ike(now, ha);
    p.drive_for(Duration::from_secs(30));
    let (req, resp) = (&p.log[4].2, &p.log[5].2);
    let again: Vec<_> = p.log.iter().filter(|(_, _, d)| d == resp).collect();
    assert_eq!(again.len(), 2, "replayed once for the retransmission");
    assert_eq!(p.log.iter().filter(|(_, _, d)| d == req).count(), 2);
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
    assert_eq!(p.a.count(|e| matches!(e, oe_ike::Event::IkeSaRekeyed)), 1);
}
