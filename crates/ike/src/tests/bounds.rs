//! What a peer can make the engine hold stays bounded.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::pair::TestPair;
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
