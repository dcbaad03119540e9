//! CREATE_CHILD_SA: rekeying a child SA (RFC 7296 1.3.3) and the IKE SA (1.3.2, 2.18), with
//! simultaneous child rekeys resolved by nonces (2.8.1). A colliding IKE SA rekey is answered
//! with TEMPORARY_FAILURE (2.25) and retried after a random delay.

use std::time::Duration;

use super::authx::{child_ts, install_child, jitter, make_child, Shape};
use super::init::nonce;
use super::tasks::{Reply, Step, Task};
use super::{ChildState, Core, Ctx, IkeSa};
use crate::addke::AdditionalKe;
use crate::crypto::{DhGroup, KeyShare};
use crate::error::{Error, LocalError, PeerError};
use crate::event::Event;
use crate::keys::{derive_ike, skeyseed_rekey};
use crate::proposal::{
    check_esp, check_ike, esp_offer, esp_reply, ike_offer, select_esp, select_ike,
};
use crate::ts::accept_pair;
use crate::wire::{
    find_notify, ExchangeType, KePayload, NoncePayload, NotifyPayload, NotifyType, Payload,
    Payloads, ProtocolId, SaPayload, TsPayload,
};

/// Our rekey of the child whose inbound SPI is `old`.
#[derive(Debug)]
pub(crate) struct ChildRekey {
    pub(crate) old: u32,
    pub(crate) spi: Option<u32>,
    pub(crate) ni: Vec<u8>,
}

impl ChildRekey {
    pub(crate) fn new(old: u32) -> Self {
        Self {
            old,
            spi: None,
            ni: Vec::new(),
        }
    }
}

/// Our rekey of the IKE SA.
#[derive(Debug)]
pub(crate) struct IkeRekey {
    pub(crate) spi: u64,
    pub(crate) ni: Vec<u8>,
    pub(crate) share: Option<KeyShare>,
}

impl IkeRekey {
    pub(crate) fn new() -> Self {
        Self {
            spi: 0,
            ni: Vec::new(),
            share: None,
        }
    }
}

fn notify(ty: NotifyType) -> Payload {
    Payload::Notify(NotifyPayload::new(ty, Vec::new()))
}

fn error_notify(p: &[Payload]) -> Option<NotifyType> {
    p.iter().find_map(|x| match x {
        Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
        _ => None,
    })
}

/// A short random delay before retrying after TEMPORARY_FAILURE (2.25).
fn retry_delay(ctx: &mut Ctx<'_>) -> Duration {
    Duration::from_millis(500 + u64::from(ctx.rng.next_u32() % 2000))
}

pub(crate) fn build_child(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    t: &mut ChildRekey,
) -> Result<Step, Error> {
    let installed = sa
        .children
        .iter()
        .any(|c| c.sa.inbound_spi == t.old && c.state == ChildState::Installed);
    if !installed || !sa.established() {
        return Ok(Step::Skip);
    }
    if t.spi.is_none() {
        t.spi = sa.take_spi(ctx);
    }
    let Some(spi) = t.spi else {
        return Ok(Step::Wait);
    };
    t.ni = nonce(ctx.rng);
    let child = sa
        .child_by_inbound(t.old)
        .ok_or(LocalError::Config("child vanished"))?;
    child.state = ChildState::Rekeying;
    // We initiate this exchange, so TSi is our side whatever our IKE SA role.
    let (tsi, tsr) = (child.sa.local_ts.clone(), child.sa.remote_ts.clone());
    let mut payloads = vec![Payload::Notify(NotifyPayload {
        protocol: ProtocolId::ESP,
        spi: t.old.to_be_bytes().to_vec(),
        ty: NotifyType::REKEY_SA,
        data: Vec::new(),
    })];
    // 1.3.3: the new child keeps the old one's mode.
    if child.sa.mode == crate::event::Mode::Transport {
        payloads.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    payloads.extend([
        Payload::Sa(esp_offer(&ctx.config.esp_proposals, spi, None)),
        Payload::Nonce(NoncePayload(t.ni.clone())),
        Payload::TsI(TsPayload(tsi)),
        Payload::TsR(TsPayload(tsr)),
    ]);
    Ok(Step::Send(ExchangeType::CREATE_CHILD_SA, payloads))
}

pub(crate) fn on_child_response(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    t: ChildRekey,
    p: &[Payload],
) -> Result<(), Error> {
    let Some(spi) = t.spi else { return Ok(()) };
    if let Some(ty) = error_notify(p) {
        // The old child stays; try again later (TEMPORARY_FAILURE, 2.25) or at the next soft expiry.
        sa.spis.push_back(spi);
        let delay = retry_delay(ctx);
        if let Some(c) = sa.child_by_inbound(t.old) {
            c.state = ChildState::Installed;
            c.rekey_at = ctx.now + delay;
        }
        if ty == NotifyType::CHILD_SA_NOT_FOUND {
            sa.queue(Task::DeleteChild(t.old));
        }
        return Ok(());
    }
    let nr = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let child = match new_child(sa, ctx, &t, spi, p) {
        Ok(c) => c,
        // 1.2: a child that cannot be used does not fail the IKE SA; the old child stays and
        // its rekey is tried again later.
        Err(e) => {
            if let Some(c) = sa.child_by_inbound(t.old) {
                c.state = ChildState::Installed;
                c.rekey_at = ctx.now + REFUSED_RETRY;
            }
            super::info::refuse_child(sa, ctx, Some(spi), p, e);
            return Ok(());
        }
    };
    install_child(sa, ctx, child, Some(t.old));
    let collision = sa.child_by_inbound(t.old).and_then(|c| {
        c.state = ChildState::Rekeyed;
        c.collision.take()
    });
    // 2.8.1: of two simultaneous rekeys, the SA made with the lowest of the four nonces is
    // redundant and deleted by the node that created it.
    let redundant = match collision {
        Some((_, pni, pnr)) => lowest_is_ours(&t.ni, &nr.0, &pni, &pnr),
        None => false,
    };
    if redundant {
        if let Some(c) = sa.child_by_inbound(spi) {
            c.state = ChildState::Rekeyed;
        }
        sa.queue(Task::DeleteChild(spi));
    } else {
        sa.queue(Task::DeleteChild(t.old));
    }
    Ok(())
}

/// When to rekey a child again after the peer's answer to our rekey was unusable.
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// The child our rekey `t` made, from the peer's answer: proposal, and selectors within the old
/// child's (2.9).
fn new_child(
    sa: &mut IkeSa,
    ctx: &Ctx<'_>,
    t: &ChildRekey,
    spi: u32,
    p: &[Payload],
) -> Result<crate::event::ChildSa, Error> {
    let sa_p = p.sa().ok_or(PeerError::MissingPayload("SA"))?;
    let nr = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let (outbound, algs) =
        check_esp(sa_p, &ctx.config.esp_proposals).ok_or(PeerError::BadProposal)?;
    let (tsi, tsr) = child_ts(p)?;
    let old = sa
        .children
        .iter()
        .find(|c| c.sa.inbound_spi == t.old)
        .ok_or(LocalError::Config("child vanished"))?;
    let offered = match (old.sa.local_ts.as_slice(), old.sa.remote_ts.as_slice()) {
        ([l], [r]) => (*l, *r),
        _ => return Err(LocalError::Config("child without one selector per side").into()),
    };
    let shape = shape_of(&old.sa);
    let local = (offered.0.start, sa.nat.0 && shape.virtual_ip.is_none());
    let remote = (offered.1.start, sa.nat.1);
    let (tsi, tsr) = accept_pair((&tsi, &tsr), (&offered.0, &offered.1), local, remote)
        .ok_or(PeerError::TrafficSelectors)?;
    // Child keys: this exchange's initiator is us, whatever our IKE SA role (2.17).
    let ts = (vec![tsi], vec![tsr]);
    make_rekeyed_child(sa, ctx, spi, outbound, algs, ts, &t.ni, &nr.0, true, shape)
}

/// A rekeyed child keeps the mode and address of the one it replaces (1.3.3).
fn shape_of(child: &crate::event::ChildSa) -> Shape {
    Shape {
        mode: child.mode,
        virtual_ip: child.virtual_ip,
    }
}

fn lowest_is_ours(ni: &[u8], nr: &[u8], pni: &[u8], pnr: &[u8]) -> bool {
    let ours = ni.min(nr);
    let theirs = pni.min(pnr);
    ours < theirs
}

/// Child keys where the CREATE_CHILD_SA initiator may be either IKE SA role.
#[allow(clippy::too_many_arguments)]
fn make_rekeyed_child(
    sa: &mut IkeSa,
    ctx: &Ctx<'_>,
    inbound: u32,
    outbound: u32,
    algs: crate::proposal::EspAlgs,
    ts: (
        Vec<crate::wire::TrafficSelector>,
        Vec<crate::wire::TrafficSelector>,
    ),
    ni: &[u8],
    nr: &[u8],
    we_initiated: bool,
    shape: Shape,
) -> Result<crate::event::ChildSa, Error> {
    // make_child orients keys and selectors by the IKE SA role; flip it for this exchange.
    let saved = sa.core.initiator;
    sa.core.initiator = we_initiated;
    let r = make_child(sa, ctx, inbound, outbound, algs, ts, ni, nr, None, shape);
    sa.core.initiator = saved;
    r
}

pub(crate) fn build_ike(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    t: &mut IkeRekey,
) -> Result<Step, Error> {
    if !sa.established() || sa.retiring.is_some() {
        return Ok(Step::Skip);
    }
    let algs = sa
        .core
        .algs
        .ok_or(LocalError::Config("no IKE algorithms"))?;
    t.spi = nonzero_spi(ctx);
    t.ni = nonce(ctx.rng);
    let share = KeyShare::generate(algs.group, ctx.rng)?;
    let ke = KePayload {
        group: algs.group.iana(),
        data: share.public().to_vec(),
    };
    t.share = Some(share);
    let offer = ike_offer(
        &ctx.config.ike_proposals,
        &t.spi.to_be_bytes(),
        Some(algs.group),
        &AdditionalKe::off(),
    );
    let payloads = vec![
        Payload::Sa(offer),
        Payload::Nonce(NoncePayload(t.ni.clone())),
        Payload::Ke(ke),
    ];
    Ok(Step::Send(ExchangeType::CREATE_CHILD_SA, payloads))
}

pub(crate) fn nonzero_spi(ctx: &mut Ctx<'_>) -> u64 {
    loop {
        let v = ctx.rng.next_u64();
        if v != 0 {
            return v;
        }
    }
}

pub(crate) fn on_ike_response(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    t: IkeRekey,
    p: &[Payload],
) -> Result<(), Error> {
    if error_notify(p).is_some() {
        sa.rekey_at = Some(ctx.now + retry_delay(ctx));
        return Ok(());
    }
    let sa_p = p.sa().ok_or(PeerError::MissingPayload("SA"))?;
    let nr = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    let algs = check_ike(sa_p, &ctx.config.ike_proposals, &AdditionalKe::off())
        .ok_or(PeerError::BadProposal)?;
    let peer_spi = sa_p
        .proposals
        .first()
        .map(|p| p.spi.as_slice())
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_be_bytes)
        .filter(|s| *s != 0)
        .ok_or(PeerError::Protocol("IKE rekey without an 8-byte SPI"))?;
    let share = t.share.ok_or(LocalError::Config("no key share"))?;
    if ke.group != share.group().iana() || algs.group != share.group() {
        return Err(PeerError::Protocol("KE group differs from the chosen proposal").into());
    }
    let shared = share.agree(&ke.data)?;
    let old = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let seed = skeyseed_rekey(old.prf, &old.sk_d, shared.as_bytes(), &t.ni, &nr.0);
    // 2.18: the rekey's initiator is the original initiator of the new IKE SA.
    let keys = derive_ike(&algs, &seed, &t.ni, &nr.0, (t.spi, peer_spi), true)?;
    let mut core = Core::new(true, t.spi, peer_spi);
    core.algs = Some(algs);
    core.keys = Some(keys);
    core.tm.next_mid = 0;
    switch_core(sa, ctx, core);
    // We rekeyed, so we delete the old IKE SA (on the old SA).
    start_retiring_delete(sa, ctx)
}

/// Moves to a new IKE SA: the old one retires, queued tasks and children carry over.
pub(crate) fn switch_core(sa: &mut IkeSa, ctx: &mut Ctx<'_>, mut core: Core) {
    core.tm.queue = std::mem::take(&mut sa.core.tm.queue);
    let old = std::mem::replace(&mut sa.core, core);
    sa.retiring = Some(old);
    // 2.18: the rekey's initiator deletes the old IKE SA; if it does not, we do.
    sa.retire_at = Some(ctx.now + ctx.config.rekey_delete_grace);
    sa.created = ctx.now;
    sa.rekey_at = Some(ctx.now + jitter(ctx, ctx.config.ike_lifetime.soft));
    sa.emit(ctx, Event::IkeSaRekeyed);
}

pub(crate) fn start_retiring_delete(sa: &mut IkeSa, ctx: &mut Ctx<'_>) -> Result<(), Error> {
    let Some(mut old) = sa.retiring.take() else {
        return Ok(());
    };
    let mid = old.tm.next_mid;
    let payloads = vec![Payload::Delete(crate::wire::DeletePayload {
        protocol: ProtocolId::IKE,
        spis: Vec::new(),
    })];
    let datagrams = super::protect::seal(
        sa,
        &old,
        ctx,
        ExchangeType::INFORMATIONAL,
        mid,
        false,
        &payloads,
    )?;
    for d in &datagrams {
        sa.send(ctx, d);
    }
    let deadline = Some(ctx.now + ctx.config.retransmit.timeout(0));
    old.tm.active = Some(super::tasks::Active {
        task: Task::DeleteIke,
        mid,
        datagrams,
        sends: 1,
        deadline,
        answered: None,
    });
    sa.retiring = Some(old);
    Ok(())
}

/// Responder for CREATE_CHILD_SA.
pub(crate) fn respond(sa: &mut IkeSa, ctx: &mut Ctx<'_>, p: &[Payload]) -> Result<Reply, Error> {
    if !sa.established() {
        return Err(PeerError::Protocol("CREATE_CHILD_SA before IKE_AUTH").into());
    }
    let sa_p = p.sa().ok_or(PeerError::MissingPayload("SA"))?;
    if sa_p.proposals.iter().any(|x| x.protocol == ProtocolId::IKE) {
        return respond_ike(sa, ctx, p, sa_p);
    }
    let Some(rekey) = find_notify(p, NotifyType::REKEY_SA) else {
        // Opportunistic encryption needs one child per host pair.
        return Ok(Reply::Send(vec![notify(NotifyType::NO_ADDITIONAL_SAS)]));
    };
    let old_out = <[u8; 4]>::try_from(rekey.spi.as_slice())
        .map(u32::from_be_bytes)
        .map_err(|_| PeerError::Protocol("REKEY_SA without a 4-byte SPI"))?;
    // 3.10.1: a child we do not have, or one the peer itself rekeyed already, is not found:
    // rekeying one SPI again and again creates nothing.
    let state = sa.child_by_outbound(old_out).map(|c| c.state);
    let Some(state) = state.filter(|s| *s != ChildState::Replaced) else {
        return Ok(Reply::Send(vec![Payload::Notify(NotifyPayload {
            ty: NotifyType::CHILD_SA_NOT_FOUND,
            ..rekey.clone()
        })]));
    };
    // 2.25.1: a child we are closing (deleting, or replaced by our own rekey) is busy.
    if matches!(state, ChildState::Rekeyed | ChildState::Deleting) || sa.retiring.is_some() {
        return Ok(Reply::Send(vec![notify(NotifyType::TEMPORARY_FAILURE)]));
    }
    if sa.children.len() >= ctx.config.max_children_per_sa {
        return Ok(Reply::Send(vec![notify(NotifyType::NO_ADDITIONAL_SAS)]));
    }
    let Some(spi) = sa.take_spi(ctx) else {
        return Ok(Reply::Pause);
    };
    let ni = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let Some((outbound, algs, number)) = select_esp(sa_p, &ctx.config.esp_proposals, None) else {
        sa.spis.push_front(spi);
        return Ok(Reply::Send(vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]));
    };
    let nr = nonce(ctx.rng);
    let old = sa
        .child_by_outbound(old_out)
        .ok_or(LocalError::Config("child vanished"))?;
    let (old_in, lts, rts, shape) = (
        old.sa.inbound_spi,
        old.sa.local_ts.clone(),
        old.sa.remote_ts.clone(),
        shape_of(&old.sa),
    );
    if state == ChildState::Rekeying {
        old.collision = Some((spi, ni.0.clone(), nr.clone()));
    }
    // The peer initiated this exchange: TSi is its side.
    let child = make_rekeyed_child(
        sa,
        ctx,
        spi,
        outbound,
        algs,
        (rts.clone(), lts.clone()),
        &ni.0,
        &nr,
        false,
        shape,
    )?;
    install_child(sa, ctx, child, Some(old_in));
    if state == ChildState::Installed {
        retire_replaced(sa, ctx, old_in);
    }
    let mut reply = Vec::new();
    if shape.mode == crate::event::Mode::Transport {
        reply.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    reply.extend([
        Payload::Sa(esp_reply(number, algs, spi, None)),
        Payload::Nonce(NoncePayload(nr)),
        Payload::TsI(TsPayload(rts)),
        Payload::TsR(TsPayload(lts)),
    ]);
    Ok(Reply::Send(reply))
}

/// 2.8: the peer, which rekeyed the child, deletes the old one; if it has not within the grace
/// period, we do.
fn retire_replaced(sa: &mut IkeSa, ctx: &Ctx<'_>, old_in: u32) {
    if let Some(c) = sa.child_by_inbound(old_in) {
        c.state = ChildState::Replaced;
        c.retire_at = Some(ctx.now + ctx.config.rekey_delete_grace);
    }
}

fn respond_ike(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    p: &[Payload],
    sa_p: &SaPayload,
) -> Result<Reply, Error> {
    // 2.25: a rekey colliding with one of ours (or a child rekey) is answered TEMPORARY_FAILURE.
    let ours = matches!(
        sa.core.tm.active.as_ref().map(|a| &a.task),
        Some(Task::IkeRekey(_)) | Some(Task::ChildRekey(_))
    );
    if ours || sa.retiring.is_some() {
        return Ok(Reply::Send(vec![notify(NotifyType::TEMPORARY_FAILURE)]));
    }
    let ni = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    let Some((mut reply, algs)) = select_ike(
        sa_p,
        &ctx.config.ike_proposals,
        Some(ke.group),
        &AdditionalKe::off(),
    ) else {
        return Ok(Reply::Send(vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]));
    };
    if ke.group != algs.group.iana() {
        let data = algs.group.iana().to_be_bytes().to_vec();
        return Ok(Reply::Send(vec![Payload::Notify(NotifyPayload::new(
            NotifyType::INVALID_KE_PAYLOAD,
            data,
        ))]));
    }
    let peer_spi = <[u8; 8]>::try_from(reply.spi.as_slice())
        .map(u64::from_be_bytes)
        .ok()
        .filter(|s| *s != 0)
        .ok_or(PeerError::Protocol("IKE rekey without an 8-byte SPI"))?;
    let our_spi = nonzero_spi(ctx);
    reply.spi = our_spi.to_be_bytes().to_vec();
    let group = DhGroup::from_iana(ke.group).ok_or(PeerError::BadProposal)?;
    let (public, shared) = KeyShare::respond(group, &ke.data, ctx.rng)?;
    let nr = nonce(ctx.rng);
    let old = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let seed = skeyseed_rekey(old.prf, &old.sk_d, shared.as_bytes(), &ni.0, &nr);
    let keys = derive_ike(&algs, &seed, &ni.0, &nr, (peer_spi, our_spi), false)?;
    let mut core = Core::new(false, peer_spi, our_spi);
    core.algs = Some(algs);
    core.keys = Some(keys);
    let out = vec![
        Payload::Sa(SaPayload {
            proposals: vec![reply],
        }),
        Payload::Nonce(NoncePayload(nr)),
        Payload::Ke(KePayload {
            group: ke.group,
            data: public,
        }),
    ];
    Ok(Reply::SendThenSwitch(out, Box::new(core)))
}
