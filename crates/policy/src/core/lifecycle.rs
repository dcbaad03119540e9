//! The lifecycle around the negotiations: group policies in and out, the refresh that keeps our
//! policies' kernel lifetimes from ending while we live, the idle check, re-authentication,
//! reload and shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use oe_kernel::PolicySpec;

use super::{Core, Pending};
use crate::config::{Config, GroupTable};
use crate::input::{Command, KernelOp, KernelReply};
use crate::peer::{Ike, Lookup, NegotiationShunt, PeerAuthn, PeerId, PeerState, Role, Step};
use crate::timers::Timer;

impl Core {
    /// Installs the group policies (traps, pass, block) for the current table. Nothing is
    /// trapped when the kernel cannot do ESP: traffic would wait for SAs that can never come.
    pub(super) fn install_group_policies(&mut self) {
        if let Err(why) = &self.esp {
            let why = why.clone();
            self.event(
                "degraded",
                None,
                format!("not installing trap policies: {why}"),
            );
            return;
        }
        let wanted = self.traps.wanted(&self.table);
        for op in self.traps.apply(wanted) {
            let pending = match &op {
                KernelOp::AddPolicy(s) | KernelOp::UpdatePolicy(s) => Some(Pending::Trap(s.key())),
                _ => None,
            };
            self.kernel(op, pending);
        }
    }

    /// Re-puts every policy that carries a kernel lifetime, before the lifetime ends, in one batch.
    pub(super) fn refresh(&mut self) {
        self.refresh_assigned();
        let mut wanted: Vec<PolicySpec> = self.traps.expiring().copied().collect();
        for peer in self.peers.iter() {
            let specs: Vec<PolicySpec> = match &peer.state {
                PeerState::Negotiating(n) => match &n.shunt {
                    NegotiationShunt::Pass { spec, .. } => vec![*spec],
                    _ => Vec::new(),
                },
                PeerState::Established(e) => e.policies.clone(),
                PeerState::Failed(f) => f.shunt.iter().map(|s| s.spec).collect(),
            };
            wanted.extend(specs.into_iter().filter(|s| s.expires.is_some()));
        }
        if !wanted.is_empty() {
            self.kernel(KernelOp::RefreshPolicies(wanted), Some(Pending::Refresh));
        }
        let next = self.now.mono + self.refresh_interval();
        self.timers.set(Timer::Refresh, next);
    }

    /// What a refresh could not renew is no longer ours: a group policy is tried again at the
    /// next refresh; a peer's shunt or SA policy is dropped from its state.
    pub(super) fn refreshed(&mut self, result: Result<KernelReply, String>) {
        let (foreign, failed) = match result {
            Ok(KernelReply::Refreshed { foreign, failed }) => (foreign, failed),
            Ok(_) => return,
            Err(why) => {
                self.event(
                    "refresh-failed",
                    None,
                    format!("policy lifetimes not renewed: {why}"),
                );
                return;
            }
        };
        let lost = foreign
            .into_iter()
            .map(|k| (k, "a foreign policy holds its selector".to_owned()))
            .chain(failed);
        for (key, why) in lost {
            if self.traps.get(&key).is_some() {
                self.traps.refused(&key);
                self.event(
                    "trap-failed",
                    None,
                    format!("a group policy was not renewed: {why}"),
                );
                continue;
            }
            let owner = self.peers.iter().find_map(|p| {
                let holds = match &p.state {
                    PeerState::Negotiating(n) => {
                        matches!(&n.shunt, NegotiationShunt::Pass { spec, .. } if spec.key() == key)
                    }
                    PeerState::Established(e) => e.policies.iter().any(|s| s.key() == key),
                    PeerState::Failed(f) => f.shunt.as_ref().is_some_and(|s| s.spec.key() == key),
                };
                holds.then_some(p.id)
            });
            if let Some(id) = owner {
                self.shunt_refused(id, why);
            }
        }
    }

    /// Reads every SA's counters (one dump) for the idle check.
    pub(super) fn idle_check(&mut self) {
        let any = self
            .peers
            .iter()
            .any(|p| matches!(p.state, PeerState::Established(_)));
        if any
            && !self
                .pending
                .values()
                .any(|p| matches!(p, Pending::Counters))
        {
            self.kernel(KernelOp::DumpSas, Some(Pending::Counters));
        }
        let next = self.now.mono + self.idle_check_interval();
        self.timers.set(Timer::IdleCheck, next);
    }

    /// Counters arrived: note when each child's bytes last moved, tear down IKE SAs whose
    /// children all carried nothing in either direction for the idle timeout (traffic in one
    /// direction only is not idle), and answer status queries that waited for them.
    pub(super) fn counters_read(&mut self, result: Result<KernelReply, String>) {
        if let Ok(KernelReply::Sas(sas)) = result {
            let by_id: HashMap<(IpAddr, u32), (u64, u64)> = sas
                .iter()
                .map(|s| ((s.id.dst, s.id.spi.0), (s.current.bytes, s.current.packets)))
                .collect();
            self.update_counters(&by_id);
            self.tear_down_idle();
        }
        self.answer_waiting_queries();
    }

    fn update_counters(&mut self, by_id: &HashMap<(IpAddr, u32), (u64, u64)>) {
        let now = self.now.mono;
        for id in self.peers.ids() {
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            let (local, remote) = (peer.local, peer.remote);
            let PeerState::Established(e) = &mut peer.state else {
                continue;
            };
            for c in &mut e.children {
                let (Some(rx), Some(tx)) = (
                    by_id.get(&(local, c.inbound_spi)),
                    by_id.get(&(remote, c.outbound_spi)),
                ) else {
                    continue;
                };
                c.counters.packets = (rx.1, tx.1);
                if (rx.0, tx.0) != c.counters.bytes {
                    c.counters.bytes = (rx.0, tx.0);
                    c.counters.last_change = now;
                }
            }
        }
    }

    fn tear_down_idle(&mut self) {
        let idle = self.config.ike.idle_timeout;
        if idle.is_zero() {
            return;
        }
        let now = self.now.mono;
        let mut idle_ikes = Vec::new();
        for peer in self.peers.iter() {
            let PeerState::Established(e) = &peer.state else {
                continue;
            };
            for handle in peer.ikes.keys() {
                let mut children = e.children.iter().filter(|c| c.ike == *handle).peekable();
                if children.peek().is_some()
                    && children
                        .all(|c| now.saturating_duration_since(c.counters.last_change) >= idle)
                {
                    idle_ikes.push((peer.local, peer.remote, *handle));
                }
            }
        }
        for (local, remote, handle) in idle_ikes {
            self.counters.idle_teardowns += 1;
            self.event(
                "idle",
                Some(remote),
                "idle SAs torn down; the trap applies again".into(),
            );
            if let Some(engine) = self.engines.get_mut(&local) {
                engine.delete(now, handle);
            }
            self.drain(local);
        }
    }

    /// Authenticates an established peer again when its authentication is older than
    /// `ike.reauth_interval`: as initiator, a new IKE SA with a fresh DNS lookup that replaces the
    /// old one once its child is in (RFC 7296 2.8.3); as responder, the IKE SA is deleted and the
    /// peer authenticates anew when it next needs to. Anonymous SAs have no key to check again.
    pub(super) fn reauthenticate(&mut self, id: PeerId) {
        let interval = self.config.ike.reauth_interval;
        let now = self.now.mono;
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let due: Vec<(oe_ike::SaHandle, Role)> = peer
            .ikes
            .iter()
            .filter_map(|(h, i)| match &i.step {
                Step::Up {
                    auth: PeerAuthn::Key { .. },
                    at,
                } if now.saturating_duration_since(*at) >= interval => Some((*h, i.role)),
                _ => None,
            })
            .collect();
        let replacing = peer.ikes.values().any(|i| i.replaces.is_some());
        let (local, remote) = (peer.local, peer.remote);
        for (handle, role) in due {
            match role {
                Role::Responder => {
                    self.retire_ike(id, handle, "its authentication reached ike.reauth_interval");
                }
                Role::Initiator if !replacing => {
                    self.start_reauth(id, local, remote, handle, "ike.reauth_interval");
                }
                Role::Initiator => {}
            }
        }
        self.arm_reauth(id);
    }

    /// Sets the peer's re-authentication timer to its earliest key-authenticated IKE SA's due
    /// time (or, while one is being replaced, to when that attempt must be over).
    pub(super) fn arm_reauth(&mut self, id: PeerId) {
        let interval = self.config.ike.reauth_interval;
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let replacing = peer.ikes.values().any(|i| i.replaces.is_some());
        let due = peer
            .ikes
            .values()
            .filter_map(|i| match &i.step {
                Step::Up {
                    auth: PeerAuthn::Key { .. },
                    at,
                } => Some(*at + interval),
                _ => None,
            })
            .min();
        let retry = self.now.mono + self.config.shunts.negotiation_timeout;
        match due {
            Some(at) if replacing => self.timers.set(Timer::Reauth(id), at.max(retry)),
            Some(at) => self.timers.set(Timer::Reauth(id), at),
            None => self.timers.cancel(Timer::Reauth(id)),
        }
    }

    pub(super) fn start_reauth(
        &mut self,
        id: PeerId,
        local: IpAddr,
        remote: IpAddr,
        old: oe_ike::SaHandle,
        why: &str,
    ) {
        let now = self.now.mono;
        let port = self.config.ike.port;
        let handle = self.engine(local).connect(
            now,
            SocketAddr::new(local, port),
            SocketAddr::new(remote, port),
        );
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.ikes.insert(
            handle,
            Ike {
                role: Role::Initiator,
                since: now,
                step: Step::Exchanging,
                spare_spis: Vec::new(),
                replaces: Some(old),
            },
        );
        peer.reverse = Lookup::NotAsked;
        self.peers.bind_ike(local, handle, id);
        self.event(
            "reauth",
            Some(remote),
            format!("authenticating again ({why}): a new IKE SA with a fresh DNS lookup"),
        );
        self.ask_reverse(id);
        self.drain(local);
    }

    /// A new configuration: the group policies change by their difference (never untrapping
    /// what stays); peers keep their SAs; new engines use the new IKE settings.
    pub(super) fn reload(&mut self, config: Config, table: GroupTable) {
        self.anonymous = config.anonymous_groups().unwrap_or_default();
        self.pq_required = config.post_quantum_groups().unwrap_or_default();
        self.held.set_bounds(Self::ike_bounds(&config));
        self.dns
            .set_limits(crate::dnsq::PeerLookupLimits::of(&config.limits));
        self.config = config;
        self.table = table;
        self.install_group_policies();
        self.event("reload", None, "configuration reloaded".into());
    }

    /// SIGTERM: deletes every IKE SA (telling peers), then removes everything the agent
    /// installed.
    pub(super) fn shutdown(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        for id in self.peers.ids() {
            self.delete_ikes(id);
        }
        for w in self
            .peers
            .ids()
            .into_iter()
            .flat_map(|id| match self.peers.get_mut(id).map(|p| &mut p.state) {
                Some(PeerState::Negotiating(n)) => std::mem::take(&mut n.waiters),
                _ => Vec::new(),
            })
            .collect::<Vec<_>>()
        {
            self.commands.push_back(Command::ReleaseTrigger(w));
        }
        self.kernel(KernelOp::FlushOwned, None);
        self.traps.clear();
        self.commands.push_back(Command::Stopped);
    }
}
