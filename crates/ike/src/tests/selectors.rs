//! Narrowed traffic selectors (RFC 7296 2.9): what a child SA reports is exactly what was agreed,
//! normalized to one selector per side that one kernel policy pair can hold; what cannot be held
//! is refused. Both roles, with real engines: A's IKE_AUTH request or B's response is opened,
//! its TSi/TSr replaced, and sealed again with the IKE SA's keys (the AUTH payload does not
//! cover selectors).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;

use super::hostile::{open_on, seal_on};
use super::pair::{config, TestPair, A, B};
use crate::event::{Event, SaHandle};
use crate::wire::{ExchangeType, NotifyType, Payload, TrafficSelector, TsPayload};

fn ip(s: &str) -> IpAddr {
    s.parse::<std::net::SocketAddr>().unwrap().ip()
}

fn sel(addr: &str, proto: u8, ports: (u16, u16)) -> TrafficSelector {
    TrafficSelector {
        ip_proto: proto,
        start_port: ports.0,
        end_port: ports.1,
        start: ip(addr),
        end: ip(addr),
    }
}

const ALL: (u16, u16) = (0, u16::MAX);

/// A and B through IKE_SA_INIT; A's IKE_AUTH request is held. Returns the pair, A's handle, B's
/// handle and A's IKE_AUTH payloads.
fn until_auth() -> (TestPair, SaHandle, SaHandle, Vec<Payload>) {
    let mut p = TestPair::new(config(), config());
    let ha = p.a.connect(p.now, A.parse().unwrap(), B.parse().unwrap());
    let init = p.take_from_a();
    p.deliver_to_b(&init);
    let resp = p.take_from_b();
    p.deliver_to_a(&resp);
    let auth = p.take_from_a();
    assert_eq!(auth.len(), 1);
    let hb =
        p.b.registry()
            .route(u64::from_be_bytes(auth[0][8..16].try_into().unwrap()))
            .unwrap();
    let payloads = open_on(&mut p.b, hb, &auth[0]);
    (p, ha, hb, payloads)
}

fn with_ts(
    payloads: &[Payload],
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
) -> Vec<Payload> {
    payloads
        .iter()
        .map(|x| match x {
            Payload::TsI(_) => Payload::TsI(TsPayload(tsi.clone())),
            Payload::TsR(_) => Payload::TsR(TsPayload(tsr.clone())),
            other => other.clone(),
        })
        .collect()
}

fn ts_of(payloads: &[Payload]) -> (Vec<TrafficSelector>, Vec<TrafficSelector>) {
    let mut out = (Vec::new(), Vec::new());
    for x in payloads {
        match x {
            Payload::TsI(t) => out.0 = t.0.clone(),
            Payload::TsR(t) => out.1 = t.0.clone(),
            _ => {}
        }
    }
    out
}

/// The child reported ready on one side, if any: (local_ts, remote_ts).
fn ready(p: &TestPair, on_a: bool) -> Option<(Vec<TrafficSelector>, Vec<TrafficSelector>)> {
    p.events.iter().find_map(|(a, _, e)| match e {
        Event::ChildSaReady { child, .. } if *a == on_a => {
            Some((child.local_ts.clone(), child.remote_ts.clone()))
        }
        _ => None,
    })
}

fn child_failed(p: &TestPair, on_a: bool) -> bool {
    p.events
        .iter()
        .any(|(a, _, e)| *a == on_a && matches!(e, Event::ChildSaFailed { .. }))
}

/// A offers (tsi, tsr) in IKE_AUTH; B answers; A reads the answer. Returns B's reply payloads.
fn offer(tsi: Vec<TrafficSelector>, tsr: Vec<TrafficSelector>) -> (TestPair, Vec<Payload>) {
    let (mut p, ha, hb, auth) = until_auth();
    let forged = seal_on(
        &mut p.a,
        ha,
        ExchangeType::IKE_AUTH,
        1,
        false,
        &with_ts(&auth, tsi, tsr),
    );
    p.deliver_to_b(&forged);
    let resp = p.take_from_b();
    let reply = open_on(&mut p.a, ha, &resp[0]);
    p.deliver_to_a(&resp);
    p.answer_a();
    let _ = hb;
    (p, reply)
}

fn error(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|x| match x {
        Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
        _ => None,
    })
}

/// Responder: an initiator narrowing to TCP port 80 on B's side gets exactly that, normalized:
/// both selectors carry TCP; B's child and A's child report what B answered.
#[test]
fn responder_reports_and_answers_the_narrowed_selectors() {
    let (p, reply) = offer(vec![sel(A, 0, ALL)], vec![sel(B, 6, (80, 80))]);
    let want_i = sel(A, 6, ALL);
    let want_r = sel(B, 6, (80, 80));
    assert_eq!(ts_of(&reply), (vec![want_i], vec![want_r]));
    assert_eq!(
        ready(&p, false),
        Some((vec![want_r], vec![want_i])),
        "B: local = TSr"
    );
    assert_eq!(
        ready(&p, true),
        Some((vec![want_i], vec![want_r])),
        "A: local = TSi"
    );
}

/// Responder: of several selectors the widest it can hold is chosen. The initiator's first
/// selectors describe the packet that triggered it (2.9); a wider pair it also offers serves
/// later flows between the two hosts too.
#[test]
fn responder_picks_the_widest_selector_it_can_hold() {
    let (p, reply) = offer(
        vec![sel(A, 17, (1000, 2000)), sel(A, 17, ALL)],
        vec![sel(B, 17, (53, 53)), sel(B, 0, ALL)],
    );
    let (i, r) = (sel(A, 17, ALL), sel(B, 17, ALL));
    assert_eq!(ts_of(&reply), (vec![i], vec![r]));
    assert_eq!(ready(&p, false), Some((vec![r], vec![i])));
}

/// Responder: selectors no single policy pair can hold (different protocols on each side, a port
/// range that is neither one port nor all) are refused with TS_UNACCEPTABLE; the IKE SA stays.
#[test]
fn responder_refuses_what_it_cannot_hold() {
    for (tsi, tsr) in [
        (sel(A, 6, ALL), sel(B, 17, ALL)),
        (sel(A, 6, (1000, 2000)), sel(B, 6, ALL)),
        (sel(A, 0, (80, 80)), sel(B, 0, ALL)),
    ] {
        let (p, reply) = offer(vec![tsi], vec![tsr]);
        assert_eq!(
            error(&reply),
            Some(NotifyType::TS_UNACCEPTABLE),
            "{tsi:?} {tsr:?}"
        );
        assert_eq!(ready(&p, false), None);
        assert!(child_failed(&p, true));
    }
}

/// Initiator: B's answer, replaced by what a peer might narrow to, is taken as negotiated when one
/// policy pair can hold it, and refused otherwise: the child fails and A deletes B's half.
#[test]
fn initiator_accepts_only_what_it_can_hold() {
    let cases = [
        // (TSi, TSr as answered) -> A's (local_ts, remote_ts), or None for a refusal.
        (
            vec![sel(A, 6, ALL)],
            vec![sel(B, 0, ALL)],
            Some((sel(A, 6, ALL), sel(B, 6, ALL))),
        ),
        (
            vec![sel(A, 17, (5353, 5353))],
            vec![sel(B, 17, (53, 53))],
            Some((sel(A, 17, (5353, 5353)), sel(B, 17, (53, 53)))),
        ),
        (vec![sel(A, 6, ALL)], vec![sel(B, 17, ALL)], None),
        (
            vec![sel(A, 6, ALL), sel(A, 17, ALL)],
            vec![sel(B, 0, ALL)],
            None,
        ),
        (vec![sel(A, 6, (1, 1023))], vec![sel(B, 6, ALL)], None),
    ];
    for (tsi, tsr, want) in cases {
        let (mut p, ha, hb, auth) = until_auth();
        let request = seal_on(&mut p.a, ha, ExchangeType::IKE_AUTH, 1, false, &auth);
        p.deliver_to_b(&request);
        let resp = p.take_from_b();
        let reply = open_on(&mut p.a, ha, &resp[0]);
        let forged = seal_on(
            &mut p.b,
            hb,
            ExchangeType::IKE_AUTH,
            1,
            true,
            &with_ts(&reply, tsi.clone(), tsr.clone()),
        );
        p.deliver_to_a(&forged);
        p.answer_a();
        match want {
            Some((l, r)) => {
                assert_eq!(ready(&p, true), Some((vec![l], vec![r])), "{tsi:?} {tsr:?}")
            }
            None => {
                assert_eq!(ready(&p, true), None, "{tsi:?} {tsr:?}");
                assert!(child_failed(&p, true));
                // A tells B to delete the child B made for it.
                p.run();
                let deleted = p
                    .events
                    .iter()
                    .any(|(a, _, e)| !a && matches!(e, Event::ChildSaDeleted { .. }));
                assert!(deleted, "B's half is deleted");
            }
        }
    }
}
