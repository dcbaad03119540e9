//! IKE_AUTH (RFC 7296 1.2, 2.15) with the first child SA (2.9): in transport mode where the
//! responder accepts it, else in tunnel mode (1.3.1); with an internal address the responder
//! assigns when we ask for one (3.15).
//!
//! The peer's AUTH is checked with keys the agent supplies asynchronously: the first time a
//! signature must be verified the exchange pauses with `Event::NeedPeerKey`.

use std::net::IpAddr;
use std::time::Duration;

use super::tasks::{Outcome, Reply, Step, Task};
use super::{Child, ChildState, Ctx, IkeSa, Lease, PeerKeys, Phase};
use crate::auth;
use crate::config::{AddressRequest, LocalAuth};
use crate::error::{Error, LocalError, PeerError};
use crate::event::{ChildSa, CloseReason, Event, Mode, PeerAuth};
use crate::keys::{child_keys, Secrets};
use crate::proposal::{check_esp, esp_offer, esp_reply, select_esp, EspAlgs};
use crate::ts::{accept_pair, host_ts, narrow_pair};
use crate::wire::{
    find_notify, AuthMethodId, AuthPayload, CpPayload, ExchangeType, Identity, NotifyPayload,
    NotifyType, Payload, Payloads, TrafficSelector, TsPayload,
};

/// The identity we present and how we authenticate. An address identity behind a NAT gives way
/// to `Config::id_behind_nat`: the peer sees the NAT's address, and cannot check ours.
pub(crate) fn presentation(sa: &IkeSa, ctx: &Ctx<'_>) -> (Identity, LocalAuth) {
    let auth = ctx.config.local_auth.clone();
    if matches!(auth, LocalAuth::Null) {
        return (Identity::Null, LocalAuth::Null);
    }
    let address = matches!(ctx.config.local_id, Identity::Ipv4(_) | Identity::Ipv6(_));
    match (&ctx.config.id_behind_nat, sa.nat.0 && address) {
        (Some(Identity::Null), true) => (Identity::Null, LocalAuth::Null),
        (Some(id), true) => (id.clone(), auth),
        _ => (ctx.config.local_id.clone(), auth),
    }
}

/// What we present to a peer that authenticated with `peer`. As responder to a
/// NULL-authenticated initiator that announced no signature hash (RFC 7427 4): NULL too (RFC
/// 7619 3), since it can verify no signature of ours (method 1 needs SHA-1, which we never sign
/// with) and Libreswan's `authby=null` clients require it. A client that wants our signature
/// announces its hashes.
fn presentation_to(sa: &IkeSa, ctx: &Ctx<'_>, peer: PeerAuth) -> (Identity, LocalAuth) {
    if !sa.core.initiator && matches!(peer, PeerAuth::Null) && sa.peer_hashes.is_empty() {
        return (Identity::Null, LocalAuth::Null);
    }
    presentation(sa, ctx)
}

/// The mode and, for a client, the assigned address of a child an exchange creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) mode: Mode,
    pub(crate) virtual_ip: Option<IpAddr>,
}

/// Every address of a family, every protocol and port: what a client that asks for an internal
/// address offers as TSi, for the responder to narrow to the address it assigns (3.15, 2.9).
fn any_ts(v6: bool) -> TrafficSelector {
    let (start, end): (IpAddr, IpAddr) = if v6 {
        (
            std::net::Ipv6Addr::UNSPECIFIED.into(),
            std::net::Ipv6Addr::from(u128::MAX).into(),
        )
    } else {
        (
            std::net::Ipv4Addr::UNSPECIFIED.into(),
            std::net::Ipv4Addr::BROADCAST.into(),
        )
    };
    TrafficSelector {
        start,
        end,
        ..TrafficSelector::host(start)
    }
}

/// Whether an initiator asks for an internal address now.
fn wants_address(sa: &IkeSa, ctx: &Ctx<'_>) -> bool {
    match ctx.config.request_address {
        AddressRequest::Never => false,
        AddressRequest::BehindNat => sa.nat.0,
        AddressRequest::Always => true,
    }
}

fn notify(ty: NotifyType) -> Payload {
    Payload::Notify(NotifyPayload::new(ty, Vec::new()))
}

/// Our AUTH payload: the initiator signs RealMessage1 | Nr | prf(SK_pi, IDi'), the responder
/// RealMessage2 | Ni | prf(SK_pr, IDr') (2.15), each followed by IntAuth when IKE_INTERMEDIATE
/// exchanges took place (RFC 9242 3.3.2).
fn our_auth(
    sa: &IkeSa,
    ctx: &mut Ctx<'_>,
    (id, local_auth): &(Identity, LocalAuth),
) -> Result<AuthPayload, Error> {
    let keys = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let hs = &sa.handshake;
    let (msg, nonce, sk_p) = if sa.core.initiator {
        (&hs.init_request, &hs.nr, &keys.sk_pi)
    } else {
        (&hs.init_response, &hs.ni, &keys.sk_pr)
    };
    let mut octets = auth::signed_octets(msg, nonce, keys.prf, sk_p, id);
    octets.extend(hs.int_auth.octets());
    auth::build(
        local_auth,
        &sa.peer_hashes,
        &octets,
        keys.prf,
        sk_p,
        ctx.rng,
    )
}

/// Checks the peer's AUTH, or pauses for its keys. `Ok(None)` means paused.
fn check_peer(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    id: &Identity,
    auth_p: &AuthPayload,
) -> Result<Option<PeerAuth>, Error> {
    let keys = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let hs = &sa.handshake;
    let (msg, nonce, sk_p) = if sa.core.initiator {
        (&hs.init_response, &hs.ni, &keys.sk_pr)
    } else {
        (&hs.init_request, &hs.nr, &keys.sk_pi)
    };
    let mut octets = auth::signed_octets(msg, nonce, keys.prf, sk_p, id);
    octets.extend(hs.int_auth.octets());
    if auth_p.method == AuthMethodId::NULL {
        return auth::verify_null(
            auth_p,
            &octets,
            keys.prf,
            sk_p,
            ctx.config.accept_null_peers,
        )
        .map(Some);
    }
    if *id == Identity::Null {
        return Err(PeerError::Protocol("ID_NULL with a signature").into());
    }
    match &sa.peer_keys {
        PeerKeys::Supplied(k) => auth::verify_signature(auth_p, k, &octets).map(Some),
        PeerKeys::Refused => Err(PeerError::IdentityRefused(id.to_string()).into()),
        PeerKeys::Waiting => Ok(None),
        PeerKeys::NotAsked => {
            sa.peer_keys = PeerKeys::Waiting;
            let (identity, remote) = (id.clone(), sa.remote);
            sa.emit(ctx, Event::NeedPeerKey { identity, remote });
            Ok(None)
        }
    }
}

/// Initiator: IDi, AUTH, CP asking for an address (when we ask), USE_TRANSPORT_MODE, SA, TSi,
/// TSr. Waits for an inbound SPI first.
pub(crate) fn build_request(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    spi: &mut Option<u32>,
) -> Result<Step, Error> {
    if spi.is_none() {
        *spi = sa.take_spi(ctx);
    }
    let Some(spi) = *spi else {
        return Ok(Step::Wait);
    };
    // RFC 9242 3.3.2: IntAuth ends with the message ID of this request.
    sa.handshake.int_auth.auth_mid = sa.core.tm.next_mid;
    let us = presentation(sa, ctx);
    let auth_p = our_auth(sa, ctx, &us)?;
    sa.asked_address = wants_address(sa, ctx);
    let v6 = sa.local.ip().is_ipv6();
    let mut payloads = vec![Payload::IdI(us.0), Payload::Auth(auth_p)];
    // 3.15: a responder that assigns an address narrows TSi to it (a tunnel); one that assigns
    // none may still take transport mode (1.3.1) for our own address, which comes first.
    let mut tsi = vec![host_ts(sa.local.ip())];
    if sa.asked_address {
        payloads.push(Payload::Cp(CpPayload::request_address(v6)));
        tsi.push(any_ts(v6));
    }
    if ctx.config.transport_mode {
        payloads.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    payloads.extend([
        Payload::Sa(esp_offer(&ctx.config.esp_proposals, spi, None)),
        Payload::TsI(TsPayload(tsi)),
        Payload::TsR(TsPayload(vec![host_ts(sa.remote.ip())])),
    ]);
    Ok(Step::Send(ExchangeType::IKE_AUTH, payloads))
}

/// Initiator: the IKE_AUTH response.
pub(crate) fn on_response(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    spi: Option<u32>,
    p: Vec<Payload>,
) -> Result<Outcome, Error> {
    let idr = p.id_r();
    let auth_p = p.auth();
    let (Some(idr), Some(auth_p)) = (idr.cloned(), auth_p.cloned()) else {
        let err = p.iter().find_map(|x| match x {
            Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
            _ => None,
        });
        return Err(err
            .map_or(PeerError::MissingPayload("IDr/AUTH"), PeerError::Notified)
            .into());
    };
    let Some(peer_auth) = check_peer(sa, ctx, &idr, &auth_p)? else {
        return Ok(Outcome::Pause(Task::IkeAuth { spi }, p));
    };
    established(sa, ctx, idr, peer_auth);
    let child = spi
        .ok_or(LocalError::Config("no SPI"))
        .map_err(Error::from)
        .and_then(|spi| initiator_child(sa, ctx, spi, &p));
    match child {
        Ok(c) => install_child(sa, ctx, c, None),
        // 1.2: a failed child does not fail the IKE SA.
        Err(e) => super::info::refuse_child(sa, ctx, spi, &p, e),
    }
    sa.handshake = Default::default();
    Ok(Outcome::Done)
}

fn initiator_child(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    spi: u32,
    p: &[Payload],
) -> Result<ChildSa, Error> {
    if let Some(n) = p.iter().find_map(|x| match x {
        Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
        _ => None,
    }) {
        return Err(PeerError::Notified(n).into());
    }
    let sa_p = p.sa().ok_or(PeerError::MissingPayload("SA"))?;
    let (outbound, algs) =
        check_esp(sa_p, &ctx.config.esp_proposals).ok_or(PeerError::BadProposal)?;
    let shape = initiator_shape(sa, ctx, p)?;
    let (tsi, tsr) = child_ts(p)?;
    // Our side is the assigned address, exactly; without one, our address (which a NAT hides).
    let (offered_i, local) = match shape.virtual_ip {
        Some(vip) => (any_ts(vip.is_ipv6()), (vip, false)),
        None => (host_ts(sa.local.ip()), (sa.local.ip(), sa.nat.0)),
    };
    let offered = (offered_i, host_ts(sa.remote.ip()));
    let remote = (sa.remote.ip(), sa.nat.1);
    let (tsi, tsr) = accept_pair((&tsi, &tsr), (&offered.0, &offered.1), local, remote)
        .ok_or(PeerError::TrafficSelectors)?;
    let (ni, nr) = (sa.handshake.ni.clone(), sa.handshake.nr.clone());
    make_child(
        sa,
        ctx,
        spi,
        outbound,
        algs,
        (vec![tsi], vec![tsr]),
        &ni,
        &nr,
        &Secrets::default(),
        shape,
    )
}

/// The mode the responder chose (1.3.1: transport only if it answered USE_TRANSPORT_MODE to our
/// proposal of it) and, in a tunnel, the address it assigned if we asked (3.15).
fn initiator_shape(sa: &IkeSa, ctx: &Ctx<'_>, p: &[Payload]) -> Result<Shape, Error> {
    let transport = find_notify(p, NotifyType::USE_TRANSPORT_MODE).is_some();
    if transport && !ctx.config.transport_mode {
        return Err(PeerError::Protocol("transport mode, which we did not propose").into());
    }
    if transport {
        return Ok(Shape {
            mode: Mode::Transport,
            virtual_ip: None,
        });
    }
    let v6 = sa.local.ip().is_ipv6();
    let virtual_ip = p
        .cp()
        .filter(|_| sa.asked_address)
        .and_then(|cp| cp.assigned_address(v6));
    Ok(Shape {
        mode: Mode::Tunnel,
        virtual_ip,
    })
}

pub(crate) fn child_ts(
    p: &[Payload],
) -> Result<(Vec<TrafficSelector>, Vec<TrafficSelector>), Error> {
    let tsi = p.ts_i().ok_or(PeerError::MissingPayload("TSi"))?;
    let tsr = p.ts_r().ok_or(PeerError::MissingPayload("TSr"))?;
    Ok((tsi.0.clone(), tsr.0.clone()))
}

/// Builds a child SA from negotiated parameters. `ts` is (TSi, TSr) as on the wire.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_child(
    sa: &IkeSa,
    ctx: &Ctx<'_>,
    inbound: u32,
    outbound: u32,
    algs: EspAlgs,
    ts: (Vec<TrafficSelector>, Vec<TrafficSelector>),
    ni: &[u8],
    nr: &[u8],
    secrets: &Secrets,
    shape: Shape,
) -> Result<ChildSa, Error> {
    let keys = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let ck = child_keys(
        keys.prf,
        &keys.sk_d,
        secrets,
        ni,
        nr,
        &algs,
        sa.core.initiator,
    )?;
    let (local_ts, remote_ts) = if sa.core.initiator { ts } else { (ts.1, ts.0) };
    let encap = (sa.nat.0 || sa.nat.1).then_some((sa.local.port(), sa.remote.port()));
    Ok(ChildSa {
        inbound_spi: inbound,
        outbound_spi: outbound,
        local: sa.local.ip(),
        remote: sa.remote.ip(),
        local_ts,
        remote_ts,
        encr: algs.encr,
        integ: algs.integ,
        keys: ck,
        lifetime: ctx.config.child_lifetime,
        encap,
        mode: shape.mode,
        virtual_ip: shape.virtual_ip,
    })
}

/// Records a child, arms its rekey timer and tells the agent.
pub(crate) fn install_child(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    child: ChildSa,
    replaces: Option<u32>,
) {
    let rekey_at = ctx.now + jitter(ctx, ctx.config.child_lifetime.soft);
    let c = Child {
        sa: child.clone(),
        rekey_at,
        state: ChildState::Installed,
        retire_at: None,
        collision: None,
    };
    sa.children.push(c);
    sa.emit(
        ctx,
        Event::ChildSaReady {
            child: Box::new(child),
            replaces,
        },
    );
}

/// Up to 10% earlier, so both peers rarely rekey at the same moment (2.8.1 collisions).
pub(crate) fn jitter(ctx: &mut Ctx<'_>, d: Duration) -> Duration {
    let spread = d.as_millis() / 10;
    let r = u128::from(ctx.rng.next_u32()) % spread.max(1);
    d.saturating_sub(Duration::from_millis(u64::try_from(r).unwrap_or(0)))
}

fn established(sa: &mut IkeSa, ctx: &mut Ctx<'_>, peer_id: Identity, peer_auth: PeerAuth) {
    let presented = presentation_to(sa, ctx, peer_auth).0;
    sa.phase = Phase::Established;
    sa.created = ctx.now;
    sa.peer_id = Some(peer_id.clone());
    sa.peer_auth = Some((peer_auth, ctx.now));
    sa.rekey_at = Some(ctx.now + jitter(ctx, ctx.config.ike_lifetime.soft));
    let (nat_local, nat_remote) = sa.nat;
    sa.emit(
        ctx,
        Event::IkeSaEstablished {
            peer_id,
            peer_auth,
            nat_local,
            nat_remote,
            presented,
        },
    );
}

/// Responder: the IKE_AUTH request.
pub(crate) fn respond(sa: &mut IkeSa, ctx: &mut Ctx<'_>, p: &[Payload]) -> Result<Reply, Error> {
    if sa.phase != Phase::Connecting || sa.core.initiator {
        return Err(PeerError::Protocol("IKE_AUTH on an established SA").into());
    }
    // RFC 9370 2.2.2: every negotiated additional key exchange comes before IKE_AUTH.
    let rounds = sa.core.algs.map_or(0, |a| a.addke.count());
    if sa.handshake.int_auth.done < rounds {
        return Err(PeerError::Protocol("IKE_AUTH before the additional key exchanges").into());
    }
    sa.handshake.int_auth.auth_mid = sa.core.tm.peer_mid;
    let idi = p.id_i().ok_or(PeerError::MissingPayload("IDi"))?;
    let auth_p = p.auth().ok_or(PeerError::MissingPayload("AUTH"))?;
    // Ask for the SPI and the keys at once, so the agent can fetch both in parallel.
    let spi = sa.take_spi(ctx);
    let peer_auth = match check_peer(sa, ctx, idi, auth_p) {
        Ok(Some(a)) => a,
        Ok(None) => {
            // Keep the SPI for when the keys arrive.
            sa.spis.extend(spi);
            return Ok(Reply::Pause);
        }
        Err(e) => {
            let reason = match e {
                Error::Peer(PeerError::IdentityRefused(_)) => CloseReason::Refused,
                e => CloseReason::Failed(e),
            };
            if let Some(s) = spi {
                sa.spis.push_front(s);
            }
            return Ok(Reply::SendThenClose(
                vec![notify(NotifyType::AUTHENTICATION_FAILED)],
                reason,
            ));
        }
    };
    let Some(spi) = spi else {
        return Ok(Reply::Pause);
    };
    let Some(lease) = lease(sa, ctx, p) else {
        sa.spis.push_front(spi);
        return Ok(Reply::Pause);
    };
    let us = presentation_to(sa, ctx, peer_auth);
    let mut out = vec![
        Payload::IdR(us.0.clone()),
        Payload::Auth(our_auth(sa, ctx, &us)?),
    ];
    established(sa, ctx, idi.clone(), peer_auth);
    match responder_child(sa, ctx, spi, p, lease) {
        Ok((child, reply)) => {
            out.extend(reply);
            install_child(sa, ctx, child, None);
        }
        Err(ty) => {
            sa.spis.push_front(spi);
            out.push(notify(ty));
        }
    }
    sa.handshake = Default::default();
    Ok(Reply::Send(out))
}

/// Responder: the address assigned to a peer that asked for one (3.15), `Some(None)` when it
/// did not ask or the agent has none to give; `None` while the agent decides.
fn lease(sa: &mut IkeSa, ctx: &mut Ctx<'_>, p: &[Payload]) -> Option<Option<IpAddr>> {
    let v6 = sa.remote.ip().is_ipv6();
    if !p.cp().is_some_and(|cp| cp.asks_address(v6)) {
        return Some(None);
    }
    match sa.lease {
        Lease::Decided(a) => Some(a),
        Lease::Waiting => None,
        Lease::NotAsked => {
            sa.lease = Lease::Waiting;
            sa.emit(ctx, Event::NeedAddress { v6 });
            None
        }
    }
}

/// Responder side of child negotiation; an error is the notification to answer with. We accept
/// transport mode when the initiator proposes it and tunnel mode otherwise (1.3.1), for the two
/// hosts, or for our host and the address we assigned the peer.
pub(crate) fn responder_child(
    sa: &IkeSa,
    ctx: &Ctx<'_>,
    spi: u32,
    p: &[Payload],
    lease: Option<IpAddr>,
) -> Result<(ChildSa, Vec<Payload>), NotifyType> {
    let sa_p = p.sa().ok_or(NotifyType::NO_PROPOSAL_CHOSEN)?;
    let transport = ctx.config.transport_mode
        && find_notify(p, NotifyType::USE_TRANSPORT_MODE).is_some()
        && lease.is_none();
    let (outbound, algs, number) =
        select_esp(sa_p, &ctx.config.esp_proposals, None).ok_or(NotifyType::NO_PROPOSAL_CHOSEN)?;
    let (tsi, tsr) = child_ts(p).map_err(|_| NotifyType::TS_UNACCEPTABLE)?;
    // Inside a tunnel the peer's packets carry the address it names, which a NAT does not
    // translate; the kernel may only get the address we see or one we assigned (2.23, 3.15),
    // so behind a NAT without an assigned address the child could never carry its traffic.
    if !transport && lease.is_none() && sa.nat.1 {
        return Err(NotifyType::TS_UNACCEPTABLE);
    }
    let remote = match lease {
        Some(a) => (a, false),
        None => (sa.remote.ip(), sa.nat.1),
    };
    let local = (sa.local.ip(), sa.nat.0);
    let ((tsi_reply, tsi), (tsr_reply, tsr)) =
        narrow_pair(&tsi, &tsr, remote, local).ok_or(NotifyType::TS_UNACCEPTABLE)?;
    let (ni, nr) = (&sa.handshake.ni, &sa.handshake.nr);
    let mode = if transport {
        Mode::Transport
    } else {
        Mode::Tunnel
    };
    let shape = Shape {
        mode,
        virtual_ip: None,
    };
    let child = make_child(
        sa,
        ctx,
        spi,
        outbound,
        algs,
        (vec![tsi], vec![tsr]),
        ni,
        nr,
        &Secrets::default(),
        shape,
    )
    .map_err(|_| NotifyType::NO_PROPOSAL_CHOSEN)?;
    let mut reply = Vec::new();
    if transport {
        reply.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    if let Some(a) = lease {
        reply.push(Payload::Cp(CpPayload::reply_address(a)));
    }
    reply.extend([
        Payload::Sa(esp_reply(number, algs, spi, None)),
        Payload::TsI(TsPayload(vec![tsi_reply])),
        Payload::TsR(TsPayload(vec![tsr_reply])),
    ]);
    Ok((child, reply))
}
