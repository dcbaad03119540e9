//! What a peer can make the engine hold stays bounded.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::hostile;
use super::pair::TestPair;
use crate::wire::{ExchangeType, NotifyType};
use crate::Endpoint;

/// Our IKE SPIs the endpoint routes.
fn routes(ep: &Endpoint) -> usize {
    ep.registry().routes()
}

/// RFC 7296 2.18: each IKE rekey adds an SPI; once the old IKE SA is deleted its SPI must stop
/// routing, so a long-lived SA rekeyed again and again holds a constant number of routes.
#[test]
fn ike_rekeys_do_not_grow_the_routing_table() {
    for by_a in [true, false] {
        let (mut p, ha, hb) = TestPair::up();
        for _ in 0..20 {
            let now = p.now;
            if by_a {
                p.a.rekey_ike(now, ha);
            } else {
                p.b.rekey_ike(now, hb);
            }
            p.advance(Duration::from_secs(10));
        }
        assert!(p.a.sa_info(ha).is_some() && p.b.sa_info(hb).is_some());
        assert_eq!((routes(&p.a), routes(&p.b)), (1, 1), "by A: {by_a}");
    }
}

fn children_of_b(p: &TestPair, hb: crate::SaHandle) -> usize {
    p.b.sa_info(hb).unwrap().children
}

/// RFC 7296 2.8, 3.10.1: once a child is rekeyed, a REKEY_SA naming it again gets
/// CHILD_SA_NOT_FOUND; rekeying the same SPI again and again creates nothing.
#[test]
fn rekeying_the_same_child_again_creates_nothing() {
    let (mut p, ha, hb) = TestPair::up();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let old = p.a.sa_info(ha).map(|_| p.a_children()[0]).unwrap();
    let first = hostile::request(
        &mut p,
        ha,
        ExchangeType::CREATE_CHILD_SA,
        &hostile::rekey_request(old, 0xa000_0001, &mut rng),
    );
    assert_eq!(hostile::error(&first), None);
    assert_eq!(
        children_of_b(&p, hb),
        2,
        "the old child and its replacement"
    );
    for i in 0..50 {
        let again = hostile::request(
            &mut p,
            ha,
            ExchangeType::CREATE_CHILD_SA,
            &hostile::rekey_request(old, 0xa000_0100 + i, &mut rng),
        );
        assert_eq!(hostile::error(&again), Some(NotifyType::CHILD_SA_NOT_FOUND));
    }
    assert_eq!(children_of_b(&p, hb), 2);
}

/// A chain of rekeys whose old children are never deleted stops at `max_children_per_sa`, and
/// the responder deletes the replaced children itself after `rekey_delete_grace`.
#[test]
fn rekeys_without_deletes_are_bounded_and_retired() {
    let (mut p, ha, hb) = TestPair::up();
    let max = p.b.config().max_children_per_sa;
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut current = p.a_children()[0];
    let mut refused = 0;
    for i in 0..u32::try_from(3 * max).unwrap() {
        let r = hostile::request(
            &mut p,
            ha,
            ExchangeType::CREATE_CHILD_SA,
            &hostile::rekey_request(current, 0xa000_0001 + i, &mut rng),
        );
        match hostile::error(&r) {
            // B's outbound SPI of the new child is the one offered (B looks children up by it).
            None => current = 0xa000_0001 + i,
            Some(NotifyType::NO_ADDITIONAL_SAS) => refused += 1,
            Some(other) => panic!("{other:?}"),
        }
        assert!(children_of_b(&p, hb) <= max);
    }
    assert!(refused > 0, "the bound was reached");
    let grace = p.b.config().rekey_delete_grace;
    p.advance(grace + Duration::from_secs(10));
    assert_eq!(children_of_b(&p, hb), 1, "only the newest child is left");
}
