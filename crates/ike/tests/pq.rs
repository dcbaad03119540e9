//! Post-quantum hybrid IKE SAs: X25519 in IKE_SA_INIT, then ML-KEM-768 in IKE_INTERMEDIATE
//! (RFC 9242, RFC 9370), between two in-memory peers.

#![allow(clippy::unwrap_used)]

mod util;

use std::time::Duration;

use oe_ike::crypto::DhGroup;
use oe_ike::wire::{ExchangeType, Message, Payload};
use oe_ike::{AdditionalKe, CloseReason, Error, Event, LocalError, SaHandle};
use util::*;

/// The exchange type of each message on the wire (a fragmented message counts once).
fn exchanges(p: &Pair) -> Vec<ExchangeType> {
    p.log
        .iter()
        .map(|(_, _, d)| Message::parse(d).unwrap())
        .filter(|m| !matches!(m.payloads.first(), Some(Payload::Skf(f)) if f.number != 1))
        .map(|m| m.header.exchange)
        .collect()
}

fn hybrid_pair(a: oe_ike::Config, b: oe_ike::Config) -> (Pair, SaHandle) {
    let mut p = Pair::new(a, b);
    let h = p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.established(), "A events: {:?}", p.a.events);
    assert!(p.b.established(), "B events: {:?}", p.b.events);
    (p, h)
}

fn ed(name: &str) -> oe_ike::Config {
    config(name, Some(&format!("ed25519_{name}")))
}

#[test]
fn default_is_a_hybrid_of_x25519_and_ml_kem_768() {
    let (p, ha) = hybrid_pair(ed("a"), ed("b"));
    use ExchangeType as X;
    assert_eq!(
        exchanges(&p),
        [
            X::IKE_SA_INIT,
            X::IKE_SA_INIT,
            X::IKE_INTERMEDIATE,
            X::IKE_INTERMEDIATE,
            X::IKE_AUTH,
            X::IKE_AUTH
        ]
    );
    for (peer, h) in [(&p.a, ha), (&p.b, p.b_handle())] {
        let info = peer.ep.sa_info(h).unwrap();
        assert_eq!(info.post_quantum, [DhGroup::MlKem768]);
        assert!(info.is_post_quantum());
        let proposal = info.proposal.unwrap();
        assert!(
            proposal.ends_with("/CURVE_25519/KE1_ML_KEM_768"),
            "{proposal}"
        );
    }
    assert_paired(p.a.children()[0], p.b.children()[0]);
}

/// With seeded generators the whole hybrid handshake, ML-KEM included, is reproducible.
#[test]
fn hybrid_handshake_is_deterministic() {
    let (p, _) = hybrid_pair(ed("a"), ed("b"));
    let (q, _) = hybrid_pair(ed("a"), ed("b"));
    let wire = |p: &Pair| p.log.iter().map(|(_, _, d)| d.clone()).collect::<Vec<_>>();
    assert_eq!(wire(&p), wire(&q));
    assert_eq!(
        *p.a.children()[0].keys.encr_out,
        *q.a.children()[0].keys.encr_out
    );
}

/// NULL authentication (RFC 7619) signs the same octets, IntAuth included.
#[test]
fn hybrid_with_null_authentication() {
    let mut b = ed("b");
    b.accept_null_peers = true;
    let (p, ha) = hybrid_pair(config("a", None), b);
    assert!(p.a.ep.sa_info(ha).unwrap().is_post_quantum());
}

/// A peer without ML-KEM (or without RFC 9370 at all) still gets an IKE SA, with X25519 alone:
/// no IKE_INTERMEDIATE, and the SA says it is not post-quantum.
#[test]
fn falls_back_to_x25519_when_either_side_lacks_ml_kem() {
    for pq_side_is_initiator in [true, false] {
        let (mut a, mut b) = (ed("a"), ed("b"));
        if pq_side_is_initiator {
            b.additional_ke = AdditionalKe::off();
        } else {
            a.additional_ke = AdditionalKe::off();
        }
        let (p, ha) = hybrid_pair(a, b);
        assert!(!exchanges(&p).contains(&ExchangeType::IKE_INTERMEDIATE));
        assert_eq!(p.log.len(), 4);
        let info = p.a.ep.sa_info(ha).unwrap();
        assert!(!info.is_post_quantum());
        assert!(info.proposal.unwrap().ends_with("/CURVE_25519"));
        assert_paired(p.a.children()[0], p.b.children()[0]);
    }
}

/// A side that requires the additional key exchange refuses a peer that lacks it, as initiator
/// (its offer has only hybrid proposals) and as responder (it accepts only those).
#[test]
fn a_side_requiring_pq_refuses_a_peer_without_it() {
    for requiring_initiator in [true, false] {
        let (mut a, mut b) = (ed("a"), ed("b"));
        let (req, off) = if requiring_initiator {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        req.additional_ke = AdditionalKe::hybrid().required();
        off.additional_ke = AdditionalKe::off();
        let mut p = Pair::new(a, b);
        p.connect();
        p.drive_for(Duration::from_secs(1));
        assert!(
            !p.a.established() && !p.b.established(),
            "requiring initiator {requiring_initiator}: {:?}",
            p.a.ep.sa_info(SaHandle(1)).and_then(|i| i.proposal)
        );
        assert_eq!(
            p.a.closed(),
            Some(&CloseReason::Failed(Error::Local(
                LocalError::NoProposalChosen
            )))
        );
        assert!(!exchanges(&p).contains(&ExchangeType::IKE_INTERMEDIATE));
    }
}

#[test]
fn two_sides_requiring_pq_agree() {
    let (mut a, mut b) = (ed("a"), ed("b"));
    a.additional_ke = AdditionalKe::hybrid().required();
    b.additional_ke = AdditionalKe::hybrid().required();
    let (p, ha) = hybrid_pair(a, b);
    assert!(p.a.ep.sa_info(ha).unwrap().is_post_quantum());
}

/// The responder's choice wins among common methods, and several rounds run in order:
/// ADDKE1 then ADDKE2, each in its own IKE_INTERMEDIATE.
#[test]
fn two_additional_rounds_with_the_responders_choice() {
    let (mut a, mut b) = (ed("a"), ed("b"));
    a.additional_ke = AdditionalKe {
        rounds: vec![
            vec![DhGroup::MlKem768, DhGroup::MlKem1024],
            vec![DhGroup::MlKem512],
        ],
        required: false,
    };
    b.additional_ke = AdditionalKe {
        rounds: vec![vec![DhGroup::MlKem1024], vec![DhGroup::MlKem512]],
        required: true,
    };
    let (p, ha) = hybrid_pair(a, b);
    let n = exchanges(&p)
        .iter()
        .filter(|x| **x == ExchangeType::IKE_INTERMEDIATE)
        .count();
    assert_eq!(n, 4);
    let info = p.a.ep.sa_info(ha).unwrap();
    assert_eq!(info.post_quantum, [DhGroup::MlKem1024, DhGroup::MlKem512]);
    assert!(info
        .proposal
        .unwrap()
        .ends_with("/KE1_ML_KEM_1024/KE2_ML_KEM_512"));
}

/// The IntAuth chain and key updates survive lost and retransmitted IKE_INTERMEDIATE messages.
#[test]
fn lost_intermediate_messages_are_retransmitted() {
    // Datagrams 2 and 3 are the first IKE_INTERMEDIATE request and response.
    for drop in [&[2][..], &[3][..]] {
        let mut p = Pair::new(ed("a"), ed("b"));
        p.wire = Wire::DropSeq(drop);
        p.connect();
        p.drive_for(Duration::from_secs(10));
        assert!(p.a.established() && p.b.established(), "drop {drop:?}");
        assert_paired(p.a.children()[0], p.b.children()[0]);
    }
}

fn skf_count(p: &Pair, x: ExchangeType) -> usize {
    p.log
        .iter()
        .map(|(_, _, d)| Message::parse(d).unwrap())
        .filter(|m| m.header.exchange == x && matches!(m.payloads.first(), Some(Payload::Skf(_))))
        .count()
}

/// IPv6's minimum MTU of 1280 bytes leaves 1232 for the IKE message (40-byte IP and 8-byte
/// UDP headers). The ML-KEM-768 encapsulation key (1,184 bytes) does not fit one such datagram
/// with its headers, so the IKE_INTERMEDIATE request is fragmented (RFC 7383, RFC 9242 3.4),
/// in any arrival order, and the default configuration already keeps every datagram that small.
#[test]
fn ike_intermediate_is_fragmented_to_fit_a_1280_byte_mtu() {
    for wire in [Wire::Perfect, Wire::Reverse] {
        let (a, b) = (ed("a"), ed("b"));
        let mut p = Pair::new(a, b);
        p.wire = wire;
        p.connect();
        p.drive_for(Duration::from_secs(1));
        assert!(p.a.established() && p.b.established(), "{wire:?}");
        assert!(skf_count(&p, ExchangeType::IKE_INTERMEDIATE) >= 2);
        for (_, _, d) in &p.log {
            assert!(d.len() + 40 + 8 <= 1280, "{} bytes", d.len());
        }
        assert!(p.b.ep.sa_info(p.b_handle()).unwrap().is_post_quantum());
    }
}

/// Behind a NAT the peers move to UDP port 4500, where every IKE datagram starts with the
/// 4-byte non-ESP marker (RFC 3948 2.2): the fragments must leave room for it, or a full one is
/// 1,236 bytes and no longer crosses a 1280-byte path (RFC 7383 2.5.1).
#[test]
fn ike_intermediate_fits_a_1280_byte_mtu_behind_a_nat() {
    let mut p = Pair::new(ed("a"), ed("b"));
    p.wire = Wire::Nat;
    p.connect();
    p.drive_for(Duration::from_secs(1));
    assert!(p.a.established() && p.b.established());
    let marked: Vec<&[u8]> = p
        .log
        .iter()
        .filter_map(|(_, _, d)| d.strip_prefix(&[0u8; 4][..]))
        .collect();
    let skf = marked
        .iter()
        .map(|d| Message::parse(d).unwrap())
        .filter(|m| m.header.exchange == ExchangeType::IKE_INTERMEDIATE)
        .filter(|m| matches!(m.payloads.first(), Some(Payload::Skf(_))))
        .count();
    assert!(skf >= 2, "IKE_INTERMEDIATE went fragmented over port 4500");
    for (_, _, d) in &p.log {
        assert!(d.len() + 40 + 8 <= 1280, "{} bytes", d.len());
    }
}

#[test]
fn child_and_ike_rekeys_of_a_hybrid_sa() {
    let (mut p, ha) = hybrid_pair(ed("a"), ed("b"));
    let now = p.now;
    let old = p.a.live_children()[0];
    p.a.ep.rekey_child(now, ha, old);
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.a.live_children().len(), 1);
    assert_eq!(p.a.deleted_children(), [old]);
    let now = p.now;
    p.a.ep.rekey_ike(now, ha);
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.a.count(|e| matches!(e, Event::IkeSaRekeyed)), 1);
    // The rekeyed IKE SA's keys derive from the old SK_d (RFC 7296 2.18), which depends on the
    // ML-KEM secret: it stays post-quantum.
    assert!(p.a.ep.sa_info(ha).unwrap().is_post_quantum());
    let now = p.now;
    let old = p.a.live_children()[0];
    p.a.ep.rekey_child(now, ha, old);
    p.drive_for(Duration::from_secs(1));
    assert_eq!(p.a.live_children().len(), 1);
    let c = p.a.children();
    let last = c.last().unwrap();
    let peer =
        p.b.children()
            .into_iter()
            .find(|x| x.outbound_spi == last.inbound_spi)
            .unwrap();
    assert_paired(last, peer);
}
