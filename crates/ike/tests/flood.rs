//! IKE_SA_INIT floods (RFC 7296 2.6): what unauthenticated peers can make a responder hold is
//! bounded per source address and in total; past the cookie threshold a spoofed source gets only
//! a stateless cookie; under load, expensive key exchange groups are refused.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use oe_ike::crypto::DhGroup;
use oe_ike::{Config, Endpoint};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use util::*;

fn responder(config: Config) -> Endpoint {
    Endpoint::new(config, Box::new(ChaCha20Rng::seed_from_u64(7)))
}

fn local() -> SocketAddr {
    B.parse().unwrap()
}

/// A real IKE_SA_INIT request from an initiator at `from` (its own seed, so its own SPI).
fn init_request(from: SocketAddr, seed: u64, now: Instant) -> Vec<u8> {
    let mut a = Endpoint::new(
        config("a", None),
        Box::new(ChaCha20Rng::seed_from_u64(seed)),
    );
    a.connect(now, from, local());
    a.poll_transmit().unwrap().contents
}

fn source(ip: u32, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + ip)), port)
}

/// Sends `req` with a fresh SPIi for each (source, i); returns how many were answered.
fn flood(
    b: &mut Endpoint,
    req: &[u8],
    sources: &[SocketAddr],
    per_source: u64,
    now: Instant,
) -> usize {
    let mut answered = 0;
    let mut spi = 1u64;
    let mut d = req.to_vec();
    for from in sources {
        for _ in 0..per_source {
            spi += 1;
            d[..8].copy_from_slice(&spi.to_be_bytes());
            b.handle_datagram(now, *from, local(), &d);
            while b.poll_event().is_some() {}
            while b.poll_transmit().is_some() {
                answered += 1;
            }
        }
    }
    answered
}

#[test]
fn half_open_sas_per_source_are_bounded() {
    let mut c = config("b", Some("ed25519_b"));
    c.cookie_threshold = usize::MAX;
    let limit = c.max_half_open_per_source;
    let mut b = responder(c);
    let now = Instant::now();
    let req = init_request(source(1, 500), 1, now);
    // One address, many ports and SPIs.
    let ports: Vec<_> = (0..50).map(|p| source(1, 1000 + p)).collect();
    let answered = flood(&mut b, &req, &ports, 4, now);
    assert_eq!(b.half_open(), limit, "one address holds at most {limit}");
    assert_eq!(answered, limit, "requests beyond the bound get no answer");
    // Another address is unaffected.
    flood(&mut b, &req, &[source(2, 500)], 1, now);
    assert_eq!(b.half_open(), limit + 1);
    // Once the half-open SAs time out, the first address may start again.
    let later = now + Duration::from_secs(31);
    b.handle_timeout(later);
    assert_eq!(b.half_open(), 0);
    flood(&mut b, &req, &[source(1, 2000)], 1, later);
    assert_eq!(b.half_open(), 1);
}

#[test]
fn half_open_sas_in_total_are_bounded_even_with_cookies() {
    let mut c = config("b", Some("ed25519_b"));
    c.cookie_threshold = usize::MAX;
    c.max_half_open = 100;
    let mut b = responder(c);
    let now = Instant::now();
    let req = init_request(source(1, 500), 1, now);
    let sources: Vec<_> = (0..300).map(|i| source(i, 500)).collect();
    let answered = flood(&mut b, &req, &sources, 1, now);
    assert_eq!(b.half_open(), 100);
    assert_eq!(answered, 100);
    assert_eq!(b.sa_count(), 100);
}

/// Real initiators that answer cookies: past the cookie threshold each needs a round trip more,
/// and past the total bound nobody gets state.
#[test]
fn cookies_then_refusal() {
    let mut c = config("b", Some("ed25519_b"));
    c.cookie_threshold = 5;
    c.max_half_open = 20;
    let mut b = responder(c);
    let now = Instant::now();
    for i in 0..40u32 {
        let from = source(i, 500);
        let mut a = Endpoint::new(
            config("a", None),
            Box::new(ChaCha20Rng::seed_from_u64(u64::from(i) + 100)),
        );
        a.connect(now, from, local());
        for _ in 0..3 {
            while let Some(t) = a.poll_transmit() {
                b.handle_datagram(now, from, local(), &t.contents);
            }
            while b.poll_event().is_some() {}
            while let Some(t) = b.poll_transmit() {
                a.handle_datagram(now, local(), from, &t.contents);
            }
            while a.poll_event().is_some() {}
        }
    }
    assert_eq!(b.half_open(), 20);
}

/// One round trip between an initiator endpoint at `from` and `b`: A's queued datagrams to B,
/// B's answers back. Returns B's answers.
fn round_trip(a: &mut Endpoint, b: &mut Endpoint, from: SocketAddr, now: Instant) -> Vec<Vec<u8>> {
    while a.poll_event().is_some() {}
    while let Some(t) = a.poll_transmit() {
        b.handle_datagram(now, from, local(), &t.contents);
    }
    while b.poll_event().is_some() {}
    let answers: Vec<_> = std::iter::from_fn(|| b.poll_transmit())
        .map(|t| t.contents)
        .collect();
    for d in &answers {
        a.handle_datagram(now, local(), from, d);
    }
    answers
}

fn is_cookie(d: &[u8]) -> bool {
    let m = oe_ike::wire::Message::parse(d).unwrap();
    oe_ike::wire::find_notify(&m.payloads, oe_ike::wire::NotifyType::COOKIE).is_some()
}

/// A's request with the cookie it was given (its next datagram after a COOKIE answer).
fn cookie_retry(a: &mut Endpoint, b: &mut Endpoint, from: SocketAddr, now: Instant) -> Vec<u8> {
    let answers = round_trip(a, b, from, now);
    assert!(answers.len() == 1 && is_cookie(&answers[0]));
    a.poll_transmit().unwrap().contents
}

fn under_load() -> Config {
    let mut c = config("b", Some("ed25519_b"));
    c.cookie_threshold = 0;
    c
}

fn initiator(seed: u64) -> Endpoint {
    Endpoint::new(
        config("a", None),
        Box::new(ChaCha20Rng::seed_from_u64(seed)),
    )
}

/// The cookie binds what keys half-open state: address, port and SPIi. A cookie earned from
/// one port does not open a half-open SA from another.
#[test]
fn a_cookie_is_bound_to_the_source_port() {
    let mut b = responder(under_load());
    let now = Instant::now();
    let from = source(1, 500);
    let mut a = initiator(1);
    a.connect(now, from, local());
    let retry = cookie_retry(&mut a, &mut b, from, now);
    for port in [501, 4500, 40000] {
        b.handle_datagram(now, source(1, port), local(), &retry);
        let answer = b.poll_transmit().unwrap().contents;
        assert!(
            is_cookie(&answer),
            "from port {port}: a fresh cookie, no state"
        );
        assert_eq!(b.half_open(), 0);
    }
    b.handle_datagram(now, from, local(), &retry);
    assert_eq!(b.half_open(), 1, "from the port it was issued to");
}

/// RFC 7296 2.6: the secret changes on the engine's own timer while cookies are in use; a cookie
/// made with the previous secret is accepted for a short while only.
#[test]
fn the_cookie_secret_rotates_on_the_timer() {
    let config = under_load();
    let lifetime = config.cookie_secret_lifetime;
    let now = Instant::now();
    let mut b = responder(config);
    assert_eq!(
        b.poll_timeout(),
        None,
        "no wake-ups while cookies are unused"
    );
    let (mut a1, mut a2) = (initiator(1), initiator(2));
    let (from1, from2) = (source(1, 500), source(2, 500));
    a1.connect(now, from1, local());
    a2.connect(now, from2, local());
    let retry1 = cookie_retry(&mut a1, &mut b, from1, now);
    let retry2 = cookie_retry(&mut a2, &mut b, from2, now);
    assert_eq!(b.poll_timeout(), Some(now + lifetime));
    b.handle_timeout(now + lifetime);
    // Shortly after the rotation the previous secret still counts.
    b.handle_datagram(
        now + lifetime + Duration::from_secs(1),
        from1,
        local(),
        &retry1,
    );
    assert_eq!(b.half_open(), 1);
    assert!(!is_cookie(&b.poll_transmit().unwrap().contents));
    // Later it does not: a fresh cookie, no state.
    b.handle_datagram(
        now + lifetime + Duration::from_secs(20),
        from2,
        local(),
        &retry2,
    );
    assert!(is_cookie(&b.poll_transmit().unwrap().contents));
    assert_eq!(b.half_open(), 1);
}

fn modp_first(name: &str) -> Config {
    let mut c = config(name, None);
    for p in &mut c.ike_proposals {
        p.groups = vec![DhGroup::Modp2048, DhGroup::Curve25519];
    }
    // Classical exchanges only: these tests count IKE_SA_INIT and IKE_AUTH datagrams.
    c.additional_ke = oe_ike::AdditionalKe::off();
    c
}

/// Under load, an IKE_SA_INIT with a MODP-2048 key share gets INVALID_KE_PAYLOAD naming a cheap
/// group the initiator offered (RFC 7296 2.7); the initiator retries with it.
#[test]
fn under_load_an_expensive_group_is_refused_for_a_cheap_one() {
    let mut b = under_load();
    for p in &mut b.ike_proposals {
        p.groups = vec![DhGroup::Modp2048, DhGroup::Curve25519];
    }
    b.accept_null_peers = true;
    let mut p = Pair::new(modp_first("a"), b);
    p.connect();
    p.drive();
    assert!(p.a.established() && p.b.established());
    let groups: Vec<u16> = p
        .sent_by_a()
        .into_iter()
        .filter_map(|d| oe_ike::wire::Message::parse(d).ok())
        .filter_map(|m| {
            m.payloads.iter().find_map(|x| match x {
                oe_ike::wire::Payload::Ke(k) => Some(k.group),
                _ => None,
            })
        })
        .collect();
    assert_eq!(
        groups,
        [14, 14, 31],
        "MODP, MODP with the cookie, then X25519"
    );
}

/// Under load, an initiator offering only expensive groups is dropped: no answer, no state.
#[test]
fn under_load_only_expensive_groups_get_nothing() {
    let mut c = under_load();
    for p in &mut c.ike_proposals {
        p.groups = vec![DhGroup::Modp2048, DhGroup::Curve25519];
    }
    let mut b = responder(c);
    let now = Instant::now();
    let from = source(1, 500);
    let mut ac = modp_first("a");
    for p in &mut ac.ike_proposals {
        p.groups = vec![DhGroup::Modp2048];
    }
    let mut a = Endpoint::new(ac, Box::new(ChaCha20Rng::seed_from_u64(3)));
    a.connect(now, from, local());
    let retry = cookie_retry(&mut a, &mut b, from, now);
    b.handle_datagram(now, from, local(), &retry);
    assert!(b.poll_transmit().is_none());
    assert_eq!(b.half_open(), 0);
}

/// Without load the responder takes the group the initiator sent.
#[test]
fn without_load_an_expensive_group_is_accepted() {
    let mut b = config("b", Some("ed25519_b"));
    for p in &mut b.ike_proposals {
        p.groups = vec![DhGroup::Modp2048, DhGroup::Curve25519];
    }
    b.accept_null_peers = true;
    let mut p = Pair::new(modp_first("a"), b);
    p.connect();
    p.drive();
    assert!(p.a.established() && p.b.established());
    assert_eq!(p.sent_by_a().len(), 2, "no extra round trip");
}

/// `req` with its first payload, the SA, made undecodable (a proposal longer than the payload)
/// and the generic payload framing left intact.
fn with_undecodable_proposals(req: &[u8]) -> Vec<u8> {
    let mut d = req.to_vec();
    assert_eq!(d[16], 33, "the request's first payload is not its SA");
    d[34..36].copy_from_slice(&u16::MAX.to_be_bytes());
    d
}

/// Under load a request is answered with a cookie from its framing, nonce and SPIi alone: a
/// flood's proposals are never decoded (RFC 7296 2.6's point). Without load the same request
/// is decoded, found malformed and dropped.
#[test]
fn under_load_the_cookie_comes_before_the_proposals_are_decoded() {
    let now = Instant::now();
    let from = source(1, 500);
    let req = with_undecodable_proposals(&init_request(from, 1, now));
    assert!(oe_ike::wire::Message::parse(&req).is_err());

    let mut loaded = responder(under_load());
    loaded.handle_datagram(now, from, local(), &req);
    let answer = loaded.poll_transmit().map(|t| t.contents);
    assert!(answer.as_deref().is_some_and(is_cookie), "{answer:?}");
    assert_eq!(loaded.half_open(), 0);

    let mut idle = responder(config("b", Some("ed25519_b")));
    idle.handle_datagram(now, from, local(), &req);
    assert!(idle.poll_transmit().is_none());
    assert_eq!(idle.half_open(), 0);
}

/// A request whose framing is broken gets nothing, under load or not.
#[test]
fn under_load_a_request_with_broken_framing_gets_nothing() {
    let now = Instant::now();
    let from = source(1, 500);
    let mut req = init_request(from, 1, now);
    let last = req.len() - 1;
    req.truncate(last);
    let mut loaded = responder(under_load());
    loaded.handle_datagram(now, from, local(), &req);
    assert!(loaded.poll_transmit().is_none());
}
