//! `Endpoint::delete_now`: the agent sheds an IKE SA under pressure without waiting for the
//! peer. The SA and its children are gone at once; the peer is told with one Delete (RFC 7296
//! 1.4.1) that is never retransmitted, so a peer that does not answer keeps nothing alive.

#![allow(clippy::unwrap_used)]

mod util;

use std::time::Duration;

use oe_ike::{CloseReason, Event};
use util::*;

fn null_pair_accepting() -> (Pair, oe_ike::SaHandle) {
    let mut a = config("a", None);
    let mut b = config("b", None);
    a.accept_null_peers = true;
    b.accept_null_peers = true;
    let mut p = Pair::new(a, b);
    p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.established() && p.b.established());
    let hb = p.b_handle();
    (p, hb)
}

#[test]
fn the_sa_and_its_children_are_gone_before_the_peer_answers() {
    let (mut p, hb) = null_pair_accepting();
    assert_eq!(p.b.live_children().len(), 1);
    let now = p.now;
    p.b.ep.delete_now(now, hb);
    Pair::answer_events(&mut p.b, now);
    assert_eq!(
        p.b.ep.sa_count(),
        0,
        "nothing is held once delete_now returns"
    );
    assert!(
        p.b.live_children().is_empty(),
        "its child was reported deleted"
    );
    assert_eq!(p.b.closed(), Some(&CloseReason::Local));
    // The peer hears the Delete and closes too.
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.a.closed(), Some(&CloseReason::PeerDeleted));
    assert!(p.a.live_children().is_empty());
}

#[test]
fn a_peer_that_never_answers_gets_one_delete_and_no_retransmission() {
    let (mut p, hb) = null_pair_accepting();
    p.wire = Wire::Blackhole;
    let sent_before = p.log.len();
    let now = p.now;
    p.b.ep.delete_now(now, hb);
    p.drive_for(Duration::from_secs(300));
    let sent: Vec<_> = p.log[sent_before..]
        .iter()
        .filter(|(_, ab, _)| !ab)
        .collect();
    assert_eq!(sent.len(), 1, "one Delete, never retransmitted");
    assert_eq!(p.b.ep.sa_count(), 0);
    assert_eq!(p.b.ep.poll_timeout(), None, "no timer left for it");
    assert_eq!(
        p.b.count(|e| matches!(e, Event::Closed { .. })),
        1,
        "closed once"
    );
}

#[test]
fn an_sa_with_a_request_in_flight_closes_without_a_second_request() {
    let (mut p, hb) = null_pair_accepting();
    p.wire = Wire::Blackhole;
    let now = p.now;
    p.b.ep.check_liveness(now, hb);
    Pair::drain(&mut p.b);
    p.b.ep.delete_now(now, hb);
    assert!(
        Pair::drain(&mut p.b).is_empty(),
        "the liveness check holds the message ID: no Delete is sent"
    );
    assert_eq!(p.b.ep.sa_count(), 0);
}
