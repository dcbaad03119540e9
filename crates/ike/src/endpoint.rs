//! The endpoint: owns every IKE SA, routes datagrams by SPI, answers new IKE_SA_INIT requests
//! (with cookies past the half-open threshold, RFC 7296 2.6), and collects output.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::admission::{cheap_proposals, Admission, Gate};
use crate::config::{Config, IkeProposal};
use crate::cookie::CookieJar;
use crate::crypto::{CryptoRng, PublicKey};
use crate::event::{CloseReason, Event, SaHandle, Transmit};
use crate::output::Output;
use crate::registry::Registry;
use crate::sa::rekey::ChildRekey;
use crate::sa::tasks::Task;
use crate::sa::{init, Core, Ctx, IkeSa, Lease, PeerKeys, Phase};
use crate::wire::{peek_routing, ExchangeType, InitPeek, Message};

/// The sans-IO IKEv2 engine for all IKE SAs of one host. See the crate docs for the contract.
pub struct Endpoint {
    config: Config,
    rng: Box<dyn CryptoRng>,
    /// Every IKE SA, with routing, half-open and deadline indexes.
    sas: Registry,
    next_handle: u64,
    cookies: CookieJar,
    /// Our IKE proposals with only the groups offered under load.
    cheap: Vec<IkeProposal>,
    out: Output,
    now: Option<Instant>,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("sas", &self.sas.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn new(config: Config, mut rng: Box<dyn CryptoRng>) -> Self {
        let cookies = CookieJar::new(rng.as_mut(), config.cookie_secret_lifetime);
        let cheap = cheap_proposals(&config.ike_proposals);
        Self {
            config,
            rng,
            sas: Registry::default(),
            next_handle: 1,
            cookies,
            cheap,
            out: Output::default(),
            now: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Time only moves forward: an earlier `now` than seen before is taken as the latest seen.
    fn clock(&mut self, now: Instant) -> Instant {
        let now = self.now.map_or(now, |n| n.max(now));
        self.now = Some(now);
        now
    }

    fn new_handle(&mut self) -> SaHandle {
        let h = SaHandle(self.next_handle);
        self.next_handle += 1;
        h
    }

    fn fresh_spi(&mut self) -> u64 {
        loop {
            let s = self.rng.next_u64();
            if s != 0 && !self.sas.spi_in_use(s) {
                return s;
            }
        }
    }

    /// Runs `f` on one SA with a context, then brings the indexes in step (routing, half-open,
    /// deadline) and drops the SA if it closed.
    fn with_sa(
        &mut self,
        now: Instant,
        handle: SaHandle,
        f: impl FnOnce(&mut IkeSa, &mut Ctx<'_>),
    ) {
        let Some(sa) = self.sas.get_mut(handle) else {
            return;
        };
        let mut ctx = Ctx {
            now,
            config: &self.config,
            rng: self.rng.as_mut(),
            out: &mut self.out,
        };
        f(sa, &mut ctx);
        self.sas.refresh(handle, &self.config);
    }

    /// Starts an IKE SA to `remote` from `local` (IKE_SA_INIT goes out on the next poll).
    pub fn connect(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) -> SaHandle {
        let now = self.clock(now);
        let handle = self.new_handle();
        let spi_i = self.fresh_spi();
        let sa = IkeSa::new(handle, Core::new(true, spi_i, 0), local, remote, now);
        self.sas.insert(sa, None, &self.config);
        self.with_sa(now, handle, |sa, ctx| {
            sa.queue(Task::IkeInit);
            sa.kick(ctx);
        });
        handle
    }

    /// Feeds one received UDP datagram. On the NAT-T port it must still carry its non-ESP
    /// marker (RFC 3948 2.2); ESP packets never reach the engine.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) {
        let now = self.clock(now);
        let data = if local.port() == self.config.nat_t_port {
            match data.split_first_chunk::<4>() {
                Some((&[0, 0, 0, 0], rest)) => rest,
                _ => return,
            }
        } else {
            data
        };
        let Some((spi_i, spi_r, exchange, flags, _mid)) = peek_routing(data) else {
            return;
        };
        let response = flags & crate::wire::flags::RESPONSE != 0;
        let from_initiator = flags & crate::wire::flags::INITIATOR != 0;
        if exchange == ExchangeType::IKE_SA_INIT && !response && spi_r == 0 {
            return self.on_init_request(now, remote, local, data, spi_i);
        }
        // The SPI we chose is the responder's if the sender is the original initiator.
        let ours = if from_initiator { spi_r } else { spi_i };
        let Some(handle) = self.sas.route(ours) else {
            return;
        };
        self.with_sa(now, handle, |sa, ctx| {
            if sa.remote.ip() == remote.ip() {
                sa.handle(ctx, (remote, local), data);
            }
        });
    }

    fn half_open_count(&self) -> usize {
        self.sas.half_open_count()
    }

    fn on_init_request(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: SocketAddr,
        data: &[u8],
        spi_i: u64,
    ) {
        if let Some(h) = self.sas.half_open_sa(&(remote, spi_i)) {
            return self.with_sa(now, h, |sa, ctx| sa.handle(ctx, (remote, local), data));
        }
        let Ok(peek) = InitPeek::parse(data) else {
            return;
        };
        let mut gate = Gate {
            sas: &self.sas,
            config: &self.config,
            cheap: &self.cheap,
            cookies: &mut self.cookies,
            rng: self.rng.as_mut(),
            now,
        };
        // Under a flood most requests end here, answered before any proposal is decoded.
        let admission = match gate.require_cookie(&peek, remote) {
            Some(answer) => answer,
            None => match Message::parse(data) {
                Ok(msg) => match gate.admit(&msg, remote) {
                    Admission::Accept => {
                        return self.accept_init(now, remote, local, data, spi_i, &msg)
                    }
                    other => other,
                },
                Err(_) => Admission::Drop,
            },
        };
        match admission {
            Admission::Answer(bytes) => self.send_stateless(local, remote, &bytes),
            Admission::Accept | Admission::Drop => {}
        }
    }

    /// Keeps a half-open IKE SA for an admitted IKE_SA_INIT request and answers it.
    fn accept_init(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: SocketAddr,
        data: &[u8],
        spi_i: u64,
        msg: &Message,
    ) {
        let handle = self.new_handle();
        let spi_r = self.fresh_spi();
        let sa = IkeSa::new(handle, Core::new(false, spi_i, spi_r), local, remote, now);
        self.sas.insert(sa, Some((remote, spi_i)), &self.config);
        self.with_sa(now, handle, |sa, ctx| init::respond(sa, ctx, data, msg));
    }

    /// Sends an answer that keeps no state (a COOKIE or INVALID_KE_PAYLOAD, RFC 7296 2.6, 2.7).
    fn send_stateless(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let mut contents = Vec::with_capacity(bytes.len() + 4);
        if local.port() == self.config.nat_t_port {
            contents.extend_from_slice(&[0; 4]);
        }
        contents.extend_from_slice(bytes);
        self.out.transmit(Transmit {
            local,
            remote,
            contents,
        });
    }

    /// Runs every timer that is due at `now` (visiting only the SAs that are due), and replaces
    /// the cookie secret when its time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        self.cookies.rotate_if_due(now, self.rng.as_mut());
        for h in self.sas.take_due(now) {
            self.with_sa(now, h, |sa, ctx| sa.on_timeout(ctx));
        }
    }

    /// The next datagram to send, if any. A datagram queued after an event is held back until
    /// that event has been polled (see the crate docs).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    /// When `handle_timeout` should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let cookies = self.cookies.next_rotation();
        self.sas.next_deadline().into_iter().chain(cookies).min()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<(SaHandle, Event)> {
        self.out.poll_event()
    }

    /// Answers `Event::NeedPeerKey`: the peer's validated public keys (any of them may sign).
    pub fn supply_peer_keys(&mut self, now: Instant, handle: SaHandle, keys: Vec<PublicKey>) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            if sa.peer_keys == PeerKeys::Waiting {
                sa.peer_keys = PeerKeys::Supplied(keys);
                sa.resume(ctx);
            }
        });
    }

    /// Answers `Event::NeedPeerKey` with a refusal: the exchange fails with AUTHENTICATION_FAILED.
    pub fn refuse_peer_keys(&mut self, now: Instant, handle: SaHandle) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            if sa.peer_keys == PeerKeys::Waiting {
                sa.peer_keys = PeerKeys::Refused;
                sa.resume(ctx);
                // The initiator is now telling the responder (AUTHENTICATION_FAILED + Delete) and
                // closes when that is answered; anything else still open closes now.
                if sa.core.initiator && !sa.is_closed() && sa.phase != Phase::Closing {
                    sa.close(ctx, CloseReason::Refused);
                }
            }
        });
    }

    /// Answers `Event::NeedSpi` with an inbound SPI the kernel allocated.
    pub fn supply_spi(&mut self, now: Instant, handle: SaHandle, spi: u32) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            sa.spi_wanted = sa.spi_wanted.saturating_sub(1);
            sa.spis.push_back(spi);
            sa.resume(ctx);
        });
    }

    /// Answers `Event::NeedAddress`: the internal address assigned to the peer (RFC 7296 3.15),
    /// or `None` to give none (the child is then negotiated for the peer's own address).
    pub fn supply_address(&mut self, now: Instant, handle: SaHandle, addr: Option<IpAddr>) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            if sa.lease == Lease::Waiting {
                sa.lease = Lease::Decided(addr);
                sa.resume(ctx);
            }
        });
    }

    /// The kernel saw authenticated ESP from the peer at a new port (its MAPPING event): behind
    /// a NAT, IKE follows it too (RFC 7296 2.23), and [`Event::PeerMoved`] reports it. Ignored
    /// without a NAT or for another address (a NAT that changed its public address needs a new
    /// IKE SA).
    pub fn follow_peer(&mut self, now: Instant, handle: SaHandle, remote: SocketAddr) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            if remote.ip() == sa.remote.ip() {
                sa.follow_nat(ctx, (remote, sa.local));
            }
        });
    }

    /// Rekeys the child with this inbound SPI now (normally done at its soft lifetime).
    pub fn rekey_child(&mut self, now: Instant, handle: SaHandle, inbound_spi: u32) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            sa.queue(Task::ChildRekey(ChildRekey::new(inbound_spi)));
            sa.kick(ctx);
        });
    }

    /// Rekeys the IKE SA now (normally done at its soft lifetime).
    pub fn rekey_ike(&mut self, now: Instant, handle: SaHandle) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            sa.queue(Task::IkeRekey(crate::sa::rekey::IkeRekey::new()));
            sa.kick(ctx);
        });
    }

    /// Deletes one child SA (for example when idle).
    pub fn delete_child(&mut self, now: Instant, handle: SaHandle, inbound_spi: u32) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            sa.queue(Task::DeleteChild(inbound_spi));
            sa.kick(ctx);
        });
    }

    /// Deletes the IKE SA and its children (INFORMATIONAL with Delete, RFC 7296 1.4.1).
    pub fn delete(&mut self, now: Instant, handle: SaHandle) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            if sa.core.keys.is_none() {
                return sa.close(ctx, CloseReason::Local);
            }
            sa.core.tm.queue.clear();
            sa.queue(Task::DeleteIke);
            sa.kick(ctx);
        });
    }

    /// Deletes the IKE SA and its children at once, telling the peer with one Delete that is
    /// never retransmitted (see `sa::info::delete_now`): the agent's pruning under pressure.
    pub fn delete_now(&mut self, now: Instant, handle: SaHandle) {
        let now = self.clock(now);
        self.with_sa(now, handle, crate::sa::info::delete_now);
    }

    /// Checks that the peer is alive now (an empty INFORMATIONAL, RFC 7296 2.4).
    pub fn check_liveness(&mut self, now: Instant, handle: SaHandle) {
        let now = self.clock(now);
        self.with_sa(now, handle, |sa, ctx| {
            sa.queue(Task::Liveness);
            sa.kick(ctx);
        });
    }

    /// Number of IKE SAs (any phase, half-open ones included).
    pub fn sa_count(&self) -> usize {
        self.sas.len()
    }

    /// What one IKE SA looks like now (for the agent's status reports); `None` once it is gone.
    pub fn sa_info(&self, handle: SaHandle) -> Option<crate::event::SaInfo> {
        let sa = self.sas.get(handle)?;
        Some(crate::event::SaInfo {
            spi_i: sa.core.spi_i,
            spi_r: sa.core.spi_r,
            initiator: sa.core.initiator,
            proposal: sa.core.algs.as_ref().map(crate::proposal::describe),
            rekey_at: sa.rekey_at,
            children: sa.children.len(),
            post_quantum: sa.post_quantum.clone(),
            remote: sa.remote,
            peer_auth: sa.peer_auth.map(|(a, _)| a),
            authenticated_at: sa.peer_auth.map(|(_, t)| t),
        })
    }

    #[cfg(test)]
    pub(crate) fn registry(&self) -> &Registry {
        &self.sas
    }

    #[cfg(test)]
    pub(crate) fn registry_mut(&mut self) -> &mut Registry {
        &mut self.sas
    }

    /// Half-open responder SAs (IKE_SA_INIT answered, IKE_AUTH not done): what the cookie
    /// threshold and `max_half_open` count.
    pub fn half_open(&self) -> usize {
        self.half_open_count()
    }
}
