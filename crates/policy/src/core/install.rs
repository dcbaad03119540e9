//! Child SAs into the kernel and out of it: an SA pair plus host policies for each accepted
//! child, built from what was negotiated; and the removal of a peer's kernel state when its last
//! child or the peer itself goes. The core only updates or deletes policies it installed.

use std::net::IpAddr;

use oe_ike::{ChildSa, SaHandle};
use oe_kernel::{PolicySpec, SaId, Spi};

use super::{Core, Pending};
use crate::input::{Command, KernelOp};
use crate::kernel_specs::{child_selector, esp_name, host_policies, sa_specs, tunnel_policies};
use crate::peer::{Child, Counters, Established, NegotiationShunt, PeerId, PeerState, Role};
use crate::timers::Timer;

impl Core {
    /// Installs a child SA of an IKE SA whose authentication the core accepted.
    pub(super) fn install_child(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        child: ChildSa,
        replaces: Option<u32>,
    ) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let lifetime = self.host_policy_lifetime(peer.group.group);
        let specs = child_selector(&child).and_then(|sel| {
            sa_specs(&child, peer.reqid, sel)
                .map(|pair| (sel, pair))
                .ok_or_else(|| "the negotiated algorithm has no kernel equivalent".to_owned())
        });
        let (selector, (inbound, mut outbound)) = match specs {
            Ok(s) => s,
            Err(why) => return self.refuse_child(id, local, handle, &child, why),
        };
        let acquired = match &peer.state {
            PeerState::Negotiating(n) => n.acquired,
            _ => None,
        };
        outbound.acquire_seq = acquired.map(|a| a.seq);
        let reqid = inbound.reqid;
        let policies = match child.mode {
            oe_ike::Mode::Transport => Ok(host_policies(selector, reqid, lifetime)),
            oe_ike::Mode::Tunnel => {
                tunnel_policies(selector, (child.local, child.remote), reqid, lifetime)
            }
        };
        let mut policies = match policies {
            Ok(p) => p,
            Err(why) => return self.refuse_child(id, local, handle, &child, why),
        };
        policies.extend(self.own_address_pass(id, &child));
        // The inbound SPI came from ALLOCSPI, whose larval state the SA takes over (UPDSA).
        let (update, add) = match child.mode {
            oe_ike::Mode::Transport => (KernelOp::UpdateSa(inbound), KernelOp::AddSa(outbound)),
            oe_ike::Mode::Tunnel => (
                KernelOp::UpdateSaIn(oe_kernel::Mode::Tunnel, inbound),
                KernelOp::AddSaIn(oe_kernel::Mode::Tunnel, outbound),
            ),
        };
        self.kernel(update, Some(Pending::Install { peer: id, handle }));
        self.kernel(add, Some(Pending::Install { peer: id, handle }));
        self.put_host_policies(id, handle, &policies);
        if let Some(a) = acquired {
            self.release_held_packets(a.trap);
        }
        self.record_child(id, handle, &child, replaces, selector, policies);
        self.put_assigned(id);
    }

    /// Adds the host policies for a child, unless the peer's policies already are these; a shunt
    /// with the same selector is replaced in place (no gap, no cleartext); another is removed.
    fn put_host_policies(&mut self, id: PeerId, handle: SaHandle, policies: &[PolicySpec]) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let shunt = match &peer.state {
            PeerState::Negotiating(n) => match &n.shunt {
                NegotiationShunt::Pass { spec, .. } => Some(*spec),
                _ => None,
            },
            PeerState::Failed(f) => f.shunt.as_ref().map(|s| s.spec),
            PeerState::Established(_) => None,
        };
        let existing: Vec<PolicySpec> = match &peer.state {
            PeerState::Established(e) => e.policies.clone(),
            _ => Vec::new(),
        };
        for policy in policies {
            let ours = existing
                .iter()
                .chain(shunt.iter())
                .find(|p| p.key() == policy.key());
            let op = match ours {
                Some(p) if p == policy => continue,
                Some(_) => KernelOp::UpdatePolicy(*policy),
                None => KernelOp::AddPolicy(*policy),
            };
            self.kernel(op, Some(Pending::Install { peer: id, handle }));
        }
        if let Some(shunt) = shunt.filter(|s| policies.iter().all(|p| p.key() != s.key())) {
            self.kernel(KernelOp::DeletePolicy(shunt.key()), None);
        }
    }

    /// With `xfrm_larval_drop=0` the kernel queues a held flow's packets on the trap policy and
    /// re-checks them on a timer that starts at 100 ms and doubles. Replacing the trap policy
    /// with itself (XFRM_MSG_UPDPOLICY) moves the queue to the "new" policy and re-checks it at
    /// once (`xfrm_policy_requeue`), so the first packets leave through the new SA (or the
    /// pass shunt just put in front of the trap) at once.
    pub(super) fn release_held_packets(&mut self, trap: oe_kernel::PolicyKey) {
        if let Some(spec) = self.traps.get(&trap).copied() {
            self.kernel(KernelOp::UpdatePolicy(spec), None);
        }
    }

    /// The peer's state after a child went in.
    fn record_child(
        &mut self,
        id: PeerId,
        handle: SaHandle,
        child: &ChildSa,
        replaces: Option<u32>,
        selector: oe_kernel::TrafficSelector,
        policies: Vec<PolicySpec>,
    ) {
        let entry = self.child_entry(handle, child, selector);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let remote = peer.remote;
        if let Some(ike) = peer.ikes.get_mut(&handle) {
            ike.spare_spis.retain(|s| *s != child.inbound_spi);
        }
        let first = !matches!(peer.state, PeerState::Established(_));
        let started = match &peer.state {
            PeerState::Negotiating(n) => Some(n.since),
            _ => None,
        };
        let waiters = established_with(&mut peer.state, entry, policies);
        peer.last_ike = Some("established".into());
        let role = peer.ikes.get(&handle).map_or(Role::Initiator, |i| i.role);
        let replaced_ike = peer.ikes.get_mut(&handle).and_then(|i| i.replaces.take());
        for w in waiters {
            self.commands.push_back(Command::ReleaseTrigger(w));
        }
        self.timers.cancel(Timer::Negotiation(id));
        self.timers.cancel(Timer::FailureEnds(id));
        if let Some(since) = started {
            let took = self.now.mono.saturating_duration_since(since);
            self.latency.negotiation.observe(took.as_secs_f64());
        }
        if first {
            self.counters.negotiations_succeeded += 1;
            if role == Role::Responder {
                self.counters.responder_sas += 1;
            }
        }
        let what = if replaces.is_some() {
            "rekeyed child SA"
        } else {
            "child SA"
        };
        let detail = format!(
            "{what} installed: {} {}{}, SPIs {:08x} in / {:08x} out",
            esp_name(child.encr),
            mode_name(child.mode),
            encap_text(child.encap),
            child.inbound_spi,
            child.outbound_spi
        );
        self.event("child-installed", Some(remote), detail);
        if let Some(old) = replaced_ike {
            self.retire_ike(id, old, "re-authenticated: the new IKE SA replaces it");
        }
        self.arm_reauth(id);
    }

    /// A child as the peer records it.
    fn child_entry(
        &self,
        handle: SaHandle,
        child: &ChildSa,
        selector: oe_kernel::TrafficSelector,
    ) -> Child {
        let now = self.now.mono;
        Child {
            ike: handle,
            inbound_spi: child.inbound_spi,
            outbound_spi: child.outbound_spi,
            selector,
            esp: esp_name(child.encr),
            mode: child.mode,
            encap: child.encap,
            virtual_ip: child.virtual_ip,
            selectors: format!(
                "{} === {}",
                ts_text(&child.local_ts),
                ts_text(&child.remote_ts)
            ),
            installed: now,
            rekey_after: child.lifetime.soft,
            counters: Counters {
                bytes: (0, 0),
                packets: (0, 0),
                last_change: now,
            },
        }
    }

    /// Refuses a child the kernel cannot enforce as negotiated: the engine deletes it on the
    /// peer too (RFC 7296 1.4.1), so neither side keeps half an SA.
    pub(super) fn refuse_child(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        child: &ChildSa,
        why: String,
    ) {
        let remote = self.peers.get(id).map(|p| p.remote);
        self.event("child-refused", remote, format!("child SA refused: {why}"));
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.delete_child(now, handle, child.inbound_spi);
        }
        self.kernel(
            KernelOp::DeleteSa(SaId::esp(local, Spi(child.inbound_spi))),
            None,
        );
        let established = self
            .peers
            .get(id)
            .is_some_and(|p| matches!(p.state, PeerState::Established(_)));
        if !established {
            self.fail(id, format!("child SA refused: {why}"));
        }
    }

    /// The kernel refused part of an SA pair: the IKE SA goes (telling the peer), and without
    /// other children the negotiation failed.
    pub(super) fn install_failed(&mut self, id: PeerId, handle: SaHandle, why: String) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let (remote, local) = (peer.remote, peer.local);
        self.event(
            "install-failed",
            Some(remote),
            format!("the kernel refused the SA pair: {why}"),
        );
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.delete(now, handle);
        }
        let only = self.peers.get(id).is_some_and(|p| match &p.state {
            PeerState::Established(e) => e.children.iter().all(|c| c.ike == handle),
            _ => true,
        });
        if only {
            self.forget_kernel_state(id);
            self.fail(id, format!("the kernel refused the SA pair: {why}"));
        }
        self.drain(local);
    }

    /// The engine removed a child: its SAs leave the kernel; the peer's host policies go with its
    /// last child, and the peer with them (the trap catches the host again).
    pub(super) fn child_deleted(&mut self, id: PeerId, inbound: u32, outbound: u32) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let (local, remote) = (peer.local, peer.remote);
        let PeerState::Established(e) = &mut peer.state else {
            return;
        };
        let Some(gone) = e.children.iter().position(|c| c.inbound_spi == inbound) else {
            return;
        };
        let gone = e.children.remove(gone).virtual_ip;
        let last = e.children.is_empty();
        // Policies no remaining child's selector needs go with the child.
        let needed: Vec<_> = e
            .children
            .iter()
            .flat_map(|c| [c.selector, c.selector.reversed()])
            .collect();
        let assigned = e.children.iter().any(|c| c.virtual_ip.is_some());
        let (keep, unused): (Vec<PolicySpec>, Vec<PolicySpec>) =
            e.policies.drain(..).partition(|p| {
                last || needed.contains(&p.selector)
                    || (assigned && p.action == oe_kernel::PolicyAction::Pass)
            });
        e.policies = keep;
        if !last {
            for p in unused {
                self.kernel(KernelOp::DeletePolicy(p.key()), None);
            }
        }
        self.kernel(KernelOp::DeleteSa(SaId::esp(local, Spi(inbound))), None);
        self.kernel(KernelOp::DeleteSa(SaId::esp(remote, Spi(outbound))), None);
        self.child_left_assigned(id, gone);
        self.event(
            "child-deleted",
            Some(remote),
            format!("child SA {inbound:08x}/{outbound:08x} removed"),
        );
        if last {
            self.tear_down(id, "its last child SA was deleted");
        }
    }

    /// Deletes the larval states of SPIs reserved for children that never came.
    pub(super) fn release_spare_spis(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let local = peer.local;
        let spis: Vec<u32> = peer
            .ikes
            .values_mut()
            .flat_map(|i| std::mem::take(&mut i.spare_spis))
            .collect();
        for spi in spis {
            self.kernel(KernelOp::DeleteSa(SaId::esp(local, Spi(spi))), None);
        }
    }

    /// Releases the DNS answers the trigger holds for this peer's negotiation.
    pub(super) fn release_waiters(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if let PeerState::Negotiating(n) = &mut peer.state {
            for w in std::mem::take(&mut n.waiters) {
                self.commands.push_back(Command::ReleaseTrigger(w));
            }
        }
    }

    /// Removes what the peer has in the kernel: child SAs, host policies or shunt, reserved SPIs.
    pub(super) fn forget_kernel_state(&mut self, id: PeerId) {
        self.remove_assigned(id);
        self.release_spare_spis(id);
        self.release_waiters(id);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let (local, remote) = (peer.local, peer.remote);
        let mut ops = Vec::new();
        match &mut peer.state {
            PeerState::Established(e) => {
                for c in e.children.drain(..) {
                    ops.push(KernelOp::DeleteSa(SaId::esp(local, Spi(c.inbound_spi))));
                    ops.push(KernelOp::DeleteSa(SaId::esp(remote, Spi(c.outbound_spi))));
                }
                ops.extend(
                    e.policies
                        .drain(..)
                        .map(|p| KernelOp::DeletePolicy(p.key())),
                );
            }
            PeerState::Negotiating(n) => {
                if let NegotiationShunt::Pass { spec, .. } = &n.shunt {
                    ops.push(KernelOp::DeletePolicy(spec.key()));
                }
                n.shunt = NegotiationShunt::None;
            }
            PeerState::Failed(f) => {
                if let Some(s) = f.shunt.take() {
                    ops.push(KernelOp::DeletePolicy(s.spec.key()));
                }
            }
        }
        for op in ops {
            self.kernel(op, None);
        }
    }

    /// Forgets a peer: its kernel state goes, its IKE SAs are deleted (telling the peer), the
    /// trap catches the host again.
    pub(super) fn forget_peer(&mut self, id: PeerId, why: &str) {
        self.forget_kernel_state(id);
        let Some(peer) = self.peers.remove(id) else {
            return;
        };
        self.timers.cancel_peer(id);
        tracing::debug!("forgetting peer {}: {why}", peer.remote);
        let now = self.now.mono;
        for handle in peer.ikes.keys() {
            self.pool.release((peer.local, *handle));
        }
        if let Some(engine) = self.engines.get_mut(&peer.local) {
            for handle in peer.ikes.keys() {
                engine.delete(now, *handle);
            }
        }
        self.drain(peer.local);
    }

    /// Tears an established peer down (idle, its SAs gone, its last child deleted).
    pub(super) fn tear_down(&mut self, id: PeerId, why: &str) {
        if let Some(peer) = self.peers.get_mut(id) {
            peer.last_ike = Some(format!("closed: {why}"));
        }
        self.forget_peer(id, why);
    }

    /// Deletes one IKE SA of a peer that has others (a re-authentication's predecessor).
    pub(super) fn retire_ike(&mut self, id: PeerId, handle: SaHandle, why: &str) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let (local, remote) = (peer.local, peer.remote);
        self.event(
            "ike-retired",
            Some(remote),
            format!("IKE SA retired: {why}"),
        );
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.delete(now, handle);
        }
        self.drain(local);
    }
}

/// The state after a child went in: established, with its policies merged in (one pair per
/// distinct selector). Returns the trigger's waiters a negotiation held.
fn established_with(
    state: &mut PeerState,
    child: Child,
    policies: Vec<PolicySpec>,
) -> Vec<crate::input::WaiterId> {
    let placeholder = PeerState::Established(Established {
        children: Vec::new(),
        policies: Vec::new(),
    });
    let mut waiters = Vec::new();
    *state = match std::mem::replace(state, placeholder) {
        PeerState::Established(mut e) => {
            e.children.push(child);
            for p in policies {
                match e.policies.iter_mut().find(|q| q.key() == p.key()) {
                    Some(q) => *q = p,
                    None => e.policies.push(p),
                }
            }
            PeerState::Established(e)
        }
        other => {
            if let PeerState::Negotiating(n) = other {
                waiters = n.waiters;
            }
            PeerState::Established(Established {
                children: vec![child],
                policies,
            })
        }
    };
    waiters
}

/// "transport" or "tunnel".
pub(crate) fn mode_name(mode: oe_ike::Mode) -> &'static str {
    match mode {
        oe_ike::Mode::Transport => "transport",
        _ => "tunnel",
    }
}

/// ", UDP-encapsulated 4500 -> 31000" behind a NAT (RFC 3948), else nothing.
pub(crate) fn encap_text(encap: Option<(u16, u16)>) -> String {
    encap.map_or_else(String::new, |(ours, theirs)| {
        format!(", UDP-encapsulated {ours} -> {theirs} (NAT)")
    })
}

fn ts_text(ts: &[oe_ike::wire::TrafficSelector]) -> String {
    ts.iter()
        .map(|t| {
            let proto = if t.ip_proto == 0 {
                String::new()
            } else {
                format!("[{}", t.ip_proto)
            };
            let ports = match (t.ip_proto, t.start_port, t.end_port) {
                (0, ..) => String::new(),
                (_, 0, u16::MAX) => "]".into(),
                (_, a, b) if a == b => format!("/{a}]"),
                (_, a, b) => format!("/{a}-{b}]"),
            };
            if t.start == t.end {
                format!("{}{proto}{ports}", t.start)
            } else {
                format!("{}-{}{proto}{ports}", t.start, t.end)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
