//! IKE_FOLLOWUP_KE (RFC 9370 2.2.4): the additional key exchanges of a CREATE_CHILD_SA that
//! rekeys a child SA or the IKE SA, one exchange per negotiated ADDKE round, tied to the
//! CREATE_CHILD_SA by the responder's ADDITIONAL_KEY_EXCHANGE link data.
//!
//! ```text
//! HDR(CREATE_CHILD_SA), SK {SA, Ni, KEi, ...}  -->
//!                 <--  HDR(CREATE_CHILD_SA), SK {SA, Nr, KEr, N(ADDITIONAL_KEY_EXCHANGE)(link1), ...}
//! HDR(IKE_FOLLOWUP_KE), SK {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(link1)}  -->
//!                 <--  HDR(IKE_FOLLOWUP_KE), SK {KEr(1), N(ADDITIONAL_KEY_EXCHANGE)(link2)}
//! HDR(IKE_FOLLOWUP_KE), SK {KEi(2), N(ADDITIONAL_KEY_EXCHANGE)(link2)}  -->
//!                 <--  HDR(IKE_FOLLOWUP_KE), SK {KEr(2)}
//! ```
//!
//! The new SA exists only once the last exchange is done, with keys from every shared secret:
//!
//! ```text
//! SKEYSEED = prf(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))        (IKE SA rekey)
//! KEYMAT   = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))       (child SA)
//! ```
//!
//! The initiator runs the series before any other request of its own (our window is 1). A
//! responder keeps at most one series per IKE SA, forgets it when the peer starts another
//! CREATE_CHILD_SA (a window-1 peer has given it up) or after [`WAIT`], and answers a request it
//! has no series for with STATE_NOT_FOUND. A KE payload of another method than the round's, or
//! one that does not check, is INVALID_SYNTAX (RFC 7296 3.10.1: a value out of range; the method
//! was fixed by the CREATE_CHILD_SA, so INVALID_KE_PAYLOAD has nothing to offer) and ends the
//! series; the IKE SA stays.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::authx::{install_child, Shape};
use super::rekey::{child_rekeyed, ike_rekeyed, make_rekeyed_child, retire_replaced, retry_delay};
use super::tasks::{Reply, Step, Task};
use super::{ChildState, Core, Ctx, IkeSa};
use crate::addke::AddKes;
use crate::crypto::{DhGroup, KeyShare, SharedSecret};
use crate::error::{Error, LocalError, PeerError};
use crate::keys::{derive_ike, skeyseed_rekey_all, Secrets};
use crate::proposal::{EspAlgs, IkeAlgs};
use crate::wire::{
    find_notify, ExchangeType, KePayload, NotifyPayload, NotifyType, Payload, Payloads,
    TrafficSelector,
};

/// How long a responder waits for the next IKE_FOLLOWUP_KE request before it forgets the series.
/// RFC 9370 2.2.4 finds 5 to 20 s appropriate in most cases; 30 s lets a request be lost twice
/// under the usual retransmission schedule (4 s, then 7.2 s, then 13 s: strongSwan's and ours).
pub(crate) const WAIT: Duration = Duration::from_secs(30);
/// The length of our link data.
const LINK_LEN: usize = 8;
/// The most link data of the peer's we keep (it is opaque to us and echoed back).
const MAX_PEER_LINK: usize = 64;

/// A child SA to be: everything but its keys. `ts` are this exchange's (TSi, TSr).
#[derive(Debug)]
pub(crate) struct ChildSpec {
    pub(crate) inbound: u32,
    pub(crate) outbound: u32,
    pub(crate) algs: EspAlgs,
    pub(crate) ts: (Vec<TrafficSelector>, Vec<TrafficSelector>),
    /// The replaced child's mode and assigned address, which the new one keeps (1.3.3).
    pub(crate) shape: Shape,
}

/// What a series makes once its last exchange is done.
#[derive(Debug)]
pub(crate) enum Purpose {
    /// A child SA replacing the one whose inbound SPI is `old`.
    Child { old: u32, spec: ChildSpec },
    /// An IKE SA replacing this one: its SPIs (SPIi, SPIr) and algorithms.
    Ike { spis: (u64, u64), algs: IkeAlgs },
}

/// One CREATE_CHILD_SA and the IKE_FOLLOWUP_KE exchanges it negotiated.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) purpose: Purpose,
    /// We initiated the CREATE_CHILD_SA (and so the IKE_FOLLOWUP_KE exchanges).
    initiator: bool,
    ni: Vec<u8>,
    nr: Vec<u8>,
    secrets: Secrets,
    /// The additional methods still to run, in order (RFC 9370 2.2.2: by transform type).
    methods: VecDeque<DhGroup>,
    /// The responder's link data for the next request.
    link: Vec<u8>,
}

impl Series {
    /// A series after its CREATE_CHILD_SA: `first` is SK(0), if a KE was exchanged.
    pub(crate) fn new(
        purpose: Purpose,
        initiator: bool,
        (ni, nr): (&[u8], &[u8]),
        first: Option<SharedSecret>,
        addke: &AddKes,
    ) -> Self {
        Self {
            purpose,
            initiator,
            ni: ni.to_vec(),
            nr: nr.to_vec(),
            secrets: Secrets::new(first),
            methods: addke.methods().collect(),
            link: Vec::new(),
        }
    }

    fn is_child_of(&self, old: u32) -> bool {
        matches!(&self.purpose, Purpose::Child { old: o, .. } if *o == old)
    }
}

/// Our IKE_FOLLOWUP_KE request in flight.
#[derive(Debug)]
pub(crate) struct FollowupKe {
    series: Series,
    share: Option<KeyShare>,
}

/// A responder's series, waiting for the next request until `until`.
#[derive(Debug)]
pub(crate) struct Waiting {
    series: Series,
    until: Instant,
}

fn link_notify(link: &[u8]) -> Payload {
    Payload::Notify(NotifyPayload::new(
        NotifyType::ADDITIONAL_KEY_EXCHANGE,
        link.to_vec(),
    ))
}

fn error(ty: NotifyType) -> Reply {
    Reply::Send(vec![Payload::Notify(NotifyPayload::new(ty, Vec::new()))])
}

/// The peer's link data, which it must send with more exchanges to come.
fn peer_link(p: &[Payload]) -> Result<Vec<u8>, Error> {
    let n = find_notify(p, NotifyType::ADDITIONAL_KEY_EXCHANGE)
        .ok_or(PeerError::MissingPayload("ADDITIONAL_KEY_EXCHANGE"))?;
    if n.data.is_empty() || n.data.len() > MAX_PEER_LINK {
        return Err(PeerError::Protocol("ADDITIONAL_KEY_EXCHANGE data of a bad length").into());
    }
    Ok(n.data.clone())
}

/// Records the post-quantum methods a rekeyed IKE SA's keys now also depend on.
fn note_post_quantum(sa: &mut IkeSa, methods: impl Iterator<Item = DhGroup>) {
    for m in methods.filter(|m| m.is_post_quantum()) {
        if !sa.post_quantum.contains(&m) {
            sa.post_quantum.push(m);
        }
    }
}

/// The IKE SA a rekey makes: SKEYSEED from the old SK_d and every shared secret (RFC 9370
/// 2.2.4; RFC 7296 2.18 when there is only SK(0)). `initiator`: we initiated the rekey, and so
/// are the original initiator of the new IKE SA.
pub(crate) fn rekeyed_core(
    sa: &IkeSa,
    initiator: bool,
    spis: (u64, u64),
    algs: IkeAlgs,
    secrets: &Secrets,
    (ni, nr): (&[u8], &[u8]),
) -> Result<Core, Error> {
    let old = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let seed = skeyseed_rekey_all(old.prf, &old.sk_d, secrets, ni, nr);
    let keys = derive_ike(&algs, &seed, ni, nr, spis, initiator)?;
    let mut core = Core::new(initiator, spis.0, spis.1);
    core.algs = Some(algs);
    core.keys = Some(keys);
    Ok(core)
}

/// Initiator: the CREATE_CHILD_SA response chose additional key exchanges. The series runs next,
/// before anything else of ours.
pub(crate) fn start(sa: &mut IkeSa, mut series: Series, p: &[Payload]) -> Result<(), Error> {
    series.link = peer_link(p)?;
    let t = FollowupKe {
        series,
        share: None,
    };
    sa.core.tm.queue.push_front(Task::Followup(Box::new(t)));
    Ok(())
}

/// Initiator: `KEi(n)` and the link.
pub(crate) fn build(sa: &mut IkeSa, ctx: &mut Ctx<'_>, t: &mut FollowupKe) -> Result<Step, Error> {
    if !sa.established() {
        return Ok(Step::Skip);
    }
    let method = *t
        .series
        .methods
        .front()
        .ok_or(LocalError::Config("no additional key exchange left"))?;
    let share = KeyShare::generate(method, ctx.rng)?;
    let ke = Payload::Ke(KePayload {
        group: method.iana(),
        data: share.public().to_vec(),
    });
    t.share = Some(share);
    let payloads = vec![ke, link_notify(&t.series.link)];
    Ok(Step::Send(ExchangeType::IKE_FOLLOWUP_KE, payloads))
}

/// Initiator: `KEr(n)`. Runs the next exchange, or makes the SA after the last. An error
/// notification (STATE_NOT_FOUND: the responder forgot the series) fails the whole series
/// (2.2.4); the old SA stays and is rekeyed again later. A bad KE fails the IKE SA, as a bad
/// KE in a CREATE_CHILD_SA response does.
pub(crate) fn on_response(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    mut t: Box<FollowupKe>,
    p: &[Payload],
) -> Result<(), Error> {
    if p.iter()
        .any(|x| matches!(x, Payload::Notify(n) if n.ty.is_error()))
    {
        abandon(sa, ctx, t.series);
        return Ok(());
    }
    let share = t.share.take().ok_or(LocalError::Config("no key share"))?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    if ke.group != share.group().iana() {
        return Err(PeerError::Protocol("KE method differs from the negotiated one").into());
    }
    let shared = share.agree(&ke.data)?;
    t.series.methods.pop_front();
    t.series.secrets.more.push(shared);
    if !t.series.methods.is_empty() {
        return start(sa, t.series, p);
    }
    let s = t.series;
    match s.purpose {
        Purpose::Child { old, spec } => {
            let child =
                make_rekeyed_child(sa, ctx, &spec, (&s.ni, &s.nr), &s.secrets, s.initiator)?;
            child_rekeyed(sa, ctx, old, child);
        }
        Purpose::Ike { spis, algs } => {
            let core = rekeyed_core(sa, s.initiator, spis, algs, &s.secrets, (&s.ni, &s.nr))?;
            note_post_quantum(sa, algs.addke.methods());
            ike_rekeyed(sa, ctx, core)?;
        }
    }
    Ok(())
}

/// Initiator: the series failed; the old SA stays and its rekey is tried again later.
pub(crate) fn abandon(sa: &mut IkeSa, ctx: &mut Ctx<'_>, s: Series) {
    let retry = ctx.now + retry_delay(ctx);
    match &s.purpose {
        Purpose::Child { old, .. } => {
            if let Some(c) = sa.child_by_inbound(*old) {
                c.state = ChildState::Installed;
                c.rekey_at = retry;
            }
        }
        Purpose::Ike { .. } => sa.rekey_at = Some(retry),
    }
    release(sa, s);
}

/// Initiator: a series of ours is running or queued (for the child `old`, if given).
pub(crate) fn initiating(sa: &IkeSa, old: Option<u32>) -> bool {
    let tm = &sa.core.tm;
    let active = tm.active.as_ref().map(|a| &a.task);
    active.into_iter().chain(tm.queue.iter()).any(|t| match t {
        Task::Followup(f) => old.is_none_or(|o| f.series.is_child_of(o)),
        _ => false,
    })
}

/// Responder: the CREATE_CHILD_SA we answer chose additional key exchanges. Keeps the series
/// and returns the ADDITIONAL_KEY_EXCHANGE notification for the response.
pub(crate) fn wait(sa: &mut IkeSa, ctx: &mut Ctx<'_>, mut series: Series) -> Payload {
    series.link = new_link(ctx);
    let n = link_notify(&series.link);
    forget(sa);
    sa.followup = Some(Waiting {
        series,
        until: ctx.now + WAIT,
    });
    n
}

fn new_link(ctx: &mut Ctx<'_>) -> Vec<u8> {
    let mut link = vec![0; LINK_LEN];
    ctx.rng.fill_bytes(&mut link);
    link
}

/// Responder: drops the waiting series.
pub(crate) fn forget(sa: &mut IkeSa) {
    if let Some(w) = sa.followup.take() {
        release(sa, w.series);
    }
}

/// Gives back the inbound SPI a child series held.
fn release(sa: &mut IkeSa, s: Series) {
    if let Purpose::Child { spec, .. } = s.purpose {
        sa.spis.push_back(spec.inbound);
    }
}

/// Responder: drops the waiting series if it would make the child with inbound SPI `inbound`
/// (its initiator lost a rekey collision and stops, RFC 7296 2.8.1).
pub(crate) fn forget_child(sa: &mut IkeSa, inbound: u32) {
    let ours = sa.followup.as_ref().is_some_and(
        |w| matches!(&w.series.purpose, Purpose::Child { spec, .. } if spec.inbound == inbound),
    );
    if ours {
        forget(sa);
    }
}

/// Responder: a series for an IKE SA rekey is waiting. Until it ends we start no exchange of our
/// own, which would run on the IKE SA about to be replaced.
pub(crate) fn holds_queue(sa: &IkeSa) -> bool {
    sa.followup
        .as_ref()
        .is_some_and(|w| matches!(w.series.purpose, Purpose::Ike { .. }))
}

/// When the waiting series, if any, is forgotten.
pub(crate) fn deadline(sa: &IkeSa) -> Option<Instant> {
    sa.followup.as_ref().map(|w| w.until)
}

/// Forgets a waiting series whose time is up.
pub(crate) fn expire(sa: &mut IkeSa, now: Instant) {
    if deadline(sa).is_some_and(|t| now >= t) {
        forget(sa);
    }
}

/// Responder for IKE_FOLLOWUP_KE: `KEr(n)`, and the link for the next one or the new SA.
pub(crate) fn respond(sa: &mut IkeSa, ctx: &mut Ctx<'_>, p: &[Payload]) -> Result<Reply, Error> {
    expire(sa, ctx.now);
    let link = find_notify(p, NotifyType::ADDITIONAL_KEY_EXCHANGE).map(|n| n.data.as_slice());
    let ours = sa.followup.as_ref().map(|w| w.series.link.as_slice());
    if link.is_none() || link != ours {
        return Ok(error(NotifyType::STATE_NOT_FOUND));
    }
    let Some(Waiting { mut series, .. }) = sa.followup.take() else {
        return Ok(error(NotifyType::STATE_NOT_FOUND));
    };
    let Some((ke, shared)) = exchange(ctx, &series, p) else {
        release(sa, series);
        return Ok(error(NotifyType::INVALID_SYNTAX));
    };
    series.methods.pop_front();
    series.secrets.more.push(shared);
    if !series.methods.is_empty() {
        let next = wait(sa, ctx, series);
        return Ok(Reply::Send(vec![ke, next]));
    }
    finish_responder(sa, ctx, series, ke)
}

/// Responder: our `KEr(n)` and SK(n) for the peer's `KEi(n)`, if it is of the round's method
/// and checks (FIPS 203 7.2 for an ML-KEM encapsulation key).
fn exchange(ctx: &mut Ctx<'_>, s: &Series, p: &[Payload]) -> Option<(Payload, SharedSecret)> {
    let method = *s.methods.front()?;
    let ke = p.ke().filter(|ke| ke.group == method.iana())?;
    let (public, shared) = KeyShare::respond(method, &ke.data, ctx.rng).ok()?;
    let ke = Payload::Ke(KePayload {
        group: method.iana(),
        data: public,
    });
    Some((ke, shared))
}

/// Responder: the last exchange is done: the child is installed, or the IKE SA switches to the
/// new one once the response is sent.
fn finish_responder(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    s: Series,
    ke: Payload,
) -> Result<Reply, Error> {
    match s.purpose {
        Purpose::Child { old, spec } => {
            let child =
                make_rekeyed_child(sa, ctx, &spec, (&s.ni, &s.nr), &s.secrets, s.initiator)?;
            install_child(sa, ctx, child, Some(old));
            if sa.child_by_inbound(old).map(|c| c.state) == Some(ChildState::Installed) {
                retire_replaced(sa, ctx, old);
            }
            Ok(Reply::Send(vec![ke]))
        }
        Purpose::Ike { spis, algs } => {
            let core = rekeyed_core(sa, s.initiator, spis, algs, &s.secrets, (&s.ni, &s.nr))?;
            note_post_quantum(sa, algs.addke.methods());
            Ok(Reply::SendThenSwitch(vec![ke], Box::new(core)))
        }
    }
}

#[cfg(test)]
#[path = "followup_tests.rs"]
mod tests;
