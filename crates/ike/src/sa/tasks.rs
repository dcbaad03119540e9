//! The task manager (strongSwan `task_manager_v2.c`): one request in flight with retransmission
//! and backoff as initiator, in-order requests and a replay cache as responder (RFC 7296 2.1,
//! 2.2), and the dispatch of decrypted messages to the exchange modules.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::protect::Opened;
use super::replay::{request_id, Replay, RequestId};
use super::{authx, info, init, intermediate, protect, rekey, Core, Ctx, IkeSa, Phase};
use crate::error::{Error, LocalError, PeerError};
use crate::event::CloseReason;
use crate::wire::{ExchangeType, Header, Message, NotifyPayload, Payload};

/// An exchange we initiate.
#[derive(Debug)]
pub(crate) enum Task {
    IkeInit,
    /// One additional key exchange (RFC 9370) in IKE_INTERMEDIATE, before IKE_AUTH.
    Intermediate(intermediate::Intermediate),
    IkeAuth {
        spi: Option<u32>,
    },
    ChildRekey(rekey::ChildRekey),
    IkeRekey(rekey::IkeRekey),
    DeleteChild(u32),
    /// Delete the responder's half of a child we refused (by our inbound SPI); we hold none.
    DeleteRefused(u32),
    DeleteIke,
    /// The initiator could not authenticate the responder after IKE_AUTH: tell it (AUTHENTICATION_FAILED)
    /// and delete the IKE SA, so the responder removes the child SA it already installed; then close
    /// with this reason.
    AbortAuth(CloseReason),
    Liveness,
}

impl Task {
    fn same_kind(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::ChildRekey(a), Self::ChildRekey(b)) => a.old == b.old,
            (Self::DeleteChild(a), Self::DeleteChild(b)) => a == b,
            (Self::DeleteRefused(a), Self::DeleteRefused(b)) => a == b,
            _ => core::mem::discriminant(self) == core::mem::discriminant(other),
        }
    }
}

/// The request in flight.
#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) task: Task,
    pub(crate) mid: u32,
    pub(crate) datagrams: Vec<Vec<u8>>,
    /// Transmissions so far.
    pub(crate) sends: u32,
    /// Next retransmission; None once answered.
    pub(crate) deadline: Option<Instant>,
    /// A response that waits for an input from the agent (the peer's keys).
    pub(crate) answered: Option<Vec<Payload>>,
}

/// A peer request that waits for an input from the agent (keys or an SPI).
#[derive(Debug)]
pub(crate) struct Paused {
    pub(crate) mid: u32,
    pub(crate) exchange: ExchangeType,
    pub(crate) payloads: Vec<Payload>,
}

/// What building a request gave.
#[derive(Debug)]
pub(crate) enum Step {
    Send(ExchangeType, Vec<Payload>),
    /// Waiting for the agent (an SPI): keep the task at the head of the queue.
    Wait,
    /// The task no longer applies (its child is gone): drop it.
    Skip,
}

/// What a responder handler decided.
#[derive(Debug)]
pub(crate) enum Reply {
    Send(Vec<Payload>),
    /// Wait for the agent; the request is kept and re-run on input.
    Pause,
    /// Send, then close the IKE SA.
    SendThenClose(Vec<Payload>, CloseReason),
    /// Send with the current keys, then switch to a rekeyed IKE SA (RFC 7296 2.18).
    SendThenSwitch(Vec<Payload>, Box<Core>),
    /// Send with the current keys, then use these (RFC 9370 2.2.2, after IKE_INTERMEDIATE).
    SendThenRekeys(Vec<Payload>, Box<crate::keys::IkeKeys>),
}

/// What an initiator handler decided about a response.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done,
    /// Wait for the agent, then call the handler again with the same payloads.
    Pause(Task, Vec<Payload>),
}

/// Message IDs, the queue, the request in flight and the replay cache of one IKE SA.
#[derive(Debug, Default)]
pub(crate) struct TaskManager {
    pub(crate) next_mid: u32,
    /// The message ID of the next request we expect from the peer.
    pub(crate) peer_mid: u32,
    pub(crate) queue: VecDeque<Task>,
    pub(crate) active: Option<Active>,
    /// Our last response (RFC 7296 2.1: replay, don't recompute).
    pub(crate) cache: Option<Replay>,
    /// The request being answered: its first datagram, as [`Replay`] keys it.
    pub(crate) request: Option<RequestId>,
    pub(crate) paused: Option<Paused>,
    pub(crate) reassembly: protect::Reassembly,
}

impl IkeSa {
    /// Queues a task unless the same one is already queued or running.
    pub(crate) fn queue(&mut self, task: Task) {
        let tm = &mut self.core.tm;
        let running = tm.active.as_ref().is_some_and(|a| a.task.same_kind(&task));
        if !running && !tm.queue.iter().any(|t| t.same_kind(&task)) {
            tm.queue.push_back(task);
        }
    }

    /// Starts the next queued task if nothing is in flight.
    pub(crate) fn kick(&mut self, ctx: &mut Ctx<'_>) {
        while self.core.tm.active.is_none() && !self.is_closed() {
            let Some(mut task) = self.core.tm.queue.pop_front() else {
                return;
            };
            match self.build(ctx, &mut task) {
                Ok(Step::Send(exchange, payloads)) => {
                    if let Err(e) = self.send_request(ctx, task, exchange, &payloads) {
                        self.fail(ctx, e);
                    }
                }
                Ok(Step::Wait) => {
                    self.core.tm.queue.push_front(task);
                    return;
                }
                Ok(Step::Skip) => {}
                Err(e) => self.fail(ctx, e),
            }
        }
    }

    fn build(&mut self, ctx: &mut Ctx<'_>, task: &mut Task) -> Result<Step, Error> {
        match task {
            Task::IkeInit => init::build_request(self, ctx).map(|(x, p)| Step::Send(x, p)),
            Task::Intermediate(t) => intermediate::build(self, ctx, t),
            Task::IkeAuth { spi } => authx::build_request(self, ctx, spi),
            Task::ChildRekey(t) => rekey::build_child(self, ctx, t),
            Task::IkeRekey(t) => rekey::build_ike(self, ctx, t),
            Task::DeleteChild(spi) => Ok(info::build_delete_child(self, *spi)),
            Task::DeleteRefused(spi) => Ok(info::build_delete_refused(*spi)),
            Task::DeleteIke => Ok(info::build_delete_ike(self)),
            Task::AbortAuth(_) => Ok(info::build_abort_auth(self)),
            Task::Liveness => Ok(Step::Send(ExchangeType::INFORMATIONAL, Vec::new())),
        }
    }

    /// Seals (except IKE_SA_INIT, which `init` encodes itself), sends and arms the timer.
    fn send_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        task: Task,
        exchange: ExchangeType,
        payloads: &[Payload],
    ) -> Result<(), Error> {
        let mid = self.core.tm.next_mid;
        let datagrams = if exchange == ExchangeType::IKE_SA_INIT {
            vec![self.handshake.init_request.clone()]
        } else {
            protect::seal(self, &self.core, ctx, exchange, mid, false, payloads)?
        };
        self.transmit_request(ctx, task, mid, datagrams);
        Ok(())
    }

    pub(crate) fn transmit_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        task: Task,
        mid: u32,
        datagrams: Vec<Vec<u8>>,
    ) {
        for d in &datagrams {
            self.send(ctx, d);
        }
        let deadline = Some(ctx.now + ctx.config.retransmit.timeout(0));
        self.core.tm.active = Some(Active {
            task,
            mid,
            datagrams,
            sends: 1,
            deadline,
            answered: None,
        });
    }

    /// Retransmits or gives up (strongSwan: 4 s x 1.8^n, 5 retransmissions).
    pub(crate) fn retransmit(&mut self, ctx: &mut Ctx<'_>) {
        let r = ctx.config.retransmit;
        let now = ctx.now;
        let due = |core: &Core| {
            core.tm
                .active
                .as_ref()
                .and_then(|a| a.deadline)
                .is_some_and(|d| d <= now)
        };
        if self.retiring.as_ref().is_some_and(due) {
            self.retransmit_retiring(ctx);
        }
        if !due(&self.core) {
            return;
        }
        let Some(active) = self.core.tm.active.as_mut() else {
            return;
        };
        if active.sends > r.tries {
            if let Task::AbortAuth(reason) = &active.task {
                let reason = reason.clone();
                return self.close(ctx, reason);
            }
            return self.fail(ctx, LocalError::Timeout.into());
        }
        active.deadline = Some(ctx.now + r.timeout(active.sends));
        active.sends += 1;
        let datagrams = active.datagrams.clone();
        for d in &datagrams {
            self.send(ctx, d);
        }
    }

    /// Retransmits the delete of the IKE SA we rekeyed away from; once it goes unanswered after
    /// all tries the old SA is simply forgotten (its peer expires it, RFC 7296 2.18).
    fn retransmit_retiring(&mut self, ctx: &mut Ctx<'_>) {
        let r = ctx.config.retransmit;
        let Some(active) = self.retiring.as_mut().and_then(|c| c.tm.active.as_mut()) else {
            return;
        };
        if active.sends > r.tries {
            self.retiring = None;
            return;
        }
        active.deadline = Some(ctx.now + r.timeout(active.sends));
        active.sends += 1;
        let datagrams = active.datagrams.clone();
        for d in &datagrams {
            self.send(ctx, d);
        }
    }

    /// The earliest retransmission deadline.
    pub(crate) fn retransmit_deadline(&self) -> Option<Instant> {
        let a = self.core.tm.active.as_ref().and_then(|a| a.deadline);
        let b = self
            .retiring
            .as_ref()
            .and_then(|c| c.tm.active.as_ref())
            .and_then(|a| a.deadline);
        a.into_iter().chain(b).min()
    }

    /// A decrypted response to our request in flight.
    pub(crate) fn on_response(&mut self, ctx: &mut Ctx<'_>, payloads: Vec<Payload>) {
        let Some(active) = self.core.tm.active.take() else {
            return;
        };
        self.core.tm.next_mid = active.mid.wrapping_add(1);
        self.finish_response(ctx, active.task, active.mid, payloads);
    }

    fn finish_response(&mut self, ctx: &mut Ctx<'_>, task: Task, mid: u32, payloads: Vec<Payload>) {
        let was_auth = matches!(task, Task::IkeAuth { .. });
        let result = match task {
            Task::IkeInit => Ok(Outcome::Done),
            Task::Intermediate(t) => intermediate::on_response(self, t, &payloads),
            Task::IkeAuth { spi } => authx::on_response(self, ctx, spi, payloads),
            Task::ChildRekey(t) => {
                rekey::on_child_response(self, ctx, t, &payloads).map(|()| Outcome::Done)
            }
            Task::IkeRekey(t) => {
                rekey::on_ike_response(self, ctx, t, &payloads).map(|()| Outcome::Done)
            }
            Task::DeleteChild(spi) => {
                info::on_delete_child_response(self, ctx, spi);
                Ok(Outcome::Done)
            }
            Task::DeleteRefused(_) => Ok(Outcome::Done),
            Task::DeleteIke => {
                self.close(ctx, CloseReason::Local);
                Ok(Outcome::Done)
            }
            Task::AbortAuth(reason) => {
                self.close(ctx, reason);
                Ok(Outcome::Done)
            }
            Task::Liveness => Ok(Outcome::Done),
        };
        match result {
            Ok(Outcome::Done) => self.kick(ctx),
            Ok(Outcome::Pause(task, payloads)) => {
                let answered = Some(payloads);
                let active = Active {
                    task,
                    mid,
                    datagrams: Vec::new(),
                    sends: 0,
                    deadline: None,
                    answered,
                };
                self.core.tm.active = Some(active);
            }
            // RFC 7296 2.21.2: the responder already installed its child SA; leaving it would drop our
            // cleartext to it. Tell it, and delete the IKE SA.
            // (Not when the response itself was an error notification: then the responder kept nothing.)
            Err(e)
                if was_auth
                    && self.core.initiator
                    && self.core.keys.is_some()
                    && !matches!(e, Error::Peer(PeerError::Notified(_))) =>
            {
                self.abort_auth(ctx, e)
            }
            Err(e) => self.fail(ctx, e),
        }
    }

    /// Queues [`Task::AbortAuth`] in place of everything else.
    fn abort_auth(&mut self, ctx: &mut Ctx<'_>, e: Error) {
        let reason = match e {
            Error::Peer(PeerError::IdentityRefused(_)) => CloseReason::Refused,
            e => CloseReason::Failed(e),
        };
        self.core.tm.queue.clear();
        self.queue(Task::AbortAuth(reason));
        self.kick(ctx);
    }

    /// A decrypted request from the peer, already checked to carry the expected message ID.
    pub(crate) fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        mid: u32,
        exchange: ExchangeType,
        payloads: Vec<Payload>,
    ) {
        let reply = match exchange {
            ExchangeType::IKE_AUTH => authx::respond(self, ctx, &payloads),
            ExchangeType::IKE_INTERMEDIATE => intermediate::respond(self, ctx, mid, &payloads),
            ExchangeType::CREATE_CHILD_SA => rekey::respond(self, ctx, &payloads),
            ExchangeType::INFORMATIONAL => info::respond(self, ctx, &payloads),
            _ => Err(PeerError::Protocol("unexpected exchange type").into()),
        };
        let (out, after) = match reply {
            Ok(Reply::Pause) => {
                self.core.tm.paused = Some(Paused {
                    mid,
                    exchange,
                    payloads,
                });
                return;
            }
            Ok(Reply::Send(p)) => (p, None),
            Ok(Reply::SendThenClose(p, reason)) => (p, Some(After::Close(reason))),
            Ok(Reply::SendThenSwitch(p, core)) => (p, Some(After::Switch(core))),
            Ok(Reply::SendThenRekeys(p, keys)) => (p, Some(After::Keys(keys))),
            Err(e) => {
                let notify = e
                    .notify()
                    .map(|ty| Payload::Notify(NotifyPayload::new(ty, Vec::new())));
                // A failed IKE_AUTH ends the IKE SA (RFC 7296 2.21.2), as does a failed
                // IKE_INTERMEDIATE before it; other exchanges don't.
                let setup = [ExchangeType::IKE_AUTH, ExchangeType::IKE_INTERMEDIATE];
                let after = setup
                    .contains(&exchange)
                    .then(|| After::Close(CloseReason::Failed(e)));
                (notify.into_iter().collect(), after)
            }
        };
        self.send_response(ctx, mid, exchange, &out);
        match after {
            Some(After::Close(reason)) => self.close(ctx, reason),
            Some(After::Switch(core)) => rekey::switch_core(self, ctx, *core),
            Some(After::Keys(keys)) => self.core.keys = Some(*keys),
            None => {}
        }
        self.kick(ctx);
    }

    /// Seals and sends a response and keeps it for replay.
    pub(crate) fn send_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        mid: u32,
        exchange: ExchangeType,
        payloads: &[Payload],
    ) {
        match protect::seal(self, &self.core, ctx, exchange, mid, true, payloads) {
            Ok(datagrams) => {
                for d in &datagrams {
                    self.send(ctx, d);
                }
                let request = self.core.tm.request.take().unwrap_or_default();
                self.core.tm.cache = Some(Replay::new(mid, request, datagrams));
                self.core.tm.peer_mid = mid.wrapping_add(1);
            }
            Err(e) => self.fail(ctx, e),
        }
    }

    /// Re-runs whatever waited for the agent's input.
    pub(crate) fn resume(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(p) = self.core.tm.paused.take() {
            self.on_request(ctx, p.mid, p.exchange, p.payloads);
        }
        let waiting = self
            .core
            .tm
            .active
            .as_ref()
            .is_some_and(|a| a.answered.is_some());
        if waiting {
            if let Some(Active {
                task,
                mid,
                answered: Some(payloads),
                ..
            }) = self.core.tm.active.take()
            {
                self.finish_response(ctx, task, mid, payloads);
            }
        }
        self.kick(ctx);
    }

    /// Entry point for every datagram routed to this SA (non-ESP marker already removed), received
    /// by `local` from `remote`.
    pub(crate) fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: (SocketAddr, SocketAddr),
        datagram: &[u8],
    ) {
        let Ok(msg) = Message::parse(datagram) else {
            return;
        };
        let h = msg.header;
        if h.exchange == ExchangeType::IKE_SA_INIT {
            return init::handle(self, ctx, datagram, msg);
        }
        if self.retiring.as_ref().is_some_and(|c| matches_core(c, &h)) {
            return info::handle_retiring(self, ctx, datagram, msg);
        }
        if !matches_core(&self.core, &h) || self.core.keys.is_none() {
            return;
        }
        self.dispatch(ctx, from, datagram, msg);
    }

    fn dispatch(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: (SocketAddr, SocketAddr),
        datagram: &[u8],
        msg: Message,
    ) {
        let h = msg.header;
        let tm = &self.core.tm;
        if h.is_response() {
            let expected = tm
                .active
                .as_ref()
                .filter(|a| a.deadline.is_some())
                .map(|a| a.mid);
            if expected != Some(h.message_id) {
                return;
            }
        } else if h.message_id.wrapping_add(1) == tm.peer_mid {
            return self.replay(ctx, h.message_id, datagram);
        } else if h.message_id != tm.peer_mid || tm.paused.is_some() {
            return;
        }
        // RFC 7296 2.4: a message that is not authentic (no SK payload, a bad ICV) is dropped
        // before it can change anything: no answer, no message-ID advance, no teardown.
        let Some(opened) = protect::open(self, datagram, &msg) else {
            return;
        };
        if !h.is_response() && is_first_fragment(&msg) {
            self.core.tm.request = Some(request_id(datagram));
        }
        let payloads = match opened {
            Opened::Whole(p) => p,
            Opened::Partial => return,
            Opened::Malformed(e) => return self.reject(ctx, &h, e),
        };
        self.last_heard = ctx.now;
        self.follow_nat(ctx, from);
        if h.is_response() {
            self.on_response(ctx, payloads);
        } else {
            self.on_request(ctx, h.message_id, h.exchange, payloads);
        }
    }

    /// RFC 7296 2.23: behind a NAT, answer and send to where the latest authenticated message
    /// came from (the NAT's mapping may change, and the initiator floats to port 4500). Once
    /// established, the agent hears of it: the kernel's SAs must send there too.
    pub(crate) fn follow_nat(
        &mut self,
        ctx: &mut Ctx<'_>,
        (remote, local): (SocketAddr, SocketAddr),
    ) {
        if (self.nat.0 || self.nat.1) && (remote, local) != (self.remote, self.local) {
            let moved = remote != self.remote && self.established();
            self.remote = remote;
            self.local = local;
            if moved {
                self.emit(ctx, crate::event::Event::PeerMoved { remote });
            }
        }
    }

    /// An authenticated message whose inner payloads are malformed.
    fn reject(&mut self, ctx: &mut Ctx<'_>, h: &Header, e: Error) {
        if h.is_response() {
            self.core.tm.active = None;
            return self.fail(ctx, e);
        }
        let notify = e.notify().map(|ty| {
            let data = match &e {
                Error::Peer(PeerError::Malformed(w)) => w.answer().1,
                _ => Vec::new(),
            };
            Payload::Notify(NotifyPayload::new(ty, data))
        });
        self.send_response(
            ctx,
            h.message_id,
            h.exchange,
            &notify.into_iter().collect::<Vec<_>>(),
        );
    }

    /// A request of ours is in flight or a request of the peer waits for the agent.
    pub(crate) fn busy(&self) -> bool {
        self.core.tm.active.is_some() || self.core.tm.paused.is_some()
    }

    pub(crate) fn established(&self) -> bool {
        self.phase == Phase::Established
    }
}

enum After {
    Close(CloseReason),
    Switch(Box<Core>),
    Keys(Box<crate::keys::IkeKeys>),
}

/// Whether a header belongs to this IKE SA: its SPIs, and the I flag says the sender is the
/// other side (RFC 7296 3.1).
pub(crate) fn matches_core(core: &Core, h: &Header) -> bool {
    h.spi_i == core.spi_i && h.spi_r == core.spi_r && h.from_initiator() != core.initiator
}

/// A request's first datagram: the whole SK message, or fragment 1 (what a replay answers, RFC
/// 7383 2.6.1).
fn is_first_fragment(msg: &Message) -> bool {
    !matches!(msg.payloads.first(), Some(Payload::Skf(f)) if f.number != 1)
}
