//! IKE_SA_INIT (RFC 7296 1.2, 2.6 cookies, 2.7 INVALID_KE_PAYLOAD, 2.23 NAT detection; RFC 7427
//! SIGNATURE_HASH_ALGORITHMS; RFC 7383 IKEV2_FRAGMENTATION_SUPPORTED).

use std::net::SocketAddr;

use super::tasks::Task;
use super::{Ctx, IkeSa};
use crate::auth::{parse_hashes, OUR_HASHES};
use crate::crypto::{CryptoRng, DhGroup, KeyShare, SharedSecret};
use crate::error::{Error, LocalError, PeerError};
use crate::event::CloseReason;
use crate::keys::{derive_ike, skeyseed};
use crate::nat;
use crate::proposal::{check_ike, ike_offer, select_ike, IkeAlgs};
use crate::wire::{
    find_notify, flags, u16_list_data, ExchangeType, Header, KePayload, Message, NoncePayload,
    NotifyPayload, NotifyType, Payload, PayloadType, Payloads,
};

/// Nonce size we send: at least half the PRF key size and at least 128 bits (2.10); 32 covers all.
pub(crate) const NONCE_LEN: usize = 32;
/// Cookie and INVALID_KE retries before the initiator gives up.
const MAX_INIT_RETRIES: u8 = 3;

/// What IKE_SA_INIT leaves for IKE_AUTH; dropped once the IKE SA is established.
#[derive(Debug, Default)]
pub(crate) struct Handshake {
    pub(crate) share: Option<KeyShare>,
    pub(crate) group: Option<DhGroup>,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    pub(crate) cookie: Option<Vec<u8>>,
    /// The IKE_SA_INIT messages exactly as sent (RealMessage1/2 of 2.15).
    pub(crate) init_request: Vec<u8>,
    pub(crate) init_response: Vec<u8>,
    pub(crate) retries: u8,
    /// The peer announced INTERMEDIATE_EXCHANGE_SUPPORTED (RFC 9242 3.1).
    pub(crate) peer_intermediate: bool,
    /// IKE_INTERMEDIATE exchanges so far and their IntAuth chain (RFC 9242 3.3).
    pub(crate) int_auth: super::intermediate::IntAuth,
    /// The header, first inner payload type and inner payloads of the last IKE_INTERMEDIATE
    /// message opened, for IntAuth.
    pub(crate) last_intermediate: Option<(Header, PayloadType, Vec<u8>)>,
}

pub(crate) fn nonce(rng: &mut dyn CryptoRng) -> Vec<u8> {
    let mut n = vec![0u8; NONCE_LEN];
    rng.fill_bytes(&mut n);
    n
}

fn notify(ty: NotifyType, data: Vec<u8>) -> Payload {
    Payload::Notify(NotifyPayload::new(ty, data))
}

/// NAT_DETECTION_SOURCE_IP and _DESTINATION_IP for a message from `local` to `remote`.
fn nat_notifies(spi_i: u64, spi_r: u64, local: SocketAddr, remote: SocketAddr) -> [Payload; 2] {
    [
        notify(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            nat::hash(spi_i, spi_r, local),
        ),
        notify(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            nat::hash(spi_i, spi_r, remote),
        ),
    ]
}

/// The notifications both sides add: fragmentation support and our signature hashes.
fn capability_notifies(sa: &IkeSa, ctx: &Ctx<'_>, responder: bool) -> Vec<Payload> {
    let mut out = Vec::new();
    // RFC 9242 3.1: the initiator announces IKE_INTERMEDIATE when it proposes additional key
    // exchanges (RFC 9370 2.2.1); the responder answers in kind.
    if !ctx.config.additional_ke.is_off() && (!responder || sa.handshake.peer_intermediate) {
        out.push(notify(
            NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED,
            Vec::new(),
        ));
    }
    if ctx.config.fragmentation && (!responder || sa.peer_fragmentation) {
        out.push(notify(
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
            Vec::new(),
        ));
    }
    if ctx.config.signature_hashes {
        out.push(notify(
            NotifyType::SIGNATURE_HASH_ALGORITHMS,
            u16_list_data(&OUR_HASHES),
        ));
    }
    out
}

fn plain_header(sa: &IkeSa, response: bool) -> Header {
    Header {
        spi_i: sa.core.spi_i,
        spi_r: sa.core.spi_r,
        next_payload: PayloadType::NONE,
        version: Header::VERSION_2_0,
        exchange: ExchangeType::IKE_SA_INIT,
        flags: if response {
            flags::RESPONSE
        } else {
            flags::INITIATOR
        },
        message_id: 0,
        length: 0,
    }
}

/// Initiator: builds (or rebuilds after a cookie or INVALID_KE) our IKE_SA_INIT request.
pub(crate) fn build_request(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
) -> Result<(ExchangeType, Vec<Payload>), Error> {
    let group = match sa.handshake.group {
        Some(g) => g,
        None => *ctx
            .config
            .ike_proposals
            .first()
            .and_then(|p| p.groups.first())
            .ok_or(LocalError::Config("no IKE proposal"))?,
    };
    if sa.handshake.share.as_ref().map(KeyShare::group) != Some(group) {
        sa.handshake.share = Some(KeyShare::generate(group, ctx.rng)?);
    }
    sa.handshake.group = Some(group);
    if sa.handshake.ni.is_empty() {
        sa.handshake.ni = nonce(ctx.rng);
    }
    let share = sa
        .handshake
        .share
        .as_ref()
        .ok_or(LocalError::Config("no key share"))?;
    let mut payloads = Vec::new();
    // 2.6: the cookie goes first, everything else unchanged.
    if let Some(c) = &sa.handshake.cookie {
        payloads.push(notify(NotifyType::COOKIE, c.clone()));
    }
    payloads.push(Payload::Sa(ike_offer(
        &ctx.config.ike_proposals,
        &[],
        Some(group),
        &ctx.config.additional_ke,
    )));
    payloads.push(Payload::Ke(KePayload {
        group: group.iana(),
        data: share.public().to_vec(),
    }));
    payloads.push(Payload::Nonce(NoncePayload(sa.handshake.ni.clone())));
    payloads.extend(nat_notifies(sa.core.spi_i, 0, sa.local, sa.remote));
    payloads.extend(capability_notifies(sa, ctx, false));
    let msg = Message {
        header: plain_header(sa, false),
        payloads,
    };
    sa.handshake.init_request = msg.emit();
    Ok((ExchangeType::IKE_SA_INIT, msg.payloads))
}

/// Any IKE_SA_INIT message routed to this SA.
pub(crate) fn handle(sa: &mut IkeSa, ctx: &mut Ctx<'_>, datagram: &[u8], msg: Message) {
    let h = msg.header;
    if h.message_id != 0 {
        return;
    }
    if !h.is_response() {
        // A retransmitted request: replay our response (2.1).
        if !sa.core.initiator && h.spi_i == sa.core.spi_i {
            sa.replay(ctx, 0, datagram);
        }
        return;
    }
    let waiting = matches!(
        sa.core.tm.active.as_ref().map(|a| &a.task),
        Some(Task::IkeInit)
    );
    if !sa.core.initiator || h.spi_i != sa.core.spi_i || !waiting {
        return;
    }
    match on_response(sa, ctx, datagram, &msg) {
        Ok(true) => {
            float_to_nat_t(sa, ctx);
            sa.core.tm.active = None;
            sa.core.tm.next_mid = 1;
            sa.last_heard = ctx.now;
            sa.core.tm.queue.push_front(Task::IkeAuth { spi: None });
            // RFC 9370 2.2.2: the additional key exchanges come before IKE_AUTH.
            if sa.core.algs.is_some_and(|a| a.addke.count() > 0) {
                let first = super::intermediate::Intermediate::new(0);
                sa.core.tm.queue.push_front(Task::Intermediate(first));
            }
            sa.kick(ctx);
        }
        Ok(false) => {}
        Err(e) => sa.fail(ctx, e),
    }
}

/// RFC 7296 2.23: once a NAT is detected the initiator moves to UDP port 4500 (RFC 3948) for
/// IKE_AUTH and everything after; the responder follows the source of authenticated messages.
fn float_to_nat_t(sa: &mut IkeSa, ctx: &Ctx<'_>) {
    let port = ctx.config.nat_t_port;
    if (sa.nat.0 || sa.nat.1) && sa.local.port() != port {
        sa.local.set_port(port);
        sa.remote.set_port(port);
    }
}

/// Initiator: processes the response. `Ok(false)` when we retried (cookie, INVALID_KE).
fn on_response(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    datagram: &[u8],
    msg: &Message,
) -> Result<bool, Error> {
    let p = &msg.payloads;
    if let Some(c) = find_notify(p, NotifyType::COOKIE) {
        sa.handshake.cookie = Some(c.data.clone());
        retry(sa, ctx)?;
        return Ok(false);
    }
    if let Some(n) = find_notify(p, NotifyType::INVALID_KE_PAYLOAD) {
        // 2.7: retry with the group the responder wants, if we offered it.
        let wanted = DhGroup::from_iana(n.u16_value()?).filter(|g| {
            ctx.config
                .ike_proposals
                .iter()
                .any(|p| p.groups.contains(g))
        });
        let g = wanted
            .filter(|g| Some(*g) != sa.handshake.group)
            .ok_or(PeerError::Protocol(
                "INVALID_KE_PAYLOAD with a group we did not offer",
            ))?;
        sa.handshake.group = Some(g);
        retry(sa, ctx)?;
        return Ok(false);
    }
    if let Some(n) = msg.notifies().find(|n| n.ty.is_error()) {
        return Err(match n.ty {
            NotifyType::NO_PROPOSAL_CHOSEN => LocalError::NoProposalChosen.into(),
            ty => PeerError::Notified(ty).into(),
        });
    }
    if msg.header.spi_r == 0 {
        return Err(PeerError::Protocol("IKE_SA_INIT response without responder SPI").into());
    }
    let sa_p = p.sa().ok_or(PeerError::MissingPayload("SA"))?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    let nr = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let algs = check_ike(sa_p, &ctx.config.ike_proposals, &ctx.config.additional_ke)
        .ok_or(PeerError::BadProposal)?;
    if ke.group != algs.group.iana() || Some(algs.group) != sa.handshake.group {
        return Err(PeerError::Protocol("KE group differs from the chosen proposal").into());
    }
    sa.core.spi_r = msg.header.spi_r;
    read_capabilities(sa, msg);
    if algs.addke.count() > 0 && !sa.handshake.peer_intermediate {
        // RFC 9370 2.2.1: additional key exchanges need IKE_INTERMEDIATE.
        return Err(
            PeerError::Protocol("additional key exchanges without IKE_INTERMEDIATE").into(),
        );
    }
    sa.handshake.nr = nr.0.clone();
    sa.handshake.init_response = datagram.to_vec();
    let share = sa
        .handshake
        .share
        .take()
        .ok_or(LocalError::Config("no key share"))?;
    let shared = share.agree(&ke.data)?;
    install_keys(sa, algs, &shared)?;
    Ok(true)
}

fn retry(sa: &mut IkeSa, ctx: &mut Ctx<'_>) -> Result<(), Error> {
    sa.handshake.retries += 1;
    if sa.handshake.retries > MAX_INIT_RETRIES {
        return Err(PeerError::Protocol("too many IKE_SA_INIT retries").into());
    }
    sa.core.tm.active = None;
    let (_, _) = build_request(sa, ctx)?;
    let d = vec![sa.handshake.init_request.clone()];
    sa.transmit_request(ctx, Task::IkeInit, 0, d);
    Ok(())
}

/// NAT detection, fragmentation support and signature hashes from the peer's message.
fn read_capabilities(sa: &mut IkeSa, msg: &Message) {
    let (i, r) = (sa.core.spi_i, msg.header.spi_r.max(sa.core.spi_r));
    // The request carried SPIr = 0 (2.23: the hashes use the SPIs as they appear in the message).
    let r = if msg.header.is_response() { r } else { 0 };
    let of = |ty| {
        msg.notifies()
            .filter(move |n| n.ty == ty)
            .map(|n| n.data.as_slice())
    };
    let src: Vec<_> = of(NotifyType::NAT_DETECTION_SOURCE_IP).collect();
    let dst: Vec<_> = of(NotifyType::NAT_DETECTION_DESTINATION_IP).collect();
    if !src.is_empty() && !dst.is_empty() {
        sa.nat.1 = !nat::matches(src.into_iter(), i, r, sa.remote);
        sa.nat.0 = !nat::matches(dst.into_iter(), i, r, sa.local);
    }
    sa.peer_fragmentation =
        find_notify(&msg.payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
    sa.handshake.peer_intermediate =
        find_notify(&msg.payloads, NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED).is_some();
    if let Some(n) = find_notify(&msg.payloads, NotifyType::SIGNATURE_HASH_ALGORITHMS) {
        sa.peer_hashes = parse_hashes(&n.u16_list().unwrap_or_default());
    }
}

/// Derives the IKE SA keys from g^ir (2.14).
fn install_keys(sa: &mut IkeSa, algs: IkeAlgs, shared: &SharedSecret) -> Result<(), Error> {
    let (ni, nr) = (&sa.handshake.ni, &sa.handshake.nr);
    let seed = skeyseed(algs.prf, ni, nr, shared.as_bytes());
    let keys = derive_ike(
        &algs,
        &seed,
        ni,
        nr,
        (sa.core.spi_i, sa.core.spi_r),
        sa.core.initiator,
    )?;
    sa.core.algs = Some(algs);
    sa.core.keys = Some(keys);
    super::intermediate::note_post_quantum(sa, Some(algs.group));
    Ok(())
}

/// An unencrypted IKE_SA_INIT response carrying one notification (no state kept).
pub(crate) fn notify_response(spi_i: u64, spi_r: u64, ty: NotifyType, data: Vec<u8>) -> Vec<u8> {
    let header = Header {
        spi_i,
        spi_r,
        next_payload: PayloadType::NONE,
        version: Header::VERSION_2_0,
        exchange: ExchangeType::IKE_SA_INIT,
        flags: flags::RESPONSE,
        message_id: 0,
        length: 0,
    };
    Message {
        header,
        payloads: vec![notify(ty, data)],
    }
    .emit()
}

/// Responder: answers a new IKE_SA_INIT request. The endpoint checked the cookie already.
pub(crate) fn respond(sa: &mut IkeSa, ctx: &mut Ctx<'_>, datagram: &[u8], msg: &Message) {
    match try_respond(sa, ctx, datagram, msg) {
        Ok(()) => {}
        Err((ty, data, err)) => {
            let d = notify_response(sa.core.spi_i, 0, ty, data);
            sa.send(ctx, &d);
            sa.close(ctx, CloseReason::Failed(err));
        }
    }
}

type Refusal = (NotifyType, Vec<u8>, Error);

fn try_respond(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    datagram: &[u8],
    msg: &Message,
) -> Result<(), Refusal> {
    let syntax = |e: Error| (NotifyType::INVALID_SYNTAX, Vec::new(), e);
    let p = &msg.payloads;
    let sa_p = p
        .sa()
        .ok_or_else(|| syntax(PeerError::MissingPayload("SA").into()))?;
    let ke = p
        .ke()
        .ok_or_else(|| syntax(PeerError::MissingPayload("KE").into()))?;
    let ni = p
        .nonce()
        .ok_or_else(|| syntax(PeerError::MissingPayload("Nonce").into()))?;
    read_capabilities(sa, msg);
    // RFC 9242 3.1: no additional key exchange with an initiator that cannot run
    // IKE_INTERMEDIATE (unless we require them: then no proposal is acceptable).
    let none = crate::addke::AdditionalKe::off();
    let addke = if sa.handshake.peer_intermediate || ctx.config.additional_ke.required {
        &ctx.config.additional_ke
    } else {
        &none
    };
    let Some((reply, algs)) = select_ike(sa_p, &ctx.config.ike_proposals, Some(ke.group), addke)
    else {
        return Err((
            NotifyType::NO_PROPOSAL_CHOSEN,
            Vec::new(),
            LocalError::NoProposalChosen.into(),
        ));
    };
    if ke.group != algs.group.iana() {
        // 2.7: tell the initiator which group we want; keep no state.
        let data = algs.group.iana().to_be_bytes().to_vec();
        return Err((
            NotifyType::INVALID_KE_PAYLOAD,
            data,
            PeerError::Notified(NotifyType::INVALID_KE_PAYLOAD).into(),
        ));
    }
    let (public, shared) =
        KeyShare::respond(algs.group, &ke.data, ctx.rng).map_err(|e| syntax(e.into()))?;
    sa.handshake.ni = ni.0.clone();
    sa.handshake.nr = nonce(ctx.rng);
    install_keys(sa, algs, &shared).map_err(syntax)?;
    let mut payloads = vec![
        Payload::Sa(crate::wire::SaPayload {
            proposals: vec![reply],
        }),
        Payload::Ke(KePayload {
            group: algs.group.iana(),
            data: public,
        }),
        Payload::Nonce(NoncePayload(sa.handshake.nr.clone())),
    ];
    payloads.extend(nat_notifies(
        sa.core.spi_i,
        sa.core.spi_r,
        sa.local,
        sa.remote,
    ));
    payloads.extend(capability_notifies(sa, ctx, true));
    let out = Message {
        header: plain_header(sa, true),
        payloads,
    }
    .emit();
    sa.handshake.init_request = datagram.to_vec();
    sa.handshake.init_response = out.clone();
    sa.send(ctx, &out);
    let request = super::replay::request_id(datagram);
    sa.core.tm.cache = Some(super::replay::Replay::new(0, request, vec![out]));
    sa.core.tm.peer_mid = 1;
    Ok(())
}
