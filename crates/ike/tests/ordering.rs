//! The output contract (crate docs): `poll_transmit` never hands out a datagram queued after an
//! event the caller has not polled yet. A responder's IKE_AUTH or CREATE_CHILD_SA response
//! follows `ChildSaReady`: the initiator installs its side on that response and may send ESP at
//! once, so the responder's inbound SA must be in the kernel first, whatever order the caller
//! drains in.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod util;

use std::time::Duration;

use oe_ike::Event;
use util::*;

/// Moves every datagram `from` has queued to `to` (answering `from`'s events first).
fn deliver(p: &mut Pair, a_to_b: bool) {
    let now = p.now;
    let (from, to) = if a_to_b {
        (&mut p.a, &mut p.b)
    } else {
        (&mut p.b, &mut p.a)
    };
    Pair::answer_events(from, now);
    for t in Pair::drain(from) {
        to.ep.handle_datagram(now, t.local, t.remote, &t.contents);
    }
}

/// Answers B's pending requests for an SPI and keys, polling no further events.
fn answer_requests_of_b(p: &mut Pair, expected: usize) {
    let now = p.now;
    for _ in 0..expected {
        let (h, e) = p.b.ep.poll_event().expect("a request for an SPI or keys");
        match e {
            Event::NeedSpi { .. } => p.b.ep.supply_spi(now, h, 0xb000_0001),
            Event::NeedPeerKey { .. } => {
                let k = p.b.peer_keys.clone().unwrap();
                p.b.ep.supply_peer_keys(now, h, k);
            }
            e => panic!("unexpected {e:?}"),
        }
    }
}

/// B's response is held until B's caller has polled `ChildSaReady`.
fn response_waits_for_child_ready(p: &mut Pair) {
    assert!(
        p.b.ep.poll_transmit().is_none(),
        "the response must not overtake ChildSaReady"
    );
    loop {
        let (_, e) = p.b.ep.poll_event().expect("ChildSaReady");
        let ready = matches!(e, Event::ChildSaReady { .. });
        if !ready {
            assert!(p.b.ep.poll_transmit().is_none());
            continue;
        }
        let t =
            p.b.ep
                .poll_transmit()
                .expect("the response, once the event is out");
        assert!(t.contents[19] & 0x20 != 0, "a response");
        return;
    }
}

#[test]
fn ike_auth_response_follows_child_ready() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.connect();
    deliver(&mut p, true); // IKE_SA_INIT request
    deliver(&mut p, false); // its response
    deliver(&mut p, true); // IKE_INTERMEDIATE request (the hybrid's ML-KEM, RFC 9370)
    deliver(&mut p, false); // its response
    deliver(&mut p, true); // IKE_AUTH request
    answer_requests_of_b(&mut p, 2);
    response_waits_for_child_ready(&mut p);
}

/// A pair past IKE_AUTH, with A's rekey of the child under way.
fn rekeying(additional_ke: oe_ike::AdditionalKe) -> Pair {
    let mut configs = [("a", "ed25519_a"), ("b", "ed25519_b")].map(|(n, k)| config(n, Some(k)));
    for c in &mut configs {
        c.additional_ke = additional_ke.clone();
    }
    let [a, b] = configs;
    let mut p = Pair::new(a, b);
    let ha = p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.b.established());
    let (now, old) = (p.now, p.a.live_children()[0]);
    p.a.ep.rekey_child(now, ha, old);
    p
}

#[test]
fn create_child_sa_response_follows_child_ready() {
    let mut p = rekeying(oe_ike::AdditionalKe::off());
    deliver(&mut p, true);
    answer_requests_of_b(&mut p, 1);
    response_waits_for_child_ready(&mut p);
}

/// With additional key exchanges (RFC 9370 2.2.4) the child exists after the last
/// IKE_FOLLOWUP_KE exchange: that response is the one held until `ChildSaReady`.
#[test]
fn last_ike_followup_ke_response_follows_child_ready() {
    let mut p = rekeying(oe_ike::AdditionalKe::hybrid());
    deliver(&mut p, true); // CREATE_CHILD_SA request
    answer_requests_of_b(&mut p, 1);
    assert!(
        p.b.ep.poll_event().is_none(),
        "no child before IKE_FOLLOWUP_KE"
    );
    deliver(&mut p, false); // its response
    deliver(&mut p, true); // IKE_FOLLOWUP_KE request
    response_waits_for_child_ready(&mut p);
}

/// A caller that drains transmits before events still gets everything, in a safe order.
#[test]
fn draining_transmits_first_still_completes() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.connect();
    for _ in 0..20 {
        for a_to_b in [true, false] {
            let now = p.now;
            let (from, to) = if a_to_b {
                (&mut p.a, &mut p.b)
            } else {
                (&mut p.b, &mut p.a)
            };
            for t in Pair::drain(from) {
                to.ep.handle_datagram(now, t.local, t.remote, &t.contents);
            }
            Pair::answer_events(from, now);
        }
    }
    assert!(p.a.established() && p.b.established());
    assert_eq!(p.a.live_children().len(), 1);
    assert_eq!(p.b.live_children().len(), 1);
}
