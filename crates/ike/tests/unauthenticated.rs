//! RFC 7296 2.4: an endpoint must not act on IKE messages that arrive without cryptographic
//! protection. A datagram carrying an IKE SA's SPIs and the message ID in play (the outstanding
//! request's, or the next request the endpoint expects), with no SK payload, or with an SK or SKF
//! payload whose ICV fails, must change nothing: no teardown, no answer, no message-ID advance, no
//! change to retransmission. Checked for every exchange type, both IKE SA roles, requests and
//! responses, and fragments: a run with the forgeries injected must put exactly the same bytes on
//! the wire, and report the same events, as the same run without them.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod util;

use std::time::Duration;

use util::forge::{self, As, EXCHANGES, FORMS};
use util::*;

/// The request that is in flight while the forgeries arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    IkeAuth,
    LivenessByA,
    LivenessByB,
    ChildRekeyByA,
    ChildRekeyByB,
    IkeRekeyByA,
    IkeRekeyByB,
}

const CASES: [Case; 7] = [
    Case::IkeAuth,
    Case::LivenessByA,
    Case::LivenessByB,
    Case::ChildRekeyByA,
    Case::ChildRekeyByB,
    Case::IkeRekeyByA,
    Case::IkeRekeyByB,
];

fn drop_seq(n: usize) -> Wire {
    Wire::DropSeq(Box::leak(vec![n].into_boxed_slice()))
}

/// Runs until the case's request is on the wire and held back (dropped); returns its log index.
fn prepare(case: Case) -> (Pair, usize) {
    let mut p = Pair::new(
        classical(config("a", Some("ed25519_a"))),
        classical(config("b", Some("ed25519_b"))),
    );
    if case == Case::IkeAuth {
        // Datagrams 0 and 1 are IKE_SA_INIT, 2 is the IKE_AUTH request.
        p.wire = drop_seq(2);
        p.connect();
        p.drive_now();
        return (p, 2);
    }
    let ha = p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.established() && p.b.established());
    let hb = p.b_handle();
    let n = p.log.len();
    p.wire = drop_seq(n);
    let now = p.now;
    let (ca, cb) = (p.a.live_children()[0], p.b.live_children()[0]);
    match case {
        Case::IkeAuth => unreachable!(),
        Case::LivenessByA => p.a.ep.check_liveness(now, ha),
        Case::LivenessByB => p.b.ep.check_liveness(now, hb),
        Case::ChildRekeyByA => p.a.ep.rekey_child(now, ha, ca),
        Case::ChildRekeyByB => p.b.ep.rekey_child(now, hb, cb),
        Case::IkeRekeyByA => p.a.ep.rekey_ike(now, ha),
        Case::IkeRekeyByB => p.b.ep.rekey_ike(now, hb),
    }
    p.drive_now();
    assert_eq!(p.log.len(), n + 1, "{case:?}: one request held");
    (p, n)
}

/// The message ID of the next request `to` expects from the other side: one past the last request
/// the other side sent (from the log), or 0.
fn next_expected(p: &Pair, to_a: bool) -> u32 {
    p.log
        .iter()
        .filter(|(_, a_to_b, d)| *a_to_b != to_a && !forge::is_response(d))
        .filter(|(_, _, d)| d[18] != forge::IKE_SA_INIT)
        .map(|(_, _, d)| forge::mid(d) + 1)
        .max()
        .unwrap_or(0)
}

/// Every forgery for the held request `d` sent by X: requests to Y with the held message ID,
/// responses to X with it, and requests to X with the ID X expects next.
fn forgeries(p: &Pair, held: usize) -> Vec<(bool, Vec<u8>)> {
    let (_, a_to_b, d) = &p.log[held];
    let m = forge::mid(d);
    let x_expects = next_expected(p, *a_to_b);
    let mut out = Vec::new();
    for x in EXCHANGES {
        for f in FORMS {
            let to_x = !*a_to_b;
            out.push((*a_to_b, forge::forge(d, As::RequestFromX, x, m, f)));
            out.push((to_x, forge::forge(d, As::ResponseToX, x, m, f)));
            out.push((to_x, forge::forge(d, As::RequestToX, x, x_expects, f)));
        }
    }
    out
}

/// Delivers the forgeries; nothing may be sent, reported or rescheduled.
fn inject(p: &mut Pair, held: usize) -> usize {
    let list = forgeries(p, held);
    let timers = (p.a.ep.poll_timeout(), p.b.ep.poll_timeout());
    let (now, a, b) = (p.now, p.a.addr, p.b.addr);
    for (to_b, d) in &list {
        let (to, from, at) = if *to_b {
            (&mut p.b, a, b)
        } else {
            (&mut p.a, b, a)
        };
        to.ep.handle_datagram(now, from, at, d);
        let head = &d[..24];
        if let Some(t) = to.ep.poll_transmit() {
            panic!("{head:02x?} answered with {:02x?}", &t.contents[..24]);
        }
        assert!(
            to.ep.poll_event().is_none(),
            "reported an event for {head:02x?}"
        );
        assert_eq!(
            timers.0,
            p.a.ep.poll_timeout(),
            "A rescheduled: {head:02x?}"
        );
        assert_eq!(
            timers.1,
            p.b.ep.poll_timeout(),
            "B rescheduled: {head:02x?}"
        );
    }
    list.len()
}

/// Delivers the held request and runs on; returns the wire log and the events of both sides.
fn finish(mut p: Pair, held: usize) -> (Vec<(Duration, bool, Vec<u8>)>, String) {
    let (_, a_to_b, d) = p.log[held].clone();
    let now = p.now;
    let (a, b) = (p.a.addr, p.b.addr);
    if a_to_b {
        p.b.ep.handle_datagram(now, a, b, &d);
    } else {
        p.a.ep.handle_datagram(now, b, a, &d);
    }
    p.wire = Wire::Perfect;
    p.drive_for(Duration::from_secs(20));
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
    let events = format!("{:?}\n{:?}", p.a.events, p.b.events);
    (p.log, events)
}

#[test]
fn unauthenticated_messages_change_nothing() {
    for case in CASES {
        let (control, held) = prepare(case);
        let control = finish(control, held);
        let (mut attacked, held) = prepare(case);
        let n = inject(&mut attacked, held);
        assert!(n >= 3 * EXCHANGES.len() * FORMS.len());
        let attacked = finish(attacked, held);
        assert_eq!(control.1, attacked.1, "{case:?}: events differ");
        assert!(control.0 == attacked.0, "{case:?}: the wire differs");
    }
}

/// The exchanges this test forges from are the classical ones (IKE_INTERMEDIATE, fragmented
/// with ML-KEM, is not among them yet).
fn classical(mut c: oe_ike::Config) -> oe_ike::Config {
    c.additional_ke = oe_ike::AdditionalKe::off();
    c
}
