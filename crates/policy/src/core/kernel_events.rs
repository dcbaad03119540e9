//! Kernel events: ACQUIRE starts the initiator path; SA expiry drops a child the engine should
//! have rekeyed; a policy expiry is either a shunt ending (the trap applies again) or one of our
//! refreshed policies that lapsed (it is put back); a lost event starts a resync from the
//! kernel's own state.

use std::collections::HashSet;

use oe_kernel::{Acquire, Event, PolicyExpire, SaExpire};

use super::{Core, Pending};
use crate::input::{KernelOp, KernelReply};
use crate::peer::PeerState;

impl Core {
    pub(super) fn on_kernel_event(&mut self, event: Event) {
        match event {
            Event::Acquire(acquire) => self.on_acquire(acquire),
            Event::Expire(expire) => self.on_sa_expire(&expire),
            Event::PolicyExpire(expired) => self.on_policy_expire(&expired),
            Event::Mapping(mapping) => self.on_mapping(&mapping),
            Event::Lost => self.resync(),
            _ => {}
        }
    }

    /// XFRM ACQUIRE: traffic to a host that has no SA yet.
    fn on_acquire(&mut self, acquire: Acquire) {
        self.counters.acquires += 1;
        if acquire.reqid.is_some_and(|r| r != self.traps.reqid()) {
            return; // a trap of an earlier run, or not ours
        }
        let flow = acquire.flow;
        let acquired = crate::peer::Acquired {
            seq: acquire.seq,
            trap: acquire.policy.key,
        };
        if let Some(id) = self.peers.owner_of(flow.dst) {
            let moved = self.peers.get(id).is_some_and(|p| p.local != flow.src);
            // A flow from an address a peer assigned us is not our host moving.
            if moved && !self.assigned_to_us(flow.src) {
                self.moved(id, flow.src);
            } else if self.acquire_for_known_peer(id, acquired) {
                return;
            }
        }
        let matched = self.table.classify(flow.dst, flow.proto, flow.dst_port);
        if !matched.group.initiates() || self.stopping || self.esp.is_err() {
            return;
        }
        let cause = format!(
            "traffic from {} to {} (proto {}, port {}) matched {}",
            flow.src,
            flow.dst,
            flow.proto,
            flow.dst_port,
            report_match(&matched)
        );
        self.start_initiator(flow.src, flow.dst, matched, Some(acquired), cause);
    }

    /// An ACQUIRE for a host the core already has a peer for. Returns whether it was taken
    /// care of; a failed peer whose shunt no longer catches the flow is forgotten (the flow
    /// shows the shunt is gone), so the host is negotiated with again.
    fn acquire_for_known_peer(
        &mut self,
        id: crate::peer::PeerId,
        acquired: crate::peer::Acquired,
    ) -> bool {
        let Some(peer) = self.peers.get_mut(id) else {
            return false;
        };
        match &mut peer.state {
            PeerState::Negotiating(n) => {
                // The trigger may have started it before the first packet: the SA replaces
                // this larval state and releases its queue.
                n.acquired.get_or_insert(acquired);
                true
            }
            PeerState::Established(_) => true,
            PeerState::Failed(_) => {
                self.forget_peer(id, "its failure shunt no longer covered the traffic");
                false
            }
        }
    }

    /// A hard expiry means the kernel removed an SA the engine should have rekeyed in time: the
    /// engine deletes the child (telling the peer).
    fn on_sa_expire(&mut self, expire: &SaExpire) {
        if !expire.hard {
            return; // the engine rekeys on its own timer, before the kernel's soft limit
        }
        let spi = expire.sa.spi.0;
        let found = self.peers.iter().find_map(|p| match &p.state {
            PeerState::Established(e) => e
                .children
                .iter()
                .find(|c| c.inbound_spi == spi || c.outbound_spi == spi)
                .map(|c| (p.remote, p.local, c.ike, c.inbound_spi)),
            _ => None,
        });
        if let Some((remote, local, handle, inbound)) = found {
            self.event(
                "expired",
                Some(remote),
                format!("SA {spi:08x} reached its hard lifetime"),
            );
            let now = self.now.mono;
            if let Some(engine) = self.engines.get_mut(&local) {
                engine.delete_child(now, handle, inbound);
            }
            self.drain(local);
        }
    }

    /// A policy reached its lifetime. A failure shunt ending is the normal end of a failure (the
    /// core's own timer usually comes first); a trap or SA policy that lapsed (the agent was
    /// paused past the refresh) is put back.
    fn on_policy_expire(&mut self, expired: &PolicyExpire) {
        if !expired.hard {
            return;
        }
        let key = expired.policy.key;
        if let Some(spec) = self.traps.get(&key).copied() {
            self.kernel(KernelOp::AddPolicy(spec), Some(Pending::Trap(key)));
            return;
        }
        let owner = self.peers.iter().find_map(|p| match &p.state {
            PeerState::Failed(f) if f.shunt.as_ref().is_some_and(|s| s.spec.key() == key) => {
                Some((p.id, None))
            }
            PeerState::Established(e) => e
                .policies
                .iter()
                .find(|s| s.key() == key)
                .map(|s| (p.id, Some(*s))),
            PeerState::Negotiating(_) | PeerState::Failed(_) => None,
        });
        match owner {
            Some((id, None)) => self.failure_ended(id),
            Some((id, Some(spec))) => {
                self.kernel(KernelOp::AddPolicy(spec), Some(Pending::Shunt(id)));
            }
            None => {}
        }
    }

    /// Events were lost: read what the kernel has, and put the core and the kernel back in
    /// agreement ([`Self::resync_with`]).
    pub(super) fn resync(&mut self) {
        self.event(
            "resync",
            None,
            "kernel events were lost; re-reading the kernel's state".into(),
        );
        self.kernel(KernelOp::ListOwned, Some(Pending::Resync));
    }

    /// Compares the kernel's state with the core's: group policies and SA policies that
    /// vanished are put back; failed peers whose shunt vanished are forgotten (the trap catches
    /// the host again); established peers whose SAs vanished are torn down; larval states of
    /// this run's traps that no negotiation serves get one (an ACQUIRE was lost).
    pub(super) fn resync_with(&mut self, result: Result<KernelReply, String>) {
        let Ok(KernelReply::Owned { policies, sas }) = result else {
            self.event(
                "resync",
                None,
                "the kernel's state could not be read".into(),
            );
            return;
        };
        let present: HashSet<_> = policies.iter().map(|p| p.key).collect();
        for spec in self.traps_missing(&present) {
            self.kernel(KernelOp::AddPolicy(spec), Some(Pending::Trap(spec.key())));
        }
        let spis: HashSet<u32> = sas.iter().map(|s| s.id.spi.0).collect();
        self.resync_peers(&present, &spis);
        self.resync_acquires(&sas);
    }

    fn traps_missing(&self, present: &HashSet<oe_kernel::PolicyKey>) -> Vec<oe_kernel::PolicySpec> {
        self.traps
            .all()
            .filter(|s| !present.contains(&s.key()))
            .copied()
            .collect()
    }

    fn resync_peers(&mut self, present: &HashSet<oe_kernel::PolicyKey>, spis: &HashSet<u32>) {
        for id in self.peers.ids() {
            let Some(peer) = self.peers.get(id) else {
                continue;
            };
            match &peer.state {
                PeerState::Failed(f) => {
                    if f.shunt
                        .as_ref()
                        .is_none_or(|s| !present.contains(&s.spec.key()))
                    {
                        self.forget_peer(id, "its failure shunt was gone from the kernel");
                    }
                }
                PeerState::Established(e) => {
                    let lost = e
                        .children
                        .iter()
                        .any(|c| !spis.contains(&c.inbound_spi) || !spis.contains(&c.outbound_spi));
                    let gone: Vec<_> = e
                        .policies
                        .iter()
                        .filter(|s| !present.contains(&s.key()))
                        .copied()
                        .collect();
                    if lost {
                        self.tear_down(id, "its SAs were gone from the kernel");
                        continue;
                    }
                    for spec in gone {
                        self.kernel(KernelOp::AddPolicy(spec), Some(Pending::Shunt(id)));
                    }
                }
                PeerState::Negotiating(_) => {}
            }
        }
    }

    /// ACQUIREs of this run's traps that no negotiation serves, read back from their larval
    /// states: ACQUIREs that were lost. Each gets the negotiation it would have had.
    fn resync_acquires(&mut self, sas: &[oe_kernel::SaInfo]) {
        let trap = self.traps.reqid();
        for sa in sas.iter().filter(|s| s.reqid == trap) {
            let Some(flow) = sa.acquired else {
                continue;
            };
            if self.peers.owner_of(flow.dst).is_some() {
                continue;
            }
            let matched = self.table.classify(flow.dst, flow.proto, flow.dst_port);
            let Some(trap) = self.traps.covering(flow.dst) else {
                continue;
            };
            if !matched.group.initiates() {
                continue;
            }
            let acquired = crate::peer::Acquired { seq: sa.seq, trap };
            let cause = format!(
                "a lost ACQUIRE for {} found in the kernel's larval state",
                flow.dst
            );
            self.start_initiator(flow.src, flow.dst, matched, Some(acquired), cause);
        }
    }
}

/// "private-or-clear (0.0.0.0/0)" for logs.
pub(crate) fn report_match(m: &crate::config::Match) -> String {
    match &m.entry {
        Some(entry) => format!(
            "{} ({})",
            m.group,
            entry.to_string().trim_start_matches(m.group.name()).trim()
        ),
        None => format!("{} (no entry covers it)", m.group),
    }
}
