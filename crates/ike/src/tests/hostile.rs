//! A peer with valid keys that does what our engine never does: it seals its own requests on
//! A's IKE SA (A's keys, A's next message ID) and reads B's answers, so B can be tested against
//! repeated or unbounded CREATE_CHILD_SA requests.
#![allow(clippy::unwrap_used)]

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::pair::{TestPair, A, B};
use crate::event::SaHandle;
use crate::output::Output;
use crate::proposal::esp_offer;
use crate::sa::init::nonce;
use crate::sa::protect::{open, seal, Opened};
use crate::sa::Ctx;
use crate::ts::host_ts;
use crate::wire::{
    ExchangeType, Message, NotifyPayload, NotifyType, Payload, ProtocolId, TsPayload,
};
use crate::Endpoint;

/// A CREATE_CHILD_SA request rekeying the child whose SPI (B's outbound) is `old`.
pub(crate) fn rekey_request(old: u32, new_spi: u32, rng: &mut ChaCha20Rng) -> Vec<Payload> {
    let config = super::pair::config();
    let (a, b) = (
        A.parse::<std::net::SocketAddr>().unwrap(),
        B.parse::<std::net::SocketAddr>().unwrap(),
    );
    vec![
        Payload::Notify(NotifyPayload {
            protocol: ProtocolId::ESP,
            spi: old.to_be_bytes().to_vec(),
            ty: NotifyType::REKEY_SA,
            data: Vec::new(),
        }),
        Payload::Notify(NotifyPayload::new(
            NotifyType::USE_TRANSPORT_MODE,
            Vec::new(),
        )),
        Payload::Sa(esp_offer(&config.esp_proposals, new_spi, None)),
        Payload::Nonce(crate::wire::NoncePayload(nonce(rng))),
        Payload::TsI(TsPayload(vec![host_ts(a.ip())])),
        Payload::TsR(TsPayload(vec![host_ts(b.ip())])),
    ]
}

/// Seals `payloads` on the IKE SA `h` of `ep` with its current keys, as our engine would send
/// them (message ID `mid`, a request or a response).
pub(crate) fn seal_on(
    ep: &mut Endpoint,
    h: SaHandle,
    exchange: ExchangeType,
    mid: u32,
    response: bool,
    payloads: &[Payload],
) -> Vec<Vec<u8>> {
    let config = super::pair::config();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let mut out = Output::default();
    let sa = ep.registry_mut().get_mut(h).unwrap();
    let mut ctx = Ctx {
        now: sa.last_heard,
        config: &config,
        rng: &mut rng,
        out: &mut out,
    };
    seal(sa, &sa.core, &mut ctx, exchange, mid, response, payloads).unwrap()
}

/// Opens a (single-datagram) message sent to the IKE SA `h` of `ep` with its keys.
pub(crate) fn open_on(ep: &mut Endpoint, h: SaHandle, datagram: &[u8]) -> Vec<Payload> {
    let msg = Message::parse(datagram).unwrap();
    let sa = ep.registry_mut().get_mut(h).unwrap();
    match open(sa, datagram, &msg) {
        Some(Opened::Whole(p)) => p,
        other => panic!("did not open: {other:?}"),
    }
}

/// Sends `payloads` as A's next request on its IKE SA `ha`, delivers it to B (answering B's
/// events), and returns B's decrypted response.
pub(crate) fn request(
    p: &mut TestPair,
    ha: SaHandle,
    exchange: ExchangeType,
    payloads: &[Payload],
) -> Vec<Payload> {
    let sa = p.a.registry_mut().get_mut(ha).unwrap();
    let mid = sa.core.tm.next_mid;
    sa.core.tm.next_mid += 1;
    let datagrams = seal_on(&mut p.a, ha, exchange, mid, false, payloads);
    let (now, a, b) = (p.now, A.parse().unwrap(), B.parse().unwrap());
    for d in &datagrams {
        p.b.handle_datagram(now, a, b, d);
    }
    p.answer_b();
    let reply = p.b.poll_transmit().expect("B answers");
    assert_eq!(
        Message::parse(&reply.contents).unwrap().header.message_id,
        mid
    );
    open_on(&mut p.a, ha, &reply.contents)
}

/// The first error notification in a response.
pub(crate) fn error(p: &[Payload]) -> Option<NotifyType> {
    p.iter().find_map(|x| match x {
        Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
        _ => None,
    })
}
