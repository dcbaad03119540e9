//! Whole IKE_SA_INIT + IKE_AUTH exchanges between two in-memory peers.

mod util;

use std::time::Duration;

use oe_ike::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use oe_ike::wire::{Identity, Message, NotifyType, Payload};
use oe_ike::{
    CloseReason, Error, EspProposal, Event, IkeProposal, LocalError, PeerAuth, PeerError,
};
use util::*;

fn established_pair(a: oe_ike::Config, b: oe_ike::Config) -> Pair {
    let mut p = Pair::new(a, b);
    p.connect();
    p.drive();
    assert!(p.a.established(), "A events: {:?}", p.a.events);
    assert!(p.b.established(), "B events: {:?}", p.b.events);
    p
}

/// A classical config (no RFC 9370 additional key exchange; `tests/pq.rs` covers the hybrid).
fn classical(name: &str) -> oe_ike::Config {
    let mut c = config(name, Some(&format!("ed25519_{name}")));
    c.additional_ke = oe_ike::AdditionalKe::off();
    c
}

#[test]
fn ed25519_both_sides() {
    let p = established_pair(classical("a"), classical("b"));
    let (ca, cb) = (p.a.children(), p.b.children());
    assert_eq!((ca.len(), cb.len()), (1, 1));
    assert_paired(ca[0], cb[0]);
    let peer = |peer: &Peer| {
        peer.events.iter().find_map(|(_, e)| match e {
            Event::IkeSaEstablished {
                peer_id, peer_auth, ..
            } => Some((peer_id.clone(), *peer_auth)),
            _ => None,
        })
    };
    assert_eq!(
        peer(&p.a),
        Some((Identity::Fqdn("b.example".into()), PeerAuth::Signature))
    );
    assert_eq!(
        peer(&p.b),
        Some((Identity::Fqdn("a.example".into()), PeerAuth::Signature))
    );
    // Host-to-host transport selectors.
    assert_eq!(ca[0].local_ts[0].start, p.a.addr.ip());
    assert_eq!(ca[0].remote_ts[0].end, p.b.addr.ip());
    // Two round trips, nothing retransmitted.
    assert_eq!(p.log.len(), 4);
    // Each side asked for the peer's key exactly once.
    assert_eq!(p.a.count(|e| matches!(e, Event::NeedPeerKey { .. })), 1);
    assert_eq!(p.b.count(|e| matches!(e, Event::NeedPeerKey { .. })), 1);
}

#[test]
fn null_auth_client_to_authenticated_server() {
    let mut b = config("b", Some("ed25519_b"));
    b.accept_null_peers = true;
    let p = established_pair(config("a", None), b);
    assert_paired(p.a.children()[0], p.b.children()[0]);
    let b_view = p.b.events.iter().find_map(|(_, e)| match e {
        Event::IkeSaEstablished {
            peer_id, peer_auth, ..
        } => Some((peer_id.clone(), *peer_auth)),
        _ => None,
    });
    assert_eq!(b_view, Some((Identity::Null, PeerAuth::Null)));
    // The server never asked for a key for an anonymous client.
    assert_eq!(p.b.count(|e| matches!(e, Event::NeedPeerKey { .. })), 0);
}

/// A NULL-authenticating client that announces no signature hash (Libreswan's `authby=null`,
/// as in its shipped `oe-upgrade-authnull.conf`) can verify no signature of ours, and method 1
/// needs SHA-1, which we never sign with: a server with a key answers with NULL (RFC 7619 3)
/// instead of failing the exchange. Before, the server failed locally and the client fell back
/// to clear.
#[test]
fn server_answers_null_to_a_null_client_without_signature_hashes() {
    for key in ["rsa2048_b", "ed25519_b"] {
        let mut a = config("a", None);
        a.signature_hashes = false;
        a.accept_null_peers = true;
        let mut b = config("b", Some(key));
        b.accept_null_peers = true;
        let p = established_pair(a, b);
        assert_paired(p.a.children()[0], p.b.children()[0]);
        let a_view = p.a.events.iter().find_map(|(_, e)| match e {
            Event::IkeSaEstablished {
                peer_id, peer_auth, ..
            } => Some((peer_id.clone(), *peer_auth)),
            _ => None,
        });
        assert_eq!(a_view, Some((Identity::Null, PeerAuth::Null)), "{key}");
        let b_presented = p.b.events.iter().find_map(|(_, e)| match e {
            Event::IkeSaEstablished { presented, .. } => Some(presented.clone()),
            _ => None,
        });
        assert_eq!(b_presented, Some(Identity::Null), "{key}");
    }
}

/// A client that announces signature hashes gets the server's signature, NULL client or not.
#[test]
fn server_signs_for_a_null_client_with_signature_hashes() {
    let mut b = config("b", Some("ed25519_b"));
    b.accept_null_peers = true;
    let p = established_pair(config("a", None), b);
    let a_view = p.a.events.iter().find_map(|(_, e)| match e {
        Event::IkeSaEstablished { peer_auth, .. } => Some(*peer_auth),
        _ => None,
    });
    assert_eq!(a_view, Some(PeerAuth::Signature));
}

#[test]
fn null_auth_refused_by_policy() {
    let mut p = Pair::new(config("a", None), config("b", Some("ed25519_b")));
    p.connect();
    p.drive();
    assert_eq!(
        p.b.closed(),
        Some(&CloseReason::Failed(Error::Peer(
            PeerError::AuthMethodRefused
        )))
    );
    assert_eq!(
        p.a.closed(),
        Some(&CloseReason::Failed(Error::Peer(PeerError::Notified(
            NotifyType::AUTHENTICATION_FAILED
        ))))
    );
    assert!(p.a.children().is_empty() && p.b.children().is_empty());
}

/// RFC 7296 2.21.2: the responder installed its child SA when it answered IKE_AUTH; an initiator that then
/// refuses the responder's key must say so (AUTHENTICATION_FAILED + Delete), or the responder would keep an
/// SA, and drop the initiator's cleartext, until it noticed the silence.
#[test]
fn initiator_refusing_the_responders_key_makes_the_responder_clean_up() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.a.peer_keys = None; // A's agent finds no secure key for B
    p.connect();
    p.drive();
    assert_eq!(p.a.closed(), Some(&CloseReason::Refused));
    assert_eq!(p.b.closed(), Some(&CloseReason::PeerDeleted));
    assert!(p.a.children().is_empty(), "A never installed a child");
    assert_eq!(
        p.b.children().len(),
        1,
        "B installed its child when it answered IKE_AUTH"
    );
    assert!(
        p.b.live_children().is_empty(),
        "B removed the child it had installed"
    );
}

#[test]
fn agent_refusing_the_key_fails_the_exchange() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.b.peer_keys = None; // B's agent finds no secure key for A
    p.connect();
    p.drive();
    assert_eq!(p.b.closed(), Some(&CloseReason::Refused));
    assert_eq!(
        p.a.closed(),
        Some(&CloseReason::Failed(Error::Peer(PeerError::Notified(
            NotifyType::AUTHENTICATION_FAILED
        ))))
    );
}

#[test]
fn wrong_key_is_an_authentication_failure() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.a.peer_keys = Some(vec![key("ed25519_a").public_key()]); // not B's key
    p.connect();
    p.drive();
    assert_eq!(
        p.a.closed(),
        Some(&CloseReason::Failed(Error::Peer(
            PeerError::AuthenticationFailed
        )))
    );
    assert!(p.a.children().is_empty());
}

#[test]
fn exchange_waits_for_the_agent() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.b.auto = false;
    p.connect();
    p.drive_for(Duration::from_secs(3));
    // B asked for an SPI and the key and answers nothing meanwhile; A retransmits IKE_AUTH.
    assert!(!p.a.established());
    p.drive_for(Duration::from_secs(10));
    let sent_before = p.log.len();
    let h = p.b.pending_keys[0];
    let now = p.now;
    p.b.ep.supply_spi(now, h, 0xdead_beef);
    let k = p.b.peer_keys.clone().unwrap();
    p.b.ep.supply_peer_keys(now, h, k);
    p.b.auto = true;
    p.drive();
    assert!(p.a.established() && p.b.established());
    assert_eq!(p.b.children()[0].inbound_spi, 0xdead_beef);
    assert!(p.log.len() > sent_before);
}

fn one_ike(
    encr: EncrAlg,
    integ: Option<IntegAlg>,
    prf: PrfAlg,
    group: DhGroup,
) -> Vec<IkeProposal> {
    vec![IkeProposal {
        encr,
        integ,
        prf,
        groups: vec![group],
    }]
}

#[test]
fn every_ike_algorithm_combination() {
    let encrs = [
        (EncrAlg::AesGcm16 { key_bits: 128 }, None),
        (EncrAlg::AesGcm16 { key_bits: 256 }, None),
        (EncrAlg::ChaCha20Poly1305, None),
        (
            EncrAlg::AesCbc { key_bits: 128 },
            Some(IntegAlg::HmacSha2_256_128),
        ),
        (
            EncrAlg::AesCbc { key_bits: 256 },
            Some(IntegAlg::HmacSha2_256_128),
        ),
    ];
    let prfs = [PrfAlg::HmacSha256, PrfAlg::HmacSha384, PrfAlg::HmacSha512];
    let groups = [
        DhGroup::Curve25519,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Modp2048,
    ];
    for (encr, integ) in encrs {
        for prf in prfs {
            for group in groups {
                // MODP is slow in debug builds: one PRF is enough to cover it.
                if group == DhGroup::Modp2048 && prf != PrfAlg::HmacSha256 {
                    continue;
                }
                let mut a = config("a", Some("ed25519_a"));
                let mut b = config("b", Some("ed25519_b"));
                a.ike_proposals = one_ike(encr, integ, prf, group);
                b.ike_proposals = a.ike_proposals.clone();
                let p = established_pair(a, b);
                assert_paired(p.a.children()[0], p.b.children()[0]);
            }
        }
    }
}

#[test]
fn every_esp_algorithm() {
    for esp in oe_ike::config::default_esp_proposals() {
        let mut a = config("a", Some("ed25519_a"));
        let mut b = config("b", Some("ed25519_b"));
        a.esp_proposals = vec![esp];
        b.esp_proposals = vec![esp];
        let p = established_pair(a, b);
        let (x, y) = (p.a.children()[0], p.b.children()[0]);
        assert_paired(x, y);
        assert_eq!(x.encr, esp.encr);
        assert_eq!(x.keys.encr_out.len(), esp.encr.key_material_len());
        assert_eq!(x.keys.integ_out.len(), esp.integ.map_or(0, |i| i.key_len()));
    }
}

#[test]
fn responder_preference_wins_among_common_proposals() {
    let mut a = config("a", Some("ed25519_a"));
    let mut b = config("b", Some("ed25519_b"));
    a.esp_proposals = oe_ike::config::default_esp_proposals();
    b.esp_proposals = vec![EspProposal {
        encr: EncrAlg::ChaCha20Poly1305,
        integ: None,
    }];
    let p = established_pair(a, b);
    assert_eq!(p.a.children()[0].encr, EncrAlg::ChaCha20Poly1305);
}

#[test]
fn no_common_ike_proposal() {
    let mut a = config("a", Some("ed25519_a"));
    let mut b = config("b", Some("ed25519_b"));
    a.ike_proposals = one_ike(
        EncrAlg::ChaCha20Poly1305,
        None,
        PrfAlg::HmacSha256,
        DhGroup::Curve25519,
    );
    b.ike_proposals = one_ike(
        EncrAlg::AesGcm16 { key_bits: 256 },
        None,
        PrfAlg::HmacSha256,
        DhGroup::Curve25519,
    );
    let mut p = Pair::new(a, b);
    p.connect();
    p.drive();
    assert_eq!(
        p.a.closed(),
        Some(&CloseReason::Failed(Error::Local(
            LocalError::NoProposalChosen
        )))
    );
    assert_eq!(p.b.ep.sa_count(), 0, "responder keeps no state");
}

#[test]
fn invalid_ke_payload_retry_with_the_responders_group() {
    let mut a = config("a", Some("ed25519_a"));
    let mut b = config("b", Some("ed25519_b"));
    a.ike_proposals[0].groups = vec![DhGroup::Curve25519, DhGroup::Ecp256];
    a.ike_proposals.truncate(1);
    b.ike_proposals = a.ike_proposals.clone();
    b.ike_proposals[0].groups = vec![DhGroup::Ecp256];
    let p = established_pair(a, b);
    let inits: Vec<_> = p
        .sent_by_a()
        .into_iter()
        .filter_map(|d| Message::parse(d).ok())
        .filter(|m| m.header.message_id == 0)
        .collect();
    assert_eq!(inits.len(), 2, "one retry");
    let ke_group = |m: &Message| {
        m.payloads.iter().find_map(|x| {
            if let Payload::Ke(k) = x {
                Some(k.group)
            } else {
                None
            }
        })
    };
    assert_eq!(
        (ke_group(&inits[0]), ke_group(&inits[1])),
        (Some(31), Some(19))
    );
    assert_paired(p.a.children()[0], p.b.children()[0]);
}

#[test]
fn cookies_past_the_half_open_threshold() {
    let mut b = config("b", Some("ed25519_b"));
    b.cookie_threshold = 0; // every IKE_SA_INIT needs a cookie
    let p = established_pair(config("a", Some("ed25519_a")), b);
    let inits: Vec<_> = p
        .sent_by_a()
        .into_iter()
        .filter_map(|d| Message::parse(d).ok())
        .filter(|m| m.header.message_id == 0)
        .collect();
    assert_eq!(inits.len(), 2);
    let Payload::Notify(n) = &inits[1].payloads[0] else {
        panic!("cookie must come first")
    };
    assert_eq!(n.ty, NotifyType::COOKIE);
    assert_eq!(n.data.len(), 33);
}

#[test]
fn forged_cookie_is_answered_with_a_fresh_one_and_no_state() {
    let mut b = config("b", Some("ed25519_b"));
    b.cookie_threshold = 0;
    let mut p = Pair::new(config("a", Some("ed25519_a")), b);
    p.connect();
    p.step(); // A's first IKE_SA_INIT reaches B, which answers with a cookie and keeps nothing
    assert_eq!(p.b.ep.sa_count(), 0);
    assert_eq!(p.b.ep.half_open(), 0);
}

#[test]
fn retransmission_backoff_and_recovery() {
    let mut p = Pair::new(classical("a"), classical("b"));
    // Lose A's first IKE_SA_INIT and B's first IKE_AUTH response.
    p.wire = Wire::DropSeq(&[0, 4]);
    p.connect();
    p.drive();
    assert!(p.a.established() && p.b.established());
    let times: Vec<_> = p
        .log
        .iter()
        .filter(|(_, ab, _)| *ab)
        .map(|(t, _, _)| t.as_millis())
        .collect();
    // IKE_SA_INIT at 0 and 4 s; IKE_AUTH at 4 s, retransmitted 4 s later.
    assert_eq!(times, [0, 4000, 4000, 8000]);
    // B answered the retransmitted IKE_AUTH from its replay cache: the same bytes.
    let from_b: Vec<_> = p
        .log
        .iter()
        .filter(|(_, ab, _)| !*ab)
        .map(|(_, _, d)| d.clone())
        .collect();
    assert_eq!(from_b.len(), 3);
    assert_eq!(from_b[1], from_b[2]);
    assert_eq!(
        p.b.children().len(),
        1,
        "the replayed request created nothing new"
    );
}

#[test]
fn gives_up_after_the_configured_tries() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.wire = Wire::Blackhole;
    p.connect();
    p.drive_for(Duration::from_secs(600));
    assert_eq!(
        p.a.closed(),
        Some(&CloseReason::Failed(Error::Local(LocalError::Timeout)))
    );
    let times: Vec<_> = p.log.iter().map(|(t, _, _)| t.as_secs_f64()).collect();
    // 4 s x 1.8^n: sends at 0, 4, 11.2, 24.16, 47.49, 89.47; failure 75.6 s after the last.
    assert_eq!(times.len(), 6);
    let expected = [0.0, 4.0, 11.2, 24.16, 47.488, 89.4784];
    for (t, e) in times.iter().zip(expected) {
        assert!((t - e).abs() < 0.01, "{times:?}");
    }
}

#[test]
fn fragmented_ike_auth_in_any_order() {
    for wire in [Wire::Perfect, Wire::Reverse] {
        let mut a = config("a", Some("ed25519_a"));
        let mut b = config("b", Some("ed25519_b"));
        a.fragment_size = 160;
        b.fragment_size = 160;
        let mut p = Pair::new(a, b);
        p.wire = wire;
        p.connect();
        p.drive();
        assert!(
            p.a.established() && p.b.established(),
            "{wire:?}: {:?}",
            p.a.events
        );
        assert_paired(p.a.children()[0], p.b.children()[0]);
        let frags = p
            .log
            .iter()
            .filter(|(_, _, d)| {
                matches!(
                    Message::parse(d).map(|m| m.payloads.into_iter().next()),
                    Ok(Some(Payload::Skf(_)))
                )
            })
            .count();
        assert!(frags >= 4, "{frags} fragments");
        assert!(p
            .log
            .iter()
            .all(|(_, _, d)| d.len() <= 160 || Message::parse(d).unwrap().header.message_id == 0));
    }
}

#[test]
fn no_fragmentation_when_the_peer_does_not_offer_it() {
    let mut a = config("a", Some("ed25519_a"));
    let mut b = config("b", Some("ed25519_b"));
    a.fragment_size = 200;
    b.fragmentation = false;
    let p = established_pair(a, b);
    assert!(p.log.iter().all(|(_, _, d)| !matches!(
        Message::parse(d).unwrap().payloads.first(),
        Some(Payload::Skf(_))
    )));
}

#[test]
fn every_signature_key_type() {
    for (ka, kb) in [
        ("p256_a", "p256_b"),
        ("rsa2048_a", "rsa2048_b"),
        ("ed25519_a", "rsa2048_b"),
        ("p256_a", "ed25519_b"),
    ] {
        let p = established_pair(config("a", Some(ka)), config("b", Some(kb)));
        assert_paired(p.a.children()[0], p.b.children()[0]);
    }
}

/// The crypto module verifies method 1 (PKCS#1 v1.5 with SHA-1) but cannot sign it (ring signs
/// RSA only with SHA-2): towards a peer without RFC 7427 we fail locally, not with a bad AUTH.
#[test]
fn rsa_towards_a_peer_lacking_rfc_7427_fails_locally() {
    let a = config("a", Some("rsa2048_a"));
    let mut b = config("b", Some("rsa2048_b"));
    b.signature_hashes = false;
    let mut p = Pair::new(a, b);
    p.connect();
    p.drive();
    assert!(
        matches!(p.a.closed(), Some(CloseReason::Failed(Error::Local(_)))),
        "{:?}",
        p.a.events
    );
}

#[test]
fn ed25519_cannot_sign_for_a_peer_lacking_rfc_7427() {
    let a = config("a", Some("ed25519_a"));
    let mut b = config("b", Some("ed25519_b"));
    b.signature_hashes = false;
    let mut p = Pair::new(a, b);
    p.connect();
    p.drive();
    assert!(
        matches!(p.a.closed(), Some(CloseReason::Failed(Error::Local(_)))),
        "{:?}",
        p.a.events
    );
}

#[test]
fn nat_detected_and_ike_floats_to_port_4500() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    p.wire = Wire::Nat;
    p.connect();
    p.drive();
    let nat = |peer: &Peer| {
        peer.events.iter().find_map(|(_, e)| match e {
            Event::IkeSaEstablished {
                nat_local,
                nat_remote,
                ..
            } => Some((*nat_local, *nat_remote)),
            _ => None,
        })
    };
    assert_eq!(nat(&p.a), Some((true, false)), "A is behind the NAT");
    assert_eq!(nat(&p.b), Some((false, true)));
    // IKE_SA_INIT on 500; IKE_AUTH on 4500 with the non-ESP marker.
    let a_sent: Vec<_> = p.sent_by_a();
    assert_eq!(Message::parse(a_sent[0]).unwrap().header.message_id, 0);
    assert_eq!(&a_sent[1][..4], &[0, 0, 0, 0]);
    assert_eq!(
        Message::parse(&a_sent[1][4..]).unwrap().header.message_id,
        1
    );
    assert!(
        p.a.established() && p.b.established(),
        "A {:?}\nB {:?}",
        p.a.events,
        p.b.events
    );
    let (ca, cb) = (p.a.children()[0], p.b.children()[0]);
    assert_paired_ignoring_addresses(ca, cb);
    assert_eq!(ca.encap, Some((4500, 4500)));
    assert_eq!(
        cb.encap,
        Some((4500, 14500)),
        "B sends ESP-in-UDP to the NAT's mapping"
    );
    // Later exchanges keep working through the NAT.
    let now = p.now;
    let h = p.b_handle();
    p.b.ep.check_liveness(now, h);
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.closed().is_none() && p.b.closed().is_none());
    // A child rekey across the NAT: selectors name the untranslated address on A's side.
    let old = p.a.children()[0].inbound_spi;
    let ha = p.a.events[0].0;
    p.a.ep.rekey_child(now, ha, old);
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.a.live_children().len(), 1, "{:?}", p.a.events);
    assert_eq!(p.b.live_children().len(), 1, "{:?}", p.b.events);
    let (ca, cb) = (p.a.children()[1], p.b.children()[1]);
    assert_paired_ignoring_addresses(ca, cb);
    assert_eq!(
        cb.remote_ts[0].start,
        "198.51.100.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(ca.local_ts[0].start, p.a.addr.ip());
}

#[test]
fn sa_info_reports_spis_and_the_negotiated_algorithms() {
    let mut p = Pair::new(
        config("a", Some("ed25519_a")),
        config("b", Some("ed25519_b")),
    );
    let handle = p.connect();
    p.drive();
    let info = p.a.ep.sa_info(handle).expect("the SA exists");
    assert!(info.initiator);
    assert_ne!(info.spi_i, 0);
    assert_ne!(info.spi_r, 0);
    assert_eq!(info.children, 1);
    let proposal = info
        .proposal
        .expect("algorithms are known after IKE_SA_INIT");
    assert!(
        proposal.starts_with("AES_GCM_16_256/PRF_HMAC_SHA2_256/"),
        "{proposal}"
    );
    assert!(
        info.rekey_at.is_some(),
        "an established SA has a rekey time"
    );
}

/// What the agent's bounds need: how each SA authenticated its peer and since when (an IKE
/// rekey does not re-authenticate, so the time stays), and the endpoint's counts.
#[test]
fn sa_info_reports_authentication_kind_and_time() {
    let mut b = config("b", Some("ed25519_b"));
    b.accept_null_peers = true;
    let mut p = Pair::new(config("a", None), b);
    let ha = p.connect();
    assert_eq!(p.a.ep.sa_info(ha).unwrap().authenticated_at, None);
    assert_eq!(p.a.ep.sa_info(ha).unwrap().peer_auth, None);
    p.drive_for(Duration::from_secs(1));
    let hb = p.b_handle();
    let (ia, ib) = (p.a.ep.sa_info(ha).unwrap(), p.b.ep.sa_info(hb).unwrap());
    assert_eq!(ia.peer_auth, Some(PeerAuth::Signature));
    assert_eq!(ib.peer_auth, Some(PeerAuth::Null));
    let at = ib.authenticated_at.expect("authenticated");
    assert_eq!(ib.remote, p.a.addr);
    p.drive_for(Duration::from_secs(100));
    let now = p.now;
    p.a.ep.rekey_ike(now, ha);
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.b.count(|e| matches!(e, Event::IkeSaRekeyed)), 1);
    assert_eq!(p.b.ep.sa_info(hb).unwrap().authenticated_at, Some(at));
    assert_eq!((p.b.ep.sa_count(), p.b.ep.half_open()), (1, 0));
}
