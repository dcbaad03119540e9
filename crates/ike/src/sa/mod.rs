//! One IKE SA and its children: state, inputs and timers.
//!
//! The exchanges live in per-concern modules (strongSwan's `sa/ikev2/tasks/`): [`init`]
//! (IKE_SA_INIT), [`intermediate`] (IKE_INTERMEDIATE with the additional key exchanges of
//! RFC 9370), [`authx`] (IKE_AUTH with the first child), [`rekey`] (CREATE_CHILD_SA for
//! child and IKE SA rekeys), [`info`] (delete and liveness). [`tasks`] is the task manager: one
//! request in flight, retransmission, and the responder's replay cache. [`protect`] seals and
//! opens SK/SKF payloads.

pub(crate) mod authx;
pub(crate) mod info;
pub(crate) mod init;
pub(crate) mod intermediate;
pub(crate) mod protect;
pub(crate) mod rekey;
mod replay;
pub(crate) mod tasks;
mod timers;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::crypto::{CryptoRng, PublicKey, SigHash};
use crate::error::Error;
use crate::event::{ChildSa, CloseReason, Event, PeerAuth, SaHandle, Transmit};
use crate::keys::IkeKeys;
use crate::output::Output;
use crate::proposal::IkeAlgs;
use crate::wire::Identity;

use tasks::TaskManager;

/// What the exchange handlers need from the outside world for one call.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) config: &'a Config,
    pub(crate) rng: &'a mut dyn CryptoRng,
    pub(crate) out: &'a mut Output,
}

/// The per-IKE-SA protocol state that a rekey replaces: SPIs, keys, message IDs.
#[derive(Debug)]
pub(crate) struct Core {
    /// We are the original initiator of this IKE SA (the I flag, RFC 7296 3.1).
    pub(crate) initiator: bool,
    pub(crate) spi_i: u64,
    pub(crate) spi_r: u64,
    pub(crate) algs: Option<IkeAlgs>,
    pub(crate) keys: Option<IkeKeys>,
    pub(crate) tm: TaskManager,
}

impl Core {
    pub(crate) fn new(initiator: bool, spi_i: u64, spi_r: u64) -> Self {
        Self {
            initiator,
            spi_i,
            spi_r,
            algs: None,
            keys: None,
            tm: TaskManager::default(),
        }
    }

    pub(crate) fn our_spi(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }
}

/// Where the IKE SA is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// IKE_SA_INIT / IKE_AUTH in progress.
    Connecting,
    Established,
    /// A delete of the IKE SA is in flight, or it is closed.
    Closing,
    Closed,
}

/// The state of the peer's keys, which the agent supplies asynchronously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerKeys {
    NotAsked,
    Waiting,
    Supplied(Vec<PublicKey>),
    Refused,
}

/// A responder's decision on the internal address a peer asked for (RFC 7296 3.15), which the
/// agent makes ([`Event::NeedAddress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    NotAsked,
    Waiting,
    Decided(Option<std::net::IpAddr>),
}

/// A child SA we know of.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) sa: ChildSa,
    pub(crate) rekey_at: Instant,
    pub(crate) state: ChildState,
    /// When a `Replaced` child is deleted by us if the peer has not deleted it.
    pub(crate) retire_at: Option<Instant>,
    /// The peer rekeyed this child while our own rekey of it was in flight (RFC 7296 2.8.1):
    /// the inbound SPI of the child we created for the peer and the nonces of that exchange.
    pub(crate) collision: Option<(u32, Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildState {
    Installed,
    /// Our rekey of it is in flight.
    Rekeying,
    /// We rekeyed it; our delete of it is queued or in flight.
    Rekeyed,
    /// The peer rekeyed it (RFC 7296 2.8): the peer should delete it; we do at `retire_at`.
    Replaced,
    Deleting,
}

/// One IKE SA as the endpoint sees it, across IKE SA rekeys.
#[derive(Debug)]
pub(crate) struct IkeSa {
    pub(crate) handle: SaHandle,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) phase: Phase,
    pub(crate) core: Core,
    /// The IKE SA we rekeyed away from, until its delete exchange is over.
    pub(crate) retiring: Option<Core>,
    /// When we delete the retiring IKE SA ourselves if the peer has not (RFC 7296 2.18).
    pub(crate) retire_at: Option<Instant>,
    pub(crate) peer_id: Option<Identity>,
    /// How the peer authenticated, and when (IKE_AUTH; IKE rekeys do not re-authenticate).
    pub(crate) peer_auth: Option<(PeerAuth, Instant)>,
    pub(crate) peer_keys: PeerKeys,
    pub(crate) peer_hashes: Vec<SigHash>,
    pub(crate) peer_fragmentation: bool,
    pub(crate) nat: (bool, bool),
    /// Initiator: we asked the responder for an internal address in IKE_AUTH.
    pub(crate) asked_address: bool,
    /// Responder: the internal address the agent assigned the peer, if it asked for one.
    pub(crate) lease: Lease,
    /// When we last sent a NAT-keepalive (RFC 3948 2.3).
    pub(crate) keepalive_at: Instant,
    /// Inbound SPIs the agent supplied and not yet used; `spi_wanted` counts open requests.
    pub(crate) spis: VecDeque<u32>,
    pub(crate) spi_wanted: usize,
    pub(crate) children: Vec<Child>,
    pub(crate) last_heard: Instant,
    pub(crate) created: Instant,
    pub(crate) rekey_at: Option<Instant>,
    /// The handshake's messages and nonces, kept until IKE_AUTH is over.
    pub(crate) handshake: init::Handshake,
    /// Post-quantum key exchanges its keys depend on (kept across IKE SA rekeys, whose keys
    /// derive from the old SK_d).
    pub(crate) post_quantum: Vec<crate::crypto::DhGroup>,
}

impl IkeSa {
    pub(crate) fn new(
        handle: SaHandle,
        core: Core,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> Self {
        Self {
            handle,
            local,
            remote,
            phase: Phase::Connecting,
            core,
            retiring: None,
            retire_at: None,
            peer_id: None,
            peer_auth: None,
            peer_keys: PeerKeys::NotAsked,
            peer_hashes: Vec::new(),
            peer_fragmentation: false,
            nat: (false, false),
            asked_address: false,
            lease: Lease::NotAsked,
            keepalive_at: now,
            spis: VecDeque::new(),
            spi_wanted: 0,
            children: Vec::new(),
            last_heard: now,
            created: now,
            rekey_at: None,
            handshake: init::Handshake::default(),
            post_quantum: Vec::new(),
        }
    }

    /// Our IKE SPIs that route to this SA: the current IKE SA's, and the one it was rekeyed
    /// from until that is gone (RFC 7296 2.18).
    pub(crate) fn routed_spis(&self) -> [Option<u64>; 2] {
        [
            Some(self.core.our_spi()),
            self.retiring.as_ref().map(Core::our_spi),
        ]
    }

    pub(crate) fn emit(&self, ctx: &mut Ctx<'_>, event: Event) {
        ctx.out.event(self.handle, event);
    }

    /// Takes a supplied inbound SPI, or asks the agent for one and returns None.
    pub(crate) fn take_spi(&mut self, ctx: &mut Ctx<'_>) -> Option<u32> {
        if let Some(spi) = self.spis.pop_front() {
            return Some(spi);
        }
        if self.spi_wanted == 0 {
            self.spi_wanted += 1;
            let (local, remote) = (self.local.ip(), self.remote.ip());
            self.emit(ctx, Event::NeedSpi { local, remote });
        }
        None
    }

    /// Ends the SA: reports every child as deleted, then the close reason.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        for c in std::mem::take(&mut self.children) {
            let (inbound_spi, outbound_spi) = (c.sa.inbound_spi, c.sa.outbound_spi);
            self.emit(
                ctx,
                Event::ChildSaDeleted {
                    inbound_spi,
                    outbound_spi,
                },
            );
        }
        self.phase = Phase::Closed;
        self.emit(ctx, Event::Closed { reason });
    }

    /// Fails the SA with an error.
    pub(crate) fn fail(&mut self, ctx: &mut Ctx<'_>, err: Error) {
        self.close(ctx, CloseReason::Failed(err));
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub(crate) fn child_by_inbound(&mut self, spi: u32) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.sa.inbound_spi == spi)
    }

    pub(crate) fn child_by_outbound(&mut self, spi: u32) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.sa.outbound_spi == spi)
    }

    /// Sends a datagram, adding the non-ESP marker on the NAT-T port (RFC 3948 2.2).
    pub(crate) fn send(&self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        let mut contents = Vec::with_capacity(bytes.len() + 4);
        if self.local.port() == ctx.config.nat_t_port {
            contents.extend_from_slice(&[0; 4]);
        }
        contents.extend_from_slice(bytes);
        ctx.out.transmit(Transmit {
            local: self.local,
            remote: self.remote,
            contents,
        });
    }
}
