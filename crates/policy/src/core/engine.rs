//! Reactions to the IKE engines' events: responders adopted into peers, SPIs from the kernel,
//! the acceptance of an IKE SA's authentication (before any of its children may reach the
//! kernel), child SAs in and out, IKE SAs closing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use oe_ike::wire::Identity;
use oe_ike::{ChildSa, CloseReason, Event, PeerAuth, SaHandle};

use super::{Core, Pending};
use crate::config::Group;
use crate::identity::identity_text;
use crate::input::{KernelOp, KernelReply};
use crate::peer::{
    Ike, Lookup, Negotiating, NegotiationShunt, Peer, PeerAuthn, PeerId, PeerState, Role, Step,
};
use crate::timers::Timer;

/// What the core makes of an IKE SA that authenticated with NULL.
pub(super) enum Anonymous {
    Accept(String),
    Refuse(String),
    /// The reverse zone's verdict decides; it is not in yet.
    Wait,
}

impl Core {
    pub(super) fn on_engine_event(&mut self, local: IpAddr, handle: SaHandle, event: Event) {
        match event {
            Event::NeedPeerKey { identity, remote } => {
                if let Some(id) = self.adopt(local, handle, remote.ip()) {
                    self.need_peer_key(id, local, handle, &identity);
                }
            }
            Event::NeedSpi {
                local: ours,
                remote,
            } => {
                if let Some(id) = self.adopt(local, handle, remote) {
                    self.need_spi(id, local, handle, ours, remote);
                }
            }
            Event::IkeSaEstablished {
                peer_id,
                peer_auth,
                nat_local,
                presented,
                ..
            } => {
                self.note_presented(local, handle, nat_local, &presented);
                self.ike_up(local, handle, &peer_id, peer_auth);
            }
            Event::NeedAddress { v6 } => self.need_address(local, handle, v6),
            Event::PeerMoved { remote } => self.peer_moved(local, handle, remote),
            Event::ChildSaReady { child, replaces } => {
                self.child_ready(local, handle, *child, replaces);
            }
            Event::ChildSaFailed { error } => self.child_failed(local, handle, &error),
            Event::ChildSaDeleted {
                inbound_spi,
                outbound_spi,
            } => {
                if let Some(id) = self.peers.by_ike(local, handle) {
                    self.child_deleted(id, inbound_spi, outbound_spi);
                }
            }
            Event::IkeSaRekeyed => {
                self.counters.rekeys += 1;
                let remote = self
                    .peers
                    .by_ike(local, handle)
                    .and_then(|id| self.peers.get(id))
                    .map(|p| p.remote);
                self.event("rekey", remote, "IKE SA rekeyed".into());
            }
            Event::Closed { reason } => self.ike_closed(local, handle, &reason),
            _ => {}
        }
    }

    /// The peer of an IKE SA, adopting one the engine created as responder; refuses (and
    /// deletes) it when the peer's group does not answer IKE, or the agent is stopping.
    fn adopt(&mut self, local: IpAddr, handle: SaHandle, remote: IpAddr) -> Option<PeerId> {
        if let Some(id) = self.peers.by_ike(local, handle) {
            return Some(id);
        }
        let matched = self.table.classify(remote, 0, 0);
        let why = if !matched.group.responds() {
            Some(format!("its group is {}", matched.group))
        } else if self.stopping {
            Some("the agent is stopping".into())
        } else if let Err(e) = &self.esp {
            Some(e.clone())
        } else {
            self.ike_room_for(remote).err()
        };
        if let Some(why) = why {
            return self.refuse_new_ike(local, handle, remote, &why);
        }
        let now = self.now.mono;
        let ike = Ike {
            role: Role::Responder,
            since: now,
            step: Step::Exchanging,
            spare_spis: Vec::new(),
            replaces: None,
        };
        if let Some(id) = self.peers.owner_of(remote) {
            if let Some(peer) = self.peers.get_mut(id) {
                peer.ikes.insert(handle, ike);
                self.peers.bind_ike(local, handle, id);
                return Some(id);
            }
        }
        let Some(reqid) = self.peers.alloc_reqid() else {
            return self.refuse_new_ike(local, handle, remote, "no free reqid");
        };
        let id = self.peers.next_id();
        let deadline = now + self.config.shunts.negotiation_timeout;
        self.peers.insert(Peer {
            id,
            remote,
            local,
            group: matched,
            reqid,
            state: PeerState::Negotiating(Negotiating {
                since: now,
                deadline,
                shunt: NegotiationShunt::None,
                acquired: None,
                waiters: Vec::new(),
            }),
            ikes: BTreeMap::from([(handle, ike)]),
            reverse: Lookup::NotAsked,
            notes: Vec::new(),
            last_ike: None,
            refusal: None,
            behind_nat: None,
            lease: None,
        });
        self.peers.bind_ike(local, handle, id);
        self.timers.set(Timer::Negotiation(id), deadline);
        Some(id)
    }

    fn refuse_new_ike(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        remote: IpAddr,
        why: &str,
    ) -> Option<PeerId> {
        self.event(
            "refused",
            Some(remote),
            format!("IKE from {remote} refused: {why}"),
        );
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.delete(now, handle);
        }
        None
    }

    /// The engine needs an inbound SPI: the kernel reserves one (ALLOCSPI).
    fn need_spi(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        ours: IpAddr,
        remote: IpAddr,
    ) {
        let Some(reqid) = self.peers.get(id).map(|p| p.reqid) else {
            return;
        };
        let op = KernelOp::AllocSpi {
            local: ours,
            remote,
            reqid,
        };
        self.kernel(
            op,
            Some(Pending::Spi {
                peer: id,
                local,
                handle,
            }),
        );
    }

    pub(super) fn spi_allocated(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        result: Result<KernelReply, String>,
    ) {
        let now = self.now.mono;
        match result {
            Ok(KernelReply::Spi(spi)) => {
                if let Some(ike) = self.peers.get_mut(id).and_then(|p| p.ikes.get_mut(&handle)) {
                    ike.spare_spis.push(spi);
                }
                if let Some(engine) = self.engines.get_mut(&local) {
                    engine.supply_spi(now, handle, spi);
                }
            }
            other => {
                let why = match other {
                    Err(e) => e,
                    Ok(_) => "unexpected reply".into(),
                };
                let remote = self.peers.get(id).map(|p| p.remote);
                self.event(
                    "spi-failed",
                    remote,
                    format!("cannot reserve an SPI: {why}"),
                );
                if let Some(engine) = self.engines.get_mut(&local) {
                    engine.delete(now, handle);
                }
            }
        }
        self.drain(local);
    }

    /// The IKE SA authenticated the peer. The core accepts or refuses that authentication here,
    /// before any child SA of the IKE SA can reach the kernel.
    fn ike_up(&mut self, local: IpAddr, handle: SaHandle, peer_id: &Identity, auth: PeerAuth) {
        let Some(id) = self.peers.by_ike(local, handle) else {
            return;
        };
        let identity = identity_text(peer_id);
        let decided = match auth {
            PeerAuth::Signature => self.accept_signature(id, handle, identity.clone()),
            PeerAuth::Null => match self.judge_anonymous(id, handle) {
                Anonymous::Accept(why) => Ok(PeerAuthn::Anonymous {
                    identity: identity.clone(),
                    why,
                }),
                Anonymous::Refuse(why) => Err(why),
                Anonymous::Wait => {
                    if let Err(why) = self.admit_ike(id, local, handle, true) {
                        return self.refuse_ike(id, local, handle, why);
                    }
                    self.set_step(
                        id,
                        handle,
                        Step::AwaitingVerdict {
                            identity,
                            children: Vec::new(),
                        },
                    );
                    self.ask_reverse(id);
                    return;
                }
            },
        };
        let decided = decided
            .and_then(|authn| self.check_post_quantum(id, local, handle).map(|()| authn))
            .and_then(|authn| {
                let anonymous = authn.is_anonymous();
                self.admit_ike(id, local, handle, anonymous).map(|()| authn)
            });
        match decided {
            Ok(authn) => self.accept_ike(id, handle, authn),
            Err(why) => self.refuse_ike(id, local, handle, why),
        }
    }

    /// In the groups `ike.require_post_quantum` names, an IKE SA without a post-quantum key
    /// exchange (RFC 9370) is refused.
    fn check_post_quantum(
        &self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
    ) -> Result<(), String> {
        let Some(group) = self.peers.get(id).map(|p| p.group.group) else {
            return Ok(());
        };
        if !self.pq_required.contains(&group) {
            return Ok(());
        }
        let pq = self
            .engines
            .get(&local)
            .and_then(|e| e.sa_info(handle))
            .is_some_and(|i| i.is_post_quantum());
        if pq {
            Ok(())
        } else {
            Err(format!(
                "the {group} group requires a post-quantum key exchange and the peer did not do one"
            ))
        }
    }

    /// A signature verified with keys the core supplied.
    fn accept_signature(
        &mut self,
        id: PeerId,
        handle: SaHandle,
        identity: String,
    ) -> Result<PeerAuthn, String> {
        let step = self
            .peers
            .get(id)
            .and_then(|p| p.ikes.get(&handle))
            .map(|i| &i.step);
        match step {
            Some(Step::Verifying { how, .. }) => Ok(PeerAuthn::Key {
                identity,
                how: how.clone(),
            }),
            _ => Err("a signature the core supplied no key for".into()),
        }
    }

    /// Whether a NULL-authenticated IKE SA is acceptable: only in the groups the configuration
    /// names, never beside an authenticated SA with the same host; as initiator, only when DNS
    /// proved that the host publishes no key (absent or provably unsigned; never bogus or failed).
    pub(super) fn judge_anonymous(&self, id: PeerId, handle: SaHandle) -> Anonymous {
        let Some(peer) = self.peers.get(id) else {
            return Anonymous::Refuse("unknown peer".into());
        };
        let group = peer.group.group;
        if group == Group::Private || !self.anonymous.contains(&group) {
            return Anonymous::Refuse(format!(
                "anonymous (NULL-authenticated) peers are not accepted in the {group} group"
            ));
        }
        if peer.has_authenticated_children() {
            return Anonymous::Refuse(
                "an authenticated SA with this host exists; an anonymous one never replaces it"
                    .into(),
            );
        }
        let role = peer.ikes.get(&handle).map_or(Role::Responder, |i| i.role);
        if role == Role::Responder {
            return Anonymous::Accept(format!("anonymous client, accepted in the {group} group"));
        }
        match &peer.reverse {
            Lookup::Known(v) if v.proves_no_key() => Anonymous::Accept(format!(
                "the host publishes no key ({}); unauthenticated encryption protects against passive eavesdroppers only",
                v.word()
            )),
            Lookup::Known(v) if v.keys().is_some() => Anonymous::Refuse(format!(
                "the host publishes a key ({}) but authenticated with NULL",
                v.describe(self.now.wall)
            )),
            Lookup::Known(v) => Anonymous::Refuse(format!(
                "DNS did not prove the host has no key ({}); an anonymous responder is accepted only then",
                v.describe(self.now.wall)
            )),
            Lookup::Pending | Lookup::NotAsked => Anonymous::Wait,
        }
    }

    pub(super) fn set_step(&mut self, id: PeerId, handle: SaHandle, step: Step) {
        if let Some(ike) = self.peers.get_mut(id).and_then(|p| p.ikes.get_mut(&handle)) {
            ike.step = step;
        }
    }

    /// The IKE SA's authentication is accepted: its children may go into the kernel.
    pub(super) fn accept_ike(&mut self, id: PeerId, handle: SaHandle, authn: PeerAuthn) {
        let now = self.now.mono;
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let remote = peer.remote;
        let role = peer.ikes.get(&handle).map_or(Role::Initiator, |i| i.role);
        let waiting = match peer
            .ikes
            .get_mut(&handle)
            .map(|i| std::mem::replace(&mut i.step, Step::Exchanging))
        {
            Some(Step::AwaitingVerdict { children, .. }) => children,
            _ => Vec::new(),
        };
        let text = format!(
            "IKE SA up as {} with {} (authentication: {})",
            role.name(),
            authn.identity(),
            authn.describe()
        );
        self.set_step(
            id,
            handle,
            Step::Up {
                auth: authn,
                at: now,
            },
        );
        self.event("ike-established", Some(remote), text);
        let local = self.peers.get(id).map(|p| p.local);
        if let Some(local) = local {
            for (child, replaces) in waiting {
                self.install_child(id, local, handle, child, replaces);
            }
        }
    }

    /// The IKE SA's authentication is refused: it is deleted (the Delete tells the peer to
    /// remove any child it installed) and none of its children reaches the kernel.
    pub(super) fn refuse_ike(&mut self, id: PeerId, local: IpAddr, handle: SaHandle, why: String) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let remote = peer.remote;
        peer.refusal = Some(why.clone());
        peer.last_ike = Some(format!("refused: {why}"));
        self.set_step(id, handle, Step::Refused);
        self.event("refused", Some(remote), format!("IKE SA refused: {why}"));
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.delete(now, handle);
        }
    }

    /// A child SA is ready: into the kernel if its IKE SA's authentication was accepted; kept
    /// aside while a NULL responder waits for the reverse zone's verdict; otherwise never
    /// installed.
    fn child_ready(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        child: ChildSa,
        replaces: Option<u32>,
    ) {
        let Some(id) = self.peers.by_ike(local, handle) else {
            return;
        };
        let step = self
            .peers
            .get_mut(id)
            .and_then(|p| p.ikes.get_mut(&handle))
            .map(|i| &mut i.step);
        match step {
            Some(Step::Up { .. }) => self.install_child(id, local, handle, child, replaces),
            Some(Step::AwaitingVerdict { children, .. }) => children.push((child, replaces)),
            _ => {
                let remote = self.peers.get(id).map(|p| p.remote);
                self.event(
                    "child-refused",
                    remote,
                    format!(
                        "child SA {:08x} not installed: its IKE SA's authentication was not accepted",
                        child.inbound_spi
                    ),
                );
            }
        }
    }

    fn child_failed(&mut self, local: IpAddr, handle: SaHandle, error: &oe_ike::Error) {
        let Some(id) = self.peers.by_ike(local, handle) else {
            return;
        };
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let remote = peer.remote;
        let alone = matches!(peer.state, PeerState::Negotiating(_)) && peer.ikes.len() == 1;
        self.event(
            "child-failed",
            Some(remote),
            format!("child SA not created: {error}"),
        );
        if alone {
            self.fail(id, format!("child SA refused: {error}"));
            self.delete_ikes(id);
        }
    }

    /// An IKE SA is gone (its children were reported deleted before).
    fn ike_closed(&mut self, local: IpAddr, handle: SaHandle, reason: &CloseReason) {
        self.pool.release((local, handle));
        let Some(id) = self.peers.by_ike(local, handle) else {
            return;
        };
        self.peers.unbind_ike(local, handle);
        self.release_ike(local, handle);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let (spare, replaced) = peer
            .ikes
            .remove(&handle)
            .map(|i| (i.spare_spis, i.replaces))
            .unwrap_or_default();
        let remote = peer.remote;
        // After a refusal, the refusal is the reason, whoever closed the SA.
        let text = match (peer.refusal.take(), reason) {
            (Some(why), _) => format!("refused: {why}"),
            (None, CloseReason::Local) => "closed by us".to_owned(),
            (None, CloseReason::PeerDeleted) => "deleted by the peer".to_owned(),
            (None, CloseReason::Refused) => "refused (no usable key)".to_owned(),
            (None, CloseReason::Failed(e)) => e.to_string(),
        };
        if !matches!(peer.state, PeerState::Failed(_)) {
            peer.last_ike = Some(text.clone());
        }
        let remaining = peer.ikes.len();
        let negotiating = matches!(peer.state, PeerState::Negotiating(_));
        let orphans: Vec<(u32, u32)> = match &peer.state {
            PeerState::Established(e) => e
                .children
                .iter()
                .filter(|c| c.ike == handle)
                .map(|c| (c.inbound_spi, c.outbound_spi))
                .collect(),
            _ => Vec::new(),
        };
        for spi in spare {
            let id = oe_kernel::SaId::esp(local, oe_kernel::Spi(spi));
            self.kernel(KernelOp::DeleteSa(id), None);
        }
        self.event("ike-closed", Some(remote), format!("IKE SA {text}"));
        // Children the engine did not report (it reports each before Closed) go with it.
        for (inbound, outbound) in orphans {
            self.child_deleted(id, inbound, outbound);
        }
        let still = self.peers.get(id);
        let childless = still.is_some_and(|p| match &p.state {
            PeerState::Established(e) => e.children.is_empty(),
            _ => false,
        });
        if let Some(old) = replaced {
            // A re-authentication that did not complete: the old authentication is not renewed.
            let why = format!("re-authentication failed ({text})");
            self.retire_ike(id, old, &why);
        }
        if negotiating && remaining == 0 {
            self.fail(id, text);
        } else if childless && remaining == 0 {
            self.tear_down(id, &text);
        }
    }
}
