//! Rekeys of post-quantum IKE SAs between two in-memory peers: child SA rekeys with PFS and IKE
//! SA rekeys run ML-KEM again, in IKE_FOLLOWUP_KE exchanges after the CREATE_CHILD_SA (RFC 9370
//! 2.2.4), with lost messages, a responder that forgot the series, and simultaneous rekeys.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod util;

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use oe_ike::crypto::DhGroup;
use oe_ike::wire::{ExchangeType, Message, Payload};
use oe_ike::{AdditionalKe, Config, Event, SaHandle};
use util::*;

use ExchangeType as X;

fn ed(name: &str) -> Config {
    config(name, Some(&format!("ed25519_{name}")))
}

fn up(a: Config, b: Config) -> (Pair, SaHandle, SaHandle) {
    let mut p = Pair::new(a, b);
    let ha = p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.established() && p.b.established());
    let hb = p.b_handle();
    (p, ha, hb)
}

/// Exchange type and response flag of each message sent from log entry `from` on (a fragmented
/// message counts once).
fn exchanges(p: &Pair, from: usize) -> Vec<(ExchangeType, bool)> {
    p.log[from..]
        .iter()
        .map(|(_, _, d)| Message::parse(strip_marker(d)).unwrap())
        .filter(|m| !matches!(m.payloads.first(), Some(Payload::Skf(f)) if f.number != 1))
        .map(|m| (m.header.exchange, m.header.is_response()))
        .collect()
}

fn strip_marker(d: &[u8]) -> &[u8] {
    d.strip_prefix(&[0u8; 4][..]).unwrap_or(d)
}

/// Datagrams of IKE_FOLLOWUP_KE requests from log entry `from` on.
fn followup_request_datagrams(p: &Pair, from: usize) -> usize {
    p.log[from..]
        .iter()
        .map(|(_, _, d)| Message::parse(strip_marker(d)).unwrap().header)
        .filter(|h| h.exchange == X::IKE_FOLLOWUP_KE && !h.is_response())
        .count()
}

/// Both sides agree on the live children, and each pairs with one on the other side.
fn assert_consistent(p: &Pair) {
    let (la, lb) = (p.a.live_children(), p.b.live_children());
    assert_eq!(la.len(), lb.len(), "A {la:x?} B {lb:x?}");
    for spi in la {
        let x = p.a.children().into_iter().find(|c| c.inbound_spi == spi);
        let y = p.b.children().into_iter().find(|c| c.outbound_spi == spi);
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(lb.contains(&y.inbound_spi));
        assert_paired(x, y);
    }
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
}

fn rekey_child(p: &mut Pair, by_a: bool, ha: SaHandle, hb: SaHandle) {
    let now = p.now;
    if by_a {
        let old = p.a.live_children()[0];
        p.a.ep.rekey_child(now, ha, old);
    } else {
        let old = p.b.live_children()[0];
        p.b.ep.rekey_child(now, hb, old);
    }
}

fn rekey_ike(p: &mut Pair, by_a: bool, ha: SaHandle, hb: SaHandle) {
    let now = p.now;
    if by_a {
        p.a.ep.rekey_ike(now, ha);
    } else {
        p.b.ep.rekey_ike(now, hb);
    }
}

/// A child rekey, by either side, runs X25519 in the CREATE_CHILD_SA and ML-KEM-768 in one
/// IKE_FOLLOWUP_KE exchange (whose 1,184-byte key takes two fragments), and only then replaces
/// the child.
#[test]
fn child_rekey_runs_ml_kem_in_ike_followup_ke() {
    for by_a in [true, false] {
        let (mut p, ha, hb) = up(ed("a"), ed("b"));
        let mark = p.log.len();
        let old = p.a.live_children()[0];
        rekey_child(&mut p, by_a, ha, hb);
        p.drive_for(Duration::from_secs(1));
        assert_eq!(
            exchanges(&p, mark)[..4],
            [
                (X::CREATE_CHILD_SA, false),
                (X::CREATE_CHILD_SA, true),
                (X::IKE_FOLLOWUP_KE, false),
                (X::IKE_FOLLOWUP_KE, true),
            ],
            "by A: {by_a}"
        );
        assert_eq!(followup_request_datagrams(&p, mark), 2);
        assert_eq!(p.a.live_children().len(), 1);
        assert_eq!(p.a.deleted_children(), [old]);
        assert_consistent(&p);
        let c = p.a.children();
        assert_ne!(*c[0].keys.encr_out, *c[1].keys.encr_out);
    }
}

/// Without PFS configured on the rekeying side, its child rekey stays one exchange.
#[test]
fn child_rekey_without_pfs_is_one_exchange() {
    let mut a = ed("a");
    a.child_pfs = false;
    let (mut p, ha, hb) = up(a, ed("b"));
    let mark = p.log.len();
    rekey_child(&mut p, true, ha, hb);
    p.drive_for(Duration::from_secs(1));
    let x = exchanges(&p, mark);
    assert!(!x.iter().any(|(x, _)| *x == X::IKE_FOLLOWUP_KE), "{x:?}");
    assert_consistent(&p);
}

/// An IKE SA rekey, by either side, runs ML-KEM-768 again: the new IKE SA's keys come from
/// SK(0) | Ni | Nr | SK(1); its children carry over and later exchanges work on it.
#[test]
fn ike_rekey_runs_ml_kem_in_ike_followup_ke() {
    for by_a in [true, false] {
        let (mut p, ha, hb) = up(ed("a"), ed("b"));
        let before = p.a.ep.sa_info(ha).unwrap();
        let mark = p.log.len();
        rekey_ike(&mut p, by_a, ha, hb);
        p.drive_for(Duration::from_secs(1));
        assert_eq!(
            exchanges(&p, mark)[..4],
            [
                (X::CREATE_CHILD_SA, false),
                (X::CREATE_CHILD_SA, true),
                (X::IKE_FOLLOWUP_KE, false),
                (X::IKE_FOLLOWUP_KE, true),
            ],
            "by A: {by_a}"
        );
        for peer in [&p.a, &p.b] {
            assert_eq!(peer.count(|e| matches!(e, Event::IkeSaRekeyed)), 1);
        }
        for (peer, h) in [(&p.a, ha), (&p.b, hb)] {
            let info = peer.ep.sa_info(h).unwrap();
            assert_eq!(info.post_quantum, [DhGroup::MlKem768]);
            assert!(info.proposal.unwrap().ends_with("/KE1_ML_KEM_768"));
        }
        assert_ne!(p.a.ep.sa_info(ha).unwrap().spi_i, before.spi_i);
        // Children and later exchanges on the new IKE SA: a child rekey works, so both sides
        // derived the same SK_d.
        rekey_child(&mut p, !by_a, ha, hb);
        p.drive_for(Duration::from_secs(1));
        assert_eq!(p.a.live_children().len(), 1);
        assert_eq!(p.a.deleted_children().len(), 1);
        assert_consistent(&p);
    }
}

/// A peer that insists on ML-KEM in its rekeys (it offers nothing without it) gets it from a
/// peer for which it is optional, as initiator of child and IKE SA rekeys, on either side.
#[test]
fn a_peer_insisting_on_ml_kem_in_rekeys_gets_it() {
    for insisting_a in [true, false] {
        let (mut a, mut b) = (ed("a"), ed("b"));
        let insisting = if insisting_a { &mut a } else { &mut b };
        insisting.additional_ke = AdditionalKe::hybrid().required();
        let (mut p, ha, hb) = up(a, b);
        let mark = p.log.len();
        rekey_child(&mut p, insisting_a, ha, hb);
        p.drive_for(Duration::from_secs(1));
        rekey_ike(&mut p, insisting_a, ha, hb);
        p.drive_for(Duration::from_secs(1));
        let followups = exchanges(&p, mark)
            .iter()
            .filter(|x| **x == (X::IKE_FOLLOWUP_KE, true))
            .count();
        assert_eq!(followups, 2, "insisting A: {insisting_a}");
        assert_eq!(p.a.deleted_children().len(), 1);
        assert_eq!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed)), 1);
        assert_consistent(&p);
    }
}

/// Two additional rounds (ADDKE1 and ADDKE2) run as two IKE_FOLLOWUP_KE exchanges, each
/// response linking to the next request.
#[test]
fn two_additional_rounds_in_rekeys() {
    let two = AdditionalKe {
        rounds: vec![vec![DhGroup::MlKem1024], vec![DhGroup::MlKem512]],
        required: false,
    };
    let (mut a, mut b) = (ed("a"), ed("b"));
    a.additional_ke = two.clone();
    b.additional_ke = two;
    let (mut p, ha, hb) = up(a, b);
    for ike in [false, true] {
        let mark = p.log.len();
        if ike {
            rekey_ike(&mut p, false, ha, hb);
        } else {
            rekey_child(&mut p, true, ha, hb);
        }
        p.drive_for(Duration::from_secs(1));
        let followups = exchanges(&p, mark)
            .iter()
            .filter(|x| **x == (X::IKE_FOLLOWUP_KE, true))
            .count();
        assert_eq!(followups, 2, "IKE SA rekey: {ike}");
    }
    assert_eq!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed)), 1);
    let info = p.a.ep.sa_info(ha).unwrap();
    assert_eq!(info.post_quantum, [DhGroup::MlKem1024, DhGroup::MlKem512]);
    assert_consistent(&p);
}

/// Drops the first transmission of every datagram of IKE_FOLLOWUP_KE messages going one way
/// (requests: A to B when A rekeys; responses the other way).
fn drop_first_followups(requests: bool) -> Tamper {
    let mut seen = HashSet::new();
    Box::new(move |_, d| {
        let Ok(m) = Message::parse(strip_marker(d)) else {
            return true;
        };
        let h = m.header;
        if h.exchange != X::IKE_FOLLOWUP_KE || h.is_response() == requests {
            return true;
        }
        let fragment = match m.payloads.first() {
            Some(Payload::Skf(f)) => f.number,
            _ => 0,
        };
        !seen.insert((h.message_id, h.is_response(), fragment))
    })
}

/// Lost IKE_FOLLOWUP_KE requests are retransmitted, lost responses are replayed from the
/// responder's cache, and the rekeys complete with the same keys on both sides.
#[test]
fn lost_followup_messages_are_retransmitted() {
    for ike in [false, true] {
        for requests in [true, false] {
            let (mut p, ha, hb) = up(ed("a"), ed("b"));
            p.tamper = Some(drop_first_followups(requests));
            if ike {
                rekey_ike(&mut p, true, ha, hb);
            } else {
                rekey_child(&mut p, true, ha, hb);
            }
            p.drive_for(Duration::from_secs(30));
            let case = format!("IKE SA: {ike}, lost requests: {requests}");
            if ike {
                assert_eq!(p.b.count(|e| matches!(e, Event::IkeSaRekeyed)), 1, "{case}");
                rekey_child(&mut p, false, ha, hb);
                p.drive_for(Duration::from_secs(30));
            }
            assert_eq!(p.a.deleted_children().len(), 1, "{case}");
            assert_consistent(&p);
        }
    }
}

/// The responder forgets a series whose next request does not come within its wait (RFC 9370
/// 2.2.4); a request that arrives later gets STATE_NOT_FOUND, the initiator gives the series up
/// and keeps the old child, and its next rekey succeeds.
#[test]
fn a_forgotten_series_fails_and_the_rekey_is_tried_again() {
    let (mut p, ha, hb) = up(ed("a"), ed("b"));
    let cut = Rc::new(Cell::new(true));
    let on = Rc::clone(&cut);
    p.tamper = Some(Box::new(move |_, d| {
        let h = Message::parse(strip_marker(d)).unwrap().header;
        !(on.get() && h.exchange == X::IKE_FOLLOWUP_KE)
    }));
    let old = p.a.live_children()[0];
    let mark = p.log.len();
    rekey_child(&mut p, true, ha, hb);
    p.drive_for(Duration::from_secs(40));
    assert_eq!(p.a.live_children(), [old], "the old child stays meanwhile");
    cut.set(false);
    p.drive_for(Duration::from_secs(20));
    let requests = exchanges(&p, mark)
        .iter()
        .filter(|x| **x == (X::CREATE_CHILD_SA, false))
        .count();
    assert_eq!(requests, 2, "the series failed and the rekey ran again");
    assert_eq!(p.a.deleted_children(), [old]);
    assert_eq!((p.a.children().len(), p.b.children().len()), (2, 2));
    assert_consistent(&p);
}

/// RFC 7296 2.8.1 with RFC 9370 2.2.4: both peers rekey the same child at once. Each answers the
/// other's CREATE_CHILD_SA; the one whose exchange has the lowest nonce stops before its
/// IKE_FOLLOWUP_KE exchanges, the other finishes and deletes the old child. Whichever side wins,
/// one new child remains, and the winner drops the loser's half-done series at once (the inbound
/// SPI it held is free for the next rekey).
#[test]
fn simultaneous_child_rekey_with_ml_kem() {
    let mut winners = HashSet::new();
    for case in 0..8 {
        let (mut p, ha, hb) = up(ed("a"), ed("b"));
        for _ in 0..case {
            let now = p.now;
            p.b.ep.check_liveness(now, hb);
            p.drive_for(Duration::from_secs(1));
        }
        let now = p.now;
        let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
        p.a.ep.rekey_child(now, ha, ca);
        p.b.ep.rekey_child(now, hb, cb);
        p.drive_for(Duration::from_secs(2));
        assert_eq!(
            p.a.live_children().len(),
            1,
            "case {case}: {:?}",
            p.a.events
        );
        assert_eq!(
            p.a.children().len(),
            2,
            "case {case}: the loser made no child"
        );
        assert_consistent(&p);
        // A's inbound SPIs count up: 2 for its own rekey, 3 for answering B's.
        winners.insert(p.a.live_children()[0] & 0xffff);
        // The next rekey, by either side, goes through at once, and A's new child takes the
        // SPI the abandoned or forgotten series gave back (2 or 3) rather than a new one (4).
        rekey_child(&mut p, case % 2 == 0, ha, hb);
        p.drive_for(Duration::from_secs(1));
        assert_eq!(p.a.live_children().len(), 1, "case {case}");
        assert_eq!(p.a.children().len(), 3, "case {case}");
        assert!(p.a.live_children()[0] & 0xffff <= 3, "case {case}");
        assert_consistent(&p);
    }
    assert_eq!(
        winners,
        HashSet::from([2, 3]),
        "both sides won in some case"
    );
}

/// Delivers every queued datagram of A (when `a_to_b`) or B to the other side.
fn deliver_all(p: &mut Pair, a_to_b: bool) {
    let now = p.now;
    let (from, to) = if a_to_b {
        (&mut p.a, &mut p.b)
    } else {
        (&mut p.b, &mut p.a)
    };
    while let Some(t) = from.ep.poll_transmit() {
        to.ep.handle_datagram(now, t.local, t.remote, &t.contents);
    }
}

/// B's rekey of the child reaches A only once A's own rekey of it is in its IKE_FOLLOWUP_KE
/// exchange: the collision was settled for A without B's, so A answers TEMPORARY_FAILURE
/// (strongSwan does the same), finishes its rekey, and both keep A's child, whatever the nonces.
#[test]
fn a_rekey_colliding_with_our_followup_gets_temporary_failure() {
    for case in 0..6 {
        let (mut p, ha, hb) = up(ed("a"), ed("b"));
        for _ in 0..case {
            let now = p.now;
            p.b.ep.check_liveness(now, hb);
            p.drive_for(Duration::from_secs(1));
        }
        let now = p.now;
        let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
        p.a.ep.rekey_child(now, ha, ca);
        p.b.ep.rekey_child(now, hb, cb);
        p.step_events();
        let b_req = p.b.ep.poll_transmit().unwrap();
        deliver_all(&mut p, true); // A's CREATE_CHILD_SA reaches B, which answers
        p.step_events();
        deliver_all(&mut p, false); // A, unaware of B's rekey, starts its IKE_FOLLOWUP_KE
        p.step_events();
        let followup: Vec<_> = std::iter::from_fn(|| p.a.ep.poll_transmit()).collect();
        assert!(!followup.is_empty());
        let now = p.now;
        p.a.ep
            .handle_datagram(now, b_req.local, b_req.remote, &b_req.contents);
        for t in followup {
            p.b.ep.handle_datagram(now, t.local, t.remote, &t.contents);
        }
        p.drive_for(Duration::from_secs(30));
        assert_consistent(&p);
        assert_eq!(
            p.a.children().len(),
            2,
            "case {case}: only A's rekey made a child"
        );
        assert_eq!(p.a.live_children()[0] & 0xffff, 2, "case {case}: A's own");
    }
}
