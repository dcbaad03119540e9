//! INFORMATIONAL exchanges: deleting child SAs and the IKE SA (RFC 7296 1.4.1), liveness checks
//! (2.4), and the last exchange on an IKE SA retired by a rekey (2.18).

use super::tasks::{matches_core, Reply, Step, Task};
use super::{ChildState, Ctx, IkeSa, Phase};
use crate::error::Error;
use crate::event::{CloseReason, Event};
use crate::wire::{
    DeletePayload, ExchangeType, Message, NotifyPayload, NotifyType, Payload, ProtocolId,
};

pub(crate) fn build_delete_child(sa: &mut IkeSa, spi: u32) -> Step {
    let Some(c) = sa.child_by_inbound(spi) else {
        return Step::Skip;
    };
    c.state = ChildState::Deleting;
    let d = DeletePayload {
        protocol: ProtocolId::ESP,
        spis: vec![spi],
    };
    Step::Send(ExchangeType::INFORMATIONAL, vec![Payload::Delete(d)])
}

pub(crate) fn build_delete_ike(sa: &mut IkeSa) -> Step {
    if sa.phase == Phase::Connecting && sa.core.keys.is_none() {
        return Step::Skip;
    }
    sa.phase = Phase::Closing;
    let d = DeletePayload {
        protocol: ProtocolId::IKE,
        spis: Vec::new(),
    };
    Step::Send(ExchangeType::INFORMATIONAL, vec![Payload::Delete(d)])
}

/// Deletes the IKE SA without waiting for the peer (strongSwan's forced delete): one
/// INFORMATIONAL request with a Delete payload (RFC 7296 1.4.1), never retransmitted, and the SA
/// and its children are gone at once. For shedding state under pressure: a peer that never
/// answers cannot keep it alive for the retransmission schedule. The Delete is sent only when no
/// request of ours is in flight (its message ID would be taken); either way the SA closes.
pub(crate) fn delete_now(sa: &mut IkeSa, ctx: &mut Ctx<'_>) {
    let idle = sa.core.tm.active.is_none();
    if idle && sa.core.keys.is_some() && sa.phase == Phase::Established {
        let d = Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE,
            spis: Vec::new(),
        });
        let mid = sa.core.tm.next_mid;
        let sealed = super::protect::seal(
            sa,
            &sa.core,
            ctx,
            ExchangeType::INFORMATIONAL,
            mid,
            false,
            &[d],
        );
        for datagram in sealed.iter().flatten() {
            sa.send(ctx, datagram);
        }
    }
    sa.close(ctx, CloseReason::Local);
}

/// INFORMATIONAL with AUTHENTICATION_FAILED and a Delete of the IKE SA (RFC 7296 2.21.2, 1.4.1).
pub(crate) fn build_abort_auth(sa: &mut IkeSa) -> Step {
    sa.phase = Phase::Closing;
    let d = DeletePayload {
        protocol: ProtocolId::IKE,
        spis: Vec::new(),
    };
    let failed = Payload::Notify(NotifyPayload::new(
        NotifyType::AUTHENTICATION_FAILED,
        Vec::new(),
    ));
    Step::Send(
        ExchangeType::INFORMATIONAL,
        vec![failed, Payload::Delete(d)],
    )
}

/// The child SA the responder created for us cannot be used (its proposal, mode or selectors
/// are unacceptable): report it, and if the responder installed its half (its answer carried an
/// SA payload and no error), delete that half (RFC 7296 2.9, 1.4.1). The inbound SPI stays
/// unused then, since the peer may still send to it until it processes the delete.
pub(crate) fn refuse_child(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    spi: Option<u32>,
    answer: &[Payload],
    error: Error,
) {
    let created = answer.iter().any(|p| matches!(p, Payload::Sa(_)))
        && !answer
            .iter()
            .any(|p| matches!(p, Payload::Notify(n) if n.ty.is_error()));
    match spi {
        Some(spi) if created => sa.queue(Task::DeleteRefused(spi)),
        spi => sa.spis.extend(spi),
    }
    sa.emit(ctx, Event::ChildSaFailed { error });
}

/// INFORMATIONAL with a Delete of the child the responder made for us and we refused.
pub(crate) fn build_delete_refused(spi: u32) -> Step {
    let d = DeletePayload {
        protocol: ProtocolId::ESP,
        spis: vec![spi],
    };
    Step::Send(ExchangeType::INFORMATIONAL, vec![Payload::Delete(d)])
}

/// Removes a child and tells the agent.
pub(crate) fn remove_child(sa: &mut IkeSa, ctx: &mut Ctx<'_>, inbound: u32) {
    if let Some(i) = sa.children.iter().position(|c| c.sa.inbound_spi == inbound) {
        let c = sa.children.swap_remove(i);
        let (inbound_spi, outbound_spi) = (c.sa.inbound_spi, c.sa.outbound_spi);
        sa.emit(
            ctx,
            Event::ChildSaDeleted {
                inbound_spi,
                outbound_spi,
            },
        );
    }
}

pub(crate) fn on_delete_child_response(sa: &mut IkeSa, ctx: &mut Ctx<'_>, spi: u32) {
    remove_child(sa, ctx, spi);
}

/// Responder for INFORMATIONAL: deletes, liveness (empty), notifications (ignored).
pub(crate) fn respond(sa: &mut IkeSa, ctx: &mut Ctx<'_>, p: &[Payload]) -> Result<Reply, Error> {
    let deletes = p.iter().filter_map(|x| {
        if let Payload::Delete(d) = x {
            Some(d)
        } else {
            None
        }
    });
    let mut ours = Vec::new();
    for d in deletes {
        if d.protocol == ProtocolId::IKE {
            return Ok(Reply::SendThenClose(Vec::new(), CloseReason::PeerDeleted));
        }
        if d.protocol != ProtocolId::ESP {
            continue;
        }
        for &spi in &d.spis {
            let Some(c) = sa.child_by_outbound(spi) else {
                continue;
            };
            // 1.4.1: answer with the paired SA, unless we are deleting it ourselves already.
            let (inbound, deleting) = (c.sa.inbound_spi, c.state == ChildState::Deleting);
            if !deleting {
                ours.push(inbound);
            }
            remove_child(sa, ctx, inbound);
        }
    }
    if ours.is_empty() {
        return Ok(Reply::Send(Vec::new()));
    }
    Ok(Reply::Send(vec![Payload::Delete(DeletePayload {
        protocol: ProtocolId::ESP,
        spis: ours,
    })]))
}

/// A message on the IKE SA we rekeyed away from: the delete for it, or the answer to ours.
pub(crate) fn handle_retiring(sa: &mut IkeSa, ctx: &mut Ctx<'_>, datagram: &[u8], msg: Message) {
    let Some(mut old) = sa.retiring.take() else {
        return;
    };
    if !matches_core(&old, &msg.header) {
        sa.retiring = Some(old);
        return;
    }
    // Our response to the request that rekeyed it (RFC 7296 2.18) may have been lost (2.1).
    let h = msg.header;
    if !h.is_response() && h.message_id.wrapping_add(1) == old.tm.peer_mid {
        sa.replay_from(&old, ctx, h.message_id, datagram);
        sa.retiring = Some(old);
        return;
    }
    // Open with the old keys by swapping them in for the call.
    std::mem::swap(&mut sa.core, &mut old);
    let opened = super::protect::open(sa, datagram, &msg);
    std::mem::swap(&mut sa.core, &mut old);
    let Some(super::protect::Opened::Whole(payloads)) = opened else {
        sa.retiring = Some(old);
        return;
    };
    if h.is_response() {
        // The answer to our delete of the old SA: it is gone.
        return;
    }
    let delete_ike = payloads
        .iter()
        .any(|p| matches!(p, Payload::Delete(d) if d.protocol == ProtocolId::IKE));
    if h.message_id != old.tm.peer_mid {
        sa.retiring = Some(old);
        return;
    }
    match super::protect::seal(sa, &old, ctx, h.exchange, h.message_id, true, &[]) {
        Ok(d) => d.iter().for_each(|d| sa.send(ctx, d)),
        Err(_) => return,
    }
    old.tm.peer_mid = h.message_id.wrapping_add(1);
    if !delete_ike {
        sa.retiring = Some(old);
    }
}
