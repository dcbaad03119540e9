//! The responder's refusals of IKE_FOLLOWUP_KE, on one SA built by hand (a well-behaved peer in
//! the two-peer tests never sends these).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Instant;

use rand_core::SeedableRng;

use super::*;
use crate::config::{Config, LocalAuth};
use crate::crypto::{EncrAlg, PrfAlg};
use crate::event::SaHandle;
use crate::keys::derive_ike;
use crate::proposal::{EspAlgs, IkeAlgs};
use crate::sa::Phase;
use crate::wire::Identity;

fn addke() -> AddKes {
    let mut addke = AddKes::default();
    addke.0[0] = Some(DhGroup::MlKem768);
    addke
}

fn ike_algs() -> IkeAlgs {
    IkeAlgs {
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
        prf: PrfAlg::HmacSha256,
        group: DhGroup::Curve25519,
        addke: addke(),
    }
}

/// An established responder IKE SA.
fn responder(now: Instant) -> IkeSa {
    let mut core = Core::new(false, 1, 2);
    core.algs = Some(ike_algs());
    let keys = derive_ike(&ike_algs(), &[1; 32], &[2; 32], &[3; 32], (1, 2), false);
    core.keys = Some(keys.unwrap());
    let (l, r) = (
        "192.0.2.2:500".parse().unwrap(),
        "192.0.2.1:500".parse().unwrap(),
    );
    let mut sa = IkeSa::new(SaHandle(1), core, l, r, now);
    sa.phase = Phase::Established;
    sa
}

/// A child rekey series waiting for its one ML-KEM-768 exchange, as the CREATE_CHILD_SA
/// responder leaves it; returns the link the peer must echo.
fn waiting(sa: &mut IkeSa, ctx: &mut Ctx<'_>) -> Vec<u8> {
    let spec = ChildSpec {
        inbound: 0xc000_0001,
        outbound: 0xd000_0001,
        algs: EspAlgs {
            encr: EncrAlg::AesGcm16 { key_bits: 256 },
            integ: None,
        },
        ts: (Vec::new(), Vec::new()),
        shape: Shape {
            mode: crate::event::Mode::Transport,
            virtual_ip: None,
        },
    };
    let purpose = Purpose::Child { old: 7, spec };
    let series = Series::new(purpose, false, (&[4; 32], &[5; 32]), None, &addke());
    let Payload::Notify(n) = wait(sa, ctx, series) else {
        panic!("no notification")
    };
    assert_eq!(n.ty, NotifyType::ADDITIONAL_KEY_EXCHANGE);
    n.data
}

fn run<T>(now: Instant, f: impl FnOnce(&mut Ctx<'_>) -> T) -> T {
    let config = Config::new(Identity::Fqdn("b.example".into()), LocalAuth::Null);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let mut out = crate::output::Output::default();
    let mut ctx = Ctx {
        now,
        config: &config,
        rng: &mut rng,
        out: &mut out,
    };
    f(&mut ctx)
}

fn ke(method: DhGroup, len: usize) -> Payload {
    Payload::Ke(KePayload {
        group: method.iana(),
        data: vec![0; len],
    })
}

fn request(link: &[u8], ke: Payload) -> Vec<Payload> {
    vec![ke, link_notify(link)]
}

/// The single error notification of a reply.
fn refusal(reply: Reply) -> NotifyType {
    let Reply::Send(out) = reply else {
        panic!("{reply:?}")
    };
    let [Payload::Notify(n)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert!(n.ty.is_error(), "{n:?}");
    n.ty
}

/// A well-formed request for the waiting series gets KEr (the control case).
#[test]
fn the_expected_request_is_answered() {
    let now = Instant::now();
    let mut sa = responder(now);
    let reply = run(now, |ctx| {
        let link = waiting(&mut sa, ctx);
        let ek = KeyShare::generate(DhGroup::MlKem768, ctx.rng).unwrap();
        let req = vec![
            Payload::Ke(KePayload {
                group: DhGroup::MlKem768.iana(),
                data: ek.public().to_vec(),
            }),
            link_notify(&link),
        ];
        respond(&mut sa, ctx, &req).unwrap()
    });
    let Reply::Send(out) = reply else {
        panic!("{reply:?}")
    };
    let [Payload::Ke(k)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(k.group, DhGroup::MlKem768.iana());
    assert_eq!(k.data.len(), DhGroup::MlKem768.response_len());
    assert!(sa.followup.is_none());
    assert_eq!(
        sa.children.len(),
        1,
        "the child exists after the last exchange"
    );
}

/// RFC 9370 2.2.4: a request whose link data names no series of ours (none at all, another
/// link, no link) gets STATE_NOT_FOUND; a series that exists is kept for its own request.
#[test]
fn a_request_without_a_series_gets_state_not_found() {
    let now = Instant::now();
    let mut sa = responder(now);
    let kei = || ke(DhGroup::MlKem768, 1184);
    let none = run(now, |ctx| {
        respond(&mut sa, ctx, &request(b"link", kei())).unwrap()
    });
    assert_eq!(refusal(none), NotifyType::STATE_NOT_FOUND);
    let (other, missing) = run(now, |ctx| {
        let link = waiting(&mut sa, ctx);
        let mut wrong = link.clone();
        wrong[0] ^= 1;
        let other = respond(&mut sa, ctx, &request(&wrong, kei())).unwrap();
        let missing = respond(&mut sa, ctx, &[kei()]).unwrap();
        (other, missing)
    });
    assert_eq!(refusal(other), NotifyType::STATE_NOT_FOUND);
    assert_eq!(refusal(missing), NotifyType::STATE_NOT_FOUND);
    assert!(sa.followup.is_some());
}

/// A series the initiator did not continue within [`WAIT`] is forgotten: its request then gets
/// STATE_NOT_FOUND, and the inbound SPI it held is free again.
#[test]
fn a_series_is_forgotten_after_the_wait() {
    let now = Instant::now();
    let mut sa = responder(now);
    let link = run(now, |ctx| waiting(&mut sa, ctx));
    assert_eq!(deadline(&sa), Some(now + WAIT));
    let later = now + WAIT;
    let kei = ke(DhGroup::MlKem768, 1184);
    let reply = run(later, |ctx| {
        respond(&mut sa, ctx, &request(&link, kei)).unwrap()
    });
    assert_eq!(refusal(reply), NotifyType::STATE_NOT_FOUND);
    assert_eq!(sa.spis, [0xc000_0001]);
}

/// A KE of another method than the round's, or an ML-KEM encapsulation key that fails the
/// FIPS 203 7.2 check, is INVALID_SYNTAX; the series ends (its SPI is free again), the IKE SA
/// stays, and no child is made.
#[test]
fn a_wrong_or_bad_ke_gets_invalid_syntax_and_ends_the_series() {
    let bad_key = Payload::Ke(KePayload {
        group: DhGroup::MlKem768.iana(),
        data: vec![0xff; 1184],
    });
    for kei in [
        ke(DhGroup::MlKem1024, 1568),
        ke(DhGroup::Curve25519, 32),
        bad_key,
    ] {
        let now = Instant::now();
        let mut sa = responder(now);
        let reply = run(now, |ctx| {
            let link = waiting(&mut sa, ctx);
            respond(&mut sa, ctx, &request(&link, kei)).unwrap()
        });
        assert_eq!(refusal(reply), NotifyType::INVALID_SYNTAX);
        assert!(sa.followup.is_none());
        assert_eq!(sa.spis, [0xc000_0001]);
        assert!(sa.children.is_empty() && !sa.is_closed());
    }
}

/// The peer's link data is echoed back; an empty or overlong one is refused (we hold it).
#[test]
fn the_peers_link_is_bounded() {
    let n = |len| vec![link_notify(&vec![9; len])];
    assert_eq!(peer_link(&n(MAX_PEER_LINK)).unwrap().len(), MAX_PEER_LINK);
    assert!(peer_link(&n(MAX_PEER_LINK + 1)).is_err());
    assert!(peer_link(&n(0)).is_err());
    assert!(peer_link(&[]).is_err());
}
