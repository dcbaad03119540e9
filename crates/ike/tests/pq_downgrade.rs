//! An on-path attacker who strips the additional key exchanges (RFC 9370 ADDKE transforms) from
//! IKE_SA_INIT, to get a classical IKE SA that a quantum computer can break later. Each side's
//! AUTH signs its IKE_SA_INIT message as it sent it (RFC 7296 2.15), and a responder that chose
//! additional key exchanges takes no IKE_AUTH before them, so the handshake fails at IKE_AUTH:
//! no IKE SA, no child SA, on either side.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod util;

use std::time::Duration;

use oe_ike::wire::{ExchangeType, Message, Payload, TransformType};
use oe_ike::Event;
use util::*;

/// Removes every ADDKE transform from the SA payload of an IKE_SA_INIT message going one way
/// (the request when `request`, else the response).
fn strip_addke(request: bool) -> Tamper {
    Box::new(move |a_to_b, d| {
        let Ok(mut m) = Message::parse(d) else {
            return true;
        };
        if m.header.exchange != ExchangeType::IKE_SA_INIT || a_to_b != request {
            return true;
        }
        for p in &mut m.payloads {
            if let Payload::Sa(sa) = p {
                for prop in &mut sa.proposals {
                    prop.transforms.retain(|t| {
                        !(TransformType::ADDKE1.0..=TransformType::ADDKE7.0).contains(&t.ty.0)
                    });
                }
            }
        }
        *d = m.emit();
        true
    })
}

fn addke_count(d: &[u8]) -> usize {
    let m = Message::parse(d).unwrap();
    let Some(Payload::Sa(sa)) = m.payloads.iter().find(|p| matches!(p, Payload::Sa(_))) else {
        return 0;
    };
    sa.proposals
        .iter()
        .flat_map(|p| &p.transforms)
        .filter(|t| t.ty.0 >= TransformType::ADDKE1.0)
        .count()
}

#[test]
fn stripping_additional_key_exchanges_fails_the_handshake_at_ike_auth() {
    for request in [true, false] {
        let case = if request { "request" } else { "response" };
        let mut p = Pair::new(
            config("a", Some("ed25519_a")),
            config("b", Some("ed25519_b")),
        );
        p.tamper = Some(strip_addke(request));
        p.connect();
        p.drive_for(Duration::from_secs(30));
        // The attack had something to strip: the message as sent offered or chose ML-KEM.
        let (_, _, tampered) = &p.log[usize::from(!request)];
        assert!(addke_count(tampered) > 0, "{case}");
        let auth = p
            .log
            .iter()
            .any(|(_, _, d)| Message::parse(d).unwrap().header.exchange == ExchangeType::IKE_AUTH);
        assert!(auth, "{case}: the handshake got as far as IKE_AUTH");
        for (side, peer) in [("A", &p.a), ("B", &p.b)] {
            assert!(
                !peer.established(),
                "{case}: {side} established: {:?}",
                peer.events
            );
            let children = peer.count(|e| matches!(e, Event::ChildSaReady { .. }));
            assert_eq!(children, 0, "{case}: {side} installed a child");
            assert!(peer.closed().is_some(), "{case}: {side} still open");
        }
    }
}
