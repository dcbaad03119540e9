//! The refusals of IKE_INTERMEDIATE, on one SA built by hand (an attacker's messages cannot be
//! produced by a well-behaved peer in the two-peer tests).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Instant;

use rand_core::SeedableRng;

use super::*;
use crate::addke::AddKes;
use crate::config::{Config, LocalAuth};
use crate::crypto::{EncrAlg, PrfAlg};
use crate::event::CloseReason;
use crate::proposal::IkeAlgs;
use crate::sa::Core;
use crate::wire::{flags, Identity, NotifyPayload};

fn algs() -> IkeAlgs {
    let mut addke = AddKes::default();
    addke.0[0] = Some(DhGroup::MlKem768);
    IkeAlgs {
        encr: EncrAlg::AesGcm16 { key_bits: 256 },
        integ: None,
        prf: PrfAlg::HmacSha256,
        group: DhGroup::Curve25519,
        addke,
    }
}

/// A responder SA just past IKE_SA_INIT, with ML-KEM-768 negotiated as ADDKE1.
fn responder() -> IkeSa {
    let now = Instant::now();
    let mut core = Core::new(false, 1, 2);
    core.algs = Some(algs());
    core.keys = Some(derive_ike(&algs(), &[1; 32], &[2; 32], &[3; 32], (1, 2), false).unwrap());
    let (l, r) = (
        "192.0.2.2:500".parse().unwrap(),
        "192.0.2.1:500".parse().unwrap(),
    );
    let mut sa = IkeSa::new(crate::event::SaHandle(1), core, l, r, now);
    sa.handshake.ni = vec![2; 32];
    sa.handshake.nr = vec![3; 32];
    sa
}

fn with_ctx<T>(f: impl FnOnce(&mut Ctx<'_>) -> T) -> T {
    let config = Config::new(Identity::Fqdn("b.example".into()), LocalAuth::Null);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let mut out = crate::output::Output::default();
    let mut ctx = Ctx {
        now: Instant::now(),
        config: &config,
        rng: &mut rng,
        out: &mut out,
    };
    f(&mut ctx)
}

fn hdr() -> Header {
    Header {
        spi_i: 1,
        spi_r: 2,
        next_payload: PayloadType::SK,
        version: Header::VERSION_2_0,
        exchange: ExchangeType::IKE_INTERMEDIATE,
        flags: flags::INITIATOR,
        message_id: 1,
        length: 0,
    }
}

fn ke(method: DhGroup) -> Payload {
    Payload::Ke(KePayload {
        group: method.iana(),
        data: vec![0; method.public_len()],
    })
}

/// RFC 9370 2.2.2: the KE of an IKE_INTERMEDIATE must be of the method negotiated for its
/// round. Another one is answered with INVALID_SYNTAX (not INVALID_KE_PAYLOAD: there is no
/// method to retry with, they were fixed in IKE_SA_INIT), the SA ends, and the keys stay as
/// they were.
#[test]
fn a_ke_of_another_method_gets_invalid_syntax() {
    let mut sa = responder();
    sa.handshake.last_intermediate = Some((hdr(), PayloadType::KE, vec![]));
    let before = sa.core.keys.as_ref().unwrap().sk_d.clone();
    let reply = with_ctx(|ctx| respond(&mut sa, ctx, 1, &[ke(DhGroup::MlKem1024)])).unwrap();
    let Reply::SendThenClose(out, CloseReason::Failed(_)) = reply else {
        panic!("{reply:?}");
    };
    let [Payload::Notify(n)] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(n.ty, NotifyType::INVALID_SYNTAX);
    assert!(n.data.is_empty());
    assert_eq!(sa.handshake.int_auth.done, 0);
    assert_eq!(*sa.core.keys.as_ref().unwrap().sk_d, *before);
}

/// FIPS 203 7.2: an encapsulation key that is not reduced mod q is a peer error, no reply KE,
/// answered INVALID_SYNTAX (draft-ietf-ipsecme-ikev2-mlkem section 6), not an empty response.
#[test]
fn an_invalid_encapsulation_key_is_refused() {
    let mut sa = responder();
    let opened = (hdr(), PayloadType::KE, vec![]);
    sa.handshake.last_intermediate = Some(opened);
    let bad = Payload::Ke(KePayload {
        group: DhGroup::MlKem768.iana(),
        data: vec![0xff; 1184],
    });
    let err = with_ctx(|ctx| respond(&mut sa, ctx, 1, &[bad])).unwrap_err();
    assert!(matches!(err, Error::Peer(_)), "{err:?}");
    assert_eq!(err.notify(), Some(NotifyType::INVALID_SYNTAX));
    assert_eq!(sa.handshake.int_auth.done, 0);
}

/// Nothing is negotiated beyond the rounds agreed in IKE_SA_INIT, and nothing after IKE_AUTH.
#[test]
fn extra_or_late_intermediate_exchanges_are_refused() {
    let mut sa = responder();
    sa.handshake.int_auth.done = 1;
    let err = with_ctx(|ctx| respond(&mut sa, ctx, 2, &[ke(DhGroup::MlKem768)])).unwrap_err();
    assert!(
        matches!(err, Error::Peer(PeerError::Protocol(_))),
        "{err:?}"
    );
    let mut sa = responder();
    sa.phase = Phase::Established;
    let err = with_ctx(|ctx| respond(&mut sa, ctx, 1, &[ke(DhGroup::MlKem768)])).unwrap_err();
    assert!(
        matches!(err, Error::Peer(PeerError::Protocol(_))),
        "{err:?}"
    );
}

/// The initiator ends the SA when the responder answers INVALID_KE_PAYLOAD, or with a KE of
/// another method than the one it sent.
#[test]
fn initiator_fails_on_invalid_ke_payload_or_a_wrong_method() {
    let notify = Payload::Notify(NotifyPayload::new(
        NotifyType::INVALID_KE_PAYLOAD,
        DhGroup::MlKem1024.iana().to_be_bytes().to_vec(),
    ));
    for reply in [notify, ke(DhGroup::MlKem1024)] {
        let mut sa = responder();
        sa.core.initiator = true;
        let mut t = Intermediate::new(0);
        let share = with_ctx(|ctx| KeyShare::generate(DhGroup::MlKem768, ctx.rng)).unwrap();
        t.share = Some(share);
        let err = on_response(&mut sa, t, &[reply]).unwrap_err();
        assert!(matches!(err, Error::Peer(_)), "{err:?}");
        assert_eq!(sa.handshake.int_auth.done, 0);
    }
}

/// IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID (RFC 9242 3.3.2), empty without exchanges.
#[test]
fn int_auth_octets() {
    let mut a = IntAuth::default();
    assert!(a.octets().is_empty());
    a.add(true, PrfAlg::HmacSha256, &[1; 32], b"request");
    a.add(false, PrfAlg::HmacSha256, &[2; 32], b"response");
    a.auth_mid = 2;
    let o = a.octets();
    assert_eq!(o.len(), 32 + 32 + 4);
    assert_eq!(&o[..32], &*PrfAlg::HmacSha256.prf(&[1; 32], b"request"));
    assert_eq!(&o[32..64], &*PrfAlg::HmacSha256.prf(&[2; 32], b"response"));
    assert_eq!(&o[64..], &[0, 0, 0, 2]);
    // The chain: IntAuth_i2 = prf(SK_pi, IntAuth_i1 | data).
    let first = a.i.clone();
    a.add(true, PrfAlg::HmacSha256, &[1; 32], b"second");
    let expect = PrfAlg::HmacSha256.prf(&[1; 32], &[&first[..], b"second"].concat());
    assert_eq!(&a.octets()[..32], &*expect);
}
