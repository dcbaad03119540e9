//! After IKE_AUTH: child and IKE SA rekeys (with simultaneous-rekey collisions, RFC 7296 2.8),
//! deletes, liveness, replay of retransmitted requests.

#![allow(clippy::unwrap_used)]

mod util;

use std::time::Duration;

use oe_ike::wire::Message;
use oe_ike::{CloseReason, Error, Event, LocalError};
use util::*;

/// A classical pair: these tests count messages and children of RFC 7296 rekeys; the rekeys
/// with additional key exchanges (RFC 9370 2.2.4) are in `pq_rekey.rs`.
fn up() -> (Pair, oe_ike::SaHandle, oe_ike::SaHandle) {
    let classical = |name: &str| {
        let mut c = config(name, Some(&format!("ed25519_{name}")));
        c.additional_ke = oe_ike::AdditionalKe::off();
        c
    };
    let mut p = Pair::new(classical("a"), classical("b"));
    let ha = p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.established() && p.b.established());
    let hb = p.b_handle();
    (p, ha, hb)
}

/// Both sides agree on the live children, and each live child pairs with one on the other side.
fn assert_consistent(p: &Pair) {
    let (la, lb) = (p.a.live_children(), p.b.live_children());
    assert_eq!(la.len(), lb.len(), "A {la:x?} B {lb:x?}");
    for spi in la {
        let x =
            p.a.children()
                .into_iter()
                .find(|c| c.inbound_spi == spi)
                .unwrap();
        let y =
            p.b.children()
                .into_iter()
                .find(|c| c.outbound_spi == spi)
                .unwrap();
        assert!(lb.contains(&y.inbound_spi));
        assert_paired(x, y);
    }
}

#[test]
fn child_rekey_by_either_side() {
    for by_a in [true, false] {
        let (mut p, ha, hb) = up();
        let now = p.now;
        if by_a {
            let old = p.a.live_children()[0];
            p.a.ep.rekey_child(now, ha, old);
        } else {
            let old = p.b.live_children()[0];
            p.b.ep.rekey_child(now, hb, old);
        }
        p.drive_for(Duration::from_secs(1));
        assert_eq!(p.a.children().len(), 2);
        assert_eq!(p.a.live_children().len(), 1);
        assert_eq!(p.a.deleted_children().len(), 1);
        assert_consistent(&p);
        let replaced = p.a.events.iter().find_map(|(_, e)| match e {
            Event::ChildSaReady {
                replaces: Some(r), ..
            } => Some(*r),
            _ => None,
        });
        assert_eq!(replaced, Some(p.a.deleted_children()[0]));
        // New keys differ from the old ones.
        let c = p.a.children();
        assert_ne!(*c[0].keys.encr_out, *c[1].keys.encr_out);
    }
}

#[test]
fn child_rekey_at_the_soft_lifetime() {
    let mut a = config("a", Some("ed25519_a"));
    a.child_lifetime.soft = Duration::from_secs(100);
    let mut p = Pair::new(a, config("b", Some("ed25519_b")));
    p.connect();
    p.drive_for(Duration::from_secs(95));
    assert_eq!(
        p.a.children().len(),
        1,
        "not before 90% of the soft lifetime"
    );
    p.drive_for(Duration::from_secs(10));
    assert_eq!(p.a.children().len(), 2);
    assert_consistent(&p);
}

/// RFC 7296 2.8.1: both peers rekey the same child at once. Each answers the other's request;
/// the child made with the lowest nonce is deleted by its creator, the old one by the other.
#[test]
fn simultaneous_child_rekey() {
    for seed_case in 0..6 {
        let (mut p, ha, hb) = up();
        // Vary the nonces (and so who wins) by letting liveness-free exchanges consume RNG.
        for _ in 0..seed_case {
            let now = p.now;
            p.a.ep.check_liveness(now, ha);
            p.drive_for(Duration::from_secs(1));
        }
        let now = p.now;
        let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
        p.a.ep.rekey_child(now, ha, ca);
        p.b.ep.rekey_child(now, hb, cb);
        p.drive_for(Duration::from_secs(30));
        assert_eq!(
            p.a.live_children().len(),
            1,
            "case {seed_case}: {:?}",
            p.a.events
        );
        assert_eq!(p.a.children().len(), 3, "the old and two new");
        assert_consistent(&p);
        assert!(p.a.closed().is_none() && p.b.closed().is_none());
    }
}

#[test]
fn ike_rekey_keeps_children_and_later_exchanges_work() {
    for by_a in [true, false] {
        let (mut p, ha, hb) = up();
        let now = p.now;
        if by_a {
            p.a.ep.rekey_ike(now, ha);
        } else {
            p.b.ep.rekey_ike(now, hb);
        }
        p.drive_for(Duration::from_secs(1));
        assert_eq!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed)), 1);
        assert_eq!(p.b.count(|e| matches!(e, Event::IkeSaRekeyed)), 1);
        assert_eq!(p.a.live_children().len(), 1);
        // The rekeyed IKE SA carries a child rekey and a delete.
        let now = p.now;
        let old = p.a.live_children()[0];
        p.a.ep.rekey_child(now, ha, old);
        p.drive_for(Duration::from_secs(1));
        assert_consistent(&p);
        // New SPIs on the wire after the rekey.
        let spis: std::collections::HashSet<_> = p
            .log
            .iter()
            .filter_map(|(_, _, d)| Message::parse(d).ok())
            .map(|m| m.header.spi_i)
            .collect();
        assert_eq!(spis.len(), 2);
        let now = p.now;
        p.b.ep.delete(now, hb);
        p.drive_for(Duration::from_secs(1));
        assert_eq!(p.a.closed(), Some(&CloseReason::PeerDeleted));
        assert_eq!(p.b.closed(), Some(&CloseReason::Local));
        assert_eq!(p.a.ep.sa_count() + p.b.ep.sa_count(), 0);
    }
}

#[test]
fn simultaneous_ike_rekey_resolves() {
    let (mut p, ha, hb) = up();
    let now = p.now;
    p.a.ep.rekey_ike(now, ha);
    p.b.ep.rekey_ike(now, hb);
    p.drive_for(Duration::from_secs(30));
    // Both got TEMPORARY_FAILURE, retried after different random delays, and one rekey won.
    assert!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed)) >= 1);
    assert_eq!(
        p.a.count(|e| matches!(e, Event::IkeSaRekeyed)),
        p.b.count(|e| matches!(e, Event::IkeSaRekeyed))
    );
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
    let now = p.now;
    p.a.ep.check_liveness(now, ha);
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.closed().is_none());
    assert_consistent(&p);
}

#[test]
fn delete_child_and_ike_sa() {
    let (mut p, ha, _hb) = up();
    let now = p.now;
    let c = p.a.live_children()[0];
    p.a.ep.delete_child(now, ha, c);
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.live_children().is_empty() && p.b.live_children().is_empty());
    let now = p.now;
    p.a.ep.delete(now, ha);
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.a.closed(), Some(&CloseReason::Local));
    assert_eq!(p.b.closed(), Some(&CloseReason::PeerDeleted));
}

#[test]
fn deleting_the_ike_sa_reports_its_children() {
    let (mut p, ha, _) = up();
    let now = p.now;
    p.a.ep.delete(now, ha);
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.a.deleted_children().len(), 1);
    assert_eq!(p.b.deleted_children().len(), 1);
}

#[test]
fn liveness_detects_a_dead_peer() {
    let mut a = config("a", Some("ed25519_a"));
    a.liveness_interval = Some(Duration::from_secs(30));
    let mut p = Pair::new(a, config("b", Some("ed25519_b")));
    p.connect();
    p.drive_for(Duration::from_secs(100));
    assert!(
        p.a.closed().is_none(),
        "a live peer answers: {:?}",
        p.a.events
    );
    let before = p.log.len();
    assert!(before > 4, "liveness checks were sent");
    p.wire = Wire::Blackhole;
    p.drive_for(Duration::from_secs(400));
    assert_eq!(
        p.a.closed(),
        Some(&CloseReason::Failed(Error::Local(LocalError::Timeout)))
    );
    assert_eq!(p.a.deleted_children().len(), 1);
}

#[test]
fn replayed_request_gets_the_cached_response() {
    let (mut p, ha, _) = up();
    let now = p.now;
    p.a.ep.check_liveness(now, ha);
    let t = p.a.ep.poll_transmit().unwrap();
    p.b.ep.handle_datagram(now, t.local, t.remote, &t.contents);
    p.b.ep.handle_datagram(now, t.local, t.remote, &t.contents);
    let r1 = p.b.ep.poll_transmit().unwrap();
    let r2 = p.b.ep.poll_transmit().unwrap();
    assert_eq!(r1.contents, r2.contents);
    p.a.ep
        .handle_datagram(now, r1.local, r1.remote, &r1.contents);
    p.a.ep
        .handle_datagram(now, r2.local, r2.remote, &r2.contents); // duplicate response: ignored
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.closed().is_none());
}

#[test]
fn garbage_and_forgeries_are_dropped() {
    let (mut p, ha, _) = up();
    let now = p.now;
    p.a.ep.check_liveness(now, ha);
    let t = p.a.ep.poll_transmit().unwrap();
    for i in 28..t.contents.len() {
        let mut bad = t.contents.clone();
        bad[i] ^= 0x40;
        p.b.ep.handle_datagram(now, t.local, t.remote, &bad);
    }
    assert!(
        p.b.ep.poll_transmit().is_none(),
        "no answer to any forged request"
    );
    p.b.ep.handle_datagram(now, t.local, t.remote, &t.contents);
    assert!(p.b.ep.poll_transmit().is_some());
}

#[test]
fn ike_sa_deleted_at_its_hard_lifetime() {
    let mut a = config("a", Some("ed25519_a"));
    a.ike_lifetime = oe_ike::Lifetime {
        soft: Duration::from_secs(1000),
        hard: Duration::from_secs(50),
    };
    let mut p = Pair::new(a, config("b", Some("ed25519_b")));
    p.connect();
    p.drive_for(Duration::from_secs(45));
    assert!(p.a.closed().is_none());
    p.drive_for(Duration::from_secs(10));
    assert_eq!(p.a.closed(), Some(&CloseReason::Local));
    assert_eq!(p.b.closed(), Some(&CloseReason::PeerDeleted));
}

#[test]
fn lost_delete_response_of_the_old_ike_sa_is_retransmitted() {
    let (mut p, ha, _) = up();
    // After the handshake (n datagrams): IKE rekey n, n+1; delete of the old IKE SA: n+2; its
    // response: n+3.
    let n = p.log.len();
    p.wire = Wire::DropSeq(Box::leak(Box::new([n + 3])));
    let now = p.now;
    p.a.ep.rekey_ike(now, ha);
    p.drive_for(Duration::from_secs(5));
    assert_eq!(p.log.len(), n + 5, "the delete went out again after 4 s");
    p.drive_for(Duration::from_secs(300));
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
    let now = p.now;
    p.a.ep.check_liveness(now, ha);
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.closed().is_none());
}

/// Delivers the next queued datagram of `from` (A when `a_to_b`) to the other side.
fn deliver_one(p: &mut Pair, a_to_b: bool) {
    let now = p.now;
    let (from, to) = if a_to_b {
        (&mut p.a, &mut p.b)
    } else {
        (&mut p.b, &mut p.a)
    };
    let t = from.ep.poll_transmit().expect("a datagram to deliver");
    to.ep.handle_datagram(now, t.local, t.remote, &t.contents);
}

/// The creator of each surviving child differs with the nonces: both outcomes of 2.8.1 occur.
#[test]
fn simultaneous_child_rekey_both_outcomes() {
    let mut winners = std::collections::HashSet::new();
    for case in 0..8 {
        let (mut p, ha, hb) = up();
        for _ in 0..case {
            let now = p.now;
            p.b.ep.check_liveness(now, hb);
            p.drive_for(Duration::from_secs(1));
        }
        let now = p.now;
        let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
        p.a.ep.rekey_child(now, ha, ca);
        p.b.ep.rekey_child(now, hb, cb);
        p.drive_for(Duration::from_secs(30));
        assert_consistent(&p);
        let survivor = p.a.live_children()[0];
        // A chose the SPIs of children it initiated from its own counter (0xc001....).
        let created_by_a = p.a.events.iter().any(|(_, e)| matches!(e, Event::ChildSaReady { child, replaces: Some(_) } if child.inbound_spi == survivor))
            && p.a.children().iter().position(|c| c.inbound_spi == survivor) == Some(1);
        winners.insert(created_by_a);
    }
    assert_eq!(
        winners.len(),
        2,
        "both the initiator's and the responder's child survived in some case"
    );
}

/// B's rekey request reaches A only after A's own rekey of the same child completed: A answers
/// TEMPORARY_FAILURE (RFC 7296 2.25) and deletes the old child; both keep A's new child.
#[test]
fn late_colliding_child_rekey_gets_temporary_failure() {
    let (mut p, ha, hb) = up();
    let now = p.now;
    let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
    p.a.ep.rekey_child(now, ha, ca);
    p.b.ep.rekey_child(now, hb, cb);
    p.step_events(); // SPIs supplied: both requests are queued
    let b_req = p.b.ep.poll_transmit().unwrap();
    deliver_one(&mut p, true); // A's request reaches B, which answers it
    p.step_events();
    deliver_one(&mut p, false); // B's answer reaches A: A's rekey completes, A deletes the old child
    p.step_events();
    let now = p.now;
    p.a.ep
        .handle_datagram(now, b_req.local, b_req.remote, &b_req.contents); // late request
    p.drive_for(Duration::from_secs(30));
    assert_consistent(&p);
    let survivor = p.a.live_children();
    assert_eq!(survivor.len(), 1);
    assert_eq!(
        p.a.children().len(),
        2,
        "only A's rekey created a child on A"
    );
    assert_eq!(p.a.children()[1].inbound_spi, survivor[0]);
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
}

#[test]
fn child_rekey_collides_with_delete() {
    let (mut p, ha, hb) = up();
    let now = p.now;
    let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
    p.a.ep.rekey_child(now, ha, ca);
    p.b.ep.delete_child(now, hb, cb);
    p.drive_for(Duration::from_secs(30));
    assert_consistent(&p);
    assert!(p.a.live_children().is_empty(), "{:?}", p.a.events);
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
}

#[test]
fn simultaneous_child_delete() {
    let (mut p, ha, hb) = up();
    let now = p.now;
    let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
    p.a.ep.delete_child(now, ha, ca);
    p.b.ep.delete_child(now, hb, cb);
    p.drive_for(Duration::from_secs(30));
    assert!(p.a.live_children().is_empty() && p.b.live_children().is_empty());
    assert_eq!(p.a.deleted_children().len(), 1);
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
}

fn drop_seqs(from: usize, n: usize) -> Wire {
    Wire::DropSeq(Box::leak(
        (from..from + n).collect::<Vec<_>>().into_boxed_slice(),
    ))
}

/// RFC 7296 2.8: A rekeys a child, and its delete of the old child is lost (four tries, up to
/// 24 s). B, the responder, deletes the old child itself after its grace period (30 s), before
/// A's next retransmission.
#[test]
fn responder_deletes_a_replaced_child_the_initiator_never_deleted() {
    let (mut p, ha, _) = up();
    let n = p.log.len();
    // n: the rekey request, n + 1: its response, n + 2 ..= n + 5: A's delete and three retries.
    p.wire = drop_seqs(n + 2, 4);
    let (now, old) = (p.now, p.a.live_children()[0]);
    p.a.ep.rekey_child(now, ha, old);
    p.drive_for(Duration::from_secs(29));
    assert_eq!(p.b.live_children().len(), 2, "within the grace period");
    p.drive_for(Duration::from_secs(10));
    assert_eq!(p.b.live_children().len(), 1, "B deleted the replaced child");
    assert_eq!(p.a.live_children().len(), 1);
    assert_consistent(&p);
    p.drive_for(Duration::from_secs(200));
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
}

/// RFC 7296 2.18: A rekeys the IKE SA and its delete of the old one is lost. B deletes the old
/// IKE SA itself after the grace period, so a later rekey by B is not blocked by it.
#[test]
fn responder_deletes_a_rekeyed_ike_sa_the_initiator_never_deleted() {
    let (mut p, ha, hb) = up();
    let n = p.log.len();
    p.wire = drop_seqs(n + 2, 4);
    let now = p.now;
    p.a.ep.rekey_ike(now, ha);
    p.drive_for(Duration::from_secs(40));
    let now = p.now;
    p.b.ep.rekey_ike(now, hb);
    p.drive_for(Duration::from_secs(5));
    assert_eq!(p.b.count(|e| matches!(e, Event::IkeSaRekeyed)), 2);
    assert_eq!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed)), 2);
    p.drive_for(Duration::from_secs(200));
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
    assert_consistent(&p);
}
