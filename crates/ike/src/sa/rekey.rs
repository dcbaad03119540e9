//! CREATE_CHILD_SA: rekeying a child SA (RFC 7296 1.3.3) and the IKE SA (1.3.2, 2.18), with
//! simultaneous child rekeys resolved by nonces (2.8.1). A colliding IKE SA rekey is answered
//! with TEMPORARY_FAILURE (2.25) and retried after a random delay.
//!
//! Child rekeys offer PFS (1.3.1) with the IKE SA's group and its additional key exchanges
//! (RFC 9370 2.2.4), and accept what a peer insists on; IKE SA rekeys offer the additional key
//! exchanges IKE_SA_INIT does. Additional key exchanges run in IKE_FOLLOWUP_KE exchanges
//! ([`super::followup`]) before the new SA exists.

use std::time::Duration;

use super::authx::{child_ts, install_child, jitter, make_child, Shape};
use super::followup::{self, rekeyed_core, ChildSpec, Purpose, Series};
use super::init::nonce;
use super::tasks::{Reply, Step, Task};
use super::{ChildState, Core, Ctx, IkeSa};
use crate::addke::AdditionalKe;
use crate::crypto::{DhGroup, KeyShare, SharedSecret};
use crate::error::{Error, LocalError, PeerError};
use crate::event::{ChildSa, Event};
use crate::keys::Secrets;
use crate::proposal::{
    check_esp_rekey, check_ike, esp_rekey_offer, ike_offer, select_esp_rekey, select_ike, ChildKes,
    EspChoice,
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
    /// The key exchanges we offered (PFS and additional ones), whether we offered nothing
    /// less, and our KE share.
    pub(crate) pfs: Option<ChildKes>,
    pub(crate) insist: bool,
    pub(crate) share: Option<KeyShare>,
}

impl ChildRekey {
    pub(crate) fn new(old: u32) -> Self {
        Self {
            old,
            spi: None,
            ni: Vec::new(),
            pfs: None,
            insist: false,
            share: None,
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
pub(crate) fn retry_delay(ctx: &mut Ctx<'_>) -> Duration {
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
    let ke = pfs_share(sa, ctx, t)?;
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
        Payload::Sa(esp_rekey_offer(
            &ctx.config.esp_proposals,
            spi,
            t.pfs,
            t.insist,
        )),
        Payload::Nonce(NoncePayload(t.ni.clone())),
        Payload::TsI(TsPayload(tsi)),
        Payload::TsR(TsPayload(tsr)),
    ]);
    payloads.extend(ke);
    Ok(Step::Send(ExchangeType::CREATE_CHILD_SA, payloads))
}

/// With `child_pfs`, the key exchanges our child rekey offers, those of the IKE SA (RFC 7296
/// 1.3.1, RFC 9370 2.2.4), and its KEi payload. Where additional key exchanges are required,
/// the rekey insists on them too.
fn pfs_share(sa: &IkeSa, ctx: &mut Ctx<'_>, t: &mut ChildRekey) -> Result<Option<Payload>, Error> {
    let algs = sa
        .core
        .algs
        .ok_or(LocalError::Config("no IKE algorithms"))?;
    if !ctx.config.child_pfs {
        return Ok(None);
    }
    let share = KeyShare::generate(algs.group, ctx.rng)?;
    let ke = Payload::Ke(KePayload {
        group: algs.group.iana(),
        data: share.public().to_vec(),
    });
    t.pfs = Some(ChildKes {
        group: Some(algs.group),
        addke: algs.addke,
    });
    t.insist = ctx.config.additional_ke.required && algs.addke.count() > 0;
    t.share = Some(share);
    Ok(Some(ke))
}

/// SK(0) of a child rekey: the KE exchange of its CREATE_CHILD_SA, if the responder chose one.
fn pfs_secret(
    share: Option<KeyShare>,
    group: Option<DhGroup>,
    p: &[Payload],
) -> Result<Option<SharedSecret>, Error> {
    let Some(group) = group else {
        return Ok(None);
    };
    let share = share
        .filter(|s| s.group() == group)
        .ok_or(PeerError::BadProposal)?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    if ke.group != group.iana() {
        return Err(PeerError::Protocol("KE group differs from the chosen proposal").into());
    }
    Ok(Some(share.agree(&ke.data)?))
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
    let nr = p
        .nonce()
        .ok_or(PeerError::MissingPayload("Nonce"))?
        .0
        .clone();
    let (old, ni) = (t.old, t.ni.clone());
    let (spec, kes, first) = match new_child(sa, ctx, t, spi, p) {
        Ok(c) => c,
        // 1.2: a child that cannot be used does not fail the IKE SA; the old child stays and
        // its rekey is tried again later.
        Err(e) => {
            refused(sa, ctx, old, spi, p, e);
            return Ok(());
        }
    };
    let collision = sa.child_by_inbound(old).and_then(|c| c.collision.take());
    // 2.8.1: of two simultaneous rekeys, the SA made with the lowest of the four nonces is
    // redundant and deleted by the node that created it.
    let lost = collision
        .as_ref()
        .is_some_and(|(_, pni, pnr)| lowest_is_ours(&ni, &nr, pni, pnr));
    if let Some((peer_child, ..)) = collision.filter(|_| !lost) {
        // The peer lost: it stops before its IKE_FOLLOWUP_KE exchanges, if it has any.
        followup::forget_child(sa, peer_child);
    }
    if kes.addke.count() > 0 {
        // RFC 9370 2.2.4: the loser of a collision does not go on with its additional
        // exchanges (they would only make the redundant SA); the winner does.
        let purpose = Purpose::Child { old, spec };
        let series = Series::new(purpose, true, (&ni, &nr), first, &kes.addke);
        if lost {
            followup::abandon(sa, ctx, series);
            return Ok(());
        }
        return followup::start(sa, series, p);
    }
    // Child keys: this exchange's initiator is us, whatever our IKE SA role (2.17).
    let child = match make_rekeyed_child(sa, ctx, &spec, (&ni, &nr), &Secrets::new(first), true) {
        Ok(c) => c,
        Err(e) => {
            refused(sa, ctx, old, spi, p, e);
            return Ok(());
        }
    };
    if lost {
        install_child(sa, ctx, child, Some(old));
        for c in [old, spi] {
            if let Some(c) = sa.child_by_inbound(c) {
                c.state = ChildState::Rekeyed;
            }
        }
        sa.queue(Task::DeleteChild(spi));
        return Ok(());
    }
    child_rekeyed(sa, ctx, old, child);
    Ok(())
}

/// Our rekey of the child `old` made `child`: install it, and delete the old one (2.8).
pub(crate) fn child_rekeyed(sa: &mut IkeSa, ctx: &mut Ctx<'_>, old: u32, child: ChildSa) {
    install_child(sa, ctx, child, Some(old));
    if let Some(c) = sa.child_by_inbound(old) {
        c.state = ChildState::Rekeyed;
    }
    sa.queue(Task::DeleteChild(old));
}

/// The peer's answer to our rekey of `old` is unusable: the old child stays and its rekey is
/// tried again later.
fn refused(sa: &mut IkeSa, ctx: &mut Ctx<'_>, old: u32, spi: u32, p: &[Payload], e: Error) {
    if let Some(c) = sa.child_by_inbound(old) {
        c.state = ChildState::Installed;
        c.rekey_at = ctx.now + REFUSED_RETRY;
    }
    super::info::refuse_child(sa, ctx, Some(spi), p, e);
}

/// When to rekey a child again after the peer's answer to our rekey was unusable.
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// The child our rekey `t` makes, from the peer's answer: proposal and key exchanges (SK(0),
/// and the additional ones to run), and selectors within the old child's (2.9).
fn new_child(
    sa: &mut IkeSa,
    ctx: &Ctx<'_>,
    t: ChildRekey,
    spi: u32,
    p: &[Payload],
) -> Result<(ChildSpec, ChildKes, Option<SharedSecret>), Error> {
    let sa_p = p.sa().ok_or(PeerError::MissingPayload("SA"))?;
    let (outbound, algs, kes) = check_esp_rekey(sa_p, &ctx.config.esp_proposals, t.pfs, t.insist)
        .ok_or(PeerError::BadProposal)?;
    let first = pfs_secret(t.share, kes.group, p)?;
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
    let spec = ChildSpec {
        inbound: spi,
        outbound,
        algs,
        ts: (vec![tsi], vec![tsr]),
        shape,
    };
    Ok((spec, kes, first))
}

/// A rekeyed child keeps the mode and address of the one it replaces (1.3.3).
fn shape_of(child: &ChildSa) -> Shape {
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
pub(crate) fn make_rekeyed_child(
    sa: &mut IkeSa,
    ctx: &Ctx<'_>,
    spec: &ChildSpec,
    (ni, nr): (&[u8], &[u8]),
    secrets: &Secrets,
    we_initiated: bool,
) -> Result<ChildSa, Error> {
    // make_child orients keys and selectors by the IKE SA role; flip it for this exchange.
    let saved = sa.core.initiator;
    sa.core.initiator = we_initiated;
    let (inbound, outbound, algs, ts) = (spec.inbound, spec.outbound, spec.algs, spec.ts.clone());
    let r = make_child(
        sa, ctx, inbound, outbound, algs, ts, ni, nr, secrets, spec.shape,
    );
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
    // RFC 9370 2.2.4: the additional key exchanges IKE_SA_INIT offers.
    let offer = ike_offer(
        &ctx.config.ike_proposals,
        &t.spi.to_be_bytes(),
        Some(algs.group),
        &ctx.config.additional_ke,
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
    let algs = check_ike(sa_p, &ctx.config.ike_proposals, &ctx.config.additional_ke)
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
    // 2.18: the rekey's initiator is the original initiator of the new IKE SA.
    let spis = (t.spi, peer_spi);
    if algs.addke.count() > 0 {
        let purpose = Purpose::Ike { spis, algs };
        let series = Series::new(purpose, true, (&t.ni, &nr.0), Some(shared), &algs.addke);
        return followup::start(sa, series, p);
    }
    let secrets = Secrets::new(Some(shared));
    let core = rekeyed_core(sa, true, spis, algs, &secrets, (&t.ni, &nr.0))?;
    ike_rekeyed(sa, ctx, core)
}

/// Our rekey made the new IKE SA `core`: move to it, and delete the old one (on the old SA).
pub(crate) fn ike_rekeyed(sa: &mut IkeSa, ctx: &mut Ctx<'_>, core: Core) -> Result<(), Error> {
    switch_core(sa, ctx, core);
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
    // 2.25.1: a child we are closing (deleting, or replaced by our own rekey) is busy. So is
    // one whose rekey of ours is in its IKE_FOLLOWUP_KE exchanges: that collision was settled
    // for us (RFC 9370 2.2.4).
    let old_in = sa.child_by_outbound(old_out).map(|c| c.sa.inbound_spi);
    if matches!(state, ChildState::Rekeyed | ChildState::Deleting)
        || sa.retiring.is_some()
        || followup::initiating(sa, old_in)
    {
        return Ok(Reply::Send(vec![notify(NotifyType::TEMPORARY_FAILURE)]));
    }
    if sa.children.len() >= ctx.config.max_children_per_sa {
        return Ok(Reply::Send(vec![notify(NotifyType::NO_ADDITIONAL_SAS)]));
    }
    let ni = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let Some(choice) = select_child(ctx, sa_p, p) else {
        return Ok(Reply::Send(vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]));
    };
    if let Some(refusal) = wrong_ke_group(&choice, p)? {
        return Ok(refusal);
    }
    let Some(spi) = sa.take_spi(ctx) else {
        return Ok(Reply::Pause);
    };
    // A window-1 peer that starts a new CREATE_CHILD_SA has given up any earlier series.
    followup::forget(sa);
    let (ke, first) = match pfs_respond(ctx, &choice, p) {
        Ok(x) => x,
        Err(e) => {
            sa.spis.push_front(spi);
            return Err(e);
        }
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
    let mut reply = choice.reply;
    reply.spi = spi.to_be_bytes().to_vec();
    let mut out = Vec::new();
    if shape.mode == crate::event::Mode::Transport {
        out.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    out.extend([
        Payload::Sa(SaPayload {
            proposals: vec![reply],
        }),
        Payload::Nonce(NoncePayload(nr.clone())),
        Payload::TsI(TsPayload(rts.clone())),
        Payload::TsR(TsPayload(lts.clone())),
    ]);
    out.extend(ke);
    // The peer initiated this exchange: TSi is its side.
    let spec = ChildSpec {
        inbound: spi,
        outbound: choice.spi,
        algs: choice.algs,
        ts: (rts, lts),
        shape,
    };
    if choice.kes.addke.count() > 0 {
        // RFC 9370 2.2.4: the child comes after the IKE_FOLLOWUP_KE exchanges.
        let purpose = Purpose::Child { old: old_in, spec };
        let series = Series::new(purpose, false, (&ni.0, &nr), first, &choice.kes.addke);
        out.push(followup::wait(sa, ctx, series));
        return Ok(Reply::Send(out));
    }
    let child = make_rekeyed_child(sa, ctx, &spec, (&ni.0, &nr), &Secrets::new(first), false)?;
    install_child(sa, ctx, child, Some(old_in));
    if state == ChildState::Installed {
        retire_replaced(sa, ctx, old_in);
    }
    Ok(Reply::Send(out))
}

/// Responder of a child rekey: the peer's ESP proposal and key exchanges. We accept every
/// group of our IKE proposals for PFS and our additional key exchanges, without insisting on
/// them (the child's keys derive from SK_d, which depends on them already).
fn select_child(ctx: &Ctx<'_>, sa_p: &SaPayload, p: &[Payload]) -> Option<EspChoice> {
    let mut groups: Vec<DhGroup> = Vec::new();
    for g in ctx
        .config
        .ike_proposals
        .iter()
        .flat_map(|x| x.groups.iter())
    {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    let addke = AdditionalKe {
        required: false,
        ..ctx.config.additional_ke.clone()
    };
    let ke_group = p.ke().map(|k| k.group);
    select_esp_rekey(sa_p, &ctx.config.esp_proposals, ke_group, &groups, &addke)
}

/// RFC 7296 1.3: a KEi of another group than the chosen one is answered INVALID_KE_PAYLOAD
/// naming the chosen group; a KE transform chosen without KEi is a syntax error.
fn wrong_ke_group(choice: &EspChoice, p: &[Payload]) -> Result<Option<Reply>, Error> {
    let Some(g) = choice.kes.group else {
        return Ok(None);
    };
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    if ke.group == g.iana() {
        return Ok(None);
    }
    let data = g.iana().to_be_bytes().to_vec();
    Ok(Some(Reply::Send(vec![Payload::Notify(
        NotifyPayload::new(NotifyType::INVALID_KE_PAYLOAD, data),
    )])))
}

/// Responder of a child rekey with PFS: our KEr and SK(0).
fn pfs_respond(
    ctx: &mut Ctx<'_>,
    choice: &EspChoice,
    p: &[Payload],
) -> Result<(Option<Payload>, Option<SharedSecret>), Error> {
    let (Some(g), Some(ke)) = (choice.kes.group, p.ke()) else {
        return Ok((None, None));
    };
    let (public, shared) = KeyShare::respond(g, &ke.data, ctx.rng)?;
    let ke = Payload::Ke(KePayload {
        group: g.iana(),
        data: public,
    });
    Ok((Some(ke), Some(shared)))
}

/// 2.8: the peer, which rekeyed the child, deletes the old one; if it has not within the grace
/// period, we do.
pub(crate) fn retire_replaced(sa: &mut IkeSa, ctx: &Ctx<'_>, old_in: u32) {
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
    ) || followup::initiating(sa, None);
    if ours || sa.retiring.is_some() {
        return Ok(Reply::Send(vec![notify(NotifyType::TEMPORARY_FAILURE)]));
    }
    let ni = p.nonce().ok_or(PeerError::MissingPayload("Nonce"))?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    let Some((mut reply, algs)) = select_ike(
        sa_p,
        &ctx.config.ike_proposals,
        Some(ke.group),
        &ctx.config.additional_ke,
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
    // A window-1 peer that starts a new CREATE_CHILD_SA has given up any earlier series.
    followup::forget(sa);
    let our_spi = nonzero_spi(ctx);
    reply.spi = our_spi.to_be_bytes().to_vec();
    let (public, shared) = KeyShare::respond(algs.group, &ke.data, ctx.rng)?;
    let nr = nonce(ctx.rng);
    let mut out = vec![
        Payload::Sa(SaPayload {
            proposals: vec![reply],
        }),
        Payload::Nonce(NoncePayload(nr.clone())),
        Payload::Ke(KePayload {
            group: ke.group,
            data: public,
        }),
    ];
    let spis = (peer_spi, our_spi);
    if algs.addke.count() > 0 {
        // RFC 9370 2.2.4: the new IKE SA comes after the IKE_FOLLOWUP_KE exchanges.
        let purpose = Purpose::Ike { spis, algs };
        let series = Series::new(purpose, false, (&ni.0, &nr), Some(shared), &algs.addke);
        out.push(followup::wait(sa, ctx, series));
        return Ok(Reply::Send(out));
    }
    let secrets = Secrets::new(Some(shared));
    let core = rekeyed_core(sa, false, spis, algs, &secrets, (&ni.0, &nr))?;
    Ok(Reply::SendThenSwitch(out, Box::new(core)))
}
